#include "workloads.h"

#include <gtest/gtest.h>

#include <map>

#include "http_util.h"
#include "metrics.h"
#include "random.h"

namespace commentd::loadgen {
namespace {

TEST(RatesTest, DefaultsWithoutFlags) {
  const auto r = resolve_rates(Scenario::viral, {-1, -1, -1}, -1);
  EXPECT_DOUBLE_EQ(r[cat_read], 1000);
  EXPECT_DOUBLE_EQ(r[cat_comment], 100);
  EXPECT_DOUBLE_EQ(r[cat_reaction], 1000);
}

TEST(RatesTest, TotalScalesTheDefaultMix) {
  const auto r = resolve_rates(Scenario::mixed, {-1, -1, -1}, 10000);
  EXPECT_DOUBLE_EQ(r[cat_read], 9000);
  EXPECT_DOUBLE_EQ(r[cat_comment], 200);
  EXPECT_DOUBLE_EQ(r[cat_reaction], 800);
}

TEST(RatesTest, GivenRatesAreKeptAndTheRestShareTheRemainder) {
  const auto r = resolve_rates(Scenario::viral, {-1, 500, -1}, 2500);
  EXPECT_DOUBLE_EQ(r[cat_comment], 500);
  EXPECT_DOUBLE_EQ(r[cat_read], 1000);
  EXPECT_DOUBLE_EQ(r[cat_reaction], 1000);
  const auto only = resolve_rates(Scenario::viral, {3000, -1, -1}, -1);
  EXPECT_DOUBLE_EQ(only[cat_read], 3000);
  EXPECT_DOUBLE_EQ(only[cat_comment], 100);
  EXPECT_THROW(resolve_rates(Scenario::viral, {3000, -1, -1}, 100), std::invalid_argument);
  EXPECT_THROW(resolve_rates(Scenario::viral, {0, 0, 0}, -1), std::invalid_argument);
}

TEST(ZipfTest, HeadIsHotAndSamplesFollowTheLaw) {
  ZipfSampler z(1000, 1.0);
  EXPECT_GT(z.probability(0), z.probability(1));
  EXPECT_NEAR(z.probability(0) / z.probability(9), 10.0, 1e-9);
  Rng rng(42);
  std::map<uint64_t, int> hits;
  const int n = 200000;
  for (int i = 0; i < n; ++i) ++hits[z.sample(rng)];
  EXPECT_NEAR(hits[0] / double(n), z.probability(0), 0.01);
  EXPECT_NEAR(hits[1] / double(n), z.probability(1), 0.01);
  ZipfSampler uniform(4, 0.0);
  EXPECT_DOUBLE_EQ(uniform.probability(3), 0.25);
}

TEST(UuidTest, DeterministicAndWellFormed) {
  const std::string a = uuid_from_key(7);
  EXPECT_EQ(a, uuid_from_key(7));
  EXPECT_NE(a, uuid_from_key(8));
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
}

TEST(HttpUtilTest, ParsesTargets) {
  auto t = parse_target("http://127.0.0.1:8080");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, "8080");
  EXPECT_EQ(t->host_header, "127.0.0.1:8080");
  EXPECT_EQ(parse_target("http://localhost/x")->port, "80");
  EXPECT_FALSE(parse_target("https://x:1"));
  EXPECT_FALSE(parse_target("http://x:y"));
}

TEST(HttpUtilTest, BuildsRequests) {
  std::string out;
  append_request(out, "PUT", "/v1/comments/c/reaction", "h:1", "tok", R"({"type":"like"})");
  EXPECT_EQ(out,
            "PUT /v1/comments/c/reaction HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer tok\r\n"
            "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"type\":\"like\"}");
  out.clear();
  append_request(out, "GET", "/", "h:1", "", "");
  EXPECT_EQ(out, "GET / HTTP/1.1\r\nHost: h:1\r\n\r\n");
}

TEST(HttpUtilTest, FindsJsonStrings) {
  const std::string body =
      R"({"comments":[{"id":"a","video_id":"v","content":"\"id\": \"no\""}], "next_cursor" : "Cur"})";
  EXPECT_EQ(find_json_string(body, "id").value(), "a");
  EXPECT_EQ(find_json_string(body, "next_cursor").value(), "Cur");
  EXPECT_FALSE(find_json_string(R"({"next_cursor":null})", "next_cursor"));
  EXPECT_FALSE(find_json_string(R"({"x":"next_cursor"})", "next_cursor"));
}

TEST(MetricsTest, SumsCountersAndReadsLag) {
  const auto m = parse_prometheus(
      "# HELP comment_cache_hits_total hits\n"
      "# TYPE comment_cache_hits_total counter\n"
      "comment_cache_hits_total{kind=\"page\"} 90\n"
      "comment_cache_hits_total{kind=\"count\"} 10\n"
      "commentd_comment_cache_misses_total 5\n"
      "commentd_event_lag 0.25\n"
      "other_total 1e9\n");
  EXPECT_DOUBLE_EQ(m.cache_hits.value(), 100);
  EXPECT_DOUBLE_EQ(m.cache_misses.value(), 5);
  EXPECT_DOUBLE_EQ(m.event_lag.value(), 0.25);
  EXPECT_FALSE(parse_prometheus("up 1\n").cache_hits);
}

TEST(ScenarioTest, ViralMixFollowsTheRates) {
  ScenarioConfig cfg;
  cfg.scenario = Scenario::viral;
  cfg.rates = {1000, 100, 1000};
  cfg.users = 50;
  cfg.jwt_secret = "s";
  cfg.host_header = "h:1";
  auto data = make_scenario_data(cfg);
  std::vector<std::vector<std::string>> ids(1);
  for (int i = 0; i < 100; ++i) {
    std::string id = "c";  // (not "c" + to_string: GCC 12 -Wrestrict false positive)
    id += std::to_string(i);
    ids[0].push_back(id);
  }
  add_comments(*data, ids);
  auto workload = make_scenario_workload(data);
  auto shard = workload->make_shard(0);
  std::map<size_t, int> ops;
  int deletes = 0, dislikes = 0;
  RequestSlot slot;
  const int n = 21000;
  for (int i = 0; i < n; ++i) {
    slot.bytes.clear();
    slot.tag = 0;
    shard->build(static_cast<uint64_t>(i), slot);
    ++ops[slot.op];
    if (slot.bytes.starts_with("DELETE")) ++deletes;
    if (slot.bytes.ends_with(R"("dislike"})")) ++dislikes;
    EXPECT_NE(slot.bytes.find("Authorization: Bearer ey"), std::string::npos);
    // A page response with a cursor makes later next-page reads possible.
    shard->on_response(slot, 200, R"({"comments":[],"next_cursor":"CUR"})");
  }
  const double reads = ops[op_read_page] + ops[op_read_next_page];
  EXPECT_NEAR(reads / n, 1000.0 / 2100, 0.02);
  EXPECT_NEAR(ops[op_post_comment] / double(n), 100.0 / 2100, 0.01);
  const double reactions = ops[op_put_reaction] + ops[op_delete_reaction];
  EXPECT_NEAR(reactions / n, 1000.0 / 2100, 0.02);
  EXPECT_NEAR(deletes / reactions, 0.05, 0.02);
  EXPECT_GT(dislikes / reactions, 0.15);  // 20 % dislike plus half the switches
  EXPECT_GT(ops[op_read_next_page], 0);
}

TEST(ScenarioTest, MixedSpreadsOverVideosAndPagesEach) {
  ScenarioConfig cfg;
  cfg.scenario = Scenario::mixed;
  cfg.rates = {900, 20, 80};
  cfg.videos = 10;
  cfg.users = 5;
  cfg.host_header = "h:1";
  auto data = make_scenario_data(cfg);
  ASSERT_EQ(data->video_ids.size(), 10u);
  std::vector<std::vector<std::string>> ids(10);
  for (size_t v = 0; v < 10; ++v) {
    for (int i = 0; i < 3; ++i) {
      std::string id = "v";
      id += std::to_string(v * 10 + static_cast<size_t>(i));
      ids[v].push_back(id);
    }
  }
  add_comments(*data, ids);
  auto shard = make_scenario_workload(data)->make_shard(0);
  std::map<std::string, int> per_video;
  int next_pages = 0;
  RequestSlot slot;
  for (int i = 0; i < 20000; ++i) {
    slot.bytes.clear();
    slot.tag = 0;
    shard->build(static_cast<uint64_t>(i), slot);
    if (slot.op == op_read_next_page) {
      ++next_pages;
      EXPECT_NE(slot.bytes.find("&cursor=C"), std::string::npos);
    }
    if (slot.op == op_read_page || slot.op == op_read_next_page) {
      ++per_video[slot.bytes.substr(slot.bytes.find("/v1/videos/") + 11, 36)];
    }
    EXPECT_EQ(slot.bytes.find("Authorization"), std::string::npos);  // no secret, no header
    std::string body = R"({"next_cursor":"C)";
    body += std::to_string(i);
    body += R"("})";
    shard->on_response(slot, 200, body);
  }
  EXPECT_GT(next_pages, 0);
  ASSERT_EQ(per_video.size(), 10u);
  EXPECT_GT(per_video[data->video_ids[0]], 3 * per_video[data->video_ids[9]]);  // Zipf
}

}  // namespace
}  // namespace commentd::loadgen

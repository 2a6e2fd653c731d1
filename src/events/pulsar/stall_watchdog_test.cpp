// The stall watchdog's parts without a broker: the stats it reads, when it calls a
// subscription stuck, and what it does then (through a scripted admin API). The real
// broker's stats and unload: stall_watchdog_pulsartest.cpp.
#include "events/pulsar/stall_watchdog.h"

#include <gtest/gtest.h>

#include <deque>

namespace commentd::events {
namespace {

// Shaped as Pulsar 4.0's topic stats (trimmed): one Key_Shared subscription, two consumers.
constexpr std::string_view kStats = R"({
  "msgRateIn": 0.0, "msgInCounter": 120, "backlogSize": 4096,
  "subscriptions": {
    "reaction-applier": {
      "msgRateOut": 0.0, "msgOutCounter": 81, "msgBacklog": 39, "unackedMessages": 2,
      "type": "Key_Shared",
      "consumers": [
        {"consumerName": "a", "availablePermits": 998, "unackedMessages": 2},
        {"consumerName": "b", "availablePermits": 1000, "unackedMessages": 0}
      ]
    },
    "other": {"msgOutCounter": 5, "msgBacklog": 0, "consumers": []}
  }
})";

TEST(StallWatchdog, ReadsASubscriptionFromTopicStats) {
  auto s = parse_subscription_stats(kStats, "reaction-applier");
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(*s);
  EXPECT_EQ((*s)->backlog, 39);
  EXPECT_EQ((*s)->unacked, 2);
  EXPECT_EQ((*s)->msg_out, 81);
  EXPECT_EQ((*s)->consumers, 2u);
  EXPECT_EQ((*s)->permits, 1998);
  auto none = parse_subscription_stats(kStats, "absent");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  EXPECT_FALSE(parse_subscription_stats("not json", "x").ok());
  EXPECT_FALSE(parse_subscription_stats(R"({"msgRateIn": 1})", "x").ok());
}

TEST(StallWatchdog, AdminPathsNameOnlyPersistentTopics) {
  EXPECT_EQ(*admin_topic_path("persistent://pavilion/reactions/events"),
            "/admin/v2/persistent/pavilion/reactions/events");
  EXPECT_FALSE(admin_topic_path("non-persistent://a/b/c").ok());
  EXPECT_FALSE(admin_topic_path("persistent://a/b").ok());
  EXPECT_FALSE(admin_topic_path("persistent://a//c").ok());
  EXPECT_TRUE(make_admin_http("https://broker:8443", "", std::chrono::seconds(1)).ok());  // the system's roots
  EXPECT_FALSE(make_admin_http("https://broker:8443", "", std::chrono::seconds(1), "/no/such/ca.pem").ok());
  EXPECT_FALSE(make_admin_http("ftp://broker:8443", "", std::chrono::seconds(1)).ok());
  EXPECT_FALSE(make_admin_http("http://", "", std::chrono::seconds(1)).ok());
  EXPECT_TRUE(make_admin_http("http://127.0.0.1:8080/", "", std::chrono::seconds(1)).ok());
}

SubscriptionSample sample(int64_t backlog, int64_t unacked, int64_t out, int64_t permits = 100, size_t consumers = 1) {
  return SubscriptionSample{backlog, unacked, out, permits, consumers};
}

TEST(StallWatchdog, StuckOnlyWhenWaitingMessagesGetNoDispatchForTheWholeSpan) {
  StallDetector d(std::chrono::milliseconds(60'000));
  EXPECT_FALSE(d.observe(sample(39, 0, 81), 0));
  EXPECT_FALSE(d.observe(sample(39, 0, 81), 30'000));
  EXPECT_FALSE(d.observe(sample(39, 0, 81), 59'999));
  EXPECT_TRUE(d.observe(sample(39, 0, 81), 60'000));
  d.reset();
  EXPECT_FALSE(d.observe(sample(39, 0, 81), 61'000)) << "a new wait after the remedy";
  EXPECT_FALSE(d.observe(sample(39, 0, 81), 100'000));
  EXPECT_TRUE(d.observe(sample(39, 0, 81), 121'000));
}

TEST(StallWatchdog, AnythingDispatchedOrNothingToDispatchIsNotAStall) {
  StallDetector d(std::chrono::milliseconds(10'000));
  // Dispatching (slowly, or redeliveries of nacked messages): msgOutCounter moves.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(d.observe(sample(39, 0, 81 + i), i * 10'000));
  // Everything in the backlog is out with consumers (being applied): nothing waits.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(d.observe(sample(39, 39, 200), 100'000 + i * 10'000));
  // No permits (the consumers' queues are full) or no consumer: not the dispatcher's fault.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(d.observe(sample(39, 0, 200, 0), 200'000 + i * 10'000));
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(d.observe(sample(39, 0, 200, 0, 0), 300'000 + i * 10'000));
  // An empty backlog.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(d.observe(sample(0, 0, 200), 400'000 + i * 10'000));
  // The same sample, now waiting: the span starts here.
  EXPECT_FALSE(d.observe(sample(3, 0, 200), 500'000));
  EXPECT_TRUE(d.observe(sample(3, 0, 200), 510'000));
}

// A scripted admin API: answers in order, and the calls it got.
struct ScriptedAdmin {
  std::deque<Result<AdminReply>> answers;
  std::vector<std::string> calls;
  AdminHttp http() {
    return [this](std::string_view method, const std::string& target) -> Result<AdminReply> {
      calls.push_back(std::string(method) + " " + target);
      if (answers.empty()) return Error(Errc::unavailable, "no answer scripted");
      auto a = std::move(answers.front());
      answers.pop_front();
      return a;
    };
  }
};

TEST(StallWatchdog, UnloadsTheTopicOfAStuckSubscriptionOnce) {
  ManualClock clock;
  ScriptedAdmin admin;
  StallWatchdog w(admin.http(), {{"persistent://pavilion/reactions/events", "reaction-applier"}},
                  std::chrono::milliseconds(20'000), clock);
  for (int i = 0; i < 3; ++i) admin.answers.push_back(AdminReply{200, std::string(kStats)});
  admin.answers.push_back(AdminReply{204, ""});
  ASSERT_TRUE(w.check().ok());
  clock.advance_ms(10'000);
  ASSERT_TRUE(w.check().ok());
  EXPECT_EQ(w.stats().unloads.load(), 0u);
  clock.advance_ms(10'000);
  ASSERT_TRUE(w.check().ok());
  EXPECT_EQ(w.stats().stalls.load(), 1u);
  EXPECT_EQ(w.stats().unloads.load(), 1u);
  ASSERT_EQ(admin.calls.size(), 4u);
  EXPECT_EQ(admin.calls[0], "GET /admin/v2/persistent/pavilion/reactions/events/stats");
  EXPECT_EQ(admin.calls[3], "PUT /admin/v2/persistent/pavilion/reactions/events/unload");
  // After the remedy the same numbers start a new wait rather than unloading again at once.
  admin.answers.push_back(AdminReply{200, std::string(kStats)});
  clock.advance_ms(10'000);
  ASSERT_TRUE(w.check().ok());
  EXPECT_EQ(admin.calls.size(), 5u);
  EXPECT_EQ(w.stats().checks.load(), 4u);
}

TEST(StallWatchdog, AnAdminApiAwayOrATopicNotThereIsNoStall) {
  ManualClock clock;
  ScriptedAdmin admin;
  StallWatchdog w(admin.http(), {{"persistent://pavilion/reactions/events", "reaction-applier"}},
                  std::chrono::milliseconds(1), clock);
  admin.answers.push_back(Error(Errc::unavailable, "connection refused"));
  EXPECT_FALSE(w.check().ok()) << "every read failed: the scheduler logs it";
  admin.answers.push_back(AdminReply{500, "oops"});
  EXPECT_FALSE(w.check().ok());
  admin.answers.push_back(AdminReply{404, "{}"});
  clock.advance_ms(10);
  EXPECT_TRUE(w.check().ok());
  admin.answers.push_back(AdminReply{200, std::string(kStats)});  // a wait starts
  admin.answers.push_back(AdminReply{200, std::string(kStats)});  // nothing out since: stuck
  admin.answers.push_back(AdminReply{500, "unload refused"});
  clock.advance_ms(10);
  EXPECT_TRUE(w.check().ok());
  clock.advance_ms(10);
  EXPECT_TRUE(w.check().ok());
  EXPECT_EQ(w.stats().stalls.load(), 1u);
  EXPECT_EQ(w.stats().unloads.load(), 0u);
  EXPECT_EQ(w.stats().errors.load(), 3u);
}

}  // namespace
}  // namespace commentd::events

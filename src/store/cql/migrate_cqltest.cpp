// `commentd migrate` against a real Cassandra (COMMENTD_TEST_CQL=host:port): every table with
// its column kinds, a second run is a no-op, concurrent runs, a hand-made V1 keyspace with
// data is kept, and the failures (lease held, conflicting column) are reported.
// Each test uses its own keyspace, so parallel test processes never collide.
#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <map>
#include <set>
#include <thread>

#include "bridge/testing.h"
#include "store/cql/migrate.h"
#include "store/cql/schema.h"

namespace commentd::store::cql {
namespace {

using namespace std::chrono_literals;
using bridge::Rows;
using bridge::testing::wait;

// table -> column -> "kind type[ order]" as system_schema.columns says, written out by hand
// from docs/cluster.md "Tables" (not derived from schema.cpp).
using Shape = std::map<std::string, std::map<std::string, std::string>>;

const Shape& expected_shape() {
  static const Shape shape = {
      {"comments",
       {{"id", "partition_key uuid"}, {"video_id", "regular uuid"}, {"user_id", "regular uuid"},
        {"content", "regular text"}, {"created_at", "regular timestamp"}, {"updated_at", "regular timestamp"},
        {"deleted_at", "regular timestamp"}, {"parent_id", "regular uuid"}, {"likes", "regular int"},
        {"dislikes", "regular int"}, {"status", "regular text"}, {"version", "regular bigint"},
        {"reply_to", "regular uuid"}, {"depth", "regular int"}, {"edited", "regular boolean"},
        {"event_id", "regular uuid"}, {"intent_0", "regular uuid"}, {"intent_1", "regular uuid"},
        {"intent_2", "regular uuid"}, {"intent_3", "regular uuid"}}},
      {"comments_by_video",
       {{"video_id", "partition_key uuid"}, {"created_at", "clustering timestamp desc"},
        {"comment_id", "clustering uuid asc"}}},
      {"replies",
       {{"parent_id", "partition_key uuid"}, {"created_at", "clustering timestamp desc"},
        {"comment_id", "clustering uuid asc"}}},
      {"reactions",
       {{"comment_id", "partition_key uuid"}, {"user_id", "clustering uuid asc"}, {"type", "regular text"},
        {"created_at", "regular timestamp"}, {"node_id", "regular int"}, {"op_id", "regular uuid"},
        {"set_at", "regular bigint"}, {"prev_type", "regular text"}}},
      {"comment_metrics",
       {{"comment_id", "partition_key uuid"}, {"likes", "regular counter"}, {"dislikes", "regular counter"},
        {"replies_count", "regular counter"}, {"writes_started", "regular counter"},
        {"writes_done", "regular counter"}}},
      {"comment_metrics_meta",
       {{"comment_id", "partition_key uuid"}, {"last_updated", "regular timestamp"},
        {"update_frequency", "regular text"}}},
      {"video_stats",
       {{"video_id", "partition_key uuid"}, {"comments_count", "regular counter"},
        {"reactions_count", "regular counter"}, {"writes_started", "regular counter"},
        {"writes_done", "regular counter"}}},
      {"video_stats_meta",
       {{"video_id", "partition_key uuid"}, {"last_updated", "regular timestamp"},
        {"is_trending", "regular boolean"}, {"update_frequency", "regular text"}}},
      {"reaction_events",
       {{"comment_id", "partition_key uuid"}, {"created_at", "clustering timestamp desc"},
        {"reaction_id", "clustering uuid asc"}, {"user_id", "regular uuid"}, {"type", "regular text"},
        {"action", "regular text"}}},
      {"comments_by_video_bucketed",
       {{"video_id", "partition_key uuid"}, {"time_bucket", "partition_key text"},
        {"created_at", "clustering timestamp desc"}, {"comment_id", "clustering uuid asc"}}},
      {"video_buckets", {{"video_id", "partition_key uuid"}, {"time_bucket", "clustering text desc"}}},
      {"user_reactions",
       {{"video_id", "partition_key uuid"}, {"user_id", "partition_key uuid"},
        {"comment_id", "clustering uuid asc"}, {"type", "regular text"}, {"hidden", "regular boolean"},
        {"recent_until", "regular timestamp"}}},
      {"user_video_view",
       {{"video_id", "partition_key uuid"}, {"user_id", "partition_key uuid"}, {"hidden", "regular set<uuid>"},
        {"recent_until", "regular timestamp"}}},
      {"outbox",
       {{"shard", "partition_key int"}, {"hour", "partition_key bigint"}, {"position", "clustering bigint asc"},
        {"event_id", "clustering uuid asc"}, {"comment_id", "regular uuid"}, {"version", "regular bigint"},
        {"topic", "regular text"}, {"key", "regular text"}}},
      {"relay_positions",
       {{"name", "partition_key text"}, {"shard", "partition_key int"}, {"position", "regular bigint"},
        {"owner", "regular text"}}},
      {"consumer_positions",
       {{"name", "partition_key text"}, {"shard", "partition_key int"}, {"position", "regular bigint"}}},
      {"reaction_ops",
       {{"node_id", "partition_key int"}, {"block", "partition_key bigint"}, {"seq", "clustering bigint asc"},
        {"op_id", "regular uuid"}, {"comment_id", "regular uuid"}, {"video_id", "regular uuid"},
        {"user_id", "regular uuid"}, {"type", "regular text"}, {"created_at", "regular timestamp"},
        {"op_node", "regular int"}}},
      {"outbox_log",
       {{"node_id", "partition_key int"}, {"block", "partition_key bigint"}, {"seq", "clustering bigint asc"},
        {"topic", "regular text"}, {"key", "regular text"}, {"payload", "regular blob"}}},
      {"log_heads", {{"node_id", "partition_key int"}, {"log", "partition_key text"}, {"seq", "regular bigint"}}},
      {"user_hidden",
       {{"video_id", "partition_key uuid"}, {"user_id", "partition_key uuid"}, {"comment_id", "clustering uuid asc"},
        {"recent_until", "static timestamp"}}},
      {"backfill_progress",
       {{"job", "partition_key text"}, {"phase", "clustering text asc"}, {"range_id", "clustering int asc"},
        {"next_token", "regular bigint"}, {"done", "regular boolean"}, {"rows", "regular bigint"},
        {"updated_at", "regular timestamp"}}},
      {"count_repairs",
       {{"shard", "partition_key int"}, {"kind", "clustering text asc"}, {"key", "clustering uuid asc"}}},
      {"count_claims", {{"kind", "partition_key text"}, {"key", "partition_key uuid"}, {"claim", "regular bigint"}}},
      {"commit_intents",
       {{"shard", "partition_key int"}, {"minute", "partition_key bigint"}, {"id", "clustering uuid asc"},
        {"comment_id", "regular uuid"}, {"version", "regular bigint"}, {"written_at", "regular bigint"},
        {"body", "regular blob"}, {"claim", "regular bigint"}}},
      {"intent_sweeps", {{"shard", "partition_key int"}, {"minute", "regular bigint"}}},
      {"reaction_owners", {{"comment_id", "partition_key uuid"}, {"owner", "regular text"}}},
      {"schema_version",
       {{"version", "partition_key int"}, {"description", "regular text"}, {"applied_at", "regular timestamp"},
        {"applied_by", "regular text"}}},
      {"schema_lease", {{"name", "partition_key text"}, {"owner", "regular text"}}},
  };
  return shape;
}

class Migrate : public ::testing::Test {
 protected:
  void SetUp() override {
    COMMENTD_REQUIRE_SERVER(addr_, "COMMENTD_TEST_CQL");
    auto rt = bridge::Runtime::create(2);
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    rt_ = std::move(*rt);
    cfg_.hosts = {addr_};
    cfg_.request_timeout = 60s;
    // One keyspace per test and process: ctest runs tests in parallel processes.
    static int counter = 0;
    cfg_.keyspace = "migrate_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    session_ = must_connect();
  }

  void TearDown() override {
    if (session_) ddl("DROP KEYSPACE IF EXISTS " + cfg_.keyspace);
  }

  std::unique_ptr<bridge::CqlSession> must_connect() {
    auto s = connect_cql(*rt_, cfg_);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  Rows query(const std::string& cql) {
    auto r = wait<Rows>([&](auto h) { session_->query(cql, 60s, std::move(h)); });
    EXPECT_TRUE(r.ok()) << cql << ": " << (r.ok() ? "" : r.error().message);
    if (!r.ok()) throw std::runtime_error(cql);
    return std::move(*r);
  }
  void ddl(const std::string& cql) { query(cql); }

  static std::string text(const Rows& r, size_t row, size_t col) {
    auto v = r.bytes(row, col);
    EXPECT_TRUE(v.ok() && v->has_value());
    return v.ok() && v->has_value() ? std::string(**v) : std::string();
  }

  Shape shape() {
    Rows r = query("SELECT table_name, column_name, kind, type, clustering_order FROM system_schema.columns "
                   "WHERE keyspace_name = '" + cfg_.keyspace + "'");
    Shape out;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string kind = text(r, i, 2) + " " + text(r, i, 3);
      if (text(r, i, 2) == "clustering") kind += " " + text(r, i, 4);
      out[text(r, i, 0)][text(r, i, 1)] = kind;
    }
    return out;
  }

  std::set<int> recorded_versions() {
    Rows r = query("SELECT version, applied_by FROM " + cfg_.keyspace + ".schema_version");
    std::set<int> out;
    for (size_t i = 0; i < r.size(); ++i) {
      out.insert(static_cast<int>(r.i64(i, 0)->value_or(-1)));
      EXPECT_FALSE(text(r, i, 1).empty());
    }
    return out;
  }

  std::set<int> all_versions() {
    std::set<int> v;
    for (int i = 1; i <= latest_schema_version(); ++i) v.insert(i);
    return v;
  }

  std::string addr_;
  std::unique_ptr<bridge::Runtime> rt_;
  config::CqlConfig cfg_;
  std::unique_ptr<bridge::CqlSession> session_;
};

TEST_F(Migrate, EmptyKeyspaceGetsEveryTableWithItsColumnKinds) {
  ASSERT_TRUE(session_);
  auto before = read_schema_version(*session_, cfg_);
  ASSERT_TRUE(before.ok()) << before.error().message;
  EXPECT_EQ(*before, 0);

  auto out = migrate(*session_, cfg_);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->version_before, 0);
  EXPECT_EQ(out->version_after, latest_schema_version());
  EXPECT_EQ(std::set<int>(out->applied.begin(), out->applied.end()), all_versions());

  EXPECT_EQ(shape(), expected_shape());
  EXPECT_EQ(recorded_versions(), all_versions());
  auto after = read_schema_version(*session_, cfg_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, latest_schema_version());
  Rows ks = query("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = '" + cfg_.keyspace + "'");
  EXPECT_EQ(ks.size(), 1u);
}

TEST_F(Migrate, SecondRunIsANoOp) {
  ASSERT_TRUE(session_);
  ASSERT_TRUE(migrate(*session_, cfg_, {.owner = "first"}).ok());
  Rows first = query("SELECT version, applied_at, applied_by FROM " + cfg_.keyspace + ".schema_version");

  auto again = migrate(*session_, cfg_, {.owner = "second"});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->version_before, latest_schema_version());
  EXPECT_EQ(again->version_after, latest_schema_version());

  Rows second = query("SELECT version, applied_at, applied_by FROM " + cfg_.keyspace + ".schema_version");
  ASSERT_EQ(second.size(), first.size());
  for (size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(*second.i64(i, 1), *first.i64(i, 1));
    EXPECT_EQ(text(second, i, 2), "first");
  }
  EXPECT_EQ(shape(), expected_shape());
}

// A keyspace migrated to version 8 before session 20 has version 3's comment_log (never
// written); version 9 drops it, and a keyspace made from scratch never has it.
TEST_F(Migrate, VersionNineDropsTheCommentLogOfAnOlderKeyspace) {
  ASSERT_TRUE(session_);
  ASSERT_TRUE(migrate(*session_, cfg_).ok());
  EXPECT_EQ(shape().count("comment_log"), 0u);
  // The keyspace as version 8 left it: the table (its key, as version 3 made it) and no 9.
  ddl("CREATE TABLE " + cfg_.keyspace + ".comment_log (comment_id uuid, version bigint, event text, "
      "PRIMARY KEY ((comment_id), version)) WITH CLUSTERING ORDER BY (version DESC)");
  ddl("DELETE FROM " + cfg_.keyspace + ".schema_version WHERE version = 9");
  ASSERT_EQ(*read_schema_version(*session_, cfg_), 8);
  ASSERT_EQ(shape().count("comment_log"), 1u);
  auto out = migrate(*session_, cfg_);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->applied, std::vector<int>{9});
  EXPECT_EQ(shape(), expected_shape());
}

// Version 10 folds the user's view into user_reactions (schema.h kFoldMarkerJob). From
// scratch there is no user_hidden row to copy, so migrate sets the fold marker; a keyspace
// that had user_hidden before the run (an upgrade from 9) gets the columns and no marker:
// `commentd backfill` copies the rows, then sets it.
TEST_F(Migrate, VersionTenSetsTheFoldMarkerOnlyWhenUserHiddenIsNew) {
  ASSERT_TRUE(session_);
  auto out = migrate(*session_, cfg_);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_TRUE(out->user_view_folded);
  const std::string marker = "SELECT done FROM " + cfg_.keyspace + ".backfill_progress WHERE job = 'cluster' AND "
                             "phase = 'user_view_folded'";
  ASSERT_EQ(query(marker).size(), 1u);
  EXPECT_TRUE(**query(marker).boolean(0, 0));
  // The keyspace as version 9 left it.
  ddl("ALTER TABLE " + cfg_.keyspace + ".user_reactions DROP hidden");
  ddl("ALTER TABLE " + cfg_.keyspace + ".user_reactions DROP recent_until");
  ddl("DELETE FROM " + cfg_.keyspace + ".backfill_progress WHERE job = 'cluster'");
  ddl("DELETE FROM " + cfg_.keyspace + ".schema_version WHERE version = 10");
  ASSERT_EQ(*read_schema_version(*session_, cfg_), 9);
  auto again = migrate(*session_, cfg_);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->applied, std::vector<int>{10});
  EXPECT_FALSE(again->user_view_folded);
  EXPECT_EQ(query(marker).size(), 0u);
  EXPECT_EQ(shape(), expected_shape());
}

TEST_F(Migrate, ConcurrentRunsBothSucceedAndApplyEachStepOnce) {
  ASSERT_TRUE(session_);
  auto other = must_connect();
  ASSERT_TRUE(other);
  MigrateOptions oa{.owner = "runner-a", .lease_poll = 20ms};
  MigrateOptions ob{.owner = "runner-b", .lease_poll = 20ms};
  // Results on the heap, filled by threads: g++ 12 at -O3 sees a false free-nonheap-object
  // in an optional's emplace and in a future's result setter.
  std::unique_ptr<Result<MigrateOutcome>> ra, rb;
  std::thread ta([&] { ra = std::make_unique<Result<MigrateOutcome>>(migrate(*session_, cfg_, oa)); });
  std::thread tb([&] { rb = std::make_unique<Result<MigrateOutcome>>(migrate(*other, cfg_, ob)); });
  ta.join();
  tb.join();
  Result<MigrateOutcome>& a = *ra;
  Result<MigrateOutcome>& b = *rb;
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(a->version_after, latest_schema_version());
  EXPECT_EQ(b->version_after, latest_schema_version());
  // The lease lets one runner apply the steps; the other finds them applied.
  std::multiset<int> applied(a->applied.begin(), a->applied.end());
  applied.insert(b->applied.begin(), b->applied.end());
  const std::set<int> all = all_versions();
  EXPECT_EQ(applied, std::multiset<int>(all.begin(), all.end()));
  EXPECT_EQ(shape(), expected_shape());
  EXPECT_EQ(recorded_versions(), all_versions());
  Rows lease = query("SELECT owner FROM " + cfg_.keyspace + ".schema_lease");
  EXPECT_EQ(lease.size(), 0u) << "the lease is released";
}

TEST_F(Migrate, HandMadeV1TablesAndTheirRowsAreKept) {
  ASSERT_TRUE(session_);
  ddl("CREATE KEYSPACE " + cfg_.keyspace +
      " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
  const std::string ks = cfg_.keyspace + ".";
  // The plan's V1 DDL, verbatim.
  ddl("CREATE TABLE " + ks +
      "comments (id uuid PRIMARY KEY, video_id uuid, user_id uuid, content text, created_at timestamp, "
      "updated_at timestamp, deleted_at timestamp, parent_id uuid, likes int, dislikes int, status text)");
  ddl("CREATE TABLE " + ks +
      "comments_by_video (video_id uuid, comment_id uuid, created_at timestamp, "
      "PRIMARY KEY (video_id, created_at, comment_id)) WITH CLUSTERING ORDER BY (created_at DESC, comment_id ASC)");
  ddl("CREATE TABLE " + ks +
      "replies (parent_id uuid, comment_id uuid, created_at timestamp, PRIMARY KEY (parent_id, created_at, "
      "comment_id)) WITH CLUSTERING ORDER BY (created_at DESC, comment_id ASC)");
  ddl("CREATE TABLE " + ks +
      "reactions (comment_id uuid, user_id uuid, type text, created_at timestamp, PRIMARY KEY (comment_id, "
      "user_id))");
  const std::string c1 = "11111111-1111-1111-1111-111111111111", c2 = "22222222-2222-2222-2222-222222222222";
  const std::string v = "99999999-9999-9999-9999-999999999999", u = "55555555-5555-5555-5555-555555555555";
  ddl("INSERT INTO " + ks + "comments (id, video_id, user_id, content, created_at, parent_id, likes, dislikes, "
      "status) VALUES (" + c1 + ", " + v + ", " + u + ", 'first!', 1700000000000, null, 3, 1, 'active')");
  ddl("INSERT INTO " + ks + "comments (id, video_id, user_id, content, created_at, parent_id, likes, dislikes, "
      "status) VALUES (" + c2 + ", " + v + ", " + u + ", 'a reply', 1700000001000, " + c1 + ", 0, 0, 'active')");
  ddl("INSERT INTO " + ks + "comments_by_video (video_id, comment_id, created_at) VALUES (" + v + ", " + c1 +
      ", 1700000000000)");
  ddl("INSERT INTO " + ks + "replies (parent_id, comment_id, created_at) VALUES (" + c1 + ", " + c2 +
      ", 1700000001000)");
  ddl("INSERT INTO " + ks + "reactions (comment_id, user_id, type, created_at) VALUES (" + c1 + ", " + u +
      ", 'like', 1700000002000)");

  auto out = migrate(*session_, cfg_);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->version_after, latest_schema_version());
  EXPECT_EQ(shape(), expected_shape());

  Rows c = query("SELECT content, created_at, likes, dislikes, status, version, edited FROM " + ks +
                 "comments WHERE id = " + c1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(text(c, 0, 0), "first!");
  EXPECT_EQ(c.i64(0, 1)->value_or(0), 1700000000000);
  EXPECT_EQ(c.i64(0, 2)->value_or(0), 3);
  EXPECT_EQ(c.i64(0, 3)->value_or(0), 1);
  EXPECT_EQ(text(c, 0, 4), "active");
  EXPECT_FALSE(c.i64(0, 5)->has_value()) << "added columns read as null on V1 rows";
  EXPECT_FALSE(c.boolean(0, 6)->has_value());
  EXPECT_EQ(query("SELECT parent_id FROM " + ks + "comments WHERE id = " + c2).size(), 1u);
  Rows byv = query("SELECT comment_id FROM " + ks + "comments_by_video WHERE video_id = " + v);
  EXPECT_EQ(byv.size(), 1u);
  EXPECT_EQ(query("SELECT comment_id FROM " + ks + "replies WHERE parent_id = " + c1).size(), 1u);
  Rows r = query("SELECT type, created_at, set_at FROM " + ks + "reactions WHERE comment_id = " + c1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(text(r, 0, 0), "like");
  EXPECT_EQ(r.i64(0, 1)->value_or(0), 1700000002000);
  EXPECT_FALSE(r.i64(0, 2)->has_value());
}

TEST_F(Migrate, ALeaseHeldByAnotherRunnerFailsWithAClearMessage) {
  ASSERT_TRUE(session_);
  // A runner that holds the lease and has not finished: the schema stays below the latest.
  ddl(create_keyspace_cql(cfg_));
  for (std::string_view stmt : bookkeeping_statements()) ddl(with_keyspace(stmt, cfg_.keyspace));
  ddl("INSERT INTO " + cfg_.keyspace + ".schema_lease (name, owner) VALUES ('migrate', 'stuck') USING TTL 600");
  auto out = migrate(*session_, cfg_, {.owner = "me", .lease_wait = 0ms});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::unavailable);
  EXPECT_NE(out.error().message.find("migration lease"), std::string::npos) << out.error().message;
  EXPECT_EQ(recorded_versions(), std::set<int>{});
}

TEST_F(Migrate, AnExistingColumnOfAnotherTypeIsRefused) {
  ASSERT_TRUE(session_);
  ddl(create_keyspace_cql(cfg_));
  ddl("CREATE TABLE " + cfg_.keyspace + ".comments (id uuid PRIMARY KEY, version text)");
  auto out = migrate(*session_, cfg_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("comments.version exists as regular text, expected regular bigint"), std::string::npos)
      << out.error().message;
  EXPECT_LT(*read_schema_version(*session_, cfg_), latest_schema_version());
}

}  // namespace
}  // namespace commentd::store::cql

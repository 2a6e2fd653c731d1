// V1 rows on a real Cassandra (COMMENTD_TEST_CQL=host:port): a row written as the old service
// did (null version) reads as version 1 with its reply fields derived, is editable through
// CqlStore (`IF version = null`) exactly once per version, and `run_backfill` gives it the
// same first version, then leaves an edited row alone. The full backfill (kill -9, resume,
// --verify) is tests/e2e/test_cql_backfill.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>

#include "bridge/testing.h"
#include "store/cql/backfill.h"
#include "store/cql/cql_internal.h"
#include "store/cql/cql_store.h"
#include "store/cql/migrate.h"
#include "testing/run_sync.h"
#include "testing/test_servers.h"

namespace commentd::store::cql {
namespace {

using namespace std::chrono_literals;
using bridge::testing::wait;

Result<CommitResult> commit_sync(Store& s, WriteSet ws) {
  std::promise<Result<CommitResult>> p;
  auto f = p.get_future();
  s.commit(std::move(ws), [&p](Result<CommitResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

class V1Rows : public ::testing::Test {
 protected:
  void SetUp() override {
    COMMENTD_TEST_SERVER(addr, "COMMENTD_TEST_CQL");
    auto rt = bridge::Runtime::create(2);
    ASSERT_TRUE(rt.ok()) << rt.error().message;
    rt_ = std::move(*rt);
    static std::atomic<int> counter{0};
    cfg_.hosts = {addr};
    cfg_.request_timeout = 60s;
    cfg_.keyspace = "backfill_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    auto s = connect_cql(*rt_, cfg_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    session_ = std::move(*s);
    auto m = migrate(*session_, cfg_);
    ASSERT_TRUE(m.ok()) << m.error().message;
    CqlStoreOptions o;
    o.cql = cfg_;
    auto st = CqlStore::open(*rt_, o);
    ASSERT_TRUE(st.ok()) << st.error().message;
    store_ = std::move(*st);
  }
  void TearDown() override {
    if (store_) store_->close();
    store_.reset();
    if (session_) query("DROP KEYSPACE IF EXISTS " + cfg_.keyspace);
  }
  bridge::Rows query(const std::string& cql) {
    auto r = wait<bridge::Rows>([&](auto h) { session_->query(cql, 60s, std::move(h)); });
    if (!r.ok()) throw std::runtime_error(cql + ": " + r.error().message);
    return std::move(*r);
  }
  // A V1 row as the old service wrote it: no version, no reply_to/depth/edited.
  void insert_v1(const std::string& id, const std::string& parent) {
    query("INSERT INTO " + cfg_.keyspace +
          ".comments (id, video_id, user_id, content, created_at, updated_at, parent_id, status) VALUES (" + id +
          ", " + kVideo + ", " + kUser + ", 'v1', 1600000000000, 1600000000000, " + parent + ", 'visible')");
  }
  Comment get(const std::string& id) {
    auto c = testing::run_sync(store_->get_comment(*Uuid::parse(id), Deadline::never()));
    EXPECT_TRUE(c.ok() && c->has_value());
    return c.ok() && c->has_value() ? **c : Comment{};
  }
  Result<CommitResult> edit(Comment c, uint64_t expected, const std::string& content) {
    c.content = content;
    c.edited = true;
    c.version = expected + 1;
    WriteSet ws;
    ws.preconditions.push_back(CommentAt{c.id, expected});
    ws.mutations.push_back(PutComment{c});
    return commit_sync(*store_, std::move(ws));
  }
  int64_t version_of(const std::string& id) {
    auto r = query("SELECT version FROM " + cfg_.keyspace + ".comments WHERE id = " + id);
    auto v = r.i64(0, 0);
    return v.ok() && v->has_value() ? **v : -1;  // -1: null
  }

  static constexpr const char* kVideo = "00000000-0000-4000-8000-0000000000a1";
  static constexpr const char* kUser = "00000000-0000-4000-8000-0000000000b1";
  static constexpr const char* kTop = "00000000-0000-4000-8000-000000000001";
  static constexpr const char* kReply = "00000000-0000-4000-8000-000000000002";
  static constexpr const char* kOther = "00000000-0000-4000-8000-000000000003";
  std::unique_ptr<bridge::Runtime> rt_;
  config::CqlConfig cfg_;
  std::unique_ptr<bridge::CqlSession> session_;
  std::unique_ptr<CqlStore> store_;
};

TEST_F(V1Rows, NullVersionReadsAsOneAndIsEditableOncePerVersion) {
  insert_v1(kTop, "null");
  insert_v1(kReply, kTop);
  Comment top = get(kTop), reply = get(kReply);
  EXPECT_EQ(top.version, 1u);
  EXPECT_FALSE(top.reply_to);
  EXPECT_EQ(top.depth, 0u);
  EXPECT_EQ(reply.version, 1u);
  ASSERT_TRUE(reply.reply_to);
  EXPECT_EQ(reply.reply_to->str(), kTop);
  EXPECT_EQ(reply.depth, 1u);

  ASSERT_TRUE(edit(reply, 1, "first").ok());
  EXPECT_EQ(version_of(kReply), 2);
  Comment after = get(kReply);
  EXPECT_EQ(after.content, "first");
  EXPECT_EQ(after.version, 2u);
  ASSERT_TRUE(after.reply_to);  // the edit wrote the derived fields it read
  EXPECT_EQ(after.depth, 1u);
  // A second writer that read the same V1 row loses: the row is at version 2 now.
  auto stale = edit(reply, 1, "second");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Errc::conflict);
  EXPECT_EQ(get(kReply).content, "first");
  // A wrong version on a V1 row is a conflict too, not an edit.
  auto wrong = edit(top, 2, "x");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, Errc::conflict);
  EXPECT_EQ(version_of(kTop), -1);
}

TEST_F(V1Rows, BackfillSetsTheFirstVersionAndLeavesAnEditedRowAlone) {
  insert_v1(kTop, "null");
  insert_v1(kReply, kTop);
  insert_v1(kOther, "null");
  ASSERT_TRUE(edit(get(kOther), 1, "edited first").ok());  // version 2 before the backfill
  BackfillOptions o;
  o.ranges = 4;
  auto out = run_backfill(*rt_, cfg_, o);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->comments, 3u);
  EXPECT_EQ(out->videos, 1u);
  EXPECT_EQ(out->versions_set, 2u);
  EXPECT_EQ(version_of(kTop), 1);
  EXPECT_EQ(version_of(kReply), 1);
  EXPECT_EQ(version_of(kOther), 2);
  EXPECT_EQ(get(kOther).content, "edited first");
  auto r = query("SELECT reply_to, depth FROM " + cfg_.keyspace + ".comments WHERE id = " + kReply);
  EXPECT_EQ(from_cql(**r.uuid(0, 0)).str(), kTop);
  EXPECT_EQ(**r.i64(0, 1), 1);
  // The parent's replies_count and the video's comments_count are recounts: the V1
  // `replies` index is empty here, so 0 replies; 3 visible comments in the video's buckets.
  auto stats = testing::run_sync(store_->get_video_stats(*Uuid::parse(kVideo), Deadline::never()));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->comments_count, 3);
  // Run again: everything is done, nothing moves.
  auto again = run_backfill(*rt_, cfg_, o);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->comments, 0u);
  EXPECT_EQ(again->ranges_skipped, 8);
}

}  // namespace
}  // namespace commentd::store::cql

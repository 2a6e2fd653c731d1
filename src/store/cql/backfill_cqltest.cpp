// V1 rows on a real Cassandra (COMMENTD_TEST_CQL=host:port): a row written as the old service
// did (null version) reads as version 1 with its reply fields derived, is editable through
// CqlStore (`IF version = null`) exactly once per version, and `run_backfill` gives it the
// same first version, then leaves an edited row alone. The full backfill (kill -9, resume,
// --verify) is tests/e2e/test_cql_backfill.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>

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
  EXPECT_EQ(again->ranges_skipped, 12);  // 3 phases of 4 ranges
}

// Schema step 10 folds a user's view of a video (user_hidden's hidden comments and its
// read-your-writes mark) into the user's user_reactions partition. A keyspace made from
// scratch has the fold marker from migrate. One upgraded from version 9 has neither the
// marker nor the fold of what the previous release wrote: its nodes read both tables and
// write both; backfill's user_view phase copies user_hidden and sets the marker; each node
// sees it beside a read within fold_poll and reads user_reactions alone from then on, with
// the same answers.
TEST_F(V1Rows, TheUsersViewIsFoldedByBackfillAndReadFromTheFoldOnceTheMarkerIsSet) {
  EXPECT_TRUE(store_->user_view_folded()) << "migrate from scratch sets the marker";
  const std::string ks = cfg_.keyspace + ".", vu = std::string(kVideo) + ", " + kUser;
  const Uuid video = *Uuid::parse(kVideo), user = *Uuid::parse(kUser);
  const Uuid top = *Uuid::parse(kTop), reply = *Uuid::parse(kReply), other = *Uuid::parse(kOther);
  const int64_t until = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count() + 3'600'000;
  // As the previous release left it: no marker, the view in user_hidden alone, and another
  // user's mark already past (of no use to a read: not copied).
  query("DELETE FROM " + ks + "backfill_progress WHERE job = 'cluster'");
  query("INSERT INTO " + ks + "user_hidden (video_id, user_id, comment_id) VALUES (" + vu + ", " + kTop + ")");
  query("UPDATE " + ks + "user_hidden USING TIMESTAMP " + std::to_string(until * 1000) +
        " SET recent_until = " + std::to_string(until) + " WHERE video_id = " + kVideo + " AND user_id = " + kUser);
  query("UPDATE " + ks + "user_hidden SET recent_until = 1000 WHERE video_id = " + kVideo +
        " AND user_id = 00000000-0000-4000-8000-0000000000b2");
  CqlStoreOptions o;
  o.cql = cfg_;
  o.fold_poll = 100ms;
  auto opened = CqlStore::open(*rt_, o);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& node = **opened;
  EXPECT_FALSE(node.user_view_folded());
  auto reads_of = [&](const char* statement) {
    uint64_t n = 0;
    node.statement_metrics().each([&](const std::string& label, const bridge::CqlMetrics::Statement& st) {
      if (label == statement)
        for (auto& c : st.outcomes) n += c.load();
    });
    return n;
  };
  auto check = [&](bool hidden, std::vector<std::pair<Uuid, ReactionType>> reactions) {
    auto v = testing::run_sync(node.get_view_and_reactions(video, user, Deadline::after(10s)));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->view.hidden, hidden);
    EXPECT_EQ(v->view.recent_until, until);
    ASSERT_TRUE(v->reactions.has_value());
    EXPECT_EQ(*v->reactions, reactions);
  };
  auto commit = [&](std::vector<Mutation> muts) {
    WriteSet ws;
    ws.mutations = std::move(muts);
    auto r = commit_sync(node, std::move(ws));
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  check(true, {});
  EXPECT_GT(reads_of("SELECT user_hidden"), 0u);

  // This release writes both tables.
  commit({HiddenMark{video, user, other, true}, UserReactionPut{video, user, reply, ReactionType::like, 5000, 1}});
  auto fold = [&] {
    std::map<std::string, bool> hidden;
    auto r = query("SELECT comment_id, hidden FROM " + ks + "user_reactions WHERE video_id = " + kVideo +
                   " AND user_id = " + kUser);
    for (size_t i = 0; i < r.size(); ++i)
      if (auto h = r.boolean(i, 1); h.ok() && h->has_value()) hidden[from_cql(**r.uuid(i, 0)).str()] = **h;
    return hidden;
  };
  EXPECT_EQ(fold(), (std::map<std::string, bool>{{kOther, true}}));
  // The previous release, still serving during the roll, reads these partitions with its own
  // statement and refuses a row without a comment_id (it answered 500s when the mark was a
  // static column: a partition holding only the mark, as an author's first comment leaves).
  const std::string author = "00000000-0000-4000-8000-0000000000b3";
  commit({RecentWrite{video, *Uuid::parse(author), until}});
  for (const std::string& u : {std::string(kUser), author}) {
    auto previous = query("SELECT comment_id, type, WRITETIME(type) FROM " + ks + "user_reactions WHERE video_id = " +
                          kVideo + " AND user_id = " + u);
    EXPECT_GT(previous.size(), 0u) << u;
    for (size_t i = 0; i < previous.size(); ++i) EXPECT_TRUE(previous.uuid(i, 0)->has_value()) << u << " row " << i;
  }
  EXPECT_EQ(query("SELECT comment_id FROM " + ks + "user_hidden WHERE video_id = " + kVideo + " AND user_id = " +
                  kUser).size(), 2u);

  // The backfill's user_view phase copies the previous release's rows, then sets the marker.
  insert_v1(kReply, "null");  // a V1 row: the upgrade's phase alone leaves it to the V1 phases
  BackfillOptions b;
  b.ranges = 4;
  b.phase = "user_view";
  auto out = run_backfill(*rt_, cfg_, b);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->user_view_rows, 4u);  // two hidden comments, two other users' marks alone
  EXPECT_EQ(out->comments, 0u);
  EXPECT_EQ(version_of(kReply), -1);
  EXPECT_EQ(fold(), (std::map<std::string, bool>{{kTop, true}, {kOther, true}}));
  auto marks = query("SELECT recent_until FROM " + ks + "user_reactions WHERE video_id = " + kVideo +
                     " AND user_id = 00000000-0000-4000-8000-0000000000b2");
  EXPECT_EQ(marks.size(), 0u) << "a past mark is not copied";

  // The node polls the marker beside a read it makes anyway, then reads the fold alone.
  std::this_thread::sleep_for(150ms);
  check(true, {{reply, ReactionType::like}});
  EXPECT_TRUE(node.user_view_folded());
  const uint64_t split_reads = reads_of("SELECT user_hidden");
  check(true, {{reply, ReactionType::like}});
  EXPECT_EQ(reads_of("SELECT user_hidden"), split_reads);

  // Unhidden after the fold: gone from both tables, and from the view.
  commit({HiddenMark{video, user, top, false}, HiddenMark{video, user, other, false}});
  check(false, {{reply, ReactionType::like}});
  EXPECT_EQ(fold(), (std::map<std::string, bool>{}));
  EXPECT_EQ(query("SELECT comment_id FROM " + ks + "user_hidden WHERE video_id = " + kVideo + " AND user_id = " +
                  kUser).size(), 1u) << "the static mark's row alone";
  node.close();
}

}  // namespace
}  // namespace commentd::store::cql

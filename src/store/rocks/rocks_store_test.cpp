#include "store/rocks/rocks_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <set>
#include <tuple>
#include <thread>
#include <vector>

namespace commentd::store::rocks {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();  // "Test/0" for parameterized tests: keep one level
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = fs::temp_directory_path() /
            ("commentd_rocks_test_" + std::to_string(::getpid()) + "_" + name + "_" +
             std::to_string(n++));
    fs::remove_all(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

Uuid uid(uint8_t tag, uint32_t n) {
  Uuid u;
  u.bytes[0] = tag;
  u.bytes[12] = static_cast<uint8_t>(n >> 24);
  u.bytes[13] = static_cast<uint8_t>(n >> 16);
  u.bytes[14] = static_cast<uint8_t>(n >> 8);
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

const Uuid kVideo = uid(0xF0, 1);
const Uuid kOtherVideo = uid(0xF0, 2);
const Uuid kUser = uid(0xA0, 1);

Comment make_comment(const Uuid& id, const Uuid& video, TimeMs created_at,
                     std::optional<Uuid> parent = std::nullopt) {
  Comment c;
  c.id = id;
  c.video_id = video;
  c.user_id = kUser;
  c.parent_id = parent;
  c.reply_to = parent;
  c.depth = parent ? 1 : 0;
  c.content = "comment " + id.str();
  c.created_at = created_at;
  c.updated_at = created_at;
  return c;
}

Result<CommitResult> commit_sync(Store& s, WriteSet ws) {
  std::promise<Result<CommitResult>> p;
  auto f = p.get_future();
  s.commit(std::move(ws), [&p](Result<CommitResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

// A WriteSet creating a top-level comment (must not exist yet) with its index entry.
WriteSet create_ws(const Comment& c) {
  WriteSet ws;
  ws.preconditions.push_back(CommentAt{c.id, 0});
  ws.mutations.push_back(PutComment{c});
  if (c.parent_id)
    ws.mutations.push_back(IndexPut{Index::replies, *c.parent_id, c.created_at, c.id});
  else
    ws.mutations.push_back(IndexPut{Index::video, c.video_id, c.created_at, c.id});
  return ws;
}

ReactionOp make_op(uint32_t n, const Uuid& comment, const Uuid& user, ReactionType t, TimeMs ts) {
  ReactionOp op;
  op.op_id = uid(0x0F, n);
  op.comment_id = comment;
  op.video_id = kVideo;
  op.user_id = user;
  op.type = t;
  op.timestamp = ts;
  op.node_id = 3;
  return op;
}

class RocksStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(size_t queue_capacity = 10000) {
    RocksOptions o;
    o.data_dir = dir_.str();
    o.block_cache_mb = 8;
    o.sync_writes = false;
    o.write_queue_capacity = queue_capacity;
    auto s = RocksStore::open(o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->ready());
  }
  void reopen(size_t queue_capacity = 10000) {
    store_->close();
    store_.reset();
    open(queue_capacity);
  }
  void put(const Comment& c) {
    auto r = commit_sync(*store_, create_ws(c));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  std::vector<Uuid> scan_ids(const ScanRequest& req) {
    auto r = store_->scan(req, {});
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<Uuid> out;
    if (r.ok())
      for (auto& c : r->rows) out.push_back(c.id);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<RocksStore> store_;
};

TEST_F(RocksStoreTest, PutAndGetComment) {
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  c.content = "hello \xf0\x9f\x98\x80";
  c.edited = true;
  c.status = CommentStatus::pending;
  put(c);
  auto got = store_->get_comment(c.id, {});
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->content, c.content);
  EXPECT_EQ((*got)->video_id, kVideo);
  EXPECT_EQ((*got)->status, CommentStatus::pending);
  EXPECT_TRUE((*got)->edited);
  EXPECT_EQ((*got)->created_at, 1000);

  // Not found is an empty answer, not an error.
  auto missing = store_->get_comment(uid(1, 99), {});
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

class ScanTest : public RocksStoreTest {
 protected:
  // 21 comments of kVideo over 8 distinct timestamps (ties broken by id), 5 of another video
  // and 4 replies: `expected` is newest-first.
  void SetUp() override {
    RocksStoreTest::SetUp();
    std::mt19937_64 rng(17);
    std::vector<Comment> mine;
    for (uint32_t i = 0; i < 21; ++i) {
      Uuid id = uid(0x01, static_cast<uint32_t>(rng() % 1'000'000) * 32 + i);
      mine.push_back(make_comment(id, kVideo, 5000 + static_cast<TimeMs>(rng() % 8)));
    }
    for (auto& c : mine) put(c);
    for (uint32_t i = 0; i < 5; ++i) put(make_comment(uid(0x02, i), kOtherVideo, 5003));
    for (uint32_t i = 0; i < 4; ++i) put(make_comment(uid(0x03, i), kVideo, 5004, mine[0].id));
    std::sort(mine.begin(), mine.end(), [](const Comment& a, const Comment& b) {
      return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
    });
    for (auto& c : mine) expected.push_back(c.id);
  }
  std::vector<Uuid> expected;  // kVideo's top-level comments, newest first
};

TEST_F(ScanTest, NewestAndOldestOrder) {
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 100;
  req.sort = SortOrder::newest;
  EXPECT_EQ(scan_ids(req), expected);
  req.sort = SortOrder::oldest;
  std::vector<Uuid> rev(expected.rbegin(), expected.rend());
  EXPECT_EQ(scan_ids(req), rev);

  auto r = store_->scan(req, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->exhausted);
  ASSERT_TRUE(r->last.has_value());
  EXPECT_EQ(r->last->id, expected.front());
  // Rows are the joined comments, all of this video and top-level.
  for (auto& c : r->rows) {
    EXPECT_EQ(c.video_id, kVideo);
    EXPECT_FALSE(c.parent_id.has_value());
  }
}

TEST_F(ScanTest, PagingWithAfterCursor) {
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
    std::vector<Uuid> want = expected;
    if (sort == SortOrder::oldest) std::reverse(want.begin(), want.end());
    ScanRequest req;
    req.key = kVideo;
    req.sort = sort;
    req.max_rows = 5;
    std::vector<Uuid> got;
    int pages = 0;
    for (;;) {
      auto r = store_->scan(req, {});
      ASSERT_TRUE(r.ok()) << r.error().message;
      ++pages;
      ASSERT_LE(r->rows.size(), 5u);
      for (auto& c : r->rows) {
        // The cursor row itself is never returned again.
        if (req.after) {
          EXPECT_NE(c.id, req.after->id);
        }
        got.push_back(c.id);
      }
      if (r->exhausted) break;
      ASSERT_EQ(r->rows.size(), 5u) << "a non-final page must be full";
      ASSERT_TRUE(r->last.has_value());
      EXPECT_EQ(r->last->id, r->rows.back().id);
      req.after = r->last;
      ASSERT_LT(pages, 10);
    }
    EXPECT_EQ(got, want) << "sort " << static_cast<int>(sort);
    EXPECT_EQ(pages, 5);  // 21 rows: 5+5+5+5+1
  }
}

TEST_F(ScanTest, MaxRowsAndExhausted) {
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 21;
  auto r = store_->scan(req, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.size(), 21u);
  EXPECT_TRUE(r->exhausted);
  req.max_rows = 20;
  r = store_->scan(req, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.size(), 20u);
  EXPECT_FALSE(r->exhausted);
  req.max_rows = 1;
  r = store_->scan(req, {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].id, expected[0]);
  EXPECT_FALSE(r->exhausted);
  // After the very last row: nothing, exhausted.
  req.max_rows = 10;
  auto last = store_->get_comment(expected.back(), {});
  ASSERT_TRUE(last.ok() && last->has_value());
  req.after = CursorPos{(*last)->created_at, expected.back()};
  r = store_->scan(req, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_TRUE(r->exhausted);
  // An empty list is exhausted at once.
  ScanRequest none;
  none.key = uid(0xF0, 77);
  r = store_->scan(none, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_TRUE(r->exhausted);
  EXPECT_FALSE(r->last.has_value());
}

TEST_F(ScanTest, CursorOfADeletedEntryStillPositions) {
  // Paging is by position, so removing the cursor's own row does not lose or repeat rows.
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 10;
  auto first = store_->scan(req, {});
  ASSERT_TRUE(first.ok());
  auto cut = *first->last;
  WriteSet ws;
  ws.mutations.push_back(IndexDelete{Index::video, kVideo, cut.created_at, cut.id});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  req.after = cut;
  EXPECT_EQ(scan_ids(req), std::vector<Uuid>(expected.begin() + 10, expected.begin() + 20));
}

TEST_F(ScanTest, RepliesAndHasEntries) {
  ScanRequest req;
  req.index = Index::replies;
  req.key = expected.back();  // not the parent: no replies
  req.max_rows = 100;
  EXPECT_TRUE(scan_ids(req).empty());

  // Find the parent used in SetUp: the comment whose replies exist.
  int with_replies = 0;
  for (auto& id : expected) {
    auto h = store_->has_entries(Index::replies, id, {});
    ASSERT_TRUE(h.ok());
    if (*h) {
      ++with_replies;
      req.key = id;
      auto ids = scan_ids(req);
      ASSERT_EQ(ids.size(), 4u);
      // Same created_at: id DESC in newest order.
      EXPECT_TRUE(std::is_sorted(ids.rbegin(), ids.rend()));
    }
  }
  EXPECT_EQ(with_replies, 1);
  auto v = store_->has_entries(Index::video, kVideo, {});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(*v);
  v = store_->has_entries(Index::video, uid(0xF0, 55), {});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(*v);
}

TEST_F(RocksStoreTest, HasEntriesFollowsPutAndDelete) {
  const Uuid parent = uid(1, 1);
  auto h = store_->has_entries(Index::replies, parent, {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  Comment r = make_comment(uid(2, 1), kVideo, 10, parent);
  put(r);
  h = store_->has_entries(Index::replies, parent, {});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(*h);
  // A neighbouring key (parent + 1) has none.
  h = store_->has_entries(Index::replies, uid(1, 2), {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  // The video index is separate.
  h = store_->has_entries(Index::video, parent, {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  WriteSet ws;
  ws.mutations.push_back(IndexDelete{Index::replies, parent, r.created_at, r.id});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  h = store_->has_entries(Index::replies, parent, {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
}

TEST_F(RocksStoreTest, HasHidden) {
  const Uuid other_user = uid(0xA0, 2);
  auto h = store_->has_hidden(kVideo, kUser, {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  WriteSet ws;
  ws.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 1), true});
  ws.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 2), true});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  for (auto [video, user, want] : {std::tuple{kVideo, kUser, true},
                                   std::tuple{kVideo, other_user, false},
                                   std::tuple{kOtherVideo, kUser, false}}) {
    auto r = store_->has_hidden(video, user, {});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, want);
  }
  WriteSet unset1;
  unset1.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 1), false});
  ASSERT_TRUE(commit_sync(*store_, std::move(unset1)).ok());
  h = store_->has_hidden(kVideo, kUser, {});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(*h);  // one mark is left
  WriteSet unset2;
  unset2.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 2), false});
  ASSERT_TRUE(commit_sync(*store_, std::move(unset2)).ok());
  h = store_->has_hidden(kVideo, kUser, {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
}

TEST_F(RocksStoreTest, CommentAtVersionPreconditions) {
  Comment c = make_comment(uid(1, 1), kVideo, 100);
  put(c);
  // Creating it again: must-not-exist fails.
  auto again = commit_sync(*store_, create_ws(c));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict);

  // Update at the right version succeeds; at a stale one fails and writes nothing.
  Comment v2 = c;
  v2.content = "v2";
  v2.version = 2;
  WriteSet up;
  up.preconditions.push_back(CommentAt{c.id, 1});
  up.mutations.push_back(PutComment{v2});
  ASSERT_TRUE(commit_sync(*store_, std::move(up)).ok());

  Comment stale = c;
  stale.content = "stale";
  stale.version = 2;
  WriteSet bad;
  bad.preconditions.push_back(CommentAt{c.id, 1});
  bad.mutations.push_back(PutComment{stale});
  bad.mutations.push_back(IndexPut{Index::video, kOtherVideo, 1, c.id});
  bad.mutations.push_back(MetricsDelta{c.id, 1, 0, 0, 5});
  auto r = commit_sync(*store_, std::move(bad));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  auto got = store_->get_comment(c.id, {});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->content, "v2");
  auto h = store_->has_entries(Index::video, kOtherVideo, {});
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  auto m = store_->get_metrics({c.id}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, 0);
}

// Holds the writer thread inside a commit callback while `fn` queues more commits, so they
// are all taken by the writer as one group when the callback returns.
void with_writer_held(Store& s, const std::function<void()>& fn) {
  std::promise<void> done;
  auto f = done.get_future();
  s.commit(WriteSet{}, [&](Result<CommitResult> r) {
    EXPECT_TRUE(r.ok());
    fn();
    done.set_value();
  });
  f.get();
}

TEST_F(RocksStoreTest, FailedPreconditionRollsBackOnlyItsWriteSetInAGroup) {
  std::vector<std::future<Result<CommitResult>>> futs;
  std::vector<std::shared_ptr<std::promise<Result<CommitResult>>>> proms;
  std::vector<bool> should_fail;
  const Uuid shared = uid(0x11, 0);  // a counter row every WriteSet adds to
  auto queue = [&](WriteSet ws, bool fail) {
    auto p = std::make_shared<std::promise<Result<CommitResult>>>();
    futs.push_back(p->get_future());
    proms.push_back(p);
    should_fail.push_back(fail);
    store_->commit(std::move(ws), [p](Result<CommitResult> r) { p->set_value(std::move(r)); });
  };
  with_writer_held(*store_, [&] {
    for (uint32_t i = 0; i < 20; ++i) {
      Comment c = make_comment(uid(1, i), kVideo, 1000 + i);
      WriteSet ws = create_ws(c);
      ws.mutations.push_back(MetricsDelta{shared, 1, 0, 0, 1000 + i});
      ws.mutations.push_back(AppendReactionOp{make_op(i, c.id, kUser, ReactionType::like, 1)});
      ws.mutations.push_back(HiddenMark{kVideo, uid(0xA0, 100 + i), c.id, true});
      bool fail = i % 3 == 1;
      if (fail) ws.preconditions.push_back(CommentAt{uid(1, 500), 7});  // never at version 7
      queue(std::move(ws), fail);
    }
    // Within the group: the second create of the same id sees the first one's write.
    queue(create_ws(make_comment(uid(1, 0), kVideo, 1)), true);
  });
  int ok = 0;
  std::vector<uint64_t> seqs;
  for (size_t i = 0; i < futs.size(); ++i) {
    auto r = futs[i].get();
    if (should_fail[i]) {
      ASSERT_FALSE(r.ok()) << i;
      EXPECT_EQ(r.error().code, Errc::conflict);
    } else {
      ASSERT_TRUE(r.ok()) << i << ": " << r.error().message;
      ASSERT_EQ(r->op_seqs.size(), 1u);
      seqs.push_back(r->op_seqs[0]);
      ++ok;
    }
  }
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::set<uint64_t>(seqs.begin(), seqs.end()).size(), seqs.size());
  for (uint32_t i = 0; i < 20; ++i) {
    bool fail = i % 3 == 1;
    auto got = store_->get_comment(uid(1, i), {});
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->has_value(), !fail) << i;
    auto hidden = store_->has_hidden(kVideo, uid(0xA0, 100 + i), {});
    ASSERT_TRUE(hidden.ok());
    EXPECT_EQ(*hidden, !fail) << i;
  }
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 100;
  EXPECT_EQ(scan_ids(req).size(), static_cast<size_t>(ok));
  auto m = store_->get_metrics({shared}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, ok);
  auto ops = store_->read_ops(0, 1000);
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ(ops->size(), static_cast<size_t>(ok));
  for (auto& op : *ops) EXPECT_NE(op.op_id.bytes[15] % 3, 1) << "a rolled-back op was logged";
  EXPECT_EQ(store_->last_op_seq(), seqs.back());
}

TEST_F(RocksStoreTest, ConcurrentCommitsWithSomeFailingPreconditions) {
  constexpr int kThreads = 6, kPer = 60;
  const Uuid shared = uid(0x11, 0);
  std::atomic<int> ok{0}, conflicts{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<std::future<Result<CommitResult>>> futs;
      std::vector<std::shared_ptr<std::promise<Result<CommitResult>>>> keep;
      for (int i = 0; i < kPer; ++i) {
        uint32_t n = static_cast<uint32_t>(t * 1000 + i);
        Comment c = make_comment(uid(1, n), kVideo, 1000 + i);
        WriteSet ws = create_ws(c);
        ws.mutations.push_back(MetricsDelta{shared, 1, 0, 0, 1});
        ws.mutations.push_back(AppendReactionOp{make_op(n, c.id, kUser, ReactionType::like, 1)});
        if (i % 4 == 3) ws.preconditions.push_back(CommentAt{uid(0x22, n), 3});
        auto p = std::make_shared<std::promise<Result<CommitResult>>>();
        futs.push_back(p->get_future());
        keep.push_back(p);
        store_->commit(std::move(ws), [p](Result<CommitResult> r) { p->set_value(std::move(r)); });
      }
      for (int i = 0; i < kPer; ++i) {
        auto r = futs[i].get();
        bool should_fail = i % 4 == 3;
        if (r.ok() && !should_fail) ++ok;
        else if (!r.ok() && should_fail && r.error().code == Errc::conflict) ++conflicts;
        else ++other;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load(), kThreads * kPer * 3 / 4);
  EXPECT_EQ(conflicts.load(), kThreads * kPer / 4);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPer; ++i) {
      auto got = store_->get_comment(uid(1, static_cast<uint32_t>(t * 1000 + i)), {});
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(got->has_value(), i % 4 != 3);
    }
  auto m = store_->get_metrics({shared}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, ok.load());
  auto ops = store_->read_ops(0, 100000);
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ(ops->size(), static_cast<size_t>(ok.load()));
  for (size_t i = 1; i < ops->size(); ++i) EXPECT_LT((*ops)[i - 1].seq, (*ops)[i].seq);
}

TEST_F(RocksStoreTest, CounterDeltasAddAndLastUpdatedTakesMax) {
  const Uuid c1 = uid(1, 1), c2 = uid(1, 2);
  {
    WriteSet ws;
    ws.mutations.push_back(MetricsDelta{c1, 3, 1, 2, 500});
    ws.mutations.push_back(MetricsDelta{c1, 2, 0, -1, 900});  // same key, same batch
    ws.mutations.push_back(StatsDelta{kVideo, 4, 7, 800});
    ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  }
  {
    WriteSet ws;
    ws.mutations.push_back(MetricsDelta{c1, -1, 4, 0, 100});  // older: last_updated stays 900
    ws.mutations.push_back(MetricsDelta{c2, 1, 0, 0, 50});
    ws.mutations.push_back(StatsDelta{kVideo, -1, 2, 700});
    ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  }
  auto check = [&] {
    auto m = store_->get_metrics({c1, c2, uid(1, 3)}, {});
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->size(), 3u);
    EXPECT_EQ((*m)[0].likes, 4);
    EXPECT_EQ((*m)[0].dislikes, 5);
    EXPECT_EQ((*m)[0].replies_count, 1);
    EXPECT_EQ((*m)[0].last_updated, 900);
    EXPECT_EQ((*m)[1].likes, 1);
    EXPECT_EQ((*m)[1].last_updated, 50);
    EXPECT_EQ((*m)[2].likes, 0);  // never written: zeros
    EXPECT_EQ((*m)[2].last_updated, 0);
    auto v = store_->get_video_stats(kVideo, {});
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->comments_count, 3);
    EXPECT_EQ(v->reactions_count, 9);
    EXPECT_EQ(v->last_updated, 800);
  };
  check();
  reopen();  // the merge operator is applied to what was persisted too
  check();
  // An absolute set replaces the merged value; later deltas add to it.
  {
    WriteSet ws;
    ws.mutations.push_back(MetricsSet{c1, CommentMetrics{10, 20, 30, 40}});
    ws.mutations.push_back(MetricsDelta{c1, 1, 1, 1, 35});
    ws.mutations.push_back(StatsSet{kVideo, VideoStats{1, 2, 3}});
    ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  }
  auto m = store_->get_metrics({c1}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, 11);
  EXPECT_EQ((*m)[0].dislikes, 21);
  EXPECT_EQ((*m)[0].replies_count, 31);
  EXPECT_EQ((*m)[0].last_updated, 40);
  auto v = store_->get_video_stats(kVideo, {});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->comments_count, 1);
  EXPECT_EQ(v->reactions_count, 2);
  EXPECT_EQ(v->last_updated, 3);
  auto none = store_->get_video_stats(kOtherVideo, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->comments_count, 0);
}

TEST_F(RocksStoreTest, AppendReactionOpAssignsIncreasingSeqsAcrossReopen) {
  EXPECT_EQ(store_->last_op_seq(), 0u);
  std::vector<uint64_t> seqs;
  std::vector<ReactionOp> appended;
  uint32_t n = 0;
  for (int round = 0; round < 3; ++round) {
    WriteSet ws;
    for (int k = 0; k < 2; ++k) {
      ++n;
      auto op = make_op(n, uid(1, n % 2), uid(0xA0, n), ReactionType::dislike, 100 + n);
      appended.push_back(op);
      ws.mutations.push_back(AppendReactionOp{op});
    }
    auto r = commit_sync(*store_, std::move(ws));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->op_seqs.size(), 2u);
    seqs.insert(seqs.end(), r->op_seqs.begin(), r->op_seqs.end());
  }
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]);
  EXPECT_EQ(store_->last_op_seq(), seqs.back());

  auto all = store_->read_ops(0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), appended.size());
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].seq, seqs[i]);
    EXPECT_EQ((*all)[i].op_id, appended[i].op_id);
    EXPECT_EQ((*all)[i].user_id, appended[i].user_id);
    EXPECT_EQ((*all)[i].type, ReactionType::dislike);
    EXPECT_EQ((*all)[i].timestamp, appended[i].timestamp);
    EXPECT_EQ((*all)[i].node_id, 3u);
  }
  auto mid = store_->read_ops(seqs[1], 2);  // strictly after, at most 2
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->size(), 2u);
  EXPECT_EQ((*mid)[0].seq, seqs[2]);
  EXPECT_EQ((*mid)[1].seq, seqs[3]);
  auto tail = store_->read_ops(seqs.back(), 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(tail->empty());

  reopen();
  EXPECT_EQ(store_->last_op_seq(), seqs.back());
  WriteSet ws;
  ws.mutations.push_back(AppendReactionOp{make_op(++n, uid(1, 1), kUser, ReactionType::like, 1)});
  auto r = commit_sync(*store_, std::move(ws));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->op_seqs.size(), 1u);
  EXPECT_GT(r->op_seqs[0], seqs.back());
  auto after = store_->read_ops(0, 100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), appended.size() + 1);
}

TEST_F(RocksStoreTest, ConsumerPositionAndPrecondition) {
  const std::string c = "test-consumer";
  auto p = store_->consumer_pos(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 0u);

  auto move = [&](uint64_t from, uint64_t to) {
    WriteSet ws;
    ws.preconditions.push_back(ConsumerAt{c, from});
    ws.mutations.push_back(SetConsumerPos{c, to});
    ws.mutations.push_back(MetricsDelta{uid(1, 1), 1, 0, 0, 0});
    return commit_sync(*store_, std::move(ws));
  };
  ASSERT_TRUE(move(0, 5).ok());
  p = store_->consumer_pos(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 5u);
  auto stale = move(0, 9);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Errc::conflict);
  p = store_->consumer_pos(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 5u);
  ASSERT_TRUE(move(5, 12).ok());
  auto other = store_->consumer_pos("someone-else");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, 0u);
  auto m = store_->get_metrics({uid(1, 1)}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, 2);  // the stale move wrote nothing
  reopen();
  p = store_->consumer_pos(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 12u);
}

TEST_F(RocksStoreTest, RecountCommentFindsInjectedDrift) {
  const Uuid cid = uid(1, 1);
  put(make_comment(cid, kVideo, 100));
  // Truth: 3 likes, 2 dislikes, 1 tombstone; 2 visible replies and 1 hidden one.
  WriteSet ws;
  for (uint32_t u = 0; u < 6; ++u) {
    ReactionType t = u < 3 ? ReactionType::like : u < 5 ? ReactionType::dislike : ReactionType::none;
    ws.mutations.push_back(PutReaction{cid, uid(0xA0, u), kVideo, ReactionRow{t, 10, 1, uid(0x0F, u)}});
  }
  // A register of another comment must not be counted.
  ws.mutations.push_back(PutReaction{uid(1, 2), uid(0xA0, 0), kVideo, ReactionRow{ReactionType::like, 10, 1, {}}});
  ws.mutations.push_back(MetricsDelta{cid, 3, 2, 2, 77});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  put(make_comment(uid(2, 1), kVideo, 200, cid));
  put(make_comment(uid(2, 2), kVideo, 201, cid));
  Comment hidden = make_comment(uid(2, 3), kVideo, 202, cid);
  hidden.status = CommentStatus::hidden;
  put(hidden);

  auto r = store_->recount_comment(cid);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->video_id, kVideo);
  EXPECT_EQ((*r)->truth.likes, 3);
  EXPECT_EQ((*r)->truth.dislikes, 2);
  EXPECT_EQ((*r)->truth.replies_count, 2);
  EXPECT_EQ((*r)->stored.likes, (*r)->truth.likes);
  EXPECT_EQ((*r)->stored.dislikes, (*r)->truth.dislikes);
  EXPECT_EQ((*r)->stored.replies_count, (*r)->truth.replies_count);

  WriteSet drift;
  drift.mutations.push_back(MetricsDelta{cid, 5, -1, 3, 78});
  ASSERT_TRUE(commit_sync(*store_, std::move(drift)).ok());
  r = store_->recount_comment(cid);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->truth.likes, 3);
  EXPECT_EQ((*r)->stored.likes, 8);
  EXPECT_EQ((*r)->stored.dislikes, 1);
  EXPECT_EQ((*r)->stored.replies_count, 5);
  EXPECT_EQ((*r)->stored.last_updated, 78);

  auto none = store_->recount_comment(uid(1, 99));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(RocksStoreTest, GetReactionsAndRegisters) {
  const Uuid c1 = uid(1, 1), c2 = uid(1, 2), c3 = uid(1, 3);
  const Uuid u2 = uid(0xA0, 2);
  WriteSet ws;
  ws.mutations.push_back(PutReaction{c1, kUser, kVideo, ReactionRow{ReactionType::like, 11, 1, uid(0x0F, 1)}});
  ws.mutations.push_back(PutReaction{c2, kUser, kVideo, ReactionRow{ReactionType::none, 12, 2, uid(0x0F, 2)}});
  ws.mutations.push_back(PutReaction{c3, u2, kVideo, ReactionRow{ReactionType::dislike, 13, 3, uid(0x0F, 3)}});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());

  auto r = store_->get_reactions(kVideo, kUser, {c1, c2, c3}, {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], ReactionType::like);
  EXPECT_EQ((*r)[1], ReactionType::none);  // tombstone
  EXPECT_EQ((*r)[2], ReactionType::none);  // someone else's reaction
  auto other_video = store_->get_reactions(uid(0xB0, 1), kUser, {c1}, {});
  ASSERT_TRUE(other_video.ok());
  EXPECT_EQ((*other_video)[0], ReactionType::none) << "reactions are looked up within the video";

  // A user with more reactions in the video than one scan reads is answered by point reads.
  WriteSet many;
  for (uint32_t i = 0; i < 100; ++i)
    many.mutations.push_back(PutReaction{uid(3, i), kUser, kVideo, ReactionRow{ReactionType::dislike, 20, 1, uid(0x0E, i)}});
  ASSERT_TRUE(commit_sync(*store_, std::move(many)).ok());
  auto lots = store_->get_reactions(kVideo, kUser, {uid(3, 99), c1, uid(3, 0), c3}, {});
  ASSERT_TRUE(lots.ok());
  EXPECT_EQ((*lots)[0], ReactionType::dislike);
  EXPECT_EQ((*lots)[1], ReactionType::like);
  EXPECT_EQ((*lots)[2], ReactionType::dislike);
  EXPECT_EQ((*lots)[3], ReactionType::none);

  auto g = store_->get_registers({{c3, u2}, {c1, kUser}, {c1, u2}});
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ((*g)[0].type, ReactionType::dislike);
  EXPECT_EQ((*g)[0].node_id, 3u);
  EXPECT_EQ((*g)[1].type, ReactionType::like);
  EXPECT_EQ((*g)[2].timestamp, 0);

  auto empty = store_->get_reactions(kVideo, kUser, {}, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(RocksStoreTest, NonBlockingReadsOfMemtableData) {
  Comment c = make_comment(uid(1, 1), kVideo, 100);
  put(c);
  WriteSet ws;
  ws.mutations.push_back(MetricsDelta{c.id, 2, 0, 0, 1});
  ws.mutations.push_back(PutReaction{c.id, kUser, kVideo, ReactionRow{ReactionType::like, 1, 1, {}}});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  const ReadMode nb{.may_block = false};

  auto g = store_->get_comment(c.id, nb);
  ASSERT_TRUE(g.ok()) << g.error().message;  // in the memtable: no I/O needed
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->content, c.content);
  ScanRequest req;
  req.key = kVideo;
  auto s = store_->scan(req, nb);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s->rows.size(), 1u);
  auto m = store_->get_metrics({c.id}, nb);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ((*m)[0].likes, 2);
  auto rx = store_->get_reactions(kVideo, kUser, {c.id}, nb);
  ASSERT_TRUE(rx.ok()) << rx.error().message;
  EXPECT_EQ((*rx)[0], ReactionType::like);
  auto h = store_->has_entries(Index::video, kVideo, nb);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(*h);
}

TEST_F(RocksStoreTest, NonBlockingReadsAfterReopenAnswerOrSayWouldBlock) {
  Comment c = make_comment(uid(1, 1), kVideo, 100);
  put(c);
  reopen();  // the data may now be in an SST file that is not cached
  const ReadMode nb{.may_block = false};
  auto g = store_->get_comment(c.id, nb);
  if (g.ok()) {
    ASSERT_TRUE(g->has_value());
    EXPECT_EQ((*g)->content, c.content);
  } else {
    EXPECT_EQ(g.error().code, Errc::would_block) << g.error().message;
  }
  ScanRequest req;
  req.key = kVideo;
  auto s = store_->scan(req, nb);
  if (s.ok()) {
    EXPECT_EQ(s->rows.size(), 1u);
  } else {
    EXPECT_EQ(s.error().code, Errc::would_block) << s.error().message;
  }
  // A blocking read always answers.
  auto b = store_->get_comment(c.id, {});
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->has_value());
  EXPECT_EQ((*b)->content, c.content);
}

TEST_F(RocksStoreTest, CommitAfterCloseIsUnavailable) {
  store_->close();
  EXPECT_FALSE(store_->ready());
  bool called = false;
  store_->commit(create_ws(make_comment(uid(1, 1), kVideo, 1)), [&](Result<CommitResult> r) {
    called = true;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable);
  });
  EXPECT_TRUE(called);  // answered at once, on the caller's thread
  store_->close();      // idempotent
}

TEST_F(RocksStoreTest, CloseDrainsQueuedCommits) {
  std::vector<std::future<Result<CommitResult>>> futs;
  std::vector<std::shared_ptr<std::promise<Result<CommitResult>>>> keep;
  for (uint32_t i = 0; i < 50; ++i) {
    auto p = std::make_shared<std::promise<Result<CommitResult>>>();
    futs.push_back(p->get_future());
    keep.push_back(p);
    store_->commit(create_ws(make_comment(uid(1, i), kVideo, i)),
                   [p](Result<CommitResult> r) { p->set_value(std::move(r)); });
  }
  store_->close();
  for (auto& f : futs) EXPECT_TRUE(f.get().ok());
  reopen();
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 100;
  EXPECT_EQ(scan_ids(req).size(), 50u);
}

TEST_F(RocksStoreTest, QueueOverflowIsOverloadedDeterministic) {
  reopen(/*queue_capacity=*/2);
  std::vector<Errc> refused;
  std::vector<std::future<Result<CommitResult>>> accepted;
  with_writer_held(*store_, [&] {
    // The writer is busy in this callback, so nothing drains: 2 fit, the rest are refused.
    for (uint32_t i = 0; i < 5; ++i) {
      auto p = std::make_shared<std::promise<Result<CommitResult>>>();
      auto f = p->get_future();
      store_->commit(create_ws(make_comment(uid(1, i), kVideo, i)),
                     [p](Result<CommitResult> r) { p->set_value(std::move(r)); });
      // A refusal is answered before commit() returns; an accepted commit is not answered
      // until the writer is released.
      if (f.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        auto r = f.get();
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, Errc::overloaded);
        EXPECT_GT(r.error().retry_after_s, 0);
        refused.push_back(r.error().code);
      } else {
        accepted.push_back(std::move(f));
      }
    }
  });
  EXPECT_EQ(refused.size(), 3u);
  ASSERT_EQ(accepted.size(), 2u);
  for (auto& f : accepted) EXPECT_TRUE(f.get().ok());
  auto g = store_->get_comment(uid(1, 4), {});
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->has_value());
}

TEST_F(RocksStoreTest, QueueOverflowUnderConcurrentLoad) {
  reopen(/*queue_capacity=*/1);
  constexpr int kThreads = 8, kPer = 200;
  std::atomic<int> ok{0}, overloaded{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      std::vector<std::future<Result<CommitResult>>> futs;
      for (int i = 0; i < kPer; ++i) {
        auto p = std::make_shared<std::promise<Result<CommitResult>>>();
        futs.push_back(p->get_future());
        Comment c = make_comment(uid(1, static_cast<uint32_t>(t * 1000 + i)), kVideo, i);
        store_->commit(create_ws(c), [p](Result<CommitResult> r) { p->set_value(std::move(r)); });
      }
      for (auto& f : futs) {
        auto r = f.get();
        if (r.ok()) ++ok;
        else if (r.error().code == Errc::overloaded) ++overloaded;
        else ++other;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load() + overloaded.load(), kThreads * kPer);
  EXPECT_GT(ok.load(), 0);
  // Exactly the accepted commits were written.
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 100000;
  EXPECT_EQ(scan_ids(req).size(), static_cast<size_t>(ok.load()));
}

TEST_F(RocksStoreTest, ListIdsAndOutbox) {
  WriteSet ws;
  for (uint32_t i = 0; i < 5; ++i) ws.mutations.push_back(MetricsDelta{uid(1, i), 1, 0, 0, 0});
  ws.mutations.push_back(AppendOutbox{"topic-a", "k1", "payload-1"});
  ws.mutations.push_back(AppendOutbox{"topic-b", "k2", "payload-2"});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  auto ids = store_->list_ids(Store::IdTable::comments, std::nullopt, 3);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], uid(1, 0));
  auto rest = store_->list_ids(Store::IdTable::comments, ids->back(), 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0], uid(1, 3));
  auto out = store_->read_outbox(0, 10);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  EXPECT_LT((*out)[0].first, (*out)[1].first);
  EXPECT_NE((*out)[0].second.find("payload-1"), std::string::npos);
}

}  // namespace
}  // namespace commentd::store::rocks

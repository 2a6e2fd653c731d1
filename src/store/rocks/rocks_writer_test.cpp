// RocksStore writes: preconditions, group commit, log sequences, consumer positions, the queue.
#include "testing/run_sync.h"
#include "store/rocks/rocks_store_fixture.h"

namespace commentd::store::rocks {
namespace {

using namespace test;

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
  auto got = commentd::testing::run_sync(store_->get_comment(c.id, {}));
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->content, "v2");
  auto h = commentd::testing::run_sync(store_->has_entries(Index::video, kOtherVideo, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  auto m = commentd::testing::run_sync(store_->get_metrics({c.id}, {}));
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
    auto got = commentd::testing::run_sync(store_->get_comment(uid(1, i), {}));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->has_value(), !fail) << i;
    auto hidden = commentd::testing::run_sync(store_->has_hidden(kVideo, uid(0xA0, 100 + i), {}));
    ASSERT_TRUE(hidden.ok());
    EXPECT_EQ(*hidden, !fail) << i;
  }
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 100;
  EXPECT_EQ(scan_ids(req).size(), static_cast<size_t>(ok));
  auto m = commentd::testing::run_sync(store_->get_metrics({shared}, {}));
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
      auto got = commentd::testing::run_sync(store_->get_comment(uid(1, static_cast<uint32_t>(t * 1000 + i)), {}));
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(got->has_value(), i % 4 != 3);
    }
  auto m = commentd::testing::run_sync(store_->get_metrics({shared}, {}));
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
    auto m = commentd::testing::run_sync(store_->get_metrics({c1, c2, uid(1, 3)}, {}));
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
    auto v = commentd::testing::run_sync(store_->get_video_stats(kVideo, {}));
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->comments_count, 3);
    EXPECT_EQ(v->reactions_count, 9);
    EXPECT_EQ(v->last_updated, 800);
  };
  check();
  reopen();  // the merge operator is applied to what was persisted too
  check();
  auto none = commentd::testing::run_sync(store_->get_video_stats(kOtherVideo, {}));
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
  auto m = commentd::testing::run_sync(store_->get_metrics({uid(1, 1)}, {}));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, 2);  // the stale move wrote nothing
  reopen();
  p = store_->consumer_pos(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 12u);
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
  auto g = commentd::testing::run_sync(store_->get_comment(uid(1, 4), {}));
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

}  // namespace
}  // namespace commentd::store::rocks

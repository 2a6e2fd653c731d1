#include "testing/run_sync.h"
#include "workers/reaction_applier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <tuple>

#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"

namespace commentd::workers {
namespace {

using store::rocks::RocksOptions;
using store::rocks::RocksStore;

Uuid uid(uint8_t tag, uint32_t n) {
  Uuid u;
  u.bytes[0] = tag;
  u.bytes[13] = static_cast<uint8_t>(n >> 16);
  u.bytes[14] = static_cast<uint8_t>(n >> 8);
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

const Uuid kVideo = uid(0xF0, 1);

using commentd::testing::commit_sync;

class ReactionApplierTest : public ::testing::Test {
 protected:
  ~ReactionApplierTest() override {
    applier_.reset();
    store_.reset();
  }

  void SetUp() override {
    open();
    for (uint32_t c = 0; c < 3; ++c) {
      Comment cm;
      cm.id = comment(c);
      cm.video_id = kVideo;
      cm.user_id = uid(0xA0, 999);
      cm.content = "c";
      cm.created_at = 1000 + c;
      store::WriteSet ws;
      ws.mutations.push_back(store::PutComment{cm});
      ws.mutations.push_back(store::IndexPut{store::Index::video, kVideo, cm.created_at, cm.id});
      ws.mutations.push_back(store::BucketPut{kVideo, time_bucket(cm.created_at), cm.created_at, cm.id});
      ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
    }
  }

  void open(size_t batch_size = 1000) {
    RocksOptions o;
    o.data_dir = dir_.str();
    o.block_cache_mb = 8;
    o.sync_writes = false;
    auto s = RocksStore::open(o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    overlay_ = std::make_unique<service::ReactionOverlay>();
    new_applier(batch_size);
  }
  void new_applier(size_t batch_size,
                   std::chrono::milliseconds flush_interval = std::chrono::milliseconds(50)) {
    applier_.reset();
    applier_ = std::make_unique<ReactionApplier>(
        *store_, *overlay_, clock_,
        ApplierOptions{.batch_size = batch_size, .flush_interval = flush_interval});
  }
  void restart(size_t batch_size = 1000) {
    applier_.reset();
    store_->close();
    store_.reset();
    open(batch_size);
  }

  static Uuid comment(uint32_t c) { return uid(0xC0, c); }
  static Uuid user(uint32_t u) { return uid(0xA0, u); }

  // Appends one op durably (as the request path does), then records it in the overlay.
  ReactionOp react(uint32_t c, uint32_t u, ReactionType t, std::optional<TimeMs> ts = {}) {
    ReactionOp op;
    op.op_id = uid(0x0F, ++op_counter_);
    op.comment_id = comment(c);
    op.video_id = kVideo;
    op.user_id = user(u);
    op.type = t;
    op.timestamp = ts ? *ts : clock_.now_ms();
    op.node_id = 1;
    store::WriteSet ws;
    ws.mutations.push_back(store::AppendReactionOp{op});
    auto r = commit_sync(*store_, std::move(ws));
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (r.ok()) {
      EXPECT_EQ(r->op_seqs.size(), 1u);
      op.seq = r->op_seqs.at(0);
      overlay_->put(op);
    }
    clock_.advance_ms(1);
    return op;
  }

  size_t apply_all() {
    size_t total = 0;
    for (int guard = 0; guard < 100'000; ++guard) {
      auto n = applier_->apply_once();
      EXPECT_TRUE(n.ok()) << n.error().message;
      if (!n.ok() || *n == 0) break;
      total += *n;
    }
    return total;
  }

  CommentMetrics metrics(uint32_t c) {
    auto m = commentd::testing::run_sync(store_->get_metrics({comment(c)}, {}));
    EXPECT_TRUE(m.ok());
    return m.ok() ? (*m)[0] : CommentMetrics{};
  }

  // Stored counters equal a recount from the reaction rows, and equal `likes`/`dislikes`.
  void expect_counts(uint32_t c, int64_t likes, int64_t dislikes) {
    auto r = store_->recount_comment(comment(c));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->stored.likes, (*r)->truth.likes) << "comment " << c;
    EXPECT_EQ((*r)->stored.dislikes, (*r)->truth.dislikes) << "comment " << c;
    EXPECT_EQ((*r)->truth.likes, likes) << "comment " << c;
    EXPECT_EQ((*r)->truth.dislikes, dislikes) << "comment " << c;
  }

  void expect_video_consistent() {
    auto v = store_->recount_video(kVideo);
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->stored.reactions_count, v->truth.reactions_count);
  }

  uint64_t consumer_pos() {
    auto p = store_->consumer_pos(ReactionApplier::kConsumerName);
    EXPECT_TRUE(p.ok());
    return p.ok() ? *p : 0;
  }

  commentd::testing::TempDir dir_{"applier_test"};
  ManualClock clock_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<service::ReactionOverlay> overlay_;
  std::unique_ptr<ReactionApplier> applier_;
  uint32_t op_counter_ = 0;
};

TEST_F(ReactionApplierTest, AppliesOpsAndAdvancesPosition) {
  react(0, 1, ReactionType::like);
  react(0, 2, ReactionType::like);
  react(0, 3, ReactionType::dislike);
  react(1, 1, ReactionType::dislike);
  auto last = react(0, 2, ReactionType::dislike);  // a switch: like -> dislike
  EXPECT_EQ(overlay_->find(comment(0), user(2)), ReactionType::dislike);

  auto n = applier_->apply_once();
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 5u);
  expect_counts(0, 1, 2);
  expect_counts(1, 0, 1);
  expect_counts(2, 0, 0);
  EXPECT_EQ(metrics(0).likes, 1);
  EXPECT_EQ(metrics(0).dislikes, 2);
  EXPECT_EQ(metrics(0).last_updated, clock_.now_ms());
  expect_video_consistent();

  // Applied ops leave the overlay.
  EXPECT_FALSE(overlay_->find(comment(0), user(1)).has_value());
  EXPECT_FALSE(overlay_->find(comment(0), user(2)).has_value());
  EXPECT_FALSE(overlay_->find(comment(1), user(1)).has_value());

  EXPECT_EQ(consumer_pos(), last.seq);
  EXPECT_EQ(applier_->applied_seq(), last.seq);
  auto again = applier_->apply_once();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
  EXPECT_EQ(consumer_pos(), last.seq);
  EXPECT_EQ(applier_->stats().batches.load(), 1u);

  // The registers hold the LWW winners.
  auto regs = store_->get_registers({{comment(0), user(2)}, {comment(0), user(1)}});
  ASSERT_TRUE(regs.ok());
  EXPECT_EQ((*regs)[0].type, ReactionType::dislike);
  EXPECT_EQ((*regs)[0].op_id, last.op_id);
  EXPECT_EQ((*regs)[1].type, ReactionType::like);
}

TEST_F(ReactionApplierTest, RemovalAndRepeatsAcrossBatches) {
  react(0, 1, ReactionType::like);
  ASSERT_EQ(apply_all(), 1u);
  expect_counts(0, 1, 0);
  react(0, 1, ReactionType::like);  // repeated: no change in counts
  ASSERT_EQ(apply_all(), 1u);
  expect_counts(0, 1, 0);
  react(0, 1, ReactionType::none);  // removal
  ASSERT_EQ(apply_all(), 1u);
  expect_counts(0, 0, 0);
  EXPECT_EQ(metrics(0).likes, 0);
  react(0, 1, ReactionType::none);  // removing nothing
  ASSERT_EQ(apply_all(), 1u);
  expect_counts(0, 0, 0);
  expect_video_consistent();
}

TEST_F(ReactionApplierTest, OlderOpArrivingLateDoesNotResurrect) {
  const TimeMs t = clock_.now_ms();
  react(0, 1, ReactionType::like, t + 10);
  react(0, 1, ReactionType::none, t + 20);
  apply_all();
  react(0, 1, ReactionType::like, t + 15);  // a late retry from before the removal
  apply_all();
  expect_counts(0, 0, 0);
  EXPECT_GE(applier_->stats().ops_ignored.load(), 1u);
}

TEST_F(ReactionApplierTest, OverlayKeepsANewerOpThanTheOneApplied) {
  new_applier(/*batch_size=*/1);
  react(0, 1, ReactionType::like);
  react(0, 1, ReactionType::dislike);
  auto n = applier_->apply_once();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  // Only the like is applied; the user must still see their newer dislike.
  EXPECT_EQ(overlay_->find(comment(0), user(1)), ReactionType::dislike);
  expect_counts(0, 1, 0);
  n = applier_->apply_once();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_FALSE(overlay_->find(comment(0), user(1)).has_value());
  expect_counts(0, 0, 1);
}

// Random ops of 50 users on 3 comments; `last[c][u]` is each user's final state in log order
// (timestamps increase with the log).
class RandomOps : public ReactionApplierTest, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(RandomOps, FinalCountsMatchEachUsersLastOp) {
  std::mt19937_64 rng(GetParam());
  new_applier(/*batch_size=*/1 + rng() % 60);
  std::map<std::pair<uint32_t, uint32_t>, ReactionType> last;
  for (int i = 0; i < 1500; ++i) {
    uint32_t c = static_cast<uint32_t>(rng() % 3), u = static_cast<uint32_t>(rng() % 50);
    auto t = static_cast<ReactionType>(rng() % 3);
    react(c, u, t);
    last[{c, u}] = t;
    if (rng() % 100 == 0) apply_all();  // sometimes apply midway
  }
  apply_all();
  for (uint32_t c = 0; c < 3; ++c) {
    int64_t likes = 0, dislikes = 0;
    for (auto& [k, t] : last) {
      if (k.first != c) continue;
      likes += t == ReactionType::like;
      dislikes += t == ReactionType::dislike;
    }
    expect_counts(c, likes, dislikes);
    for (uint32_t u = 0; u < 50; ++u)
      EXPECT_FALSE(overlay_->find(comment(c), user(u)).has_value()) << c << "/" << u;
  }
  expect_video_consistent();
  EXPECT_EQ(consumer_pos(), store_->last_op_seq());
}

TEST_P(RandomOps, OutOfOrderTimestampsFollowLww) {
  // Timestamps jitter (retries, several nodes): the winner is the LWW maximum, not the last
  // op in the log.
  std::mt19937_64 rng(GetParam() + 1000);
  new_applier(/*batch_size=*/1 + rng() % 40);
  struct Best { TimeMs ts; uint32_t op; ReactionType t; };
  std::map<std::pair<uint32_t, uint32_t>, Best> best;
  const TimeMs base = clock_.now_ms();
  for (int i = 0; i < 800; ++i) {
    uint32_t c = static_cast<uint32_t>(rng() % 3), u = static_cast<uint32_t>(rng() % 50);
    auto t = static_cast<ReactionType>(rng() % 3);
    TimeMs ts = base + static_cast<TimeMs>(rng() % 200);
    react(c, u, t, ts);
    uint32_t opn = op_counter_;  // op ids increase with op_counter_ (node_id is equal)
    auto it = best.find({c, u});
    if (it == best.end() || std::tie(it->second.ts, it->second.op) < std::tie(ts, opn))
      best[{c, u}] = Best{ts, opn, t};
    if (rng() % 50 == 0) apply_all();
  }
  apply_all();
  for (uint32_t c = 0; c < 3; ++c) {
    int64_t likes = 0, dislikes = 0;
    for (auto& [k, b] : best) {
      if (k.first != c) continue;
      likes += b.t == ReactionType::like;
      dislikes += b.t == ReactionType::dislike;
    }
    expect_counts(c, likes, dislikes);
  }
  expect_video_consistent();
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomOps, ::testing::Values(1, 7, 42, 2024));

TEST_F(ReactionApplierTest, RestartNeverAppliesTwice) {
  std::mt19937_64 rng(5);
  std::map<std::pair<uint32_t, uint32_t>, ReactionType> last;
  auto random_react = [&] {
    uint32_t c = static_cast<uint32_t>(rng() % 3), u = static_cast<uint32_t>(rng() % 50);
    auto t = static_cast<ReactionType>(rng() % 3);
    react(c, u, t);
    last[{c, u}] = t;
  };
  auto expected = [&](uint32_t c) {
    int64_t l = 0, d = 0;
    for (auto& [k, t] : last)
      if (k.first == c) {
        l += t == ReactionType::like;
        d += t == ReactionType::dislike;
      }
    return std::pair{l, d};
  };
  for (int i = 0; i < 200; ++i) random_react();
  apply_all();
  const uint64_t applied = consumer_pos();
  ASSERT_EQ(applied, store_->last_op_seq());
  std::vector<CommentMetrics> before;
  for (uint32_t c = 0; c < 3; ++c) before.push_back(metrics(c));

  // 40 more ops are durable but not applied when the process stops.
  for (int i = 0; i < 40; ++i) random_react();
  restart();
  EXPECT_EQ(consumer_pos(), applied);
  for (uint32_t c = 0; c < 3; ++c) {
    EXPECT_EQ(metrics(c).likes, before[c].likes);
    EXPECT_EQ(metrics(c).dislikes, before[c].dislikes);
  }

  // An applier that did not load its position (start() does) cannot apply from 0 again: its
  // batch is guarded by the stored position and refused whole.
  auto stale = applier_->apply_once();
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Errc::conflict);
  EXPECT_EQ(consumer_pos(), applied);
  for (uint32_t c = 0; c < 3; ++c) EXPECT_EQ(metrics(c).likes, before[c].likes);

  // A properly started applier resumes after the stored position and stop() drains the log.
  new_applier(1000);
  ASSERT_TRUE(applier_->start().ok());
  applier_->stop();
  EXPECT_EQ(applier_->applied_seq(), store_->last_op_seq());
  EXPECT_EQ(consumer_pos(), store_->last_op_seq());
  EXPECT_EQ(applier_->stats().ops_applied.load() + applier_->stats().ops_ignored.load(), 40u);
  for (uint32_t c = 0; c < 3; ++c) {
    auto [l, d] = expected(c);
    expect_counts(c, l, d);
  }
  expect_video_consistent();

  // And once more across a restart with nothing new: nothing changes.
  std::vector<CommentMetrics> after;
  for (uint32_t c = 0; c < 3; ++c) after.push_back(metrics(c));
  restart();
  ASSERT_TRUE(applier_->start().ok());
  applier_->stop();
  EXPECT_EQ(applier_->stats().batches.load(), 0u);
  for (uint32_t c = 0; c < 3; ++c) {
    EXPECT_EQ(metrics(c).likes, after[c].likes);
    EXPECT_EQ(metrics(c).dislikes, after[c].dislikes);
  }
}

TEST_F(ReactionApplierTest, StartRestoresUnappliedOpsToTheOverlay) {
  react(0, 7, ReactionType::like);
  restart();  // the overlay is empty in the new process
  EXPECT_FALSE(overlay_->find(comment(0), user(7)).has_value());
  // With a flush interval that never elapses and no notify(), the started thread waits, so
  // the overlay can be observed between start() and stop().
  new_applier(1000, std::chrono::hours(1));
  ASSERT_TRUE(applier_->start().ok());
  EXPECT_EQ(overlay_->find(comment(0), user(7)), ReactionType::like);
  expect_counts(0, 0, 0);
  applier_->stop();  // drains the log
  expect_counts(0, 1, 0);
  EXPECT_FALSE(overlay_->find(comment(0), user(7)).has_value());
}

// The request path writes the user's reactions-by-video entry with the op (read-your-writes
// on any node). An op that then loses the LWW race must not leave its type there: the
// applier puts the register's winner back.
TEST_F(ReactionApplierTest, ALosingOpsUserEntryIsPutBackToTheWinner) {
  auto mine = [&] {
    auto r = commentd::testing::run_sync(store_->get_reactions(kVideo, user(1), {comment(0)}, {}));
    EXPECT_TRUE(r.ok());
    return r.ok() ? (*r)[0] : ReactionType::none;
  };
  react(0, 1, ReactionType::like, 2000);
  apply_all();
  EXPECT_EQ(mine(), ReactionType::like);
  // A dislike stamped earlier (another node's clock) arrives later, with its entry.
  react(0, 1, ReactionType::dislike, 1500);
  store::WriteSet ws;
  ws.mutations.push_back(store::UserReactionPut{kVideo, user(1), comment(0), ReactionType::dislike});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  EXPECT_EQ(mine(), ReactionType::dislike);  // what its user sees until it is applied
  apply_all();
  EXPECT_EQ(mine(), ReactionType::like) << "the LWW loser's type stayed in the user's entry";
  expect_counts(0, 1, 0);
}

TEST_F(ReactionApplierTest, TheBatchHookGetsEachChangedCommentOnce) {
  std::vector<std::vector<Uuid>> calls;
  applier_->set_on_batch_applied([&](const std::vector<Uuid>& ids) { calls.push_back(ids); });
  // Six ops on comment 0 and one on comment 1 in one batch; comment 2's like and unlike
  // cancel out, so its stored counters do not change.
  for (uint32_t u = 1; u <= 6; ++u) react(0, u, ReactionType::like);
  react(1, 1, ReactionType::dislike);
  react(2, 1, ReactionType::like);
  react(2, 1, ReactionType::none);
  ASSERT_EQ(apply_all(), 9u);
  ASSERT_EQ(calls.size(), 1u);
  std::vector<Uuid> got = calls[0];
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<Uuid>{comment(0), comment(1)}));
  // A batch that changes no counter: no call.
  react(0, 1, ReactionType::like);  // repeated
  ASSERT_EQ(apply_all(), 1u);
  EXPECT_EQ(calls.size(), 1u);
}

}  // namespace
}  // namespace commentd::workers

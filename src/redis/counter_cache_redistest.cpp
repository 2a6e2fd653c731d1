// The reaction-counter cache against a real Redis, single node and 3-master cluster: after a
// burst of reactions applied by the real ReactionApplier (which invalidates after each
// commit) while readers fill the cache concurrently, every cached count equals storage's;
// with its keys flushed, or Redis unreachable, counts still come right from storage.
#include "redis/counter_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "redis/test_env.h"
#include "service/reaction_overlay.h"
#include "testing/run_sync.h"
#include "testing/temp_store.h"
#include "workers/reaction_applier.h"

namespace commentd::redis {
namespace {

using namespace std::chrono_literals;
using testing::run_sync;

using testenv::kCluster;
using testenv::kSingle;

class CounterCacheTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const char* env = GetParam();
    COMMENTD_REDIS_NODES(nodes, env);
    client_ = std::make_unique<Client>(loop_.ex(),
                                       ClientOptions{.nodes = nodes, .cluster = env == kCluster});
    prefix_ = testenv::unique_prefix();
    cache_ = std::make_unique<CounterCache>(*client_, CounterCacheOptions{.prefix = prefix_});
    auto st = testing::open_temp_store(dir_, /*sync_writes=*/false, 8);
    ASSERT_TRUE(st.ok()) << st.error().message;
    store_ = std::move(*st);
    applier_ = std::make_unique<workers::ReactionApplier>(
        *store_, overlay_, clock_, workers::ApplierOptions{.batch_size = 16, .flush_interval = 1ms});
    // As the wiring does: the comments a committed batch changed are queued for invalidation
    // (pipelined waves in the background); tests wait_idle() before comparing.
    applier_->set_on_batch_applied([this](const std::vector<Uuid>& ids) { cache_->invalidate_later(ids); });
    for (int i = 0; i < 4; ++i) comments_.push_back(ids_.next());
  }
  void TearDown() override {
    if (applier_) applier_->stop();
    if (cache_) {
      EXPECT_TRUE(cache_->wait_idle(10s));
    }
    applier_.reset();
    cache_.reset();
    client_.reset();
  }

  void react(const Uuid& comment, const Uuid& user, ReactionType t) {
    ReactionOp op;
    op.op_id = ids_.next();
    op.comment_id = comment;
    op.video_id = video_;
    op.user_id = user;
    op.type = t;
    op.timestamp = clock_.now_ms();
    op.node_id = 1;
    store::WriteSet ws;
    ws.mutations.push_back(store::AppendReactionOp{op});
    auto r = testing::commit_sync(*store_, std::move(ws));
    ASSERT_TRUE(r.ok()) << r.error().message;
    op.seq = r->op_seqs.at(0);
    overlay_.put(op);
    applier_->notify();
    clock_.advance_ms(1);
  }
  // One batch through the applier (its thread not started); the ops it consumed.
  size_t apply() {
    auto n = applier_->apply_once();
    EXPECT_TRUE(n.ok()) << n.error().message;
    EXPECT_TRUE(cache_->wait_idle(10s)) << "invalidations still pending";
    return n.ok() ? *n : 0;
  }
  CommentMetrics stored(const Uuid& id) {
    std::vector<Uuid> ids{id};
    auto m = run_sync(store_->get_metrics(std::move(ids), Deadline::after(5s)));
    EXPECT_TRUE(m.ok());
    return m.ok() ? (*m)[0] : CommentMetrics{};
  }
  CommentMetrics cached(CounterCache& c, const Uuid& id) {
    auto m = run_sync(c.get(*store_, id, Deadline::after(5s)));
    EXPECT_TRUE(m.ok()) << m.error().message;
    return m.ok() ? *m : CommentMetrics{};
  }
  void expect_counts_equal_storage(CounterCache& c) {
    for (const Uuid& id : comments_) {
      CommentMetrics s = stored(id), got = cached(c, id);
      EXPECT_EQ(got.likes, s.likes) << id.str();
      EXPECT_EQ(got.dislikes, s.dislikes) << id.str();
      EXPECT_EQ(got.replies_count, s.replies_count) << id.str();
    }
  }
  // Deletes this test's keys: what a FLUSHALL or a restart does to them (without touching
  // the keys of tests running beside it on the same server).
  void flush_keys() {
    for (const Uuid& id : comments_) {
      std::string k = prefix_ + "rc:{" + id.str() + "}";
      for (std::string key : {k, k + ":g"}) {
        std::vector<std::string> args{"DEL", key};
        ASSERT_TRUE(run_sync(client_->command(std::move(args), Deadline::after(5s))).ok());
      }
    }
  }

  testenv::Loop loop_{1};
  std::unique_ptr<Client> client_;
  std::string prefix_;
  std::unique_ptr<CounterCache> cache_;
  testing::TempDir dir_{"counter_cache"};
  ManualClock clock_{1'700'000'000'000};
  UuidGenerator ids_{clock_, 7};
  Uuid video_ = ids_.next();
  std::unique_ptr<store::rocks::RocksStore> store_;
  service::ReactionOverlay overlay_;
  std::unique_ptr<workers::ReactionApplier> applier_;
  std::vector<Uuid> comments_;
};

uint64_t calls_of(const Client& c, const std::string& command) {
  for (auto& [name, cs] : c.stats().commands())
    if (name == command) return cs->calls.load();
  return 0;
}

TEST_P(CounterCacheTest, ABurstOfReactionsLeavesEveryCachedCountEqualToStorage) {
  ASSERT_TRUE(applier_->start().ok());
  // Readers fill the cache all through the burst, racing the applier's commits.
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    std::mt19937 rng(1);
    while (!done.load()) {
      auto m = run_sync(cache_->get(*store_, comments_[rng() % comments_.size()], Deadline::after(5s)));
      ASSERT_TRUE(m.ok()) << m.error().message;
      reads++;
    }
  });
  std::mt19937 rng(42);
  std::vector<Uuid> users;
  for (int i = 0; i < 60; ++i) users.push_back(ids_.next());
  const ReactionType types[] = {ReactionType::like, ReactionType::like, ReactionType::dislike, ReactionType::none};
  for (int i = 0; i < 600; ++i)
    react(comments_[rng() % comments_.size()], users[rng() % users.size()], types[rng() % 4]);
  applier_->stop();  // applies the rest
  ASSERT_TRUE(cache_->wait_idle(10s)) << "invalidations still pending";
  done = true;
  reader.join();
  EXPECT_EQ(cache_->stats().errors.load(), 0u);
  EXPECT_EQ(cache_->stats().invalidations_dropped.load(), 0u);
  // 600 ops in batches of at most 16 on 4 comments: at most 4 invalidations per batch, and
  // only one wave in flight at a time coalesces more.
  EXPECT_LE(cache_->stats().invalidations.load(), 4 * applier_->stats().batches.load());
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(cache_->stats().invalidations.load(), 0u);

  expect_counts_equal_storage(*cache_);
  // Read again: now served from Redis, and still equal.
  uint64_t hits = cache_->stats().hits.load();
  expect_counts_equal_storage(*cache_);
  EXPECT_EQ(cache_->stats().hits.load(), hits + comments_.size());
  int64_t total = 0;
  for (const Uuid& id : comments_) total += stored(id).likes + stored(id).dislikes;
  EXPECT_GT(total, 0) << "the burst must have left some reactions";
}

// A single Redis takes the wave's K invalidations in one script call; a cluster in K calls
// (one slot each), pipelined.
TEST_P(CounterCacheTest, NOpsOnKCommentsInOneBatchSendKInvalidationsInOneWave) {
  const Uuid a = comments_[0], b = comments_[1];
  EXPECT_EQ(cached(*cache_, a).likes, 0);  // cached copies to drop
  EXPECT_EQ(cached(*cache_, b).likes, 0);
  // The script is loaded on the nodes of a and b, so the counts below have no NOSCRIPT retry.
  ASSERT_TRUE(run_sync(cache_->invalidate_many({a, b}, Deadline::after(5s))).ok());
  const bool single = GetParam() == kSingle;
  const std::string label = single ? "evalsha:counter_invalidate_many" : "evalsha:counter_invalidate";
  const uint64_t calls = calls_of(*client_, label);
  const uint64_t done = cache_->stats().invalidations.load();
  // N = 16 ops (one full batch) on K = 2 comments.
  for (int i = 0; i < 16; ++i) react(i % 2 ? a : b, ids_.next(), ReactionType::like);
  ASSERT_EQ(apply(), 16u);
  EXPECT_EQ(applier_->stats().batches.load(), 1u);
  EXPECT_EQ(calls_of(*client_, label) - calls, single ? 1u : 2u);
  EXPECT_EQ(cache_->stats().invalidations.load() - done, 2u);
  EXPECT_EQ(cache_->stats().invalidation_waves.load(), 1u);
  EXPECT_EQ(cached(*cache_, a).likes, 8);
  EXPECT_EQ(cached(*cache_, b).likes, 8);
  expect_counts_equal_storage(*cache_);
}

TEST_P(CounterCacheTest, InvalidateManyDropsEveryCopyInOneCall) {
  for (const Uuid& id : comments_) EXPECT_EQ(cached(*cache_, id).likes, 0);
  for (int i = 0; i < 8; ++i) react(comments_[i % 4], ids_.next(), ReactionType::like);
  // Applied without the hook: the copies are stale until invalidate_many drops them.
  applier_->set_on_batch_applied(nullptr);
  ASSERT_EQ(apply(), 8u);
  EXPECT_EQ(cached(*cache_, comments_[0]).likes, 0) << "no invalidation yet: the old copy";
  ASSERT_TRUE(run_sync(cache_->invalidate_many(comments_, Deadline::after(5s))).ok());
  for (const Uuid& id : comments_) EXPECT_EQ(cached(*cache_, id).likes, 2);
}

TEST_P(CounterCacheTest, ACommitDropsTheCachedCopy) {
  Uuid c = comments_[0], u = ids_.next();
  EXPECT_EQ(cached(*cache_, c).likes, 0);  // fills the copy: 0 likes
  react(c, u, ReactionType::like);
  ASSERT_EQ(apply(), 1u);  // commits, then invalidates
  EXPECT_EQ(cached(*cache_, c).likes, 1);
  EXPECT_EQ(cached(*cache_, c).likes, 1);
  EXPECT_GE(cache_->stats().hits.load(), 1u);
}

TEST_P(CounterCacheTest, FlushedKeysAreReadAgainFromStorage) {
  for (int i = 0; i < 5; ++i) react(comments_[i % 2], ids_.next(), ReactionType::like);
  ASSERT_EQ(apply(), 5u);
  expect_counts_equal_storage(*cache_);  // fills
  flush_keys();
  uint64_t misses = cache_->stats().misses.load();
  expect_counts_equal_storage(*cache_);
  EXPECT_EQ(cache_->stats().misses.load(), misses + comments_.size());
  expect_counts_equal_storage(*cache_);  // filled again
}

TEST_P(CounterCacheTest, AnUnreachableRedisStillGivesStoragesCounts) {
  for (int i = 0; i < 3; ++i) react(comments_[0], ids_.next(), ReactionType::dislike);
  ASSERT_EQ(apply(), 3u);
  // A client of a port nobody listens on: every call fails fast, the counts stay right.
  Client dead(loop_.ex(), ClientOptions{.nodes = {{"127.0.0.1", testenv::closed_port()}},
                                                      .connect_timeout = 100ms, .command_timeout = 100ms});
  CounterCache down(dead, CounterCacheOptions{.prefix = prefix_});
  expect_counts_equal_storage(down);
  EXPECT_EQ(cached(down, comments_[0]).dislikes, 3);
  EXPECT_GT(down.stats().errors.load(), 0u);
  EXPECT_EQ(down.stats().hits.load(), 0u);
  EXPECT_FALSE(run_sync(down.invalidate(comments_[0], Deadline::after(1s))).ok());
}

INSTANTIATE_TEST_SUITE_P(Redis, CounterCacheTest, ::testing::Values(kSingle, kCluster),
                         [](const auto& info) { return std::string(info.param == kSingle ? "Single" : "Cluster"); });

}  // namespace
}  // namespace commentd::redis

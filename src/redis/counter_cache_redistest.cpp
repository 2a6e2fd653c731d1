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
    auto nodes = testenv::nodes_from_env(env);
    if (nodes.empty()) {
      if (::commentd::testing::servers_required()) GTEST_FAIL() << env << " is not set";
      GTEST_SKIP() << env << " is not set";
    }
    client_ = std::make_unique<Client>(loop_.ex(),
                                       ClientOptions{.nodes = nodes, .cluster = env == kCluster});
    prefix_ = testenv::unique_prefix();
    cache_ = std::make_unique<CounterCache>(*client_, CounterCacheOptions{.prefix = prefix_});
    auto st = testing::open_temp_store(dir_, /*sync_writes=*/false, 8);
    ASSERT_TRUE(st.ok()) << st.error().message;
    store_ = std::move(*st);
    applier_ = std::make_unique<workers::ReactionApplier>(
        *store_, overlay_, clock_, workers::ApplierOptions{.batch_size = 16, .flush_interval = 1ms});
    // As the wiring does: every comment a committed batch changed is invalidated (here
    // synchronously, so stop() returns with every invalidation done).
    applier_->set_on_applied([this](const ReactionOp& op) {
      auto st = run_sync(cache_->invalidate(op.comment_id, Deadline::after(5s)));
      if (!st) invalidation_errors_++;
    });
    for (int i = 0; i < 4; ++i) comments_.push_back(ids_.next());
  }
  void TearDown() override {
    if (applier_) applier_->stop();
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
  std::atomic<int> invalidation_errors_{0};
};

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
  applier_->stop();  // applies the rest; every invalidation has run when it returns
  done = true;
  reader.join();
  EXPECT_EQ(invalidation_errors_.load(), 0);
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

// Drift injected straight into the counters is repaired within one interval of the key's
// tier, measured on a ManualClock; a key in a lower tier waits for its own interval.
#include "testing/run_sync.h"
#include "workers/metrics_worker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"

namespace commentd::workers {
namespace {

using namespace std::chrono_literals;

class MetricsWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *testing::open_temp_store(dir_, /*sync_writes=*/false);
  }
  void TearDown() override { store_.reset(); }

  void commit(store::WriteSet ws) { ASSERT_TRUE(testing::commit_sync(*store_, std::move(ws)).ok()); }

  // A visible top-level comment with `likes` like-registers, counted correctly.
  Uuid make_comment(const Uuid& video, int likes) {
    Comment c;
    c.id = ids_.next();
    c.video_id = video;
    c.user_id = ids_.next();
    c.content = "x";
    c.created_at = c.updated_at = c.id.v7_time_ms();
    store::WriteSet ws;
    ws.mutations.push_back(store::PutComment{c});
    ws.mutations.push_back(store::IndexPut{store::Index::video, video, c.created_at, c.id});
    ws.mutations.push_back(store::BucketPut{video, time_bucket(c.created_at), c.created_at, c.id});
    ws.mutations.push_back(store::StatsDelta{video, 1, likes, 0});
    ws.mutations.push_back(store::MetricsDelta{c.id, likes, 0, 0, 0});
    for (int i = 0; i < likes; ++i)
      ws.mutations.push_back(store::PutReaction{c.id, ids_.next(), video, ReactionRow{ReactionType::like, 1, 1, ids_.next()}});
    commit(std::move(ws));
    return c.id;
  }

  CommentMetrics metrics(const Uuid& id) { return (*commentd::testing::run_sync(store_->get_metrics({id}, {})))[0]; }

  testing::TempDir dir_{"mw"};
  ManualClock clock_;
  UuidGenerator ids_{clock_, 42};
  std::unique_ptr<store::rocks::RocksStore> store_;
  ReconcileIntervals iv_{5s, 30s, 300s, 1800s};
};

TEST_F(MetricsWorkerTest, HighTierDriftRepairedWithinHighInterval) {
  ActivityTracker act(clock_, TierRules{});
  MetricsWorker w(*store_, act, clock_, iv_);
  Uuid video = ids_.next();
  Uuid hot = make_comment(video, 3);
  Uuid cold = make_comment(video, 2);
  act.record_comment(hot, 100);  // 100 events/minute: the high tier

  // Drift: counters off by +7 likes on both.
  store::WriteSet drift;
  drift.mutations.push_back(store::MetricsDelta{hot, 7, 0, 0, 0});
  drift.mutations.push_back(store::MetricsDelta{cold, 7, 0, 0, 0});
  commit(std::move(drift));
  ASSERT_EQ(metrics(hot).likes, 10);

  clock_.advance_ms(29'000);
  w.tick();
  EXPECT_EQ(metrics(hot).likes, 10) << "nothing is due before the high interval";
  clock_.advance_ms(1'000);
  w.tick();
  EXPECT_EQ(metrics(hot).likes, 3) << "the high tier is reconciled at its interval";
  EXPECT_EQ(metrics(cold).likes, 9) << "a low-tier key waits for the full sweep";
  EXPECT_EQ(w.stats().comment_repairs[static_cast<size_t>(Tier::high)].load(), 1u);

  clock_.advance_ms(1'800'000 - 30'000);
  w.tick();
  EXPECT_EQ(metrics(cold).likes, 2) << "the low tier's full sweep repairs every key";
  EXPECT_GE(w.stats().comment_repairs[static_cast<size_t>(Tier::low)].load(), 1u);
}

TEST_F(MetricsWorkerTest, VideoStatsRepairedAndCorrectRowsLeftAlone) {
  ActivityTracker act(clock_, TierRules{});
  MetricsWorker w(*store_, act, clock_, iv_);
  Uuid video = ids_.next();
  make_comment(video, 4);
  make_comment(video, 1);
  ASSERT_TRUE(w.reconcile_tier(Tier::low).ok());
  EXPECT_EQ(w.stats().video_repairs[0].load(), 0u) << "correct counts are not touched";
  EXPECT_EQ(w.stats().comment_repairs[0].load(), 0u);

  store::WriteSet drift;
  drift.mutations.push_back(store::StatsDelta{video, -5, 3, 0});
  commit(std::move(drift));
  ASSERT_TRUE(w.reconcile_tier(Tier::low).ok());
  auto s = *commentd::testing::run_sync(store_->get_video_stats(video, {}));
  EXPECT_EQ(s.comments_count, 2);
  EXPECT_EQ(s.reactions_count, 5);
  EXPECT_EQ(w.stats().video_repairs[0].load(), 1u);
}

TEST(ActivityTrackerTest, TiersFollowTheRateAndDecay) {
  ManualClock clock(1'000'000'020'000);
  ActivityTracker act(clock, TierRules{600, 60, 1, 600'000, 300, 1000});
  UuidGenerator ids(clock, 7);
  Uuid a = ids.next(), b = ids.next(), v = ids.next();
  act.record_comment(a, 700);
  act.record_comment(b, 61);
  EXPECT_EQ(act.comment_tier(a), Tier::realtime);
  EXPECT_EQ(act.comment_tier(b), Tier::high);
  EXPECT_EQ(act.comment_tier(ids.next()), Tier::low);
  clock.advance_ms(150'000);  // more than two minutes idle: the rate is gone
  EXPECT_EQ(act.comment_tier(a), Tier::low);

  act.record_video(v, 299);
  EXPECT_FALSE(act.video_trending(v));
  act.record_video(v, 1);
  EXPECT_TRUE(act.video_trending(v));
  clock.advance_ms(1'300'000);
  EXPECT_FALSE(act.video_trending(v));
  EXPECT_EQ(act.sweep(), 3u);
  EXPECT_EQ(act.size(), 0u);
}

TEST(ActivityTrackerTest, MemoryIsBounded) {
  ManualClock clock;
  ActivityTracker act(clock, TierRules{600, 60, 1, 600'000, 300, 160});
  UuidGenerator ids(clock, 9);
  for (int i = 0; i < 10'000; ++i) {
    clock.advance_ms(1);
    act.record_comment(ids.next());
  }
  EXPECT_LE(act.size(), 160u + 16u);
}

}  // namespace
}  // namespace commentd::workers

// The plan's MetricsWorker: reconciles comment_metrics and video_stats with the source of
// truth (reaction rows, comment rows) on the frequency tiers: realtime-tier keys every
// realtime_interval, high every high_frequency_interval, normal every
// normal_frequency_interval, and a full sweep of every key every low_frequency_interval.
// The stored counters and the recount are read at one snapshot, and a repair is written as
// a delta (truth - stored), so it composes with concurrent deltas instead of racing them.
// Every repair is counted by tier.
//
// Thread-safe: its tasks run on its Scheduler's thread; stats are atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>

#include "store/store.h"
#include "workers/activity_tracker.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

struct ReconcileIntervals {
  std::chrono::milliseconds realtime{5'000};
  std::chrono::milliseconds high{30'000};
  std::chrono::milliseconds normal{300'000};
  std::chrono::milliseconds low{1'800'000};
};

struct ReconcileStats {
  // Indexed by Tier.
  std::array<std::atomic<uint64_t>, 4> runs{};
  std::array<std::atomic<uint64_t>, 4> checked{};
  std::array<std::atomic<uint64_t>, 4> comment_repairs{};
  std::array<std::atomic<uint64_t>, 4> video_repairs{};
  std::atomic<uint64_t> errors{0};
};

class MetricsWorker final : public Worker {
 public:
  MetricsWorker(store::Store& store, ActivityTracker& activity, const Clock& clock,
                ReconcileIntervals intervals,
                std::chrono::milliseconds resolution = std::chrono::milliseconds(100));
  ~MetricsWorker() override;

  Status start() override;
  void stop() override;
  std::string name() const override { return "metrics-reconciliation"; }

  // Runs whatever tier is due now (tests call it after advancing a ManualClock).
  size_t tick() { return scheduler_.tick(); }
  // One pass over a tier (low = every key). Public for tests and benchmarks.
  Status reconcile_tier(Tier tier);
  Status reconcile_comment(const Uuid& id, Tier tier);
  Status reconcile_video(const Uuid& id, Tier tier);
  ReconcileStats& stats() { return stats_; }

 private:
  Status commit_repair(store::WriteSet ws);

  store::Store& store_;
  ActivityTracker& activity_;
  const Clock& clock_;
  Scheduler scheduler_;
  ReconcileStats stats_;
};

}  // namespace commentd::workers

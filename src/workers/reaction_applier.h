// The reaction applier: the plan's ReactionBatch and batch consumer in one piece. It reads
// the durable op log in order, merges each op into its (comment, user) register by LWW
// (core/reaction_set.h), derives counter deltas only from real state transitions, nets them
// per comment and per video, and writes the registers, the reaction_events rows, the net
// deltas and its own log position as ONE atomic WriteSet guarded by that position. So a
// crash at any point either applied a whole batch or none of it: counts stay exact across
// kill -9, and a batch is never applied twice.
//
// Thread-safe: one thread of its own; notify() and applied_seq() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "core/model.h"
#include "metrics/histogram.h"
#include "service/reaction_overlay.h"
#include "store/store.h"
#include "workers/applier_stats.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

struct ApplierOptions {
  size_t batch_size = 64;                       // a full batch is applied at once
  std::chrono::milliseconds flush_interval{5};  // a partial batch waits at most this long
};


class ReactionApplier final : public Worker {
 public:
  static constexpr const char* kConsumerName = "reaction-applier";

  ReactionApplier(store::Store& store, service::ReactionOverlay& overlay, const Clock& clock,
                  ApplierOptions opts);
  ~ReactionApplier() override;

  // Loads the consumer position and starts the thread.
  Status start() override;
  // Applies everything in the log, then stops the thread.
  void stop() override;
  std::string name() const override { return kConsumerName; }
  void notify();
  uint64_t applied_seq() const { return applied_.load(); }
  ApplierStats& stats() { return stats_; }
  // Called after each applied batch with (comment_id, video_id) activity, for the tiers.
  void set_on_applied(std::function<void(const ReactionOp&)> fn) { on_applied_ = std::move(fn); }
  // Called after each applied batch, on the applier's thread, with the comments whose stored
  // counters the batch changed, each once (not called when it changed none).
  void set_on_batch_applied(std::function<void(const std::vector<Uuid>&)> fn) { on_batch_applied_ = std::move(fn); }

  // Applies one batch read from the log; returns how many ops it consumed. Public for tests.
  Result<size_t> apply_once();

 private:
  void run();

  store::Store& store_;
  service::ReactionOverlay& overlay_;
  const Clock& clock_;
  const ApplierOptions opts_;
  ApplierStats stats_;
  std::function<void(const ReactionOp&)> on_applied_;
  std::function<void(const std::vector<Uuid>&)> on_batch_applied_;

  std::atomic<uint64_t> applied_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace commentd::workers

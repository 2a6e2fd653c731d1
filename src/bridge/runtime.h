// The process's one bridge runtime (tokio, bounded worker threads). Owned by the application
// wiring; every CQL and Pulsar handle is created on it.
// Destroying it completes every pending bridge call with CB_CANCELLED (mapped to
// Errc::unavailable), posted to each caller's executor; after the destructor returns no
// bridge callback runs. REQUIRES: destroyed on a thread that is not a bridge thread.
// Thread-safe.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>

#include "bridge/commentd_bridge.h"
#include "core/error.h"

namespace commentd::bridge {

class Runtime {
 public:
  static Result<std::unique_ptr<Runtime>> create(unsigned worker_threads);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const cb_runtime* get() const { return rt_; }
  unsigned worker_threads() const { return cb_runtime_worker_count(rt_); }

 private:
  explicit Runtime(cb_runtime* rt) : rt_(rt) {}
  cb_runtime* rt_;
};

// A stop signal (cb_stop): the calls given it that wait on a server to get going complete
// with Errc::unavailable ("bridge_cancelled") once fire() is called, and later ones at once;
// sends the broker has not acknowledged within `send_grace` of the first fire fail the same
// way. Thread-safe; fire() never blocks. Destroying it never fires it.
class StopSignal {
 public:
  StopSignal() : s_(cb_stop_new()) {}
  ~StopSignal() { cb_stop_free(s_); }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  void fire(std::chrono::milliseconds send_grace = {}) const {
    cb_stop_fire(s_, static_cast<uint32_t>(std::clamp<int64_t>(send_grace.count(), 0, UINT32_MAX)));
  }
  const cb_stop* get() const { return s_; }

 private:
  cb_stop* s_;
};

}  // namespace commentd::bridge

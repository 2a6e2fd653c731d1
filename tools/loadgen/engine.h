// The load engine: keep-alive HTTP/1.1 connections on Asio, driven open loop (a fixed
// schedule) or closed loop (back to back).
//
// Open loop: request i is due at t0 + i/rate. A free connection takes the lowest index not yet
// taken, waits until it is due, sends it, and reads the response; the latency is measured from
// the due time, not from the send, so time a request spends queued behind busy connections
// (a stalled server) is counted: no coordinated omission. After the duration the engine keeps
// sending what is still due until every request is sent or drain_timeout passes; requests
// never sent by then count as timeouts with latency (deadline - due).
// Closed loop: each connection sends its next request as soon as the previous one completed,
// until the duration ends or max_requests were taken; latency is measured from the send.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http_util.h"
#include "stats.h"

namespace commentd::loadgen {

// One request, written by a workload into storage the engine reuses.
struct RequestSlot {
  std::string bytes;  // the whole HTTP/1.1 request; cleared by the engine before build()
  size_t op = 0;      // index into Workload::op_names()
  uint64_t tag = 0;   // workload-private, handed back to on_response()
};

// A workload's per-shard half. Only ever called from its shard's thread.
class WorkloadShard {
 public:
  virtual ~WorkloadShard() = default;
  // Writes request `index` (0, 1, 2, ... in the order the engine takes them) into `slot`.
  virtual void build(uint64_t index, RequestSlot& slot) = 0;
  // The response to the request last built into `slot`; status 0 = none (failure).
  virtual void on_response(const RequestSlot& slot, unsigned status, std::string_view body) {
    (void)slot, (void)status, (void)body;
  }
};

class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::vector<std::string> op_names() const = 0;
  // Called once per engine shard, before the run, from the calling thread.
  virtual std::unique_ptr<WorkloadShard> make_shard(size_t shard_index) = 0;
};

struct Progress {
  double elapsed_s = 0;
  uint64_t completed = 0;  // requests finished (any outcome)
  uint64_t errors = 0;
  uint64_t backlog = 0;  // open loop: due but not yet sent
  uint64_t p99_us = 0;   // over everything so far
};

struct EngineConfig {
  Target target;
  bool closed_loop = false;
  double rate = 1000;         // open loop: requests/s in total. REQUIRES > 0
  double duration_s = 10;     // 0 = no time limit (closed loop with max_requests only)
  uint64_t max_requests = 0;  // closed loop: stop after this many; 0 = no limit
  size_t connections = 64;
  size_t threads = 1;  // engine shards: one io_context and one thread each
  std::chrono::milliseconds request_timeout{10000};
  std::chrono::milliseconds drain_timeout{10000};
  std::function<void(const Progress&)> on_progress;  // ~1/s, on the calling thread
};

struct EngineResult {
  std::vector<std::string> op_names;
  Recorder stats{0};
  double elapsed_s = 0;    // from t0 to the last completion
  uint64_t scheduled = 0;  // open loop: requests the schedule asked for
  uint64_t unsent = 0;     // open loop: of them, never sent before the drain deadline
};

// Runs `workload` against cfg.target and returns what was measured. Blocks. Throws
// std::runtime_error if the target does not resolve.
EngineResult run_engine(const EngineConfig& cfg, Workload& workload);

}  // namespace commentd::loadgen

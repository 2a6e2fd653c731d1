// What a run measured: per operation latency histograms, error counts and a per-second time
// series. A Recorder is thread-compatible (the engine gives each shard its own and guards it
// with the shard's mutex); merge() combines shards after the run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "histogram.h"

namespace commentd::loadgen {

// Why a request got no HTTP response.
enum class Failure : uint8_t {
  connect,  // could not open a connection; the request was never sent
  timeout,  // no complete response within the request timeout, or never sent before the
            // drain deadline
  io,       // the connection failed after the request was sent
};
const char* to_string(Failure f);

// One second of one operation. Latency, count and errors belong to the second the request
// was due (open loop) or sent (closed loop); `completed` to the second it finished.
struct SecondStats {
  Histogram latency{5};    // ~3 % buckets: enough for a plot
  uint64_t count = 0;      // requests due/sent in this second
  uint64_t errors = 0;     // of them, status >= 400 or failed
  uint64_t completed = 0;  // requests that finished in this second: the throughput
};

struct OpStats {
  Histogram latency;                      // every request with a response or a timeout, in us
  Histogram ok_latency;                   // responses with status < 400 only (admitted), in us
  uint64_t count = 0;                     // requests attempted
  uint64_t ok = 0;                        // status < 400
  std::map<unsigned, uint64_t> statuses;  // status >= 400 -> count
  uint64_t failures[3] = {0, 0, 0};       // indexed by Failure
  std::vector<SecondStats> series;        // index = second of the run

  uint64_t errors() const { return count - ok; }
  void merge(const OpStats& other);
};

class Recorder {
 public:
  explicit Recorder(size_t op_count) : ops_(op_count) {}

  // A response with `status`, `latency_us` after the request was due (or sent). `second`:
  // when it was due (or sent); `done_second`: when it finished; both from the run's start.
  void record_response(size_t op, uint64_t second, uint64_t done_second, uint64_t latency_us,
                       unsigned status);
  // A request that got no response. `latency_us` < 0: none to record (never sent).
  void record_failure(size_t op, uint64_t second, uint64_t done_second, Failure why,
                      int64_t latency_us);

  void merge(const Recorder& other);  // REQUIRES: same op count
  size_t op_count() const { return ops_.size(); }
  const OpStats& op(size_t i) const { return ops_[i]; }
  // Every op folded into one (its series too).
  OpStats overall() const;

 private:
  SecondStats& second_of(size_t op, uint64_t second);
  std::vector<OpStats> ops_;
};

}  // namespace commentd::loadgen

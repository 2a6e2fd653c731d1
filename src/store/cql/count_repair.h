// The counter repair on CQL (docs/cluster.md "Counter repair"): makes a video's
// comments_count and a comment's replies_count exact again after a write that died (kill -9,
// a timeout, a partition) between its entity write and its counter update.
//
// A write that changes one of those counters first adds 1 to the row's writes_started and
// writes a candidate row (count_repairs), and its counter update adds 1 to writes_done in the
// same row, so the count and the done mark land together or not at all. A key whose marks
// differ has a write in flight or a dead one. A write's counter update is sent within one
// request_timeout of its mark and lands within one more, so marks that have stood still for
// repair_settle() belong to dead writes only: then one node (an expiring claim, a
// conditional write on count_claims) recounts the key from its rows, checks that the marks
// did not move meanwhile (a write that started after the first read either shows there, or
// its rows land after the recount), and adds (truth - stored) to the count and
// (started - done) to writes_done in one update. Settled candidates are deleted. The claim
// is renewed through a long recount (a viral video's tens of thousands of comments, one read
// each), by writes conditional on it still being the one this repair took: taken by another
// node meanwhile, the repair stops.
//
// Blocking (worker threads only). Not thread-safe: one round at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "bridge/runtime.h"
#include "config/config.h"
#include "core/error.h"
#include "core/uuid.h"

namespace commentd::bridge {
class CqlMetrics;
}

namespace commentd::store::cql {

namespace tool {
class Tool;
}

// A guarded counter update is sent only within one request_timeout of its writes_started
// mark and lands (or never does) within one more; the repairer leaves a key alone until its
// marks have stood still for longer than both, so it never races a live write.
inline std::chrono::milliseconds guarded_counter_window(const config::CqlConfig& c) { return c.request_timeout; }
inline std::chrono::milliseconds repair_settle(const config::CqlConfig& c) {
  return 2 * c.request_timeout + std::chrono::seconds(2);
}
// A node writes a key's candidate row at most once per this window (the writes after it in
// the window rely on it; docs/cluster.md "Counter repair"). Why that is safe: a repairer
// deletes a candidate written at T only with a timestamp one settle before its read, so only
// at a read R >= T + settle; a write relying on it marks writes_started by T + window, and
// that mark lands (or never does) within one request_timeout more, so before R while
// window + request_timeout < settle, with (settle - window - request_timeout) = half a
// request_timeout + 2 s left for the nodes' clocks. So at R the repairer sees the write's
// marks differ, and keeps the candidate, unless the write finished (or never marked).
inline std::chrono::milliseconds candidate_reuse_window(const config::CqlConfig& c) { return c.request_timeout / 2; }

struct CountRepairStats {
  std::atomic<uint64_t> rounds{0}, failed_rounds{0};
  std::atomic<uint64_t> repaired{0};  // keys whose marks were brought together
  std::atomic<uint64_t> drift{0};     // sum of |truth - stored| over the repairs
  std::atomic<uint64_t> pending{0};   // candidates with differing marks at the last round
  std::atomic<uint64_t> claim_renewals{0};  // claims renewed by a recount past half of one
};

class CountRepairer {
 public:
  using Clock = std::chrono::steady_clock;
  // A session of its own on cfg's keyspace (at the latest schema). `settle`: how long a
  // key's marks must stand still before a repair; repair_settle(cfg) unless given (tests: 0).
  // `metrics`: where its statements are counted (the node's store's, so they are exported
  // with the rest); it outlives the repairer. Null: not counted.
  static Result<std::unique_ptr<CountRepairer>> open(const bridge::Runtime& rt, const config::CqlConfig& cfg,
                                                     std::optional<std::chrono::milliseconds> settle = std::nullopt,
                                                     bridge::CqlMetrics* metrics = nullptr);
  ~CountRepairer();

  // One pass over every candidate.
  Status round(Clock::time_point now = Clock::now());
  const CountRepairStats& stats() const { return stats_; }

  // Polled at each step of a recount: true ends the repair (an error; the node is stopping).
  void set_cancelled(std::function<bool()> fn) { cancelled_ = std::move(fn); }

  // Tests: the claim's length (default max(settle, 10 s)), and a hook run at each step of a
  // key's recount and once before its repair write (a slow recount, or another node taking
  // the claim).
  void set_claim_lease_for_test(std::chrono::milliseconds lease) { lease_for_test_ = lease; }
  void set_recount_step_for_test(std::function<void()> fn) { step_for_test_ = std::move(fn); }

 private:
  struct Marks {
    int64_t count = 0, started = 0, done = 0;
  };
  Result<Marks> marks(std::string_view kind, const Uuid& key);
  // Repairs one key whose marks stood still at `seen`; false if it had to stop (the marks
  // moved, another node holds the claim).
  Result<bool> repair(std::string_view kind, const Uuid& key, const Marks& seen);
  CountRepairer(std::unique_ptr<tool::Tool> tool, std::chrono::milliseconds settle);

  std::unique_ptr<tool::Tool> tool_;
  std::chrono::milliseconds settle_;
  struct Seen {
    Marks marks;
    Clock::time_point since;
  };
  std::map<std::pair<std::string, Uuid>, Seen> seen_;
  CountRepairStats stats_;
  std::optional<std::chrono::milliseconds> lease_for_test_;
  std::function<void()> step_for_test_;
  std::function<bool()> cancelled_;
};

}  // namespace commentd::store::cql

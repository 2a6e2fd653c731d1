// A circuit breaker for a remote dependency (Redis, the CQL cluster): after `failures`
// consecutive failed calls it opens, and calls are refused at once for `open_for`; then it
// admits one probe (half-open): the probe's success closes it, its failure opens it again.
// While a probe is out no other call goes, until `probe_timeout`: a probe whose result never
// comes (its caller gave up) is then replaced.
// So a dead or frozen dependency costs each request nothing but an immediate error, instead
// of its full timeout, and traffic resumes by itself within `open_for` of its return.
//
// What counts as a failure is the caller's call: only failures that say the dependency is
// unreachable or stuck (timeouts, broken connections), never a bad request or a conflict.
// With `timeout_window` set, timeouts count once per window: the calls in flight when the
// dependency (or this process) stalls all time out together, and one short stall must not
// open the breaker; timeouts that go on for about failures x timeout_window without a
// success (a stuck server) do.
//
// With `stall_after` set it also opens without waiting for timeouts: a hung (not refusing)
// dependency answers nothing until each call's own timeout, so the first calls into a freeze
// would each cost that whole timeout before any failure is recorded. It counts the calls in
// flight (admitted and not yet recorded or released) and opens when at least `stall_calls`
// are in flight and none has succeeded for `stall_after` (since the last success, or since
// calls began to be in flight). A single slow call never opens it; a healthy dependency
// under load answers some call every few milliseconds. Then every admitted call must end in
// exactly one record() or release().
// Thread-safe. Time is passed in (tests) or read from steady_clock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace commentd {

class CircuitBreaker {
 public:
  using clock = std::chrono::steady_clock;
  enum class State : int { closed = 0, open = 1, half_open = 2 };
  struct Options {
    int failures = 5;                        // consecutive failures that open it
    std::chrono::milliseconds open_for{1000};  // refused this long before one probe
    std::chrono::milliseconds probe_timeout{0};  // a probe's result is awaited this long; 0: open_for
    std::chrono::milliseconds timeout_window{0};  // timeouts within it count once; 0: each counts
    std::chrono::milliseconds stall_after{0};  // no success this long with calls in flight opens it; 0: off
    int stall_calls = 3;                       // ... with at least this many in flight
  };
  struct Stats {
    std::atomic<uint64_t> opens{0};     // closed/half-open -> open transitions
    std::atomic<uint64_t> rejected{0};  // calls refused while open (admit's `calls`)
    std::atomic<uint64_t> stalls{0};    // opens because calls in flight got no answer (stall_after)
    std::atomic<int> state{0};          // State, for gauges
  };
  enum class Change { none, opened, closed };
  enum class Outcome { ok, failed, timed_out };

  explicit CircuitBreaker(Options o) : opts_(o) {}

  // Whether a call (or a pipelined group of `calls`) may go ahead now (false: refuse it at
  // once, counted as rejected). May open the breaker (stall_after): stats().stalls moves.
  bool admit(clock::time_point now = clock::now(), uint64_t calls = 1);
  // The outcome of an admitted call. Returns the transition it caused, for one log line.
  Change record(Outcome o, clock::time_point now = clock::now());
  // An admitted call ended with no evidence either way (cancelled, or cut short by its
  // caller's deadline): only leaves the calls in flight.
  void release();
  Change record(bool ok, clock::time_point now = clock::now()) {
    return record(ok ? Outcome::ok : Outcome::failed, now);
  }

  State state() const { return static_cast<State>(stats_.state.load(std::memory_order_relaxed)); }
  const Stats& stats() const { return stats_; }
  const Options& options() const { return opts_; }

 private:
  const Options opts_;
  Stats stats_;
  std::mutex mu_;
  int failures_ = 0;                 // GUARDED_BY(mu_)
  clock::time_point open_until_{};   // GUARDED_BY(mu_): when the first probe may go
  clock::time_point probe_until_{};  // GUARDED_BY(mu_): when a lost probe is replaced
  clock::time_point last_timeout_{};  // GUARDED_BY(mu_): the last counted timeout
  bool probing_ = false;             // GUARDED_BY(mu_)
  int64_t in_flight_ = 0;            // GUARDED_BY(mu_): counted only with stall_after
  clock::time_point progress_at_{};  // GUARDED_BY(mu_): the last success, or calls began in flight
};

}  // namespace commentd

#include "core/circuit_breaker.h"

namespace commentd {

bool CircuitBreaker::admit(clock::time_point now, uint64_t calls) {
  std::lock_guard lk(mu_);
  const bool tracked = opts_.stall_after.count() > 0;
  if (state() == State::closed) {
    if (tracked && in_flight_ >= opts_.stall_calls && now - progress_at_ >= opts_.stall_after) {
      // Stalled: the calls in flight wait out their own timeouts; this one and the next fail
      // at once, and a probe after open_for finds out whether it answers again.
      failures_ = 0;
      open_until_ = now + opts_.open_for;
      stats_.state.store(static_cast<int>(State::open));
      stats_.opens.fetch_add(1, std::memory_order_relaxed);
      stats_.stalls.fetch_add(1, std::memory_order_relaxed);
      stats_.rejected.fetch_add(calls, std::memory_order_relaxed);
      return false;
    }
  } else {
    if (now < (probing_ ? probe_until_ : open_until_)) {
      stats_.rejected.fetch_add(calls, std::memory_order_relaxed);
      return false;
    }
    probing_ = true;
    probe_until_ = now + (opts_.probe_timeout.count() > 0 ? opts_.probe_timeout : opts_.open_for);
    stats_.state.store(static_cast<int>(State::half_open));
  }
  if (tracked) {
    if (in_flight_ == 0) progress_at_ = now;
    in_flight_ += static_cast<int64_t>(calls);
  }
  return true;
}

void CircuitBreaker::release() {
  std::lock_guard lk(mu_);
  if (in_flight_ > 0) --in_flight_;
}

CircuitBreaker::Change CircuitBreaker::record(Outcome o, clock::time_point now) {
  std::lock_guard lk(mu_);
  if (in_flight_ > 0) --in_flight_;
  const State s = state();
  if (o == Outcome::ok) {
    progress_at_ = now;
    failures_ = 0;
    probing_ = false;
    if (s == State::closed) return Change::none;
    stats_.state.store(static_cast<int>(State::closed));
    return Change::closed;
  }
  if (o == Outcome::timed_out && s == State::closed && opts_.timeout_window.count() > 0) {
    if (failures_ > 0 && now - last_timeout_ < opts_.timeout_window) return Change::none;
    last_timeout_ = now;
  }
  ++failures_;
  // A failed probe reopens it; while open, late failures of calls admitted before it opened
  // change nothing.
  if ((s == State::half_open && probing_) || (s == State::closed && failures_ >= opts_.failures)) {
    probing_ = false;
    open_until_ = now + opts_.open_for;
    stats_.state.store(static_cast<int>(State::open));
    stats_.opens.fetch_add(1, std::memory_order_relaxed);
    return Change::opened;
  }
  return Change::none;
}

}  // namespace commentd

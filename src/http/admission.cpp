#include "http/admission.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace commentd::http {

const char* to_string(RequestClass c) {
  switch (c) {
    case RequestClass::read: return "read";
    case RequestClass::write: return "write";
    case RequestClass::reaction: return "reaction";
    case RequestClass::exempt: return "exempt";
  }
  return "?";
}

Admission::Admission(AdmissionOptions opts) : opts_(opts), rng_(opts.seed | 1) {}

void Admission::roll(Track& t, time_point now) {
  const bool lag = &t == &lag_track_;
  const duration interval = lag ? opts_.loop_lag_interval : opts_.interval;
  const duration target = lag ? opts_.loop_lag_target : opts_.target;
  if (!t.started) {
    t.started = true;
    t.end = now + interval;
    return;
  }
  if (now < t.end) return;
  // A whole interval without a sample: no standing queue is known, so not overloaded.
  bool was_over = t.over;
  t.over = target > duration::zero() && now < t.end + interval && t.min != duration::max() && t.min > target;
  if (t.over && !was_over) stats_.overloaded_intervals.fetch_add(1, std::memory_order_relaxed);
  t.min = duration::max();
  t.end = now + interval;
}

void Admission::sample(Track& t, duration d, time_point now) {
  roll(t, now);
  t.min = std::min(t.min, d);
}

bool Admission::class_overloaded(size_t c, time_point now) {
  roll(tracks_[c], now);
  roll(lag_track_, now);
  return tracks_[c].over || lag_track_.over;
}

bool Admission::overloaded(RequestClass c, time_point now) {
  if (c == RequestClass::exempt) return false;
  std::lock_guard lk(mu_);
  return class_overloaded(static_cast<size_t>(c), now);
}

Admission::Decision Admission::arrive(RequestClass cls, Waiter& w, time_point now) {
  return arrive_at(cls, &w, now);
}

Admission::Decision Admission::try_arrive(RequestClass cls, time_point now) {
  return arrive_at(cls, nullptr, now);
}

Admission::Decision Admission::arrive_at(RequestClass cls, Waiter* w, time_point now) {
  if (cls == RequestClass::exempt) return Decision::admit;
  size_t c = static_cast<size_t>(cls);
  std::lock_guard lk(mu_);
  bool over = class_overloaded(c, now);
  if (in_flight_[c] < opts_.max_in_flight[c] && queues_[c].empty()) {
    if (lag_sheds()) {
      stats_.shed[c].fetch_add(1, std::memory_order_relaxed);
      return Decision::shed;
    }
    ++in_flight_[c];
    sample(tracks_[c], duration::zero(), now);
    stats_.admitted[c].fetch_add(1, std::memory_order_relaxed);
    return Decision::admit;
  }
  if (over || queues_[c].size() >= opts_.max_in_flight[c]) {
    stats_.shed[c].fetch_add(1, std::memory_order_relaxed);
    return Decision::shed;
  }
  if (!w) return Decision::wait;
  w->cls = cls;
  w->since = now;
  queues_[c].push_back(w);
  return Decision::wait;
}

void Admission::release(RequestClass cls, time_point now) {
  if (cls == RequestClass::exempt) return;
  size_t c = static_cast<size_t>(cls);
  std::vector<std::pair<std::function<void(bool)>, bool>> wakes;  // called outside mu_
  {
    std::lock_guard lk(mu_);
    if (in_flight_[c] > 0) --in_flight_[c];
    while (!queues_[c].empty() && in_flight_[c] < opts_.max_in_flight[c]) {
      Waiter* w = queues_[c].front();
      queues_[c].pop_front();
      duration waited = now - w->since;
      sample(tracks_[c], waited, now);
      bool over = class_overloaded(c, now);
      if ((over && waited > 2 * opts_.target) || lag_sheds()) {
        stats_.shed[c].fetch_add(1, std::memory_order_relaxed);
        wakes.emplace_back(std::move(w->wake), false);
        continue;
      }
      ++in_flight_[c];
      stats_.admitted[c].fetch_add(1, std::memory_order_relaxed);
      wakes.emplace_back(std::move(w->wake), true);
      break;
    }
  }
  for (auto& [wake, admitted] : wakes) wake(admitted);
}

bool Admission::cancel(Waiter& w, time_point now) {
  size_t c = static_cast<size_t>(w.cls);
  std::lock_guard lk(mu_);
  auto& q = queues_[c];
  auto it = std::find(q.begin(), q.end(), &w);
  if (it == q.end()) return false;
  q.erase(it);
  sample(tracks_[c], now - w.since, now);
  stats_.shed[c].fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Admission::observe_lag(duration lag, time_point now) {
  std::lock_guard lk(mu_);
  const duration prev = pie_delay_;
  const time_point prev_at = last_lag_at_;
  last_lag_ = lag;
  last_lag_at_ = now;
  sample(lag_track_, lag, now);
  if (opts_.loop_lag_target <= duration::zero()) return;
  constexpr auto kWindow = std::chrono::milliseconds(200);
  lag_window_.emplace_back(now, lag);
  while (lag_window_.size() > 64 || now - lag_window_.front().first > kWindow) lag_window_.pop_front();
  pie_delay_ = lag;
  for (const auto& [at, l] : lag_window_) pie_delay_ = std::min(pie_delay_, l);
  // PIE (RFC 8033 section 4.2), one update per sample, its time terms scaled by the time
  // since the previous sample in units of the RFC's 15 ms update interval.
  using secs = std::chrono::duration<double>;
  const double steps = prev_at == time_point{} ? 1.0
                       : std::clamp(secs(now - prev_at).count() / 0.015, 0.0, 100.0);
  const double cur = secs(pie_delay_).count(), old = secs(prev).count();
  const double target = secs(opts_.loop_lag_target).count();
  double alpha = 0.125, beta = 1.25;
  if (shed_p_ < 0.01) {
    alpha /= 8;
    beta /= 8;
  } else if (shed_p_ < 0.1) {
    alpha /= 2;
    beta /= 2;
  }
  double dp = alpha * (cur - target) * steps + beta * (cur - old);
  dp = std::min(dp, 0.02 * steps);
  shed_p_ = std::clamp(shed_p_ + dp, 0.0, 1.0);
  if (cur < target / 2 && old < target / 2) shed_p_ *= std::pow(0.98, steps);
  if (shed_p_ < 1e-6) shed_p_ = 0;
}

bool Admission::lag_sheds() {
  if (shed_p_ <= 0) return false;
  if (shed_p_ < 0.2 && pie_delay_ < opts_.loop_lag_target / 2) return false;  // burst allowance
  // xorshift64*: a cheap coin; the lock is held anyway.
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  const double u = double((rng_ * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
  return u < shed_p_;
}

Admission::duration Admission::last_lag() const {
  std::lock_guard lk(mu_);
  return last_lag_;
}

double Admission::shed_probability() const {
  std::lock_guard lk(mu_);
  return shed_p_;
}

size_t Admission::in_flight(RequestClass c) const {
  if (c == RequestClass::exempt) return 0;
  std::lock_guard lk(mu_);
  return in_flight_[static_cast<size_t>(c)];
}

size_t Admission::waiting(RequestClass c) const {
  if (c == RequestClass::exempt) return 0;
  std::lock_guard lk(mu_);
  return queues_[static_cast<size_t>(c)].size();
}

}  // namespace commentd::http

// Admission control (load shedding): a bounded number of requests in flight per class, a
// bounded wait for a slot, and a CoDel-style queueing-delay target.
//
// Each request class (reads, writes, reactions) has at most `max_in_flight` admitted
// requests; a request that finds no free slot waits, FIFO, behind at most `max_in_flight`
// others. Queueing delay is tracked per class (the time a request waited for a slot; 0 when
// admitted at once) and for the event loop (the lag of a periodic probe timer: how long a
// ready handler waits for a thread). As in CoDel (RFC 8289) and its request-queue form
// (wangle::Codel), a track is "overloaded" for the next `interval` when the MINIMUM delay it
// saw over the last interval was above `target`: a standing queue, not a burst. (The
// event-loop track uses loop_lag_target over loop_lag_interval.) A class is overloaded when
// its own track or the event-loop track is. Then:
//   - a request that would have to wait is shed at once (no standing queue is let grow);
//   - a waiter handed a slot after more than 2 x target is shed instead.
// A waiter is never kept past max_wait() = interval + 2 x target, so an admitted request's
// queueing delay here is bounded.
//
// The slots cannot see the queue that matters most for an event-loop server: requests whose
// bytes are ready but whose handler waits for a thread (on a keep-alive connection a client
// sends its next request the moment the previous answer arrives, so every connection holds one
// request, and the in-flight count never exceeds the connection count). That queue's delay is
// the event loop's lag, and a request with a free slot is still shed with a probability
// driven by it, as PIE does for packets (RFC 8033). PIE's "delay" is the MINIMUM lag sampled
// over the last 200 ms (CoDel's filter: a standing queue keeps every sample high, while the
// host descheduling us makes single samples spike; measured: without it, 0.1 % of requests
// were shed at 1x the viral load on a host with a load average of 8). Every sample moves the
// probability by
//   alpha * (delay - loop_lag_target) * (elapsed / 15 ms) + beta * (delay - previous delay),
// with the RFC's alpha = 0.125 and beta = 1.25 (per second of delay), scaled down while the
// probability is small (/8 under 1 %, /2 under 10 %) so a short spike barely moves it, each
// step capped at 0.02 per 15 ms, and decaying by 2 % per 15 ms while the lag stays under half
// the target. Nothing is shed while the lag is under half the target and the probability is
// under 0.2 (the RFC's burst allowance). A shed request costs a parse and a small 503, far less
// than an admitted one, so shedding drains the loop until its lag settles near the target;
// a bang-bang rule ("shed all while the lag is over a bar") instead oscillates between an idle
// loop and a full one. Shed requests get a fast 503 from the caller.
//
// Time comes in as an argument (`now`), so tests advance it instead of sleeping.
// Thread-safe: every public member takes the one mutex; wake() is called outside it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace commentd::http {

enum class RequestClass { read, write, reaction, exempt };
inline constexpr size_t kAdmissionClasses = 3;  // exempt is never counted nor shed
const char* to_string(RequestClass c);

struct AdmissionOptions {
  using duration = std::chrono::nanoseconds;
  std::array<size_t, kAdmissionClasses> max_in_flight{512, 1024, 2048};  // read, write, reaction
  duration target = std::chrono::milliseconds(20);
  duration interval = std::chrono::milliseconds(100);
  // The event-loop track has its own, higher bar: the lag also counts time the host's other
  // processes kept our threads off the CPU, which shedding cannot fix. 0 = lag not used.
  duration loop_lag_target = std::chrono::milliseconds(50);
  duration loop_lag_interval = std::chrono::seconds(1);
  uint64_t seed = 0x9e3779b97f4a7c15ULL;  // the shedding coin (tests fix it)
};

struct AdmissionStats {
  std::array<std::atomic<uint64_t>, kAdmissionClasses> admitted{};
  std::array<std::atomic<uint64_t>, kAdmissionClasses> shed{};
  std::atomic<uint64_t> overloaded_intervals{0};
};

class Admission {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using duration = AdmissionOptions::duration;

  enum class Decision { admit, wait, shed };

  // A request waiting for a slot. `wake(admitted)` is called exactly once unless cancel()
  // returned true first, from whichever thread released the slot (post to your own
  // executor). It is moved out of the Waiter under the lock first, so the Waiter need only
  // live until it is dequeued: until wake() starts, or cancel() returns.
  struct Waiter {
    std::function<void(bool admitted)> wake;
    RequestClass cls = RequestClass::read;
    time_point since{};
  };

  explicit Admission(AdmissionOptions opts);

  // A request of class `c` arrives. admit: it holds a slot (call release() when done).
  // wait: `w` is queued; wake() will say. shed: answer 503 now. exempt: always admit.
  Decision arrive(RequestClass c, Waiter& w, time_point now);
  // arrive() without a waiter: admit and shed as arrive() decides them; wait when arrive()
  // would queue, and then nothing changed (call arrive() with a waiter). The request path
  // asks this first, so a request admitted at once builds no waiter, timer or allocation.
  Decision try_arrive(RequestClass c, time_point now);
  // The request gives back its slot. Hands it to the oldest waiter, or sheds waiters whose
  // delay is over the limit while overloaded.
  void release(RequestClass c, time_point now);
  // A waiter gives up (its max_wait passed). true: it was still queued and is now shed (no
  // wake() will come); false: wake() was or is being called, use its answer.
  bool cancel(Waiter& w, time_point now);
  // The event-loop lag probe: how late a timer due at some instant ran.
  void observe_lag(duration lag, time_point now);
  // The probability that a request is shed for the event loop's lag (0 when the lag is off).
  double shed_probability() const;
  duration last_lag() const;

  duration max_wait() const { return opts_.interval + 2 * opts_.target; }
  // This class's track or the event loop's is overloaded.
  bool overloaded(RequestClass c, time_point now);
  size_t in_flight(RequestClass c) const;
  size_t waiting(RequestClass c) const;
  const AdmissionStats& stats() const { return stats_; }
  const AdmissionOptions& options() const { return opts_; }

 private:
  // arrive() and try_arrive(): queues `w` when it waits, unless it is null.
  Decision arrive_at(RequestClass c, Waiter* w, time_point now);
  struct Track {  // the delay minimum over one interval
    bool started = false;
    bool over = false;
    time_point end{};
    duration min = duration::max();  // max: no sample yet in this interval
  };
  // REQUIRES: mu_ held.
  void roll(Track& t, time_point now);
  void sample(Track& t, duration d, time_point now);
  bool class_overloaded(size_t c, time_point now);
  // Flips the shedding coin for the event loop's lag.
  bool lag_sheds();

  const AdmissionOptions opts_;
  mutable std::mutex mu_;
  std::array<size_t, kAdmissionClasses> in_flight_{};            // GUARDED_BY(mu_)
  std::array<std::deque<Waiter*>, kAdmissionClasses> queues_;    // GUARDED_BY(mu_)
  std::array<Track, kAdmissionClasses> tracks_;                  // GUARDED_BY(mu_)
  Track lag_track_;                                              // GUARDED_BY(mu_)
  duration last_lag_{};                                          // GUARDED_BY(mu_)
  duration pie_delay_{};                                         // GUARDED_BY(mu_)
  std::deque<std::pair<time_point, duration>> lag_window_;       // GUARDED_BY(mu_)
  time_point last_lag_at_{};                                     // GUARDED_BY(mu_)
  double shed_p_ = 0;                                            // GUARDED_BY(mu_)
  uint64_t rng_;                                                 // GUARDED_BY(mu_)
  AdmissionStats stats_;
};

}  // namespace commentd::http

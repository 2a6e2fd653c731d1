#include "http/admission.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

namespace commentd::http {
namespace {

using namespace std::chrono_literals;
using Decision = Admission::Decision;
constexpr auto R = RequestClass::read;
constexpr auto W = RequestClass::write;

// A waiter that records its answer.
struct Probe {
  Admission::Waiter w;
  std::optional<bool> answer;
  Probe() {
    w.wake = [this](bool admitted) { answer = admitted; };
  }
};

AdmissionOptions small(size_t n) {
  AdmissionOptions o;
  o.max_in_flight = {n, n, n};
  o.target = 20ms;
  o.interval = 100ms;
  o.loop_lag_target = 20ms;  // the lag tests below use the same bar as the slot waits
  o.loop_lag_interval = 100ms;
  return o;
}

class AdmissionTest : public ::testing::Test {
 protected:
  Admission::time_point now = Admission::time_point{} + 1h;
  // Arrives and expects `want`; returns the probe (kept alive by the test).
  Probe& arrive(Admission& a, RequestClass c, Decision want) {
    probes.push_back(std::make_unique<Probe>());
    EXPECT_EQ(a.arrive(c, probes.back()->w, now), want);
    return *probes.back();
  }
  // With every slot of R held: waiters arrive and time out after `delay` until one is shed
  // at arrival. Returns how many waited first; -1 if none was shed.
  int standing_queue(Admission& a, Admission::duration delay) {
    for (int i = 0; i < 50; ++i) {
      Probe p;
      Decision d = a.arrive(R, p.w, now);
      if (d == Decision::shed) return i;
      EXPECT_EQ(d, Decision::wait);
      now += delay;
      EXPECT_TRUE(a.cancel(p.w, now));
    }
    return -1;
  }
  std::vector<std::unique_ptr<Probe>> probes;
};

// try_arrive: the same admit and shed as arrive(), and "wait" without queueing anything, so
// a release wakes no one and the slot goes to the next arrival.
TEST_F(AdmissionTest, TryArriveAdmitsAndShedsAsArriveDoesAndQueuesNothing) {
  Admission a(small(1));
  EXPECT_EQ(a.try_arrive(R, now), Decision::admit);
  EXPECT_EQ(a.in_flight(R), 1u);
  EXPECT_EQ(a.try_arrive(R, now), Decision::wait);
  EXPECT_EQ(a.try_arrive(RequestClass::exempt, now), Decision::admit);
  EXPECT_EQ(a.stats().admitted[0].load(), 1u);
  EXPECT_EQ(a.stats().shed[0].load(), 0u);
  Probe& queued = arrive(a, R, Decision::wait);  // the queue's one place
  EXPECT_EQ(a.try_arrive(R, now), Decision::shed) << "arrive() would shed: the queue is full";
  EXPECT_EQ(a.stats().shed[0].load(), 1u);
  a.release(R, now);
  ASSERT_TRUE(queued.answer);
  EXPECT_TRUE(*queued.answer) << "the queued waiter, not a try_arrive, got the slot";
  a.release(R, now);
  EXPECT_EQ(a.in_flight(R), 0u);
  EXPECT_EQ(a.try_arrive(R, now), Decision::admit);
}

TEST_F(AdmissionTest, AdmitsUpToTheLimitThenQueuesThenSheds) {
  Admission a(small(2));
  arrive(a, R, Decision::admit);
  arrive(a, R, Decision::admit);
  EXPECT_EQ(a.in_flight(R), 2u);
  Probe& q1 = arrive(a, R, Decision::wait);
  arrive(a, R, Decision::wait);
  arrive(a, R, Decision::shed);  // the queue holds max_in_flight waiters at most
  EXPECT_EQ(a.waiting(R), 2u);
  // Classes are independent.
  arrive(a, W, Decision::admit);
  EXPECT_EQ(a.stats().shed[0].load(), 1u);

  now += 1ms;
  a.release(R, now);
  ASSERT_TRUE(q1.answer.has_value());
  EXPECT_TRUE(*q1.answer);  // FIFO: the oldest waiter gets the slot
  EXPECT_EQ(a.in_flight(R), 2u);
  EXPECT_EQ(a.waiting(R), 1u);
}

TEST_F(AdmissionTest, ExemptIsNeverCountedNorShed) {
  Admission a(small(1));
  arrive(a, R, Decision::admit);
  for (int i = 0; i < 10; ++i) arrive(a, RequestClass::exempt, Decision::admit);
  EXPECT_EQ(a.in_flight(R), 1u);
}

TEST_F(AdmissionTest, ABurstIsQueued) {
  Admission a(small(1));
  arrive(a, R, Decision::admit);
  Probe& w1 = arrive(a, R, Decision::wait);
  now += 30ms;  // over the target, once
  a.release(R, now);
  EXPECT_EQ(w1.answer, std::optional<bool>(true));
  EXPECT_FALSE(a.overloaded(R, now));
}

TEST_F(AdmissionTest, AStandingQueueIsShedAfterAnInterval) {
  Admission a(small(1));
  arrive(a, R, Decision::admit);  // holds the one slot
  int waits = standing_queue(a, 50ms);
  // Not before the first whole interval with every delay over the target has passed.
  EXPECT_GE(waits, 3);
  EXPECT_TRUE(a.overloaded(R, now));
  EXPECT_GE(a.stats().overloaded_intervals.load(), 1u);
  // Another class is not affected by this class's queue.
  EXPECT_FALSE(a.overloaded(W, now));
  arrive(a, W, Decision::admit);
}

TEST_F(AdmissionTest, OverloadEndsAfterAnIntervalWithAShortDelay) {
  Admission a(small(1));
  arrive(a, R, Decision::admit);
  ASSERT_GE(standing_queue(a, 50ms), 0);
  ASSERT_TRUE(a.overloaded(R, now));
  a.release(R, now);
  arrive(a, R, Decision::admit);  // a free slot: a 0 delay sample
  now += 101ms;
  EXPECT_FALSE(a.overloaded(R, now));
}

TEST_F(AdmissionTest, AWaiterHandedASlotLateWhileOverloadedIsShed) {
  Admission a(small(2));
  const auto t0 = now;
  arrive(a, R, Decision::admit);
  arrive(a, R, Decision::admit);
  now = t0 + 10ms;
  Probe& late = arrive(a, R, Decision::wait);  // queued before any overload
  now = t0 + 100ms;
  Probe& other = arrive(a, R, Decision::wait);
  now = t0 + 150ms;
  ASSERT_TRUE(a.cancel(other.w, now));  // this interval's minimum delay: 50 ms
  now = t0 + 260ms;
  a.release(R, now);
  ASSERT_TRUE(late.answer.has_value());
  EXPECT_FALSE(*late.answer);  // waited 250 ms > 2 x target while overloaded
  EXPECT_EQ(a.in_flight(R), 1u);
}

TEST_F(AdmissionTest, CancelShedsAQueuedWaiterOnce) {
  Admission a(small(1));
  arrive(a, R, Decision::admit);
  Probe& w = arrive(a, R, Decision::wait);
  now += a.max_wait();
  EXPECT_TRUE(a.cancel(w.w, now));
  EXPECT_EQ(a.waiting(R), 0u);
  a.release(R, now);
  EXPECT_FALSE(w.answer.has_value());  // no wake after a successful cancel
  // A waiter already handed its slot cannot be cancelled.
  arrive(a, R, Decision::admit);
  Probe& w2 = arrive(a, R, Decision::wait);
  a.release(R, now);
  EXPECT_EQ(w2.answer, std::optional<bool>(true));
  EXPECT_FALSE(a.cancel(w2.w, now));
}

TEST_F(AdmissionTest, TimedOutWaitersAloneMarkTheClassOverloaded) {
  // Every slot stuck (e.g. a stalled disk): nothing is released, waiters time out.
  Admission a(small(1));
  arrive(a, R, Decision::admit);
  EXPECT_GE(standing_queue(a, a.max_wait()), 1);
  EXPECT_TRUE(a.overloaded(R, now));
}

// Feeds the lag probe `n` samples of `lag`, one per 10 ms + lag (the probe's period).
void feed_lag(Admission& a, Admission::time_point& now, Admission::duration lag, int n) {
  for (int i = 0; i < n; ++i) {
    now += 10ms + lag;
    a.observe_lag(lag, now);
  }
}

// Of `n` arrivals with free slots, how many are shed (each admitted one is released).
int shed_of(Admission& a, Admission::time_point now, int n) {
  int shed = 0;
  for (int i = 0; i < n; ++i) {
    Admission::Waiter w;
    switch (a.arrive(R, w, now)) {
      case Decision::shed: ++shed; break;
      case Decision::admit: a.release(R, now); break;
      case Decision::wait: ADD_FAILURE() << "free slots: no wait expected"; break;
    }
  }
  return shed;
}

TEST_F(AdmissionTest, SustainedEventLoopLagShedsAGrowingShareEvenWithFreeSlots) {
  Admission a(small(100));
  EXPECT_EQ(shed_of(a, now, 1000), 0);
  feed_lag(a, now, 60ms, 5);  // 0.35 s at three times the target
  double p1 = a.shed_probability();
  EXPECT_GT(p1, 0.0);
  feed_lag(a, now, 60ms, 30);  // 2.1 s
  double p2 = a.shed_probability();
  EXPECT_GT(p2, p1);
  EXPECT_GT(p2, 0.3);
  EXPECT_TRUE(a.overloaded(R, now));
  // The coin follows the probability (binomial: 4 sigma is under 0.07 for 1000 draws).
  int shed = shed_of(a, now, 1000);
  EXPECT_NEAR(shed / 1000.0, p2, 0.07);
  // At the target the probability holds; under half of it, it decays and nothing is shed.
  feed_lag(a, now, 20ms, 10);
  EXPECT_NEAR(a.shed_probability(), p2, 0.05);
  feed_lag(a, now, 1ms, 300);
  EXPECT_LT(a.shed_probability(), 0.01);
  EXPECT_EQ(shed_of(a, now, 1000), 0);
}

TEST_F(AdmissionTest, ALagSpikeShedsNothing) {
  Admission a(small(100));
  feed_lag(a, now, 1ms, 10);
  feed_lag(a, now, 200ms, 1);
  feed_lag(a, now, 1ms, 1);
  // The spike moved the probability a little (its beta term), under the burst allowance.
  EXPECT_LT(a.shed_probability(), 0.2);
  EXPECT_EQ(shed_of(a, now, 1000), 0);
}

TEST_F(AdmissionTest, HostHiccupsBetweenShortLagsShedNothing) {
  // Every third sample is late by 150 ms (the host took the CPU), the rest are prompt: the
  // minimum over 200 ms stays low, so the probability does not build up.
  Admission a(small(100));
  for (int i = 0; i < 60; ++i) feed_lag(a, now, i % 3 == 2 ? 150ms : 1ms, 1);
  EXPECT_EQ(a.shed_probability(), 0.0);
  EXPECT_EQ(shed_of(a, now, 1000), 0);
}

TEST_F(AdmissionTest, LagJustOverTheTargetRampsSlowly) {
  Admission a(small(100));
  feed_lag(a, now, 25ms, 28);  // 1 s just over the target: a host hiccup, not an overload
  EXPECT_LT(a.shed_probability(), 0.05);
}

TEST_F(AdmissionTest, LagTargetZeroTurnsTheLagSignalOff) {
  AdmissionOptions o = small(100);
  o.loop_lag_target = 0ms;
  Admission a(o);
  feed_lag(a, now, 500ms, 30);
  EXPECT_FALSE(a.overloaded(R, now));
  EXPECT_EQ(a.shed_probability(), 0.0);
  EXPECT_EQ(shed_of(a, now, 100), 0);
}

TEST_F(AdmissionTest, NoSamplesForAWholeIntervalIsNotOverloaded) {
  Admission a(small(1));
  arrive(a, R, Decision::admit);
  ASSERT_GE(standing_queue(a, 50ms), 0);
  ASSERT_TRUE(a.overloaded(R, now));
  now += 10s;
  EXPECT_FALSE(a.overloaded(R, now));
}

}  // namespace
}  // namespace commentd::http

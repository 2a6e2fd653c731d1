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

TEST_F(AdmissionTest, EventLoopLagShedsEvenWithFreeSlots) {
  Admission a(small(100));
  for (int i = 0; i < 12; ++i) {
    a.observe_lag(45ms, now);
    now += 10ms;
  }
  EXPECT_TRUE(a.overloaded(R, now));
  EXPECT_TRUE(a.overloaded(W, now));
  arrive(a, R, Decision::shed);
  // The lag falls under 2 x target: admitted again, though the interval is not over.
  a.observe_lag(5ms, now);
  arrive(a, R, Decision::admit);
  // A whole interval of small lag ends the overload.
  for (int i = 0; i < 12; ++i) {
    a.observe_lag(1ms, now);
    now += 10ms;
  }
  EXPECT_FALSE(a.overloaded(R, now));
}

TEST_F(AdmissionTest, ALagBurstShorterThanAnIntervalShedsNothing) {
  Admission a(small(100));
  for (int i = 0; i < 12; ++i) {
    a.observe_lag(i == 5 ? 200ms : 1ms, now);
    now += 10ms;
  }
  EXPECT_FALSE(a.overloaded(R, now));
  a.observe_lag(200ms, now);
  arrive(a, R, Decision::admit);
}

TEST_F(AdmissionTest, LagTargetZeroTurnsTheLagSignalOff) {
  AdmissionOptions o = small(100);
  o.loop_lag_target = 0ms;
  Admission a(o);
  for (int i = 0; i < 30; ++i) {
    a.observe_lag(500ms, now);
    now += 10ms;
  }
  EXPECT_FALSE(a.overloaded(R, now));
  arrive(a, R, Decision::admit);
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

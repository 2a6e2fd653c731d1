#include "core/circuit_breaker.h"

#include <gtest/gtest.h>

namespace commentd {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;
using Change = CircuitBreaker::Change;

struct BreakerTest : ::testing::Test {
  CircuitBreaker b{{.failures = 3, .open_for = 1000ms}};
  CircuitBreaker::clock::time_point t0 = CircuitBreaker::clock::time_point{} + 1h;
};

TEST_F(BreakerTest, OpensAfterConsecutiveFailuresOnly) {
  EXPECT_TRUE(b.admit(t0));
  EXPECT_EQ(b.record(false, t0), Change::none);
  EXPECT_EQ(b.record(false, t0), Change::none);
  EXPECT_EQ(b.record(true, t0), Change::none);  // a success resets the run
  EXPECT_EQ(b.record(false, t0), Change::none);
  EXPECT_EQ(b.record(false, t0), Change::none);
  EXPECT_EQ(b.state(), State::closed);
  EXPECT_EQ(b.record(false, t0), Change::opened);
  EXPECT_EQ(b.state(), State::open);
  EXPECT_EQ(b.stats().opens.load(), 1u);
}

TEST_F(BreakerTest, OpenRefusesUntilOneProbeThenCloses) {
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  EXPECT_FALSE(b.admit(t0));
  EXPECT_FALSE(b.admit(t0 + 999ms));
  EXPECT_EQ(b.stats().rejected.load(), 2u);
  EXPECT_TRUE(b.admit(t0 + 1000ms));  // the probe
  EXPECT_EQ(b.state(), State::half_open);
  EXPECT_FALSE(b.admit(t0 + 1001ms)) << "one probe at a time";
  EXPECT_EQ(b.record(true, t0 + 1002ms), Change::closed);
  EXPECT_TRUE(b.admit(t0 + 1003ms));
  EXPECT_EQ(b.state(), State::closed);
}

TEST_F(BreakerTest, FailedProbeReopens) {
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  ASSERT_TRUE(b.admit(t0 + 1s));
  EXPECT_EQ(b.record(false, t0 + 1s), Change::opened);
  EXPECT_FALSE(b.admit(t0 + 1s + 999ms));
  EXPECT_TRUE(b.admit(t0 + 2s));
  EXPECT_EQ(b.stats().opens.load(), 2u);
}

TEST_F(BreakerTest, LostProbeIsReplacedAfterOpenFor) {
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  ASSERT_TRUE(b.admit(t0 + 1s));  // its caller never reports back
  EXPECT_FALSE(b.admit(t0 + 1500ms));
  EXPECT_TRUE(b.admit(t0 + 2s)) << "a breaker must never stay shut because one probe was lost";
}

TEST(Breaker, AProbeIsAwaitedForProbeTimeout) {
  CircuitBreaker b{{.failures = 1, .open_for = 1000ms, .probe_timeout = 5000ms}};
  auto t0 = CircuitBreaker::clock::time_point{} + 1h;
  b.record(false, t0);
  ASSERT_TRUE(b.admit(t0 + 1s));
  EXPECT_FALSE(b.admit(t0 + 5999ms)) << "the probe may still answer";
  EXPECT_TRUE(b.admit(t0 + 6s));
}

TEST_F(BreakerTest, LateFailuresWhileOpenDoNotExtendIt) {
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  EXPECT_EQ(b.record(false, t0 + 900ms), Change::none);  // admitted before it opened
  EXPECT_TRUE(b.admit(t0 + 1s));
}

TEST(Breaker, TimeoutsWithinTheWindowCountOnce) {
  CircuitBreaker b{{.failures = 3, .open_for = 1000ms, .timeout_window = 300ms}};
  using O = CircuitBreaker::Outcome;
  auto t0 = CircuitBreaker::clock::time_point{} + 1h;
  // One stall: 50 calls in flight time out together; one failure, still closed.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(b.record(O::timed_out, t0 + std::chrono::milliseconds(i)), Change::none);
  EXPECT_EQ(b.state(), State::closed);
  // A stuck server: timeouts go on for failures x window without a success.
  EXPECT_EQ(b.record(O::timed_out, t0 + 300ms), Change::none);
  EXPECT_EQ(b.record(O::timed_out, t0 + 600ms), Change::opened);
  // Other failures are not coalesced, and a success resets the run.
  CircuitBreaker c{{.failures = 2, .open_for = 1000ms, .timeout_window = 300ms}};
  c.record(O::timed_out, t0);
  EXPECT_EQ(c.record(O::ok, t0 + 1ms), Change::none);
  c.record(O::failed, t0 + 2ms);
  EXPECT_EQ(c.record(O::failed, t0 + 3ms), Change::opened);
}

TEST(Breaker, ARefusedGroupCountsEachCall) {
  CircuitBreaker b{{.failures = 1, .open_for = 1000ms}};
  auto t0 = CircuitBreaker::clock::time_point{} + 1h;
  b.record(false, t0);
  EXPECT_FALSE(b.admit(t0 + 1ms, 7));
  EXPECT_EQ(b.stats().rejected.load(), 7u);
}

TEST(Breaker, CallsInFlightWithNoAnswerForStallAfterOpenIt) {
  CircuitBreaker b{{.failures = 3, .open_for = 1000ms, .stall_after = 500ms, .stall_calls = 3}};
  using O = CircuitBreaker::Outcome;
  auto t0 = CircuitBreaker::clock::time_point{} + 1h;
  // A healthy dependency: answers keep coming, however long calls stay in flight in all.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(b.admit(t0 + i * 100ms));
    ASSERT_TRUE(b.admit(t0 + i * 100ms));
    ASSERT_TRUE(b.admit(t0 + i * 100ms));
    EXPECT_EQ(b.record(O::ok, t0 + i * 100ms + 50ms), Change::none);
    EXPECT_EQ(b.record(O::ok, t0 + i * 100ms + 60ms), Change::none);
    EXPECT_EQ(b.record(O::ok, t0 + i * 100ms + 70ms), Change::none);
  }
  const auto t1 = t0 + 10s;
  // It hangs: three calls go in and nothing answers.
  ASSERT_TRUE(b.admit(t1));
  ASSERT_TRUE(b.admit(t1 + 10ms));
  ASSERT_TRUE(b.admit(t1 + 20ms));
  EXPECT_TRUE(b.admit(t1 + 499ms)) << "not before stall_after";
  EXPECT_FALSE(b.admit(t1 + 500ms)) << "no answer for stall_after with calls in flight: open, without a timeout";
  EXPECT_EQ(b.state(), State::open);
  EXPECT_EQ(b.stats().stalls.load(), 1u);
  EXPECT_EQ(b.stats().opens.load(), 1u);
  EXPECT_FALSE(b.admit(t1 + 1499ms));
  // The hung calls time out while it is open: nothing changes.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b.record(O::timed_out, t1 + 1400ms), Change::none);
  ASSERT_TRUE(b.admit(t1 + 1500ms));  // the probe
  EXPECT_EQ(b.record(O::ok, t1 + 1510ms), Change::closed);
  EXPECT_TRUE(b.admit(t1 + 1520ms));
}

TEST(Breaker, OneSlowCallOrReleasedCallsNeverStallIt) {
  CircuitBreaker b{{.failures = 3, .open_for = 1000ms, .stall_after = 500ms, .stall_calls = 3}};
  auto t0 = CircuitBreaker::clock::time_point{} + 1h;
  // One long call (a big scan) with a few short ones that come and go, released (cut by
  // their callers' deadlines: no evidence either way).
  ASSERT_TRUE(b.admit(t0));
  for (int i = 1; i < 20; ++i) {
    ASSERT_TRUE(b.admit(t0 + i * 100ms)) << i;
    b.release();
  }
  EXPECT_EQ(b.state(), State::closed);
  EXPECT_EQ(b.stats().stalls.load(), 0u);
  // Without stall_after nothing is counted: calls never recorded do not matter.
  CircuitBreaker c{{.failures = 3, .open_for = 1000ms}};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.admit(t0 + i * 1s));
}

}  // namespace
}  // namespace commentd

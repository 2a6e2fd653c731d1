// The RateLimiter conformance suite: the contract of limit/rate_limiter.h, as a typed gtest
// suite that every implementation instantiates (memory in memory_limiter_test.cpp; Redis in
// a *_redistest.cpp). No test sleeps: time passes only through the harness.
//
// A harness H (one per test, default-constructible) provides:
//   std::unique_ptr<RateLimiter> make(Rule create_comment, Rule add_reaction);  // fresh state
//   void advance_ms(TimeMs ms);  // time passes by `ms` for every limiter it made
//
// Instantiate inside the suite's namespace (gtest names it unqualified):
//   using Impls = ::testing::Types<MyHarness>;
//   namespace commentd::limit::conformance {
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, RateLimiterConformance, Impls);
//   }
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "limit/rate_limiter.h"
#include "testing/run_sync.h"

namespace commentd::limit::conformance {

template <class H>
class RateLimiterConformance : public ::testing::Test {
 protected:
  std::unique_ptr<RateLimiter> make(Rule cc, Rule ar) { return h_.make(cc, ar); }
  void advance_ms(TimeMs ms) { h_.advance_ms(ms); }

  static Decision check(RateLimiter& l, const std::string& subject, Action a) {
    Decision d = testing::run_sync(l.check(subject, a, Deadline::after(std::chrono::seconds(10))));
    EXPECT_NE(d.outcome, Outcome::error) << d.error;
    return d;
  }
  static bool allowed(RateLimiter& l, const std::string& subject, Action a) {
    return check(l, subject, a).outcome == Outcome::allowed;
  }
  // Allowed requests in a row at the current time, up to `cap`.
  static int burst(RateLimiter& l, const std::string& subject, Action a, int cap = 2000) {
    int n = 0;
    while (n < cap && allowed(l, subject, a)) ++n;
    return n;
  }

  H h_;
};

TYPED_TEST_SUITE_P(RateLimiterConformance);

constexpr TimeMs kMinute = 60'000;

TYPED_TEST_P(RateLimiterConformance, BurstOfNThenLimited) {
  auto l = this->make({5, kMinute}, {0, kMinute});
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(this->allowed(*l, "u:alice", Action::create_comment)) << i;
  Decision d = this->check(*l, "u:alice", Action::create_comment);
  EXPECT_EQ(d.outcome, Outcome::limited);
  EXPECT_GT(d.retry_after_ms, 0);
  EXPECT_LE(d.retry_after_ms, kMinute);
  // A refusal consumes nothing: the answer stays the same.
  Decision d2 = this->check(*l, "u:alice", Action::create_comment);
  EXPECT_EQ(d2.outcome, Outcome::limited);
  EXPECT_EQ(d2.retry_after_ms, d.retry_after_ms);
}

TYPED_TEST_P(RateLimiterConformance, OneMoreAfterWindowOverN) {
  const TimeMs window = kMinute;
  const int n = 5;
  auto l = this->make({n, window}, {0, window});
  EXPECT_EQ(this->burst(*l, "u:bob", Action::create_comment), n);
  this->advance_ms(window / n - 1);
  EXPECT_FALSE(this->allowed(*l, "u:bob", Action::create_comment));
  this->advance_ms(1);
  EXPECT_TRUE(this->allowed(*l, "u:bob", Action::create_comment));
  EXPECT_FALSE(this->allowed(*l, "u:bob", Action::create_comment));
  // A whole quiet window restores the whole burst, and no more.
  this->advance_ms(window);
  EXPECT_EQ(this->burst(*l, "u:bob", Action::create_comment), n);
}

TYPED_TEST_P(RateLimiterConformance, RetryAfterIsEnoughAndNotTooMuch) {
  for (int64_t n : {1, 3, 7, 100}) {
    for (TimeMs window : {TimeMs{1000}, kMinute, TimeMs{3'600'000}}) {
      auto l = this->make({n, window}, {0, window});
      const std::string who = "u:" + std::to_string(n) + "/" + std::to_string(window);
      EXPECT_EQ(this->burst(*l, who, Action::create_comment), n) << who;
      Decision d = this->check(*l, who, Action::create_comment);
      ASSERT_EQ(d.outcome, Outcome::limited) << who;
      EXPECT_GT(d.retry_after_ms, 0);
      EXPECT_LE(d.retry_after_ms, window);
      this->advance_ms(d.retry_after_ms - 1);
      EXPECT_FALSE(this->allowed(*l, who, Action::create_comment)) << who;
      this->advance_ms(1);
      EXPECT_TRUE(this->allowed(*l, who, Action::create_comment)) << who;
    }
  }
}

TYPED_TEST_P(RateLimiterConformance, SustainedRateIsLimitPerWindow) {
  // A burst of n, then one per window/n: over any span L at most n + L*n/window allowed, and
  // under constant pressure about that many (it does not starve).
  const TimeMs window = 10'000;
  const int n = 7;
  auto l = this->make({n, window}, {0, window});
  std::mt19937_64 rng(3);
  std::vector<TimeMs> allowed_at;
  TimeMs now = 0;
  for (int i = 0; i < 2000; ++i) {
    const TimeMs step = static_cast<TimeMs>(rng() % 200);
    this->advance_ms(step);
    now += step;
    if (this->allowed(*l, "u:steady", Action::create_comment)) allowed_at.push_back(now);
  }
  ASSERT_GT(allowed_at.size(), static_cast<size_t>(n));
  for (size_t i = 0; i < allowed_at.size(); ++i)
    for (size_t j = i + 1; j < allowed_at.size(); ++j) {
      const TimeMs span = allowed_at[j] - allowed_at[i];
      if (span > 3 * window) break;
      ASSERT_LE(static_cast<int64_t>(j - i + 1), n + span * n / window + 1)
          << "too many between " << allowed_at[i] << " and " << allowed_at[j];
    }
  const TimeMs elapsed = allowed_at.back() - allowed_at.front();
  EXPECT_GE(static_cast<int64_t>(allowed_at.size()), elapsed * n / window - 1);
}

TYPED_TEST_P(RateLimiterConformance, ZeroLimitIsUnlimited) {
  auto l = this->make({0, kMinute}, {0, kMinute});
  for (int i = 0; i < 500; ++i) {
    Decision d = this->check(*l, "u:free", i % 2 ? Action::create_comment : Action::add_reaction);
    ASSERT_EQ(d.outcome, Outcome::allowed) << i;
    EXPECT_EQ(d.retry_after_ms, 0);
  }
}

TYPED_TEST_P(RateLimiterConformance, ActionsAreIndependent) {
  auto l = this->make({3, kMinute}, {10, kMinute});
  EXPECT_EQ(this->burst(*l, "u:carol", Action::create_comment), 3);
  EXPECT_EQ(this->burst(*l, "u:carol", Action::add_reaction), 10);
  EXPECT_FALSE(this->allowed(*l, "u:carol", Action::create_comment));
}

TYPED_TEST_P(RateLimiterConformance, SubjectsAreIndependent) {
  auto l = this->make({2, kMinute}, {3, kMinute});
  // Subjects that differ in one character, and a user and an address with the same text.
  std::vector<std::string> subjects{"ip:10.0.0.1", "u:10.0.0.1", "ip:10.0.0.2", "ip:::1"};
  for (int c = 0; c < 64; ++c)
    subjects.push_back("u:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f40" + std::to_string(10 + c));
  for (const auto& s : subjects) {
    ASSERT_EQ(this->burst(*l, s, Action::create_comment, 10), 2) << s;
    ASSERT_EQ(this->burst(*l, s, Action::add_reaction, 10), 3) << s;
  }
}

REGISTER_TYPED_TEST_SUITE_P(RateLimiterConformance, BurstOfNThenLimited, OneMoreAfterWindowOverN,
                            RetryAfterIsEnoughAndNotTooMuch, SustainedRateIsLimitPerWindow,
                            ZeroLimitIsUnlimited, ActionsAreIndependent, SubjectsAreIndependent);

}  // namespace commentd::limit::conformance

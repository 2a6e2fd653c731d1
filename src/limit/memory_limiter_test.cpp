#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "limit/rate_limiter.h"

namespace commentd::limit {
namespace {

Uuid user(uint8_t n) {
  Uuid u;
  u.bytes[0] = 0xA0;
  u.bytes[6] = 0x70;
  u.bytes[15] = n;
  return u;
}

// Allowed requests in a row at the current time, up to `cap`.
int burst(RateLimiter& l, const Uuid& u, Action a, int cap = 100'000) {
  int n = 0;
  while (n < cap && l.check(u, a).allowed) ++n;
  return n;
}

TEST(MemoryLimiterTest, BurstOfNThenRefused) {
  ManualClock clock;
  const TimeMs window = 60'000;
  auto l = make_memory_limiter({5, window}, {0, window}, clock);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(l->check(user(1), Action::create_comment).allowed) << i;
  Decision d = l->check(user(1), Action::create_comment);
  EXPECT_FALSE(d.allowed);
  EXPECT_GT(d.retry_after_ms, 0);
  EXPECT_LE(d.retry_after_ms, window);
  // Refusals do not consume budget: the answer stays the same.
  Decision d2 = l->check(user(1), Action::create_comment);
  EXPECT_FALSE(d2.allowed);
  EXPECT_EQ(d2.retry_after_ms, d.retry_after_ms);
}

TEST(MemoryLimiterTest, OneMoreAfterWindowOverN) {
  ManualClock clock;
  const TimeMs window = 60'000;
  const int n = 5;
  auto l = make_memory_limiter({n, window}, {0, window}, clock);
  EXPECT_EQ(burst(*l, user(1), Action::create_comment), n);
  clock.advance_ms(window / n - 1);
  EXPECT_FALSE(l->check(user(1), Action::create_comment).allowed);
  clock.advance_ms(1);
  EXPECT_TRUE(l->check(user(1), Action::create_comment).allowed);
  EXPECT_FALSE(l->check(user(1), Action::create_comment).allowed);
  // A whole quiet window restores the whole burst, and no more.
  clock.advance_ms(window);
  EXPECT_EQ(burst(*l, user(1), Action::create_comment), n);
}

TEST(MemoryLimiterTest, RetryAfterIsEnoughAndNotTooMuch) {
  for (int64_t n : {1, 2, 3, 7, 10, 100, 1000}) {
    for (TimeMs window : {1000, 60'000, 3'600'000}) {
      ManualClock clock;
      auto l = make_memory_limiter({n, window}, {0, window}, clock);
      EXPECT_EQ(burst(*l, user(1), Action::create_comment), n) << n << "/" << window;
      Decision d = l->check(user(1), Action::create_comment);
      ASSERT_FALSE(d.allowed);
      EXPECT_GT(d.retry_after_ms, 0);
      EXPECT_LE(d.retry_after_ms, window);
      clock.advance_ms(d.retry_after_ms - 1);
      EXPECT_FALSE(l->check(user(1), Action::create_comment).allowed) << n << "/" << window;
      clock.advance_ms(1);
      EXPECT_TRUE(l->check(user(1), Action::create_comment).allowed) << n << "/" << window;
    }
  }
}

TEST(MemoryLimiterTest, SustainedRateIsLimitPerWindow) {
  // GCRA admits a burst of n, then one per window/n: over any span L at most n + L*n/window,
  // and under constant pressure it admits about that many (it does not starve).
  ManualClock clock;
  const TimeMs window = 10'000;
  const int n = 7;
  auto l = make_memory_limiter({n, window}, {0, window}, clock);
  std::mt19937_64 rng(3);
  std::vector<TimeMs> allowed_at;
  for (int i = 0; i < 20'000; ++i) {
    clock.advance_ms(static_cast<TimeMs>(rng() % 50));
    if (l->check(user(1), Action::create_comment).allowed) allowed_at.push_back(clock.now_ms());
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

TEST(MemoryLimiterTest, ZeroLimitIsUnlimited) {
  ManualClock clock;
  auto l = make_memory_limiter({0, 60'000}, {0, 60'000}, clock);
  for (int i = 0; i < 10'000; ++i) {
    Decision d = l->check(user(1), i % 2 ? Action::create_comment : Action::add_reaction);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.retry_after_ms, 0);
  }
}

TEST(MemoryLimiterTest, ActionsAreIndependent) {
  ManualClock clock;
  auto l = make_memory_limiter({3, 60'000}, {10, 60'000}, clock);
  EXPECT_EQ(burst(*l, user(1), Action::create_comment), 3);
  EXPECT_EQ(burst(*l, user(1), Action::add_reaction), 10);
  EXPECT_FALSE(l->check(user(1), Action::create_comment).allowed);
}

TEST(MemoryLimiterTest, UsersAreIndependent) {
  ManualClock clock;
  auto l = make_memory_limiter({3, 60'000}, {10, 60'000}, clock);
  EXPECT_EQ(burst(*l, user(1), Action::create_comment), 3);
  EXPECT_EQ(burst(*l, user(2), Action::create_comment), 3);
  EXPECT_EQ(burst(*l, user(1), Action::add_reaction), 10);
  EXPECT_EQ(burst(*l, user(3), Action::add_reaction), 10);
}

TEST(MemoryLimiterTest, UsersAndActionsIndependentForEveryLastByte) {
  // Users that differ only in their last byte, with both actions: no bucket is shared.
  ManualClock clock;
  auto l = make_memory_limiter({2, 60'000}, {3, 60'000}, clock);
  for (int b = 0; b < 256; ++b) {
    Uuid u = user(static_cast<uint8_t>(b));
    ASSERT_EQ(burst(*l, u, Action::create_comment, 10), 2) << "user byte " << b;
    ASSERT_EQ(burst(*l, u, Action::add_reaction, 10), 3) << "user byte " << b;
  }
}

TEST(MemoryLimiterTest, ManyKeysStayBoundedWithoutFalseRefusals) {
  ManualClock clock;
  auto l = make_memory_limiter({1, 60'000}, {0, 60'000}, clock, /*max_keys=*/64);
  // Far more users than max_keys: each one's first request is always allowed.
  for (int i = 0; i < 5000; ++i) {
    Uuid u;
    u.bytes[0] = 0xB0;
    u.bytes[14] = static_cast<uint8_t>(i >> 8);
    u.bytes[15] = static_cast<uint8_t>(i);
    ASSERT_TRUE(l->check(u, Action::create_comment).allowed) << i;
  }
}

}  // namespace
}  // namespace commentd::limit

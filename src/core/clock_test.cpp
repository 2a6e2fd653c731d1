#include "core/clock.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

namespace commentd {
namespace {

constexpr TimeMs kHour = 3'600'000, kDay = 24 * kHour;
// 2024-05-01T00:00:00Z
constexpr TimeMs kMay1 = 1'714'521'600'000;

TEST(BucketRule, TrendingIsHourlyQuietIsDaily) {
  const TimeMs t = kMay1 + 13 * kHour + 59 * 60'000 + 999;
  EXPECT_EQ(comment_bucket(t, true), "2024-05-01-13");
  EXPECT_EQ(comment_bucket(t, false), "2024-05-01");
  EXPECT_EQ(comment_bucket(kMay1 - 1, false), "2024-04-30");
  EXPECT_EQ(comment_bucket(kMay1 - 1, true), "2024-04-30-23");
  EXPECT_EQ(comment_bucket(kMay1, true), "2024-05-01-00");
}

TEST(BucketRule, SpansCoverTheirTimesAndNothingElse) {
  for (TimeMs t : {kMay1, kMay1 + 1, kMay1 + kHour - 1, kMay1 + 17 * kHour + 5, kMay1 + kDay - 1, TimeMs{1000}}) {
    for (bool trending : {true, false}) {
      auto s = bucket_span(comment_bucket(t, trending));
      ASSERT_TRUE(s.has_value()) << t;
      EXPECT_EQ(s->hourly, trending);
      EXPECT_LE(s->start, t);
      EXPECT_LT(t, s->end);
      EXPECT_EQ(s->end - s->start, trending ? kHour : kDay);
    }
  }
  EXPECT_EQ(bucket_span("2024-05-01"), (BucketSpan{false, kMay1, kMay1 + kDay}));
  EXPECT_EQ(bucket_span("2024-05-01-02"), (BucketSpan{true, kMay1 + 2 * kHour, kMay1 + 3 * kHour}));
}

TEST(BucketRule, RefusesNamesThatAreNotBuckets) {
  for (const char* bad : {"", "2024-05-0", "2024-05-01-", "2024-05-01-24", "2024-13-01", "2024-02-30",
                          "2024/05/01", "2024-05-01T12", "2024-05-01-1x", "2024-05-01-123", "abcd-ef-gh"})
    EXPECT_FALSE(bucket_span(bad).has_value()) << bad;
}

// The reader lists a video's buckets in text order; within one granularity that must be time
// order, and the day sorts just before its own hours.
TEST(BucketRule, TextOrderIsTimeOrderWithinAGranularity) {
  std::string prev_h, prev_d;
  for (TimeMs t = kMay1 - 3 * kDay; t < kMay1 + 40 * kDay; t += 7 * kHour) {
    std::string h = time_bucket(t), d = day_bucket(t);
    if (!prev_h.empty()) {
      EXPECT_LT(prev_h, h);
      EXPECT_LE(prev_d, d);
    }
    EXPECT_LT(d, h);
    EXPECT_LT(h, day_bucket(t + kDay));
    prev_h = h;
    prev_d = d;
  }
}

// The formatter against gmtime_r + printf (what it replaced) over times from 1970 to 9999,
// before 1970, and the edges of days, months, leap years and milliseconds.
std::string reference(TimeMs t, const char* form) {
  const std::time_t secs = static_cast<std::time_t>(t >= 0 ? t / 1000 : (t - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const int ms = static_cast<int>(((t % 1000) + 1000) % 1000);
  char buf[80];
  std::snprintf(buf, sizeof buf, form, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

TEST(TimeFormat, EqualsGmtimeAndPrintf) {
  std::vector<TimeMs> times = {0, -1, 999, 1000, -999, -1000, -1001, kMay1, kMay1 - 1, 951'782'400'000 /* 2000-02-29 */,
                               951'868'799'999, 4'107'542'400'000 /* 2100-03-01 */, 253'402'300'799'999 /* 9999-12-31 */,
                               -62'135'596'800'000 /* 0001-01-01 */};
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<TimeMs> any(-2'208'988'800'000, 253'402'300'799'999);  // 1900 .. 9999
  for (int i = 0; i < 20000; ++i) times.push_back(any(rng));
  for (TimeMs t : times) {
    ASSERT_EQ(format_rfc3339_ms(t), reference(t, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ")) << t;
    ASSERT_EQ(time_bucket(t), reference(t, "%04d-%02d-%02d-%02d")) << t;
    ASSERT_EQ(day_bucket(t), reference(t, "%04d-%02d-%02d")) << t;
  }
  EXPECT_EQ(format_rfc3339_ms(kMay1 + 13 * kHour + 5 * 60'000 + 7'042), "2024-05-01T13:05:07.042Z");
}

TEST(TimeFormat, AYearPastFourDigitsIsStillWhole) {
  const TimeMs y10000 = 253'402'300'800'000;  // 10000-01-01T00:00:00Z
  EXPECT_EQ(format_rfc3339_ms(y10000), "10000-01-01T00:00:00.000Z");
  EXPECT_EQ(day_bucket(y10000), "10000-01-01");
}

}  // namespace
}  // namespace commentd

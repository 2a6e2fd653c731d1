#include "core/clock.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace commentd

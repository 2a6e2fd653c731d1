#include "store/cql/bucket_lists.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace commentd::store::cql {
namespace {

using namespace std::chrono_literals;

constexpr TimeMs kHour = 3'600'000;
constexpr TimeMs kMay1 = 1'714'521'600'000;  // 2024-05-01T00:00:00Z

Uuid vid(uint64_t n) {
  Uuid u;
  for (int i = 0; i < 8; ++i) u.bytes[15 - i] = static_cast<uint8_t>(n >> (8 * i));
  return u;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(RecentBuckets, EveryHourAndDayTheRangeTouchesOnce) {
  EXPECT_EQ(sorted(recent_buckets(kMay1 + 10 * kHour + 5, kMay1 + 10 * kHour + 60'000)),
            (std::vector<std::string>{"2024-05-01", "2024-05-01-10"}));
  // Across midnight: both days and both hours.
  EXPECT_EQ(sorted(recent_buckets(kMay1 - 60'000, kMay1 + 60'000)),
            (std::vector<std::string>{"2024-04-30", "2024-04-30-23", "2024-05-01", "2024-05-01-00"}));
  // An hour's last and next hour's first millisecond.
  EXPECT_EQ(sorted(recent_buckets(kMay1 + kHour - 1, kMay1 + kHour)),
            (std::vector<std::string>{"2024-05-01", "2024-05-01-00", "2024-05-01-01"}));
  EXPECT_EQ(recent_buckets(kMay1 + 1, kMay1).size(), 0u);
  EXPECT_EQ(recent_buckets(kMay1 + 3 * kHour, kMay1 + 3 * kHour),
            (std::vector<std::string>{"2024-05-01-03", "2024-05-01"}));
}

TEST(BucketLists, KeptForTheTtlThenRead) {
  BucketLists lists(60s);
  const Uuid v = vid(1);
  EXPECT_FALSE(lists.get(v, kMay1).has_value());
  lists.put(v, {{"2024-05-01-10", "2024-05-01"}, true, kMay1});
  auto got = lists.get(v, kMay1 + 59'999);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->names, (std::vector<std::string>{"2024-05-01-10", "2024-05-01"}));
  EXPECT_TRUE(got->all);
  EXPECT_EQ(got->listed_at, kMay1);
  EXPECT_FALSE(lists.get(v, kMay1 + 60'000).has_value());  // expired, and dropped
  lists.put(v, {{"2024-05-01"}, true, kMay1 + 1000});
  EXPECT_FALSE(lists.get(v, kMay1 + 999).has_value());  // the clock stepped back: not trusted
  EXPECT_FALSE(lists.get(v, kMay1 + 1000).has_value());  // ... and the list is dropped
}

TEST(BucketLists, OffStoresNothing) {
  BucketLists lists(0ms);
  EXPECT_FALSE(lists.enabled());
  const Uuid v = vid(1);
  lists.put(v, {{"2024-05-01"}, true, kMay1});
  EXPECT_FALSE(lists.get(v, kMay1).has_value());
}

TEST(BucketLists, TheLaterOfTwoRacingReadsIsKept) {
  BucketLists lists(60s);
  const Uuid v = vid(1);
  lists.put(v, {{"2024-05-01-10", "2024-05-01"}, true, kMay1 + 10});
  lists.put(v, {{"2024-05-01"}, true, kMay1 + 5});  // started earlier, answered later
  EXPECT_EQ(lists.get(v, kMay1 + 20)->names.size(), 2u);
  lists.put(v, {{"2024-05-01-11", "2024-05-01-10", "2024-05-01"}, true, kMay1 + 15});
  EXPECT_EQ(lists.get(v, kMay1 + 20)->names.size(), 3u);
}

TEST(BucketLists, OwnWritesJoinTheListInOrder) {
  BucketLists lists(60s);
  const Uuid v = vid(1), other = vid(2);
  lists.add(v, "2024-05-01");  // no list kept: nothing to do
  EXPECT_FALSE(lists.get(v, kMay1).has_value());
  lists.put(v, {{"2024-05-01-10", "2024-04-01"}, true, kMay1});
  lists.add(v, "2024-05-01");
  lists.add(v, "2024-05-01-12");
  lists.add(v, "2023-01-01");
  lists.add(v, "2024-05-01");  // already there
  lists.add(other, "2024-05-01");
  EXPECT_EQ(lists.get(v, kMay1)->names,
            (std::vector<std::string>{"2024-05-01-12", "2024-05-01-10", "2024-05-01", "2024-04-01", "2023-01-01"}));
  EXPECT_FALSE(lists.get(other, kMay1).has_value());
  // A list cut short keeps what lies past its end to the reads that continue it.
  lists.put(other, {{"2024-05-01-10", "2024-05-01"}, false, kMay1});
  lists.add(other, "2024-04-01");
  lists.add(other, "2024-05-01-09");
  EXPECT_EQ(lists.get(other, kMay1)->names, (std::vector<std::string>{"2024-05-01-10", "2024-05-01-09", "2024-05-01"}));
}

TEST(BucketLists, BoundedLeastRecentlyUsedOut) {
  BucketLists lists(60s);
  const Uuid first = vid(0), second = vid(1);
  lists.put(first, {{"a"}, true, kMay1});
  lists.put(second, {{"b"}, true, kMay1});
  EXPECT_TRUE(lists.get(first, kMay1).has_value());  // used: `second` is now the oldest
  for (uint64_t i = 2; i < BucketLists::kMaxVideos + 1; ++i) lists.put(vid(i), {{"c"}, true, kMay1});
  EXPECT_TRUE(lists.get(first, kMay1).has_value());
  EXPECT_FALSE(lists.get(second, kMay1).has_value());
}

}  // namespace
}  // namespace commentd::store::cql

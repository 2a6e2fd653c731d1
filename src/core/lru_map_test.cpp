#include "core/lru_map.h"

#include <gtest/gtest.h>

#include <string>

namespace commentd {
namespace {

TEST(LruMap, ForgetsTheLeastRecentlyUsedPastItsCapacity) {
  LruMap<int, std::string> m(2);
  m.put(1, "one");
  m.put(2, "two");
  ASSERT_NE(m.find(1), nullptr);  // 1 is now the most recently used
  m.put(3, "three");              // so 2 goes
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.find(2), nullptr);
  ASSERT_NE(m.find(1), nullptr);
  EXPECT_EQ(*m.find(1), "one");
  EXPECT_EQ(*m.find(3), "three");
}

TEST(LruMap, PeekLeavesTheOrderAlone) {
  LruMap<int, int> m(2);
  m.put(1, 10);
  m.put(2, 20);
  ASSERT_NE(m.peek(1), nullptr);  // not a use: 1 stays the least recently used
  m.put(3, 30);
  EXPECT_EQ(m.peek(1), nullptr);
  EXPECT_EQ(*m.peek(2), 20);
}

TEST(LruMap, PutReplacesInPlaceAndEraseForgets) {
  LruMap<int, int> m(3);
  m.put(1, 10);
  m.put(1, 11);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(*m.find(1), 11);
  EXPECT_TRUE(m.erase(1));
  EXPECT_FALSE(m.erase(1));
  EXPECT_EQ(m.find(1), nullptr);
  EXPECT_EQ(m.size(), 0u);
}

TEST(LruMap, AZeroCapacityHoldsOne) {
  LruMap<int, int> m(0);
  EXPECT_EQ(m.capacity(), 1u);
  m.put(1, 1);
  m.put(2, 2);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_NE(m.find(2), nullptr);
}

TEST(LruMap, PopLeastRecentTakesTheOldestUse) {
  LruMap<int, int> m(3);
  m.put(1, 10);
  m.put(2, 20);
  m.put(3, 30);
  m.find(1);  // 2 is now the least recently used
  int v = 0;
  ASSERT_TRUE(m.pop_least_recent(&v));
  EXPECT_EQ(v, 20);
  EXPECT_EQ(m.find(2), nullptr);
  EXPECT_TRUE(m.pop_least_recent());
  EXPECT_EQ(m.find(3), nullptr);
  ASSERT_TRUE(m.pop_least_recent(&v));
  EXPECT_EQ(v, 10);
  EXPECT_FALSE(m.pop_least_recent(&v));
  EXPECT_EQ(m.size(), 0u);
}

}  // namespace
}  // namespace commentd

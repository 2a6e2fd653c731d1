#include "store/cql/page_rows.h"

#include <gtest/gtest.h>

namespace commentd::store::cql {
namespace {

using namespace std::chrono_literals;

Uuid id(uint8_t n) {
  Uuid u;
  u.bytes[15] = n;
  return u;
}

Comment row(uint8_t n, std::string content) {
  Comment c;
  c.id = id(n);
  c.content = std::move(content);
  return c;
}

TEST(PageRowsTest, ARowIsReusedForItsListUnderItsGenerationWithinTheTtl) {
  PageRows rows(1000ms);
  const auto t0 = PageRows::Clock::now();
  const Uuid list = id(100), other = id(101);
  rows.put(list, 7, row(1, "a"), rows.begin_fill(), t0);
  auto got = rows.get(list, 7, id(1), t0 + 999ms);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->content, "a");
  EXPECT_FALSE(rows.get(list, 8, id(1), t0)) << "another generation";
  EXPECT_FALSE(rows.get(other, 7, id(1), t0)) << "another list";
  EXPECT_FALSE(rows.get(list, 7, id(1), t0 + 1000ms)) << "past the TTL";
  EXPECT_FALSE(rows.get(list, 7, id(2), t0)) << "never read";
  EXPECT_EQ(rows.stats().hits.load(), 1u);
  EXPECT_EQ(rows.stats().misses.load(), 4u);
}

TEST(PageRowsTest, AForgetDropsTheRowAndRefusesTheFillsThatBeganBeforeIt) {
  PageRows rows(1000ms);
  const auto t0 = PageRows::Clock::now();
  const Uuid list = id(100);
  rows.put(list, 7, row(1, "a"), rows.begin_fill(), t0);
  const uint64_t before = rows.begin_fill();  // a build's read begins
  rows.forget(id(1));                          // the comment changes meanwhile
  EXPECT_FALSE(rows.get(list, 7, id(1), t0));
  rows.put(list, 7, row(1, "a"), before, t0);  // the build's row, read before the change
  rows.put(list, 7, row(2, "b"), before, t0);  // any of its rows: the change may be any of them
  EXPECT_FALSE(rows.get(list, 7, id(1), t0));
  EXPECT_FALSE(rows.get(list, 7, id(2), t0));
  EXPECT_EQ(rows.stats().stale_fills.load(), 2u);
  EXPECT_EQ(rows.stats().forgotten.load(), 1u);
  rows.put(list, 7, row(1, "a2"), rows.begin_fill(), t0);  // a build begun after it
  ASSERT_TRUE(rows.get(list, 7, id(1), t0));
  EXPECT_EQ(rows.get(list, 7, id(1), t0)->content, "a2");
}

TEST(PageRowsTest, ARowReadAgainReplacesTheOneKeptAndTheOldestGoPastTheBound) {
  PageRows rows(1000ms, 2);
  const auto t0 = PageRows::Clock::now();
  const Uuid list = id(100);
  rows.put(list, 7, row(1, "a"), rows.begin_fill(), t0);
  rows.put(list, 8, row(1, "a8"), rows.begin_fill(), t0);
  EXPECT_FALSE(rows.get(list, 7, id(1), t0));
  EXPECT_EQ(rows.get(list, 8, id(1), t0)->content, "a8");
  rows.put(list, 8, row(2, "b"), rows.begin_fill(), t0);
  rows.put(list, 8, row(3, "c"), rows.begin_fill(), t0);
  EXPECT_FALSE(rows.get(list, 8, id(1), t0)) << "the least recently used of three, past a bound of two";
  EXPECT_TRUE(rows.get(list, 8, id(3), t0));
  EXPECT_FALSE(PageRows(0ms).enabled());
}

TEST(PageRowsTest, TheKeptRowsStayWithinTheirByteBound) {
  PageRows rows(1000ms, 100, 10'000);
  const auto t0 = PageRows::Clock::now();
  const Uuid list = id(100);
  for (uint8_t n = 1; n <= 3; ++n) rows.put(list, 7, row(n, std::string(4000, char('a' + n))), rows.begin_fill(), t0);
  EXPECT_LE(rows.bytes(), 10'000u);
  EXPECT_FALSE(rows.get(list, 7, id(1), t0)) << "the oldest went for the third";
  EXPECT_TRUE(rows.get(list, 7, id(2), t0));
  EXPECT_TRUE(rows.get(list, 7, id(3), t0));
  rows.put(list, 7, row(3, "short"), rows.begin_fill(), t0);  // read again, smaller
  const size_t after = rows.bytes();
  EXPECT_LT(after, 5'000u);
  EXPECT_GT(after, 4'000u);
  rows.forget(id(2));
  rows.forget(id(3));
  EXPECT_EQ(rows.bytes(), 0u);
}

TEST(PageRowsTest, ARowPastItsTtlGoesWhenAskedAndAMissDoesNotKeepARowOfAnotherVersion) {
  PageRows rows(1000ms, 2);
  const auto t0 = PageRows::Clock::now();
  const Uuid list = id(100);
  rows.put(list, 7, row(1, std::string(1000, 'a')), rows.begin_fill(), t0);
  const size_t one = rows.bytes();
  EXPECT_FALSE(rows.get(list, 7, id(1), t0 + 1000ms));
  EXPECT_EQ(rows.bytes(), 0u) << "the row past its TTL went at the lookup";
  // Version 7's row asked under version 8 (a miss) is not made recent: it goes first.
  rows.put(list, 7, row(1, "a"), rows.begin_fill(), t0);
  rows.put(list, 8, row(2, "b"), rows.begin_fill(), t0);
  EXPECT_FALSE(rows.get(list, 8, id(1), t0));
  rows.put(list, 8, row(3, "c"), rows.begin_fill(), t0);
  EXPECT_FALSE(rows.get(list, 7, id(1), t0));
  EXPECT_TRUE(rows.get(list, 8, id(2), t0));
  EXPECT_TRUE(rows.get(list, 8, id(3), t0));
  EXPECT_GT(one, 1000u);
}

}  // namespace
}  // namespace commentd::store::cql

#include "store/rocks/read_gate.h"

#include <gtest/gtest.h>

#include <thread>

namespace commentd::store::rocks {
namespace {

constexpr int64_t kSec = 1'000'000'000;

TEST(ReadGate, ReadsFromMemoryStayInline) {
  ReadGate g(true);
  EXPECT_TRUE(g.inline_ok(0));
  for (int i = 0; i < 1000; ++i) g.report(i * 1000, false, 10'000);
  EXPECT_TRUE(g.inline_ok(kSec));
}

TEST(ReadGate, DisabledNeverInline) {
  ReadGate g(false);
  EXPECT_FALSE(g.inline_ok(0));
  g.report(0, false, 1000);
  EXPECT_FALSE(g.inline_ok(10 * kSec));
}

constexpr int64_t kDiskRead = ReadGate::kSlowFileRead + 1;

TEST(ReadGate, AFileReadTheDiskAnsweredSendsTheNextSecondToTheExecutor) {
  ReadGate g(true);
  g.report(10 * kSec, true, kDiskRead);
  EXPECT_FALSE(g.inline_ok(10 * kSec));
  EXPECT_FALSE(g.inline_ok(11 * kSec - 1));
  EXPECT_TRUE(g.inline_ok(11 * kSec));
}

TEST(ReadGate, AFileReadThePageCacheAnsweredKeepsReadsInline) {
  ReadGate g(true);
  g.report(10 * kSec, true, ReadGate::kSlowFileRead);
  EXPECT_TRUE(g.inline_ok(10 * kSec));
}

TEST(ReadGate, EachFileReadExtendsTheHoldOff) {
  ReadGate g(true);
  g.report(10 * kSec, true, kDiskRead);
  g.report(10 * kSec + kSec / 2, false, 10 * kDiskRead);  // from memory (slow: preempted): changes nothing
  EXPECT_FALSE(g.inline_ok(11 * kSec - 1));
  g.report(10 * kSec + kSec / 2, true, kDiskRead);
  EXPECT_FALSE(g.inline_ok(11 * kSec));
  EXPECT_TRUE(g.inline_ok(11 * kSec + kSec / 2));
}

TEST(ReadGate, AnInlineReadThatDoesNotEndClosesTheGate) {
  ReadGate g(true);
  const int64_t began = g.begin(10 * kSec);
  EXPECT_TRUE(g.inline_ok(10 * kSec + ReadGate::kStuck));  // slow, not yet stuck
  EXPECT_FALSE(g.inline_ok(10 * kSec + ReadGate::kStuck + 1));
  // It ends (from the disk, at last): the hold-off it started runs out, and nothing is stuck.
  g.end(began);
  g.report(10 * kSec + ReadGate::kStuck + 2, true, ReadGate::kStuck + 2);
  EXPECT_FALSE(g.inline_ok(11 * kSec));
  EXPECT_TRUE(g.inline_ok(12 * kSec));
}

TEST(ReadGate, EndedReadsLeaveNothingBehind) {
  ReadGate g(true);
  for (int i = 0; i < 100; ++i) g.end(g.begin(i * 1000));
  EXPECT_TRUE(g.inline_ok(100 * kSec));
}

TEST(ReadGate, EachThreadHasItsOwnSlot) {
  ReadGate g(true);
  const int64_t mine = g.begin(kSec);
  std::thread([&] { g.end(g.begin(kSec + 5)); }).join();  // another thread's read ends
  EXPECT_FALSE(g.inline_ok(kSec + ReadGate::kStuck + 1));  // this one is still running
  g.end(mine);
}

}  // namespace
}  // namespace commentd::store::rocks

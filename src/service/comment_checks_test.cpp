#include "service/comment_checks.h"

#include <gtest/gtest.h>

namespace commentd::service {
namespace {

using namespace std::chrono_literals;
using Clock = CommentChecks::Clock;

Uuid id(uint8_t n) {
  Uuid u;
  u.bytes.fill(n);
  return u;
}

Comment comment(uint8_t n, CommentStatus s = CommentStatus::visible) {
  Comment c;
  c.id = id(n);
  c.video_id = id(0x70);
  c.user_id = id(0x90);
  c.status = s;
  c.content = "some text the check does not need";
  return c;
}

TEST(CommentChecks, KeepsWhatItReadForTheTtlWithoutTheContent) {
  CommentChecks checks(5s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_FALSE(checks.get(comment(1).id, t0));
  checks.put(comment(1), checks.begin_fill(), t0);
  auto kept = checks.get(comment(1).id, t0 + 4999ms);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->video_id, comment(1).video_id);
  EXPECT_EQ(kept->user_id, comment(1).user_id);
  EXPECT_EQ(kept->status, CommentStatus::visible);
  EXPECT_TRUE(kept->content.empty());
  EXPECT_FALSE(checks.get(comment(1).id, t0 + 5s)) << "past the TTL it is read again";
  EXPECT_FALSE(checks.get(comment(1).id, t0)) << "and an expired copy is dropped";
  EXPECT_EQ(checks.stats().hits.load(), 1u);
  EXPECT_EQ(checks.stats().misses.load(), 3u);
}

TEST(CommentChecks, AChangeDropsTheCopyAndRefusesFillsThatBeganBeforeIt) {
  CommentChecks checks(1h);
  const auto t = Clock::time_point{} + 1h;
  checks.put(comment(1), checks.begin_fill(), t);
  const uint64_t before = checks.begin_fill();  // a reaction starts reading comment 2
  checks.forget(comment(1).id);                 // comment 1 is deleted meanwhile
  EXPECT_FALSE(checks.get(comment(1).id, t));
  // The read of comment 2 may have raced any change: it is not kept (the next one is).
  checks.put(comment(2), before, t);
  EXPECT_FALSE(checks.get(comment(2).id, t));
  EXPECT_EQ(checks.stats().stale_fills.load(), 1u);
  checks.put(comment(2), checks.begin_fill(), t);
  EXPECT_TRUE(checks.get(comment(2).id, t));
  EXPECT_EQ(checks.stats().forgotten.load(), 1u);
  checks.forget(comment(3).id);  // nothing kept: nothing counted
  EXPECT_EQ(checks.stats().forgotten.load(), 1u);
}

}  // namespace
}  // namespace commentd::service

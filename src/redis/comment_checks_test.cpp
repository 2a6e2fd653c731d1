// The comment check's copy in Redis: what a reaction needs of a comment, and nothing else.
#include <gtest/gtest.h>

#include "core/clock.h"
#include "redis/comment_checks.h"

namespace commentd::redis {
namespace {

TEST(CommentCheckCopy, RoundTripsWhatAReactionNeedsAndNothingElse) {
  ManualClock clock{1'700'000'000'000};
  UuidGenerator ids{clock, 3};
  Comment c;
  c.id = ids.next();
  c.video_id = ids.next();
  c.user_id = ids.next();
  c.parent_id = ids.next();
  c.content = "not kept";
  c.status = CommentStatus::pending;
  c.version = 7;
  auto back = decode_comment_check(c.id, encode_comment_check(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, c.id);
  EXPECT_EQ(back->video_id, c.video_id);
  EXPECT_EQ(back->user_id, c.user_id);
  EXPECT_EQ(back->status, CommentStatus::pending);
  EXPECT_EQ(back->version, 7u);
  EXPECT_TRUE(back->content.empty());
  const std::string s = encode_comment_check(c);
  EXPECT_FALSE(decode_comment_check(c.id, s.substr(0, s.size() - 2)));
  EXPECT_FALSE(decode_comment_check(c.id, "c2" + s.substr(2)));
  EXPECT_FALSE(decode_comment_check(c.id, s.substr(0, s.size() - 1) + "0")) << "version 0";
  std::string bad_status = s;
  bad_status[77] = '9';
  EXPECT_FALSE(decode_comment_check(c.id, bad_status));
}

}  // namespace
}  // namespace commentd::redis

// The per-user rows copy's text (redis/user_rows.h): round trip, and anything else refused.
#include "redis/user_rows.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace commentd::redis {
namespace {

Uuid id(int n) {
  char b[40];
  std::snprintf(b, sizeof b, "0190c7a0-0000-7000-8000-%012x", n);
  return *Uuid::parse(b);
}

TEST(UserRowsCodec, RoundTripsAndDropsNone) {
  store::UserRows rows;
  rows.view = {.hidden = true, .recent_until = 1767225600123};
  rows.reactions = {{id(1), ReactionType::like}, {id(2), ReactionType::dislike}, {id(3), ReactionType::none}};
  auto text = encode_user_rows(rows);
  auto back = decode_user_rows(text);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->view.hidden);
  EXPECT_EQ(back->view.recent_until, 1767225600123);
  ASSERT_EQ(back->reactions.size(), 2u) << "none is no reaction";
  EXPECT_EQ(back->reactions[0], std::make_pair(id(1), ReactionType::like));
  EXPECT_EQ(back->reactions[1], std::make_pair(id(2), ReactionType::dislike));

  store::UserRows empty;
  auto e = decode_user_rows(encode_user_rows(empty));
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->view.hidden);
  EXPECT_EQ(e->view.recent_until, 0);
  EXPECT_TRUE(e->reactions.empty());
}

TEST(UserRowsCodec, RefusesWhatItDidNotWrite) {
  for (const char* bad : {"", "h0", "h2 5\n", "x0 5\n", "h0 5x\n", "h0 5\nnot-a-uuid l\n",
                          "h0 5\n0190c7a0-0000-7000-8000-000000000001 x\n",
                          "h0 5\n0190c7a0-0000-7000-8000-000000000001 l"})
    EXPECT_FALSE(decode_user_rows(bad)) << bad;
}

}  // namespace
}  // namespace commentd::redis

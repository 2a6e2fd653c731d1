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

TEST(UserRowsCodec, RoundTripsEveryRowWithItsTime) {
  store::UserRows rows;
  rows.view = {.hidden = true, .recent_until = 1767225600123};
  rows.reactions = {{id(1), ReactionType::like, 1767225600123001},
                    {id(2), ReactionType::dislike, 7},
                    {id(3), ReactionType::none, 1767225600999002}};
  auto text = encode_user_rows(rows);
  EXPECT_EQ(text.substr(0, 20), "u2 h1 1767225600123\n");
  auto back = decode_user_rows(text);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->view.hidden);
  EXPECT_EQ(back->view.recent_until, 1767225600123);
  EXPECT_EQ(back->reactions, rows.reactions) << "a withdrawn row is kept: its time orders later writes";
  EXPECT_EQ(back->live(), (std::vector<std::pair<Uuid, ReactionType>>{{id(1), ReactionType::like},
                                                                       {id(2), ReactionType::dislike}}));

  store::UserRows empty;
  auto e = decode_user_rows(encode_user_rows(empty));
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->view.hidden);
  EXPECT_EQ(e->view.recent_until, 0);
  EXPECT_TRUE(e->reactions.empty());
}

TEST(UserRowsCodec, RefusesWhatItDidNotWrite) {
  for (const char* bad : {"", "u2 h0", "u2 h2 5\n", "u2 x0 5\n", "u2 h0 5x\n", "u2 h0 5\nnot-a-uuid 1 l\n",
                          "u2 h0 5\n0190c7a0-0000-7000-8000-000000000001 1 x\n",
                          "u2 h0 5\n0190c7a0-0000-7000-8000-000000000001 x l\n",
                          "u2 h0 5\n0190c7a0-0000-7000-8000-000000000001  l\n",
                          "u2 h0 5\n0190c7a0-0000-7000-8000-000000000001 1 l",
                          // the previous release's format (a rolling upgrade): not read
                          "h0 5\n", "h0 5\n0190c7a0-0000-7000-8000-000000000001 l\n"})
    EXPECT_FALSE(decode_user_rows(bad)) << bad;
}

}  // namespace
}  // namespace commentd::redis

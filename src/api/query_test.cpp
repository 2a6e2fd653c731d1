#include "api/query.h"

#include <gtest/gtest.h>

namespace commentd::api {
namespace {

TEST(Query, DefaultsWithoutAQueryString) {
  auto q = parse_list_query("/v1/videos/x/comments", SortOrder::oldest);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->sort, SortOrder::oldest);
  EXPECT_EQ(q->limit, 20u);
  EXPECT_FALSE(q->cursor);
}

TEST(Query, ReadsSortLimitAndADecodedCursor) {
  auto q = parse_list_query("/p?sort=oldest&limit=100&cursor=a%2Db+c&x=&&utm=1", SortOrder::newest);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->sort, SortOrder::oldest);
  EXPECT_EQ(q->limit, 100u);
  EXPECT_EQ(q->cursor, "a-b c");
  EXPECT_FALSE(parse_list_query("/p?cursor=", SortOrder::newest)->cursor);
}

TEST(Query, RefusesBadValues) {
  for (const char* t : {"/p?limit=0", "/p?limit=101", "/p?limit=1x", "/p?limit=", "/p?limit=-1",
                        "/p?limit=99999999999999999999"})
    EXPECT_EQ(parse_list_query(t, SortOrder::newest).error().client_code(), "invalid_limit") << t;
  EXPECT_EQ(parse_list_query("/p?sort=NEWEST", SortOrder::newest).error().client_code(), "invalid_sort");
  for (const char* t : {"/p?cursor=%", "/p?cursor=%4", "/p?cursor=%zz", "/p?cursor=%+1", "/p?cursor=%-1"})
    EXPECT_EQ(parse_list_query(t, SortOrder::newest).error().client_code(), "bad_query") << t;
}

TEST(Query, UrlDecode) {
  EXPECT_EQ(url_decode("a%20b+c%2f"), "a b c/");
  EXPECT_EQ(url_decode("%00"), std::string(1, '\0'));
  EXPECT_FALSE(url_decode("%g0"));
  EXPECT_FALSE(url_decode("ab%"));
}

}  // namespace
}  // namespace commentd::api

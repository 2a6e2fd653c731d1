#include "api/json_body.h"

#include <gtest/gtest.h>

#include <string>

namespace commentd::api {
namespace {

TEST(JsonBody, AcceptsAFlatObject) {
  auto d = parse_json_body(R"({"content":"hi","parent_id":null})");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_STREQ((*d)["content"].GetString(), "hi");
  EXPECT_TRUE((*d)["parent_id"].IsNull());
}

TEST(JsonBody, RefusesDuplicateKeys) {
  auto d = parse_json_body(R"({"type":"like","type":"bogus"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::bad_request);
  EXPECT_EQ(d.error().client_code(), "invalid_json");
  EXPECT_NE(d.error().message.find("duplicate key 'type'"), std::string::npos);
}

TEST(JsonBody, DuplicateKeysAreCountedPerObject) {
  EXPECT_TRUE(parse_json_body(R"({"a":{"x":1},"b":{"x":2}})").ok());
  EXPECT_FALSE(parse_json_body(R"({"a":{"x":1,"x":2}})").ok());
  // Names are compared byte for byte, escapes decoded: "\u0061" is "a".
  EXPECT_FALSE(parse_json_body(R"({"a":1,"\u0061":2})").ok());
  // An embedded NUL is part of the name.
  EXPECT_TRUE(parse_json_body(R"({"a":1,"a\u0000":2})").ok());
}

TEST(JsonBody, RefusesNestingPastTheLimit) {
  EXPECT_TRUE(parse_json_body(R"({"a":[[[1]]]})").ok());  // 4 levels
  auto d = parse_json_body(R"({"a":[[[[1]]]]})");        // 5 levels
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().client_code(), "invalid_json");
  EXPECT_NE(d.error().message.find("deeper than 4"), std::string::npos);
  EXPECT_TRUE(parse_json_body(R"({"a":[1]})", 2).ok());
  EXPECT_FALSE(parse_json_body(R"({"a":[[1]]})", 2).ok());
}

// The defect of issue 7: 200,000 '[' crashed the recursive parser.
TEST(JsonBody, DeepNestingIsAnErrorNotACrash) {
  for (const char* open : {"[", "{\"a\":"}) {
    std::string body;
    for (int i = 0; i < 200000; ++i) body += open;
    auto d = parse_json_body(body);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error().client_code(), "invalid_json");
  }
  // And with no limit at all, the iterative parser still does not recurse.
  std::string body(200000, '[');
  body += std::string(200000, ']');
  EXPECT_FALSE(parse_json_body(body, SIZE_MAX).ok());  // valid JSON, but not an object
}

TEST(JsonBody, RefusesWhatIsNotOneObject) {
  for (const char* b : {"", " ", "[]", "1", "\"x\"", "null", "{} {}", "{", "{\"a\":}", "{\"a\":NaN}",
                        "{\"a\":1,}", "{'a':1}"}) {
    auto d = parse_json_body(b);
    ASSERT_FALSE(d.ok()) << b;
    EXPECT_EQ(d.error().client_code(), "invalid_json") << b;
  }
  EXPECT_TRUE(parse_json_body(" {} \n").ok());
}

TEST(JsonBody, LeavesUtf8ToTheContentCheck) {
  auto d = parse_json_body("{\"content\":\"\xff\"}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)["content"].GetStringLength(), 1u);
}

}  // namespace
}  // namespace commentd::api

#include "http/server.h"
#include "http/router.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace commentd::http {
namespace {

TEST(ConnectionCap, KeepsAReserveOfDescriptors) {
  uint64_t reserve = 0;
  EXPECT_EQ(connection_cap(10000, 1024, &reserve), 768u);
  EXPECT_EQ(reserve, 256u);
  EXPECT_EQ(connection_cap(10000, 128, &reserve), 64u);  // small limits keep half
  EXPECT_EQ(reserve, 64u);
  EXPECT_EQ(connection_cap(100, 65536), 100u);  // the configured cap when it is lower
  EXPECT_EQ(connection_cap(10000, 1), 1u);
  EXPECT_EQ(connection_cap(10000, RLIM_INFINITY, &reserve), 10000u);
  EXPECT_EQ(reserve, 0u);
}

TEST(RouterClassify, ByMethodAndPattern) {
  using V = beast::http::verb;
  EXPECT_EQ(Router::classify(V::get, "/v1/videos/{video_id}/comments"), RequestClass::read);
  EXPECT_EQ(Router::classify(V::head, "/v1/comments/{id}"), RequestClass::read);
  EXPECT_EQ(Router::classify(V::post, "/v1/videos/{video_id}/comments"), RequestClass::write);
  EXPECT_EQ(Router::classify(V::patch, "/v1/comments/{id}/status"), RequestClass::write);
  EXPECT_EQ(Router::classify(V::delete_, "/v1/comments/{id}"), RequestClass::write);
  EXPECT_EQ(Router::classify(V::put, "/v1/comments/{id}/reaction"), RequestClass::reaction);
  EXPECT_EQ(Router::classify(V::delete_, "/v1/comments/{id}/reaction"), RequestClass::reaction);
  EXPECT_EQ(Router::classify(V::post, "/comment/{id}/reaction"), RequestClass::reaction);
  for (auto p : {"/healthz", "/readyz", "/metrics"}) EXPECT_EQ(Router::classify(V::get, p), RequestClass::exempt);
}

}  // namespace
}  // namespace commentd::http

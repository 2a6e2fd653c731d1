#include "jwt.h"

#include <gtest/gtest.h>

#include "auth/jwt.h"

namespace commentd::loadgen {
namespace {

// The load generator's users must be accepted by the server's verifier, as themselves.
TEST(LoadgenJwtTest, UserTokenVerifiesAsThatUser) {
  ManualClock clock(1'700'000'000'000);
  auth::JwtVerifier verifier("s", clock, 0);
  const std::string sub = "0d1c5b8e-0000-4000-8000-000000000001";
  auto claims = verifier.verify(make_user_jwt(sub, 1'700'000'060, "s"));
  ASSERT_TRUE(claims.ok()) << claims.error().message;
  EXPECT_EQ(claims->user_id.str(), sub);
  EXPECT_EQ(claims->exp, 1'700'000'060);
  EXPECT_FALSE(claims->moderator);
  EXPECT_FALSE(verifier.verify(make_user_jwt(sub, 1'700'000'060, "other")).ok());
}

}  // namespace
}  // namespace commentd::loadgen

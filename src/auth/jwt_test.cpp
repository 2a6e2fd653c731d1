#include "auth/jwt.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace commentd::auth {
namespace {

constexpr std::string_view kSecret = "test-secret";
constexpr std::string_view kUser = "0190a6c4-1234-7abc-8def-0123456789ab";
constexpr int64_t kNowS = 1'700'000'000;  // ManualClock's default start

std::string payload(int64_t exp, std::string_view extra = "") {
  return R"({"sub":")" + std::string(kUser) + R"(","exp":)" + std::to_string(exp) +
         std::string(extra) + "}";
}

// A token with an arbitrary header and the signature part of `signature_from`.
std::string with_header(std::string_view header_json, std::string_view signature_from) {
  std::string_view rest = signature_from.substr(signature_from.find('.'));
  return base64url_encode(header_json) + std::string(rest);
}

class JwtTest : public ::testing::Test {
 protected:
  std::string verify_error(std::string_view token) const {
    Result<Claims> r = verifier.verify(token);
    if (r.ok()) return "<ok>";
    EXPECT_EQ(r.error().code, Errc::unauthenticated) << r.error().message;
    return r.error().message;
  }

  ManualClock clock;
  JwtVerifier verifier{std::string(kSecret), clock};
};

TEST_F(JwtTest, GoodToken) {
  Result<Claims> r = verifier.verify(sign_hs256(kSecret, payload(kNowS + 60)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->user_id.str(), kUser);
  EXPECT_FALSE(r->moderator);
  EXPECT_EQ(r->exp, kNowS + 60);
}

TEST_F(JwtTest, Roles) {
  Result<Claims> mod = verifier.verify(sign_hs256(kSecret, payload(kNowS + 60,
                                                                   R"(,"role":"moderator")")));
  ASSERT_TRUE(mod.ok()) << mod.error().message;
  EXPECT_TRUE(mod->moderator);
  Result<Claims> user = verifier.verify(sign_hs256(kSecret, payload(kNowS + 60,
                                                                    R"(,"role":"admin")")));
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_FALSE(user->moderator);
  EXPECT_EQ(verify_error(sign_hs256(kSecret, payload(kNowS + 60, R"(,"role":true)"))),
            "token role is not a string");
}

TEST_F(JwtTest, WrongSecretAndTampering) {
  std::string good = sign_hs256(kSecret, payload(kNowS + 60));
  EXPECT_EQ(verify_error(sign_hs256("other-secret", payload(kNowS + 60))), "bad token signature");

  std::string forged = sign_hs256(kSecret, payload(kNowS + 60, R"(,"role":"moderator")"));
  std::string tampered = good.substr(0, good.find('.') + 1) +
                         forged.substr(forged.find('.') + 1, forged.rfind('.') - forged.find('.')) +
                         good.substr(good.rfind('.') + 1);
  EXPECT_EQ(verify_error(tampered), "bad token signature");

  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_NE(verify_error(flipped), "<ok>");
  EXPECT_EQ(verify_error(good.substr(0, good.rfind('.') + 1)), "bad token signature");
}

// One token, one text: the same signature bytes in another spelling do not verify.
TEST_F(JwtTest, OnlyCanonicalBase64url) {
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string good;
  for (int64_t exp = kNowS + 60;; ++exp) {  // a signature with both '-' and '_' in it
    good = sign_hs256(kSecret, payload(exp));
    std::string_view sig = std::string_view(good).substr(good.rfind('.') + 1);
    if (sig.find('-') != sig.npos && sig.find('_') != sig.npos) break;
  }
  ASSERT_EQ(verify_error(good), "<ok>");
  EXPECT_EQ(verify_error(good + "="), "bad token signature");  // 43 chars + one '='

  std::string standard = good;
  for (size_t i = good.rfind('.') + 1; i < standard.size(); ++i) {
    if (standard[i] == '-') standard[i] = '+';
    if (standard[i] == '_') standard[i] = '/';
  }
  EXPECT_EQ(verify_error(standard), "bad token signature");

  // 32 bytes in 43 characters leave 2 unused bits in the last one.
  std::string low_bits = good;
  size_t v = kAlphabet.find(low_bits.back());
  ASSERT_EQ(v & 3, 0u);
  low_bits.back() = kAlphabet[v | 1];
  EXPECT_EQ(verify_error(low_bits), "bad token signature");

  // The header as the same bytes with padding.
  std::string header = base64url_encode(R"({"alg":"HS256","typ":"JWT"} )");  // 28 bytes: 38 chars
  std::string body = good.substr(good.find('.'));
  EXPECT_EQ(verify_error(header + "==" + body), "malformed token: header is not base64url");
}

TEST_F(JwtTest, OnlyHs256) {
  std::string good = sign_hs256(kSecret, payload(kNowS + 60));
  EXPECT_EQ(verify_error(with_header(R"({"alg":"none","typ":"JWT"})", good)),
            "unsupported token alg 'none' (only HS256)");
  std::string unsigned_token = base64url_encode(R"({"alg":"none"})") + "." +
                               base64url_encode(payload(kNowS + 60)) + ".";
  EXPECT_EQ(verify_error(unsigned_token), "unsupported token alg 'none' (only HS256)");
  EXPECT_EQ(verify_error(with_header(R"({"alg":"HS512","typ":"JWT"})", good)),
            "unsupported token alg 'HS512' (only HS256)");
  EXPECT_EQ(verify_error(with_header(R"({"alg":"RS256"})", good)),
            "unsupported token alg 'RS256' (only HS256)");
  EXPECT_EQ(verify_error(with_header(R"({"typ":"JWT"})", good)), "token header has no alg");
  EXPECT_EQ(verify_error(with_header(R"({"alg":256})", good)), "token header has no alg");
  EXPECT_EQ(verify_error(with_header(R"({"alg":"HS256","crit":["exp"]})", good)),
            "unsupported token header 'crit'");
  EXPECT_EQ(verify_error(with_header(R"(["alg","HS256"])", good)),
            "malformed token: header is not a JSON object");
}

TEST_F(JwtTest, ExpIsRequiredAndChecked) {
  EXPECT_EQ(verify_error(sign_hs256(kSecret, R"({"sub":")" + std::string(kUser) + R"("})")),
            "token has no exp");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, R"({"sub":")" + std::string(kUser) +
                                                 R"(","exp":"tomorrow"})")),
            "token exp is not a number");

  std::string token = sign_hs256(kSecret, payload(kNowS + 10));
  EXPECT_EQ(verify_error(token), "<ok>");
  clock.advance_ms(9'999);
  EXPECT_EQ(verify_error(token), "<ok>");
  clock.advance_ms(1);
  EXPECT_EQ(verify_error(token), "token expired");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, payload(-1))), "token expired");

  std::string fractional = R"({"sub":")" + std::string(kUser) + R"(","exp":)" +
                           std::to_string(kNowS + 20) + ".5}";
  Result<Claims> r = verifier.verify(sign_hs256(kSecret, fractional));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exp, kNowS + 20);
  EXPECT_EQ(verify_error(sign_hs256(kSecret, payload(kNowS + 60, "0000000000000000000"))),
            "<ok>");  // exp beyond int64 is clamped, not wrapped
}

TEST_F(JwtTest, NotBefore) {
  EXPECT_EQ(verify_error(sign_hs256(kSecret, payload(kNowS + 60, ",\"nbf\":" +
                                                                     std::to_string(kNowS + 5)))),
            "token not yet valid");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, payload(kNowS + 60, ",\"nbf\":" +
                                                                     std::to_string(kNowS)))),
            "<ok>");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, payload(kNowS + 60, R"(,"nbf":null)"))),
            "token nbf is not a number");
}

TEST_F(JwtTest, SubMustBeAUuid) {
  auto with_sub = [&](std::string_view sub_json) {
    return sign_hs256(kSecret, R"({"sub":)" + std::string(sub_json) + R"(,"exp":)" +
                                   std::to_string(kNowS + 60) + "}");
  };
  EXPECT_EQ(verify_error(sign_hs256(kSecret, R"({"exp":)" + std::to_string(kNowS + 60) + "}")),
            "token has no sub");
  EXPECT_EQ(verify_error(with_sub("42")), "token has no sub");
  EXPECT_EQ(verify_error(with_sub(R"("alice")")), "token sub is not a user id (UUID)");
  EXPECT_EQ(verify_error(with_sub(R"("0190a6c412347abc8def0123456789ab")")),
            "token sub is not a user id (UUID)");
  EXPECT_EQ(verify_error(with_sub(R"("00000000-0000-0000-0000-000000000000")")),
            "token sub is not a user id (UUID)");
}

TEST_F(JwtTest, EmptySecretRejectsEverything) {
  JwtVerifier unconfigured("", clock);
  Result<Claims> r = unconfigured.verify(sign_hs256("", payload(kNowS + 60)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthenticated);
  EXPECT_EQ(r.error().message, "JWT auth is not configured");
}

TEST_F(JwtTest, MalformedTokens) {
  const std::string three_parts = "malformed token: expected three dot-separated parts";
  EXPECT_EQ(verify_error(""), three_parts);
  EXPECT_EQ(verify_error("abc"), three_parts);
  EXPECT_EQ(verify_error("a.b"), three_parts);
  EXPECT_EQ(verify_error("a.b.c.d"), three_parts);
  EXPECT_EQ(verify_error(".."), "malformed token: header is not a JSON object");
  EXPECT_EQ(verify_error("e!.b.c"), "malformed token: header is not base64url");
  EXPECT_EQ(verify_error(std::string(kMaxTokenBytes + 1, 'a')), "token too large");

  std::string good = sign_hs256(kSecret, payload(kNowS + 60));
  EXPECT_EQ(verify_error(good.substr(0, good.find('.') + 1) + "%%" +
                         good.substr(good.rfind('.'))),
            "bad token signature");  // the signature covers the payload text as sent
}

TEST_F(JwtTest, SignedGarbagePayloads) {
  EXPECT_EQ(verify_error(sign_hs256(kSecret, "[1,2]")),
            "malformed token: payload is not a JSON object");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, "{\"sub\":\"\xff\xfe\"}")),
            "malformed token: payload is not a JSON object");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, std::string(6000, '['))),
            "malformed token: payload is not a JSON object");
  EXPECT_EQ(verify_error(sign_hs256(kSecret, std::string("{\0}", 3))),
            "malformed token: payload is not a JSON object");
}

TEST_F(JwtTest, GarbageNeverVerifies) {
  std::string good = sign_hs256(kSecret, payload(kNowS + 60, R"(,"role":"moderator")"));
  for (size_t n = 0; n < good.size(); ++n) EXPECT_NE(verify_error(good.substr(0, n)), "<ok>");

  std::mt19937 rng(12345);
  for (int i = 0; i < 2000; ++i) {
    std::string mutated = good;
    mutated[rng() % mutated.size()] = static_cast<char>(rng() % 256);
    Result<Claims> r = verifier.verify(mutated);
    if (r.ok()) {
      EXPECT_EQ(mutated, good);
    }
  }
  for (int i = 0; i < 5000; ++i) {
    std::string junk(rng() % 300, '\0');
    for (char& c : junk) c = rng() % 4 == 0 ? '.' : static_cast<char>(rng() % 256);
    EXPECT_FALSE(verifier.verify(junk).ok());
  }
  EXPECT_EQ(verify_error(std::string(1 << 20, '.')), "token too large");
}

TEST_F(JwtTest, ConcurrentVerify) {
  std::string good = sign_hs256(kSecret, payload(kNowS + 60));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) ok += verifier.verify(good).ok();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2000);
}

// RFC 7515 appendix A.1: an HS256 JWS from the spec verifies its signature (the payload has
// no "sub", so verification then stops there).
TEST(JwtInterop, Rfc7515ExampleSignature) {
  std::optional<std::string> key = base64url_decode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  ASSERT_TRUE(key.has_value());
  ManualClock clock(1'300'000'000'000);
  JwtVerifier verifier(*key, clock);
  Result<Claims> r = verifier.verify(
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
      ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290"
      "Ijp0cnVlfQ"
      ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "token has no sub");
}

}  // namespace
}  // namespace commentd::auth

namespace commentd::auth {
namespace {

// The verified-token cache must not outlive a token's exp, nor accept what verification
// refuses.
TEST(JwtCacheTest, CachedTokenStillExpiresAndBadTokensAreNeverCached) {
  ManualClock clock(1'700'000'000'000);
  JwtVerifier v("k", clock, 64);
  std::string sub = "0190d9d0-0000-7000-8000-000000000001";
  std::string tok = sign_hs256("k", R"({"sub":")" + sub + R"(","exp":1700000010})");
  ASSERT_TRUE(v.verify(tok).ok());
  ASSERT_TRUE(v.verify(tok).ok());  // from the cache
  clock.advance_ms(10'000);
  auto r = v.verify(tok);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unauthenticated);
  std::string forged = sign_hs256("other", R"({"sub":")" + sub + R"(","exp":1800000000})");
  EXPECT_FALSE(v.verify(forged).ok());
  EXPECT_FALSE(v.verify(forged).ok());
  // Capacity is bounded: many distinct tokens still verify, each correctly.
  for (int i = 0; i < 500; ++i) {
    std::string t = sign_hs256("k", R"({"sub":")" + sub + R"(","exp":)" + std::to_string(1800000000 + i) + "}");
    ASSERT_TRUE(v.verify(t).ok());
  }
}

}  // namespace
}  // namespace commentd::auth

#include "core/base64url.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace commentd {
namespace {

TEST(Base64UrlTest, KnownVectors) {
  // RFC 4648 section 10, without padding, and the two url-safe characters.
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("Zm9vYmE"), std::optional<std::string>("fooba"));
  EXPECT_EQ(base64url_decode("-_8"), std::optional<std::string>("\xfb\xff"));
  EXPECT_FALSE(base64url_decode("+/8").has_value());  // standard alphabet is not url-safe
  EXPECT_FALSE(base64url_decode("Zm9vY").has_value());  // 5 chars: no whole byte in the last one
  EXPECT_FALSE(base64url_decode("Zh").has_value());     // "Zg" with a nonzero trailing bit
  EXPECT_FALSE(base64url_decode("Zm9").has_value());    // "Zm8" with a nonzero trailing bit
}

TEST(Base64UrlTest, RoundTripAllLengths) {
  std::mt19937_64 rng(2024);
  for (size_t n = 0; n <= 64; ++n) {
    for (int rep = 0; rep < 20; ++rep) {
      std::string bytes(n, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng());
      std::string text = base64url_encode(bytes);
      EXPECT_EQ(text.size(), (n * 8 + 5) / 6) << n;
      EXPECT_EQ(text.find_first_not_of(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                std::string::npos)
          << text;
      auto back = base64url_decode(text);
      ASSERT_TRUE(back.has_value()) << "n=" << n << " text=" << text;
      EXPECT_EQ(*back, bytes) << "n=" << n;
    }
  }
}

TEST(Base64UrlTest, RejectsPaddingEvenWhenCorrect) {
  EXPECT_EQ(base64url_decode("Zg"), std::optional<std::string>("f"));
  for (std::string_view padded : {"Zg==", "Zm8=", "Zm9vYg==", "Zm9vYmE="})
    EXPECT_FALSE(base64url_decode(padded).has_value()) << padded;
}

TEST(Base64UrlTest, RejectsBadInput) {
  for (std::string_view bad : {"Z", "Zg=", "Zg===", "Zm8==", "Zh", "Zm9=", "Zm9v+A", "Zm9v/A",
                               "Zg==Zg==", "====", " Zg", "Zg\n"})
    EXPECT_FALSE(base64url_decode(bad).has_value()) << bad;
  EXPECT_FALSE(base64url_decode(std::string_view("Zm\0v", 4)).has_value());
}

TEST(Base64UrlTest, RoundTripsEveryByteValue) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (size_t start = 0; start < 3; ++start) {
    std::string bytes = all.substr(start);
    std::string text = base64url_encode(bytes);
    EXPECT_EQ(text.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    EXPECT_EQ(base64url_decode(text), bytes);
  }
  std::mt19937 rng(7);
  for (size_t len = 0; len < 64; ++len) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 256);
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << len;
  }
}

}  // namespace
}  // namespace commentd

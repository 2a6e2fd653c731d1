#include "core/cursor.h"
#include "core/base64url.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>
#include <vector>

namespace commentd {
namespace {

CursorPos sample_pos() {
  return CursorPos{1'700'000'123'456, *Uuid::parse("0190a6c4-1234-7abc-8def-0123456789ab")};
}

void expect_invalid(std::string_view text, SortOrder sort = SortOrder::newest) {
  Result<CursorPos> r = decode_cursor(text, sort);
  ASSERT_FALSE(r.ok()) << "'" << text << "' decoded";
  EXPECT_EQ(r.error().code, Errc::bad_request) << text;
  EXPECT_EQ(r.error().detail_code, "invalid_cursor") << text;
  EXPECT_EQ(r.error().client_code(), "invalid_cursor") << text;
}

TEST(CursorTest, RoundTripBothSorts) {
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
    CursorPos p = sample_pos();
    std::string text = encode_cursor(sort, p);
    EXPECT_EQ(text.size(), 35u);  // 26 bytes, base64url without padding
    Result<CursorPos> back = decode_cursor(text, sort);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, p);
  }
}

TEST(CursorTest, RoundTripRandomPositions) {
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    CursorPos p;
    p.created_at = static_cast<TimeMs>(rng() >> 1);
    if (i % 10 == 0) p.created_at = 0;
    for (auto& b : p.id.bytes) b = static_cast<uint8_t>(rng());
    SortOrder sort = i % 2 ? SortOrder::newest : SortOrder::oldest;
    std::string text = encode_cursor(sort, p);
    for (char c : text)
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << text;
    auto back = decode_cursor(text, sort);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, p);
  }
}

TEST(CursorTest, DifferentPositionsGiveDifferentCursors) {
  CursorPos a = sample_pos(), b = sample_pos();
  b.created_at += 1;
  EXPECT_NE(encode_cursor(SortOrder::newest, a), encode_cursor(SortOrder::newest, b));
  EXPECT_NE(encode_cursor(SortOrder::newest, a), encode_cursor(SortOrder::oldest, a));
}

TEST(CursorTest, WrongSortIsRejected) {
  std::string newest = encode_cursor(SortOrder::newest, sample_pos());
  std::string oldest = encode_cursor(SortOrder::oldest, sample_pos());
  expect_invalid(newest, SortOrder::oldest);
  expect_invalid(oldest, SortOrder::newest);
}

TEST(CursorTest, GarbageIsRejected) {
  expect_invalid("");
  expect_invalid("a");
  expect_invalid("abcd");
  expect_invalid("not-a-cursor");
  expect_invalid("////////////////////////////////////");
  expect_invalid(std::string(35, 'A'));  // right length, version 0
  // Valid base64url of 26 bytes but an unknown version byte.
  std::string raw(26, '\0');
  raw[0] = 2;
  expect_invalid(base64url_encode(raw));
  // Unknown sort byte.
  raw[0] = 1;
  raw[1] = 7;
  expect_invalid(base64url_encode(raw));
}

TEST(CursorTest, TruncatedAndExtendedAreRejected) {
  std::string text = encode_cursor(SortOrder::newest, sample_pos());
  for (size_t n = 0; n < text.size(); ++n) expect_invalid(text.substr(0, n));
  expect_invalid(text + "A");
  expect_invalid(text + "AA");
  expect_invalid(text + "AAAA");
  // Base64 of 27 bytes (one byte too many).
  std::string raw(26, '\0');
  raw[0] = 1;
  expect_invalid(base64url_encode(raw + std::string(1, '\0')));
  expect_invalid(base64url_encode(raw.substr(0, 25)));
}

TEST(CursorTest, TooLongIsRejected) {
  std::string text = encode_cursor(SortOrder::newest, sample_pos());
  expect_invalid(text + std::string(65 - text.size(), 'A'));
  expect_invalid(std::string(10'000, 'A'));
  // 65 characters of otherwise decodable data.
  expect_invalid(base64url_encode(std::string(48, '\x01')) + "A");
}

TEST(CursorTest, BadBase64CharactersAreRejected) {
  std::string text = encode_cursor(SortOrder::newest, sample_pos());
  for (char bad : {'+', '/', '=', ' ', '.', '\0', '\n', '~', '\xff'}) {
    for (size_t pos : {size_t{0}, size_t{10}, text.size() - 1}) {
      std::string s = text;
      s[pos] = bad;
      expect_invalid(s);
    }
  }
  expect_invalid(text + "=");  // padding is not accepted
}

TEST(CursorTest, NonCanonicalTrailingBitsAreRejected) {
  std::string text = encode_cursor(SortOrder::newest, sample_pos());
  // 26 bytes = 208 bits in 35 chars = 210 bits: the last char's low 2 bits must be zero.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t v = alphabet.find(text.back());
  ASSERT_NE(v, std::string::npos);
  ASSERT_EQ(v & 3, 0u);
  for (size_t low = 1; low < 4; ++low) {
    std::string s = text;
    s.back() = alphabet[v | low];
    expect_invalid(s);
  }
}

}  // namespace
}  // namespace commentd

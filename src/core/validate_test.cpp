#include "core/validate.h"

#include <gtest/gtest.h>

#include <string>

namespace commentd {
namespace {

constexpr size_t kMax = 10'000;

// "<ok>" or the detail code, after checking that every error is unprocessable.
std::string check(std::string_view content, size_t max_bytes = kMax) {
  Status s = validate_content(content, max_bytes);
  if (s.ok()) return "<ok>";
  EXPECT_EQ(s.error().code, Errc::unprocessable) << s.error().message;
  EXPECT_FALSE(s.error().message.empty());
  return s.error().detail_code;
}

TEST(ValidateContentTest, AcceptsOrdinaryText) {
  EXPECT_EQ(check("hello"), "<ok>");
  EXPECT_EQ(check("x"), "<ok>");
  EXPECT_EQ(check("  padded  "), "<ok>");
  EXPECT_EQ(check("caf\xc3\xa9"), "<ok>");                       // é
  EXPECT_EQ(check("\xf0\x9f\x98\x80"), "<ok>");                  // 😀 (4 bytes)
  EXPECT_EQ(check("great video \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"), "<ok>");  // 👍🏽
  EXPECT_EQ(check("\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c"), "<ok>");  // 你好世界
  EXPECT_EQ(check("\xf4\x8f\xbf\xbf"), "<ok>");                  // U+10FFFF, the last code point
  EXPECT_EQ(check("\xed\x9f\xbf"), "<ok>");                      // U+D7FF, just below surrogates
  EXPECT_EQ(check("\xee\x80\x80"), "<ok>");                      // U+E000, just above
}

TEST(ValidateContentTest, AllowsNewlineCarriageReturnTab) {
  EXPECT_EQ(check("line one\nline two"), "<ok>");
  EXPECT_EQ(check("windows\r\nline"), "<ok>");
  EXPECT_EQ(check("col1\tcol2"), "<ok>");
}

TEST(ValidateContentTest, EmptyAndWhitespaceOnly) {
  EXPECT_EQ(check(""), "content_empty");
  EXPECT_EQ(check(" "), "content_empty");
  EXPECT_EQ(check("   \t\r\n  "), "content_empty");
  EXPECT_EQ(check("\xe3\x80\x80"), "content_empty");              // U+3000 ideographic space
  EXPECT_EQ(check("\xe2\x80\x8b"), "content_empty");              // U+200B zero-width space
  EXPECT_EQ(check("\xc2\xa0"), "content_empty");                  // U+00A0 NBSP
  EXPECT_EQ(check("\xef\xbb\xbf"), "content_empty");              // U+FEFF BOM / ZWNBSP
  EXPECT_EQ(check("\xe2\x80\x83\xe2\x80\xaf"), "content_empty");  // em space, narrow NBSP
  EXPECT_EQ(check(" \xe3\x80\x80\xe2\x80\x8b\xc2\xa0\n"), "content_empty");
  // Whitespace around a single real character is fine.
  EXPECT_EQ(check("\xe3\x80\x80" "a" "\xe2\x80\x8b"), "<ok>");
}

TEST(ValidateContentTest, Length) {
  EXPECT_EQ(check(std::string(100, 'a'), 100), "<ok>");  // exactly the limit
  EXPECT_EQ(check(std::string(101, 'a'), 100), "content_too_long");
  EXPECT_EQ(check(std::string(99, 'a'), 100), "<ok>");
  // Bytes, not code points: 34 three-byte characters = 102 bytes.
  std::string cjk;
  for (int i = 0; i < 34; ++i) cjk += "\xe4\xbd\xa0";
  EXPECT_EQ(check(cjk, 100), "content_too_long");
  EXPECT_EQ(check(cjk, 102), "<ok>");
  // Too long wins over every other problem (checked first, without reading the body).
  EXPECT_EQ(check(std::string(101, ' '), 100), "content_too_long");
}

TEST(ValidateContentTest, InvalidUtf8) {
  EXPECT_EQ(check("\x80"), "content_invalid_utf8");                  // lone continuation
  EXPECT_EQ(check("ok \xbf ok"), "content_invalid_utf8");
  EXPECT_EQ(check("\xc0\x80"), "content_invalid_utf8");              // overlong NUL
  EXPECT_EQ(check("\xc1\xbf"), "content_invalid_utf8");              // overlong '?'
  EXPECT_EQ(check("\xe0\x80\xaf"), "content_invalid_utf8");          // overlong 3-byte '/'
  EXPECT_EQ(check("\xf0\x80\x80\xaf"), "content_invalid_utf8");      // overlong 4-byte '/'
  EXPECT_EQ(check("\xed\xa0\x80"), "content_invalid_utf8");          // U+D800 surrogate
  EXPECT_EQ(check("\xed\xbf\xbf"), "content_invalid_utf8");          // U+DFFF surrogate
  EXPECT_EQ(check("\xf0\x9f\x98"), "content_invalid_utf8");          // truncated 4-byte
  EXPECT_EQ(check("abc\xf0\x9f\x98"), "content_invalid_utf8");
  EXPECT_EQ(check("\xf0\x9f\x98" "a"), "content_invalid_utf8");      // 4-byte cut by ASCII
  EXPECT_EQ(check("\xe4\xbd"), "content_invalid_utf8");              // truncated 3-byte
  EXPECT_EQ(check("\xc3"), "content_invalid_utf8");                  // truncated 2-byte
  EXPECT_EQ(check("\xf4\x90\x80\x80"), "content_invalid_utf8");      // U+110000
  EXPECT_EQ(check("\xf5\x80\x80\x80"), "content_invalid_utf8");      // F5+ lead bytes
  EXPECT_EQ(check("\xf8\x88\x80\x80\x80"), "content_invalid_utf8");
  EXPECT_EQ(check("\xfe"), "content_invalid_utf8");
  EXPECT_EQ(check("\xff"), "content_invalid_utf8");
  // Invalid UTF-8 inside otherwise whitespace-only content is still invalid, not empty.
  EXPECT_EQ(check(" \x80 "), "content_invalid_utf8");
}

TEST(ValidateContentTest, ControlCharacters) {
  EXPECT_EQ(check("a\x01" "b"), "content_control_chars");
  EXPECT_EQ(check(std::string("a\0b", 3)), "content_control_chars");  // NUL
  EXPECT_EQ(check("a\x1b[31mred"), "content_control_chars");         // ESC
  EXPECT_EQ(check("a\x0b" "b"), "content_control_chars");            // VT
  EXPECT_EQ(check("a\x0c" "b"), "content_control_chars");            // FF
  EXPECT_EQ(check("a\x7f" "b"), "content_control_chars");            // DEL
  EXPECT_EQ(check("a\xc2\x85" "b"), "content_control_chars");        // U+0085 NEL (C1)
  EXPECT_EQ(check("a\xc2\x80" "b"), "content_control_chars");        // U+0080
  EXPECT_EQ(check("a\xc2\x9f" "b"), "content_control_chars");        // U+009F
  EXPECT_EQ(check("\x01"), "content_control_chars");                 // not "empty"
  EXPECT_EQ(check("a\xc2\xa0" "b"), "<ok>");                         // U+00A0 is not C1
}

}  // namespace
}  // namespace commentd

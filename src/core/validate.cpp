#include "core/validate.h"

#include <cstdint>
#include <string>

namespace commentd {
namespace {

// Decodes one code point at s[i]; returns its length, or 0 if the sequence is invalid.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  uint8_t c0 = b(0);
  size_t len;
  uint32_t min;
  if (c0 < 0x80) { cp = c0; return 1; }
  if ((c0 & 0xE0) == 0xC0) { len = 2; cp = c0 & 0x1F; min = 0x80; }
  else if ((c0 & 0xF0) == 0xE0) { len = 3; cp = c0 & 0x0F; min = 0x800; }
  else if ((c0 & 0xF8) == 0xF0) { len = 4; cp = c0 & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (b(k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool is_space(uint32_t cp) {
  switch (cp) {
    case ' ': case '\t': case '\n': case '\r': case 0x0B: case 0x0C:
    case 0x85: case 0xA0: case 0x1680: case 0x180E: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000: case 0xFEFF: case 0x200B: case 0x200C: case 0x200D: case 0x2060:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_forbidden_control(uint32_t cp) {
  if (cp == '\n' || cp == '\r' || cp == '\t') return false;
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
}

}  // namespace

Status validate_content(std::string_view content, size_t max_bytes) {
  if (content.size() > max_bytes)
    return Error(Errc::unprocessable,
                 "content is " + std::to_string(content.size()) + " bytes; the limit is " +
                     std::to_string(max_bytes),
                 "content_too_long");
  bool has_text = false;
  for (size_t i = 0; i < content.size();) {
    uint32_t cp;
    size_t n = decode_utf8(content, i, cp);
    if (n == 0)
      return Error(Errc::unprocessable,
                   "content is not valid UTF-8 at byte " + std::to_string(i),
                   "content_invalid_utf8");
    if (is_forbidden_control(cp))
      return Error(Errc::unprocessable,
                   "content has a control character at byte " + std::to_string(i),
                   "content_control_chars");
    if (!is_space(cp)) has_text = true;
    i += n;
  }
  if (!has_text) return Error(Errc::unprocessable, "content is empty", "content_empty");
  return ok_status();
}

}  // namespace commentd

#include "core/cursor.h"

namespace commentd {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr uint8_t kVersion = 1;
constexpr size_t kRawSize = 1 + 1 + 8 + 16;

int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}
}  // namespace

std::string base64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8 | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  size_t rest = in.size() - i;
  if (rest) {
    uint32_t v = uint8_t(in[i]) << 16 | (rest == 2 ? uint8_t(in[i + 1]) << 8 : 0);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64val(c);
    if (v < 0) return std::nullopt;
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero: one text, one meaning.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string encode_cursor(SortOrder sort, const CursorPos& pos) {
  std::string raw(kRawSize, '\0');
  raw[0] = static_cast<char>(kVersion);
  raw[1] = static_cast<char>(sort);
  uint64_t t = static_cast<uint64_t>(pos.created_at);
  for (int i = 0; i < 8; ++i) raw[2 + i] = static_cast<char>(t >> (56 - 8 * i));
  for (int i = 0; i < 16; ++i) raw[10 + i] = static_cast<char>(pos.id.bytes[i]);
  return base64url(raw);
}

Result<CursorPos> decode_cursor(std::string_view text, SortOrder sort) {
  auto bad = [](std::string why) {
    return Error(Errc::bad_request, "invalid cursor: " + why, "invalid_cursor");
  };
  if (text.size() > 64) return bad("too long");
  auto raw = unbase64url(text);
  if (!raw || raw->size() != kRawSize) return bad("not a cursor");
  if (static_cast<uint8_t>((*raw)[0]) != kVersion) return bad("unknown version");
  if (static_cast<uint8_t>((*raw)[1]) != static_cast<uint8_t>(sort))
    return bad("made for another sort order");
  CursorPos p;
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = t << 8 | static_cast<uint8_t>((*raw)[2 + i]);
  p.created_at = static_cast<TimeMs>(t);
  for (int i = 0; i < 16; ++i) p.id.bytes[i] = static_cast<uint8_t>((*raw)[10 + i]);
  return p;
}

}  // namespace commentd

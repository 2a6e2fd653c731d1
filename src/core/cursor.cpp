#include "core/cursor.h"

#include "core/base64url.h"

namespace commentd {
namespace {
constexpr uint8_t kVersion = 1;
constexpr size_t kRawSize = 1 + 1 + 8 + 16;
}  // namespace

std::string encode_cursor(SortOrder sort, const CursorPos& pos) {
  std::string raw(kRawSize, '\0');
  raw[0] = static_cast<char>(kVersion);
  raw[1] = static_cast<char>(sort);
  uint64_t t = static_cast<uint64_t>(pos.created_at);
  for (int i = 0; i < 8; ++i) raw[2 + i] = static_cast<char>(t >> (56 - 8 * i));
  for (int i = 0; i < 16; ++i) raw[10 + i] = static_cast<char>(pos.id.bytes[i]);
  return base64url_encode(raw);
}

Result<CursorPos> decode_cursor(std::string_view text, SortOrder sort) {
  auto bad = [](std::string why) {
    return Error(Errc::bad_request, "invalid cursor: " + why, "invalid_cursor");
  };
  if (text.size() > 64) return bad("too long");
  // Cursors are made unpadded; one cursor, one text.
  if (text.find('=') != std::string_view::npos) return bad("not a cursor");
  auto raw = base64url_decode(text);
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

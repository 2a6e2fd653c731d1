// Opaque page cursors. A cursor names the last (created_at, id) a page returned, so paging is
// stable under concurrent inserts: the next page starts strictly after it in the list's order.
//
// A cursor is bound to its list (which index, whose list, which sort) and authenticated with
// an HMAC under a server key, so a flipped, forged or foreign cursor is refused rather than
// read. Every node of a cluster must have the same key (see derive_cursor_key).
// Encoding (version 2): base64url, no padding, of
//   [version=2][sort][created_at: 8 bytes BE][id: 16 bytes][mac: 12 bytes]   = 51 characters,
// mac = HMAC-SHA256(key, [version][kind][sort][list: 16][created_at][id]) truncated.
// Pure; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/model.h"

namespace commentd {

struct CursorPos {
  TimeMs created_at = 0;
  Uuid id;
  bool operator==(const CursorPos&) const = default;
};

// The list a cursor pages through.
enum class CursorList : uint8_t { video = 'v', replies = 'r' };
struct CursorScope {
  CursorList kind = CursorList::video;
  Uuid list;  // the video id, or the parent comment of the replies
  SortOrder sort = SortOrder::newest;
};

// A cursor key: 32 bytes, and the HMAC-SHA256 inner and outer hash states after the key
// block, computed once here so a cursor costs two SHA-256 compressions rather than an HMAC
// setup. Immutable; copies share the states.
class CursorKey {
 public:
  using Bytes = std::array<uint8_t, 32>;
  CursorKey();  // the all-zero key
  explicit CursorKey(const Bytes& bytes);

  const Bytes& bytes() const { return bytes_; }

  struct Midstates;  // opaque: OpenSSL hash states
  const Midstates& midstates() const { return *mid_; }

 private:
  Bytes bytes_{};
  std::shared_ptr<const Midstates> mid_;
};

// The cursor key: from `cursor_secret` if it is non-empty, else from `jwt_secret`, each
// through HMAC-SHA256 with a fixed label (so the JWT key itself never signs a cursor).
// Nodes with the same secrets get the same key.
CursorKey derive_cursor_key(std::string_view cursor_secret, std::string_view jwt_secret);

inline constexpr size_t kCursorChars = 51;

std::string encode_cursor(const CursorKey& key, const CursorScope& scope, const CursorPos& pos);
// Errc::bad_request (code invalid_cursor) for anything not made by encode_cursor with this
// key and scope.
Result<CursorPos> decode_cursor(const CursorKey& key, std::string_view text, const CursorScope& scope);

}  // namespace commentd

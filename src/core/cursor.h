// Opaque page cursors. A cursor names the last (created_at, id) a page returned, so paging is
// stable under concurrent inserts: the next page starts strictly after it in the list's order.
// Encoding: base64url(no pad) of [version=1][sort][created_at: 8 bytes BE][id: 16 bytes].
#pragma once

#include <optional>
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

std::string encode_cursor(SortOrder sort, const CursorPos& pos);
// Errc::bad_request (invalid_cursor) for anything not made by encode_cursor with this sort.
Result<CursorPos> decode_cursor(std::string_view text, SortOrder sort);

}  // namespace commentd

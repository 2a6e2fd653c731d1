// Cursor decoding over arbitrary text: never crashes, never accepts a cursor it did not make
// (a forgery would need the 96-bit MAC), and what it accepts re-encodes to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/cursor.h"

using namespace commentd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const CursorKey key = derive_cursor_key("", "fuzz-secret");
  // The seeds are made for this scope (fuzz/make_seeds.py).
  static const CursorScope scope{CursorList::video,
                                 *Uuid::parse("0190a6c4-0000-7abc-8def-0123456789ab"),
                                 SortOrder::newest};
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
    CursorScope s = scope;
    s.sort = sort;
    auto pos = decode_cursor(key, text, s);
    if (pos.ok() && encode_cursor(key, s, *pos) != text) std::abort();
    if (!pos.ok() && pos.error().client_code() != "invalid_cursor") std::abort();
  }
  return 0;
}

// base64url (RFC 4648 section 5): JWT segments and page cursors. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace commentd {

// No padding.
std::string base64url_encode(std::string_view bytes);
// Canonical text only, so one value has one text: nullopt on '=' padding, characters outside
// the url-safe alphabet ('+' and '/' included), an impossible length, or non-zero unused
// bits in the last character.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace commentd

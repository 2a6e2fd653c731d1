// base64url (RFC 4648 section 5): JWT segments and page cursors. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace commentd {

// No padding.
std::string base64url_encode(std::string_view bytes);
// Padding optional; nullopt on characters outside the alphabet, an impossible length, or
// non-zero unused trailing bits (so one text has one meaning).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace commentd

// Input validation for user content. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/error.h"

namespace commentd {

// OK iff `content` is valid UTF-8 (no overlongs, no surrogates), has no control characters
// other than \n \r \t (C0, DEL, C1), is not empty or only whitespace (ASCII and Unicode
// spaces, incl. zero-width ones), and is at most `max_bytes` bytes.
// Errors are Errc::unprocessable with detail codes content_empty, content_too_long,
// content_invalid_utf8, content_control_chars.
Status validate_content(std::string_view content, size_t max_bytes);

}  // namespace commentd

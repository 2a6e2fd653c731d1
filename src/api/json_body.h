// Request bodies: one JSON object, parsed without recursion, with a nesting limit and no
// duplicate member names, so that what the handlers read is what the client meant. Pure;
// thread-safe.
#pragma once

#include <rapidjson/document.h>

#include <string_view>

#include "core/error.h"

namespace commentd::api {

// Every request body is a flat object of scalars; this leaves room and no more.
inline constexpr size_t kMaxBodyDepth = 4;

// Errc::bad_request (code "invalid_json") unless `body` is exactly one JSON value that is an
// object, nested at most `max_depth` levels deep (the top object is level 1), with no member
// name twice in one object. Strings are not checked for valid UTF-8 here: the content field
// is checked by validate_content (422), and other fields are compared exactly.
Result<rapidjson::Document> parse_json_body(std::string_view body, size_t max_depth = kMaxBodyDepth);

}  // namespace commentd::api

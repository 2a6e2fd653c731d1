// The query string of the list routes (?sort=&limit=&cursor=). Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/model.h"

namespace commentd::api {

struct ListQuery {
  SortOrder sort = SortOrder::newest;
  size_t limit = 20;                  // 1..100
  std::optional<std::string> cursor;  // decoded; not yet checked (the service does)
};

// Percent-decodes a query value ('+' is a space); nullopt on a bad or truncated escape.
std::optional<std::string> url_decode(std::string_view s);

// `target` is the request target; only what follows the first '?' is read. Unknown
// parameters are ignored (caches and proxies add their own); a parameter given twice takes
// its last value. Errc::bad_request with codes bad_query, invalid_sort, invalid_limit.
Result<ListQuery> parse_list_query(std::string_view target, SortOrder default_sort);

}  // namespace commentd::api

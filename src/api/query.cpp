#include "api/query.h"

#include <charconv>

namespace commentd::api {
namespace {
int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
Error bad(std::string msg, std::string code) { return Error(Errc::bad_request, std::move(msg), std::move(code)); }
}  // namespace

std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') { out.push_back(' '); continue; }
    if (s[i] != '%') { out.push_back(s[i]); continue; }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Result<ListQuery> parse_list_query(std::string_view target, SortOrder default_sort) {
  ListQuery lq;
  lq.sort = default_sort;
  auto q = target.find('?');
  if (q == std::string_view::npos) return lq;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    auto value = url_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return bad("a query parameter is not URL-encoded correctly", "bad_query");
    if (name == "sort") {
      if (*value == "newest") lq.sort = SortOrder::newest;
      else if (*value == "oldest") lq.sort = SortOrder::oldest;
      else return bad("sort must be 'newest' or 'oldest'", "invalid_sort");
    } else if (name == "limit") {
      int n = 0;
      auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
      if (ec != std::errc() || p != value->data() + value->size() || n < 1 || n > 100)
        return bad("limit must be an integer from 1 to 100", "invalid_limit");
      lq.limit = static_cast<size_t>(n);
    } else if (name == "cursor") {
      if (value->empty()) lq.cursor.reset();
      else lq.cursor = std::move(*value);
    }
  }
  return lq;
}

}  // namespace commentd::api

#include "metrics.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>

namespace commentd::loadgen {

namespace {

bool name_is(std::string_view name, std::string_view want) {
  if (name == want) return true;
  constexpr std::string_view prefix = "commentd_";
  return name.starts_with(prefix) && name.substr(prefix.size()) == want;
}

void add(std::optional<double>& slot, double v) { slot = slot.value_or(0) + v; }

}  // namespace

ServerMetrics parse_prometheus(std::string_view text) {
  ServerMetrics m;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    const size_t name_end = line.find_first_of("{ \t");
    if (name_end == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, name_end);
    size_t value_start = name_end;
    if (line[name_end] == '{') {
      const size_t close = line.find('}', name_end);
      if (close == std::string_view::npos) continue;
      value_start = close + 1;
    }
    std::string_view rest = line.substr(value_start);
    const size_t begin = rest.find_first_not_of(" \t");
    if (begin == std::string_view::npos) continue;
    rest = rest.substr(begin);
    rest = rest.substr(0, rest.find_first_of(" \t\r"));
    const std::string value_text(rest);
    char* end = nullptr;
    const double v = std::strtod(value_text.c_str(), &end);
    if (end == value_text.c_str()) continue;
    if (name_is(name, "comment_cache_hits_total")) {
      add(m.cache_hits, v);
    } else if (name_is(name, "comment_cache_misses_total")) {
      add(m.cache_misses, v);
    } else if (name == "commentd_event_lag" || name == "commentd_event_lag_seconds") {
      m.event_lag = std::max(m.event_lag.value_or(v), v);
    }
  }
  return m;
}

std::optional<ServerMetrics> scrape_metrics(const Target& target) {
  auto r = http_get(target, "/metrics", std::chrono::seconds(5));
  if (!r || r->status != 200) return std::nullopt;
  return parse_prometheus(r->body);
}

}  // namespace commentd::loadgen

// Reads the target's Prometheus /metrics, for the cache hit rate and event lag a run reports.
#pragma once

#include <optional>
#include <string_view>

#include "http_util.h"

namespace commentd::loadgen {

struct ServerMetrics {
  std::optional<double> cache_hits;    // comment_cache_hits_total, summed over labels
  std::optional<double> cache_misses;  // comment_cache_misses_total, summed over labels
  std::optional<double> event_lag;     // commentd_event_lag (or _seconds), max over labels
};

// Parses Prometheus text exposition. A name also matches with a "commentd_" prefix.
ServerMetrics parse_prometheus(std::string_view text);

// GET /metrics; nullopt if the target does not serve it (network error or non-200).
std::optional<ServerMetrics> scrape_metrics(const Target& target);

}  // namespace commentd::loadgen

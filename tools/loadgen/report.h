// Turns an engine result into the --out JSON and the text summary.
//
// JSON layout (latencies in ms, rates in requests/s):
//   { "tool": "commentd-loadgen", "parameters": {...}, "mode": "open"|"closed",
//     "duration_s", "elapsed_s", "scheduled", "unsent",
//     "operations": { NAME: STATS, ... },        // only operations that ran
//     "groups": { "reads": STATS, "writes": STATS },  // the SLO's read and write sets
//     "overall": STATS,
//     "server_metrics": { "cache_hits", "cache_misses", "cache_hit_rate", "event_lag" } | null,
//     "series": { NAME: [ {"t", "count", "errors", "completed", "p50_ms", "p99_ms", "max_ms"}, ...]
//     } }
//   (series: t = second of the run; count/errors/latency by due second, completed by finish)
//   STATS = { "count", "ok", "errors": { "404": n, "connect": n, "timeout": n, "io": n },
//             "error_rate", "achieved_rate",
//             "latency_ms": { "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max" } }
#pragma once

#include <optional>
#include <string>

#include "engine.h"
#include "metrics.h"
#include "options.h"

namespace commentd::loadgen {

// The change over the run of the server's counters, and the last lag seen.
struct MetricsDelta {
  std::optional<double> cache_hits;
  std::optional<double> cache_misses;
  std::optional<double> event_lag;
};
std::optional<MetricsDelta> metrics_delta(const std::optional<ServerMetrics>& before,
                                          const std::optional<ServerMetrics>& after);

// The ops of the SLO's read set (is_read == true) or write set merged into one.
OpStats group_stats(const EngineResult& result, bool reads);

std::string report_json(const Options& options, const ScenarioConfig& scenario,
                        const EngineResult& result, const std::optional<MetricsDelta>& metrics);

// A fixed-width table: one line per operation that ran, then reads, writes and overall.
std::string summary_text(const EngineResult& result, const std::optional<MetricsDelta>& metrics);

}  // namespace commentd::loadgen

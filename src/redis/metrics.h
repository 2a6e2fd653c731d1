// Prometheus families for the Redis client's stats, appended at scrape time by the
// application's metrics source (see metrics/metrics.h). Thread-safe: reads atomics only.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "redis/client.h"

namespace commentd::redis {

// commentd_redis_commands_total / _command_errors_total / _command_seconds by command,
// connection events, redirections, timeouts, and the breaker (state gauge, opens, rejected).
void append_metrics(const Client& c, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::redis

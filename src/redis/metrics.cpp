#include "redis/metrics.h"

#include "metrics/metrics.h"

namespace commentd::redis {

using metrics::add_sample;
using metrics::counter_family;

void append_metrics(const Client& c, std::vector<prometheus::MetricFamily>& out) {
  const ClientStats& s = c.stats();
  prometheus::MetricFamily calls{"commentd_redis_commands_total", "Redis calls, by command (scripts by name)",
                                 prometheus::MetricType::Counter, {}};
  prometheus::MetricFamily errors{"commentd_redis_command_errors_total",
                                  "Redis calls that failed (transport, timeout, open breaker, error reply), by command",
                                  prometheus::MetricType::Counter, {}};
  prometheus::MetricFamily latency{"commentd_redis_command_seconds", "Redis call latency, by command",
                                   prometheus::MetricType::Histogram, {}};
  for (auto& [name, cs] : s.commands()) {
    add_sample(calls, {{"command", name}}, double(cs->calls.load()));
    add_sample(errors, {{"command", name}}, double(cs->errors.load()));
    auto h = metrics::histogram_family("x", "", cs->latency);
    h.metric.front().label = {{"command", name}};
    latency.metric.push_back(std::move(h.metric.front()));
  }
  out.push_back(std::move(calls));
  out.push_back(std::move(errors));
  out.push_back(std::move(latency));
  out.push_back(counter_family("commentd_redis_connects_total", "Redis connections established (handshake done)",
                               double(s.connections.connects.load())));
  out.push_back(counter_family("commentd_redis_connect_failures_total", "Redis connection attempts that failed",
                               double(s.connections.connect_failures.load())));
  out.push_back(counter_family("commentd_redis_disconnects_total", "Established Redis connections lost",
                               double(s.connections.disconnects.load())));
  out.push_back(counter_family("commentd_redis_timeouts_total", "Redis calls that hit their deadline",
                               double(s.timeouts.load())));
  out.push_back(counter_family("commentd_redis_moved_total", "MOVED redirections followed", double(s.moved.load())));
  out.push_back(counter_family("commentd_redis_ask_total", "ASK redirections followed", double(s.ask.load())));
  out.push_back(counter_family("commentd_redis_slot_refreshes_total", "Cluster slot map refreshes",
                               double(s.slot_refreshes.load())));
  out.push_back(counter_family("commentd_redis_noscript_total", "Scripts loaded again after NOSCRIPT",
                               double(s.noscript.load())));
  metrics::append_breaker_metrics("commentd_redis", "Redis", c.breaker().stats(), out);
}

}  // namespace commentd::redis

// The Redis RateLimiter (cluster mode): every node shares each subject's budget.
//
// Algorithm: GCRA (the generic cell rate algorithm, a token bucket stored as one number), in
// one Lua script so the read-check-write is atomic in Redis. For a rule of `limit` per
// `window`: emission interval T = window / limit, burst tolerance tau = window - T. The key
// holds the subject's TAT (theoretical arrival time, µs). A request at `now` is allowed iff
// max(TAT, now) - now <= tau; then TAT = max(TAT, now) + T. Refused: retry after
// (TAT - now - tau), and nothing is consumed. So `limit` requests may come as one burst, and
// then one per T. The key expires when the bucket is full again (TAT passed), so idle
// subjects cost no memory. One key per (subject, action), `{subject}` as the hash tag:
//   <prefix>rl:{<subject>}:<action>
// Time is the injected Clock (passed to the script), like the memory limiter; node clocks
// must be in step (NTP).
// Errors (Redis down, timeout, breaker open) are Outcome::error: the service's
// limits.on_error decides what they mean. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "limit/rate_limiter.h"
#include "redis/client.h"

namespace commentd::limit {

struct RedisLimiterStats {
  // decisions[action][outcome]: Action and Outcome as indices.
  std::array<std::array<std::atomic<uint64_t>, 3>, 2> decisions{};
};

class RedisRateLimiter final : public RateLimiter {
 public:
  RedisRateLimiter(redis::Client& client, Rule create_comment, Rule add_reaction, const Clock& clock,
                   std::string prefix = "cd:");
  asio::awaitable<Decision> check(std::string subject, Action action, Deadline d) override;
  const RedisLimiterStats& stats() const { return stats_; }

 private:
  redis::Client& client_;
  std::array<Rule, 2> rules_;
  const Clock& clock_;
  const std::string prefix_;
  RedisLimiterStats stats_;
};

// commentd_rate_limit_decisions_total{subject, action, outcome}: subject "user" from `users`,
// "address" from `addresses` (the limits.per_ip limiter; null when there is none).
void append_metrics(const RedisLimiterStats& users, const RedisLimiterStats* addresses,
                    std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::limit

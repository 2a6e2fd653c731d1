#include "limit/redis_limiter.h"

#include "metrics/metrics.h"

namespace commentd::limit {
namespace {

// KEYS: bucket. ARGV: now_us, T_us, tau_us. Returns {allowed 0/1, retry_after_ms}.
const redis::Script kGcra("rate_gcra", R"lua(
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tau = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tau then
  return {0, math.ceil((tat - now - tau) / 1000)}
end
local new = tat + t
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', string.format('%.0f', math.ceil((new - now) / 1000) + 1))
return {1, 0}
)lua");

constexpr const char* kActionNames[] = {"cc", "ar"};

}  // namespace

RedisRateLimiter::RedisRateLimiter(redis::Client& client, Rule cc, Rule ar, const Clock& clock, std::string prefix)
    : client_(client), rules_{cc, ar}, clock_(clock), prefix_(std::move(prefix)) {}

asio::awaitable<Decision> RedisRateLimiter::check(std::string subject, Action action, Deadline d) {
  const size_t a = static_cast<size_t>(action);
  const Rule r = rules_[a];
  Decision out;
  if (r.limit <= 0) {
    stats_.decisions[a][0]++;
    co_return out;
  }
  const int64_t t_us = r.window * 1000 / r.limit;
  const int64_t tau_us = r.window * 1000 - t_us;
  // Named locals, not braced lists inside the co_await: g++ 12 miscompiles those.
  std::vector<std::string> keys{prefix_ + "rl:{" + subject + "}:" + kActionNames[a]};
  std::vector<std::string> args{std::to_string(clock_.now_ms() * 1000), std::to_string(t_us), std::to_string(tau_us)};
  auto res = co_await client_.eval(kGcra, std::move(keys), std::move(args), d);
  if (!res || res->elements.size() != 2) {
    out.outcome = Outcome::error;
    out.error = res ? "redis limiter: unexpected reply" : res.error().message;
  } else if (res->elements[0].integer == 1) {
    out.outcome = Outcome::allowed;
  } else {
    out.outcome = Outcome::limited;
    out.retry_after_ms = std::max<int64_t>(1, res->elements[1].integer);
  }
  stats_.decisions[a][static_cast<size_t>(out.outcome)]++;
  co_return out;
}

void append_metrics(const RedisLimiterStats& users, const RedisLimiterStats* addresses,
                    std::vector<prometheus::MetricFamily>& out) {
  prometheus::MetricFamily f{"commentd_rate_limit_decisions_total",
                             "Redis rate limiter decisions, by subject (user or address), action and outcome",
                             prometheus::MetricType::Counter, {}};
  const char* actions[] = {"create_comment", "add_reaction"};
  const char* outcomes[] = {"allowed", "limited", "error"};
  auto add = [&](const RedisLimiterStats& s, const char* subject) {
    for (size_t a = 0; a < 2; ++a)
      for (size_t o = 0; o < 3; ++o)
        metrics::add_sample(f, {{"subject", subject}, {"action", actions[a]}, {"outcome", outcomes[o]}},
                            double(s.decisions[a][o].load()));
  };
  add(users, "user");
  if (addresses) add(*addresses, "address");
  out.push_back(std::move(f));
}

}  // namespace commentd::limit

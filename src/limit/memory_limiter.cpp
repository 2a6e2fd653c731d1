// The coroutine never suspends, so each check completes inline on the caller's thread.
#include <array>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "limit/rate_limiter.h"

namespace commentd::limit {
namespace {

constexpr size_t kShards = 32;

class MemoryRateLimiter final : public RateLimiter {
 public:
  MemoryRateLimiter(Rule cc, Rule ar, const Clock& clock, size_t max_keys)
      : rules_{cc, ar}, clock_(clock), per_shard_(std::max<size_t>(16, max_keys / kShards)) {}

  asio::awaitable<Decision> check(std::string subject, Action action, Deadline) override {
    co_return decide(std::move(subject), action);
  }

 private:
  Decision decide(std::string subject, Action action) {
    const Rule& r = rules_[static_cast<size_t>(action)];
    if (r.limit <= 0) return {};
    const TimeMs now = clock_.now_ms();
    // Emission interval in microseconds keeps precision for high limits.
    const int64_t t_us = r.window * 1000 / r.limit;
    const int64_t tau_us = r.window * 1000 - t_us;  // how far ahead TAT may run
    const int64_t now_us = now * 1000;

    Key key{std::move(subject), action};  // one bucket per (subject, action)
    auto& s = shards_[KeyHash{}(key) % kShards];
    std::lock_guard lk(s.mu);
    auto [it, fresh] = s.tat.try_emplace(std::move(key), now_us);
    int64_t tat = std::max(it->second, now_us);
    if (tat - now_us > tau_us) {
      return {Outcome::limited, (tat - now_us - tau_us + 999) / 1000, {}};
    }
    it->second = tat + t_us;
    if (fresh && s.tat.size() > per_shard_) sweep(s, now_us);
    return {};
  }

  // The action is part of the key, not mixed into the subject: mixing lets one subject's
  // bucket for one action alias another subject's bucket for the other.
  struct Key {
    std::string subject;
    Action action;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<std::string>{}(k.subject) * 31 + static_cast<size_t>(k.action);
    }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<Key, int64_t, KeyHash> tat;  // GUARDED_BY(mu)
  };

  // Drops buckets that are full again (TAT in the past): forgetting them changes nothing.
  // If none are, drops arbitrary ones: those users get a fresh burst, never a false 429.
  void sweep(Shard& s, int64_t now_us) {
    for (auto it = s.tat.begin(); it != s.tat.end();)
      it = it->second <= now_us ? s.tat.erase(it) : std::next(it);
    while (s.tat.size() > per_shard_) s.tat.erase(s.tat.begin());
  }

  std::array<Rule, 2> rules_;
  const Clock& clock_;
  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace

std::unique_ptr<RateLimiter> make_memory_limiter(Rule cc, Rule ar, const Clock& clock,
                                                 size_t max_keys) {
  return std::make_unique<MemoryRateLimiter>(cc, ar, clock, max_keys);
}

}  // namespace commentd::limit

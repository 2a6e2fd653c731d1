// The rate-limit seam (the plan's CheckRateLimit). MemoryRateLimiter is the embedded one; a
// Redis one plugs in here for cluster mode so every node shares the budget. The contract is
// checked by the typed conformance suite in limit/rate_limiter_conformance.h.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/deadline.h"

namespace commentd::limit {

namespace asio = boost::asio;

enum class Action : uint8_t { create_comment = 0, add_reaction = 1 };

struct Rule {
  int64_t limit = 0;   // requests per window; 0 = unlimited
  TimeMs window = 60'000;
};

enum class Outcome : uint8_t { allowed, limited, error };  // STYLE.md #18

struct Decision {
  Outcome outcome = Outcome::allowed;
  TimeMs retry_after_ms = 0;  // when limited: a retry after this long may be allowed
  std::string error;          // when error: what failed (for the log and metrics)
};

// Thread-safe; completes on the caller's executor. A limiter never decides what an error
// means: the service's error policy (limits.on_error) does, in one place.
//
// Contract (the conformance suite), per (subject, action) with rule {limit, window}:
//  - limit 0 = unlimited; otherwise a burst of `limit` is allowed, then limited with
//    0 < retry_after_ms <= window; a refusal consumes nothing;
//  - after retry_after_ms one more is allowed; a whole quiet window restores the burst;
//  - subjects and actions are independent buckets.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // `subject` names who is limited: "u:<uuid>" for a user, "ip:<address>" for a client address.
  virtual asio::awaitable<Decision> check(std::string subject, Action action, Deadline d) = 0;
};

// GCRA (a token bucket kept as one "theoretical arrival time" per key): `limit` requests
// in any `window`, as a burst or spread. Memory is bounded by max_keys; keys whose bucket
// is full again are dropped first. Completes inline: it never suspends.
std::unique_ptr<RateLimiter> make_memory_limiter(Rule create_comment, Rule add_reaction,
                                                 const Clock& clock, size_t max_keys = 1'000'000);

}  // namespace commentd::limit

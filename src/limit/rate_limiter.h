// The rate-limit seam (the plan's CheckRateLimit). MemoryRateLimiter is the embedded one; a
// Redis one plugs in here for cluster mode so every node shares the budget.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/clock.h"
#include "core/uuid.h"

namespace commentd::limit {

enum class Action : uint8_t { create_comment = 0, add_reaction = 1 };

struct Rule {
  int64_t limit = 0;   // requests per window; 0 = unlimited
  TimeMs window = 60'000;
};

struct Decision {
  bool allowed = true;
  TimeMs retry_after_ms = 0;
};

// Thread-safe.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  virtual Decision check(const Uuid& user_id, Action action) = 0;
};

// GCRA (a token bucket kept as one "theoretical arrival time" per key): `limit` requests
// in any `window`, as a burst or spread. Memory is bounded by max_keys; keys whose bucket
// is full again are dropped first.
std::unique_ptr<RateLimiter> make_memory_limiter(Rule create_comment, Rule add_reaction,
                                                 const Clock& clock, size_t max_keys = 1'000'000);

}  // namespace commentd::limit

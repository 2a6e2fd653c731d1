// The reaction-counter cache for hot comments (the plan's GetReactionCounts, and what stands
// for its IncrementReactionCounter): a read-through cache of the counters that storage
// holds, never a second set of counters.
//
// How it stays right (why it cannot drift):
//  - Storage is the only source of counts. The cache holds a copy of a stored value; it is
//    never incremented or decremented. A miss, an error or an empty Redis reads storage.
//  - Each comment has a generation token in Redis beside its cached copy. A lookup that
//    misses returns the current token (creating one if none). The fill after the storage
//    read is stored only if the token is still the same (compare-and-set in one script).
//  - The reaction applier, after each batch is durable in storage, calls invalidate() for
//    every comment it changed: it deletes the copy and sets a fresh, never-reused token. So a
//    fill whose storage read may predate that commit is refused, whatever the interleaving:
//    a read that began after the invalidation sees the commit (commit happens-before
//    invalidate happens-before the lookup happens-before the storage read).
//  - Redis flushed or restarted: the token is gone, so every fill in flight is refused too
//    (a missing token never equals the one read); the next lookups re-read storage.
//  - What is not covered: an invalidation that cannot reach Redis (down, partitioned). The
//    copy then lives at most `ttl_ms` (its expiry), which bounds any staleness.
// Keys share the comment's hash tag, so each script is single-slot in Redis Cluster:
//   <prefix>rc:{<comment_id>}   "likes dislikes replies last_updated"
//   <prefix>rc:{<comment_id>}:g generation token
//
// Thread-safe; completes on the caller's executor.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "core/model.h"
#include "redis/client.h"
#include "store/store.h"

namespace commentd::redis {

struct CounterCacheOptions {
  std::string prefix = "cd:";
  int64_t ttl_ms = 60'000;  // a cached copy's life: the staleness bound if an invalidation is lost
};

struct CounterCacheStats {
  std::atomic<uint64_t> hits{0}, misses{0};
  std::atomic<uint64_t> fills{0}, fills_refused{0};  // refused: invalidated during the read
  std::atomic<uint64_t> invalidations{0};
  std::atomic<uint64_t> errors{0};  // Redis calls that failed (the read went to storage)
};

class CounterCache {
 public:
  CounterCache(Client& client, CounterCacheOptions opts);

  // The counters of `id`: the cached copy, else storage's (then cached unless invalidated
  // meanwhile). A Redis error reads storage; only a storage error is returned.
  asio::awaitable<Result<CommentMetrics>> get(store::Store& store, Uuid id, Deadline d);
  // REQUIRES: called after the new counters of `id` are durable in storage.
  asio::awaitable<Status> invalidate(Uuid id, Deadline d);

  const CounterCacheStats& stats() const { return stats_; }

 private:
  std::string key(const Uuid& id) const { return opts_.prefix + "rc:{" + id.str() + "}"; }
  std::string token();

  Client& client_;
  const CounterCacheOptions opts_;
  CounterCacheStats stats_;
  const uint64_t nonce_;
  std::atomic<uint64_t> seq_{0};
};

// commentd_redis_counter_cache_{hits,misses,fills,fills_refused,invalidations,errors}_total.
void append_metrics(const CounterCacheStats& s, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::redis

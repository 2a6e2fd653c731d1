// The reaction-counter cache for hot comments (the plan's GetReactionCounts, and what stands
// for its IncrementReactionCounter): a read-through cache of the counters that storage
// holds, never a second set of counters.
//
// How it stays right (why it cannot drift):
//  - Storage is the only source of counts. The cache holds a copy of a stored value; it is
//    never incremented or decremented. A miss, an error or an empty Redis reads storage.
//  - The copies are GuardedCopies (redis/guarded_copies.h): a generation token beside each
//    copy; a fill after the storage read is stored only if no invalidation came since the
//    lookup.
//  - The reaction applier, after each batch is durable in storage, hands the comments whose
//    counters it changed to invalidate_later() (each once per batch): each invalidation
//    deletes the copy and sets a fresh, never-reused token. So a fill whose storage read may
//    predate that commit is refused, whatever the interleaving: a read that began after the
//    invalidation sees the commit (commit happens-before invalidate happens-before the lookup
//    happens-before the storage read).
//  - Invalidations go out in waves, one wave in flight at a time: one script call per wave on
//    a single Redis, one call per comment (pipelined) in Redis Cluster. While one is in
//    flight the next comments wait in one pending set, where a comment changed again is
//    coalesced (one invalidation covers every commit before it was sent). The set is bounded:
//    past `max_pending`, a comment is dropped (counted). Between a commit and its invalidation
//    (the pending wait), and for a dropped or failed one, a reader may get the old copy: the
//    same bound as below.
//  - Redis flushed or restarted: the token is gone, so every fill in flight is refused too
//    (a missing token never equals the one read); the next lookups re-read storage.
//  - What is not covered: an invalidation that cannot reach Redis (down, partitioned, slow
//    past the wave's deadline) or that is dropped from a full pending set. The copy then lives
//    at most `ttl_ms` (its expiry), which bounds any staleness.
// Keys share the comment's hash tag, so each script is single-slot in Redis Cluster:
//   <prefix>rc:{<comment_id>}   "likes dislikes replies 0" (Store::get_counts: no last_updated)
//   <prefix>rc:{<comment_id>}:g generation token
//
// Thread-safe; completes on the caller's executor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "core/model.h"
#include "redis/client.h"
#include "redis/guarded_copies.h"
#include "store/store.h"

namespace commentd::redis {

struct CounterCacheOptions {
  std::string prefix = "cd:";
  int64_t ttl_ms = 60'000;  // a cached copy's life: the staleness bound if an invalidation is lost
  size_t max_wave = 256;        // invalidations pipelined together; one wave in flight at a time
  size_t max_pending = 65'536;  // comments awaiting a wave; more are dropped (their copies expire)
  std::chrono::milliseconds wave_timeout{1000};  // a wave's deadline (capped by command_timeout)
};

struct CounterCacheStats : CopyStats {  // errors: the read went to storage
  std::atomic<uint64_t> invalidations{0};              // invalidation scripts that ran
  std::atomic<uint64_t> invalidation_waves{0};         // pipelined sends of invalidate_later
  std::atomic<uint64_t> invalidations_coalesced{0};    // a comment already pending: no extra call
  std::atomic<uint64_t> invalidations_dropped{0};      // pending set full: left to the copy's TTL
};

// The comments waiting for the next invalidation wave, in arrival order: each at most once
// (a comment queued again while pending is coalesced) and at most `max` of them (more are
// dropped). Not thread-safe.
class PendingInvalidations {
 public:
  explicit PendingInvalidations(size_t max) : max_(max) {}
  struct Added {
    size_t queued = 0, coalesced = 0, dropped = 0;
  };
  Added add(const std::vector<Uuid>& ids);
  std::vector<Uuid> take(size_t n);  // the oldest n (fewer if fewer wait)
  size_t size() const { return order_.size(); }

 private:
  const size_t max_;
  std::deque<Uuid> order_;
  std::set<Uuid> queued_;
};

class CounterCache {
 public:
  CounterCache(Client& client, CounterCacheOptions opts);

  // The counters of `id`: the cached copy, else storage's (then cached unless invalidated
  // meanwhile). A Redis error reads storage; only a storage error is returned.
  asio::awaitable<Result<CommentMetrics>> get(store::Store& store, Uuid id, Deadline d);
  // REQUIRES: called after the new counters of `id` are durable in storage.
  asio::awaitable<Status> invalidate(Uuid id, Deadline d);
  // The same for every comment of `ids`, pipelined (one wave). The first failure, if any.
  asio::awaitable<Status> invalidate_many(std::vector<Uuid> ids, Deadline d);
  // Queues the invalidation of every comment of `ids` and returns at once; waves are sent on
  // the client's executor (see the header comment). REQUIRES: as invalidate(). Thread-safe.
  void invalidate_later(const std::vector<Uuid>& ids);
  // Blocks the calling thread (never an executor thread) until nothing is pending or in
  // flight, or `max` has passed; true if idle.
  bool wait_idle(std::chrono::milliseconds max);
  ~CounterCache();

  const CounterCacheStats& stats() const { return stats_; }

 private:
  std::string key(const Uuid& id) const { return opts_.prefix + "rc:{" + id.str() + "}"; }

  Client& client_;
  const CounterCacheOptions opts_;
  CounterCacheStats stats_;
  GuardedCopies copies_;

  asio::awaitable<void> flush();
  std::mutex inv_mu_;
  std::condition_variable idle_cv_;
  PendingInvalidations pending_;  // GUARDED_BY(inv_mu_)
  bool flushing_ = false;         // GUARDED_BY(inv_mu_): a flush() is spawned or running
  bool closing_ = false;          // GUARDED_BY(inv_mu_)
  bool running_ = false;          // GUARDED_BY(inv_mu_): flush() has begun and not ended
};

// commentd_redis_counter_cache_{hits,misses,fills,fills_refused,invalidations,
// invalidation_waves,invalidations_coalesced,invalidations_dropped,errors}_total.
void append_metrics(const CounterCacheStats& s, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::redis

// The Redis PageCache (cluster mode): every node shares one cache, so a page filled by one
// node is a hit on all of them. Keys carry the video in a hash tag, so a video's keys share a
// Redis Cluster slot and each operation is one single-slot script (one round trip):
//   <prefix>{<video>}:v          the video's version: bumped by writes, never deleted
//   <prefix>{<video>}:p:<key>    a page: hash {v: version, t: stored at (ms), d: bytes}
//   <prefix>{<video>}:l:<key>    the fill lease: SET NX PX lease_ms, released by put()
// Freshness uses the injected Clock (passed into the scripts), so nodes must keep their
// clocks in step (NTP); a skew of s ms shifts a page's freshness by s ms at most.
// A missing version key (evicted) is recreated from the clock (ms x 1000), above any
// version it could have had, so a page stored before the eviction never matches again.
// Optional local layer (local_ms > 0, redis.local_cache_ttl): a fresh page this node got
// from Redis or put there is kept in memory for at most local_ms, and never past its own TTL
// (so pages are still at most ttl_ms old). A hot page then costs one Redis round trip per
// local_ms per node instead of one per read. This node's bumps drop the video's local pages
// at once (a lookup or put in flight across a bump never stores); another node's bump is
// seen here within local_ms (the bound for edits, deletes and moderation seen across nodes).
// Thread-safe; completes on the caller's executor (after the Redis round trip, or inline on
// a local hit).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/metric_family.h>

#include "cache/page_cache.h"
#include "redis/client.h"

namespace commentd::cache {

struct RedisCacheOptions {
  std::string prefix = "cd:";  // must not contain '{'
  TimeMs ttl_ms = 1000;         // a page is fresh this long after its put (cache.page_ttl)
  TimeMs stale_ms = 0;          // then served as stale (and refreshed) this much longer
  TimeMs lease_ms = 250;        // a fill lease expires after this if its holder never puts
  // A fresh page read this close to its TTL is refreshed behind the read (one caller, under
  // the lease): a hot page is rebuilt before it expires instead of missing. At most ttl_ms / 2;
  // 0 = off (redis.refresh_ahead).
  TimeMs refresh_ahead_ms = 0;
  TimeMs key_ttl_ms = 3'600'000;  // Redis expiry of pages and versions (redis.ttl)
  TimeMs local_ms = 0;            // the local layer's hold (redis.local_cache_ttl); 0 = none
  size_t local_max_entries = 10'000;  // local pages held at once at most (then all are dropped)
};

struct RedisCacheStats {
  std::atomic<uint64_t> hits{0}, stale_hits{0}, misses{0};
  std::atomic<uint64_t> local_hits{0};   // hits served by the local layer (also in hits)
  std::atomic<uint64_t> lease_waits{0};  // misses whose lease another caller held
  std::atomic<uint64_t> refreshes_ahead{0};  // fresh hits that came with the lease (refresh_ahead_ms)
  std::atomic<uint64_t> puts{0}, puts_superseded{0}, bumps{0};
  std::atomic<uint64_t> errors{0};       // lookups/puts/bumps that failed (Redis down, timeout)
};

class RedisPageCache final : public PageCache {
 public:
  RedisPageCache(redis::Client& client, RedisCacheOptions opts, const Clock& clock);
  asio::awaitable<Result<Lookup>> lookup(Uuid video_id, std::string key, Deadline d) override;
  // A fresh hit of the local layer (redis.local_cache_ttl), else nullopt: no round trip.
  std::optional<Lookup> try_lookup(const Uuid& video_id, const std::string& key) override;
  asio::awaitable<Status> put(Uuid video_id, std::string key, uint64_t version, PagePtr page,
                              Deadline d) override;
  asio::awaitable<Status> bump_video(Uuid video_id, Deadline d) override;
  const RedisCacheStats& stats() const { return stats_; }
  // Pages the local layer holds now (expired ones are dropped as later ones arrive).
  size_t local_size() {
    std::lock_guard lk(local_mu_);
    return local_entries_;
  }

 private:
  std::string tag(const Uuid& v) const { return opts_.prefix + "{" + v.str() + "}:"; }
  struct Local {
    PagePtr page;
    uint64_t version = 0;
    TimeMs until = 0;  // served locally while now < until
  };
  std::optional<Local> local_get(const Uuid& video, const std::string& key, TimeMs now);
  // Stores unless a bump of this node ran since `gen` was read.
  void local_put(const Uuid& video, const std::string& key, Local l, uint64_t gen, TimeMs now);
  struct LocalOrder {
    TimeMs until;
    Uuid video;
    std::string key;
  };

  redis::Client& client_;
  const RedisCacheOptions opts_;
  const Clock& clock_;
  RedisCacheStats stats_;

  std::mutex local_mu_;
  std::map<Uuid, std::map<std::string, Local>> local_;  // GUARDED_BY(local_mu_)
  std::deque<LocalOrder> local_order_;                  // GUARDED_BY(local_mu_): puts, oldest first
  size_t local_entries_ = 0;                            // GUARDED_BY(local_mu_)
  uint64_t local_gen_ = 0;  // GUARDED_BY(local_mu_): bumps of this node so far
};

// commentd_redis_cache_* families (hits, stale hits, misses, lease waits, puts, bumps, errors).
void append_metrics(const RedisCacheStats& s, std::vector<prometheus::MetricFamily>& out);

// This process's incarnation: random, drawn once per process. A page's built_epoch counts
// its building process's writes (service/comment_service.h, write_epoch()), so it goes into
// Redis with the incarnation of the process that built it, and a page decoded by another
// process (another node, or this node restarted, whose count began again) has it unknown (0).
uint64_t process_incarnation();

// The byte form of a page in Redis (length-prefixed, binary-safe). Exposed for tests, which
// may stand for another process with `incarnation`.
std::string encode_page(const CachedPage& page, uint64_t incarnation = process_incarnation());
std::optional<CachedPage> decode_page(std::string_view bytes, uint64_t incarnation = process_incarnation());

}  // namespace commentd::cache

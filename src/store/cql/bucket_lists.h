// BucketLists: each video's newest bucket names as this node last read them from
// video_buckets, kept for `storage.cql.bucket_list_ttl`, so a page of a video whose pages the
// page cache cannot answer (every new comment invalidates them) does not read video_buckets
// before its buckets: one round trip less in sequence (docs/cluster.md "Time buckets").
//
// Why a cached list is enough, with other nodes writing: a bucket name is a pure function of
// a comment's created_at (core/clock.h), video_buckets rows are never deleted, and a live
// write lands its video_buckets row within intent_settle() of its commit's start (each of its
// steps is bounded by request_timeout) plus the two reads a reply makes after taking its
// created_at: the settle time. So a list read at T (this node's clock, taken before the
// read) holds every bucket of a comment created before T - settle; the buckets of later
// comments are among recent_buckets(T - settle, now), which a page reads besides the list
// (most are in it already). What a list can miss is a write that died and is rolled forward
// later (commit_intent.h): its comment appears once the list expires, at most the TTL after
// the roll-forward. Clocks are assumed within the settle time of each other (NTP; the
// write timestamps of last-writer-wins assume closer still).
//
// Bounded (kMaxVideos, least recently used out). Thread-safe: one mutex, taken once per
// uncached page.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/lru_map.h"
#include "core/uuid.h"

namespace commentd::store::cql {

// Every hourly and daily bucket name a comment created at a time in [from, to] can have, each
// once, in no particular order. Empty when to < from.
std::vector<std::string> recent_buckets(TimeMs from, TimeMs to);

// Counted by the pages that use the lists.
struct BucketListStats {
  std::atomic<uint64_t> hits{0};    // a page's first list from here
  std::atomic<uint64_t> misses{0};  // read from video_buckets (newest first only)
  std::atomic<uint64_t> speculative_reads{0};  // recent buckets read besides a cached list
};

class BucketLists {
 public:
  static constexpr size_t kMaxVideos = 4096;

  struct List {
    std::vector<std::string> names;  // the newest first, as video_buckets orders them
    bool all = false;                // no older bucket exists
    TimeMs listed_at = 0;            // this node's clock before the read
  };

  // ttl 0: off (get() always misses, put() stores nothing).
  explicit BucketLists(std::chrono::milliseconds ttl) : ttl_(ttl.count()) {}

  bool enabled() const { return ttl_ > 0; }
  // A list no older than the TTL at `now` (a clock that stepped back counts as expired).
  std::optional<List> get(const Uuid& video, TimeMs now);
  void put(const Uuid& video, List list);
  // A bucket this node writes: added to the video's list, if one is kept and the name falls
  // within it, so this node's pages see its own writes at once whatever their created_at.
  void add(const Uuid& video, const std::string& name);

  BucketListStats& stats() { return stats_; }

 private:
  const TimeMs ttl_;
  std::mutex mu_;
  LruMap<Uuid, List, UuidHash> lists_{kMaxVideos};  // GUARDED_BY(mu_)
  BucketListStats stats_;
};

}  // namespace commentd::store::cql

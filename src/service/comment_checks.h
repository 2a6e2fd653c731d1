// CommentChecks: what a node read of a comment (its video, author and status), kept for
// `storage.cql.comment_check_ttl` so that a reaction to a comment the node saw in the last
// seconds costs no storage read. On CQL every reaction read its comment's row, about one
// Cassandra read in eight of the viral load; RocksDB holds rows in memory and needs none of
// this (the service then has no CommentChecks).
//
// Why a kept copy may be trusted for a reaction, and for nothing else: a reaction only asks
// "does the comment exist, in which video, and may this user see it". Edits, deletes and
// moderation decide on the row's version and always read the store. The copy goes:
// - on this node, after every change this node commits to the comment and before its answer
//   (`forget`), so a user who deletes a comment and reacts to it through the same node gets
//   the 404 at once;
// - on every other node, when the change's comment event arrives (the cache-invalidation
//   subscriber, workers/cache_invalidation.h; about a second at viral rates);
// - at the latest after the TTL.
// So a reaction to a comment deleted or hidden on another node may still be accepted (202) for
// at most the TTL, and is applied to a comment no one sees (docs/cluster.md "Reaction op").
//
// A fill cannot put back a copy that a change made stale: `begin_fill` before the read takes
// a generation, which every forget moves on, and `put` refuses a copy from an older one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "core/lru_map.h"
#include "core/model.h"

namespace commentd::service {

struct CommentCheckStats {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> forgotten{0};  // copies dropped by a change (this node's or an event's)
  std::atomic<uint64_t> stale_fills{0};  // fills refused: a change came during their read
};

class CommentChecks {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxComments = 65'536;

  explicit CommentChecks(std::chrono::milliseconds ttl) : ttl_(ttl) {}

  // The kept copy (content left out), if younger than the TTL at `now`.
  std::optional<Comment> get(const Uuid& id, Clock::time_point now);
  // Call before reading the comment from the store; pass the answer to put().
  uint64_t begin_fill() const { return generation_.load(std::memory_order_acquire); }
  // Keeps `c` as read at `read_at` unless a forget came since `begin_fill` gave `generation`.
  void put(const Comment& c, uint64_t generation, Clock::time_point read_at);
  // The comment changed: drop its copy, and refuse fills that began before.
  void forget(const Uuid& id);

  CommentCheckStats& stats() { return stats_; }

 private:
  struct Entry {
    Comment comment;
    Clock::time_point read_at;
  };
  const std::chrono::milliseconds ttl_;
  std::atomic<uint64_t> generation_{0};
  std::mutex mu_;
  LruMap<Uuid, Entry, UuidHash> kept_{kMaxComments};  // GUARDED_BY(mu_)
  CommentCheckStats stats_;
};

}  // namespace commentd::service

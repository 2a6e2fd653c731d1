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
// Filled by the reactions' own reads and by the rows a page fill reads (the reactions that
// follow a read are mostly to what it showed).
//
// A fill cannot put back a copy that a change made stale: `begin_fill` before the read takes
// a generation, which every forget moves on, and `put` refuses a copy from an older one.
//
// SharedCommentChecks is the layer under it that every node shares (Redis:
// redis/comment_checks.h): a node's miss asks it before storage, so a comment is read from
// storage about once per shared TTL for the whole cluster instead of once per node and local
// TTL. Its copies are dropped by the node that commits a change, before the answer, so a node
// whose own copy is gone never takes a stale one from it (docs/cluster.md "Reaction op").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include <boost/asio/awaitable.hpp>

#include "core/deadline.h"
#include "core/error.h"
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

// The checks' shared layer. A copy carries what a reaction needs (id, video, author, status,
// version), never the content.
class SharedCommentChecks {
 public:
  struct Lookup {
    std::optional<Comment> copy;       // a hit
    std::optional<std::string> token;  // a miss: fill under this token after the storage read
  };  // neither: the layer failed (read storage, fill nothing)
  virtual ~SharedCommentChecks() = default;
  virtual boost::asio::awaitable<Lookup> lookup(Uuid id, Deadline d) = 0;
  // Keeps `c` unless the comment was forgotten since the lookup that gave `token`.
  virtual boost::asio::awaitable<void> fill(Comment c, std::string token, Deadline d) = 0;
  // REQUIRES: after the change of the comment is durable in storage (or may be: a write that
  // failed), and before its answer. Refuses the fills of lookups that came before.
  virtual boost::asio::awaitable<Status> forget(Uuid id, Deadline d) = 0;
};

}  // namespace commentd::service

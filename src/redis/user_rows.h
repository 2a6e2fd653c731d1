// The per-user rows cache in Redis (store/user_rows_cache.h): one copy per (video, user)
// holding the user's view of the video and every reaction row of theirs in it, guarded by a
// generation token (redis/guarded_copies.h), so a fill that raced a write is refused. The
// CQL store calls `after_write` after each write to its rows is durable and before the ack:
// a reaction row is written into the copy in place (script `user_rows_write`, with the
// request's written mark in the same call), anything else drops the copy; a call that
// cannot reach Redis leaves the copy for at most `ttl_ms`.
//
// Key (the video's hash tag: single-slot scripts in Redis Cluster):
//   <prefix>ur:{<video_id>}:<user_id>     "u2 h<0|1> <recent_until>\n" then
//                                          "<comment_id> <at> <l|d|n>\n" per reaction row
//                                          (n: withdrawn). A copy in another format (the
//                                          previous release's, during a rolling upgrade) is
//                                          not read and is deleted by the next write.
//   <prefix>ur:{<video_id>}:<user_id>:g   its generation token
//   <prefix>urw:{<video_id>}:<comment_id>:<minute>  hash: user_id -> "<at> <l|d|n>", the
//                                          written marks (store/user_rows_cache.h) of the
//                                          comment's rows whose op is of that minute
// A user with more than `max_reactions` reaction rows in the video is not cached (the store
// then reads Cassandra as before; a write that would take a copy past it deletes it). A
// marks hash holds the marks its owner has not taken yet (seconds of ops), and the marks
// that came after their owner's take (the owner wrote those rows itself; 10-15 % of the
// marks under a saturated Cassandra). Those are taken by no one:
// a hash per op minute stops growing once its minute is past, and goes `mark_ttl_ms` after its
// last mark, so they are bounded by that time's marks, even on a comment that stays hot for
// hours. An owner that comes after the TTL writes the rows itself.
//
// Near copies (`near_ttl_ms` > 0; a single Redis, plain or TLS): a node keeps the copies it
// read from Redis in its own memory and serves them without a Redis call. Every script that
// changes or drops a copy also PUBLISHes its key (channel `<prefix>ur:changes`), and a
// node's Subscriber drops its near copy when the message comes; before serving one, the node
// applies every message its socket holds (redis/subscriber.h). A change made through this
// node drops the near copy here before its ack, so a user's next read on the same node sees
// it; on another node, once the message has arrived: Redis writes it in the same turn of its
// event loop as the writer's reply, and it crosses one hop where the user's next request
// crosses four. A near copy is not served while the subscription is down or silent past its
// `stale_after` (1 s), and every one is dropped when the connection is lost. The bound
// when an invalidation is lost becomes `ttl_ms` + `near_ttl_ms` (docs/cluster.md
// "Near copies of the users' rows").
//
// Thread-safe; completes on the caller's executor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "core/lru_map.h"
#include "redis/client.h"
#include "redis/guarded_copies.h"
#include "redis/subscriber.h"
#include "store/user_rows_cache.h"

namespace commentd::redis {

struct UserRowsOptions {
  std::string prefix = "cd:";
  int64_t ttl_ms = 30'000;      // a copy's life: the staleness bound if an invalidation is lost
  int64_t refresh_ahead_ms = 0;  // a copy read this close to its end is refilled behind the read (at most ttl_ms / 2)
  size_t max_reactions = 1000;  // more in one video: not cached
  int64_t mark_ttl_ms = 600'000;  // a marks hash's life after its last mark
  int64_t near_ttl_ms = 0;        // near copies' life in this node; 0 = none (every read asks Redis)
  size_t near_entries = 65'536;   // near copies held, least recently used out first,
  size_t near_rows = 262'144;     // and at most this many reaction rows in them (about 10 MiB)
  SubscriberOptions near;         // where the subscriber connects (its channel is set here)
};

struct UserRowsStats : CopyStats {  // errors: also failed writes (a failed invalidation waits out the TTL)
  std::atomic<uint64_t> too_big{0};
  std::atomic<uint64_t> invalidations{0};
  std::atomic<uint64_t> updates{0};     // reaction rows written into a copy in place
  std::atomic<uint64_t> marks{0};       // rows marked written by a request
  std::atomic<uint64_t> marks_used{0};  // owners' rows skipped: a mark covered them
  std::atomic<uint64_t> near_hits{0};   // served from this node's near copy, no Redis call
  std::atomic<uint64_t> near_kept{0};   // Redis hits kept as near copies
  std::atomic<uint64_t> near_refused{0};  // Redis hits not kept: a change came, or the subscription was not current
  std::atomic<uint64_t> near_dropped{0};  // near copies dropped by a change (here or from another node)
  std::atomic<uint64_t> near_renewals{0};  // near copies past half their life looked up again behind a read
};

// The copy's text, and back (nullopt: not a copy).
std::string encode_user_rows(const store::UserRows& rows);
std::optional<store::UserRows> decode_user_rows(std::string_view s);

class RedisUserRows final : public store::UserRowsCache {
 public:
  RedisUserRows(Client& client, UserRowsOptions opts);
  ~RedisUserRows() override;

  asio::awaitable<Lookup> lookup(Uuid video_id, Uuid user_id, Deadline d) override;
  asio::awaitable<Lookup> renew(Uuid video_id, Uuid user_id, Deadline d) override;
  asio::awaitable<void> fill(Uuid video_id, Uuid user_id, std::string token, const store::UserRows& rows,
                             Deadline d) override;
  asio::awaitable<void> after_write(std::vector<std::pair<Uuid, Uuid>> dropped, std::vector<WrittenRow> written,
                                    Deadline d) override;
  asio::awaitable<std::vector<bool>> take_written(std::vector<store::RowMark> rows, Deadline d) override;

  const UserRowsStats& stats() const { return stats_; }
  // Null when near copies are off.
  const SubscriberStats* near_stats() const { return sub_ ? &sub_->stats() : nullptr; }

 private:
  std::string key(const Uuid& video, const Uuid& user) const {
    return opts_.prefix + "ur:{" + video.str() + "}:" + user.str();
  }
  // `at`: the row's write timestamp (microseconds), whose minute names the hash.
  std::string marks_key(const Uuid& video, const Uuid& comment, int64_t at) const {
    return opts_.prefix + "urw:{" + video.str() + "}:" + comment.str() + ":" + std::to_string(at / 60'000'000);
  }
  struct Near {
    store::UserRows rows;
    std::chrono::steady_clock::time_point until;
    bool renewing = false;  // past half its life, a renew() asked for
  };
  // The shared copy's lookup; a hit is kept as the near copy if nothing changed since `mark`.
  asio::awaitable<Lookup> shared_lookup(const std::string& k, const Subscriber::Mark& mark, Deadline d);
  // The keys of copies changed through this node: their near copies go, and a read that began
  // before is not kept (Subscriber::note).
  void changed_here(const std::vector<std::string>& keys);
  // Under sub_'s lock: the near map and the reaction rows it holds.
  void near_put(const std::string& k, Near n);
  bool near_erase(const std::string& k);
  void near_clear();

  Client& client_;
  const UserRowsOptions opts_;
  UserRowsStats stats_;
  GuardedCopies copies_;
  const Script write_, take_;
  LruMap<std::string, Near> near_;  // GUARDED_BY(sub_'s lock)
  size_t near_rows_ = 0;            // GUARDED_BY(sub_'s lock): reaction rows in near_
  std::unique_ptr<Subscriber> sub_;  // last: its thread stops before near_ goes
};

// commentd_redis_user_rows_{hits,misses,fills,fills_refused,refreshes_ahead,too_big,invalidations,updates,marks,
// marks_used,errors,near_hits,near_kept,near_refused,near_dropped,near_renewals}_total, and with near copies on
// commentd_redis_user_rows_near_{messages,resets}_total and _near_up.
void append_metrics(const UserRowsStats& s, const SubscriberStats* near, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::redis

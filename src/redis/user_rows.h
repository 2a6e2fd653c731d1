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
// Thread-safe; completes on the caller's executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "redis/client.h"
#include "redis/guarded_copies.h"
#include "store/user_rows_cache.h"

namespace commentd::redis {

struct UserRowsOptions {
  std::string prefix = "cd:";
  int64_t ttl_ms = 30'000;      // a copy's life: the staleness bound if an invalidation is lost
  int64_t refresh_ahead_ms = 0;  // a copy read this close to its end is refilled behind the read (at most ttl_ms / 2)
  size_t max_reactions = 1000;  // more in one video: not cached
  int64_t mark_ttl_ms = 600'000;  // a marks hash's life after its last mark
};

struct UserRowsStats : CopyStats {  // errors: also failed writes (a failed invalidation waits out the TTL)
  std::atomic<uint64_t> too_big{0};
  std::atomic<uint64_t> invalidations{0};
  std::atomic<uint64_t> updates{0};     // reaction rows written into a copy in place
  std::atomic<uint64_t> marks{0};       // rows marked written by a request
  std::atomic<uint64_t> marks_used{0};  // owners' rows skipped: a mark covered them
};

// The copy's text, and back (nullopt: not a copy).
std::string encode_user_rows(const store::UserRows& rows);
std::optional<store::UserRows> decode_user_rows(std::string_view s);

class RedisUserRows final : public store::UserRowsCache {
 public:
  RedisUserRows(Client& client, UserRowsOptions opts);

  asio::awaitable<Lookup> lookup(Uuid video_id, Uuid user_id, Deadline d) override;
  asio::awaitable<void> fill(Uuid video_id, Uuid user_id, std::string token, const store::UserRows& rows,
                             Deadline d) override;
  asio::awaitable<void> after_write(std::vector<std::pair<Uuid, Uuid>> dropped, std::vector<WrittenRow> written,
                                    Deadline d) override;
  asio::awaitable<std::vector<bool>> take_written(std::vector<store::RowMark> rows, Deadline d) override;

  const UserRowsStats& stats() const { return stats_; }

 private:
  std::string key(const Uuid& video, const Uuid& user) const {
    return opts_.prefix + "ur:{" + video.str() + "}:" + user.str();
  }
  // `at`: the row's write timestamp (microseconds), whose minute names the hash.
  std::string marks_key(const Uuid& video, const Uuid& comment, int64_t at) const {
    return opts_.prefix + "urw:{" + video.str() + "}:" + comment.str() + ":" + std::to_string(at / 60'000'000);
  }
  Client& client_;
  const UserRowsOptions opts_;
  UserRowsStats stats_;
  GuardedCopies copies_;
  const Script write_, take_;
};

// commentd_redis_user_rows_{hits,misses,fills,fills_refused,refreshes_ahead,too_big,invalidations,updates,marks,
// marks_used,errors}_total.
void append_metrics(const UserRowsStats& s, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::redis

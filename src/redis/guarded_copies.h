// GuardedCopies: copies of stored values in Redis that never outlive a change of the value
// (the token protocol of memcache leases). Used by the counter cache (redis/counter_cache.h),
// the per-user rows cache (redis/user_rows.h) and the shared comment checks
// (redis/comment_checks.h).
//
// Each copy key `k` has a generation token at `k:g` beside it (same hash tag, so every script
// is single-slot in Redis Cluster).
//  - lookup(k): the copy if there is one; else the current token (made if none).
//  - The caller reads storage, then fill(k, token, value): stored only if the token is still
//    the one the lookup saw (compare-and-set in one script).
//  - invalidate(k), called after a change of the value is durable in storage and before it is
//    acknowledged: deletes the copy and sets a fresh, never-reused token. So a fill whose
//    storage read may predate the change is refused, whatever the interleaving: a read that
//    began after the invalidation sees the change (durable -> invalidate -> lookup -> read).
//  - update(k, script), for a change the caller can make to the copy itself (the per-user rows'
//    reactions, redis/user_rows.h): the same fresh token as invalidate, then the script
//    changes the copy in place (or deletes it) instead of dropping it.
//  - Redis flushed or restarted: the tokens are gone, so every fill in flight is refused too
//    (a missing token never equals the one read).
//  - Refresh ahead (`refresh_ahead_ms`, at most half `ttl_ms`; 0 = off): the first lookup that
//    finds a copy with less than that left to live gets the copy and the current token; it
//    serves the copy and refills it from storage under the token as a miss would (refused if
//    a change came since), so a copy read near its end is replaced before it expires instead
//    of the next reader missing. One such lookup per copy (a lease key `k:r` for the window).
//    The staleness bound is unchanged: every copy is a storage read at most `ttl_ms` old.
//  - Not covered: an invalidation that cannot reach Redis. The copy then lives at most
//    `ttl_ms`, which bounds the staleness; tokens live twice that, so an expired token can
//    only refuse a fill, never admit one.
//
// Thread-safe; completes on the caller's executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/deadline.h"
#include "core/error.h"
#include "redis/client.h"

namespace commentd::redis {

// What every user of GuardedCopies counts of its lookups and fills (their stats extend it).
struct CopyStats {
  std::atomic<uint64_t> hits{0}, misses{0};
  std::atomic<uint64_t> fills{0}, fills_refused{0};  // refused: a change came during the read
  std::atomic<uint64_t> errors{0};  // Redis calls that failed, or copies not ours (storage answered)
  std::atomic<uint64_t> refreshes_ahead{0};  // hits that came with the token to refill (refresh ahead)
};

class GuardedCopies {
 public:
  // `name` names the scripts in the client's per-command metrics ("evalsha:<name>_lookup").
  // `channel` (single Redis only; empty = none): invalidate() also PUBLISHes each copy's key
  // there, in the same script, for nodes that keep copies of the copies (redis/subscriber.h).
  GuardedCopies(Client& client, const std::string& name, int64_t ttl_ms, int64_t refresh_ahead_ms = 0,
                std::string channel = {});

  struct Lookup {
    std::optional<std::string> copy;   // a hit
    std::optional<std::string> token;  // a miss, or a hit to refresh ahead: fill under this token
    bool error = false;                // Redis failed: neither (read storage, do not fill)
  };
  asio::awaitable<Lookup> lookup(const std::string& key, Deadline d);
  // True if stored; false if a change came between the lookup and now.
  asio::awaitable<Result<bool>> fill(const std::string& key, std::string token, std::string value, Deadline d);

  // lookup() of a copy that `decode` (std::optional<T>(const std::string&)) reads, counted in
  // `s`: a hit (with the token if it is to be refreshed ahead), a miss with its token, or an error (Redis failed, or a copy decode refuses,
  // another release's: neither, so the caller reads storage and fills nothing).
  template <class T>
  struct Decoded {
    std::optional<T> value;
    std::optional<std::string> token;  // with value: refresh it ahead of its TTL
  };
  template <class T, class Decode>
  asio::awaitable<Decoded<T>> lookup_as(const std::string& key, Deadline d, CopyStats& s, Decode decode) {
    auto l = co_await lookup(key, d);
    Decoded<T> out;
    if (l.copy) {
      if (auto v = decode(*l.copy)) {
        s.hits++;
        out.value = std::move(*v);
        if (l.token) {
          s.refreshes_ahead++;
          out.token = std::move(l.token);
        }
      } else {
        s.errors++;
      }
    } else if (l.error) {
      s.errors++;
    } else {
      s.misses++;
      out.token = std::move(l.token);
    }
    co_return out;
  }
  // fill(), its outcome counted in `s`.
  asio::awaitable<void> fill_counted(const std::string& key, std::string token, std::string value, Deadline d,
                                     CopyStats& s);
  // REQUIRES: after the change of every key's value is durable in storage. One status per key.
  // Several keys: on a single Redis, one script call for all of them (the reaction applier
  // invalidates about a hundred comments per batch at the viral scenario's rates: one call
  // instead of a hundred); in Redis Cluster, where each key has its own slot, one call per key,
  // pipelined in one wave.
  asio::awaitable<std::vector<Status>> invalidate(std::vector<std::string> keys, Deadline d);
  // REQUIRES: after each change is durable in storage. Runs `s` once per update, pipelined,
  // with KEYS = {copy, its token, then `keys`} and ARGV = {a fresh token, the token's TTL in
  // ms, then `args`}. `s` must first set the token (SET KEYS[2] ARGV[1] PX ARGV[2], as
  // invalidate does), then change or delete the copy. One result per update.
  struct Update {
    std::string key;
    std::vector<std::string> keys, args;
  };
  asio::awaitable<std::vector<Result<Reply>>> update(const Script& s, std::vector<Update> updates, Deadline d);

  int64_t ttl_ms() const { return ttl_ms_; }
  const std::string& channel() const { return channel_; }

 private:
  std::string token();

  Client& client_;
  const std::string channel_;
  const int64_t ttl_ms_;
  const int64_t refresh_ahead_ms_;
  const uint64_t nonce_;
  std::atomic<uint64_t> seq_{0};
  const Script lookup_, fill_, invalidate_, invalidate_many_;
};

}  // namespace commentd::redis

// PageRows: the comment rows a node read for its page builds, kept so that the next build of
// the same list under the same generation (the page cache's version of the video, which every
// edit, delete and moderation moves) reads only the rows it has not seen instead of them all.
// Comment rows change only by those writes, so a row read under a generation is as good as a
// new read while the generation holds; counts are not kept here (they are read with every
// build). Without it a hot video's pages read every row again at every rebuild, once per
// cache.page_ttl per page (docs/cluster.md "What a request costs").
//
// A kept row goes:
// - when the caller's generation for the list moves (a row is used only under the generation
//   it was read under: on the writer's node and every other at once, through the shared
//   version);
// - on this node, after every change this node commits to the comment, whatever the outcome
//   (forget, from CqlStore::commit), before its answer;
// - on every node, when the change's comment event arrives (forget, from the
//   cache-invalidation subscriber);
// - at the latest `ttl` after its read (storage.cql.row_reuse): the bound when the version
//   bump of a change through another node failed and its event is late.
// A fill cannot put back a row that a change made stale: begin_fill before the read takes a
// generation of this class's own, which every forget moves on, and put refuses older ones.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "core/lru_map.h"
#include "core/model.h"

namespace commentd::store::cql {

struct PageRowsStats {
  std::atomic<uint64_t> hits{0};       // rows a build took from here
  std::atomic<uint64_t> misses{0};     // rows a build asked for and read
  std::atomic<uint64_t> forgotten{0};  // rows dropped by a change (this node's or an event's)
  std::atomic<uint64_t> stale_fills{0};  // builds' rows refused: a change came during the read
};

class PageRows {
 public:
  using Clock = std::chrono::steady_clock;
  // The most it keeps: rows, and bytes of rows (their text, up to 10 KB each, is most of them).
  static constexpr size_t kMaxRows = 65'536;
  static constexpr size_t kMaxBytes = 32u << 20;

  explicit PageRows(std::chrono::milliseconds ttl, size_t max_rows = kMaxRows, size_t max_bytes = kMaxBytes)
      : ttl_(ttl), max_bytes_(max_bytes), kept_(max_rows) {}
  bool enabled() const { return ttl_.count() > 0; }

  // The row `id` as read for `list` under `generation`, if read less than the TTL before `now`.
  std::optional<Comment> get(const Uuid& list, uint64_t generation, const Uuid& id, Clock::time_point now);
  // Call before reading rows from storage; pass the answer to put().
  uint64_t begin_fill() const { return fills_.load(std::memory_order_acquire); }
  // Keeps `c`, read for `list` under `generation` at `read_at`, unless a forget came since
  // begin_fill gave `fill`.
  void put(const Uuid& list, uint64_t generation, const Comment& c, uint64_t fill, Clock::time_point read_at);
  // The comment changed: drop its row, and refuse the fills that began before.
  void forget(const Uuid& id);

  const PageRowsStats& stats() const { return stats_; }
  size_t bytes() {
    std::lock_guard lk(mu_);
    return bytes_;
  }

 private:
  struct Entry {
    Uuid list;
    uint64_t generation = 0;
    Comment row;
    Clock::time_point read_at;
    size_t bytes() const { return sizeof(Entry) + row.content.size(); }
  };
  void drop(const Uuid& id);  // REQUIRES: mu_ held
  const std::chrono::milliseconds ttl_;
  const size_t max_bytes_;
  std::atomic<uint64_t> fills_{0};
  std::mutex mu_;
  LruMap<Uuid, Entry, UuidHash> kept_;  // GUARDED_BY(mu_)
  size_t bytes_ = 0;                    // GUARDED_BY(mu_): of the entries in kept_
  PageRowsStats stats_;
};

}  // namespace commentd::store::cql

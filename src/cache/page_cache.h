// The read-model cache seam: ready-to-send page fragments per (list, sort, limit, cursor),
// validated by a per-video version that writes bump (instead of deleting keys), and a TTL
// that bounds how old a page's counts may be. MemoryPageCache is the embedded one; a Redis
// one plugs in here for cluster mode. The contract is checked by the typed conformance suite
// in cache/page_cache_conformance.h, which every implementation instantiates.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/deadline.h"
#include "core/error.h"
#include "core/uuid.h"

namespace commentd::cache {

namespace asio = boost::asio;

// One comment of a page, serialized without the per-caller fields: `json` is the JSON object
// minus its closing brace, so the caller's user_reacted/reaction_type are appended.
struct PageItem {
  Uuid id;
  Uuid user_id;
  std::string json;
};

struct CachedPage {
  std::vector<PageItem> items;
  std::optional<std::string> next_cursor;
  // This process's write epoch (service/comment_service.h, write_epoch()) read before the
  // page's storage reads began: the page holds every write of this process that finished
  // before that epoch was taken. 0 = not known (a page decoded from Redis that another
  // process built, or in an earlier release's format: cache/redis_cache.h process_incarnation).
  uint64_t built_epoch = 0;
  // The building node's clock (ms) read before the page's storage reads began, carried with the
  // page wherever it is cached: a page whose reads began after an author's recent-write mark
  // ended holds their write, stale or not (CommentService::page_serves_user, docs/cluster.md
  // "Read-your-writes across nodes"). 0 = not known (the previous release's Redis format).
  TimeMs built_at_ms = 0;
};
using PagePtr = std::shared_ptr<const CachedPage>;

// What one lookup found: the video's current version and the page cached under it, in one
// round trip (Redis: one script or one versioned-key read).
struct Lookup {
  PagePtr page;          // null on a miss
  uint64_t version = 0;  // the video's version seen by this lookup; pass it to put()
  bool stale = false;    // a hit past its TTL but inside the stale-while-revalidate window:
                         // serve it, and refresh it if `fill`
  bool fill = true;      // on a miss or stale hit: this caller holds the fill lease (read
                         // storage, then put()). false: another node holds it; wait a little
                         // and look up again, or read storage after the lease wait budget.
                         // On a fresh hit: false, or true near the TTL where the cache
                         // refreshes ahead (serve it, and refresh it).
};

// Thread-safe. Every call completes on the caller's executor; an implementation whose answer
// is in memory completes without a thread hop. Errors (Redis down, timeout) come back as
// Result errors; the service counts a cache error as a miss and never fails a read for it.
// Parameters are by value on purpose: coroutine parameters by reference dangle.
//
// Contract (the conformance suite). A key belongs to one video (the service's keys name
// the list, which belongs to one video):
//  - a page put under the version a lookup returned is found by the next lookup of that key,
//    until the video is bumped, the TTL passes, or it is evicted;
//  - after bump_video, no lookup of that video returns a page put before the bump, and the
//    version it returns differs from every version returned before (versions never repeat);
//  - a put under an older version never replaces a page stored under a newer one, and a put
//    under a version that is no longer the video's current one is never served;
//  - videos and keys are independent.
class PageCache {
 public:
  virtual ~PageCache() = default;
  virtual asio::awaitable<Result<Lookup>> lookup(Uuid video_id, std::string key, Deadline d) = 0;
  // The same lookup answered synchronously, when the implementation has the answer in this
  // process's memory; nullopt: it has not, call lookup(). Never blocks or does I/O. Lets a
  // hit skip the coroutine frame of lookup() (the embedded cache answers every call here).
  virtual std::optional<Lookup> try_lookup(const Uuid& video_id, const std::string& key) {
    (void)video_id;
    (void)key;
    return std::nullopt;
  }
  virtual asio::awaitable<Status> put(Uuid video_id, std::string key, uint64_t version,
                                      PagePtr page, Deadline d) = 0;
  // Every cached page of the video is invalid from now on (edits, deletes, moderation).
  virtual asio::awaitable<Status> bump_video(Uuid video_id, Deadline d) = 0;
};

struct MemoryCacheOptions {
  size_t max_entries = 100000;  // 0 = no pages kept (versions still work)
  TimeMs ttl_ms = 1000;
  TimeMs stale_ms = 0;  // stale-while-revalidate window after the TTL; 0 = none
};

// Single node: every miss gets the fill lease (the service coalesces concurrent misses of
// one key itself). Completes inline: it never suspends; try_lookup() always answers.
std::unique_ptr<PageCache> make_memory_cache(const MemoryCacheOptions& opts, const Clock& clock);

}  // namespace commentd::cache

// The read-model cache seam: ready-to-send page fragments per (list, sort, limit, cursor),
// validated by a per-video version that writes bump (instead of deleting keys), and a TTL
// that bounds how old a page's counts may be. MemoryPageCache is the embedded one; a Redis
// one plugs in here for cluster mode.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/uuid.h"

namespace commentd::cache {

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
};

// Thread-safe.
class PageCache {
 public:
  virtual ~PageCache() = default;
  virtual std::shared_ptr<const CachedPage> get(const std::string& key, uint64_t version) = 0;
  virtual void put(const std::string& key, uint64_t version,
                   std::shared_ptr<const CachedPage> page) = 0;
  virtual uint64_t video_version(const Uuid& video_id) = 0;
  virtual void bump_video(const Uuid& video_id) = 0;
};

struct MemoryCacheOptions {
  size_t max_entries = 100000;
  TimeMs ttl_ms = 1000;
};

std::unique_ptr<PageCache> make_memory_cache(const MemoryCacheOptions& opts, const Clock& clock);

}  // namespace commentd::cache

// Sharded LRU: each shard has its own mutex, so concurrent readers of different keys rarely
// contend; a hot key's readers hold the lock only to copy a shared_ptr.
#include <algorithm>
#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <unordered_map>

#include "cache/page_cache.h"

namespace commentd::cache {
namespace {

constexpr size_t kShards = 32;

class MemoryPageCache final : public PageCache {
 public:
  MemoryPageCache(const MemoryCacheOptions& o, const Clock& clock)
      : per_shard_(std::max<size_t>(1, o.max_entries / kShards)),
        enabled_(o.max_entries > 0),
        ttl_(o.ttl_ms),
        clock_(clock) {}

  std::shared_ptr<const CachedPage> get(const std::string& key, uint64_t version) override {
    if (!enabled_) return nullptr;
    auto& s = shard(key);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return nullptr;
    Entry& e = *it->second;
    if (e.version != version || clock_.now_ms() - e.stored_at >= ttl_) return nullptr;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return e.page;
  }

  void put(const std::string& key, uint64_t version,
           std::shared_ptr<const CachedPage> page) override {
    if (!enabled_) return;
    auto& s = shard(key);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      if (it->second->version > version) return;  // never replace newer with older
      it->second->version = version;
      it->second->page = std::move(page);
      it->second->stored_at = clock_.now_ms();
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      return;
    }
    s.lru.push_front(Entry{key, version, clock_.now_ms(), std::move(page)});
    s.map.emplace(key, s.lru.begin());
    while (s.map.size() > per_shard_) {
      s.map.erase(s.lru.back().key);
      s.lru.pop_back();
    }
  }

  uint64_t video_version(const Uuid& video_id) override {
    auto& s = vshard(video_id);
    std::lock_guard lk(s.mu);
    auto it = s.versions.find(video_id);
    return it == s.versions.end() ? s.floor : it->second;
  }

  // Versions come from one global counter, so they never repeat. A video forgotten to bound
  // memory reads as the shard's floor (the largest version forgotten): a page stored before
  // that can match only if no write came after it, i.e. if it is still current.
  void bump_video(const Uuid& video_id) override {
    auto& s = vshard(video_id);
    std::lock_guard lk(s.mu);
    s.versions[video_id] = ++counter_;
    if (s.versions.size() > per_shard_ * 4) {
      auto victim = s.versions.begin();
      if (victim->first == video_id) ++victim;
      s.floor = std::max(s.floor, victim->second);
      s.versions.erase(victim);
    }
  }

 private:
  struct Entry {
    std::string key;
    uint64_t version;
    TimeMs stored_at;
    std::shared_ptr<const CachedPage> page;
  };
  struct Shard {
    std::mutex mu;
    std::list<Entry> lru;                                                 // GUARDED_BY(mu)
    std::unordered_map<std::string, std::list<Entry>::iterator> map;      // GUARDED_BY(mu)
  };
  struct VShard {
    std::mutex mu;
    std::unordered_map<Uuid, uint64_t, UuidHash> versions;  // GUARDED_BY(mu)
    uint64_t floor = 0;                                      // GUARDED_BY(mu)
  };

  Shard& shard(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }
  VShard& vshard(const Uuid& id) { return vshards_[UuidHash{}(id) % kShards]; }

  const size_t per_shard_;
  const bool enabled_;
  const TimeMs ttl_;
  const Clock& clock_;
  std::array<Shard, kShards> shards_;
  std::array<VShard, kShards> vshards_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace

std::unique_ptr<PageCache> make_memory_cache(const MemoryCacheOptions& opts, const Clock& clock) {
  return std::make_unique<MemoryPageCache>(opts, clock);
}

}  // namespace commentd::cache

// Sharded LRU: each shard has its own mutex, so concurrent readers of different keys rarely
// contend; a hot key's readers hold the lock only to copy a shared_ptr. The coroutines never
// suspend, so each call completes inline on the caller's thread; try_lookup() answers every
// lookup without a coroutine at all.
//
// A video's version lives in a cell (an atomic) that each of its pages points to, so a hit
// takes the page's shard lock and one atomic load; only a miss (for the version to fill
// under), a put and a bump take the video's shard lock. Two event loops reading one hot
// video no longer meet on that lock for every page.
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
        stale_(o.stale_ms),
        clock_(clock) {}

  asio::awaitable<Result<Lookup>> lookup(Uuid video_id, std::string key, Deadline) override {
    co_return *try_lookup(video_id, key);
  }

  std::optional<Lookup> try_lookup(const Uuid& video_id, const std::string& key) override {
    if (enabled_) {
      auto& s = shard(key);
      std::lock_guard lk(s.mu);
      auto it = s.map.find(key);
      // The entry's cell is its video's current version (or retired: never equal).
      if (it != s.map.end() && it->second->version == it->second->cell->load(std::memory_order_acquire)) {
        Entry& e = *it->second;
        const TimeMs age = clock_.now_ms() - e.stored_at;
        if (age < ttl_ + stale_) {
          Lookup out;
          out.version = e.version;
          out.page = e.page;
          out.stale = age >= ttl_;
          out.fill = out.stale;  // every stale reader may refresh (coalesced by the service)
          // A hot key is already first: no write to the list its other readers share.
          if (it->second != s.lru.begin()) s.lru.splice(s.lru.begin(), s.lru, it->second);
          return out;
        }
      }
    }
    Lookup out;
    out.version = video_version(video_id);
    return out;
  }

  asio::awaitable<Status> put(Uuid video_id, std::string key, uint64_t version, PagePtr page,
                              Deadline) override {
    if (enabled_) store(key, version, std::move(page), cell_of(video_id));
    co_return ok_status();
  }

  asio::awaitable<Status> bump_video(Uuid video_id, Deadline) override {
    bump(video_id);
    co_return ok_status();
  }

 private:
  using Cell = std::shared_ptr<std::atomic<uint64_t>>;
  static constexpr uint64_t kRetired = ~uint64_t{0};  // a forgotten video's cell: no version

  void store(const std::string& key, uint64_t version, PagePtr page, Cell cell) {
    auto& s = shard(key);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      if (it->second->version > version) return;  // never replace newer with older
      it->second->version = version;
      it->second->page = std::move(page);
      it->second->stored_at = clock_.now_ms();
      it->second->cell = std::move(cell);
      s.lru.splice(s.lru.begin(), s.lru, it->second);
      return;
    }
    s.lru.push_front(Entry{key, version, clock_.now_ms(), std::move(page), std::move(cell)});
    s.map.emplace(key, s.lru.begin());
    while (s.map.size() > per_shard_) {
      s.map.erase(s.lru.back().key);
      s.lru.pop_back();
    }
  }

  uint64_t video_version(const Uuid& video_id) {
    auto& s = vshard(video_id);
    std::lock_guard lk(s.mu);
    auto it = s.versions.find(video_id);
    return it == s.versions.end() ? s.floor : it->second->load(std::memory_order_relaxed);
  }

  // The video's cell, made (at the shard's floor) if it has none, for a page stored now:
  // a later bump moves it, and the page stops matching.
  Cell cell_of(const Uuid& video_id) {
    auto& s = vshard(video_id);
    std::lock_guard lk(s.mu);
    auto it = s.versions.find(video_id);
    if (it != s.versions.end()) return it->second;
    auto cell = std::make_shared<std::atomic<uint64_t>>(s.floor);
    s.versions.emplace(video_id, cell);
    forget_beyond_bound(s, video_id);
    return cell;
  }

  // Versions come from one global counter, so they never repeat. A video forgotten to bound
  // memory reads as the shard's floor (the largest version forgotten), and its cell is
  // retired, so a page stored before is never served again.
  void bump(const Uuid& video_id) {
    auto& s = vshard(video_id);
    std::lock_guard lk(s.mu);
    auto [it, made] = s.versions.try_emplace(video_id, nullptr);
    if (made) it->second = std::make_shared<std::atomic<uint64_t>>(0);
    // Under the shard lock: a bump's version is stored before any later bump's.
    it->second->store(++counter_, std::memory_order_release);
    if (made) forget_beyond_bound(s, video_id);
  }

  struct Entry {
    std::string key;
    uint64_t version;
    TimeMs stored_at;
    std::shared_ptr<const CachedPage> page;
    Cell cell;  // its video's version
  };
  struct Shard {
    std::mutex mu;
    std::list<Entry> lru;                                                 // GUARDED_BY(mu)
    std::unordered_map<std::string, std::list<Entry>::iterator> map;      // GUARDED_BY(mu)
  };
  struct VShard {
    std::mutex mu;
    std::unordered_map<Uuid, Cell, UuidHash> versions;  // GUARDED_BY(mu)
    uint64_t floor = 0;                                      // GUARDED_BY(mu)
  };

  void forget_beyond_bound(VShard& s, const Uuid& keep) {  // REQUIRES: s.mu held
    if (s.versions.size() <= per_shard_ * 4) return;
    auto victim = s.versions.begin();
    if (victim->first == keep) ++victim;
    s.floor = std::max(s.floor, victim->second->load(std::memory_order_relaxed));
    victim->second->store(kRetired, std::memory_order_release);
    s.versions.erase(victim);
  }

  Shard& shard(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }
  VShard& vshard(const Uuid& id) { return vshards_[UuidHash{}(id) % kShards]; }

  const size_t per_shard_;
  const bool enabled_;
  const TimeMs ttl_;
  const TimeMs stale_;
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

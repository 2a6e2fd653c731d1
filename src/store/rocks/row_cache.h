// RowCache: an exact, bounded, per-process cache of rows the request path reads on every
// request (RocksStore keeps three: comment rows, a user's view of a video, a user's reactions
// in a video). A hit answers without the hop to the read pool and without RocksDB.
//
// Exactness: once a write is acknowledged, no lookup returns a value older than it.
//  - A reader calls get(); on a miss it gets the shard's epoch, reads RocksDB (a full read),
//    then fill(key, epoch, value): stored only if no invalidate() touched the key's shard
//    since the get().
//  - Every write that changes a cached row calls invalidate(key) after db->Write() returned
//    and before the write is acknowledged: the key is erased and the shard's epoch advances.
// Why that suffices: let a value be filled at Ti from a get() at T0 < Tr (the RocksDB read)
// < Ti, and W be a write acknowledged before a later lookup, its invalidate() at E. If
// Ti < E, E erased the value. If Ti > E, no invalidate() ran in (T0, Ti), so E < T0 < Tr, and
// the read saw W (its db->Write() had returned before E). The only writers of RocksDB are
// the store's own (this process holds the DB lock), so no write escapes invalidate().
//
// Write-through (begin_write/end_write): a write may change a cached value in place instead
// of erasing it, so a row that is written often (a user's reactions in a hot video) stays
// cached. begin_write(k) runs before the write reaches RocksDB, end_write(k, update) after it
// did and before it is acknowledged; end_write advances the epoch as invalidate() does, then
// runs `update` on the cached value, if there is one. The update must be idempotent and
// correct on the row as it was just before the write or just after it (a "set", not an
// "add"): a fill that read RocksDB before the write may land between begin and end (no
// epoch moved), and the update then brings it forward. That is exact only while this write
// is the one change of the key in flight, so a key written from two threads at once (the
// request writer and the reaction applier) is erased instead: the writes may land in
// RocksDB in one order and reach end_write in the other. So is a key whose write failed
// (it may have partly landed) or whose update declines (returns false).
//
// Bounded by bytes (an estimate per entry). Eviction is CLOCK (second chance): entries queue
// in the order they were stored; a hit only sets the entry's reference bit, and the eviction
// passes over a referenced entry once (clearing its bit, back to the head of the queue)
// before it takes an unreferenced one. A hot row stays as it would under LRU, but a hit
// writes one byte under the shard's lock instead of relinking a list node (0.4 us of a
// read-hot request's 60 in the profile of the read path, session 20). Thread-safe: sharded,
// one mutex per shard.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace commentd::store::rocks {

// Shared by a store's caches; read by the metrics module at scrape time.
struct RowCacheStats {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> fills_refused{0};  // a write to the shard came between read and fill
  std::atomic<uint64_t> evictions{0};      // entries pushed out by the byte bound
  std::atomic<uint64_t> invalidations{0};  // keys invalidated by writes
  std::atomic<uint64_t> updates{0};        // cached values a write changed in place instead
};

template <class K, class V, class Hash = std::hash<K>>
class RowCache {
 public:
  using Charge = size_t (*)(const V&);  // bytes an entry's value holds, beyond the node

  struct Lookup {
    std::optional<V> value;  // a hit
    uint64_t epoch = 0;      // on a miss: pass to fill()
  };

  // capacity_bytes 0: every get() misses and nothing is stored.
  RowCache(size_t capacity_bytes, Charge charge, RowCacheStats& stats)
      : per_shard_(capacity_bytes / kShards), charge_(charge), stats_(stats) {}

  Lookup get(const K& k) {
    Lookup out;
    auto& s = shard(k);
    {
      std::lock_guard lk(s.mu);
      out.epoch = s.epoch;
      auto it = s.map.find(k);
      if (it != s.map.end()) {
        it->second->referenced = true;
        out.value = it->second->value;
      }
    }
    (out.value ? stats_.hits : stats_.misses).fetch_add(1, std::memory_order_relaxed);
    return out;
  }

  // A hit as get() gives it, but neither a hit nor a miss is counted: for a caller that
  // answers only when several lookups all hit, and otherwise asks again through get()
  // (count_hits() then counts what it did answer).
  std::optional<V> find(const K& k) {
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    it->second->referenced = true;
    return it->second->value;
  }
  void count_hits(uint64_t n) { stats_.hits.fetch_add(n, std::memory_order_relaxed); }

  // For a read ahead of need: the epoch to fill under if `k` is not cached (nullopt if it is).
  // No copy, no recency change, not counted as a hit or a miss.
  std::optional<uint64_t> absent(const K& k) {
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    if (s.map.count(k)) return std::nullopt;
    return s.epoch;
  }

  void fill(const K& k, uint64_t epoch, V v) {
    if (per_shard_ == 0) return;
    const size_t bytes = kNodeBytes + charge_(v);
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    if (s.epoch != epoch) {
      stats_.fills_refused.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (bytes > per_shard_) return;
    auto it = s.map.find(k);
    if (it != s.map.end()) {  // filled meanwhile from a read no older than this one
      it->second->referenced = true;
      return;
    }
    s.lru.push_front(Entry{k, std::move(v), bytes});
    s.map.emplace(k, s.lru.begin());
    s.bytes += bytes;
    evict_over_bound(s);
  }

  // After the write of `k` is in RocksDB and before it is acknowledged.
  void invalidate(const K& k) {
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    ++s.epoch;
    auto it = s.map.find(k);
    if (it != s.map.end()) {
      s.bytes -= it->second->bytes;
      s.lru.erase(it->second);
      s.map.erase(it);
    }
    stats_.invalidations.fetch_add(1, std::memory_order_relaxed);
  }

  // Write-through (see the top of the file): before the write of `k` reaches RocksDB.
  void begin_write(const K& k) {
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    auto& w = s.writing[k];
    if (++w.count > 1) w.overlapped = true;
  }

  // After the write begun by begin_write(k) is in RocksDB (or failed: `update` empty) and
  // before it is acknowledged. Keeps the cached value changed by `update` when that is exact.
  void end_write(const K& k, const std::function<bool(V&)>& update) {
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    ++s.epoch;
    auto w = s.writing.find(k);
    const bool alone = w != s.writing.end() && !w->second.overlapped;
    if (w != s.writing.end() && --w->second.count == 0) s.writing.erase(w);
    auto it = s.map.find(k);
    if (it == s.map.end()) {
      stats_.invalidations.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Entry& e = *it->second;
    if (alone && update && update(e.value)) {
      const size_t bytes = kNodeBytes + charge_(e.value);
      s.bytes = s.bytes - e.bytes + bytes;
      e.bytes = bytes;
      stats_.updates.fetch_add(1, std::memory_order_relaxed);
      evict_over_bound(s);
      return;
    }
    s.bytes -= e.bytes;
    s.lru.erase(it->second);
    s.map.erase(it);
    stats_.invalidations.fetch_add(1, std::memory_order_relaxed);
  }

  size_t bytes() const {
    size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard lk(s.mu);
      n += s.bytes;
    }
    return n;
  }

 private:
  static constexpr size_t kShards = 32;
  static constexpr size_t kNodeBytes = sizeof(K) + sizeof(V) + 64;  // list + map nodes

  struct Entry {
    K key;
    V value;
    size_t bytes;
    bool referenced = false;  // read since it was stored or last passed over by the eviction
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // newest first; the eviction takes from the back  GUARDED_BY(mu)
    std::unordered_map<K, typename std::list<Entry>::iterator, Hash> map;  // GUARDED_BY(mu)
    size_t bytes = 0;                                                  // GUARDED_BY(mu)
    uint64_t epoch = 0;                                                // GUARDED_BY(mu)
    struct Writing {
      uint32_t count = 0;       // writes of the key between begin_write and end_write
      bool overlapped = false;  // two or more at some point since count was last 0
    };
    std::unordered_map<K, Writing, Hash> writing;                      // GUARDED_BY(mu)
  };
  Shard& shard(const K& k) { return shards_[Hash{}(k) % kShards]; }
  // REQUIRES: s.mu held.
  // Each entry is passed over at most once per pass (its bit cleared), so this ends.
  void evict_over_bound(Shard& s) {
    while (s.bytes > per_shard_ && !s.lru.empty()) {
      if (s.lru.back().referenced) {
        s.lru.back().referenced = false;
        s.lru.splice(s.lru.begin(), s.lru, std::prev(s.lru.end()));
        continue;
      }
      s.bytes -= s.lru.back().bytes;
      s.map.erase(s.lru.back().key);
      s.lru.pop_back();
      stats_.evictions.fetch_add(1, std::memory_order_relaxed);
    }
  }

  const size_t per_shard_;
  const Charge charge_;
  RowCacheStats& stats_;
  std::array<Shard, kShards> shards_;
};

}  // namespace commentd::store::rocks

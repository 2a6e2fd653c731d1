// Read-your-writes for new comments without invalidating the shared page cache.
//
// A new comment does not bump its video's cache version: on a viral video taking 100
// comments/s that would turn nearly every page read into a miss. Instead the shared pages
// show new comments within the cache TTL (page_ttl), and the author, remembered here for
// that long, reads fresh pages of that video at once. Edits, deletes and moderation still
// bump the version: they must take effect for everyone immediately.
//
// Thread-safe (sharded mutexes); memory bounded by expiring entries and a per-shard cap.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "core/model.h"

namespace commentd::service {

class RecentWriters {
 public:
  RecentWriters(const Clock& clock, TimeMs window_ms, size_t max_entries = 1'000'000)
      : clock_(clock), window_(window_ms), per_shard_(std::max<size_t>(16, max_entries / kShards)) {}

  void wrote(const Uuid& video_id, const Uuid& user_id) {
    TimeMs now = clock_.now_ms();
    Key k{video_id, user_id};
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    if (s.until.size() >= per_shard_)
      std::erase_if(s.until, [now](auto& kv) { return kv.second <= now; });
    if (s.until.size() >= per_shard_) s.until.clear();  // all live: forget; costs freshness only
    s.until[k] = now + window_;
  }

  // Did `user` write to `video` within the window?
  bool recent(const Uuid& video_id, const Uuid& user_id) const {
    Key k{video_id, user_id};
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    auto it = s.until.find(k);
    return it != s.until.end() && it->second > clock_.now_ms();
  }

 private:
  struct Key {
    Uuid video, user;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return UuidHash{}(k.video) * 31 ^ UuidHash{}(k.user); }
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Key, TimeMs, KeyHash> until;  // GUARDED_BY(mu)
  };
  static constexpr size_t kShards = 32;
  const Shard& shard(const Key& k) const { return shards_[KeyHash{}(k) % kShards]; }
  Shard& shard(const Key& k) { return shards_[KeyHash{}(k) % kShards]; }

  const Clock& clock_;
  const TimeMs window_;
  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace commentd::service

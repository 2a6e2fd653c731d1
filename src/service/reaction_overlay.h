// Read-your-writes for reactions: the ops that are durable in the log but not yet applied to
// the reaction rows, by (comment, user). The request path adds an op once it is durable; the
// applier removes it once applied (only if no newer op for the key arrived meanwhile).
// Thread-safe: sharded, one mutex per shard.
#pragma once

#include <array>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/model.h"

namespace commentd::service {

class ReactionOverlay {
 public:
  void put(const ReactionOp& op) {
    Key k{op.comment_id, op.user_id};
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    auto& e = s.map[k];
    if (op.seq > e.seq) e = Entry{op.seq, op.type};
  }
  void applied(const Uuid& comment_id, const Uuid& user_id, uint64_t seq) {
    Key k{comment_id, user_id};
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(k);
    if (it != s.map.end() && it->second.seq <= seq) s.map.erase(it);
  }
  std::optional<ReactionType> find(const Uuid& comment_id, const Uuid& user_id) {
    Key k{comment_id, user_id};
    auto& s = shard(k);
    std::lock_guard lk(s.mu);
    auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    return it->second.type;
  }

 private:
  struct Key {
    Uuid comment, user;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return UuidHash{}(k.comment) * 31 ^ UuidHash{}(k.user); }
  };
  struct Entry {
    uint64_t seq = 0;
    ReactionType type = ReactionType::none;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<Key, Entry, KeyHash> map;  // GUARDED_BY(mu)
  };
  static constexpr size_t kShards = 64;
  Shard& shard(const Key& k) { return shards_[KeyHash{}(k) % kShards]; }
  std::array<Shard, kShards> shards_;
};

}  // namespace commentd::service

// The plan's ReactionSet: a state-based CRDT holding one last-writer-wins register per
// (comment, user), ordered by (timestamp, node_id, op_id). add() of the same op twice, or of
// ops in any order, converges to the same state; merge() is commutative, associative and
// idempotent. Removal is a register set to `none` (a tombstone), so an older "like" that
// arrives after a newer removal cannot resurrect it.
//
// Thread-compatible (the plan's mutex is the owner's business: the applier owns one per
// batch on its own thread).
#pragma once

#include <map>
#include <unordered_map>
#include <utility>

#include "core/model.h"

namespace commentd {

struct RegisterKey {
  Uuid comment_id;
  Uuid user_id;
  auto operator<=>(const RegisterKey&) const = default;
};

class ReactionSet {
 public:
  // Seeds a register with stored state (no transition is reported for it).
  void seed(const RegisterKey& k, const ReactionRow& row) { regs_[k] = row; }
  // Applies `op`; true if it won and changed the register's value or order.
  bool add(const ReactionOp& op);
  // This set joined with `other` (the register-wise LWW maximum).
  ReactionSet merge(const ReactionSet& other) const;
  // user -> like|dislike for one comment (tombstones omitted).
  std::map<Uuid, ReactionType> get_reactions(const Uuid& comment_id) const;
  // like/dislike -> count for one comment.
  std::map<ReactionType, int64_t> count_by_type(const Uuid& comment_id) const;
  const ReactionRow* find(const RegisterKey& k) const {
    auto it = regs_.find(k);
    return it == regs_.end() ? nullptr : &it->second;
  }
  const std::map<RegisterKey, ReactionRow>& registers() const { return regs_; }
  bool operator==(const ReactionSet& o) const;

 private:
  std::map<RegisterKey, ReactionRow> regs_;
};

// The counter change of one register moving from `before` to `after`.
struct ReactionDelta {
  int64_t likes = 0;
  int64_t dislikes = 0;
};
ReactionDelta transition(ReactionType before, ReactionType after);

}  // namespace commentd

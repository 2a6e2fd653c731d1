#include "core/reaction_set.h"

namespace commentd {
namespace {
bool row_less(const ReactionRow& a, const ReactionRow& b) {
  if (a.timestamp != b.timestamp) return a.timestamp < b.timestamp;
  if (a.node_id != b.node_id) return a.node_id < b.node_id;
  return a.op_id < b.op_id;
}
bool row_eq(const ReactionRow& a, const ReactionRow& b) {
  return a.type == b.type && a.timestamp == b.timestamp && a.node_id == b.node_id && a.op_id == b.op_id;
}
}  // namespace

bool ReactionSet::add(const ReactionOp& op) {
  RegisterKey k{op.comment_id, op.user_id};
  auto it = regs_.find(k);
  if (it != regs_.end() && !lww_wins(op, it->second)) return false;
  regs_[k] = ReactionRow{op.type, op.timestamp, op.node_id, op.op_id};
  return true;
}

ReactionSet ReactionSet::merge(const ReactionSet& other) const {
  ReactionSet out = *this;
  for (auto& [k, row] : other.regs_) {
    auto it = out.regs_.find(k);
    if (it == out.regs_.end() || row_less(it->second, row)) out.regs_[k] = row;
  }
  return out;
}

std::map<Uuid, ReactionType> ReactionSet::get_reactions(const Uuid& comment_id) const {
  std::map<Uuid, ReactionType> out;
  for (auto it = regs_.lower_bound(RegisterKey{comment_id, Uuid{}});
       it != regs_.end() && it->first.comment_id == comment_id; ++it)
    if (it->second.type != ReactionType::none) out[it->first.user_id] = it->second.type;
  return out;
}

std::map<ReactionType, int64_t> ReactionSet::count_by_type(const Uuid& comment_id) const {
  std::map<ReactionType, int64_t> out{{ReactionType::like, 0}, {ReactionType::dislike, 0}};
  for (auto& [user, t] : get_reactions(comment_id)) ++out[t];
  return out;
}

bool ReactionSet::operator==(const ReactionSet& o) const {
  if (regs_.size() != o.regs_.size()) return false;
  for (auto a = regs_.begin(), b = o.regs_.begin(); a != regs_.end(); ++a, ++b)
    if (a->first != b->first || !row_eq(a->second, b->second)) return false;
  return true;
}

ReactionDelta transition(ReactionType before, ReactionType after) {
  ReactionDelta d;
  if (before == after) return d;
  if (before == ReactionType::like) --d.likes;
  if (before == ReactionType::dislike) --d.dislikes;
  if (after == ReactionType::like) ++d.likes;
  if (after == ReactionType::dislike) ++d.dislikes;
  return d;
}

}  // namespace commentd

// The domain types shared by every layer. Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/uuid.h"

namespace commentd {

enum class CommentStatus : uint8_t { visible = 0, hidden = 1, pending = 2, spam = 3, deleted = 4 };
std::string_view to_string(CommentStatus s);
std::optional<CommentStatus> parse_status(std::string_view s);  // not "deleted": use DELETE

enum class ReactionType : uint8_t { none = 0, like = 1, dislike = 2 };
std::string_view to_string(ReactionType t);
std::optional<ReactionType> parse_reaction(std::string_view s);  // like|dislike|none

enum class SortOrder : uint8_t { newest = 0, oldest = 1 };

struct Comment {
  Uuid id;
  Uuid video_id;
  Uuid user_id;
  std::optional<Uuid> parent_id;  // the top-level comment of the thread
  std::optional<Uuid> reply_to;   // the comment this one answers (may be a reply)
  std::string content;
  CommentStatus status = CommentStatus::visible;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  TimeMs deleted_at = 0;  // 0 = not deleted
  bool edited = false;
  uint32_t depth = 0;     // 0 = top-level
  uint64_t version = 1;   // bumped by every change; optimistic concurrency
};

// Counted toward comments_count / replies_count?
inline bool is_counted(CommentStatus s) { return s == CommentStatus::visible; }
// Still listed for everyone (a deleted placeholder keeps its thread)?
inline bool is_public(CommentStatus s) {
  return s == CommentStatus::visible || s == CommentStatus::deleted;
}

struct Actor {
  std::optional<Uuid> user_id;  // nullopt = anonymous
  bool moderator = false;
  // The client's address as a rate-limit subject ("ip:..."; http/client_address.h); empty =
  // not known (no per-address limit).
  std::string address_subject;
  bool authenticated() const { return user_id.has_value(); }
};

// May `viewer` see `c` at all?
inline bool can_see(const Actor& viewer, const Comment& c) {
  if (is_public(c.status)) return true;
  return viewer.moderator || (viewer.user_id && *viewer.user_id == c.user_id);
}

struct CommentMetrics {
  int64_t likes = 0;
  int64_t dislikes = 0;
  int64_t replies_count = 0;
  TimeMs last_updated = 0;
};

struct VideoStats {
  int64_t comments_count = 0;
  int64_t reactions_count = 0;
  TimeMs last_updated = 0;
};

// The plan's update_frequency tiers.
enum class Tier : uint8_t { low = 0, normal = 1, high = 2, realtime = 3 };
std::string_view to_string(Tier t);

// One reaction request, durable in the op log before it is acknowledged. A last-writer-wins
// register update for (comment_id, user_id), ordered by (timestamp, node_id, op_id).
struct ReactionOp {
  Uuid op_id;
  Uuid comment_id;
  Uuid video_id;
  Uuid user_id;
  ReactionType type = ReactionType::none;
  TimeMs timestamp = 0;
  uint32_t node_id = 0;
  uint64_t seq = 0;  // position in the log; assigned when appended
};

// The stored state of one (comment, user) register.
struct ReactionRow {
  ReactionType type = ReactionType::none;
  TimeMs timestamp = 0;
  uint32_t node_id = 0;
  Uuid op_id;
};

// Does `op` win over the register state `row` (LWW order)?
inline bool lww_wins(const ReactionOp& op, const ReactionRow& row) {
  if (op.timestamp != row.timestamp) return op.timestamp > row.timestamp;
  if (op.node_id != row.node_id) return op.node_id > row.node_id;
  return op.op_id > row.op_id;
}

}  // namespace commentd

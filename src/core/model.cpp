#include "core/model.h"

namespace commentd {

std::string_view to_string(CommentStatus s) {
  switch (s) {
    case CommentStatus::visible: return "visible";
    case CommentStatus::hidden: return "hidden";
    case CommentStatus::pending: return "pending";
    case CommentStatus::spam: return "spam";
    case CommentStatus::deleted: return "deleted";
  }
  return "visible";
}

std::optional<CommentStatus> parse_status(std::string_view s) {
  if (s == "visible") return CommentStatus::visible;
  if (s == "hidden") return CommentStatus::hidden;
  if (s == "pending") return CommentStatus::pending;
  if (s == "spam") return CommentStatus::spam;
  return std::nullopt;
}

std::string_view to_string(ReactionType t) {
  switch (t) {
    case ReactionType::like: return "like";
    case ReactionType::dislike: return "dislike";
    case ReactionType::none: return "none";
  }
  return "none";
}

std::optional<ReactionType> parse_reaction(std::string_view s) {
  if (s == "like") return ReactionType::like;
  if (s == "dislike") return ReactionType::dislike;
  if (s == "none") return ReactionType::none;
  return std::nullopt;
}

std::string_view to_string(Tier t) {
  switch (t) {
    case Tier::low: return "low";
    case Tier::normal: return "normal";
    case Tier::high: return "high";
    case Tier::realtime: return "realtime";
  }
  return "low";
}

}  // namespace commentd

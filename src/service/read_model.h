// The plan's CommentReadModel as JSON. A comment is serialized once per cache fill without
// the caller's fields (user_reacted, reaction_type); those are appended per request.
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/page_cache.h"
#include "core/model.h"

namespace commentd::service {

// The JSON object of `c` with counters `m`, minus its closing brace.
std::string comment_json_open(const Comment& c, const CommentMetrics& m);
// Appends `open` plus the caller's fields and the closing brace to `out`.
void close_comment_json(std::string& out, std::string_view open, ReactionType mine);
std::string comment_json(const Comment& c, const CommentMetrics& m, ReactionType mine);
// {"comments":[...],"next_cursor":...}; mine[i] is the caller's reaction to items[i].
std::string page_json(const std::vector<cache::PageItem>& items,
                      const std::vector<ReactionType>& mine,
                      const std::optional<std::string>& next_cursor);
std::string reaction_op_json(const ReactionOp& op);
std::string video_stats_json(const Uuid& video_id, const VideoStats& s, bool trending,
                             Tier tier);

}  // namespace commentd::service

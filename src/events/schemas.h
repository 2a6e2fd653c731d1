// The plan's event schemas (CommentEvent, ReactionEvent) as JSON. Events are written to the
// outbox in the same atomic batch as the change they describe, so none is lost on a crash
// (the plan published them from a goroutine after the write).
#pragma once

#include <string>
#include <string_view>

#include "core/model.h"

namespace commentd::events {

inline constexpr std::string_view kCommentsTopic = "comments";

// event_type: created | updated | deleted | status_changed
std::string comment_event_json(std::string_view event_type, const Comment& c, TimeMs at);

}  // namespace commentd::events

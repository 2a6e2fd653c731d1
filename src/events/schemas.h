// The plan's event schemas (CommentEvent, ReactionEvent) as JSON, plus what the plan lacks:
// a unique `event_id` (consumers are idempotent by it), the origin `node_id`, and the
// event's `position` in its video's order (added by the relay: the outbox sequence).
// Events are written to the outbox in the same atomic batch as the change they describe, so
// none is lost on a crash (the plan published them from a goroutine after the write).
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.h"

namespace commentd::events {

// CommentEvent. event_type: created | updated | deleted | status_changed. Message key: the
// video id (order per video).
std::string comment_event_json(const Uuid& event_id, uint32_t node_id, std::string_view event_type,
                               const Comment& c, TimeMs at);
// ReactionEvent for a reaction op: "added" (like/dislike) or "removed" (none). Message key:
// the comment id. The service's event id is the op id (reaction_id): an op is its event, made
// again from the op log wherever it is relayed (workers/outbox_relay.h op_log_source).
std::string reaction_event_json(const Uuid& event_id, const ReactionOp& op);

// `payload` (a JSON object) with "position":N as its first member; other payloads as they are.
std::string with_position(std::string_view payload, uint64_t position);

// The fields a consumer routes on. nullopt if the payload is not an event object.
struct EventHeader {
  std::string event_id;
  std::string event_type;
  std::optional<Uuid> video_id;
  std::optional<Uuid> comment_id;
  uint32_t node_id = 0;
  uint64_t position = 0;
  // When the change happened (the write's time: a comment event's properties.at, else its
  // created_at): where end-to-end event latency is measured from. nullopt if absent.
  std::optional<TimeMs> at;
};
std::optional<EventHeader> parse_event_header(std::string_view payload);

}  // namespace commentd::events

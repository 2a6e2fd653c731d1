// The cache-invalidation subscriber (the plan's 4.2, event-driven processing): comment events
// that change what a cached page shows for everyone (updated, deleted, status_changed) bump
// the video's cache version on this node. The writing node bumps its own cache inline, so
// its readers (the writer included) see the change at once; this subscriber carries it to
// every other node's cache, and skips the events its own node wrote. New comments bump
// nothing: pages show them within cache.page_ttl (their authors read them at once: the RecentWrite mark, docs/cluster.md).
//
// The same events drop the changed comment's kept copies through `forget_comment` (optional:
// the node's CommentChecks and the shared layer under them, service/comment_checks.h), so a
// reaction on this node to a comment deleted or hidden elsewhere reads the comment again.
//
// One durable subscription per node ("cache-invalidation-node-<id>"), starting at the latest
// event: a starting node's cache is empty anyway.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cache/page_cache.h"
#include "events/event_bus.h"
#include "workers/event_subscriber.h"

namespace commentd::workers {

// True if `event_type` invalidates the video's cached pages.
bool invalidates_pages(std::string_view event_type);

using ForgetComment = std::function<boost::asio::awaitable<Status>(Uuid, Deadline)>;

// REQUIRES: `bus` and `cache` outlive the subscriber.
std::unique_ptr<EventSubscriber> make_cache_invalidation(events::EventBus& bus, cache::PageCache& cache,
                                                         const std::string& comments_topic, uint16_t node_id,
                                                         ForgetComment forget_comment = {});

}  // namespace commentd::workers

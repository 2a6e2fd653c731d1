#include "workers/cache_invalidation.h"

namespace commentd::workers {

bool invalidates_pages(std::string_view t) { return t == "updated" || t == "deleted" || t == "status_changed"; }

std::unique_ptr<EventSubscriber> make_cache_invalidation(events::EventBus& bus, cache::PageCache& cache,
                                                         const std::string& comments_topic, uint16_t node_id,
                                                         ForgetComment forget_comment) {
  SubscriberOptions o;
  o.topic = comments_topic;
  o.subscription = "cache-invalidation-node-" + std::to_string(node_id);
  o.sub.type = events::SubscriptionType::exclusive;
  o.sub.initial = events::InitialPosition::latest;
  auto handler = [&cache, node_id, forget = std::move(forget_comment)](
                     const events::Message&, const events::EventHeader& h) -> boost::asio::awaitable<Status> {
    if (!invalidates_pages(h.event_type) || !h.video_id || h.node_id == node_id) co_return ok_status();
    const Deadline d = Deadline::after(std::chrono::seconds(1));
    // A failure (a shared cache away) is returned: the message is redelivered.
    if (forget && h.comment_id)
      if (auto st = co_await forget(*h.comment_id, d); !st) co_return st;
    co_return co_await cache.bump_video(*h.video_id, d);
  };
  return std::make_unique<EventSubscriber>(bus, "cache-invalidation", std::move(o), std::move(handler));
}

}  // namespace commentd::workers

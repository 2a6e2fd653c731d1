#include "workers/event_subscriber.h"

#include <spdlog/spdlog.h>

#include <boost/asio/use_awaitable.hpp>
#include <algorithm>

#include "core/clock.h"

namespace commentd::workers {

namespace asio = boost::asio;

bool RecentIds::insert(const std::string& id) {
  if (!set_.insert(id).second) return false;
  order_.push_back(id);
  if (order_.size() > capacity_) {
    set_.erase(order_.front());
    order_.pop_front();
  }
  return true;
}

EventSubscriber::EventSubscriber(events::EventBus& bus, std::string name, SubscriberOptions opts, Handler handler)
    : bus_(bus), name_(std::move(name)), opts_(std::move(opts)), handler_(std::move(handler)),
      seen_(opts_.dedup_window),
      sub_(bus, name_,
           SubscriptionOptions{.topic = opts_.topic, .subscription = opts_.subscription, .sub = opts_.sub,
                               .resubscribe_backoff = opts_.resubscribe_backoff, .thread_name = "commentd-sub",
                               .startup_wait = opts_.startup_wait},
           stats_, [this](events::Consumer& c) { return consume(c); }) {}

EventSubscriber::~EventSubscriber() { stop(); }

asio::awaitable<void> EventSubscriber::consume(events::Consumer& c) {
  events::Consumer* cons = &c;
  for (;;) {
    auto m = co_await cons->receive();
    if (!m) co_return;  // closed, or ended by the bus
    auto h = events::parse_event_header(m->payload);
    if (!h) {
      stats_.malformed.fetch_add(1);
      spdlog::warn("{}: dropped a message that is not an event (topic {}, id {})", name_, m->topic, m->message_id);
      (void)co_await cons->ack(*m);
      continue;
    }
    if (!seen_.insert(h->event_id)) {
      stats_.duplicates.fetch_add(1);
      (void)co_await cons->ack(*m);
      continue;
    }
    Status s = co_await handler_(*m, *h);
    if (s) {
      stats_.handled.fetch_add(1);
      if (h->at) stats_.latency_seconds.observe(std::max<int64_t>(0, SystemClock().now_ms() - *h->at) / 1000.0);
      (void)co_await cons->ack(*m);
      continue;
    }
    stats_.failed.fetch_add(1);
    spdlog::warn("{}: event {} failed (delivery {}): {}", name_, h->event_id, m->redelivery_count + 1,
                 s.error().message);
    if (!opts_.dead_letter_topic.empty() && m->redelivery_count + 1 >= opts_.max_deliveries) {
      auto p = co_await bus_.publish(opts_.dead_letter_topic, m->key, m->payload, 0);
      if (p) {
        stats_.dead_lettered.fetch_add(1);
        spdlog::warn("{}: event {} moved to {}", name_, h->event_id, opts_.dead_letter_topic);
        (void)co_await cons->ack(*m);
        continue;
      }
    }
    seen_.forget(h->event_id);
    co_await cons->nack(*m);
  }
}

}  // namespace commentd::workers

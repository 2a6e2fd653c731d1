#include "workers/event_subscriber.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <optional>

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
      seen_(opts_.dedup_window) {}

EventSubscriber::~EventSubscriber() { stop(); }

Status EventSubscriber::start() {
  std::optional<Result<std::unique_ptr<events::Consumer>>> c;
  asio::co_spawn(
      ioc_,
      [this, &c]() -> asio::awaitable<void> { c.emplace(co_await bus_.subscribe(opts_.topic, opts_.subscription, opts_.sub)); },
      asio::detached);
  ioc_.restart();
  ioc_.run();  // only the subscribe is queued: runs it to completion on this thread
  if (!*c) return c->take_error();
  consumer_ = std::move(**c);
  ioc_.restart();
  asio::co_spawn(ioc_, loop(), asio::detached);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "commentd-sub");
    ioc_.run();
  });
  return ok_status();
}

void EventSubscriber::stop() {
  if (consumer_) consumer_->close();  // a pending receive() ends with unavailable
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> EventSubscriber::loop() {
  for (;;) {
    auto m = co_await consumer_->receive();
    if (!m) co_return;  // closed
    auto h = events::parse_event_header(m->payload);
    if (!h) {
      stats_.malformed.fetch_add(1);
      spdlog::warn("{}: dropped a message that is not an event (topic {}, id {})", name_, m->topic, m->message_id);
      (void)co_await consumer_->ack(*m);
      continue;
    }
    if (!seen_.insert(h->event_id)) {
      stats_.duplicates.fetch_add(1);
      (void)co_await consumer_->ack(*m);
      continue;
    }
    Status s = co_await handler_(*m, *h);
    if (s) {
      stats_.handled.fetch_add(1);
      (void)co_await consumer_->ack(*m);
    } else {
      stats_.failed.fetch_add(1);
      spdlog::warn("{}: event {} failed: {}", name_, h->event_id, s.error().message);
      seen_.forget(h->event_id);
      co_await consumer_->nack(*m);
    }
  }
}

}  // namespace commentd::workers

#include "workers/event_subscriber.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
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
  if (*c) {
    set_consumer(std::move(**c));
  } else if (c->error().code == Errc::unavailable) {
    stats_.subscribe_errors.fetch_add(1);
    spdlog::warn("{}: the event bus is away ({}); subscribing in the background", name_, c->error().message);
  } else {
    return c->take_error();
  }
  ioc_.restart();
  asio::co_spawn(ioc_, loop(), asio::detached);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "commentd-sub");
    ioc_.run();
  });
  return ok_status();
}

void EventSubscriber::stop() {
  stopping_ = true;
  asio::post(ioc_, [this] { timer_.cancel(); });
  {
    std::lock_guard lk(mu_);
    if (consumer_) consumer_->close();  // a pending receive() ends with unavailable
  }
  if (thread_.joinable()) thread_.join();
}

void EventSubscriber::set_consumer(std::unique_ptr<events::Consumer> c) {
  std::lock_guard lk(mu_);
  consumer_ = std::move(c);
  if (stopping_) consumer_->close();
}

events::Consumer* EventSubscriber::consumer() {
  std::lock_guard lk(mu_);
  return consumer_.get();
}

asio::awaitable<bool> EventSubscriber::subscribe_with_backoff() {
  auto wait = opts_.resubscribe_backoff;
  while (!stopping_) {
    timer_.expires_after(wait);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    auto c = co_await bus_.subscribe(opts_.topic, opts_.subscription, opts_.sub);
    if (c) {
      set_consumer(std::move(*c));
      co_return true;
    }
    stats_.subscribe_errors.fetch_add(1);
    wait = std::min<std::chrono::milliseconds>(wait * 2, std::chrono::seconds(5));
  }
  co_return false;
}

asio::awaitable<void> EventSubscriber::loop() {
  if (!consumer() && !co_await subscribe_with_backoff()) co_return;
  events::Consumer* cons = consumer();  // set once before the loop runs on
  for (;;) {
    auto m = co_await cons->receive();
    if (!m) co_return;  // closed
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

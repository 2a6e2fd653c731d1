#include "workers/batch_consumer.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

namespace commentd::workers {

namespace asio = boost::asio;

BatchConsumer::BatchConsumer(events::EventBus& bus, std::string name, BatchConsumerOptions opts, Handler handler)
    : bus_(bus), name_(std::move(name)), opts_(std::move(opts)), handler_(std::move(handler)) {}

BatchConsumer::~BatchConsumer() { stop(); }

Status BatchConsumer::start() {
  std::optional<Result<std::unique_ptr<events::Consumer>>> c;
  asio::co_spawn(
      ioc_,
      [this, &c]() -> asio::awaitable<void> { c.emplace(co_await bus_.subscribe(opts_.topic, opts_.subscription, opts_.sub)); },
      asio::detached);
  ioc_.restart();
  ioc_.run();  // only the subscribe is queued: runs it to completion on this thread
  if (*c) {
    std::lock_guard lk(mu_);
    consumer_ = std::move(**c);
  } else if (c->error().code == Errc::unavailable) {
    stats_.subscribe_errors.fetch_add(1);
    spdlog::warn("{}: the event bus is away ({}); subscribing in the background", name_, c->error().message);
  } else {
    return c->take_error();
  }
  ioc_.restart();
  asio::co_spawn(ioc_, run(), asio::detached);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "commentd-batch");
    ioc_.run();
  });
  return ok_status();
}

void BatchConsumer::stop() {
  stopping_ = true;
  asio::post(ioc_, [this] { timer_.cancel(); });
  {
    std::lock_guard lk(mu_);
    if (consumer_) consumer_->close();
  }
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<bool> BatchConsumer::subscribe_with_backoff() {
  {
    std::lock_guard lk(mu_);
    if (consumer_) co_return true;
  }
  auto wait = opts_.resubscribe_backoff;
  while (!stopping_) {
    timer_.expires_after(wait);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    auto c = co_await bus_.subscribe(opts_.topic, opts_.subscription, opts_.sub);
    if (c) {
      std::lock_guard lk(mu_);
      consumer_ = std::move(*c);
      if (stopping_) consumer_->close();
      co_return true;
    }
    stats_.subscribe_errors.fetch_add(1);
    wait = std::min<std::chrono::milliseconds>(wait * 2, std::chrono::seconds(5));
  }
  co_return false;
}

asio::awaitable<void> BatchConsumer::run() {
  // A consumer that ends while not stopping (the bus lost it: e.g. the broker went away) is
  // replaced: subscribe again with backoff and go on; what it had not acked comes back.
  while (!stopping_) {
    co_await consume();
    if (stopping_) break;
    std::unique_ptr<events::Consumer> old;
    {
      std::lock_guard lk(mu_);
      old = std::move(consumer_);
    }
    if (old) old->close();
    stats_.resubscribes.fetch_add(1);
    spdlog::warn("{}: the consumer ended; subscribing again", name_);
  }
}

asio::awaitable<void> BatchConsumer::consume() {
  if (!co_await subscribe_with_backoff()) co_return;
  events::Consumer* c = nullptr;
  {
    std::lock_guard lk(mu_);
    c = consumer_.get();
  }
  // A pump receives into a channel of batch_size; this coroutine cuts it into batches. The
  // pump closes the channel when the consumer closes, and returns before this one resumes.
  using Channel = asio::experimental::channel<void(boost::system::error_code, events::Message)>;
  Channel ch(ioc_, opts_.batch_size);
  asio::co_spawn(
      ioc_,
      [&ch, c]() -> asio::awaitable<void> {
        for (;;) {
          auto m = co_await c->receive();
          if (!m) break;
          auto [ec] = co_await ch.async_send(boost::system::error_code{}, std::move(*m), asio::as_tuple(asio::use_awaitable));
          if (ec) break;
        }
        ch.close();
      },
      asio::detached);

  asio::steady_timer deadline(ioc_);
  const size_t limit = std::max<size_t>(1, opts_.batch_size);
  for (bool open = true; open;) {
    auto [ec, first] = co_await ch.async_receive(asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    std::vector<events::Message> batch;
    batch.push_back(std::move(first));
    deadline.expires_after(opts_.batch_timeout);
    while (batch.size() < limit) {
      // Both results are looked at: a receive that completed as the timer fired still holds
      // its message (racing them with `||` dropped it, and the message was never acked).
      auto [order, rec_ec, m, timer_ec] =
          co_await asio::experimental::make_parallel_group(ch.async_receive(asio::deferred),
                                                           deadline.async_wait(asio::deferred))
              .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
      (void)timer_ec;
      if (!rec_ec) {
        batch.push_back(std::move(m));
        if (order[0] == 1) break;  // the batch's time is up
        continue;
      }
      if (order[0] == 1) break;  // the batch's time is up; the receive was cancelled
      open = false;              // the channel is closed
      break;
    }
    Status s = co_await handler_(batch);
    if (s) {
      for (auto& m : batch) (void)co_await c->ack(m);
      stats_.batches.fetch_add(1);
      stats_.messages.fetch_add(batch.size());
    } else {
      spdlog::warn("{}: a batch of {} failed: {}", name_, batch.size(), s.error().message);
      stats_.failed_batches.fetch_add(1);
      for (auto& m : batch) (void)co_await c->nack(m);
    }
  }
  // Only a closed channel ends the loop, and closing it is the pump's last step.
}

}  // namespace commentd::workers

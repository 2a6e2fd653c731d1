#include "workers/batch_consumer.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace commentd::workers {

namespace asio = boost::asio;

BatchConsumer::BatchConsumer(events::EventBus& bus, std::string name, BatchConsumerOptions opts, Handler handler)
    : BatchConsumer(bus, std::move(name), std::move(opts),
                    PartialHandler([h = std::move(handler)](const std::vector<events::Message>& batch,
                                                            std::vector<size_t>&) { return h(batch); })) {}

BatchConsumer::BatchConsumer(events::EventBus& bus, std::string name, BatchConsumerOptions opts, PartialHandler handler)
    : name_(std::move(name)), opts_(std::move(opts)), handler_(std::move(handler)),
      sub_(bus, name_,
           SubscriptionOptions{.topic = opts_.topic, .subscription = opts_.subscription, .sub = opts_.sub,
                               .resubscribe_backoff = opts_.resubscribe_backoff, .thread_name = "commentd-batch"},
           stats_, [this](events::Consumer& c) { return consume(c); }) {}

BatchConsumer::~BatchConsumer() { stop(); }

asio::awaitable<void> BatchConsumer::consume(events::Consumer& cons) {
  events::Consumer* c = &cons;
  auto& ioc = sub_.ioc();
  // A pump receives into a channel of batch_size; this coroutine cuts it into batches. The
  // pump closes the channel when the consumer closes, and returns before this one resumes.
  using Channel = asio::experimental::channel<void(boost::system::error_code, events::Message)>;
  Channel ch(ioc, opts_.batch_size);
  asio::co_spawn(
      ioc,
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

  asio::steady_timer deadline(ioc);
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
    std::vector<size_t> give_back;
    Status s = co_await handler_(batch, give_back);
    if (s) {
      std::vector<bool> back(batch.size(), false);
      for (size_t i : give_back)
        if (i < back.size()) back[i] = true;
      size_t acked = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (back[i]) {
          (void)co_await c->nack(batch[i]);
        } else {
          (void)co_await c->ack(batch[i]);
          ++acked;
        }
      }
      stats_.batches.fetch_add(1);
      stats_.messages.fetch_add(acked);
      stats_.given_back.fetch_add(batch.size() - acked);
    } else {
      spdlog::warn("{}: a batch of {} failed: {}", name_, batch.size(), s.error().message);
      stats_.failed_batches.fetch_add(1);
      for (auto& m : batch) (void)co_await c->nack(m);
    }
  }
  // Only a closed channel ends the loop, and closing it is the pump's last step.
  if (opts_.on_consumer_end) opts_.on_consumer_end();
}

}  // namespace commentd::workers

// The plan's BatchConsumer: a bus subscriber as a worker that hands its handler batches of
// up to batch_size messages, each batch closed at batch_size or batch_timeout after its first
// message, whichever comes first. The handler's success acks the whole batch; its failure
// nacks the whole batch (redelivered after the nack delay), so a handler applies a batch all
// or nothing and is idempotent by event id (a batch may come back after a crash). A handler
// may also give some messages of a successful batch back (nacked, not acked): what it may not
// handle now, such as a reaction owner's messages for comments another node still holds.
// Subscribing, and subscribing again after an outage, is workers/subscription.h's.
//
// Thread-safe: one thread of its own; stats from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "events/event_bus.h"
#include "workers/subscription.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

struct BatchConsumerOptions {
  std::string topic;
  std::string subscription;
  events::SubscribeOptions sub;
  size_t batch_size = 100;
  std::chrono::milliseconds batch_timeout{100};
  std::chrono::milliseconds resubscribe_backoff{200};  // doubles up to 5 s while the bus is away
  // Called on the consumer's thread once a consumer has ended (the bus went away, or stop()),
  // after its last batch and before any next consumer: what it held may now be another's.
  std::function<void()> on_consumer_end;
};

struct BatchConsumerStats : SubscriptionStats {
  std::atomic<uint64_t> batches{0};         // handled and acked
  std::atomic<uint64_t> messages{0};        // in handled batches
  std::atomic<uint64_t> failed_batches{0};  // nacked
  std::atomic<uint64_t> given_back{0};      // messages of handled batches the handler gave back
};

class BatchConsumer final : public Worker {
 public:
  using Handler = std::function<boost::asio::awaitable<Status>(const std::vector<events::Message>&)>;
  // Success: the batch is acked, except the messages whose indexes it put in `give_back`,
  // which are nacked.
  using PartialHandler =
      std::function<boost::asio::awaitable<Status>(const std::vector<events::Message>&, std::vector<size_t>& give_back)>;

  // REQUIRES: `bus` outlives the consumer.
  BatchConsumer(events::EventBus& bus, std::string name, BatchConsumerOptions opts, Handler handler);
  BatchConsumer(events::EventBus& bus, std::string name, BatchConsumerOptions opts, PartialHandler handler);
  ~BatchConsumer() override;

  Status start() override { return sub_.start(); }
  // Leaves the subscription after the batch in hand; what was not acked is redelivered.
  void stop() override { sub_.stop(); }
  std::string name() const override { return name_; }
  BatchConsumerStats& stats() { return stats_; }

 private:
  // Cuts one consumer's messages into batches until it ends.
  boost::asio::awaitable<void> consume(events::Consumer& c);

  const std::string name_;
  const BatchConsumerOptions opts_;
  PartialHandler handler_;
  BatchConsumerStats stats_;
  Subscription sub_;  // last: its thread runs consume(), which uses the members above
};

}  // namespace commentd::workers

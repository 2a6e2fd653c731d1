// The plan's BatchConsumer: a bus subscriber as a worker that hands its handler batches of
// up to batch_size messages, each batch closed at batch_size or batch_timeout after its first
// message, whichever comes first. The handler's success acks the whole batch; its failure
// nacks the whole batch (redelivered after the nack delay), so a handler applies a batch all
// or nothing and is idempotent by event id (a batch may come back after a crash).
// A bus that is away at start() does not fail it: the consumer subscribes again with backoff,
// and so it does when the bus ends a consumer it had (e.g. the broker went away).
//
// Thread-safe: one thread of its own; stats from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "events/event_bus.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

struct BatchConsumerOptions {
  std::string topic;
  std::string subscription;
  events::SubscribeOptions sub;
  size_t batch_size = 100;
  std::chrono::milliseconds batch_timeout{100};
  std::chrono::milliseconds resubscribe_backoff{200};  // doubles up to 5 s while the bus is away
};

struct BatchConsumerStats {
  std::atomic<uint64_t> batches{0};         // handled and acked
  std::atomic<uint64_t> messages{0};        // in handled batches
  std::atomic<uint64_t> failed_batches{0};  // nacked
  std::atomic<uint64_t> subscribe_errors{0};
  std::atomic<uint64_t> resubscribes{0};  // consumers lost by the bus and replaced
};

class BatchConsumer final : public Worker {
 public:
  using Handler = std::function<boost::asio::awaitable<Status>(const std::vector<events::Message>&)>;

  // REQUIRES: `bus` outlives the consumer.
  BatchConsumer(events::EventBus& bus, std::string name, BatchConsumerOptions opts, Handler handler);
  ~BatchConsumer() override;

  Status start() override;
  // Leaves the subscription after the batch in hand; what was not acked is redelivered.
  void stop() override;
  std::string name() const override { return name_; }
  BatchConsumerStats& stats() { return stats_; }

 private:
  boost::asio::awaitable<void> run();
  // One consumer's life: subscribe (with backoff), batches until it ends.
  boost::asio::awaitable<void> consume();
  boost::asio::awaitable<bool> subscribe_with_backoff();

  events::EventBus& bus_;
  const std::string name_;
  const BatchConsumerOptions opts_;
  Handler handler_;
  BatchConsumerStats stats_;

  std::mutex mu_;
  std::unique_ptr<events::Consumer> consumer_;  // guarded by mu_; set once
  std::atomic<bool> stopping_{false};
  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer timer_{ioc_};  // backoff; owned by ioc_'s thread
  std::thread thread_;
};

}  // namespace commentd::workers

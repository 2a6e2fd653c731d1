// A bus subscriber as a worker (the plan's Consumer with Start/Stop): joins a durable
// subscription, hands each event to its handler, acks after success and nacks on failure
// (redelivered after the nack delay). Idempotent by event id: an event id seen within the
// last `dedup_window` events is acked without calling the handler again (redelivery after
// a crash, a republish the bus could not deduplicate). Handlers whose effects are in the
// store must also be idempotent on their own (the window is in memory).
//
// Thread-safe: one thread of its own; stats from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>

#include "events/event_bus.h"
#include "events/schemas.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

// A bounded set of recently seen ids (FIFO eviction). Not thread-safe.
class RecentIds {
 public:
  explicit RecentIds(size_t capacity) : capacity_(capacity) {}
  // True if `id` is new (and remembers it).
  bool insert(const std::string& id);
  // Forgets `id` (its handling failed: it must be handled when it comes back).
  void forget(const std::string& id) { set_.erase(id); }

 private:
  size_t capacity_;
  std::unordered_set<std::string> set_;
  std::deque<std::string> order_;
};

struct SubscriberOptions {
  std::string topic;
  std::string subscription;
  events::SubscribeOptions sub;
  size_t dedup_window = 100000;
};

struct SubscriberStats {
  std::atomic<uint64_t> handled{0};
  std::atomic<uint64_t> duplicates{0};  // acked without handling: event id already seen
  std::atomic<uint64_t> failed{0};      // handler errors (nacked)
  std::atomic<uint64_t> malformed{0};   // not an event: acked and dropped, counted
};

class EventSubscriber final : public Worker {
 public:
  using Handler = std::function<boost::asio::awaitable<Status>(const events::Message&, const events::EventHeader&)>;

  // REQUIRES: `bus` outlives the subscriber.
  EventSubscriber(events::EventBus& bus, std::string name, SubscriberOptions opts, Handler handler);
  ~EventSubscriber() override;

  // Joins the subscription (returns its error, if any) and starts consuming.
  Status start() override;
  // Leaves the subscription; unacked events are redelivered to the next consumer.
  void stop() override;
  std::string name() const override { return name_; }
  SubscriberStats& stats() { return stats_; }

 private:
  boost::asio::awaitable<void> loop();

  events::EventBus& bus_;
  const std::string name_;
  const SubscriberOptions opts_;
  Handler handler_;
  SubscriberStats stats_;
  RecentIds seen_;  // owned by the loop
  std::unique_ptr<events::Consumer> consumer_;  // set by start(), closed by stop()
  boost::asio::io_context ioc_{1};
  std::thread thread_;
};

}  // namespace commentd::workers

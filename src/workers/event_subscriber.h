// A bus subscriber as a worker (the plan's Consumer with Start/Stop): joins a durable
// subscription, hands each event to its handler, acks after success and nacks on failure
// (redelivered after the nack delay). Idempotent by event id: an event id seen within the
// last `dedup_window` events is acked without calling the handler again (redelivery after
// a crash, a republish the bus could not deduplicate). Handlers whose effects are in the
// store must also be idempotent on their own (the window is in memory).
// Poison messages: with a dead-letter topic, an event whose handling failed on its
// max_deliveries-th delivery is published there (same key and payload) and acked, so the
// rest keep flowing. The count is the bus's redelivery_count (see event_bus.h).
// Subscribing, and subscribing again after an outage, is workers/subscription.h's.
//
// Thread-safe: one thread of its own; stats from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <unordered_set>

#include "events/event_bus.h"
#include "events/schemas.h"
#include "metrics/histogram.h"
#include "workers/subscription.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

// A bounded set of recently seen ids (FIFO eviction). Not thread-safe.
class RecentIds {
 public:
  explicit RecentIds(size_t capacity) : capacity_(capacity) {}
  // True if `id` is new (and remembers it).
  bool insert(const std::string& id);
  bool contains(const std::string& id) const { return set_.count(id) != 0; }
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
  std::string dead_letter_topic;  // empty: failed events are nacked for ever
  uint32_t max_deliveries = 5;    // deliveries of a failing event before the dead-letter topic
  std::chrono::milliseconds resubscribe_backoff{200};  // doubles up to 5 s while the bus is away
  std::chrono::milliseconds startup_wait{2000};        // SubscriptionOptions::startup_wait
};

struct SubscriberStats : SubscriptionStats {
  std::atomic<uint64_t> handled{0};
  std::atomic<uint64_t> duplicates{0};  // acked without handling: event id already seen
  std::atomic<uint64_t> failed{0};      // handler errors (nacked)
  std::atomic<uint64_t> malformed{0};   // not an event: acked and dropped, counted
  std::atomic<uint64_t> dead_lettered{0};  // published to the dead-letter topic and acked
  // From the event's time (the write) to its handling here: end-to-end event latency.
  metrics::Histogram latency_seconds{metrics::Histogram::delay_bounds()};
};

class EventSubscriber final : public Worker {
 public:
  using Handler = std::function<boost::asio::awaitable<Status>(const events::Message&, const events::EventHeader&)>;

  // REQUIRES: `bus` outlives the subscriber.
  EventSubscriber(events::EventBus& bus, std::string name, SubscriberOptions opts, Handler handler);
  ~EventSubscriber() override;

  // Joins the subscription (fails only on an error no retry can fix) and starts consuming.
  Status start() override { return sub_.start(); }
  // Leaves the subscription; unacked events are redelivered to the next consumer.
  void stop() override { sub_.stop(); }
  std::string name() const override { return name_; }
  SubscriberStats& stats() { return stats_; }

 private:
  // Handles one consumer's events until it ends.
  boost::asio::awaitable<void> consume(events::Consumer& c);

  events::EventBus& bus_;
  const std::string name_;
  const SubscriberOptions opts_;
  Handler handler_;
  SubscriberStats stats_;
  RecentIds seen_;    // owned by consume(); kept across consumers
  Subscription sub_;  // last: its thread runs consume(), which uses the members above
};

}  // namespace commentd::workers

// The outbox relay: publishes the store's outbox to the event bus, each topic's entries in
// outbox order (so in order per key, and per video), and keeps its own durable delivered position (consumer
// "relay/<name>" in the store). A batch's position is saved only after the bus acknowledged
// every entry of it, so a crash between the two republishes the batch: a bus with
// dedup_by_sequence drops the copies by (producer, sequence id = outbox seq), and consumers
// drop what is left by event id (all of them on Pulsar, see events/pulsar/pulsar_bus.h).
// While the bus fails, rounds are retried with exponential backoff (error_backoff doubling
// up to max_error_backoff); the outbox keeps every event meanwhile. Nothing acknowledged by the store is dropped or reordered; retention trims the outbox
// only below delivered() (Store::trim_logs).
//
// Each payload gets its `position` (the outbox seq) on the way out (events::with_position).
//
// Thread-safe: one thread of its own runs the relay loop; delivered() from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "events/event_bus.h"
#include "store/store.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

struct RelayOptions {
  std::string name = "outbox";                      // position key: consumer "relay/<name>"
  size_t batch_size = 256;                          // outbox entries per publish round
  std::chrono::milliseconds poll_interval{5};       // idle wait before looking again
  std::chrono::milliseconds error_backoff{200};     // wait after a failed round, doubling
  std::chrono::milliseconds max_error_backoff{5000};  // while rounds keep failing, up to this
};

struct RelayStats {
  std::atomic<uint64_t> published{0};   // entries the bus stored
  std::atomic<uint64_t> duplicates{0};  // entries the bus already had (republished after a crash)
  std::atomic<uint64_t> rounds{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int64_t> backoff_ms{0};  // the current wait after failures; 0 when healthy
  std::atomic<uint64_t> position_reloads{0};  // its stored position had moved (a late write)
  // The time (ms since the epoch) of the oldest event not yet delivered, as of the last round;
  // 0 when the outbox is drained (or the event carries no time).
  std::atomic<int64_t> oldest_pending_at_ms{0};
};

class OutboxRelay final : public Worker {
 public:
  // REQUIRES: `store` and `bus` outlive the relay.
  OutboxRelay(store::Store& store, events::EventBus& bus, RelayOptions opts);
  ~OutboxRelay() override;

  // Loads the delivered position and starts the relay thread.
  Status start() override;
  // Relays what is in the outbox now (unless the bus fails), then stops the thread.
  void stop() override;
  std::string name() const override { return "relay/" + opts_.name; }

  // One round: publishes up to batch_size entries after delivered(), waits for the bus's
  // acks, then saves the new position. Returns the number of entries relayed. Callable
  // without start() (tests), never concurrently with the thread.
  boost::asio::awaitable<Result<size_t>> relay_once();
  // Loads the delivered position from the store (start() does it).
  Status load_position();
  uint64_t delivered() const { return delivered_.load(); }
  RelayStats& stats() { return stats_; }

  // Fault injection (tests): the next round returns after the bus's acks and before the
  // position is saved, as a kill -9 at that point would.
  void crash_after_publish_once() { crash_after_publish_ = true; }

 private:
  boost::asio::awaitable<void> loop();

  store::Store& store_;
  events::EventBus& bus_;
  const RelayOptions opts_;
  RelayStats stats_;
  std::atomic<uint64_t> delivered_{0};
  bool crash_after_publish_ = false;  // owned by the relay's thread (or the test's)

  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer timer_{ioc_};  // owned by ioc_'s thread
  bool stopping_ = false;                  // owned by ioc_'s thread
  std::thread thread_;
};

}  // namespace commentd::workers

// The outbox relay: publishes the store's outbox to the event bus, each topic's entries in
// outbox order (so in order per key, and per video), and keeps its own durable delivered position (consumer
// "relay/<name>" in the store). A batch's position is saved only after the bus acknowledged
// every entry of it, so a crash between the two republishes the batch: a bus with
// dedup_by_sequence drops the copies by (producer, sequence id = the entry's seq), and
// consumers drop what is left by event id.
//
// The producer name (RelayOptions::producer) names one sequence: `<producer>-<incarnation>`,
// where the incarnation is a random id the relay stores beside its position the first time
// (consumer "relay/<name>/incarnation"). A log created afresh (a new data directory, a new
// keyspace) starts its seqs at 1 again under a new incarnation, so the broker never takes its
// new events for copies of the old log's; two logs (the outbox, the op log) are two names.
// While the bus fails, rounds are retried with exponential backoff (error_backoff doubling
// up to max_error_backoff); the outbox keeps every event meanwhile. Nothing acknowledged by the store is dropped or reordered; retention trims the outbox
// only below delivered() (Store::trim_logs).
//
// Each payload gets its `position` (the entry's seq) on the way out (events::with_position).
//
// What it reads is a RelaySource: the outbox (outbox_source), or the reaction op log read as
// the reactions topic's events (op_log_source): a reaction's event is its op, so the request
// writes the op alone and the relay makes the event from it (docs/cluster.md "Outbox relay").
//
// Thread-safe: one thread of its own runs the relay loop; delivered() from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "events/event_bus.h"
#include "store/store.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

// A log the relay publishes: entries in seq order, each with its topic, key and payload.
struct RelaySource {
  // The newest seq handed out and durable (0 if none).
  std::function<uint64_t()> last_seq;
  // The entries after `after`, at most `max`, in seq order.
  std::function<Result<std::vector<store::OutboxEntry>>(uint64_t after, size_t max)> read;
  // Where a relay with no stored position starts: the entries up to it were published
  // another way (0: none).
  uint64_t floor = 0;
};

// The store's outbox.
RelaySource outbox_source(store::Store& store);
// The reaction op log as the events of `topic`: each op is the ReactionEvent
// (events::reaction_event_json) whose event id is the op id, so an op relayed twice is the
// same event; key: the comment id. `floor`: reaction_events_start(store) - 1.
RelaySource op_log_source(store::Store& store, std::string topic, uint64_t floor);

// The first op seq whose event is carried by the op log rather than the outbox. Versions
// before 2026-12 wrote each reaction's event to the outbox beside its op; the first start of
// a later version records last_op_seq() + 1 (consumer "reaction-events/first-op"), so the
// op-log relay neither publishes those ops' events a second time nor skips ops whose event
// is nowhere else. Call it at start, before this process appends an op. Blocking.
Result<uint64_t> reaction_events_start(store::Store& store);

// Retention's bound for the op log: the ops up to it may be trimmed. An op goes once it is
// applied and, where a relay publishes the log's events (`relay_delivered` set), delivered;
// the newest `keep` of those stay.
uint64_t op_log_trim_bound(uint64_t applied, std::optional<uint64_t> relay_delivered, uint64_t keep);

struct RelayOptions {
  std::string name = "outbox";                      // position key: consumer "relay/<name>"
  // The dedup identity's base (see above); empty: publish under the bus's own name.
  std::string producer;
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
  // REQUIRES: `store` and `bus` outlive the relay. Reads the outbox unless told otherwise.
  OutboxRelay(store::Store& store, events::EventBus& bus, RelayOptions opts);
  OutboxRelay(store::Store& store, events::EventBus& bus, RelayOptions opts, RelaySource source);
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
  // Loads the delivered position from the store (start() does it); a relay with none stored
  // below its source's floor stores the floor first.
  Status load_position();
  uint64_t delivered() const { return delivered_.load(); }
  // The producer name it publishes under (empty: the bus's own), set by load_position().
  const std::string& producer() const { return producer_; }
  // Entries of its source not yet delivered.
  uint64_t depth() const {
    const uint64_t last = source_.last_seq();
    return last - std::min(last, delivered_.load());
  }
  RelayStats& stats() { return stats_; }

  // Fault injection (tests): the next round returns after the bus's acks and before the
  // position is saved, as a kill -9 at that point would.
  void crash_after_publish_once() { crash_after_publish_ = true; }

 private:
  boost::asio::awaitable<void> loop();

  store::Store& store_;
  events::EventBus& bus_;
  const RelayOptions opts_;
  const RelaySource source_;
  RelayStats stats_;
  std::atomic<uint64_t> delivered_{0};
  std::string producer_;  // set before the relay thread starts
  bool crash_after_publish_ = false;  // owned by the relay's thread (or the test's)

  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer timer_{ioc_};  // owned by ioc_'s thread
  bool stopping_ = false;                  // owned by ioc_'s thread
  std::thread thread_;
};

}  // namespace commentd::workers

// The event-bus seam (DESIGN.md "Two modes"): topics of keyed messages, published with the
// broker's acknowledgement and consumed through named, durable subscriptions. The local
// implementation (events/local/) keeps topics in the embedded store; a Pulsar one plugs in
// here. Callers never see Pulsar or RocksDB types. The contract is the conformance suite,
// events/event_bus_conformance.h.
//
// Contract:
//  - publish completes once the message is durable on the bus (the broker's ack). Messages
//    of one publish call, and of successive calls on one topic, keep their order.
//  - Deduplication (Pulsar's broker-side dedup), when capabilities().dedup_by_sequence: of
//    the messages published under a producer name (publish's `producer`), one whose
//    sequence_id is not greater than the last one the bus has stored for (topic, producer)
//    is acknowledged as a duplicate and not stored again; the state is durable. A producer
//    name is the identity of ONE increasing sequence: a sequence that could start again
//    (a log created afresh) needs a new name, or its new messages would be dropped.
//    sequence_id 0 disables it for that message (LocalBus; Pulsar's sequenced producer
//    refuses it). A bus without the capability ignores sequence_id, never reports a
//    duplicate, and stores a republished message again: consumers drop the copy by event id
//    (they must be idempotent by event id in any case).
//  - redelivery_count: exact across restarts and consumers when
//    capabilities().durable_redelivery_count; otherwise a lower bound (the deliveries this
//    bus instance has seen), still exact for redeliveries within one process.
//  - A subscription is durable: its position survives a restart; messages not acknowledged
//    are delivered again (at-least-once). Consumers are idempotent by event id.
//  - Order: per key, a subscription delivers in publish order, and with key_shared several
//    consumers of one subscription share the keys while each key goes to one consumer at a
//    time. A nack gives the message back for redelivery after the nack delay; the order of
//    that message relative to later ones of its key is then not kept (as in Pulsar).
//  - Errors are Results: Errc::unavailable when the bus is closed or unreachable.
//
// Thread-safe: every method may be called from any thread; completions run on the awaiting
// coroutine's executor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace commentd::events {

namespace asio = boost::asio;

struct OutMessage {
  std::string key;
  std::string payload;
  uint64_t sequence_id = 0;  // per (topic, producer), increasing; 0 = no dedup
};

struct PublishAck {
  uint64_t message_id = 0;  // position in the topic (0 for a duplicate)
  bool duplicate = false;   // dropped by deduplication: an earlier copy is stored
};

struct Message {
  std::string topic;
  std::string key;
  std::string payload;
  uint64_t message_id = 0;  // position in the topic, increasing in publish order
  std::string producer;
  uint64_t sequence_id = 0;
  uint32_t redelivery_count = 0;  // times it was given back (nack, consumer gone)
};

enum class SubscriptionType {
  exclusive,   // one consumer; a second subscribe fails with Errc::conflict
  shared,      // any consumer takes any message; no order
  key_shared,  // consumers share keys; one key's messages go to one consumer at a time
};

enum class InitialPosition { earliest, latest };

struct SubscribeOptions {
  SubscriptionType type = SubscriptionType::key_shared;
  InitialPosition initial = InitialPosition::earliest;  // for a subscription created now
  size_t max_unacked = 1000;                           // per consumer
  std::chrono::milliseconds nack_delay{100};
};

// What an implementation guarantees beyond the common contract; the conformance suite checks
// each capability an implementation declares and skips (saying why) the ones it does not.
struct Capabilities {
  bool dedup_by_sequence = true;         // publish deduplicates by (topic, producer, sequence_id)
  bool durable_redelivery_count = true;  // redelivery_count survives restarts and handovers
  // An ack is recorded for its message alone. false: messages are acked on the bus in groups
  // (Pulsar batches), so after a restart a message acked while others of its group were not
  // is delivered again (at-least-once still holds; nothing unacked is lost).
  bool individual_acks = true;
  // key_shared hands out each message by its own key. false: messages travel in groups
  // (Pulsar batches of mixed keys) dispatched whole by the group's first key, so neither the
  // key split nor per-key order across consumers holds: use key_shared only without groups.
  bool key_shared_per_message = true;
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // The next message; Errc::unavailable once the consumer or the bus is closed.
  virtual asio::awaitable<Result<Message>> receive() = 0;
  // Completes when the acknowledgement is recorded (it survives a restart of the bus).
  virtual asio::awaitable<Status> ack(const Message& m) = 0;
  // Gives the message back for redelivery after the nack delay.
  virtual asio::awaitable<Status> nack(const Message& m) = 0;
  // Leaves the subscription; unacknowledged messages go to the other consumers (or wait
  // for the next one). A pending receive() completes with Errc::unavailable.
  virtual void close() = 0;
};

class EventBus {
 public:
  virtual ~EventBus() = default;
  // This bus's producer name: what publish calls without a `producer` publish under.
  virtual const std::string& producer_name() const = 0;
  virtual Capabilities capabilities() const { return {}; }
  // Publishes `msgs` to `topic` in order under the producer name `producer` (empty:
  // producer_name(); see Deduplication); completes when all are acknowledged, with one ack
  // each. On an error none, some or all may be stored: republish with the same sequence ids.
  virtual asio::awaitable<Result<std::vector<PublishAck>>> publish(std::string topic, std::vector<OutMessage> msgs,
                                                                   std::string producer) = 0;
  asio::awaitable<Result<std::vector<PublishAck>>> publish(std::string topic, std::vector<OutMessage> msgs);
  asio::awaitable<Result<PublishAck>> publish(std::string topic, std::string key, std::string payload,
                                              uint64_t sequence_id);
  // Joins (or creates) the durable subscription `subscription` on `topic`.
  virtual asio::awaitable<Result<std::unique_ptr<Consumer>>> subscribe(std::string topic,
                                                                       std::string subscription,
                                                                       SubscribeOptions opts) = 0;
  // For a node that is stopping: what waits on a broker to get going (a connect, a
  // producer's creation, a subscribe) completes now, and later ones at once, with
  // Errc::unavailable, so a subscriber's or the relay's stop need not wait for a broker that
  // is away (what the relay has not published stays in the outbox for the next start).
  // Publishes on producers already made, in flight or later, still succeed if the broker
  // acknowledges them within `publish_grace` from now (the relay's last round on a broker
  // that answers); past it they fail with Errc::unavailable, so a hung broker holds the stop
  // no longer than that. Consumers are not affected. (A bus whose calls never wait on a
  // server has nothing to do.)
  virtual void stop_waiting(std::chrono::milliseconds publish_grace) { (void)publish_grace; }
  // Closes every consumer; later calls fail with Errc::unavailable.
  virtual void close() = 0;
};

}  // namespace commentd::events

// LocalBus: the EventBus over a RocksStore, for one process with no broker: the contract's
// reference implementation and the bus of the unit tests (the service itself runs no bus
// without Pulsar: no other process would read this one, docs/cluster.md "Outbox relay"). Topics,
// producer dedup state and subscription cursors live in the store's `local_bus` column
// family, so a restart resumes every subscription where it was acknowledged.
//
// Key layout (all under RocksStore::bus_*):
//   't' topic 0          -> last message id handed out (ids are never reused after a trim)
//   'm' topic 0 id(8 BE) -> message: key, producer, sequence id, payload
//   'd' topic 0 producer -> the last sequence id stored for (topic, producer)
//   'c' topic 0 sub      -> mark-delete position: every id <= it is acknowledged
//   'a' topic 0 sub 0 id -> an id acknowledged above the mark-delete position
//
// Publishes are group-committed: one write for every publish waiting, fsync'd unless
// `sync_publish` is off. Acks are written without fsync (they survive kill -9; a power loss
// can only cause redelivery).
//
// Thread-safe: the state lives on the bus's own thread; every call posts to it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "events/event_bus.h"
#include "store/rocks/rocks_store.h"

namespace commentd::events {

struct LocalBusOptions {
  std::string producer_name = "commentd";
  size_t max_ready = 10000;  // messages read ahead per subscription, waiting for a consumer
  // false: a publish is written without its own fsync. It survives kill -9 either way (the
  // write is in the WAL file before the ack). Against power loss it is then as durable as the
  // next synced write to the same store: RocksDB's WAL is one ordered log, and recovery keeps
  // a prefix of it. So it is safe exactly when every publisher keeps its source in this store
  // and records what it published there, synced, after the ack: the outbox relay (events from
  // the outbox, then its synced position) and the subscribers' dead-lettering (the message,
  // then its ack). A power loss then loses messages only together with the position that
  // said they were published, and they are published again. Not for a bus in a store of its
  // own (a relay whose source and position live elsewhere, e.g. in CQL).
  bool sync_publish = true;
};

struct LocalBusStats {
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> duplicates{0};  // dropped by (producer, sequence) dedup
  std::atomic<uint64_t> delivered{0};   // deliveries, redeliveries included
  std::atomic<uint64_t> redelivered{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> nacked{0};
  std::atomic<uint64_t> errors{0};
};

class LocalBus final : public EventBus {
 public:
  // REQUIRES: `store` outlives the bus.
  LocalBus(store::rocks::RocksStore& store, LocalBusOptions opts);
  ~LocalBus() override;

  const std::string& producer_name() const override;
  asio::awaitable<Result<std::vector<PublishAck>>> publish(std::string topic, std::vector<OutMessage> msgs,
                                                           std::string producer) override;
  using EventBus::publish;
  asio::awaitable<Result<std::unique_ptr<Consumer>>> subscribe(std::string topic, std::string subscription,
                                                               SubscribeOptions opts) override;
  void close() override;

  // Retention: drops each topic's messages below every subscription's mark-delete position,
  // always keeping the newest `keep` of the topic. Blocking (runs on the bus thread).
  Status trim(uint64_t keep);
  LocalBusStats& stats();

  struct Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace commentd::events

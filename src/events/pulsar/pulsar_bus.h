// PulsarBus: the EventBus on Apache Pulsar through the bridge (bridge/pulsar_client.h).
//
// Contract beyond event_bus.h:
//  - Deduplication (dedup_by_sequence): a publish under a
//    producer name goes through a sequenced producer of that exact name (bridge/pulsar_seq.rs):
//    each message carries its sequence_id (which must be > 0: Errc::bad_request otherwise), so
//    the broker's deduplication (the namespace's `deduplication` on) stores a republished one
//    once, and the ack says `duplicate`. The name must stay the same across restarts and
//    differ for each sequence that could start again (the relay adds its log's incarnation).
//    The broker forgets a producer name's state after it has been away
//    brokerDeduplicationProducerInactivityTimeoutMinutes (6 h by default): a republish after
//    that is stored again, and consumers drop it by event id. A sequenced producer ends with
//    its connection or when the broker closes it (topic unload): the next publish makes a
//    new one of the same name, which starts from the broker's last stored id. Publishes
//    without a producer name go through the crate's producer under this bus's own name
//    (`producer_name` + "-" + a random suffix, unique to the instance): sequence_id is
//    ignored there (the crate numbers sequence ids itself).
//  - TLS: a pulsar+ssl:// url; the broker's chain and name (or IP) are verified against the
//    system's roots and tls_ca_file's certificates. Sequenced producers go over TLS too.
//  - No durable_redelivery_count: the crate does not pass the broker's redelivery count on,
//    so redelivery_count counts the deliveries this bus instance has seen of (topic,
//    subscription, message).
//  - Acks: the crate acks a batched message's whole entry, so a consumer records acks of a
//    batch's messages itself and acks the entry once all of them are acked; with batching
//    on (batch_size > 1) individual_acks is false: after a restart a partly acked batch
//    comes back whole.
//  - key_shared: the crate has no key-based batching, and the broker dispatches a batch
//    whole by its first message's key; with batching on, key_shared_per_message is false
//    (neither the key split nor per-key order across consumers holds). A topic read by a
//    key_shared subscription must be published with batch_size 1 or be in unbatched_topics
//    (capabilities() describe the bus-wide batch_size, not these topics).
//  - message_id packs the Pulsar position: ledger (24 bits) << 40 | entry (28 bits) << 12 |
//    batch index (12 bits). It increases in publish order while ledger ids stay below 2^24;
//    batch_size is at most 4096.
//  - Topics: a name without "://" gets `topic_prefix` in front (e.g.
//    "persistent://pavilion/comments/"); Message::topic is the name the caller used.
//  - Connects lazily and again after a failure: with the broker away an operation fails
//    with Errc::unavailable within connect_timeout (connecting) or send_timeout (a publish);
//    it never hangs. The crate reconnects producers and consumers of a live client itself;
//    a producer or consumer that cannot be created drops the client, and the next call
//    connects afresh (the crate's connection manager can stay stuck after a long outage).
//  - One publish call's messages go out in one burst on the topic's producer, chunked by
//    max_pending (each chunk's receipts are awaited before the next), so concurrent
//    publishes on one topic keep call order. On an error the chunk's later messages fail
//    too; some earlier ones may be stored (republish: consumers drop copies by event id).
//
// Thread-safe: every method from any thread; completions on the awaiting coroutine's executor.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bridge/runtime.h"
#include "events/event_bus.h"

namespace commentd::events {

struct PulsarBusOptions {
  std::string url;            // pulsar://host:port or pulsar+ssl://host:port
  std::string token;          // empty: no authentication; else a JWT (token auth)
  std::string tls_ca_file;    // pulsar+ssl:// only: PEM certificates trusted besides the system's
  std::string producer_name = "commentd";  // a random suffix per bus instance is appended
  std::string topic_prefix;   // prepended to topic names without "://"
  uint32_t batch_size = 100;  // messages per producer batch; <= 1: no batching; <= 4096
  // Topics (as callers name them) published without batching whatever batch_size says: the
  // topics read through key_shared subscriptions (see key_shared below).
  std::vector<std::string> unbatched_topics;
  std::chrono::milliseconds batch_delay{5};
  uint32_t max_pending = 1000;  // sends awaiting receipts per topic
  std::chrono::milliseconds send_timeout{5000};
  std::chrono::milliseconds operation_timeout{5000};
  std::chrono::milliseconds connect_timeout{3000};
  // Retries of a busy answer (e.g. an exclusive subscription that has its consumer) before
  // the error: retry_delay x max_retries bounds such a subscribe.
  std::chrono::milliseconds retry_delay{500};
  uint32_t max_retries = 4;
};

struct PulsarBusStats {
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> publish_errors{0};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> redelivered{0};
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> nacked{0};
  std::atomic<uint64_t> connects{0};
  std::atomic<uint64_t> client_resets{0};  // clients dropped after a failed producer/consumer creation
  std::atomic<uint64_t> publish_latency_us_sum{0};  // per publish call, receipts included
};

class PulsarBus final : public EventBus {
 public:
  // REQUIRES: `rt` outlives the bus and every consumer it returns. Does not connect.
  PulsarBus(const bridge::Runtime& rt, PulsarBusOptions opts);
  // What a node checks before it starts, since the bus connects lazily: a tls_ca_file that
  // cannot be used (unreadable, no PEM certificate in it) is named with OpenSSL's reason.
  static Status check_options(const PulsarBusOptions& opts);
  ~PulsarBus() override;

  const std::string& producer_name() const override;
  Capabilities capabilities() const override;
  asio::awaitable<Result<std::vector<PublishAck>>> publish(std::string topic, std::vector<OutMessage> msgs,
                                                           std::string producer) override;
  using EventBus::publish;
  asio::awaitable<Result<std::unique_ptr<Consumer>>> subscribe(std::string topic, std::string subscription,
                                                               SubscribeOptions opts) override;
  void stop_waiting(std::chrono::milliseconds publish_grace) override;
  void close() override;

  PulsarBusStats& stats();
  // The full Pulsar topic name for `topic`.
  std::string full_topic(const std::string& topic) const;

  struct Core;

 private:
  std::shared_ptr<Core> core_;
};

// message_id of a Pulsar position (see the contract above).
uint64_t pack_message_id(uint64_t ledger, uint64_t entry, int32_t batch_index);

}  // namespace commentd::events

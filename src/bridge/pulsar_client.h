// Pulsar client over the bridge (the Rust `pulsar` crate): RAII handles and Asio async
// operations with the same rules as cql_client.h (completion tokens, void(Result<T>),
// completions posted to the token's executor, nothing blocks).
// Thread-safety: all three handle classes are thread-safe. Sends on one producer reach the
// broker in the order the send calls were issued, whatever the receipts' order.
// Reconnection is the crate's: a producer re-creates itself and resends pending messages on
// a broken connection or topic unload; a consumer re-subscribes. Operations fail after the
// client's operation timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bridge/call.h"
#include "bridge/runtime.h"

namespace commentd::bridge {

struct PulsarConfig {
  std::string service_url;  // pulsar://host:port or pulsar+ssl://host:port
  std::string token;        // empty: no authentication
  std::string tls_ca_file;  // pulsar+ssl:// only: PEM certificates trusted besides the system's
  std::chrono::milliseconds operation_timeout{0};  // 0: 30 s
  std::chrono::milliseconds connect_timeout{0};    // 0: 10 s
  std::chrono::milliseconds operation_retry_delay{0};  // 0: 5 s; between retries of a busy answer
  uint32_t operation_max_retries = 0;                  // 0: unlimited; then the error (busy: conflict)
  // Set: once it fires, the connect, the producer creations and the subscribes in flight on
  // this client end (Errc::unavailable, "bridge_cancelled"), later ones at once. Read during
  // connect() only.
  const StopSignal* stop = nullptr;
};

struct ProducerConfig {
  std::string topic;
  std::string name;  // fixed name: needed for broker-side deduplication (see docs/bridge.md)
  uint32_t batch_max_messages = 0;  // <= 1: no batching
  std::chrono::milliseconds batch_max_delay{0};
  uint32_t max_pending = 0;  // 0: 1000; beyond it a send fails with Errc::overloaded
  std::chrono::milliseconds send_timeout{0};  // 0: 30 s
  // A sequenced producer (see commentd_bridge.h): sends carry the caller's sequence ids and
  // the broker deduplicates them by (topic, name); any failure ends it, make a new one.
  bool sequenced = false;
};

enum class SubscriptionType : int32_t {
  exclusive = CB_SUB_EXCLUSIVE,
  shared = CB_SUB_SHARED,
  failover = CB_SUB_FAILOVER,
  key_shared = CB_SUB_KEY_SHARED,
};

struct ConsumerConfig {
  std::string topic;
  std::string subscription;
  SubscriptionType type = SubscriptionType::exclusive;
  std::string consumer_name;
  uint32_t receiver_queue_size = 0;
  std::chrono::milliseconds nack_redelivery_delay{0};
  std::chrono::milliseconds ack_timeout{0};  // 0: an unacked message is never redelivered
  uint32_t dead_letter_max_redeliveries = 0;  // 0: no dead-letter topic
  std::string dead_letter_topic;
  bool start_earliest = false;  // a subscription created now starts at the oldest message
};

struct Receipt {
  uint64_t ledger_id = 0;
  uint64_t entry_id = 0;
  int32_t partition = -1;
  int32_t batch_index = -1;
  uint64_t sequence_id = 0;
  bool duplicate = false;  // a sequenced producer's send the broker already had
};

using Properties = std::vector<std::pair<std::string, std::string>>;

struct Message {
  std::string key;
  std::string payload;
  std::string id;  // opaque: pass to ack / nack
  uint64_t publish_time_ms = 0;
  Properties properties;
  std::string producer;      // the producer name the broker stored
  uint64_t sequence_id = 0;  // that producer's sequence id
  uint64_t ledger_id = 0;    // position in the topic
  uint64_t entry_id = 0;
  int32_t batch_index = -1;  // -1: not batched
  int32_t batch_size = -1;   // messages in its batch; -1: not batched. An ack acks them all
};

class PulsarProducer {
 public:
  ~PulsarProducer() { cb_pulsar_producer_free(p_); }
  PulsarProducer(const PulsarProducer&) = delete;
  PulsarProducer& operator=(const PulsarProducer&) = delete;

  // Completes with the broker's receipt once the message is persisted. `sequence_id`: see
  // ProducerConfig::sequenced (ignored by other producers). Completion: void(Result<Receipt>).
  template <class Token>
  auto send(std::string key, std::string payload, Properties props, uint64_t sequence_id, Token&& token) {
    return call<Receipt>(
        std::forward<Token>(token),
        [this, key = std::move(key), payload = std::move(payload), props = std::move(props), sequence_id](
            cb_done done, void* user) { start_send(key, payload, props, sequence_id, done, user); },
        [](void* r) {
          auto* c = static_cast<const cb_pulsar_receipt*>(r);
          return Receipt{c->ledger_id, c->entry_id, c->partition, c->batch_index, c->sequence_id, c->duplicate != 0};
        });
  }

  // True once the producer has ended (see ProducerConfig::sequenced): make a new one.
  bool closed() const { return cb_pulsar_producer_is_closed(p_) != 0; }

  // Flushes and closes. Completion: void(Result<Unit>).
  template <class Token>
  auto close(Token&& token) {
    return call<Unit>(
        std::forward<Token>(token), [this](cb_done done, void* user) { cb_pulsar_producer_close(p_, done, user); },
        [](void*) { return Unit{}; });
  }

 private:
  friend class PulsarClient;
  explicit PulsarProducer(cb_pulsar_producer* p) : p_(p) {}
  void start_send(const std::string& key, const std::string& payload, const Properties& props,
                  uint64_t sequence_id, cb_done done, void* user);
  cb_pulsar_producer* p_;
};

class PulsarConsumer {
 public:
  // Pending receives complete with Errc::unavailable (cancelled).
  ~PulsarConsumer() { cb_pulsar_consumer_free(c_); }
  PulsarConsumer(const PulsarConsumer&) = delete;
  PulsarConsumer& operator=(const PulsarConsumer&) = delete;

  // The next message. Completion: void(Result<Message>).
  template <class Token>
  auto receive(Token&& token) {
    return call<Message>(
        std::forward<Token>(token), [this](cb_done done, void* user) { cb_pulsar_receive(c_, done, user); },
        [](void* r) { return copy_message(static_cast<const cb_pulsar_message*>(r)); });
  }

  // Completion: void(Result<Unit>).
  template <class Token>
  auto ack(std::string id, Token&& token) {
    return call<Unit>(
        std::forward<Token>(token),
        [this, id = std::move(id)](cb_done done, void* user) {
          cb_pulsar_ack(c_, reinterpret_cast<const uint8_t*>(id.data()), id.size(), done, user);
        },
        [](void*) { return Unit{}; });
  }

  // Redelivery after the configured delay. Completion: void(Result<Unit>), once the request
  // reached the broker.
  template <class Token>
  auto nack(std::string id, Token&& token) {
    return call<Unit>(
        std::forward<Token>(token),
        [this, id = std::move(id)](cb_done done, void* user) {
          cb_pulsar_nack(c_, reinterpret_cast<const uint8_t*>(id.data()), id.size(), done, user);
        },
        [](void*) { return Unit{}; });
  }

  template <class Token>
  auto close(Token&& token) {
    return call<Unit>(
        std::forward<Token>(token), [this](cb_done done, void* user) { cb_pulsar_consumer_close(c_, done, user); },
        [](void*) { return Unit{}; });
  }

 private:
  friend class PulsarClient;
  explicit PulsarConsumer(cb_pulsar_consumer* c) : c_(c) {}
  static Message copy_message(const cb_pulsar_message* m);
  cb_pulsar_consumer* c_;
};

class PulsarClient {
 public:
  ~PulsarClient() { cb_pulsar_client_free(c_); }
  PulsarClient(const PulsarClient&) = delete;
  PulsarClient& operator=(const PulsarClient&) = delete;

  // Completion: void(Result<std::unique_ptr<PulsarClient>>).
  template <class Token>
  static auto connect(const Runtime& rt, const PulsarConfig& cfg, Token&& token) {
    return call<std::unique_ptr<PulsarClient>>(
        std::forward<Token>(token),
        [&rt, cfg](cb_done done, void* user) {
          cb_pulsar_config c{cfg.service_url.c_str(), cfg.token.c_str(),
                             static_cast<uint32_t>(cfg.operation_timeout.count()),
                             static_cast<uint32_t>(cfg.connect_timeout.count()),
                             static_cast<uint32_t>(cfg.operation_retry_delay.count()),
                             cfg.operation_max_retries, cfg.tls_ca_file.c_str(),
                             cfg.stop ? cfg.stop->get() : nullptr};
          cb_pulsar_connect(rt.get(), &c, done, user);
        },
        [](void* r) { return std::unique_ptr<PulsarClient>(new PulsarClient(static_cast<cb_pulsar_client*>(r))); });
  }

  // Completion: void(Result<std::unique_ptr<PulsarProducer>>).
  template <class Token>
  auto create_producer(const ProducerConfig& cfg, Token&& token) {
    return call<std::unique_ptr<PulsarProducer>>(
        std::forward<Token>(token),
        [this, cfg](cb_done done, void* user) {
          cb_pulsar_producer_config c{cfg.topic.c_str(),
                                      cfg.name.c_str(),
                                      cfg.batch_max_messages,
                                      static_cast<uint32_t>(cfg.batch_max_delay.count()),
                                      cfg.max_pending,
                                      static_cast<uint32_t>(cfg.send_timeout.count()),
                                      cfg.sequenced ? 1 : 0};
          cb_pulsar_producer_new(c_, &c, done, user);
        },
        [](void* r) {
          return std::unique_ptr<PulsarProducer>(new PulsarProducer(static_cast<cb_pulsar_producer*>(r)));
        });
  }

  // Completion: void(Result<std::unique_ptr<PulsarConsumer>>).
  template <class Token>
  auto subscribe(const ConsumerConfig& cfg, Token&& token) {
    return call<std::unique_ptr<PulsarConsumer>>(
        std::forward<Token>(token),
        [this, cfg](cb_done done, void* user) {
          cb_pulsar_consumer_config c{cfg.topic.c_str(),
                                      cfg.subscription.c_str(),
                                      static_cast<int32_t>(cfg.type),
                                      cfg.consumer_name.c_str(),
                                      cfg.receiver_queue_size,
                                      static_cast<uint32_t>(cfg.nack_redelivery_delay.count()),
                                      static_cast<uint32_t>(cfg.ack_timeout.count()),
                                      cfg.dead_letter_max_redeliveries,
                                      cfg.dead_letter_topic.c_str(),
                                      cfg.start_earliest ? 1 : 0};
          cb_pulsar_subscribe(c_, &c, done, user);
        },
        [](void* r) {
          return std::unique_ptr<PulsarConsumer>(new PulsarConsumer(static_cast<cb_pulsar_consumer*>(r)));
        });
  }

 private:
  explicit PulsarClient(cb_pulsar_client* c) : c_(c) {}
  cb_pulsar_client* c_;
};

}  // namespace commentd::bridge

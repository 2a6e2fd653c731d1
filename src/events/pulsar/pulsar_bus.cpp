#include "events/pulsar/pulsar_bus.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

#include "bridge/pulsar_client.h"
#include "core/posting.h"
#include "net/tls.h"

namespace commentd::events {

namespace {

Error closed_error() { return Error(Errc::unavailable, "event bus is closed", "bus_closed"); }

std::string random_suffix() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 12; ++i) s.push_back(kHex[rd() % 16]);
  return s;
}

bridge::SubscriptionType to_bridge(SubscriptionType t) {
  switch (t) {
    case SubscriptionType::exclusive: return bridge::SubscriptionType::exclusive;
    case SubscriptionType::shared: return bridge::SubscriptionType::shared;
    case SubscriptionType::key_shared: return bridge::SubscriptionType::key_shared;
  }
  return bridge::SubscriptionType::key_shared;
}

constexpr size_t kMaxTrackedDeliveries = 100000;

}  // namespace

uint64_t pack_message_id(uint64_t ledger, uint64_t entry, int32_t batch_index) {
  uint64_t b = batch_index < 0 ? 0 : static_cast<uint64_t>(batch_index);
  return (ledger & 0xFFFFFFu) << 40 | (entry & 0xFFFFFFFu) << 12 | (b & 0xFFFu);
}

struct ConsumerCore;

struct PulsarBus::Core {
  Core(const bridge::Runtime& r, PulsarBusOptions o) : rt(r), opts(std::move(o)) {
    name = opts.producer_name + "-" + random_suffix();
  }

  using ProducerResult = Result<std::shared_ptr<bridge::PulsarProducer>>;
  struct Topic {
    std::mutex send_mu;  // held while one chunk's sends are issued: they stay contiguous
    std::shared_ptr<bridge::PulsarProducer> producer;  // guarded by Core::mu
    uint32_t generation = 0;                           // guarded by Core::mu
    // A producer being created, and the publishes waiting for it (guarded by Core::mu): one
    // creation per topic at a time. Each publish creating its own under the node's name made
    // the broker refuse all but the first (ProducerBusy) and every refusal dropped the client:
    // a node's first reactions under load failed with 503 until the storm passed.
    bool creating = false;
    std::vector<std::function<void(ProducerResult)>> waiting;
  };

  const bridge::Runtime& rt;
  const PulsarBusOptions opts;
  std::string name;
  PulsarBusStats stats;
  std::atomic<bool> closed{false};

  std::mutex mu;
  std::shared_ptr<bridge::PulsarClient> client;
  bool stopping = false;  // guarded by mu; stop_waiting() was called
  // Given to every client: stop_waiting() fires it, and what waits on a broker (a connect, a
  // producer creation, a subscribe) ends on every client, now and later; sends get its grace.
  bridge::StopSignal stop_signal;
  std::map<std::string, std::shared_ptr<Topic>> topics;
  std::vector<std::weak_ptr<ConsumerCore>> consumers;
  std::unordered_map<std::string, uint32_t> deliveries;  // (topic, sub, id) -> times delivered

  std::shared_ptr<Topic> topic(const std::string& full) {
    std::lock_guard lk(mu);
    auto& t = topics[full];
    if (!t) t = std::make_shared<Topic>();
    return t;
  }

  asio::awaitable<Result<std::shared_ptr<bridge::PulsarClient>>> get_client() {
    {
      std::lock_guard lk(mu);
      if (closed) co_return closed_error();
      if (client) co_return client;
    }
    bridge::PulsarConfig cfg{.service_url = opts.url,
                             .token = opts.token,
                             .tls_ca_file = opts.tls_ca_file,
                             .operation_timeout = opts.operation_timeout,
                             .connect_timeout = opts.connect_timeout,
                             .operation_retry_delay = opts.retry_delay,
                             .operation_max_retries = opts.max_retries,
                             .stop = &stop_signal};
    auto r = co_await bridge::PulsarClient::connect(rt, cfg, asio::use_awaitable);
    if (!r) co_return r.take_error();
    std::shared_ptr<bridge::PulsarClient> c(std::move(*r));
    std::lock_guard lk(mu);
    if (closed) co_return closed_error();
    if (!client) {
      client = std::move(c);
      stats.connects.fetch_add(1);
    }
    co_return client;
  }

  // After a producer or consumer could not be created on `c`: the next call connects afresh.
  // The crate's connection manager can stay stuck on a broker that went away for long and
  // came back (measured: after Pulsar was killed for 30 s, every producer creation on the old
  // client timed out for minutes; streamnative/pulsar-rs#164 reports the same), and a new
  // client has a new one. Producers and consumers already made keep theirs.
  void drop_client(const std::shared_ptr<bridge::PulsarClient>& c) {
    std::lock_guard lk(mu);
    if (client != c) return;
    client.reset();
    stats.client_resets.fetch_add(1);
  }

  // `sequenced`: a sequenced producer named exactly `sequenced` (its dedup identity: the same
  // name whatever the generation); else the crate's producer under this bus's name.
  asio::awaitable<Result<std::shared_ptr<bridge::PulsarProducer>>> get_producer(std::shared_ptr<Topic> t,
                                                                                 std::string full,
                                                                                 std::string sequenced) {
    uint32_t gen = 0;
    bool wait = false;
    {
      std::lock_guard lk(mu);
      // A sequenced producer ends with its connection or when the broker closes it (a topic
      // unload, a broker restart): a new one now, rather than a publish failing on it.
      if (t->producer && t->producer->closed()) {
        t->producer.reset();
        t->generation++;
      }
      if (t->producer) co_return t->producer;
      wait = t->creating;
      t->creating = true;
      gen = t->generation;
    }
    if (wait) {  // another publish is creating it: its outcome is this one's
      auto init = [this, &t](auto handler) {
        std::lock_guard lk(mu);
        if (!t->creating) {  // it finished in between
          auto r = t->producer ? ProducerResult(t->producer)
                               : ProducerResult(Error(Errc::unavailable, "pulsar: the producer could not be created"));
          return posting(std::move(handler))(std::move(r));
        }
        t->waiting.push_back(posting(std::move(handler)));
      };
      co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(ProducerResult)>(std::move(init),
                                                                                                  asio::use_awaitable);
    }
    ProducerResult r = Error(Errc::unavailable, "pulsar: the producer could not be created");
    try {  // whatever happens, the waiters are answered and the next publish may create one
      r = co_await create_producer(t, std::move(full), std::move(sequenced), gen);
    } catch (const std::exception& e) {
      r = Error(Errc::unavailable, std::string("pulsar: creating a producer: ") + e.what());
    }
    std::vector<std::function<void(ProducerResult)>> waiters;
    {
      std::lock_guard lk(mu);
      t->creating = false;
      waiters.swap(t->waiting);
    }
    for (auto& w : waiters) w(r);
    co_return r;
  }

  asio::awaitable<ProducerResult> create_producer(std::shared_ptr<Topic> t, std::string full, std::string sequenced,
                                                  uint32_t gen) {
    auto c = co_await get_client();
    if (!c) co_return c.take_error();
    bridge::ProducerConfig pc{
        .topic = full,
        // A re-created producer gets a new name: the broker may not have dropped the old one yet.
        // A sequenced one cannot (its name is its sequence's identity): the broker answers
        // ProducerBusy while it holds the old connection's, and the caller retries.
        .name = !sequenced.empty() ? sequenced : gen == 0 ? name : name + "-" + std::to_string(gen),
        .batch_max_messages = unbatched(full) ? 1u : opts.batch_size,
        .batch_max_delay = opts.batch_delay,
        .max_pending = opts.max_pending,
        .send_timeout = opts.send_timeout,
        .sequenced = !sequenced.empty()};
    auto p = co_await (*c)->create_producer(pc, asio::use_awaitable);
    if (!p) {
      // The next try uses the next name too: after a broker restart the broker can hold the
      // old connection's producer of this name for a while, answering ProducerBusy to every
      // retry under it (seen in the Pulsar-killed fault test: the outbox did not drain).
      {
        std::lock_guard lk(mu);
        if (t->generation == gen) t->generation++;
      }
      drop_client(*c);
      co_return p.take_error();
    }
    std::shared_ptr<bridge::PulsarProducer> sp(std::move(*p));
    std::lock_guard lk(mu);
    if (closed) co_return closed_error();
    if (!t->producer) t->producer = std::move(sp);
    co_return t->producer;
  }

  bool unbatched(const std::string& full) const {
    for (const auto& t : opts.unbatched_topics)
      if ((t.find("://") == std::string::npos ? opts.topic_prefix + t : t) == full) return true;
    return false;
  }

  // After a failed send: the next publish on the topic starts a new producer.
  void drop_producer(const std::shared_ptr<Topic>& t, const std::shared_ptr<bridge::PulsarProducer>& p) {
    std::shared_ptr<bridge::PulsarProducer> old;
    {
      std::lock_guard lk(mu);
      if (t->producer != p) return;
      old = std::move(t->producer);
      t->generation++;
    }
    old->close([old](Result<Unit>) {});
  }

  // Counts a delivery; returns the deliveries seen before this one.
  uint32_t delivered(const std::string& key) {
    std::lock_guard lk(mu);
    if (deliveries.size() >= kMaxTrackedDeliveries) deliveries.clear();  // a lower bound
    return deliveries[key]++;
  }
  void forget(const std::string& key) {
    std::lock_guard lk(mu);
    deliveries.erase(key);
  }
};

// Issues `n` sends of msgs[from..from+n) back to back and completes with their receipts.
static asio::awaitable<std::vector<Result<bridge::Receipt>>> send_chunk(PulsarBus::Core::Topic& t,
                                                                       bridge::PulsarProducer& p,
                                                                       std::vector<OutMessage>& msgs, size_t from,
                                                                       size_t n) {
  using Receipts = std::vector<Result<bridge::Receipt>>;
  return asio::async_initiate<decltype(asio::use_awaitable), void(Receipts)>(
      [&t, &p, &msgs, from, n](auto handler) {
        using H = decltype(handler);
        struct Gather {
          explicit Gather(H h, size_t count) : handler(std::move(h)), results(count), left(count) {}
          std::mutex mu;
          H handler;
          std::vector<std::optional<Result<bridge::Receipt>>> results;
          size_t left;
        };
        auto g = std::make_shared<Gather>(std::move(handler), n);
        std::lock_guard lk(t.send_mu);
        for (size_t i = 0; i < n; ++i) {
          auto& m = msgs[from + i];
          p.send(std::move(m.key), std::move(m.payload), {}, m.sequence_id, [g, i](Result<bridge::Receipt> r) {
            std::unique_lock lk(g->mu);
            g->results[i].emplace(std::move(r));
            if (--g->left != 0) return;
            Receipts out;
            out.reserve(g->results.size());
            for (auto& x : g->results) out.push_back(std::move(*x));
            lk.unlock();
            auto ex = asio::get_associated_executor(g->handler);
            asio::post(ex, [g, out = std::move(out)]() mutable { std::move(g->handler)(std::move(out)); });
          });
        }
      },
      asio::use_awaitable);
}

// ------------------------------------------------------------------------------ consumers

struct ConsumerCore {
  std::shared_ptr<PulsarBus::Core> bus;
  std::string topic;         // as the caller named it
  std::string delivery_key;  // full topic + subscription, for the delivery counts
  std::mutex mu;
  struct Received {
    std::string id;  // the bridge's opaque id
    std::pair<uint64_t, uint64_t> entry;
    int32_t batch_index = -1;
    int32_t batch_size = -1;
  };
  std::shared_ptr<bridge::PulsarConsumer> c;         // null once closed
  std::unordered_map<uint64_t, Received> ids;        // message_id -> what ack/nack need
  std::map<std::pair<uint64_t, uint64_t>, std::set<int32_t>> partial;  // entry -> acked indexes

  void close() {
    std::shared_ptr<bridge::PulsarConsumer> cons;
    {
      std::lock_guard lk(mu);
      cons = std::move(c);
      ids.clear();
      partial.clear();
    }
    // The handle stays alive until the broker confirmed; pending receives end unavailable.
    if (cons) cons->close([cons](Result<Unit>) {});
  }

  std::shared_ptr<bridge::PulsarConsumer> handle() {
    std::lock_guard lk(mu);
    return bus->closed ? nullptr : c;
  }
};

namespace {

class PulsarConsumerImpl final : public Consumer {
 public:
  explicit PulsarConsumerImpl(std::shared_ptr<ConsumerCore> core) : core_(std::move(core)) {}
  ~PulsarConsumerImpl() override { core_->close(); }

  asio::awaitable<Result<Message>> receive() override {
    auto core = core_;
    auto c = core->handle();
    if (!c) co_return closed_error();
    auto r = co_await c->receive(asio::use_awaitable);
    if (!r) co_return r.take_error();
    Message m;
    m.topic = core->topic;
    m.key = std::move(r->key);
    m.payload = std::move(r->payload);
    m.message_id = pack_message_id(r->ledger_id, r->entry_id, r->batch_index);
    m.producer = std::move(r->producer);
    m.sequence_id = r->sequence_id;
    {
      std::lock_guard lk(core->mu);
      core->ids[m.message_id] = {std::move(r->id), {r->ledger_id, r->entry_id}, r->batch_index, r->batch_size};
    }
    m.redelivery_count = core->bus->delivered(key(m));
    core->bus->stats.delivered.fetch_add(1);
    if (m.redelivery_count > 0) core->bus->stats.redelivered.fetch_add(1);
    co_return m;
  }

  asio::awaitable<Status> ack(const Message& m) override {
    auto core = core_;
    auto taken = take(m, /*ack=*/true);
    if (!taken) co_return taken.take_error();
    auto& [c, id] = *taken;
    if (!c) {  // part of a batch whose other messages are not all acked yet
      core->bus->forget(key(m));
      core->bus->stats.acked.fetch_add(1);
      co_return ok_status();
    }
    auto r = co_await c->ack(std::move(id), asio::use_awaitable);
    if (!r) co_return r.take_error();
    core->bus->forget(key(m));
    core->bus->stats.acked.fetch_add(1);
    co_return ok_status();
  }

  asio::awaitable<Status> nack(const Message& m) override {
    auto core = core_;
    auto taken = take(m, /*ack=*/false);
    if (!taken) co_return taken.take_error();
    auto& [c, id] = *taken;
    core->bus->stats.nacked.fetch_add(1);
    // Not awaited: the bridge completes a nack only after the nack delay, and a caller
    // nacking a batch would wait out one delay per message.
    c->nack(std::move(id), [c](Result<Unit>) {});
    co_return ok_status();
  }

  void close() override { core_->close(); }

 private:
  std::string key(const Message& m) const { return core_->delivery_key + std::to_string(m.message_id); }

  // The consumer handle and opaque id to send the ack or nack with. For an ack of a batched
  // message whose batch is not all acked yet, the handle is null: nothing to send yet.
  Result<std::pair<std::shared_ptr<bridge::PulsarConsumer>, std::string>> take(const Message& m, bool ack) {
    std::lock_guard lk(core_->mu);
    if (!core_->c || core_->bus->closed) return closed_error();
    auto it = core_->ids.find(m.message_id);
    if (it == core_->ids.end())
      return Error(Errc::not_found, "message not received on this consumer, or already acked", "unknown_message");
    ConsumerCore::Received rec = std::move(it->second);
    core_->ids.erase(it);
    if (ack && rec.batch_size > 1) {
      auto& done = core_->partial[rec.entry];
      done.insert(rec.batch_index);
      if (done.size() < static_cast<size_t>(rec.batch_size)) return std::pair{std::shared_ptr<bridge::PulsarConsumer>{}, std::string{}};
      core_->partial.erase(rec.entry);
    }
    return std::pair{core_->c, std::move(rec.id)};
  }

  std::shared_ptr<ConsumerCore> core_;
};

}  // namespace

// ------------------------------------------------------------------------------ the bus

PulsarBus::PulsarBus(const bridge::Runtime& rt, PulsarBusOptions opts)
    : core_(std::make_shared<Core>(rt, std::move(opts))) {}

Status PulsarBus::check_options(const PulsarBusOptions& opts) {
  // The bridge reads the file too, but only at the lazy first connect; a node checks it
  // before it starts, the way OpenSSL will read it.
  if (opts.tls_ca_file.empty()) return ok_status();
  if (auto ctx = net::make_client_context({opts.tls_ca_file, "", ""}, "pulsar tls"); !ctx) return ctx.take_error();
  return ok_status();
}

PulsarBus::~PulsarBus() { close(); }

const std::string& PulsarBus::producer_name() const { return core_->name; }

Capabilities PulsarBus::capabilities() const {
  const bool unbatched = core_->opts.batch_size <= 1;
  return {.dedup_by_sequence = true,
          .durable_redelivery_count = false,
          .individual_acks = unbatched,
          .key_shared_per_message = unbatched};
}

PulsarBusStats& PulsarBus::stats() { return core_->stats; }

std::string PulsarBus::full_topic(const std::string& topic) const {
  return topic.find("://") == std::string::npos ? core_->opts.topic_prefix + topic : topic;
}

asio::awaitable<Result<std::vector<PublishAck>>> PulsarBus::publish(std::string topic, std::vector<OutMessage> msgs,
                                                                    std::string producer) {
  auto core = core_;
  if (core->closed) co_return closed_error();
  std::vector<PublishAck> acks;
  if (msgs.empty()) co_return acks;
  const auto start = std::chrono::steady_clock::now();
  const std::string full = full_topic(topic);
  if (!producer.empty())
    for (const auto& m : msgs)
      if (m.sequence_id == 0)
        co_return Error(Errc::bad_request, "a message published under a producer name needs a sequence id",
                        "no_sequence_id");
  // A named producer's messages go through their own producer on the topic.
  auto t = core->topic(producer.empty() ? full : full + '\0' + producer);
  auto p = co_await core->get_producer(t, full, producer);
  if (!p) {
    core->stats.publish_errors.fetch_add(1);
    co_return p.take_error();
  }
  auto sender = std::move(*p);
  acks.reserve(msgs.size());
  const size_t chunk = std::max<size_t>(1, core->opts.max_pending == 0 ? 1000 : core->opts.max_pending);
  for (size_t i = 0; i < msgs.size(); i += chunk) {
    const size_t n = std::min(chunk, msgs.size() - i);
    auto receipts = co_await send_chunk(*t, *sender, msgs, i, n);
    for (auto& r : receipts) {
      if (!r) {
        core->stats.publish_errors.fetch_add(1);
        core->drop_producer(t, sender);
        co_return r.take_error();
      }
      acks.push_back({r->duplicate ? 0 : pack_message_id(r->ledger_id, r->entry_id, r->batch_index), r->duplicate});
    }
  }
  core->stats.published.fetch_add(acks.size());
  core->stats.publish_latency_us_sum.fetch_add(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count()));
  co_return acks;
}

asio::awaitable<Result<std::unique_ptr<Consumer>>> PulsarBus::subscribe(std::string topic, std::string subscription,
                                                                        SubscribeOptions opts) {
  auto core = core_;
  const std::string full = full_topic(topic);
  auto stopped = [&core] {
    return core->stopping
               ? std::optional<Error>(Error(Errc::unavailable, "the event bus stopped subscribing (the node is stopping)",
                                            "bus_stopping"))
               : std::nullopt;
  };
  {
    std::lock_guard lk(core->mu);
    if (auto e = stopped()) co_return *e;  // not even a connect
  }
  auto c = co_await core->get_client();
  if (!c) co_return c.take_error();
  bridge::ConsumerConfig cc{.topic = full,
                            .subscription = subscription,
                            .type = to_bridge(opts.type),
                            .consumer_name = {},
                            .receiver_queue_size = static_cast<uint32_t>(opts.max_unacked),
                            .nack_redelivery_delay = opts.nack_delay,
                            .start_earliest = opts.initial == InitialPosition::earliest};
  // A stop_waiting() from here on ends it at once: the client's stop signal has fired.
  auto r = co_await (*c)->subscribe(cc, asio::use_awaitable);
  if (!r) {
    core->drop_client(*c);
    co_return r.take_error();
  }
  auto cons = std::make_shared<ConsumerCore>();
  cons->bus = core;
  cons->topic = topic;
  cons->delivery_key = full + '\0' + subscription + '\0';
  cons->c = std::shared_ptr<bridge::PulsarConsumer>(std::move(*r));
  {
    std::lock_guard lk(core->mu);
    if (!core->closed) {
      std::erase_if(core->consumers, [](const auto& w) { return w.expired(); });
      core->consumers.push_back(cons);
      co_return std::unique_ptr<Consumer>(std::make_unique<PulsarConsumerImpl>(cons));
    }
  }
  cons->close();
  co_return closed_error();
}

void PulsarBus::stop_waiting(std::chrono::milliseconds publish_grace) {
  {
    std::lock_guard lk(core_->mu);
    core_->stopping = true;
  }
  core_->stop_signal.fire(publish_grace);
}

void PulsarBus::close() {
  std::vector<std::weak_ptr<ConsumerCore>> consumers;
  std::vector<std::shared_ptr<bridge::PulsarProducer>> producers;
  std::shared_ptr<bridge::PulsarClient> client;
  {
    std::lock_guard lk(core_->mu);
    if (core_->closed.exchange(true)) return;
    consumers.swap(core_->consumers);
    for (auto& [_, t] : core_->topics)
      if (t->producer) producers.push_back(std::move(t->producer));
    client = std::move(core_->client);
  }
  for (auto& w : consumers)
    if (auto c = w.lock()) c->close();
  for (auto& p : producers) p->close([p](Result<Unit>) {});
  // The client handle may go now: its producers and consumers keep their connections.
}

}  // namespace commentd::events

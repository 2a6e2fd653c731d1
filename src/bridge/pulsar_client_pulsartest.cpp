// PulsarClient against a real Pulsar (COMMENTD_TEST_PULSAR, COMMENTD_TEST_PULSAR_ADMIN):
// round trip, per-key order on Key_Shared, nack redelivery, dead letter, deduplication; and
// over the broker's TLS port (COMMENTD_TEST_PULSAR_TLS, COMMENTD_TEST_PULSAR_TLS_DIR).
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "bridge/pulsar_client.h"
#include "bridge/tcp_proxy.h"
#include "bridge/testing.h"

namespace commentd::bridge {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::wait;

class PulsarBridge : public ::testing::Test {
 protected:
  void SetUp() override {
    COMMENTD_REQUIRE_SERVER(url_, "COMMENTD_TEST_PULSAR");
    COMMENTD_REQUIRE_SERVER(admin_, "COMMENTD_TEST_PULSAR_ADMIN");
    auto rt = Runtime::create(2);
    ASSERT_TRUE(rt.ok());
    rt_ = std::move(*rt);
    PulsarConfig cfg;
    cfg.service_url = url_;
    cfg.operation_timeout = 20s;
    auto c = wait<std::unique_ptr<PulsarClient>>([&](auto h) { PulsarClient::connect(*rt_, cfg, std::move(h)); });
    ASSERT_TRUE(c.ok()) << c.error().message;
    client_ = std::move(*c);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    base_ = std::string(info->name()) + "-" + std::to_string(::getpid());
  }

  std::string topic(const std::string& ns = "public/default", const std::string& suffix = "") {
    return "persistent://" + ns + "/" + base_ + suffix;
  }

  std::unique_ptr<PulsarProducer> producer(ProducerConfig cfg) {
    auto p = wait<std::unique_ptr<PulsarProducer>>([&](auto h) { client_->create_producer(cfg, std::move(h)); });
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? std::move(*p) : nullptr;
  }

  std::unique_ptr<PulsarConsumer> consumer(ConsumerConfig cfg) {
    auto c = wait<std::unique_ptr<PulsarConsumer>>([&](auto h) { client_->subscribe(cfg, std::move(h)); });
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? std::move(*c) : nullptr;
  }

  Result<Receipt> send(PulsarProducer& p, std::string key, std::string payload, Properties props = {},
                       uint64_t sequence_id = 0) {
    return wait<Receipt>(
        [&](auto h) { p.send(std::move(key), std::move(payload), std::move(props), sequence_id, std::move(h)); });
  }
  Result<Message> receive(PulsarConsumer& c) { return wait<Message>([&](auto h) { c.receive(std::move(h)); }); }
  // receive(), bounded: past `limit` the consumer is closed, which completes the receive
  // with an error, so a message that never comes fails the test instead of hanging it.
  Result<Message> receive_within(PulsarConsumer& c, std::chrono::seconds limit) {
    boost::asio::io_context io;
    // Until the receive has completed (after a close, with an error): its completion must
    // not find `io` gone.
    auto guard = boost::asio::make_work_guard(io);
    std::optional<Result<Message>> out;
    boost::asio::steady_timer timer(io, limit);
    bool timed_out = false;
    c.receive(boost::asio::bind_executor(io, [&](Result<Message> r) {
      out.emplace(std::move(r));
      timer.cancel();
      guard.reset();
    }));
    timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      timed_out = true;
      c.close(boost::asio::bind_executor(io, [](Result<Unit>) {}));
    });
    io.run();
    if (timed_out) return Error(Errc::deadline_exceeded, "no message within the limit");
    return std::move(*out);
  }
  Status ack(PulsarConsumer& c, const Message& m) { return wait<Unit>([&](auto h) { c.ack(m.id, std::move(h)); }); }
  Status nack(PulsarConsumer& c, const Message& m) { return wait<Unit>([&](auto h) { c.nack(m.id, std::move(h)); }); }

  // PUT/POST on the admin API with curl; true on a 2xx or 409 (already exists).
  bool admin(const std::string& method, const std::string& path, const std::string& body) {
    std::string cmd = "curl -s -o /dev/null -w '%{http_code}' -X " + method + " -H 'Content-Type: application/json' -d '" +
                      body + "' '" + admin_ + path + "'";
    FILE* f = ::popen(cmd.c_str(), "r");
    if (!f) return false;
    char code[8] = {};
    size_t n = fread(code, 1, 3, f);
    ::pclose(f);
    std::string c(code, n);
    return (!c.empty() && c[0] == '2') || c == "409";
  }

  // A loopback proxy to the broker, listening on `listen_port` (0: any free port).
  std::unique_ptr<testing::TcpProxy> broker_proxy(uint16_t listen_port = 0) {
    const auto hostport = url_.substr(url_.find("://") + 3);
    const auto colon = hostport.rfind(':');
    return std::make_unique<testing::TcpProxy>(hostport.substr(0, colon),
                                               static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))), listen_port);
  }
  // A client whose service URL is `proxy`, with these timeouts (connect, operation),
  // `retries` busy retries 500 ms apart, and `stop` as its stop signal.
  std::unique_ptr<PulsarClient> client_via(const testing::TcpProxy& proxy, std::chrono::milliseconds connect,
                                           std::chrono::milliseconds operation, uint32_t retries,
                                           const StopSignal* stop = nullptr) {
    const PulsarConfig cfg{.service_url = "pulsar://127.0.0.1:" + std::to_string(proxy.port()),
                           .operation_timeout = operation,
                           .connect_timeout = connect,
                           .operation_retry_delay = 500ms,
                           .operation_max_retries = retries,
                           .stop = stop};
    auto c = wait<std::unique_ptr<PulsarClient>>([&](auto h) { PulsarClient::connect(*rt_, cfg, std::move(h)); });
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? std::move(*c) : nullptr;
  }

  // The body of a GET on the admin API (empty on failure).
  std::string admin_get(const std::string& path) {
    FILE* f = ::popen(("curl -s '" + admin_ + path + "'").c_str(), "r");
    if (!f) return {};
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    ::pclose(f);
    return out;
  }

  // A namespace `prefix` + pid with deduplication on; empty if the admin API refused.
  std::string dedup_namespace(const std::string& prefix) {
    const std::string ns = prefix + std::to_string(::getpid());
    if (!admin("PUT", "/admin/v2/namespaces/" + ns, "{}")) return {};
    if (!admin("POST", "/admin/v2/namespaces/" + ns + "/deduplication", "true")) return {};
    return ns;
  }

  std::string url_, admin_, base_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<PulsarClient> client_;
};

TEST_F(PulsarBridge, ProduceConsumeRoundTrip) {
  auto c = consumer({.topic = topic(), .subscription = "s"});
  auto p = producer({.topic = topic(), .name = base_});
  ASSERT_TRUE(c && p);
  for (int i = 0; i < 3; ++i) {
    auto r = send(*p, "video-" + std::to_string(i), std::string("pay\0load", 8) + std::to_string(i),
                  {{"event_id", "e" + std::to_string(i)}});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->sequence_id, static_cast<uint64_t>(i));
  }
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto m = receive(*c);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->key, "video-" + std::to_string(i));
    EXPECT_EQ(m->payload, std::string("pay\0load", 8) + std::to_string(i));
    ASSERT_EQ(m->properties.size(), 1u);
    EXPECT_EQ(m->properties[0], (std::pair<std::string, std::string>("event_id", "e" + std::to_string(i))));
    EXPECT_GT(m->publish_time_ms, 1600000000000u);
    ids.insert(m->id);
    EXPECT_TRUE(ack(*c, *m).ok());
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_TRUE(wait<Unit>([&](auto h) { p->close(std::move(h)); }).ok());
  auto after = send(*p, "k", "v");
  ASSERT_FALSE(after.ok());
}

TEST_F(PulsarBridge, BatchedSendsKeepCallOrderAndBoundPending) {
  auto c = consumer({.topic = topic(), .subscription = "s"});
  auto p = producer({.topic = topic(), .name = base_, .batch_max_messages = 50, .batch_max_delay = 5ms, .max_pending = 64});
  ASSERT_TRUE(c && p);
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  constexpr int kN = 200;
  int done = 0, failed = 0;
  for (int i = 0; i < kN; ++i)
    p->send("k", std::to_string(i), {}, 0, asio::bind_executor(io, [&](Result<Receipt> r) {
              if (!r.ok()) {
                EXPECT_EQ(r.error().code, Errc::overloaded) << r.error().message;
                ++failed;
              }
              if (++done == kN) guard.reset();
            }));
  io.run();
  EXPECT_GT(failed, 0) << "200 sends issued at once must exceed max_pending = 64";
  int last = -1;
  for (int got = 0; got < kN - failed; ++got) {
    auto m = receive(*c);
    ASSERT_TRUE(m.ok()) << m.error().message;
    int v = std::stoi(m->payload);
    EXPECT_GT(v, last) << "out of call order";
    last = v;
    ASSERT_TRUE(ack(*c, *m).ok());
  }
}

TEST_F(PulsarBridge, KeySharedKeepsPerKeyOrderAcrossTwoConsumers) {
  ConsumerConfig cc{.topic = topic(), .subscription = "ks", .type = SubscriptionType::key_shared};
  cc.consumer_name = "a";
  auto a = consumer(cc);
  cc.consumer_name = "b";
  auto b = consumer(cc);
  auto p = producer({.topic = topic(), .name = base_});
  ASSERT_TRUE(a && b && p);
  constexpr int kKeys = 16, kPerKey = 20;
  for (int i = 0; i < kPerKey; ++i)
    for (int k = 0; k < kKeys; ++k) ASSERT_TRUE(send(*p, "key" + std::to_string(k), std::to_string(i)).ok());

  asio::io_context io;
  std::map<std::string, std::vector<int>> seen[2];
  int total = 0;
  auto drain = [&](PulsarConsumer& c, int who) -> asio::awaitable<void> {
    while (total < kKeys * kPerKey) {
      auto m = co_await c.receive(asio::use_awaitable);
      if (!m.ok()) co_return;  // cancelled once the other consumer saw the last message
      seen[who][m->key].push_back(std::stoi(m->payload));
      ++total;
      auto r = co_await c.ack(m->id, asio::use_awaitable);
      EXPECT_TRUE(r.ok());
    }
    a.reset();  // wakes the other consumer's pending receive (cancelled)
    b.reset();
  };
  asio::co_spawn(io, drain(*a, 0), asio::detached);
  asio::co_spawn(io, drain(*b, 1), asio::detached);
  io.run();
  EXPECT_EQ(total, kKeys * kPerKey);
  std::set<std::string> keys;
  for (int who = 0; who < 2; ++who)
    for (const auto& [key, vals] : seen[who]) {
      EXPECT_TRUE(keys.insert(key).second) << key << " went to both consumers";
      EXPECT_EQ(vals.size(), static_cast<size_t>(kPerKey));
      for (size_t i = 0; i < vals.size(); ++i) EXPECT_EQ(vals[i], static_cast<int>(i)) << key;
    }
  EXPECT_EQ(keys.size(), static_cast<size_t>(kKeys));
  // Both consumers got a share (all 16 keys hashing to one half: p = 2^-15).
  EXPECT_FALSE(seen[0].empty());
  EXPECT_FALSE(seen[1].empty());
}

TEST_F(PulsarBridge, NackRedeliversAfterTheDelay) {
  auto c = consumer({.topic = topic(), .subscription = "s", .type = SubscriptionType::shared,
                     .nack_redelivery_delay = 200ms});
  auto p = producer({.topic = topic(), .name = base_});
  ASSERT_TRUE(c && p);
  ASSERT_TRUE(send(*p, "k", "poison").ok());
  auto first = receive(*c);
  ASSERT_TRUE(first.ok());
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(nack(*c, *first).ok());
  auto again = receive(*c);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_EQ(again->payload, "poison");
  EXPECT_EQ(again->id, first->id);
  EXPECT_TRUE(ack(*c, *again).ok());
}

TEST_F(PulsarBridge, DeadLetterAfterMaxRedeliveries) {
  const std::string dlq = topic("public/default", "-DLQ");
  auto dead = consumer({.topic = dlq, .subscription = "dlq"});
  auto c = consumer({.topic = topic(), .subscription = "s", .type = SubscriptionType::shared,
                     .dead_letter_max_redeliveries = 3, .dead_letter_topic = dlq});
  auto p = producer({.topic = topic(), .name = base_});
  ASSERT_TRUE(dead && c && p);
  ASSERT_TRUE(send(*p, "k", "poison", {{"event_id", "e1"}}).ok());
  ASSERT_TRUE(send(*p, "k", "fine").ok());
  int deliveries = 0;
  bool fine_seen = false;
  // The crate hands a message to the consumer while its redelivery count is below the max,
  // then moves it to the dead-letter topic: 3 deliveries for max 3.
  while (deliveries < 3 || !fine_seen) {
    auto m = receive_within(*c, 60s);
    ASSERT_TRUE(m.ok()) << m.error().message;
    if (m->payload == "fine") {
      fine_seen = true;
      ASSERT_TRUE(ack(*c, *m).ok());
      continue;
    }
    ++deliveries;
    ASSERT_LE(deliveries, 3);
    ASSERT_TRUE(nack(*c, *m).ok());
  }
  auto d = receive_within(*dead, 60s);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->payload, "poison");
  EXPECT_EQ(d->key, "k");
  bool has_event_id = false;
  for (const auto& [k, v] : d->properties) has_event_id |= (k == "event_id" && v == "e1");
  EXPECT_TRUE(has_event_id);
  EXPECT_TRUE(ack(*dead, *d).ok());
}

// Broker-side deduplication keys on (producer name, sequence id). The crate numbers sequence
// ids 0, 1, 2... per producer instance and does not resume from the broker's last one, so a
// re-created producer with the same name has its first sends dropped as duplicates: the
// broker stores each sequence id once. (docs/bridge.md: what this means for the outbox relay.)
TEST_F(PulsarBridge, DedupStoresEachProducerSequenceIdOnce) {
  const std::string ns = dedup_namespace("public/bridge-dedup-");
  ASSERT_FALSE(ns.empty());
  auto c = consumer({.topic = topic(ns), .subscription = "s"});
  ASSERT_TRUE(c);
  {
    auto p = producer({.topic = topic(ns), .name = "relay-1"});
    ASSERT_TRUE(p);
    for (const char* v : {"a", "b"}) {
      auto r = send(*p, "k", v);
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
    ASSERT_TRUE(wait<Unit>([&](auto h) { p->close(std::move(h)); }).ok());
  }
  auto p = producer({.topic = topic(ns), .name = "relay-1"});
  ASSERT_TRUE(p);
  std::vector<Receipt> receipts;
  for (const char* v : {"a-again", "b-again", "c"}) {
    auto r = send(*p, "k", v);
    ASSERT_TRUE(r.ok()) << r.error().message;
    receipts.push_back(*r);
  }
  EXPECT_EQ(receipts[0].sequence_id, 0u);
  EXPECT_EQ(receipts[2].sequence_id, 2u);
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    auto m = receive(*c);
    ASSERT_TRUE(m.ok()) << m.error().message;
    got.push_back(m->payload);
    ASSERT_TRUE(ack(*c, *m).ok());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"}));
}

// A sequenced producer sends under the caller's sequence ids: a send at or below what the
// broker stored for the name (learnt when the producer is made) or what it sent is a
// duplicate, and a burst goes out as one batch entry whose messages keep their order.
TEST_F(PulsarBridge, SequencedProducerStoresEachSequenceIdOnce) {
  const std::string ns = dedup_namespace("public/bridge-seq-");
  ASSERT_FALSE(ns.empty());
  auto c = consumer({.topic = topic(ns), .subscription = "s"});
  ASSERT_TRUE(c);
  const ProducerConfig pc{.topic = topic(ns), .name = "relay-seq", .batch_max_messages = 100, .sequenced = true};
  // Sends issued back to back, then awaited: one burst.
  auto burst = [&](PulsarProducer& p, std::vector<uint64_t> seqs) {
    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    std::vector<std::optional<Result<Receipt>>> out(seqs.size());
    size_t left = seqs.size();
    for (size_t i = 0; i < seqs.size(); ++i)
      p.send("k", "m" + std::to_string(seqs[i]), {}, seqs[i],
             asio::bind_executor(io, [&, i](Result<Receipt> r) {
               out[i].emplace(std::move(r));
               if (--left == 0) guard.reset();
             }));
    io.run();
    std::vector<Receipt> receipts;
    for (auto& r : out) {
      EXPECT_TRUE(r && r->ok()) << (r && !r->ok() ? r->error().message : "no completion");
      if (r && r->ok()) receipts.push_back(**r);
    }
    return receipts;
  };
  {
    auto p = producer(pc);
    ASSERT_TRUE(p);
    auto one = send(*p, "k", "m1", {}, 1);
    ASSERT_TRUE(one.ok()) << one.error().message;
    EXPECT_FALSE(one->duplicate);
    auto b = burst(*p, {2, 3, 4});
    ASSERT_EQ(b.size(), 3u);
    for (auto& r : b) EXPECT_FALSE(r.duplicate);
    for (size_t i = 1; i < b.size(); ++i)
      EXPECT_LT(std::tie(b[i - 1].entry_id, b[i - 1].batch_index), std::tie(b[i].entry_id, b[i].batch_index));
    // Sends queued together go out as one batch entry: 100 issued at once take fewer entries.
    std::vector<uint64_t> many;
    for (uint64_t s = 5; s < 105; ++s) many.push_back(s);
    auto m = burst(*p, many);
    ASSERT_EQ(m.size(), many.size());
    std::set<uint64_t> entries;
    for (auto& r : m) {
      EXPECT_FALSE(r.duplicate);
      entries.insert(r.entry_id);
    }
    EXPECT_LT(entries.size(), many.size());
    auto again = send(*p, "k", "m3-again", {}, 3);
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(again->duplicate);
    auto zero = send(*p, "k", "no-seq", {}, 0);
    ASSERT_FALSE(zero.ok());
    EXPECT_EQ(zero.error().message.rfind("bad_argument", 0), 0u) << zero.error().message;
    ASSERT_TRUE(wait<Unit>([&](auto h) { p->close(std::move(h)); }).ok());
  }
  // A new producer of the name (a relay after a crash) republishes from 103: the broker's
  // stored sequence id makes 103 and 104 duplicates, and 105 and 106 go out.
  auto p = producer(pc);
  ASSERT_TRUE(p);
  auto b = burst(*p, {103, 104, 105, 106});
  ASSERT_EQ(b.size(), 4u);
  EXPECT_TRUE(b[0].duplicate);
  EXPECT_TRUE(b[1].duplicate);
  EXPECT_FALSE(b[2].duplicate);
  EXPECT_FALSE(b[3].duplicate);
  std::vector<std::string> got, want;
  for (int i = 1; i <= 106; ++i) want.push_back("m" + std::to_string(i));
  for (size_t i = 0; i < want.size(); ++i) {
    auto m = receive_within(*c, 20s);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->producer, "relay-seq");
    EXPECT_EQ(m->key, "k");
    got.push_back(m->payload);
    ASSERT_TRUE(ack(*c, *m).ok());
  }
  EXPECT_EQ(got, want);
}

// The broker closes a producer when its topic is unloaded (or moves): a sequenced producer
// then ends and says so, and a new one of the same name carries on from the broker's last id.
TEST_F(PulsarBridge, SequencedProducerEndsWhenTheBrokerClosesIt) {
  const std::string ns = dedup_namespace("public/bridge-seq-unload-");
  ASSERT_FALSE(ns.empty());
  const ProducerConfig pc{.topic = topic(ns), .name = "relay-unload", .sequenced = true};
  auto p = producer(pc);
  ASSERT_TRUE(p);
  ASSERT_TRUE(send(*p, "k", "m1", {}, 1).ok());
  EXPECT_FALSE(p->closed());
  ASSERT_TRUE(admin("PUT", "/admin/v2/persistent/" + ns + "/" + base_ + "/unload", ""));
  for (int i = 0; i < 100 && !p->closed(); ++i) std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(p->closed()) << "the producer did not end after its topic was unloaded";
  auto failed = send(*p, "k", "m2", {}, 2);
  ASSERT_FALSE(failed.ok());
  auto q = producer(pc);
  ASSERT_TRUE(q);
  auto again = send(*q, "k", "m1-again", {}, 1);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->duplicate);
  auto next = send(*q, "k", "m2", {}, 2);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_FALSE(next->duplicate);
}

// Freeing a sequenced producer's handle with sends in flight: they still complete (with the
// broker's receipts), as on the crate's producer.
TEST_F(PulsarBridge, SequencedProducerFreedWithSendsInFlightCompletesThem) {
  auto p = producer({.topic = topic(), .name = base_, .sequenced = true});
  ASSERT_TRUE(p);
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  constexpr int kN = 50;
  int ok = 0, done = 0;
  for (int i = 1; i <= kN; ++i)
    p->send("k", std::to_string(i), {}, static_cast<uint64_t>(i), asio::bind_executor(io, [&](Result<Receipt> r) {
              EXPECT_TRUE(r.ok()) << r.error().message;
              ok += r.ok() ? 1 : 0;
              if (++done == kN) guard.reset();
            }));
  p.reset();
  io.run();
  EXPECT_EQ(ok, kN);
}

TEST_F(PulsarBridge, DestroyingAConsumerCancelsItsPendingReceive) {
  auto c = consumer({.topic = topic(), .subscription = "s"});
  ASSERT_TRUE(c);
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::optional<Result<Message>> out;
  c->receive(asio::bind_executor(io, [&](Result<Message> m) {
    out.emplace(std::move(m));
    guard.reset();
  }));
  c.reset();
  io.run();
  ASSERT_TRUE(out.has_value());
  ASSERT_FALSE(out->ok());
  EXPECT_EQ(out->error().detail_code, "bridge_cancelled");
}

// A subscribe while the broker is away (the client's connection closed, new ones refused) ends
// with an error within the client's bound (connect + operation timeouts + the busy retries:
// 1 + 2 + 2 x 0.5 s here). The crate alone keeps reconnecting with backoff for about 40 s
// (longer with a longer connect timeout), and a Subscription's stop joins the thread that
// waits on the subscribe: that once hung a node's shutdown after a broker restart.
TEST_F(PulsarBridge, ASubscribeWhileTheBrokerIsAwayEndsWithinTheClientsBound) {
  auto proxy = broker_proxy();
  auto client = client_via(*proxy, 1s, 2s, 2);
  ASSERT_TRUE(client);
  proxy.reset();  // the broker goes away: its connections close, its port refuses
  const auto start = std::chrono::steady_clock::now();
  auto c = wait<std::unique_ptr<PulsarConsumer>>(
      [&](auto h) { client->subscribe({.topic = topic(), .subscription = "s"}, std::move(h)); });
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().detail_code, "bridge_timeout") << c.error().message;
  EXPECT_LT(took, 10s) << "the bound is 4 s";
}

// A stop signal: what waits on a broker that is away ends at once when it fires, on every
// client made with it: a connect (the crate retries a refused port until connect_timeout,
// 20 s here), a producer creation (bounded by send_timeout, 30 s) and a subscribe (connect +
// operation timeouts + busy retries, 32 s); and later ones end at once.
TEST_F(PulsarBridge, AStopSignalEndsWhatWaitsOnABrokerThatIsAway) {
  StopSignal stop;
  auto proxy = broker_proxy();
  auto client = client_via(*proxy, 10s, 20s, 4, &stop);
  ASSERT_TRUE(client);
  const std::string gone = "pulsar://127.0.0.1:" + std::to_string(proxy->port());
  proxy.reset();  // the broker goes away: its connections close, its port refuses
  const PulsarConfig refused{.service_url = gone, .connect_timeout = 20s, .stop = &stop};
  const ProducerConfig producer{.topic = topic(), .send_timeout = 30s};

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  int pending = 3;
  std::optional<Result<std::unique_ptr<PulsarClient>>> connected;
  std::optional<Result<std::unique_ptr<PulsarProducer>>> produced;
  std::optional<Result<std::unique_ptr<PulsarConsumer>>> subscribed;
  auto done = [&](auto& out) {
    return asio::bind_executor(io, [&](auto r) {
      out.emplace(std::move(r));
      if (--pending == 0) guard.reset();
    });
  };
  PulsarClient::connect(*rt_, refused, done(connected));
  client->create_producer(producer, done(produced));
  client->subscribe({.topic = topic(), .subscription = "s"}, done(subscribed));
  std::this_thread::sleep_for(500ms);
  io.poll();
  ASSERT_EQ(pending, 3) << "all three should still wait for the broker";
  const auto start = std::chrono::steady_clock::now();
  stop.fire();
  io.run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  for (const Error* e : {connected->ok() ? nullptr : &connected->error(), produced->ok() ? nullptr : &produced->error(),
                         subscribed->ok() ? nullptr : &subscribed->error()}) {
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->code, Errc::unavailable);
    EXPECT_EQ(e->detail_code, "bridge_cancelled") << e->message;
  }

  // Later calls end at once, whatever the broker.
  const auto later = std::chrono::steady_clock::now();
  auto c = wait<std::unique_ptr<PulsarClient>>([&](auto h) { PulsarClient::connect(*rt_, refused, std::move(h)); });
  auto p = wait<std::unique_ptr<PulsarProducer>>([&](auto h) { client->create_producer(producer, std::move(h)); });
  auto s2 = wait<std::unique_ptr<PulsarConsumer>>(
      [&](auto h) { client->subscribe({.topic = topic(), .subscription = "s2"}, std::move(h)); });
  EXPECT_LT(std::chrono::steady_clock::now() - later, 1s);
  EXPECT_EQ(c.ok() ? "" : c.error().detail_code, "bridge_cancelled");
  EXPECT_EQ(p.ok() ? "" : p.error().detail_code, "bridge_cancelled");
  EXPECT_EQ(s2.ok() ? "" : s2.error().detail_code, "bridge_cancelled");
}

// The signal's owner may free it while clients made with it live: that never fires it.
TEST_F(PulsarBridge, FreeingAStopSignalNeverFiresIt) {
  auto proxy = broker_proxy();
  std::unique_ptr<PulsarClient> client;
  {
    StopSignal stop;
    client = client_via(*proxy, 10s, 20s, 4, &stop);
  }
  ASSERT_TRUE(client);
  auto p = wait<std::unique_ptr<PulsarProducer>>([&](auto h) { client->create_producer({.topic = topic()}, std::move(h)); });
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto s = wait<std::unique_ptr<PulsarConsumer>>(
      [&](auto h) { client->subscribe({.topic = topic(), .subscription = "s"}, std::move(h)); });
  ASSERT_TRUE(s.ok()) << s.error().message;
}

// A stop's grace for sends (a stopping relay's last round): a broker that stops reading a
// producer's connection (here its publish rate limit, 1 byte/s on the namespace: after one
// 64 KiB message it reads nothing more from that connection for about 18 hours) holds a send
// until the grace is over, and then the send fails with bridge_cancelled, where before it
// held a stop for send_timeout. A send the broker answers within the grace succeeds. Both
// producers: the sequenced one (the relays'), which then ends, and the crate's.
TEST_F(PulsarBridge, AStopGivesSendsItsGraceThenFailsThoseABrokerHolds) {
  const std::string ns = dedup_namespace("public/bridge-stop-grace-");
  ASSERT_FALSE(ns.empty());
  ASSERT_TRUE(admin("POST", "/admin/v2/namespaces/" + ns + "/publishRate",
                    R"({"publishThrottlingRateInMsg":-1,"publishThrottlingRateInByte":1})"));
  StopSignal stop;
  const PulsarConfig cfg{.service_url = url_, .operation_timeout = 20s, .stop = &stop};
  auto c = wait<std::unique_ptr<PulsarClient>>([&](auto h) { PulsarClient::connect(*rt_, cfg, std::move(h)); });
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto make = [&](ProducerConfig pc) {
    auto p = wait<std::unique_ptr<PulsarProducer>>([&](auto h) { (*c)->create_producer(pc, std::move(h)); });
    EXPECT_TRUE(p.ok()) << p.error().message;
    return p.ok() ? std::move(*p) : nullptr;
  };
  // All made before any connection is held (the crate's producers share the client's).
  auto seq = make({.topic = topic(ns, "-seq"), .name = base_, .send_timeout = 60s, .sequenced = true});
  auto plain = make({.topic = topic(ns, "-plain"), .send_timeout = 60s});
  auto answered = make({.topic = topic("public/default", "-ok"), .name = base_ + "-ok", .sequenced = true});
  ASSERT_TRUE(seq && plain && answered);
  const std::string big(64 * 1024, 'x');
  ASSERT_TRUE(send(*seq, "k", big, {}, 1).ok());
  ASSERT_TRUE(send(*plain, "k", big).ok());

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  int pending = 3;
  std::optional<Result<Receipt>> held_seq, held_plain, within;
  auto done = [&](auto& out) {
    return asio::bind_executor(io, [&](Result<Receipt> r) {
      out.emplace(std::move(r));
      if (--pending == 0) guard.reset();
    });
  };
  seq->send("k", "m2", {}, 2, done(held_seq));
  plain->send("k", "m2", {}, 0, done(held_plain));
  std::this_thread::sleep_for(1s);
  io.poll();
  ASSERT_EQ(pending, 3) << "the broker should hold both sends";
  const auto fired = std::chrono::steady_clock::now();
  stop.fire(1500ms);
  answered->send("k", "in the grace", {}, 1, done(within));
  io.run();
  const auto took = std::chrono::steady_clock::now() - fired;
  EXPECT_GE(took, 1400ms) << "the held sends failed before the grace was over";
  EXPECT_LT(took, 5s);
  ASSERT_TRUE(within->ok()) << within->error().message;
  for (auto* r : {&held_seq, &held_plain}) {
    ASSERT_FALSE((*r)->ok());
    EXPECT_EQ((*r)->error().code, Errc::unavailable);
    EXPECT_EQ((*r)->error().detail_code, "bridge_cancelled") << (*r)->error().message;
  }
  EXPECT_TRUE(seq->closed()) << "a sequenced producer ends with its failed sends";
  // Past the grace, a send on a producer that is left fails at once.
  const auto later = std::chrono::steady_clock::now();
  auto late = send(*answered, "k", "after the grace", {}, 2);
  ASSERT_FALSE(late.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - later, 1s);
  // And so does a close the held connection cannot carry, instead of waiting out the
  // client's operation timeout (20 s here).
  const auto closing = std::chrono::steady_clock::now();
  auto closed = wait<Unit>([&](auto h) { plain->close(std::move(h)); });
  EXPECT_LT(std::chrono::steady_clock::now() - closing, 5s) << (closed.ok() ? "closed" : closed.error().message);
}

// The subscribe that ran out goes on behind the timeout (the crate keeps reconnecting): when
// the broker comes back and grants it, the consumer is closed at once, so the subscription
// is left with no consumer nobody reads.
TEST_F(PulsarBridge, ASubscribeGrantedAfterItsBoundIsClosed) {
  auto proxy = broker_proxy();
  const uint16_t front = proxy->port();
  auto client = client_via(*proxy, 1s, 2s, 2);
  ASSERT_TRUE(client);
  proxy.reset();
  auto c = wait<std::unique_ptr<PulsarConsumer>>(
      [&](auto h) { client->subscribe({.topic = topic(), .subscription = "late"}, std::move(h)); });
  ASSERT_FALSE(c.ok());
  ASSERT_EQ(c.error().detail_code, "bridge_timeout") << c.error().message;
  proxy = broker_proxy(front);  // the broker is back where the client looks for it
  // The crate's next reconnect (its backoff: within about 40 s) subscribes; the subscription
  // then exists, and its consumer is closed.
  const std::string stats = "/admin/v2/persistent/public/default/" + base_ + "/stats";
  bool granted = false;
  for (int i = 0; i < 600 && !granted; ++i) {
    granted = admin_get(stats).find("\"late\"") != std::string::npos;
    if (!granted) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(granted) << "the subscribe never reached the broker";
  std::string s;
  for (int i = 0; i < 50; ++i) {
    s = admin_get(stats);
    if (s.find("\"consumerName\"") == std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(s.find("\"consumerName\""), std::string::npos) << "a consumer nobody reads: " << s;
}

class PulsarBridgeTls : public PulsarBridge {
 protected:
  void SetUp() override {
    PulsarBridge::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    COMMENTD_REQUIRE_SERVER(tls_url_, "COMMENTD_TEST_PULSAR_TLS");
    COMMENTD_REQUIRE_SERVER(dir_, "COMMENTD_TEST_PULSAR_TLS_DIR");
  }

  Result<std::unique_ptr<PulsarClient>> try_connect(const std::string& url, const std::string& ca) {
    const PulsarConfig cfg{.service_url = url,
                           .tls_ca_file = ca.empty() ? "" : dir_ + "/" + ca,
                           .operation_timeout = 20s,
                           .connect_timeout = 5s};
    return wait<std::unique_ptr<PulsarClient>>([&](auto h) { PulsarClient::connect(*rt_, cfg, std::move(h)); });
  }

  std::string tls_url_, dir_;
};

// The TLS port speaks nothing else, and lookups answer a pulsar+ssl:// client with it, so
// every connection below (the client's, its producers' and consumers', and the sequenced
// producer's own) is TLS, to a broker verified against the test CA. Checked: with the
// sequenced producer connecting in plain TCP, its producer is never made here.
TEST_F(PulsarBridgeTls, ProducesConsumesAndDeduplicatesOverTlsToAVerifiedBroker) {
  auto c = try_connect(tls_url_, "ca.pem");
  ASSERT_TRUE(c.ok()) << c.error().message;
  client_ = std::move(*c);
  auto sub = consumer({.topic = topic(), .subscription = "s"});
  auto p = producer({.topic = topic(), .name = base_});
  ASSERT_TRUE(sub && p);
  ASSERT_TRUE(send(*p, "k", "over tls").ok());
  auto m = receive_within(*sub, 20s);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->payload, "over tls");
  ASSERT_TRUE(ack(*sub, *m).ok());

  // The sequenced producer (the relays' dedup) connects to the topic's broker itself.
  const std::string ns = dedup_namespace("public/bridge-tls-");
  ASSERT_FALSE(ns.empty());
  auto dsub = consumer({.topic = topic(ns), .subscription = "s"});
  auto seq = producer({.topic = topic(ns), .name = "relay-tls", .sequenced = true});
  ASSERT_TRUE(dsub && seq);
  auto first = send(*seq, "k", "m1", {}, 1);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->duplicate);
  auto again = send(*seq, "k", "m1-again", {}, 1);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->duplicate);
  ASSERT_TRUE(wait<Unit>([&](auto h) { seq->close(std::move(h)); }).ok());
  // A new producer of the name learns the stored id from the broker, over TLS too.
  auto seq2 = producer({.topic = topic(ns), .name = "relay-tls", .sequenced = true});
  ASSERT_TRUE(seq2);
  auto dup = send(*seq2, "k", "m1-third", {}, 1);
  ASSERT_TRUE(dup.ok()) << dup.error().message;
  EXPECT_TRUE(dup->duplicate);
  ASSERT_TRUE(send(*seq2, "k", "m2", {}, 2).ok());
  for (const char* want : {"m1", "m2"}) {
    auto got = receive_within(*dsub, 20s);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->payload, want);
    ASSERT_TRUE(ack(*dsub, *got).ok());
  }
}

TEST_F(PulsarBridgeTls, RefusesABrokerWhoseCertificateItCannotVerify) {
  for (const char* ca : {"other-ca.pem", ""}) {  // an unrelated CA; the system's roots alone
    auto c = try_connect(tls_url_, ca);
    ASSERT_FALSE(c.ok()) << ca;
    EXPECT_NE(c.error().message.find("certificate verify failed"), std::string::npos) << c.error().message;
  }
}

TEST_F(PulsarBridgeTls, FilesItCannotUseFailBeforeAnyConnect) {
  // Nothing listens on port 1: a connect attempt would fail with a connection error instead.
  struct Case {
    std::string url, ca, says;
  } cases[] = {
      {"pulsar+ssl://127.0.0.1:1", "missing.pem", "missing.pem"},
      {"pulsar+ssl://127.0.0.1:1", "node.key", "no PEM certificate"},  // a key, no certificate
      {"pulsar://127.0.0.1:1", "ca.pem", "needs a pulsar+ssl:// url"},
  };
  for (const Case& c : cases) {
    auto r = try_connect(c.url, c.ca);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.error().detail_code, "bridge_bad_argument") << r.error().message;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace commentd::bridge

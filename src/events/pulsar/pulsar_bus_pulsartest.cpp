// PulsarBus against a real Pulsar (COMMENTD_TEST_PULSAR): the EventBus conformance suite
// (also over the broker's TLS port, COMMENTD_TEST_PULSAR_TLS), batching, and fast failure
// with the broker away. Every test uses topics of its own.
#include "events/pulsar/pulsar_bus.h"

#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <random>

#include "bridge/pulsar_client.h"
#include "bridge/tcp_proxy.h"
#include "events/event_bus_conformance.h"
#include "testing/test_servers.h"

namespace commentd::events {
namespace {

using namespace std::chrono_literals;

std::string unique_prefix() {
  static std::atomic<int> n{0};
  std::random_device rd;
  // A namespace with deduplication on (deploy/pulsar/pulsar.sh makes pavilion's so), as the
  // conformance suite's dedup test needs.
  return "persistent://pavilion/comments/bus-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" +
         std::to_string(rd() % 100000) + "-";
}

PulsarBusOptions test_options(const std::string& url, const std::string& prefix) {
  PulsarBusOptions o;
  o.url = url;
  o.producer_name = "conformance";
  o.topic_prefix = prefix;
  o.batch_size = 100;  // the suite runs with batching on
  o.batch_delay = 2ms;
  o.operation_timeout = 10s;
  o.send_timeout = 10s;
  o.connect_timeout = 10s;
  return o;
}

struct PulsarBusFactory {
  std::string url = commentd::testing::server_env("COMMENTD_TEST_PULSAR").value_or("pulsar://127.0.0.1:1");
  std::string prefix = unique_prefix();
  std::unique_ptr<bridge::Runtime> rt = std::move(*bridge::Runtime::create(2));
  std::unique_ptr<PulsarBus> bus_ = std::make_unique<PulsarBus>(*rt, test_options(url, prefix));

  static void require() { COMMENTD_TEST_SERVER(url, "COMMENTD_TEST_PULSAR"); }
  ~PulsarBusFactory() { bus_.reset(); }
  EventBus& bus() { return *bus_; }
  // A process restart: a new bus (a new producer name) on the same broker and topics.
  void restart() {
    bus_.reset();
    bus_ = std::make_unique<PulsarBus>(*rt, test_options(url, prefix));
  }
};

// The same with batching off: every message its own entry, acks individual.
struct UnbatchedPulsarBusFactory : PulsarBusFactory {
  UnbatchedPulsarBusFactory() { restart(); }
  void restart() {
    bus_.reset();
    auto o = test_options(url, prefix);
    o.batch_size = 1;
    bus_ = std::make_unique<PulsarBus>(*rt, o);
  }
};

// The same through the broker's TLS port, trusting the test CA: every connection the bus
// makes is TLS (that port speaks nothing else), the sequenced producers' too, so the suite's
// dedup test runs over TLS.
struct TlsPulsarBusFactory : PulsarBusFactory {
  std::string ca = commentd::testing::server_env("COMMENTD_TEST_PULSAR_TLS_DIR").value_or("") + "/ca.pem";
  TlsPulsarBusFactory() {
    url = commentd::testing::server_env("COMMENTD_TEST_PULSAR_TLS").value_or("pulsar+ssl://127.0.0.1:1");
    restart();
  }
  static void require() {
    COMMENTD_TEST_SERVER(url, "COMMENTD_TEST_PULSAR_TLS");
    COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_PULSAR_TLS_DIR");
  }
  void restart() {
    bus_.reset();
    auto o = test_options(url, prefix);
    o.tls_ca_file = ca;
    bus_ = std::make_unique<PulsarBus>(*rt, o);
  }
};

}  // namespace

namespace conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Pulsar, EventBusConformance, ::testing::Types<PulsarBusFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(PulsarUnbatched, EventBusConformance, ::testing::Types<UnbatchedPulsarBusFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(PulsarTls, EventBusConformance, ::testing::Types<TlsPulsarBusFactory>);
}

namespace {

TEST(PulsarBusTest, CheckOptionsNamesACaFileItCannotUse) {
  COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_PULSAR_TLS_DIR");
  PulsarBusOptions o;
  EXPECT_TRUE(PulsarBus::check_options(o).ok());
  o.tls_ca_file = dir + "/ca.pem";
  EXPECT_TRUE(PulsarBus::check_options(o).ok());
  for (const std::string& unusable : {dir + "/missing.pem", dir + "/node.key"}) {  // absent; no certificate
    o.tls_ca_file = unusable;
    auto st = PulsarBus::check_options(o);
    ASSERT_FALSE(st.ok()) << unusable;
    EXPECT_EQ(st.error().code, Errc::bad_request);
    EXPECT_NE(st.error().message.find(unusable), std::string::npos) << st.error().message;
  }
}

TEST(PulsarBusTest, BatchedPublishKeepsOrderAcrossChunks) {
  PulsarBusFactory::require();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
  PulsarBusFactory f;
  auto o = test_options(f.url, f.prefix);
  o.max_pending = 64;  // 300 messages: five chunks
  PulsarBus bus(*f.rt, o);
  conformance::Runner run;
  std::vector<OutMessage> msgs;
  for (int i = 0; i < 300; ++i) msgs.push_back({"k" + std::to_string(i % 7), std::to_string(i), 0});
  auto acks = run.run(bus.publish("chunks", msgs));
  ASSERT_TRUE(acks.ok()) << acks.error().message;
  ASSERT_EQ(acks->size(), 300u);
  for (size_t i = 1; i < acks->size(); ++i) EXPECT_GT((*acks)[i].message_id, (*acks)[i - 1].message_id);
  auto c = run.run(bus.subscribe("chunks", "s", {.type = SubscriptionType::exclusive}));
  ASSERT_TRUE(c.ok()) << c.error().message;
  for (int i = 0; i < 300; ++i) {
    auto m = run.run((*c)->receive());
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ(m->payload, std::to_string(i));
    EXPECT_EQ(m->message_id, (*acks)[i].message_id);
    EXPECT_EQ(m->producer, bus.producer_name());
    EXPECT_TRUE(run.run((*c)->ack(*m)).ok());
  }
  EXPECT_EQ(bus.stats().published.load(), 300u);
}

TEST(PulsarBusTest, EachBusPublishesUnderItsOwnProducerName) {
  PulsarBusFactory::require();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
  PulsarBusFactory f;
  PulsarBus other(*f.rt, test_options(f.url, f.prefix));
  EXPECT_NE(f.bus().producer_name(), other.producer_name());
  EXPECT_EQ(f.bus().producer_name().rfind("conformance-", 0), 0u);
}

TEST(PulsarBusTest, AProducerNameTheBrokerStillHoldsIsNotTriedAgain) {
  PulsarBusFactory::require();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
  PulsarBusFactory f;
  conformance::Runner run;
  // Another connection holds a producer under the name the bus will use first on the topic,
  // as a broker holds a dead connection's producer for a while after a restart.
  bridge::PulsarConfig cfg{.service_url = f.url, .operation_timeout = 10s, .connect_timeout = 10s};
  auto holder_client = run.run(bridge::PulsarClient::connect(*f.rt, cfg, boost::asio::use_awaitable));
  ASSERT_TRUE(holder_client.ok()) << holder_client.error().message;
  auto holder = run.run((*holder_client)->create_producer(
      {.topic = f.prefix + "busy", .name = f.bus().producer_name()}, boost::asio::use_awaitable));
  ASSERT_TRUE(holder.ok()) << holder.error().message;
  auto first = run.run(f.bus().publish("busy", "k", "v1", 0));
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, Errc::unavailable) << first.error().message;  // ProducerBusy passes
  auto second = run.run(f.bus().publish("busy", "k", "v2", 0));
  EXPECT_TRUE(second.ok()) << "retried under the name the broker still holds: " << second.error().message;
}

TEST(PulsarBusTest, ConcurrentFirstPublishesToATopicShareOneProducer) {
  PulsarBusFactory::require();
  if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
  PulsarBusFactory f;
  for (bool unbatched : {false, true}) {
    auto o = test_options(f.url, f.prefix);
    if (unbatched) o.unbatched_topics = {"first-unbatched"};
    PulsarBus bus(*f.rt, o);
    const std::string topic = unbatched ? "first-unbatched" : "first-batched";
    conformance::Runner run;
    // A node's first reactions under load: many publishes to a topic it has no producer for
    // yet, all at once. Each creating a producer of its own under the bus's name made the
    // broker refuse all but one (ProducerBusy), and those publishes failed (a 503 each).
    constexpr int kPublishes = 32;
    auto one = [&bus, &topic](int i) -> boost::asio::awaitable<std::string> {  // "" or the error
      std::string key = "k" + std::to_string(i);
      std::string payload = std::to_string(i);
      auto r = co_await bus.publish(topic, std::move(key), std::move(payload), 0);
      co_return r.ok() ? std::string() : r.error().message;
    };
    std::vector<std::future<std::string>> all;
    for (int i = 0; i < kPublishes; ++i) all.push_back(boost::asio::co_spawn(run.ioc(), one(i), boost::asio::use_future));
    int ok = 0;
    for (auto& p : all) {
      ASSERT_EQ(p.wait_for(30s), std::future_status::ready);
      auto error = p.get();
      EXPECT_EQ(error, "");
      ok += error.empty();
    }
    EXPECT_EQ(ok, kPublishes) << (unbatched ? "unbatched" : "batched");
    EXPECT_EQ(bus.stats().publish_errors.load(), 0u);
    EXPECT_EQ(bus.stats().client_resets.load(), 0u);
  }
}

// A port nothing listens on: bound, then closed.
int dead_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(PulsarBusTest, NoBrokerMeansUnavailableWithinTheConnectTimeout) {
  auto rt = std::move(*bridge::Runtime::create(1));
  PulsarBusOptions o;
  o.url = "pulsar://127.0.0.1:" + std::to_string(dead_port());
  o.connect_timeout = 1s;
  PulsarBus bus(*rt, o);
  conformance::Runner run;
  auto t0 = std::chrono::steady_clock::now();
  auto p = run.run(bus.publish("t", "k", "v", 0));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::unavailable) << p.error().message;
  auto s = run.run(bus.subscribe("t", "s", {}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::unavailable) << s.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s) << "two operations took far longer than connect_timeout";
}

// A stopping node: stop_waiting() ends what waits on a broker that went away (a subscribe,
// which the bridge would end after connect + operation timeouts + retries, 32 s here; a
// publish that needs a new producer, send_timeout 10 s) or never came (a publish on a bus
// still connecting: connect_timeout 10 s), and fails later subscribes at once.
TEST(PulsarBusTest, StopWaitingEndsASubscribeAndAPublishWaitingOnABrokerThatIsAway) {
  PulsarBusFactory::require();
  const std::string url = *commentd::testing::server_env("COMMENTD_TEST_PULSAR");
  const auto hostport = url.substr(url.find("://") + 3);
  const auto colon = hostport.rfind(':');
  std::optional<bridge::testing::TcpProxy> proxy(std::in_place, hostport.substr(0, colon),
                                                 static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))));
  auto rt = std::move(*bridge::Runtime::create(1));
  conformance::Runner run;  // before the buses: destroyed after them
  PulsarBusOptions o = test_options("pulsar://127.0.0.1:" + std::to_string(proxy->port()), unique_prefix());
  o.operation_timeout = 20s;
  PulsarBus bus(*rt, o);
  ASSERT_TRUE(run.run(bus.publish("t", "k", "before", 0)).ok());  // the bus's client is connected
  PulsarBus never(*rt, test_options("pulsar://127.0.0.1:" + std::to_string(dead_port()), unique_prefix()));
  proxy.reset();  // the service URL goes away: its connection closes, its port refuses

  std::promise<Result<std::unique_ptr<Consumer>>> subscribed;
  std::promise<Result<PublishAck>> new_producer, connecting;
  auto f_sub = subscribed.get_future();
  auto f_new = new_producer.get_future();
  auto f_conn = connecting.get_future();
  asio::co_spawn(
      run.ioc(), [&]() -> asio::awaitable<void> { subscribed.set_value(co_await bus.subscribe("t", "s", {})); },
      asio::detached);
  asio::co_spawn(
      run.ioc(), [&]() -> asio::awaitable<void> { new_producer.set_value(co_await bus.publish("t2", "k", "v", 0)); },
      asio::detached);
  asio::co_spawn(
      run.ioc(), [&]() -> asio::awaitable<void> { connecting.set_value(co_await never.publish("t", "k", "v", 0)); },
      asio::detached);
  ASSERT_EQ(f_sub.wait_for(500ms), std::future_status::timeout) << "the subscribe should wait for the broker";
  ASSERT_EQ(f_new.wait_for(0ms), std::future_status::timeout) << "the producer's creation should wait for the broker";
  ASSERT_EQ(f_conn.wait_for(0ms), std::future_status::timeout) << "the connect should wait for the broker";
  const auto t0 = std::chrono::steady_clock::now();
  bus.stop_waiting(0ms);
  never.stop_waiting(0ms);
  if (f_sub.wait_for(10s) != std::future_status::ready || f_new.wait_for(10s) != std::future_status::ready ||
      f_conn.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "stop_waiting did not end what waits";
    std::abort();  // the calls still refer to the test's state
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  auto s = f_sub.get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::unavailable) << s.error().message;
  for (auto* f : {&f_new, &f_conn}) {
    auto p = f->get();
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().code, Errc::unavailable) << p.error().message;
  }
  auto again = run.run(bus.subscribe("t", "s2", {}));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().detail_code, "bus_stopping");
}

TEST(PulsarBusTest, MessageIdsPackThePositionInOrder) {
  EXPECT_LT(pack_message_id(5, 10, -1), pack_message_id(5, 10, 1));
  EXPECT_LT(pack_message_id(5, 10, 4095), pack_message_id(5, 11, 0));
  EXPECT_LT(pack_message_id(5, (1u << 28) - 1, 4095), pack_message_id(6, 0, -1));
  EXPECT_EQ(pack_message_id(5, 10, -1), pack_message_id(5, 10, 0));
}

}  // namespace
}  // namespace commentd::events

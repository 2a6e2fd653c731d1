// The stall watchdog on a real Pulsar (COMMENTD_TEST_PULSAR, COMMENTD_TEST_PULSAR_ADMIN): a
// Key_Shared subscription made to hold messages back, found stuck from the broker's own
// stats, and unstuck by the watchdog's unload.
//
// How the hold is made, with no broker fault: consumer A takes one message of each of 64 keys
// and acknowledges none; consumer B joins. The broker moves part of the key ranges to B, and
// the keys that moved while A holds their earlier messages are kept back from B until A
// acknowledges them (Key_Shared's per-key order). A never does, so their next messages wait
// in the backlog with B ready and nothing dispatched: what the watchdog looks for, and what a
// broker fault also looks like from outside. The unload reconnects both consumers at the
// acknowledged position, and every message is given out again.
#include "events/pulsar/stall_watchdog.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "events/pulsar/pulsar_bus.h"
#include "testing/run_sync.h"
#include "testing/test_servers.h"

namespace commentd::events {
namespace {

using namespace std::chrono_literals;
using commentd::testing::run_sync;

PulsarBusOptions options(const std::string& url, const std::string& name) {
  PulsarBusOptions o;
  o.url = url;
  o.producer_name = name;
  o.batch_size = 1;  // one entry per message, as the reactions topic
  o.operation_timeout = 10s;
  o.send_timeout = 10s;
  o.connect_timeout = 10s;
  return o;
}

TEST(StallWatchdogPulsar, AKeySharedSubscriptionHoldingMessagesBackIsUnloadedAndDrains) {
  COMMENTD_TEST_SERVER(url, "COMMENTD_TEST_PULSAR");
  COMMENTD_TEST_SERVER(admin, "COMMENTD_TEST_PULSAR_ADMIN");
  std::random_device rd;
  const std::string topic = "persistent://public/default/stall-" + std::to_string(::getpid()) + "-" +
                            std::to_string(rd() % 1000000);
  auto rt = std::move(*bridge::Runtime::create(2));
  PulsarBus bus_a(*rt, options(url, "stall-a"));
  PulsarBus bus_b(*rt, options(url, "stall-b"));
  const SubscribeOptions so{.type = SubscriptionType::key_shared, .initial = InitialPosition::earliest};
  auto a = run_sync(bus_a.subscribe(topic, "s", so));
  ASSERT_TRUE(a.ok()) << a.error().message;

  auto publish_round = [&](int round) {
    std::vector<OutMessage> batch;
    for (int k = 0; k < 64; ++k) batch.push_back({"key-" + std::to_string(k), std::to_string(round), 0});
    auto acks = run_sync(bus_a.publish(topic, std::move(batch)));
    ASSERT_TRUE(acks.ok()) << acks.error().message;
  };
  std::set<uint64_t> seen;  // message ids received by anyone
  publish_round(1);
  for (int i = 0; i < 64; ++i) {
    auto m = run_sync((*a)->receive());
    ASSERT_TRUE(m.ok()) << m.error().message;
    seen.insert(m->message_id);  // held: never acknowledged by A
  }
  auto b = run_sync(bus_b.subscribe(topic, "s", so));
  ASSERT_TRUE(b.ok()) << b.error().message;
  publish_round(2);

  // From now on both consumers take what they are given, and acknowledge it.
  std::mutex mu;
  std::atomic<size_t> after_unload{0};
  std::atomic<bool> unloaded{false};
  auto drain = [&](Consumer& c) {
    for (;;) {
      auto m = run_sync(c.receive());
      if (!m) return;  // closed
      {
        std::lock_guard lk(mu);
        seen.insert(m->message_id);
      }
      if (unloaded) after_unload.fetch_add(1);
      (void)run_sync(c.ack(*m));
    }
  };
  std::thread ta([&] { drain(**a); });
  std::thread tb([&] { drain(**b); });

  auto http = make_admin_http(admin, "", 5s);
  ASSERT_TRUE(http.ok()) << http.error().message;
  ManualClock clock;
  StallWatchdog w(*http, {{topic, "s"}}, 1s, clock);
  // Stats are sampled as an operator would see them: the held keys' messages stay in the
  // backlog, delivered to no one, while B has permits.
  for (int i = 0; i < 100 && w.stats().unloads.load() == 0; ++i) {
    std::this_thread::sleep_for(200ms);
    clock.advance_ms(500);
    (void)w.check();
  }
  EXPECT_EQ(w.stats().stalls.load(), 1u);
  EXPECT_EQ(w.stats().unloads.load(), 1u);
  unloaded = true;
  {
    std::lock_guard lk(mu);
    EXPECT_LT(seen.size(), 128u) << "some messages were held back before the unload";
  }
  // After the unload every message reaches a consumer.
  for (int i = 0; i < 300; ++i) {
    {
      std::lock_guard lk(mu);
      if (seen.size() == 128) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  {
    std::lock_guard lk(mu);
    EXPECT_EQ(seen.size(), 128u);
  }
  EXPECT_GT(after_unload.load(), 0u);
  (*a)->close();
  (*b)->close();
  ta.join();
  tb.join();
}

// The admin API over https (COMMENTD_TEST_PULSAR_ADMIN_TLS, the broker's webServicePortTls):
// verified against the test CA, and refused with a CA the broker's certificate does not chain
// to, as when a Pulsar with TLS has no plain admin port.
TEST(StallWatchdogPulsar, AdminCallsGoOverHttpsToAVerifiedBroker) {
  COMMENTD_TEST_SERVER(admin, "COMMENTD_TEST_PULSAR_ADMIN_TLS");
  COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_PULSAR_TLS_DIR");
  auto http = make_admin_http(admin, "", 5s, dir + "/ca.pem");
  ASSERT_TRUE(http.ok()) << http.error().message;
  auto health = (*http)("GET", "/admin/v2/brokers/health");
  ASSERT_TRUE(health.ok()) << health.error().message;
  EXPECT_EQ(health->status, 200) << health->body;
  auto none = (*http)("GET", "/admin/v2/persistent/public/default/no-such-topic-" + std::to_string(::getpid()) + "/stats");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none->status, 404);

  auto other = make_admin_http(admin, "", 5s, dir + "/other-ca.pem");
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto refused = (*other)("GET", "/admin/v2/brokers/health");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("certificate verify failed"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace commentd::events

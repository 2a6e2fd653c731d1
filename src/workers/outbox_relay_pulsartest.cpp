// The outbox relay on a real Pulsar (COMMENTD_TEST_PULSAR), in a namespace with deduplication
// on: a round published again after a crash between the broker's acks and the position
// update is dropped by the broker (each event is stored once), and a log created afresh,
// whose seqs start at 1 again, publishes under a new producer name (its incarnation), so
// none of its events is taken for a copy of the old log's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "bridge/runtime.h"
#include "events/event_bus_conformance.h"
#include "events/pulsar/pulsar_bus.h"
#include "events/schemas.h"
#include "testing/temp_store.h"
#include "testing/test_servers.h"
#include "workers/outbox_relay.h"
#include "workers/relay_testing.h"

namespace commentd::workers {
namespace {

using namespace std::chrono_literals;
using events::conformance::Runner;

class RelayOnPulsar : public ::testing::Test {
 protected:
  Runner run_;  // first: destroyed after every bus and store that posts to it
  void SetUp() override {
    COMMENTD_TEST_SERVER(url, "COMMENTD_TEST_PULSAR");
    url_ = url;
    std::random_device rd;
    prefix_ = "persistent://pavilion/comments/relay-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) + "-";
    rt_ = std::move(*bridge::Runtime::create(2));
    open(dir_);
  }
  void TearDown() override { close(); }

  void open(commentd::testing::TempDir& dir) {
    store_ = *commentd::testing::open_temp_store(dir, /*sync_writes=*/false);
    events::PulsarBusOptions o;
    o.url = url_;
    o.producer_name = "relay-test";
    o.topic_prefix = prefix_;
    o.send_timeout = 10s;
    o.operation_timeout = 10s;
    o.connect_timeout = 10s;
    bus_ = std::make_unique<events::PulsarBus>(*rt_, o);
    relay_ = std::make_unique<OutboxRelay>(*store_, *bus_, RelayOptions{.producer = "relay-test", .batch_size = 50});
    ASSERT_TRUE(relay_->load_position().ok());
  }
  void close() {
    relay_.reset();
    bus_.reset();
    store_.reset();
  }
  void append(int n) { testing::append_event(*store_, n); }
  size_t relay_all() { return testing::relay_all(run_, *relay_); }
  // The (event id, producer) of each message on the topic from its start, up to a marker
  // published now.
  std::vector<std::pair<std::string, std::string>> topic_events() {
    EXPECT_TRUE(run_.run(bus_->publish("comments", "marker", "{}", 0)).ok());
    auto c = run_.run(bus_->subscribe("comments", "check", {.type = events::SubscriptionType::exclusive}));
    EXPECT_TRUE(c.ok());
    std::vector<std::pair<std::string, std::string>> out;
    if (!c.ok()) return out;
    for (;;) {
      auto m = run_.run((*c)->receive());
      EXPECT_TRUE(m.ok());
      if (!m.ok() || m->key == "marker") return out;
      auto h = events::parse_event_header(m->payload);
      EXPECT_TRUE(h);
      if (h) out.emplace_back(h->event_id, m->producer);
      EXPECT_TRUE(run_.run((*c)->ack(*m)).ok());
    }
  }
  static void expect_events(std::vector<std::pair<std::string, std::string>>& v, int from, int to,
                            const std::string& producer) {
    std::vector<std::pair<std::string, std::string>> want;
    for (int i = from; i <= to; ++i) want.emplace_back("e-" + std::to_string(i), producer);
    const size_t n = std::min(v.size(), want.size());
    EXPECT_EQ(std::vector(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n)), want);
    v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
  }

  std::string url_, prefix_;
  std::unique_ptr<bridge::Runtime> rt_;
  commentd::testing::TempDir dir_{"relay-pulsar"};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<events::PulsarBus> bus_;
  std::unique_ptr<OutboxRelay> relay_;
};

TEST_F(RelayOnPulsar, ARoundPublishedAgainAfterACrashIsStoredOnce) {
  ASSERT_TRUE(bus_->capabilities().dedup_by_sequence);
  for (int i = 1; i <= 10; ++i) append(i);
  relay_->crash_after_publish_once();
  ASSERT_FALSE(run_.run(relay_->relay_once()).ok());  // acked by the broker, position not saved
  EXPECT_EQ(relay_->stats().published.load(), 10u);
  const std::string producer = relay_->producer();
  EXPECT_EQ(producer.rfind("relay-test-", 0), 0u) << producer;

  close();  // kill -9: the store's writes are in its WAL
  open(dir_);
  EXPECT_EQ(relay_->producer(), producer) << "the same log publishes under the same name";
  EXPECT_EQ(relay_all(), 10u);
  EXPECT_EQ(relay_->stats().duplicates.load(), 10u) << "the broker already had the round";
  EXPECT_EQ(relay_->stats().published.load(), 0u);
  append(11);
  EXPECT_EQ(relay_all(), 1u);
  EXPECT_EQ(relay_->stats().published.load(), 1u);
  auto got = topic_events();  // each event once, in outbox order
  EXPECT_EQ(got.size(), 11u);
  expect_events(got, 1, 11, producer);
}

TEST_F(RelayOnPulsar, ALogCreatedAfreshPublishesUnderANewName) {
  for (int i = 1; i <= 5; ++i) append(i);
  EXPECT_EQ(relay_all(), 5u);
  const std::string before = relay_->producer();
  close();
  commentd::testing::TempDir fresh{"relay-pulsar-fresh"};  // a new data directory: seqs from 1 again
  open(fresh);
  EXPECT_NE(relay_->producer(), before);
  for (int i = 6; i <= 8; ++i) append(i);
  EXPECT_EQ(relay_all(), 3u);
  EXPECT_EQ(relay_->stats().duplicates.load(), 0u) << "a fresh log's events were taken for the old one's copies";
  EXPECT_EQ(relay_->stats().published.load(), 3u);
  auto got = topic_events();  // the first log's five, then the fresh log's three
  EXPECT_EQ(got.size(), 8u);
  expect_events(got, 1, 5, before);
  expect_events(got, 6, 8, relay_->producer());
  close();  // before `fresh` goes
}

}  // namespace
}  // namespace commentd::workers

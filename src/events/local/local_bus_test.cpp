// The EventBus conformance suite on the LocalBus, and the LocalBus's own retention.
#include "events/local/local_bus.h"

#include <gtest/gtest.h>

#include "events/event_bus_conformance.h"
#include "testing/temp_store.h"

namespace commentd::events {
namespace {

struct LocalBusFactory {
  commentd::testing::TempDir dir{"local_bus"};
  std::unique_ptr<store::rocks::RocksStore> store;
  std::unique_ptr<LocalBus> bus_;

  LocalBusFactory() { open(); }
  ~LocalBusFactory() {
    bus_.reset();
    store.reset();
  }
  void open() {
    store = *commentd::testing::open_temp_store(dir, /*sync_writes=*/false);
    bus_ = std::make_unique<LocalBus>(*store, LocalBusOptions{.producer_name = "test-producer"});
  }
  EventBus& bus() { return *bus_; }
  // A process restart: the bus and the store are closed and opened again on the same files.
  void restart() {
    bus_.reset();
    store.reset();
    open();
  }
};

}  // namespace

namespace conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Local, EventBusConformance, ::testing::Types<LocalBusFactory>);
}

namespace {

TEST(LocalBusTest, TrimKeepsEveryMessageASubscriptionHasNotAcknowledged) {
  conformance::Runner run;  // destroyed after the bus
  LocalBusFactory f;
  std::vector<OutMessage> msgs;
  for (int i = 1; i <= 10; ++i) msgs.push_back({"k", std::to_string(i), 0});
  ASSERT_TRUE(run.run(f.bus().publish("t", msgs)).ok());
  auto c = *run.run(f.bus().subscribe("t", "s", {.type = SubscriptionType::shared}));
  for (int i = 1; i <= 4; ++i) {
    auto m = *run.run(c->receive());
    ASSERT_TRUE(run.run(c->ack(m)).ok());
  }
  c->close();
  ASSERT_TRUE(f.bus_->trim(0).ok());
  // A new subscription from the earliest stored message starts at 5: 1..4 are gone, 5.. kept.
  auto d = *run.run(f.bus().subscribe("t", "late", {.type = SubscriptionType::shared}));
  EXPECT_EQ(run.run(d->receive())->payload, "5");
  f.restart();
  auto e = *run.run(f.bus().subscribe("t", "s", {.type = SubscriptionType::shared}));
  EXPECT_EQ(run.run(e->receive())->payload, "5");
}

TEST(LocalBusTest, TrimKeepsTheNewestOfATopicNobodySubscribes) {
  conformance::Runner run;  // destroyed after the bus
  LocalBusFactory f;
  std::vector<OutMessage> msgs;
  for (int i = 1; i <= 10; ++i) msgs.push_back({"k", std::to_string(i), 0});
  ASSERT_TRUE(run.run(f.bus().publish("t", msgs)).ok());
  ASSERT_TRUE(f.bus_->trim(3).ok());
  auto d = *run.run(f.bus().subscribe("t", "new", {.type = SubscriptionType::shared}));
  EXPECT_EQ(run.run(d->receive())->payload, "8");
  // Ids continue after a trim and a restart.
  f.restart();
  auto r = run.run(f.bus().publish("t", "k", "11", 0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->message_id, 11u);
}

}  // namespace
}  // namespace commentd::events

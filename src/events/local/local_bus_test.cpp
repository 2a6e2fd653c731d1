// The EventBus conformance suite on the LocalBus, and the LocalBus's own retention.
#include "events/local/local_bus.h"

#include <gtest/gtest.h>

#include "events/event_bus_conformance.h"
#include "testing/run_sync.h"
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

// What a service that no longer runs a local bus does at start (app/application.cpp): the
// whole bus key space goes, topics, ids, dedup state and cursors alike, and nothing else.
TEST(LocalBusTest, ClearBusDropsTopicsCursorsAndIdsButNotTheStoresRows) {
  conformance::Runner run;  // destroyed after the bus
  LocalBusFactory f;
  std::vector<OutMessage> msgs;
  for (int i = 1; i <= 10; ++i) msgs.push_back({"k", std::to_string(i), static_cast<uint64_t>(i)});
  ASSERT_TRUE(run.run(f.bus().publish("t", msgs)).ok());
  {
    auto c = *run.run(f.bus().subscribe("t", "s", {.type = SubscriptionType::shared}));
    auto m = *run.run(c->receive());
    ASSERT_TRUE(run.run(c->ack(m)).ok());
    c->close();
  }
  Comment kept;
  kept.id = *Uuid::parse("018f0000-0000-7000-8000-000000000001");
  kept.video_id = *Uuid::parse("018f0000-0000-7000-8000-0000000000aa");
  kept.user_id = kept.video_id;
  kept.content = "kept";
  kept.created_at = 1000;
  kept.version = 1;
  store::WriteSet ws;
  ws.mutations.push_back(store::PutComment{kept});
  ASSERT_TRUE(commentd::testing::commit_sync(*f.store, std::move(ws)).ok());

  f.bus_.reset();
  EXPECT_EQ(f.store->clear_bus().value(), true);
  EXPECT_EQ(f.store->clear_bus().value(), false);  // nothing left
  EXPECT_TRUE(f.store->bus_scan(std::string(), std::string(1, '\xff'), 10)->empty());
  auto c = commentd::testing::run_sync(f.store->get_comment(kept.id, {}));
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->content, "kept");

  // A bus opened on the cleared store starts from nothing: ids from 1, no dedup memory, and an
  // earliest subscription sees only what is published now.
  f.bus_ = std::make_unique<LocalBus>(*f.store, LocalBusOptions{.producer_name = "test-producer"});
  auto r = run.run(f.bus().publish("t", "k", "after", 1));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->duplicate);
  EXPECT_EQ(r->message_id, 1u);
  auto d = *run.run(f.bus().subscribe("t", "s", {.type = SubscriptionType::shared}));
  EXPECT_EQ(run.run(d->receive())->payload, "after");
}

}  // namespace
}  // namespace commentd::events

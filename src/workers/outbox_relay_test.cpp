// The outbox relay over the real store and the LocalBus: order per key, exactly the
// acknowledged writes' events, redelivery after a crash between publish and position update
// (deduplicated by the bus, and by event id in the consumer), and retention that never
// drops an undelivered event. A "restart" closes the store and the bus and opens them again
// on the same files, as after kill -9 (the store's writes are in its WAL before they are
// acknowledged).
#include "workers/outbox_relay.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "events/event_bus_conformance.h"
#include "events/local/local_bus.h"
#include "events/schemas.h"
#include "testing/temp_store.h"
#include "workers/event_subscriber.h"
#include "workers/relay_testing.h"

namespace commentd::workers {
namespace {

using commentd::testing::commit_sync;
using events::conformance::Runner;

class OutboxRelayTest : public ::testing::Test {
 protected:
  Runner run_;  // first: destroyed after every bus and store that posts to it
  void SetUp() override { open("relay-test"); }
  void TearDown() override { close(); }
  void open(const std::string& producer) {
    store_ = *commentd::testing::open_temp_store(dir_, /*sync_writes=*/false);
    bus_ = std::make_unique<events::LocalBus>(*store_, events::LocalBusOptions{.producer_name = producer});
    relay_ = std::make_unique<OutboxRelay>(*store_, *bus_, RelayOptions{.batch_size = 7});
    ASSERT_TRUE(relay_->load_position().ok());
  }
  void close() {
    relay_.reset();
    bus_.reset();
    store_.reset();
  }
  void restart(const std::string& producer = "relay-test") {
    close();
    open(producer);
  }
  // An event as the service writes it: a JSON object with an event id.
  static std::string event(const std::string& video, int n) {
    return "{\"event_id\":\"" + video + "-" + std::to_string(n) + "\",\"event_type\":\"updated\",\"n\":" +
           std::to_string(n) + "}";
  }
  void append(const std::string& topic, const std::string& key, const std::string& payload) {
    store::WriteSet ws;
    ws.mutations.push_back(store::AppendOutbox{topic, key, payload});
    ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  }
  size_t relay_all() { return testing::relay_all(run_, *relay_); }
  // Every message of `topic` from the start, received through a fresh subscription.
  std::vector<events::Message> drain(const std::string& topic, size_t expect, const std::string& sub = "check") {
    auto c = run_.run(bus_->subscribe(topic, sub, {.type = events::SubscriptionType::exclusive}));
    EXPECT_TRUE(c.ok());
    std::vector<events::Message> out;
    for (size_t i = 0; i < expect; ++i) {
      auto m = run_.run((*c)->receive());
      EXPECT_TRUE(m.ok());
      out.push_back(*m);
      EXPECT_TRUE(run_.run((*c)->ack(*m)).ok());
    }
    // Nothing more: a marker published now is the next message.
    EXPECT_TRUE(run_.run(bus_->publish(topic, "marker", "{}", 0)).ok());
    auto next = run_.run((*c)->receive());
    EXPECT_TRUE(next.ok());
    EXPECT_EQ(next->key, "marker") << "more events than acknowledged writes";
    (void)run_.run((*c)->ack(*next));
    return out;
  }

  commentd::testing::TempDir dir_{"relay"};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<events::LocalBus> bus_;
  std::unique_ptr<OutboxRelay> relay_;
};

TEST_F(OutboxRelayTest, EveryAcknowledgedWriteYieldsExactlyItsEventsInOrderPerKey) {
  // Four writers commit concurrently to three videos; the order per video is the order in
  // which each writer's commits were acknowledged (a writer waits for each ack).
  constexpr int kWriters = 4, kPerWriter = 30;
  std::vector<std::thread> writers;
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> acked;  // video -> event ids, in ack order
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        std::string video = "video" + std::to_string((w + i) % 3);
        store::WriteSet ws;
        std::string id = video + "-w" + std::to_string(w) + "-" + std::to_string(i);
        ws.mutations.push_back(store::AppendOutbox{"comments", video,
                                                   "{\"event_id\":\"" + id + "\",\"event_type\":\"created\"}"});
        // Hold the lock across the commit so the ack order per video is known.
        std::lock_guard lk(mu);
        ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
        acked[video].push_back(id);
      }
    });
  for (auto& t : writers) t.join();
  EXPECT_EQ(relay_all(), size_t(kWriters * kPerWriter));
  EXPECT_EQ(relay_->delivered(), store_->last_outbox_seq());

  auto got = drain("comments", kWriters * kPerWriter);
  std::map<std::string, std::vector<std::string>> seen;
  uint64_t last_position = 0;
  for (auto& m : got) {
    auto h = events::parse_event_header(m.payload);
    ASSERT_TRUE(h);
    EXPECT_GT(h->position, last_position) << "positions follow the outbox order";
    last_position = h->position;
    seen[m.key].push_back(h->event_id);
  }
  EXPECT_EQ(seen, acked);
}

TEST_F(OutboxRelayTest, ACrashBetweenPublishAndPositionUpdateRedeliversAndConsumersDedupe) {
  for (int i = 0; i < 10; ++i) append("comments", "v", event("v", i));
  relay_->crash_after_publish_once();
  auto r = run_.run(relay_->relay_once());
  ASSERT_FALSE(r.ok());  // the injected crash: 7 published, position not saved
  EXPECT_EQ(relay_->delivered(), 0u);
  EXPECT_EQ(relay_->stats().published.load(), 7u);

  // Restart: the relay resumes from its saved position and publishes the 7 again; the bus
  // drops them by (producer, sequence).
  restart();
  EXPECT_EQ(relay_->delivered(), 0u);
  EXPECT_EQ(relay_all(), 10u);
  EXPECT_EQ(relay_->stats().duplicates.load(), 7u);
  EXPECT_EQ(relay_->stats().published.load(), 3u);
  auto got = drain("comments", 10);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(events::parse_event_header(got[i].payload)->event_id, "v-" + std::to_string(i));
}

// On CQL a position update that timed out may apply later: the relay then finds its stored
// position moved. It must carry on from the stored one, not fail every round (it was stuck
// with "changed concurrently" after a Cassandra freeze in the cluster fault test).
TEST_F(OutboxRelayTest, APositionMovedUnderTheRelayIsReloadedNotFatal) {
  for (int i = 0; i < 10; ++i) append("comments", "v", event("v", i));
  store::WriteSet late;  // the late write: positions 1..4 were delivered in an earlier round
  late.preconditions.push_back(store::ConsumerAt{relay_->name(), 0});
  late.mutations.push_back(store::SetConsumerPos{relay_->name(), 4});
  ASSERT_TRUE(commit_sync(*store_, std::move(late)).ok());

  auto first = run_.run(relay_->relay_once());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(relay_->delivered(), 4u) << "it continues from the stored position";
  EXPECT_EQ(relay_->stats().position_reloads.load(), 1u);
  relay_all();
  EXPECT_EQ(relay_->delivered(), store_->last_outbox_seq());
  // Entries 1..7 were published in the round that found the position moved; 5..10 again
  // after it: the bus or the consumers drop the copies.
  EXPECT_EQ(relay_->stats().published.load() + relay_->stats().duplicates.load(), 13u);
}

TEST_F(OutboxRelayTest, CopiesTheBusCannotDedupeAreDroppedByTheConsumerByEventId) {
  for (int i = 0; i < 5; ++i) append("comments", "v", event("v", i));
  std::atomic<int> handled{0};
  SubscriberOptions so{.topic = "comments", .subscription = "counter"};
  so.sub.type = events::SubscriptionType::exclusive;
  EventSubscriber sub(*bus_, "counter", so,
                      [&](const events::Message&, const events::EventHeader&) -> boost::asio::awaitable<Status> {
                        handled.fetch_add(1);
                        co_return ok_status();
                      });
  ASSERT_TRUE(sub.start().ok());
  EXPECT_EQ(relay_all(), 5u);
  // The same events again without a sequence id, as a bus without deduplication (or a
  // producer whose name changed across the crash) would store a relay's republish.
  auto out = *store_->read_outbox_entries(0, 100);
  std::vector<events::OutMessage> copies;
  for (auto& e : out) copies.push_back({e.key, events::with_position(e.payload, e.seq), 0});
  ASSERT_TRUE(run_.run(bus_->publish("comments", copies)).ok());
  ASSERT_TRUE(run_.run(bus_->publish("comments", "m", "{\"event_id\":\"marker\",\"event_type\":\"x\"}", 0)).ok());
  // Wait for the marker (the subscriber handles in order).
  while (sub.stats().handled.load() + sub.stats().duplicates.load() < 11) std::this_thread::yield();
  sub.stop();
  EXPECT_EQ(handled.load(), 6);  // 5 events + the marker, each once
  EXPECT_EQ(sub.stats().duplicates.load(), 5u);
}

TEST_F(OutboxRelayTest, TrimmingNeverDropsAnUndeliveredEvent) {
  for (int i = 0; i < 10; ++i) append("comments", "v", event("v", i));
  auto n = run_.run(relay_->relay_once());  // one round: 7 of 10
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, 7u);
  ASSERT_TRUE(store_->trim_logs(0, relay_->delivered(), 0).ok());  // the most aggressive retention
  auto left = store_->read_outbox_entries(0, 100);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 3u);
  EXPECT_EQ(left->front().seq, 8u);
  // After a restart the relay delivers the rest: all 10 arrive, once each, in order.
  restart();
  EXPECT_EQ(relay_all(), 3u);
  auto got = drain("comments", 10);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(events::parse_event_header(got[i].payload)->event_id, "v-" + std::to_string(i));
}

// The LocalBus with a switch that makes every publish fail (a broker outage), counting the
// publish calls.
class OutageBus final : public events::EventBus {
 public:
  explicit OutageBus(events::EventBus& inner) : inner_(inner) {}
  std::atomic<bool> down{false};
  std::atomic<int> publishes{0};
  const std::string& producer_name() const override { return inner_.producer_name(); }
  boost::asio::awaitable<Result<std::vector<events::PublishAck>>> publish(std::string topic,
                                                                         std::vector<events::OutMessage> msgs,
                                                                         std::string producer) override {
    publishes.fetch_add(1);
    if (down) co_return Error(Errc::unavailable, "broker away");
    co_return co_await inner_.publish(std::move(topic), std::move(msgs), std::move(producer));
  }
  using EventBus::publish;
  boost::asio::awaitable<Result<std::unique_ptr<events::Consumer>>> subscribe(std::string topic, std::string sub,
                                                                             events::SubscribeOptions o) override {
    return inner_.subscribe(std::move(topic), std::move(sub), o);
  }
  void close() override { inner_.close(); }

 private:
  events::EventBus& inner_;
};

TEST_F(OutboxRelayTest, AnOutageIsRetriedWithGrowingBackoffAndEverythingDrainsAfterIt) {
  OutageBus bus(*bus_);
  bus.down = true;
  OutboxRelay relay(*store_, bus, RelayOptions{.name = "outage", .error_backoff = std::chrono::milliseconds(1),
                                               .max_error_backoff = std::chrono::milliseconds(8)});
  ASSERT_TRUE(relay.start().ok());
  for (int i = 0; i < 12; ++i) append("comments", "v", event("v", i));
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // 1, 2, 4, 8, 8 ms: the backoff doubles up to its bound while rounds fail.
  while (relay.stats().errors.load() < 5 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  EXPECT_EQ(relay.stats().backoff_ms.load(), 8);
  EXPECT_EQ(relay.delivered(), 0u) << "a failed round moved the position";
  bus.down = false;  // the broker is back
  while (relay.delivered() < store_->last_outbox_seq() && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  relay.stop();
  EXPECT_EQ(relay.stats().backoff_ms.load(), 0);
  auto got = drain("comments", 12);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(events::parse_event_header(got[i].payload)->event_id, "v-" + std::to_string(i));
}

// A round of interleaved topics (the viral mix: a comment event between reaction events)
// publishes each topic once, in outbox order within it.
TEST_F(OutboxRelayTest, ARoundPublishesEachTopicOnceInOrderWithinIt) {
  OutageBus bus(*bus_);
  OutboxRelay relay(*store_, bus, RelayOptions{.name = "mixed", .batch_size = 100});
  ASSERT_TRUE(relay.load_position().ok());
  for (int i = 0; i < 12; ++i) append(i % 3 == 0 ? "comments" : "reactions", "k" + std::to_string(i % 2), event("m", i));
  auto n = run_.run(relay.relay_once());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 12u);
  EXPECT_EQ(bus.publishes.load(), 2) << "one publish per topic, not one per run of a topic";
  EXPECT_EQ(relay.delivered(), store_->last_outbox_seq());
  auto comments = drain("comments", 4), reactions = drain("reactions", 8);
  std::vector<std::string> c_ids, r_ids;
  for (auto& m : comments) c_ids.push_back(events::parse_event_header(m.payload)->event_id);
  for (auto& m : reactions) r_ids.push_back(events::parse_event_header(m.payload)->event_id);
  EXPECT_EQ(c_ids, (std::vector<std::string>{"m-0", "m-3", "m-6", "m-9"}));
  EXPECT_EQ(r_ids, (std::vector<std::string>{"m-1", "m-2", "m-4", "m-5", "m-7", "m-8", "m-10", "m-11"}));
}

TEST_F(OutboxRelayTest, TheRelayThreadDeliversAndStopDrains) {
  ASSERT_TRUE(relay_->start().ok());
  for (int i = 0; i < 20; ++i) append("reactions", "c" + std::to_string(i % 2), event("c", i));
  relay_->stop();  // relays what is in the outbox, then stops
  EXPECT_EQ(relay_->delivered(), store_->last_outbox_seq());
  auto got = drain("reactions", 20);
  EXPECT_EQ(got.size(), 20u);
}

// The op log read as the reactions topic's events: one event per op, keyed by its comment,
// in op order, its event id the op id, its position the op seq.
class OpLogRelayTest : public OutboxRelayTest {
 protected:
  ReactionOp op(const Uuid& comment, ReactionType type) {
    ReactionOp o;
    o.op_id = ids_.next();
    o.comment_id = comment;
    o.video_id = video_;
    o.user_id = ids_.next();
    o.type = type;
    o.timestamp = o.op_id.v7_time_ms();
    o.node_id = 3;
    return o;
  }
  // Appends the ops as the service does (the op alone); returns them with their seqs.
  std::vector<ReactionOp> append_ops(const std::vector<ReactionOp>& ops) {
    std::vector<ReactionOp> out;
    for (auto o : ops) {
      store::WriteSet ws;
      ws.mutations.push_back(store::AppendReactionOp{o});
      auto r = commit_sync(*store_, std::move(ws));
      EXPECT_TRUE(r.ok());
      if (r.ok()) o.seq = r->op_seqs.at(0);
      out.push_back(o);
    }
    return out;
  }
  std::unique_ptr<OutboxRelay> op_relay(uint64_t floor, size_t batch = 3) {
    auto r = std::make_unique<OutboxRelay>(*store_, *bus_, RelayOptions{.name = "reactions", .batch_size = batch},
                                           op_log_source(*store_, "reactions", floor));
    EXPECT_TRUE(r->load_position().ok());
    return r;
  }
  size_t relay_all(OutboxRelay& r) { return testing::relay_all(run_, r); }
  static void expect_events(const std::vector<events::Message>& got, const std::vector<ReactionOp>& ops) {
    ASSERT_EQ(got.size(), ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
      auto h = events::parse_event_header(got[i].payload);
      ASSERT_TRUE(h) << got[i].payload;
      EXPECT_EQ(got[i].key, ops[i].comment_id.str()) << i;
      EXPECT_EQ(h->event_id, ops[i].op_id.str()) << i;
      EXPECT_EQ(h->event_type, ops[i].type == ReactionType::none ? "removed" : "added") << i;
      EXPECT_EQ(h->position, ops[i].seq) << i;
      EXPECT_EQ(h->node_id, 3u) << i;
    }
  }

  ManualClock clock_;
  UuidGenerator ids_{clock_, 7};
  Uuid video_ = ids_.next();
};

TEST_F(OpLogRelayTest, EveryOpIsPublishedAsItsReactionEventInOpOrder) {
  Uuid a = ids_.next(), b = ids_.next();
  auto ops = append_ops({op(a, ReactionType::like), op(b, ReactionType::dislike), op(a, ReactionType::none),
                         op(b, ReactionType::like), op(a, ReactionType::like)});
  auto relay = op_relay(0);
  EXPECT_EQ(relay->depth(), 5u);
  EXPECT_EQ(relay_all(*relay), 5u);
  EXPECT_EQ(relay->delivered(), store_->last_op_seq());
  EXPECT_EQ(relay->depth(), 0u);
  EXPECT_EQ(store_->last_outbox_seq(), 0u) << "nothing went through the outbox";
  expect_events(drain("reactions", 5), ops);
}

TEST_F(OpLogRelayTest, AnOpRelayedAgainAfterACrashIsTheSameEvent) {
  Uuid a = ids_.next();
  auto ops = append_ops({op(a, ReactionType::like), op(a, ReactionType::dislike), op(a, ReactionType::none),
                         op(a, ReactionType::like)});
  auto relay = op_relay(0);
  relay->crash_after_publish_once();
  ASSERT_FALSE(run_.run(relay->relay_once()).ok());  // 3 published, position not saved
  relay.reset();
  restart();
  relay = op_relay(0);
  EXPECT_EQ(relay->delivered(), 0u);
  // Read twice, the log gives the same events (what a consumer dedupes on is stable).
  auto src = op_log_source(*store_, "reactions", 0);
  auto once = src.read(0, 10), twice = src.read(0, 10);
  ASSERT_TRUE(once.ok() && twice.ok());
  ASSERT_EQ(once->size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ((*once)[i].payload, (*twice)[i].payload) << i;
  EXPECT_EQ(relay_all(*relay), 4u);
  EXPECT_EQ(relay->stats().duplicates.load(), 3u) << "the bus dropped the republished copies";
  expect_events(drain("reactions", 4), ops);
}

TEST_F(OpLogRelayTest, OpsAnOlderVersionAcceptedAreNotPublishedAgain) {
  // An older version wrote these ops' events to the outbox (relayed from there).
  Uuid a = ids_.next();
  append_ops({op(a, ReactionType::like), op(a, ReactionType::none)});
  auto start = reaction_events_start(*store_);
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(*start, 3u);
  auto ops = append_ops({op(a, ReactionType::dislike), op(a, ReactionType::like)});
  // Recorded once: a later start (more ops since) finds the same.
  EXPECT_EQ(*reaction_events_start(*store_), 3u);
  restart();
  EXPECT_EQ(*reaction_events_start(*store_), 3u);

  auto relay = op_relay(*start - 1);
  EXPECT_EQ(relay->delivered(), 2u);
  EXPECT_EQ(*store_->consumer_pos(relay->name()), 2u) << "the floor is stored as the relay's position";
  EXPECT_EQ(relay_all(*relay), 2u);
  expect_events(drain("reactions", 2), ops);
  // A position already past the floor is kept.
  relay = op_relay(1);
  EXPECT_EQ(relay->delivered(), 4u);
}

TEST_F(OpLogRelayTest, AFreshStoreCarriesEveryReactionEventInTheOpLog) {
  EXPECT_EQ(*reaction_events_start(*store_), 1u);
  Uuid a = ids_.next();
  auto ops = append_ops({op(a, ReactionType::like)});
  EXPECT_EQ(*reaction_events_start(*store_), 1u);
  auto relay = op_relay(0);
  EXPECT_EQ(relay_all(*relay), 1u);
  expect_events(drain("reactions", 1), ops);
}

TEST(OpLogTrimBoundTest, AnOpGoesOnceAppliedAndDeliveredBeyondTheNewestKept) {
  EXPECT_EQ(op_log_trim_bound(10, std::nullopt, 0), 10u) << "no relay: applied is enough";
  EXPECT_EQ(op_log_trim_bound(10, std::nullopt, 4), 6u);
  EXPECT_EQ(op_log_trim_bound(10, 4, 0), 4u) << "not beyond what the relay delivered";
  EXPECT_EQ(op_log_trim_bound(3, 7, 0), 3u) << "nor beyond what the applier applied";
  EXPECT_EQ(op_log_trim_bound(10, 4, 5), 0u);
  EXPECT_EQ(op_log_trim_bound(10, 0, 0), 0u) << "a relay switched off keeps every op";
}

TEST_F(OpLogRelayTest, TrimmingNeverDropsAnUndeliveredReactionEvent) {
  Uuid a = ids_.next();
  std::vector<ReactionOp> want;
  for (int i = 0; i < 8; ++i) want.push_back(op(a, i % 2 ? ReactionType::none : ReactionType::like));
  auto ops = append_ops(want);
  auto relay = op_relay(0);
  ASSERT_EQ(*run_.run(relay->relay_once()), 3u);
  // Every op applied; the most aggressive retention.
  ASSERT_TRUE(store_->trim_logs(op_log_trim_bound(store_->last_op_seq(), relay->delivered(), 0), 0, 0).ok());
  auto left = store_->read_ops(0, 100);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 5u);
  EXPECT_EQ(left->front().seq, 4u);
  relay.reset();
  restart();
  relay = op_relay(0);
  EXPECT_EQ(relay_all(*relay), 5u);
  expect_events(drain("reactions", 8), ops);
}

}  // namespace
}  // namespace commentd::workers

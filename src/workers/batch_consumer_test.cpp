// The consumer framework on the LocalBus: BatchConsumer batching (by size, then by timeout),
// a failed batch redelivered whole; the metrics aggregation netting per comment and applying
// once per batch without counting a redelivered event twice; EventSubscriber's dead-letter
// topic for a poison message while the rest keep flowing.
#include "workers/batch_consumer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "events/event_bus_conformance.h"
#include "events/local/local_bus.h"
#include "testing/eventually.h"
#include "testing/temp_store.h"
#include "workers/event_subscriber.h"
#include "workers/metrics_aggregator.h"

namespace commentd::workers {
namespace {

using events::conformance::Runner;

using commentd::testing::eventually;

class ConsumerFrameworkTest : public ::testing::Test {
 protected:
  Runner run_;  // first: destroyed after every bus and store that posts to it
  void SetUp() override {
    store_ = *commentd::testing::open_temp_store(dir_, /*sync_writes=*/false);
    bus_ = std::make_unique<events::LocalBus>(*store_, events::LocalBusOptions{.producer_name = "t"});
  }
  void TearDown() override {
    bus_.reset();
    store_.reset();
  }
  void publish(const std::string& topic, std::vector<events::OutMessage> msgs) {
    ASSERT_TRUE(run_.run(bus_->publish(topic, std::move(msgs))).ok());
  }
  static std::string update(const std::string& id, const std::string& comment, const std::string& metric, int64_t d) {
    return metric_update_json({.event_id = id, .comment_id = comment, .video_id = "v", .metric = metric, .delta = d});
  }

  commentd::testing::TempDir dir_{"consumers"};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<events::LocalBus> bus_;
};

TEST_F(ConsumerFrameworkTest, BatchesCloseAtBatchSizeThenAtTheTimeout) {
  std::vector<events::OutMessage> msgs;
  for (int i = 0; i < 25; ++i) msgs.push_back({"k", std::to_string(i), 0});
  publish("t", msgs);
  std::mutex mu;
  std::vector<std::vector<std::string>> batches;
  BatchConsumerOptions o{.topic = "t", .subscription = "s", .batch_size = 10,
                         .batch_timeout = std::chrono::milliseconds(50)};
  BatchConsumer bc(*bus_, "batches", o, [&](const std::vector<events::Message>& b) -> boost::asio::awaitable<Status> {
    std::lock_guard lk(mu);
    batches.emplace_back();
    for (auto& m : b) batches.back().push_back(m.payload);
    co_return ok_status();
  });
  ASSERT_TRUE(bc.start().ok());
  ASSERT_TRUE(eventually([&] { return bc.stats().messages.load() == 25; }));
  bc.stop();
  std::vector<std::string> all;
  for (auto& b : batches) {
    EXPECT_LE(b.size(), 10u);
    all.insert(all.end(), b.begin(), b.end());
  }
  ASSERT_EQ(all.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(all[i], std::to_string(i));
  EXPECT_GE(batches.size(), 3u);
  EXPECT_EQ(bc.stats().batches.load(), batches.size());
}

TEST_F(ConsumerFrameworkTest, AFailedBatchIsRedeliveredWhole) {
  publish("t", {{"k", "a", 0}, {"k", "b", 0}, {"k", "c", 0}});
  std::mutex mu;
  std::multiset<std::string> handled;
  int calls = 0;
  BatchConsumerOptions o{.topic = "t", .subscription = "s", .batch_size = 3,
                         .batch_timeout = std::chrono::milliseconds(200)};
  o.sub.type = events::SubscriptionType::shared;
  o.sub.nack_delay = std::chrono::milliseconds(0);
  BatchConsumer bc(*bus_, "retry", o, [&](const std::vector<events::Message>& b) -> boost::asio::awaitable<Status> {
    std::lock_guard lk(mu);
    if (calls++ == 0) co_return Error(Errc::unavailable, "sink away");
    for (auto& m : b) handled.insert(m.payload);
    co_return ok_status();
  });
  ASSERT_TRUE(bc.start().ok());
  ASSERT_TRUE(eventually([&] { return bc.stats().messages.load() == 3; }));
  bc.stop();
  EXPECT_EQ(bc.stats().failed_batches.load(), 1u);
  EXPECT_EQ(handled, (std::multiset<std::string>{"a", "b", "c"}));
}

TEST_F(ConsumerFrameworkTest, MessagesGivenBackComeAgainAndTheRestAreAcked) {
  publish("t", {{"k", "a", 0}, {"k", "b", 0}, {"k", "c", 0}});
  std::mutex mu;
  std::multiset<std::string> handled;
  int refusals = 0;
  BatchConsumerOptions o{.topic = "t", .subscription = "s", .batch_size = 3,
                         .batch_timeout = std::chrono::milliseconds(200)};
  o.sub.type = events::SubscriptionType::shared;
  o.sub.nack_delay = std::chrono::milliseconds(0);
  // "b" is given back twice (as a reaction owner defers a comment another node holds).
  BatchConsumer bc(*bus_, "partial", o,
                   [&](const std::vector<events::Message>& b, std::vector<size_t>& give_back)
                       -> boost::asio::awaitable<Status> {
                     std::lock_guard lk(mu);
                     for (size_t i = 0; i < b.size(); ++i) {
                       if (b[i].payload == "b" && refusals < 2) {
                         ++refusals;
                         give_back.push_back(i);
                         continue;
                       }
                       handled.insert(b[i].payload);
                     }
                     co_return ok_status();
                   });
  ASSERT_TRUE(bc.start().ok());
  ASSERT_TRUE(eventually([&] { return bc.stats().messages.load() == 3; }));
  bc.stop();
  EXPECT_EQ(bc.stats().given_back.load(), 2u);
  EXPECT_EQ(bc.stats().failed_batches.load(), 0u);
  EXPECT_EQ(handled, (std::multiset<std::string>{"a", "b", "c"}));
}

TEST_F(ConsumerFrameworkTest, TheEndOfAConsumerIsReportedAfterItsLastBatch) {
  publish("t", {{"k", "a", 0}});
  std::atomic<int> handled{0}, ended{0}, ended_after{-1};
  BatchConsumerOptions o{.topic = "t", .subscription = "s", .batch_size = 1};
  o.on_consumer_end = [&] {
    ended_after = handled.load();
    ended.fetch_add(1);
  };
  BatchConsumer bc(*bus_, "ends", o, [&](const std::vector<events::Message>&) -> boost::asio::awaitable<Status> {
    handled.fetch_add(1);
    co_return ok_status();
  });
  ASSERT_TRUE(bc.start().ok());
  ASSERT_TRUE(eventually([&] { return bc.stats().messages.load() == 1; }));
  EXPECT_EQ(ended.load(), 0);
  bc.stop();
  EXPECT_EQ(ended.load(), 1);
  EXPECT_EQ(ended_after.load(), 1);
}

TEST(MetricsNetting, DeltasAreNettedPerCommentAndMetricAndZeroNetsDropped) {
  RecentIds seen(100);
  seen.insert("old");
  std::vector<events::Message> batch;
  auto add = [&](std::string payload) { batch.push_back({.payload = std::move(payload)}); };
  add(metric_update_json({"e1", "c1", "v", "likes", 1}));
  add(metric_update_json({"e2", "c1", "v", "likes", 1}));
  add(metric_update_json({"e3", "c1", "v", "likes", -1}));
  add(metric_update_json({"e4", "c1", "v", "dislikes", 1}));
  add(metric_update_json({"e5", "c2", "v", "likes", 1}));
  add(metric_update_json({"e6", "c2", "v", "likes", -1}));
  add(metric_update_json({"e1", "c1", "v", "likes", 1}));   // the same event again
  add(metric_update_json({"old", "c1", "v", "likes", 5}));  // applied in an earlier batch
  add("not json");
  auto net = net_metric_updates(batch, seen);
  EXPECT_EQ(net.deltas, (NettedMetrics{{{"c1", "likes"}, 1}, {{"c1", "dislikes"}, 1}}));
  EXPECT_EQ(net.event_ids.size(), 6u);
  EXPECT_EQ(net.duplicates, 2u);
  EXPECT_EQ(net.malformed, 1u);
  EXPECT_FALSE(parse_metric_update(R"({"event_id":"x","comment_id":"c","metric":"likes"})"));
}

TEST_F(ConsumerFrameworkTest, MetricsAggregatorAppliesOncePerBatchAndNeverTwice) {
  std::vector<events::OutMessage> msgs;
  int64_t want_c1 = 0;
  for (int i = 0; i < 40; ++i) {
    int64_t d = i % 3 == 0 ? -1 : 1;
    want_c1 += d;
    msgs.push_back({"c1", update("e" + std::to_string(i), "c1", "likes", d), 0});
    msgs.push_back({"c2", update("f" + std::to_string(i), "c2", "likes", i % 2 ? 1 : -1), 0});  // nets to 0
  }
  publish("metrics", msgs);
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, int64_t> applied;
  int sink_calls = 0;
  MetricsAggregatorStats stats;
  BatchConsumerOptions o{.topic = "metrics", .subscription = "agg", .batch_size = 20,
                         .batch_timeout = std::chrono::milliseconds(100)};
  o.sub.nack_delay = std::chrono::milliseconds(0);
  auto agg = make_metrics_aggregator(
      *bus_, o,
      [&](const NettedMetrics& n) -> boost::asio::awaitable<Status> {
        std::lock_guard lk(mu);
        if (sink_calls++ == 1) co_return Error(Errc::unavailable, "store away");  // a batch comes back
        for (auto& [k, d] : n) applied[k] += d;
        co_return ok_status();
      },
      stats);
  ASSERT_TRUE(agg->start().ok());
  ASSERT_TRUE(eventually([&] { return stats.events.load() == 80; }));
  // The same events published again (a republish the bus could not deduplicate).
  publish("metrics", {msgs[0], msgs[1], {"m", update("marker", "c3", "likes", 1), 0}});
  ASSERT_TRUE(eventually([&] { return stats.events.load() == 81; }));
  agg->stop();
  using Key = std::pair<std::string, std::string>;
  EXPECT_EQ(applied[Key("c1", "likes")], want_c1);
  EXPECT_EQ(applied[Key("c2", "likes")], 0);  // nets to zero over the run
  EXPECT_EQ(applied[Key("c3", "likes")], 1);
  EXPECT_EQ(stats.duplicates.load(), 2u);
  EXPECT_EQ(agg->stats().failed_batches.load(), 1u);
  // One sink call per applied batch: 80 updates in batches of at most 20 (plus the failed one
  // and the marker's).
  EXPECT_LE(stats.applies.load(), agg->stats().batches.load());
  EXPECT_GE(agg->stats().batches.load(), 5u);
}

TEST_F(ConsumerFrameworkTest, APoisonEventGoesToTheDeadLetterTopicAndTheRestFlow) {
  auto ev = [](const std::string& id) { return "{\"event_id\":\"" + id + "\",\"event_type\":\"updated\"}"; };
  publish("comments", {{"v", ev("a"), 0}, {"v", ev("poison"), 0}, {"v", ev("b"), 0}, {"v", ev("c"), 0}});
  std::mutex mu;
  std::vector<std::string> handled;
  int poison_tries = 0;
  SubscriberOptions so{.topic = "comments", .subscription = "s", .dead_letter_topic = "comments-dlq",
                       .max_deliveries = 3};
  so.sub.type = events::SubscriptionType::shared;
  so.sub.nack_delay = std::chrono::milliseconds(0);
  EventSubscriber sub(*bus_, "dlq", so,
                      [&](const events::Message&, const events::EventHeader& h) -> boost::asio::awaitable<Status> {
                        std::lock_guard lk(mu);
                        if (h.event_id == "poison") {
                          poison_tries++;
                          co_return Error(Errc::unprocessable, "cannot handle");
                        }
                        handled.push_back(h.event_id);
                        co_return ok_status();
                      });
  ASSERT_TRUE(sub.start().ok());
  ASSERT_TRUE(eventually([&] { return sub.stats().dead_lettered.load() == 1 && sub.stats().handled.load() == 3; }));
  sub.stop();
  EXPECT_EQ(poison_tries, 3);
  std::sort(handled.begin(), handled.end());
  EXPECT_EQ(handled, (std::vector<std::string>{"a", "b", "c"}));
  auto dlq = *run_.run(bus_->subscribe("comments-dlq", "check", {}));
  auto m = run_.run(dlq->receive());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->payload, ev("poison"));
  EXPECT_EQ(m->key, "v");
}

}  // namespace
}  // namespace commentd::workers

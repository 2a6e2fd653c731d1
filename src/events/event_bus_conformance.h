// The EventBus contract as a typed test suite (STYLE.md #16). Every implementation runs it:
//
//   struct MyFactory {
//     MyFactory();                      // a bus over fresh durable state
//     EventBus& bus();
//     void restart();                   // close the bus, open a new one over the same state
//     static void require();            // optional: GTEST_SKIP()s or FAIL()s when the
//   };                                  //   implementation's server is not configured
//   INSTANTIATE_TYPED_TEST_SUITE_P(Mine, EventBusConformance, ::testing::Types<MyFactory>);
//
// Waits are on events (a message arriving, a publish completing), bounded by a generous
// timeout only so that a broken implementation fails instead of hanging.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "events/event_bus.h"

namespace commentd::events::conformance {

// Runs awaitables on a thread of its own and waits for their results. Declare it before
// (destroy it after) every bus or store whose threads post completions to it: destroying an
// io_context while another thread may still be in post() on it is a race (TSan found it).
class Runner {
 public:
  Runner() : thread_([this] { ioc_.run(); }) {}
  ~Runner() {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  template <class T>
  T run(asio::awaitable<T> aw) {
    std::promise<T> p;
    auto f = p.get_future();
    asio::co_spawn(
        ioc_,
        [aw = std::move(aw), &p]() mutable -> asio::awaitable<void> { p.set_value(co_await std::move(aw)); },
        asio::detached);
    if (f.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      ADD_FAILURE() << "an event-bus operation did not complete";
      std::abort();  // the awaitable still refers to the test's state
    }
    return f.get();
  }
  asio::io_context& ioc() { return ioc_; }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ioc_.get_executor()};
  std::thread thread_;
};

template <class Factory>
class EventBusConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    if constexpr (requires { Factory::require(); }) Factory::require();
  }
  Runner run_;  // first: destroyed after the bus
  std::unique_ptr<Factory> f_ = std::make_unique<Factory>();
  EventBus& bus() { return f_->bus(); }
  std::string topic(const std::string& name) { return "conformance-" + name; }

  std::vector<PublishAck> publish(const std::string& t, std::vector<OutMessage> msgs, std::string producer = {}) {
    auto r = run_.run(bus().publish(t, std::move(msgs), std::move(producer)));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : std::vector<PublishAck>{};
  }
  std::unique_ptr<Consumer> subscribe(const std::string& t, const std::string& sub, SubscribeOptions o = {}) {
    o.nack_delay = std::chrono::milliseconds(0);
    auto r = run_.run(bus().subscribe(t, sub, o));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(*r) : nullptr;
  }
  Message receive(Consumer& c) {
    auto r = run_.run(c.receive());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : Message{};
  }
  void ack(Consumer& c, const Message& m) { EXPECT_TRUE(run_.run(c.ack(m)).ok()); }
};

TYPED_TEST_SUITE_P(EventBusConformance);

TYPED_TEST_P(EventBusConformance, PublishesInOrderAndDeliversInOrder) {
  auto t = this->topic("order");
  std::vector<OutMessage> msgs;
  for (int i = 0; i < 10; ++i) msgs.push_back({"k" + std::to_string(i % 3), "p" + std::to_string(i), 0});
  auto acks = this->publish(t, msgs);
  ASSERT_EQ(acks.size(), 10u);
  for (size_t i = 1; i < acks.size(); ++i) EXPECT_GT(acks[i].message_id, acks[i - 1].message_id);
  auto c = this->subscribe(t, "s");
  for (int i = 0; i < 10; ++i) {
    auto m = this->receive(*c);
    EXPECT_EQ(m.payload, "p" + std::to_string(i));
    EXPECT_EQ(m.key, "k" + std::to_string(i % 3));
    EXPECT_EQ(m.topic, t);
    EXPECT_EQ(m.message_id, acks[i].message_id);
    this->ack(*c, m);
  }
}

TYPED_TEST_P(EventBusConformance, DeduplicatesByProducerAndSequence) {
  if (!this->bus().capabilities().dedup_by_sequence)
    GTEST_SKIP() << "this bus does not declare dedup_by_sequence (consumers dedup by event id)";
  auto t = this->topic("dedup");
  const std::string relay = "relay-" + t;  // one sequence's producer name, the same across restarts
  auto a = this->publish(t, {{"k", "1", 1}, {"k", "2", 2}, {"k", "3", 3}}, relay);
  ASSERT_EQ(a.size(), 3u);
  for (auto& x : a) EXPECT_FALSE(x.duplicate);
  // A relay that crashed after publishing and before saving its position publishes again.
  auto b = this->publish(t, {{"k", "2", 2}, {"k", "3", 3}, {"k", "4", 4}}, relay);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_TRUE(b[0].duplicate);
  EXPECT_TRUE(b[1].duplicate);
  EXPECT_FALSE(b[2].duplicate);
  this->f_->restart();  // the dedup state is durable
  auto d = this->publish(t, {{"k", "4", 4}, {"k", "5", 5}}, relay);
  EXPECT_TRUE(d.at(0).duplicate);
  EXPECT_FALSE(d.at(1).duplicate);
  // Another producer name is another sequence: its 1 is new.
  auto e = this->publish(t, {{"k", "other-1", 1}}, relay + "-other");
  EXPECT_FALSE(e.at(0).duplicate);
  auto c = this->subscribe(t, "s");
  for (const char* want : {"1", "2", "3", "4", "5", "other-1"}) {
    auto m = this->receive(*c);
    EXPECT_EQ(m.payload, want);
    EXPECT_EQ(m.producer, std::string(want) == "other-1" ? relay + "-other" : relay);
    this->ack(*c, m);
  }
}

TYPED_TEST_P(EventBusConformance, WithoutDedupARepublishIsStoredAgain) {
  if (this->bus().capabilities().dedup_by_sequence) GTEST_SKIP() << "covered by DeduplicatesByProducerAndSequence";
  auto t = this->topic("nodedup");
  auto a = this->publish(t, {{"k", "1", 1}, {"k", "2", 2}});
  auto b = this->publish(t, {{"k", "2", 2}});
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_FALSE(b[0].duplicate) << "a bus without dedup_by_sequence reported a duplicate";
  EXPECT_GT(b[0].message_id, a[1].message_id);
  auto c = this->subscribe(t, "s");
  for (const char* want : {"1", "2", "2"}) {
    auto m = this->receive(*c);
    EXPECT_EQ(m.payload, want);
    this->ack(*c, m);
  }
}

TYPED_TEST_P(EventBusConformance, UnackedMessagesAreRedeliveredAfterARestart) {
  auto t = this->topic("restart");
  this->publish(t, {{"a", "1", 0}, {"b", "2", 0}, {"c", "3", 0}, {"d", "4", 0}, {"e", "5", 0}});
  {
    auto c = this->subscribe(t, "s", {.type = SubscriptionType::shared});
    std::vector<Message> got;
    for (int i = 0; i < 5; ++i) got.push_back(this->receive(*c));
    this->ack(*c, got[0]);
    this->ack(*c, got[1]);
    this->ack(*c, got[3]);
  }
  this->f_->restart();
  this->publish(t, {{"z", "marker", 0}});
  auto c = this->subscribe(t, "s", {.type = SubscriptionType::shared});
  if (this->bus().capabilities().individual_acks) {
    // Exactly the unacked two and the marker, in any order: on a shared subscription the
    // broker hands the old consumer's unacked messages to the new one when the old one's
    // close lands, which may be after it dispatched the marker (Pulsar closes asynchronously).
    std::multiset<std::string> got;
    for (int i = 0; i < 3; ++i) got.insert(this->receive(*c).payload);
    EXPECT_EQ(got, (std::multiset<std::string>{"3", "5", "marker"})) << "an acknowledged message came back";
    return;
  }
  // Acks in groups: acked messages of a partly acked group may come back, unacked ones must.
  std::multiset<std::string> before_marker;
  for (std::string p; (p = this->receive(*c).payload) != "marker";) before_marker.insert(p);
  EXPECT_EQ(before_marker.count("3"), 1u);
  EXPECT_EQ(before_marker.count("5"), 1u);
  EXPECT_LE(before_marker.size(), 5u);
}

TYPED_TEST_P(EventBusConformance, NackRedelivers) {
  auto t = this->topic("nack");
  this->publish(t, {{"k", "only", 0}});
  auto c = this->subscribe(t, "s");
  auto m = this->receive(*c);
  EXPECT_EQ(m.redelivery_count, 0u);
  EXPECT_TRUE(this->run_.run(c->nack(m)).ok());
  auto again = this->receive(*c);
  EXPECT_EQ(again.payload, "only");
  EXPECT_EQ(again.message_id, m.message_id);
  EXPECT_EQ(again.redelivery_count, 1u);
  this->ack(*c, again);
}

TYPED_TEST_P(EventBusConformance, KeySharedConsumersSplitKeysAndKeepPerKeyOrder) {
  if (!this->bus().capabilities().key_shared_per_message)
    GTEST_SKIP() << "this bus dispatches groups of messages whole (key_shared_per_message is false)";
  auto t = this->topic("keyshared");
  auto c1 = this->subscribe(t, "group");
  auto c2 = this->subscribe(t, "group");
  constexpr int kKeys = 20, kPerKey = 10;
  std::vector<OutMessage> msgs;
  for (int i = 0; i < kPerKey; ++i)
    for (int k = 0; k < kKeys; ++k) msgs.push_back({"key" + std::to_string(k), std::to_string(i), 0});
  this->publish(t, msgs);
  // Both consumers drain concurrently, each acking what it takes.
  std::map<std::string, std::vector<int>> seen[2];
  std::atomic<int> total{0};
  auto drain = [&](Consumer& c, std::map<std::string, std::vector<int>>& out) -> asio::awaitable<int> {
    int n = 0;
    while (total.load() < kKeys * kPerKey) {
      auto m = co_await c.receive();
      if (!m) co_return n;
      out[m->key].push_back(std::stoi(m->payload));
      ++n;
      ++total;
      co_await c.ack(*m);
    }
    co_return n;
  };
  auto f1 = asio::co_spawn(this->run_.ioc(), drain(*c1, seen[0]), asio::use_future);
  auto f2 = asio::co_spawn(this->run_.ioc(), drain(*c2, seen[1]), asio::use_future);
  // Whichever finishes first leaves the other waiting: closing it ends its receive.
  while (total.load() < kKeys * kPerKey &&
         f1.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready &&
         f2.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
  }
  c1->close();
  c2->close();
  int n1 = f1.get(), n2 = f2.get();
  EXPECT_EQ(n1 + n2, kKeys * kPerKey);
  EXPECT_GT(n1, 0) << "consumer 1 got no work";
  EXPECT_GT(n2, 0) << "consumer 2 got no work";
  for (int k = 0; k < kKeys; ++k) {
    std::string key = "key" + std::to_string(k);
    bool on1 = seen[0].count(key), on2 = seen[1].count(key);
    EXPECT_NE(on1, on2) << key << " went to both consumers without a rebalance";
    auto& v = on1 ? seen[0][key] : seen[1][key];
    ASSERT_EQ(v.size(), size_t(kPerKey)) << key;
    for (int i = 0; i < kPerKey; ++i) EXPECT_EQ(v[i], i) << key << " out of order";
  }
}

TYPED_TEST_P(EventBusConformance, AClosedConsumersMessagesGoToTheOthers) {
  auto t = this->topic("handover");
  auto c1 = this->subscribe(t, "group");
  this->publish(t, {{"k", "1", 0}, {"k", "2", 0}});
  auto m1 = this->receive(*c1);
  EXPECT_EQ(m1.payload, "1");
  auto c2 = this->subscribe(t, "group");
  c1->close();  // without acking
  auto r1 = this->receive(*c2);
  auto r2 = this->receive(*c2);
  EXPECT_EQ(r1.payload, "1");
  EXPECT_GE(r1.redelivery_count, 1u);
  EXPECT_EQ(r2.payload, "2");
}

TYPED_TEST_P(EventBusConformance, ExclusiveRefusesASecondConsumer) {
  auto t = this->topic("exclusive");
  auto c1 = this->subscribe(t, "only", {.type = SubscriptionType::exclusive});
  auto r = this->run_.run(this->bus().subscribe(t, "only", {.type = SubscriptionType::exclusive}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  c1->close();
}

TYPED_TEST_P(EventBusConformance, LatestStartsAfterTheLastMessage) {
  auto t = this->topic("latest");
  this->publish(t, {{"k", "old", 0}});
  auto c = this->subscribe(t, "s", {.initial = InitialPosition::latest});
  this->publish(t, {{"k", "new", 0}});
  EXPECT_EQ(this->receive(*c).payload, "new");
}

TYPED_TEST_P(EventBusConformance, SubscriptionsAreIndependent) {
  auto t = this->topic("fanout");
  this->publish(t, {{"k", "x", 0}});
  auto a = this->subscribe(t, "a");
  auto b = this->subscribe(t, "b");
  auto ma = this->receive(*a);
  this->ack(*a, ma);
  EXPECT_EQ(this->receive(*b).payload, "x") << "an ack on one subscription consumed another's message";
}

TYPED_TEST_P(EventBusConformance, AClosedBusAnswersUnavailable) {
  auto t = this->topic("closed");
  auto c = this->subscribe(t, "s");
  this->bus().close();
  auto r = this->run_.run(c->receive());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  auto p = this->run_.run(this->bus().publish(t, "k", "v", 0));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::unavailable);
}

REGISTER_TYPED_TEST_SUITE_P(EventBusConformance, PublishesInOrderAndDeliversInOrder,
                            DeduplicatesByProducerAndSequence, WithoutDedupARepublishIsStoredAgain,
                            UnackedMessagesAreRedeliveredAfterARestart,
                            NackRedelivers, KeySharedConsumersSplitKeysAndKeepPerKeyOrder,
                            AClosedConsumersMessagesGoToTheOthers, ExclusiveRefusesASecondConsumer,
                            LatestStartsAfterTheLastMessage, SubscriptionsAreIndependent,
                            AClosedBusAnswersUnavailable);

}  // namespace commentd::events::conformance

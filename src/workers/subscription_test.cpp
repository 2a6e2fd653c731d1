// The subscription runner shared by EventSubscriber and BatchConsumer, on the LocalBus behind
// a fault-injecting bus: a broker-side failure at start (Pulsar's "not enough bookies" came
// back as a server error, not as unavailable, and failed a node's start-up) is retried in the
// background; an error no retry can fix fails start(); a consumer the bus ends (the broker
// went away) is replaced, for both consumer kinds, and nothing published after it is lost.
#include "workers/subscription.h"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "events/event_bus_conformance.h"
#include "events/local/local_bus.h"
#include "testing/eventually.h"
#include "testing/temp_store.h"
#include "workers/batch_consumer.h"
#include "workers/event_subscriber.h"

namespace commentd::workers {
namespace {

namespace asio = boost::asio;
using events::conformance::Runner;

using commentd::testing::eventually;

// The LocalBus, with subscribe failures on demand and consumers that can be ended from
// outside (as a broker that goes away ends them).
class FaultyBus final : public events::EventBus {
 public:
  explicit FaultyBus(events::EventBus& inner) : inner_(inner) {}

  void fail_next_subscribes(int n, Error e) {
    std::lock_guard lk(mu_);
    failures_left_ = n;
    failure_ = std::move(e);
  }
  // Every subscribe waits `d` before it is answered (a broker slow to answer, or away).
  void delay_subscribes(std::chrono::milliseconds d) {
    std::lock_guard lk(mu_);
    delay_ = d;
  }
  // Ends every live consumer: a pending receive() fails, later ones too.
  void end_consumers() {
    std::lock_guard lk(mu_);
    for (auto* c : live_) c->end();
  }
  int subscribes() {
    std::lock_guard lk(mu_);
    return subscribes_;
  }

  const std::string& producer_name() const override { return inner_.producer_name(); }
  asio::awaitable<Result<std::vector<events::PublishAck>>> publish(std::string topic, std::vector<events::OutMessage> msgs,
                                                                   std::string producer) override {
    co_return co_await inner_.publish(std::move(topic), std::move(msgs), std::move(producer));
  }
  using EventBus::publish;
  asio::awaitable<Result<std::unique_ptr<events::Consumer>>> subscribe(std::string topic, std::string subscription,
                                                                       events::SubscribeOptions opts) override {
    std::chrono::milliseconds delay;
    {
      std::lock_guard lk(mu_);
      delay = delay_;
    }
    if (delay.count() > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, delay);
      co_await t.async_wait(asio::use_awaitable);
    }
    {
      std::lock_guard lk(mu_);
      subscribes_++;
      if (failures_left_ > 0) {
        failures_left_--;
        co_return *failure_;
      }
    }
    auto c = co_await inner_.subscribe(std::move(topic), std::move(subscription), opts);
    if (!c) co_return c.take_error();
    co_return std::unique_ptr<events::Consumer>(std::make_unique<Ended>(*this, std::move(*c)));
  }
  void close() override { inner_.close(); }

 private:
  class Ended final : public events::Consumer {
   public:
    Ended(FaultyBus& bus, std::unique_ptr<events::Consumer> inner) : bus_(bus), inner_(std::move(inner)) {
      std::lock_guard lk(bus_.mu_);
      bus_.live_.insert(this);
    }
    ~Ended() override {
      std::lock_guard lk(bus_.mu_);
      bus_.live_.erase(this);
    }
    void end() {  // REQUIRES: bus_.mu_ held
      ended_ = true;
      inner_->close();
    }
    asio::awaitable<Result<events::Message>> receive() override {
      if (ended_) co_return Error(Errc::unavailable, "ended by the bus");
      co_return co_await inner_->receive();
    }
    asio::awaitable<Status> ack(const events::Message& m) override { co_return co_await inner_->ack(m); }
    asio::awaitable<Status> nack(const events::Message& m) override { co_return co_await inner_->nack(m); }
    void close() override { inner_->close(); }

   private:
    FaultyBus& bus_;
    std::unique_ptr<events::Consumer> inner_;
    std::atomic<bool> ended_{false};
  };

  events::EventBus& inner_;
  std::mutex mu_;
  int failures_left_ = 0;
  std::optional<Error> failure_;
  int subscribes_ = 0;
  std::chrono::milliseconds delay_{0};
  std::set<Ended*> live_;
};

struct Seen {
  std::mutex mu;
  std::multiset<std::string> ids;
  size_t count(const std::string& id) {
    std::lock_guard lk(mu);
    return ids.count(id);
  }
  size_t size() {
    std::lock_guard lk(mu);
    return ids.size();
  }
};

class SubscriptionTest : public ::testing::Test {
 protected:
  Runner run_;  // first: destroyed after every bus and store that posts to it
  void SetUp() override {
    store_ = *commentd::testing::open_temp_store(dir_, /*sync_writes=*/false);
    local_ = std::make_unique<events::LocalBus>(*store_, events::LocalBusOptions{.producer_name = "t"});
    bus_ = std::make_unique<FaultyBus>(*local_);
  }
  void TearDown() override {
    bus_.reset();
    local_.reset();
    store_.reset();
  }
  void publish(const std::string& id) {
    ASSERT_TRUE(run_.run(bus_->publish("t", {{"k", "{\"event_id\":\"" + id + "\",\"event_type\":\"x\"}", 0}})).ok());
  }
  SubscriberOptions subscriber_options() {
    SubscriberOptions so{.topic = "t", .subscription = "s", .resubscribe_backoff = std::chrono::milliseconds(1)};
    so.sub.type = events::SubscriptionType::shared;
    return so;
  }
  // An EventSubscriber on "t" that records each event id it handles in `seen`.
  std::unique_ptr<EventSubscriber> recording_subscriber(Seen& seen, std::optional<SubscriberOptions> so = {}) {
    return std::make_unique<EventSubscriber>(
        *bus_, "sub", so ? *so : subscriber_options(),
        [&seen](const events::Message&, const events::EventHeader& h) -> asio::awaitable<Status> {
          std::lock_guard lk(seen.mu);
          seen.ids.insert(h.event_id);
          co_return ok_status();
        });
  }

  commentd::testing::TempDir dir_{"subscription"};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<events::LocalBus> local_;
  std::unique_ptr<FaultyBus> bus_;
};

TEST_F(SubscriptionTest, ABrokerSideFailureAtStartIsRetriedInTheBackground) {
  // As the bridge reports Pulsar's ManagedLedgerException ("not enough non-faulty bookies").
  bus_->fail_next_subscribes(3, Error(Errc::internal, "server: PersistenceError", "bridge_server"));
  Seen seen;
  auto sub_ptr = recording_subscriber(seen);
  auto& sub = *sub_ptr;
  ASSERT_TRUE(sub.start().ok());
  publish("a");
  ASSERT_TRUE(eventually([&] { return seen.count("a") == 1; }));
  EXPECT_EQ(sub.stats().subscribe_errors.load(), 3u);
  EXPECT_EQ(bus_->subscribes(), 4);
  sub.stop();
}

TEST_F(SubscriptionTest, AnErrorNoRetryCanFixFailsStart) {
  bus_->fail_next_subscribes(1, Error(Errc::internal, "auth: token refused", "bridge_auth"));
  EventSubscriber sub(*bus_, "sub", subscriber_options(),
                      [](const events::Message&, const events::EventHeader&) -> asio::awaitable<Status> {
                        co_return ok_status();
                      });
  auto s = sub.start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().client_code(), "bridge_auth");
  EXPECT_EQ(bus_->subscribes(), 1);
}

// A subscribe the broker does not answer within startup_wait (a broker that is away: the bus
// would wait out its connect timeout) goes on in the background; the start does not wait.
TEST_F(SubscriptionTest, ASubscribeStillWaitingAfterStartupWaitDoesNotHoldTheStart) {
  bus_->delay_subscribes(std::chrono::milliseconds(1500));
  auto so = subscriber_options();
  so.startup_wait = std::chrono::milliseconds(100);
  Seen seen;
  auto sub_ptr = recording_subscriber(seen, so);
  auto& sub = *sub_ptr;
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(sub.start().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  EXPECT_EQ(bus_->subscribes(), 0) << "the subscribe was still waiting";
  publish("a");
  ASSERT_TRUE(eventually([&] { return seen.count("a") == 1; }));
  EXPECT_EQ(bus_->subscribes(), 1);
  EXPECT_EQ(sub.stats().subscribe_errors.load(), 0u);
  sub.stop();
}

// An error no retry can fix, answered after the start went on, cannot fail the start: it is
// counted, logged as an error, and retried like any other.
TEST_F(SubscriptionTest, AnErrorNoRetryCanFixAnsweredAfterTheStartIsRetried) {
  bus_->delay_subscribes(std::chrono::milliseconds(300));
  bus_->fail_next_subscribes(1, Error(Errc::internal, "auth: token refused", "bridge_auth"));
  auto so = subscriber_options();
  so.startup_wait = std::chrono::milliseconds(50);
  Seen seen;
  auto sub_ptr = recording_subscriber(seen, so);
  auto& sub = *sub_ptr;
  ASSERT_TRUE(sub.start().ok());
  publish("a");
  ASSERT_TRUE(eventually([&] { return seen.count("a") == 1; }));
  EXPECT_EQ(sub.stats().subscribe_errors.load(), 1u);
  EXPECT_EQ(bus_->subscribes(), 2);
  sub.stop();
}

// stop() right after a start that went on without its subscribe: prompt, nothing left behind.
TEST_F(SubscriptionTest, StopWhileTheFirstSubscribeStillWaitsReturns) {
  bus_->delay_subscribes(std::chrono::milliseconds(300));
  auto so = subscriber_options();
  so.startup_wait = std::chrono::milliseconds(20);
  EventSubscriber sub(*bus_, "sub", so, [](const events::Message&, const events::EventHeader&) -> asio::awaitable<Status> {
    co_return ok_status();
  });
  ASSERT_TRUE(sub.start().ok());
  sub.stop();  // waits for the subscribe in flight (the bus bounds it), then ends
  EXPECT_EQ(bus_->subscribes(), 1);
}

TEST_F(SubscriptionTest, EventSubscriberReplacesAConsumerTheBusEnded) {
  Seen seen;
  auto sub_ptr = recording_subscriber(seen);
  auto& sub = *sub_ptr;
  ASSERT_TRUE(sub.start().ok());
  publish("before");
  ASSERT_TRUE(eventually([&] { return seen.count("before") == 1; }));
  bus_->fail_next_subscribes(2, Error(Errc::unavailable, "connection refused"));
  bus_->end_consumers();
  publish("after");
  ASSERT_TRUE(eventually([&] { return seen.count("after") == 1; }));
  EXPECT_EQ(sub.stats().resubscribes.load(), 1u);
  EXPECT_EQ(sub.stats().subscribe_errors.load(), 2u);
  EXPECT_EQ(seen.count("before"), 1u);  // acked before the end: not handled again
  sub.stop();
}

TEST_F(SubscriptionTest, BatchConsumerReplacesAConsumerTheBusEnded) {
  Seen seen;
  BatchConsumerOptions bo{.topic = "t", .subscription = "b", .batch_size = 10,
                          .batch_timeout = std::chrono::milliseconds(1),
                          .resubscribe_backoff = std::chrono::milliseconds(1)};
  bo.sub.type = events::SubscriptionType::shared;
  BatchConsumer bc(*bus_, "batch", bo, [&](const std::vector<events::Message>& batch) -> asio::awaitable<Status> {
    std::lock_guard lk(seen.mu);
    for (auto& m : batch) seen.ids.insert(m.payload);
    co_return ok_status();
  });
  auto payload = [](const std::string& id) { return "{\"event_id\":\"" + id + "\",\"event_type\":\"x\"}"; };
  ASSERT_TRUE(bc.start().ok());
  publish("before");
  ASSERT_TRUE(eventually([&] { return seen.count(payload("before")) >= 1; }));
  bus_->end_consumers();
  publish("after");  // (a batch whose ack the end cut off comes back too: at-least-once)
  ASSERT_TRUE(eventually([&] { return seen.count(payload("after")) >= 1; }));
  EXPECT_EQ(bc.stats().resubscribes.load(), 1u);
  bc.stop();
}

TEST_F(SubscriptionTest, StopDuringTheBackgroundRetriesReturnsPromptly) {
  bus_->fail_next_subscribes(1000000, Error(Errc::unavailable, "broker away"));
  auto so = subscriber_options();
  so.resubscribe_backoff = std::chrono::milliseconds(200);
  EventSubscriber sub(*bus_, "sub", so,
                      [](const events::Message&, const events::EventHeader&) -> asio::awaitable<Status> {
                        co_return ok_status();
                      });
  ASSERT_TRUE(sub.start().ok());
  ASSERT_TRUE(eventually([&] { return sub.stats().subscribe_errors.load() >= 2; }));
  sub.stop();  // the backoff timer is cancelled: the test would hang here otherwise
  const int after = bus_->subscribes();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(bus_->subscribes(), after);
}

}  // namespace
}  // namespace commentd::workers

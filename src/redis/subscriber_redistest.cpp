// The Subscriber against a real Redis (single node): every message published is applied, in
// order, and a look after the message reached the socket applies it first; if_unchanged
// refuses a read that a message about its key overtook and keeps one that only other keys'
// messages passed; a killed subscription drops the copies (on_reset), is not current while
// down, and comes back by itself; an unreachable Redis is never current; PINGs keep a quiet
// subscription current.
#include "redis/subscriber.h"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/tls.h"
#include "redis/test_env.h"

namespace commentd::redis {
namespace {

using namespace std::chrono_literals;
using testenv::kSingle;

class SubscriberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nodes_ = testenv::nodes_from_env(kSingle);
    if (nodes_.empty()) {
      if (testing::servers_required()) GTEST_FAIL() << kSingle << " is not set";
      GTEST_SKIP() << kSingle << " is not set";
    }
    client_ = std::make_unique<Client>(loop_.ex(), ClientOptions{.nodes = nodes_});
  }
  std::unique_ptr<Subscriber> start(uint16_t port = 0) {
    SubscriberOptions o{.host = nodes_[0].first, .port = port ? port : nodes_[0].second, .channel = channel_};
    return std::make_unique<Subscriber>(
        o,
        [this](std::string_view m) {
          got_.emplace_back(m);  // under the subscriber's lock
        },
        [this] { resets_++; });
  }
  // Waits (up to 10 s) for the subscription to be current.
  static bool wait_current(Subscriber& s) {
    for (int i = 0; i < 1000; ++i) {
      if (s.with_current([] {})) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  Reply command(std::vector<std::string> args) {
    auto r = loop_.run(client_->command(std::move(args), Deadline::after(5s)));
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : Reply{};
  }
  void publish(const std::string& m) { command({"PUBLISH", channel_, m}); }
  // The messages applied so far (read under the subscriber's lock).
  std::vector<std::string> applied(Subscriber& s) {
    std::vector<std::string> out;
    s.with_current([&] { out = got_; });
    return out;
  }

  testenv::Loop loop_{1};
  std::vector<std::pair<std::string, uint16_t>> nodes_;
  std::unique_ptr<Client> client_;
  const std::string channel_ = testenv::unique_prefix() + "changes";
  std::vector<std::string> got_;  // GUARDED_BY(the subscriber's lock)
  std::atomic<int> resets_{0};
};

TEST_F(SubscriberTest, EveryMessageIsAppliedInOrderAndALookAppliesWhatTheSocketHolds) {
  auto s = start();
  ASSERT_TRUE(wait_current(*s));
  // Redis writes a PUBLISH's reply and the message to the subscriber in the same turn of its
  // event loop (the reply first: its pending-write list is last in, first out), so the look
  // right after the reply mostly finds the message there; count how often, and see every
  // message arrive, in order.
  constexpr int kN = 500;
  int at_once = 0;
  for (int i = 0; i < kN; ++i) {
    publish("k" + std::to_string(i));
    auto seen = applied(*s);
    if (!seen.empty() && seen.back() == "k" + std::to_string(i)) at_once++;
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 500 && seen.size() < kN; ++i) {
    seen = applied(*s);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(seen.size(), size_t(kN));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(seen[i], "k" + std::to_string(i));
  EXPECT_EQ(s->stats().messages.load(), uint64_t(kN));
  std::printf("[ measured ] %d of %d messages applied by the look right after their PUBLISH's reply\n", at_once, kN);
  EXPECT_GT(at_once, kN / 2);
}

TEST_F(SubscriberTest, AReadOvertakenByAMessageAboutItsKeyIsNotKept) {
  auto s = start();
  ASSERT_TRUE(wait_current(*s));
  Subscriber::Mark m;
  ASSERT_TRUE(s->with_current([] {}, &m));
  ASSERT_TRUE(m.current);
  // Only other keys changed since the mark: kept.
  publish("other-1");
  publish("other-2");
  while (applied(*s).size() < 2) std::this_thread::sleep_for(1ms);
  bool ran = false;
  EXPECT_TRUE(s->if_unchanged(m, "mine", [&] { ran = true; }));
  EXPECT_TRUE(ran);
  // A message about the key came since the mark: refused.
  publish("mine");
  while (applied(*s).size() < 3) std::this_thread::sleep_for(1ms);
  ran = false;
  EXPECT_FALSE(s->if_unchanged(m, "mine", [&] { ran = true; }));
  EXPECT_FALSE(ran);
  // A change noted by this process itself counts as such a message.
  Subscriber::Mark m2;
  ASSERT_TRUE(s->with_current([] {}, &m2));
  bool noted = false;
  s->note("mine", [&] { noted = true; });
  EXPECT_TRUE(noted);
  EXPECT_FALSE(s->if_unchanged(m2, "mine", [] {}));
  EXPECT_TRUE(s->if_unchanged(m2, "yours", [] {}));
  // A mark taken while not current never admits.
  EXPECT_FALSE(s->if_unchanged(Subscriber::Mark{m2.epoch, m2.seq, false}, "yours", [] {}));
}

TEST_F(SubscriberTest, AKilledSubscriptionDropsTheCopiesAndComesBackByItself) {
  auto s = start();
  ASSERT_TRUE(wait_current(*s));
  // Another subscription on the same Redis (a bystander, as other tests' and nodes' are): the
  // kill below names this one's address, so the bystander keeps its own.
  std::atomic<int> bystander_resets{0};
  Subscriber bystander(SubscriberOptions{.host = nodes_[0].first, .port = nodes_[0].second, .channel = channel_ + ":b"},
                       [](std::string_view) {}, [&bystander_resets] { bystander_resets++; });
  ASSERT_TRUE(wait_current(bystander));
  Subscriber::Mark before;
  ASSERT_TRUE(s->with_current([] {}, &before));
  const std::string addr = s->local_address();
  ASSERT_FALSE(addr.empty());
  EXPECT_EQ(command({"CLIENT", "KILL", "ADDR", addr}).integer, 1);  // the number of connections it ended
  // The next look sees the connection closed (or the thread did first): copies dropped.
  for (int i = 0; i < 500 && resets_ == 0; ++i) {
    s->with_current([] {});
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_GE(resets_.load(), 1);
  EXPECT_GE(s->stats().resets.load(), uint64_t(1));
  // A read that began on the lost subscription is not kept, even once it is back.
  ASSERT_TRUE(wait_current(*s));
  EXPECT_FALSE(s->if_unchanged(before, "k", [] {}));
  EXPECT_GE(s->stats().subscribes.load(), uint64_t(2));
  // And the new subscription receives.
  publish("after");
  std::vector<std::string> seen;
  for (int i = 0; i < 500 && (seen.empty() || seen.back() != "after"); ++i) {
    seen = applied(*s);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), "after");
  EXPECT_EQ(bystander_resets.load(), 0);
  EXPECT_EQ(bystander.stats().resets.load(), uint64_t(0));
}

// Over TLS (the test Redis's TLS port, the same server): verified against the test CA, it
// receives what is published on the plain port, and a look applies what the socket holds.
TEST_F(SubscriberTest, OverTlsItReceivesAndAppliesLikePlain) {
  COMMENTD_REDIS_NODES(tls_nodes, "COMMENTD_TEST_REDIS_TLS");
  COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_REDIS_TLS_DIR");
  auto ctx = net::make_client_context({dir + "/ca.pem", "", ""}, "redis tls");
  ASSERT_TRUE(ctx);
  SubscriberOptions o{.host = tls_nodes[0].first, .port = tls_nodes[0].second, .channel = channel_, .tls = *ctx};
  Subscriber s(o, [this](std::string_view m) { got_.emplace_back(m); }, [this] { resets_++; });
  ASSERT_TRUE(wait_current(s));
  for (int i = 0; i < 50; ++i) publish("t" + std::to_string(i));
  std::vector<std::string> seen;
  for (int i = 0; i < 500 && seen.size() < 50; ++i) {
    seen = applied(s);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(seen.size(), 50u);
  EXPECT_EQ(seen.front(), "t0");
  EXPECT_EQ(seen.back(), "t49");
  // A wrong CA: the handshake fails and it is never current.
  auto other = net::make_client_context({}, "system roots");
  ASSERT_TRUE(other);
  o.tls = *other;
  Subscriber bad(o, [](std::string_view) {}, [] {});
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(bad.with_current([] {}));
}

TEST_F(SubscriberTest, AnUnreachableRedisIsNeverCurrent) {
  auto s = start(testenv::closed_port());
  std::this_thread::sleep_for(300ms);
  bool ran = false;
  Subscriber::Mark m;
  EXPECT_FALSE(s->with_current([&] { ran = true; }, &m));
  EXPECT_FALSE(ran);
  EXPECT_FALSE(m.current);
  EXPECT_FALSE(s->stats().up.load());
}

TEST_F(SubscriberTest, AQuietSubscriptionStaysCurrentOnItsPings) {
  auto s = start();
  ASSERT_TRUE(wait_current(*s));
  // stale_after is 1 s, pings every 200 ms: no message for 1.5 s, still current.
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(s->with_current([] {}));
  EXPECT_EQ(s->stats().resets.load(), uint64_t(0));
}

}  // namespace
}  // namespace commentd::redis

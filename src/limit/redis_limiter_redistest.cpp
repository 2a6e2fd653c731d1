// The Redis RateLimiter against a real Redis (single node and cluster): the RateLimiter
// conformance suite, two limiter instances (two nodes) sharing one limit, and Outcome::error
// (never allowed or limited) when Redis is unreachable.
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <thread>

#include "limit/rate_limiter_conformance.h"
#include "limit/redis_limiter.h"
#include "redis/test_env.h"

namespace commentd::limit {
namespace {

using namespace std::chrono_literals;

struct ClientLoop {
  ClientLoop() : guard(asio::make_work_guard(ioc)), thread([this] { ioc.run(); }) {}
  ~ClientLoop() {
    guard.reset();
    ioc.stop();
    thread.join();
  }
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::thread thread;
};

template <const char* Env, bool Cluster>
struct RedisHarness {
  // Records a skip (or a failure when required) on the running test, before its body runs.
  static void skip_or_fail() {
    if (redis::testenv::required()) GTEST_FAIL() << Env << " is not set";
    GTEST_SKIP() << Env << " is not set";
  }
  RedisHarness() : nodes(redis::testenv::parse_nodes(std::getenv(Env))) {
    if (nodes.empty()) {
      skip_or_fail();
      return;
    }
    client = std::make_unique<redis::Client>(loop.ioc.get_executor(),
                                             redis::ClientOptions{.nodes = nodes, .cluster = Cluster});
    clock.set_ms(1'700'000'000'000);
  }
  std::unique_ptr<RateLimiter> make(Rule cc, Rule ar) {
    return std::make_unique<RedisRateLimiter>(*client, cc, ar, clock, redis::testenv::unique_prefix());
  }
  void advance_ms(TimeMs ms) { clock.advance_ms(ms); }

  std::vector<std::pair<std::string, uint16_t>> nodes;
  ClientLoop loop;
  ManualClock clock;
  std::unique_ptr<redis::Client> client;
};

constexpr char kSingle[] = "COMMENTD_TEST_REDIS";
constexpr char kCluster[] = "COMMENTD_TEST_REDIS_CLUSTER";
using RedisImpls = ::testing::Types<RedisHarness<kSingle, false>, RedisHarness<kCluster, true>>;

Decision check(RateLimiter& l, const std::string& subject, Action a) {
  return testing::run_sync(l.check(subject, a, Deadline::after(5s)));
}

TEST(RedisRateLimiter, TwoNodesShareOneLimit) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  ClientLoop loop;
  redis::Client c1(loop.ioc.get_executor(), {.nodes = nodes}), c2(loop.ioc.get_executor(), {.nodes = nodes});
  ManualClock clock;
  clock.set_ms(1'700'000'000'000);
  const std::string prefix = redis::testenv::unique_prefix();
  RedisRateLimiter a(c1, {5, 60'000}, {20, 60'000}, clock, prefix), b(c2, {5, 60'000}, {20, 60'000}, clock, prefix);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    auto d = check(i % 2 ? a : b, "u:alice", Action::create_comment);
    ASSERT_NE(d.outcome, Outcome::error) << d.error;
    allowed += d.outcome == Outcome::allowed;
  }
  EXPECT_EQ(allowed, 5) << "two nodes must share one budget of 5 per minute";
  auto sixth = check(a, "u:alice", Action::create_comment);
  EXPECT_EQ(sixth.outcome, Outcome::limited);
  EXPECT_GT(sixth.retry_after_ms, 0);
  EXPECT_LE(sixth.retry_after_ms, 12'000);  // one emission interval (60 s / 5)
  EXPECT_EQ(check(b, "ip:192.0.2.7", Action::create_comment).outcome, Outcome::allowed)
      << "subjects are independent";
  EXPECT_EQ(a.stats().decisions[0][1].load() + b.stats().decisions[0][1].load(), 6u);
}

TEST(RedisRateLimiter, UnreachableRedisIsAnErrorNotADecision) {
  ClientLoop loop;
  // A port nothing listens on (bound, then closed).
  uint16_t port;
  {
    asio::ip::tcp::acceptor acc(loop.ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = acc.local_endpoint().port();
  }
  redis::Client c(loop.ioc.get_executor(), {.nodes = {{"127.0.0.1", port}}, .breaker_failures = 2});
  ManualClock clock;
  RedisRateLimiter l(c, {5, 60'000}, {20, 60'000}, clock);
  for (int i = 0; i < 5; ++i) {
    auto d = check(l, "u:bob", Action::add_reaction);
    EXPECT_EQ(d.outcome, Outcome::error);
    EXPECT_FALSE(d.error.empty());
  }
  EXPECT_EQ(l.stats().decisions[1][2].load(), 5u);
  EXPECT_TRUE(c.breaker_open() || c.stats().breaker_opens.load() >= 1);
}

}  // namespace
}  // namespace commentd::limit

namespace commentd::limit::conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, RateLimiterConformance, commentd::limit::RedisImpls);
}  // namespace commentd::limit::conformance

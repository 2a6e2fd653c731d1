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

// The shared harness (testenv::Harness: client, loop, clock) making RedisRateLimiters.
template <const char* Env, bool Cluster>
struct RedisHarness : redis::testenv::Harness<Env, Cluster> {
  std::unique_ptr<RateLimiter> make(Rule cc, Rule ar) {
    return std::make_unique<RedisRateLimiter>(*this->client, cc, ar, this->clock, redis::testenv::unique_prefix());
  }
};

using RedisImpls = ::testing::Types<RedisHarness<redis::testenv::kSingle, false>,
                                    RedisHarness<redis::testenv::kCluster, true>>;

Decision check(RateLimiter& l, const std::string& subject, Action a) {
  return testing::run_sync(l.check(subject, a, Deadline::after(5s)));
}

TEST(RedisRateLimiter, TwoNodesShareOneLimit) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  redis::testenv::Loop loop;
  redis::Client c1(loop.ex(), {.nodes = nodes}), c2(loop.ex(), {.nodes = nodes});
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
  redis::testenv::Loop loop;
  redis::Client c(loop.ex(), {.nodes = {{"127.0.0.1", redis::testenv::closed_port()}}, .breaker_failures = 2});
  ManualClock clock;
  RedisRateLimiter l(c, {5, 60'000}, {20, 60'000}, clock);
  for (int i = 0; i < 5; ++i) {
    auto d = check(l, "u:bob", Action::add_reaction);
    EXPECT_EQ(d.outcome, Outcome::error);
    EXPECT_FALSE(d.error.empty());
  }
  EXPECT_EQ(l.stats().decisions[1][2].load(), 5u);
  EXPECT_TRUE(c.breaker_open() || c.breaker().stats().opens.load() >= 1);
}

}  // namespace
}  // namespace commentd::limit

namespace commentd::limit::conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, RateLimiterConformance, commentd::limit::RedisImpls);
}  // namespace commentd::limit::conformance

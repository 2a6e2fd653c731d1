#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>

#include "limit/rate_limiter.h"
#include "limit/rate_limiter_conformance.h"
#include "testing/run_sync.h"

namespace commentd::limit {
namespace {

// The conformance suite on the memory limiter: one ManualClock per test.
struct MemoryLimiterHarness {
  ManualClock clock;
  std::unique_ptr<RateLimiter> make(Rule cc, Rule ar) { return make_memory_limiter(cc, ar, clock); }
  void advance_ms(TimeMs ms) { clock.advance_ms(ms); }
};
using MemoryImpls = ::testing::Types<MemoryLimiterHarness>;
}  // namespace
namespace conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, RateLimiterConformance, MemoryImpls);
}  // namespace conformance
namespace {

Decision check(RateLimiter& l, std::string subject, Action a) {
  return testing::run_sync(l.check(std::move(subject), a, Deadline::never()));
}

TEST(MemoryLimiterTest, ManyKeysStayBoundedWithoutFalseRefusals) {
  ManualClock clock;
  auto l = make_memory_limiter({1, 60'000}, {0, 60'000}, clock, /*max_keys=*/64);
  // Far more subjects than max_keys: each one's first request is always allowed.
  for (int i = 0; i < 5000; ++i)
    ASSERT_EQ(check(*l, "u:" + std::to_string(i), Action::create_comment).outcome, Outcome::allowed) << i;
}

TEST(MemoryLimiterTest, AnswersWithoutSuspending) {
  // The memory limiter completes inline: the awaiting coroutine never leaves its thread and
  // nothing is posted to the executor.
  ManualClock clock;
  auto l = make_memory_limiter({1, 60'000}, {0, 60'000}, clock);
  boost::asio::io_context ioc;
  std::optional<Decision> d;
  boost::asio::co_spawn(ioc, [&]() -> boost::asio::awaitable<void> {
    d = co_await l->check("u:x", Action::create_comment, Deadline::never());
  }, boost::asio::detached);
  // The first handler runs the spawned coroutine; a hop would leave `d` unset after it.
  ioc.run_one();
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->outcome, Outcome::allowed);
}

}  // namespace
}  // namespace commentd::limit

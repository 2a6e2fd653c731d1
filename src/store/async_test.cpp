// store::Started: an operation started now, awaited later.
#include "store/async.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <vector>

namespace commentd::store {
namespace {

using namespace std::chrono_literals;

// Completes with `value` after `wait`, noting when it started and ended in `log`.
asio::awaitable<Result<int>> slow(int value, std::chrono::milliseconds wait, std::vector<std::string>& log) {
  log.push_back("start " + std::to_string(value));
  asio::steady_timer t(co_await asio::this_coro::executor, wait);
  co_await t.async_wait(asio::use_awaitable);
  log.push_back("end " + std::to_string(value));
  if (value < 0) co_return Error(Errc::unavailable, "down");
  co_return value;
}

template <class F>
void run(F body) {
  asio::io_context ioc;
  asio::co_spawn(ioc, body(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  ioc.run();
}

TEST(Started, RunsBesideWhatTheCallerAwaitsAndJoinsItsResult) {
  std::vector<std::string> log;
  run([&]() -> asio::awaitable<void> {
    Started<int> a(co_await asio::this_coro::executor, slow(1, 60ms, log));
    auto b = co_await slow(2, 60ms, log);  // the caller's own read, meanwhile
    auto ra = co_await a.join();
    EXPECT_EQ(*b, 2);
    EXPECT_EQ(*ra, 1);
  });
  // Both ran at once: both started before either ended (one after the other would log
  // start, end, start, end).
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].substr(0, 5), "start");
  EXPECT_EQ(log[1].substr(0, 5), "start");
}

TEST(Started, AJoinBeforeTheEndWaitsAndAnErrorComesThrough) {
  std::vector<std::string> log;
  run([&]() -> asio::awaitable<void> {
    Started<int> ok(co_await asio::this_coro::executor, slow(7, 30ms, log));
    Started<int> bad(co_await asio::this_coro::executor, slow(-1, 10ms, log));
    auto r = co_await ok.join();  // not finished yet when joined
    EXPECT_TRUE(r.ok() && *r == 7);
    auto e = co_await bad.join();  // finished long before
    EXPECT_TRUE(!e.ok() && e.error().code == Errc::unavailable);
  });
}

TEST(Started, OneNeverJoinedStillFinishes) {
  std::vector<std::string> log;
  run([&]() -> asio::awaitable<void> {
    Started<int> dropped(co_await asio::this_coro::executor, slow(3, 10ms, log));
    co_return;
  });
  EXPECT_EQ(log, (std::vector<std::string>{"start 3", "end 3"}));
}

}  // namespace
}  // namespace commentd::store

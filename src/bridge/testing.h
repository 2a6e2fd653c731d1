// Test helpers for the bridge tiers (header-only; used by *_test, *_cqltest, *_pulsartest).
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "core/error.h"

namespace commentd::bridge::testing {

// Runs one bridge operation to completion on a private io_context driven by this thread:
// init(handler) starts it; the completion must arrive on this thread (posted, never inline
// on a bridge thread), which is checked.
template <class T, class Init>
Result<T> wait(Init init) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::optional<Result<T>> out;
  const auto me = std::this_thread::get_id();
  init(boost::asio::bind_executor(io, [&](Result<T> r) {
    EXPECT_EQ(std::this_thread::get_id(), me) << "completion not posted to the caller's executor";
    out.emplace(std::move(r));
    guard.reset();
  }));
  io.run();
  return std::move(*out);
}

// The address in env var `name`, or a skip (a failure when COMMENTD_TEST_REQUIRE=1).
inline std::optional<std::string> server_from_env(const char* name) {
  const char* v = std::getenv(name);
  if (v && *v) return std::string(v);
  return std::nullopt;
}

inline bool servers_required() {
  const char* r = std::getenv("COMMENTD_TEST_REQUIRE");
  return r && std::string(r) == "1";
}

}  // namespace commentd::bridge::testing

// In a fixture's SetUp: binds `var` to the env var's value or skips/fails the test.
#define COMMENTD_REQUIRE_SERVER(var, env)                                          \
  do {                                                                              \
    auto v_ = ::commentd::bridge::testing::server_from_env(env);                    \
    if (!v_) {                                                                      \
      if (::commentd::bridge::testing::servers_required()) FAIL() << env " not set"; \
      GTEST_SKIP() << env " not set (deploy/test-servers.sh writes it)";            \
    }                                                                               \
    var = *v_;                                                                      \
  } while (0)

// Test support for the *_redistest tier, on top of testing/test_servers.h (the one place that
// reads the servers' environment): the Redis servers as client options, a unique key prefix
// per test, the event loop the clients run on, and the harness of the typed suites that run
// once on a single node and once on the 3-master cluster.
// COMMENTD_TEST_REDIS=host:port (single node), COMMENTD_TEST_REDIS_CLUSTER=h:p,h:p,h:p (a
// cluster's masters). Unset: the test is skipped, or fails when COMMENTD_TEST_REQUIRE=1.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "redis/client.h"
#include "testing/test_servers.h"

namespace commentd::redis::testenv {

constexpr char kSingle[] = "COMMENTD_TEST_REDIS";
constexpr char kCluster[] = "COMMENTD_TEST_REDIS_CLUSTER";

// The nodes named by env var `env` (a comma list of host:port); empty when unset.
inline std::vector<std::pair<std::string, uint16_t>> nodes_from_env(const char* env) {
  std::vector<std::pair<std::string, uint16_t>> out;
  auto text = testing::server_env(env);
  if (!text) return out;
  for (const auto& hp : testing::parse_host_port_list(*text))
    out.emplace_back(hp.host, static_cast<uint16_t>(std::stoi(hp.port)));
  return out;
}

// A unique key prefix per test, so tests share a server without seeing each other's keys.
inline std::string unique_prefix() {
  static std::mt19937_64 rng(std::random_device{}());
  return "t" + std::to_string(rng() % 1000000000) + ":";
}

// The service's executors: an io_context run by `threads` threads until destruction.
class Loop {
 public:
  explicit Loop(int threads = 2) : guard_(asio::make_work_guard(ioc_)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~Loop() {
    guard_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }
  asio::io_context& ioc() { return ioc_; }
  asio::any_io_executor ex() { return ioc_.get_executor(); }
  // Runs `a` on the loop and waits for its result.
  template <class T>
  T run(asio::awaitable<T> a) {
    std::promise<T> p;
    auto f = p.get_future();
    spawn(std::move(a), &p);
    return f.get();
  }
  // Starts `a` on the loop; its result goes to *p.
  template <class T>
  void spawn(asio::awaitable<T> a, std::promise<T>* p) {
    asio::co_spawn(ioc_, deliver(std::move(a), p), asio::detached);
  }

 private:
  template <class T>
  static asio::awaitable<void> deliver(asio::awaitable<T> a, std::promise<T>* p) {
    p->set_value(co_await std::move(a));
  }
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// A loopback port nothing listens on (bound, then closed): an unreachable Redis.
inline uint16_t closed_port() {
  asio::io_context ioc;
  asio::ip::tcp::acceptor acc(ioc, {asio::ip::make_address("127.0.0.1"), 0});
  return acc.local_endpoint().port();
}

// A client of the servers named by `Env` (cluster mode if `Cluster`) on its own loop, and a
// manual clock, for a typed suite's implementation harness. Unset server: the running test
// is skipped (or failed when required) before its body runs, and `client` stays null.
template <const char* Env, bool Cluster>
struct Harness {
  Harness() : nodes(nodes_from_env(Env)) {
    if (nodes.empty()) {
      skip_or_fail();
      return;
    }
    // A generous command timeout (a call here stalled past 2 s at load 20): the suites check
    // contracts, not latency, and share a loaded host.
    client = std::make_unique<Client>(loop.ex(), ClientOptions{.nodes = nodes, .cluster = Cluster,
                                                               .command_timeout = std::chrono::milliseconds(10000)});
    clock.set_ms(1'700'000'000'000);
  }
  static void skip_or_fail() {
    if (testing::servers_required()) GTEST_FAIL() << Env << " is not set";
    GTEST_SKIP() << Env << " is not set";
  }
  void advance_ms(TimeMs ms) { clock.advance_ms(ms); }

  std::vector<std::pair<std::string, uint16_t>> nodes;
  Loop loop{1};
  ManualClock clock;
  std::unique_ptr<Client> client;
};

}  // namespace commentd::redis::testenv

// In a test body: `var` = the nodes named by env var `env`, else skip / fail.
#define COMMENTD_REDIS_NODES(var, env)                                                         \
  auto var = ::commentd::redis::testenv::nodes_from_env(env);                                  \
  if (var.empty()) {                                                                           \
    if (::commentd::testing::servers_required()) FAIL() << (env) << " is not set";             \
    GTEST_SKIP() << (env) << " is not set";                                                    \
  }

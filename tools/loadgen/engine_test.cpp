// The engine against an in-process Beast server. Assertions are lower bounds that a stall
// guarantees, never upper bounds on speed, so a slow or loaded machine cannot fail them.
#include "engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <thread>

namespace commentd::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// How the test server treats its n-th request (1-based, across connections).
struct Behaviour {
  std::chrono::milliseconds block{0};  // sleep on the server's only thread: stalls everything
  std::chrono::milliseconds delay{0};  // wait asynchronously before answering this one
};

// A one-thread keep-alive server answering 200 "ok", on 127.0.0.1 port 0.
class TestServer {
 public:
  explicit TestServer(std::function<Behaviour(uint64_t)> behaviour)
      : behaviour_(std::move(behaviour)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    io_.stop();
    thread_.join();
  }
  Target target() const {
    const std::string port = std::to_string(acceptor_.local_endpoint().port());
    return Target{"127.0.0.1", port, "127.0.0.1:" + port};
  }
  uint64_t requests() const { return requests_.load(); }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket socket) {
    beast::flat_buffer buffer;
    asio::steady_timer timer(io_);
    static const std::string response =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\nok";
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] =
          co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      const Behaviour b = behaviour_(++requests_);
      if (b.block > 0ms) std::this_thread::sleep_for(b.block);
      if (b.delay > 0ms) {
        timer.expires_after(b.delay);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(response),
                                                  asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }

  std::function<Behaviour(uint64_t)> behaviour_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  std::atomic<uint64_t> requests_{0};
  std::thread thread_;
};

class GetWorkload : public Workload {
 public:
  std::vector<std::string> op_names() const override { return {"get"}; }
  std::unique_ptr<WorkloadShard> make_shard(size_t) override {
    struct Shard : WorkloadShard {
      void build(uint64_t, RequestSlot& slot) override {
        slot.op = 0;
        slot.bytes = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
      }
    };
    return std::make_unique<Shard>();
  }
};

TEST(EngineTest, OpenLoopShowsTheWholeStallNotJustTheInFlightRequests) {
  // The whole server freezes for 1 s at its 100th request (~0.5 s into the run). Every
  // request due in the first half of the freeze completes after it ends, so at 200/s at least
  // ~100 requests must show >= 500 ms. A generator that timed from the send (coordinated
  // omission) would show at most `connections` such requests.
  TestServer server([](uint64_t n) { return Behaviour{n == 100 ? 1000ms : 0ms, 0ms}; });
  GetWorkload workload;
  EngineConfig cfg;
  cfg.target = server.target();
  cfg.rate = 200;
  cfg.duration_s = 3;
  cfg.connections = 8;
  EngineResult r = run_engine(cfg, workload);
  const OpStats& s = r.stats.op(0);
  EXPECT_EQ(r.scheduled, 600u);
  EXPECT_EQ(s.count, 600u);
  EXPECT_EQ(s.ok, 600u);
  EXPECT_EQ(r.unsent, 0u);
  EXPECT_GE(s.latency.max(), 900'000u);
  EXPECT_GE(s.latency.percentile(99.9), 900'000u);
  EXPECT_GE(s.latency.percentile(99), 900'000u);
  EXPECT_GE(s.latency.count_at_or_above(500'000), 80u);
  EXPECT_GT(s.latency.count_at_or_above(500'000), 2 * cfg.connections);
  // The per-second series holds the stall too.
  uint64_t worst = 0;
  for (const SecondStats& sec : s.series) worst = std::max(worst, sec.latency.max());
  EXPECT_GE(worst, 900'000u);
}

TEST(EngineTest, ClosedLoopSendsExactlyMaxRequests) {
  TestServer server([](uint64_t) { return Behaviour{}; });
  GetWorkload workload;
  EngineConfig cfg;
  cfg.target = server.target();
  cfg.closed_loop = true;
  cfg.duration_s = 0;
  cfg.max_requests = 500;
  cfg.connections = 4;
  cfg.threads = 2;
  EngineResult r = run_engine(cfg, workload);
  EXPECT_EQ(r.stats.op(0).count, 500u);
  EXPECT_EQ(r.stats.op(0).ok, 500u);
  EXPECT_EQ(server.requests(), 500u);
}

TEST(EngineTest, RequestsQueuedPastTheDrainDeadlineCountAsTimeouts) {
  // Two connections, each answer takes 2 s: of 100 requests due in 1 s at most a handful can
  // be sent before the drain deadline (1 s + 300 ms), the rest must be reported, not dropped.
  TestServer server([](uint64_t) { return Behaviour{0ms, 2000ms}; });
  GetWorkload workload;
  EngineConfig cfg;
  cfg.target = server.target();
  cfg.rate = 100;
  cfg.duration_s = 1;
  cfg.connections = 2;
  cfg.drain_timeout = 300ms;
  EngineResult r = run_engine(cfg, workload);
  const OpStats& s = r.stats.op(0);
  EXPECT_EQ(s.count, 100u);
  EXPECT_GE(r.unsent, 90u);
  EXPECT_GE(s.failures[static_cast<int>(Failure::timeout)], 90u);
  EXPECT_GE(s.latency.max(), 300'000u);
}

TEST(EngineTest, ResponseTimeoutClosesTheConnectionAndCounts) {
  TestServer server([](uint64_t) { return Behaviour{0ms, 5000ms}; });
  GetWorkload workload;
  EngineConfig cfg;
  cfg.target = server.target();
  cfg.closed_loop = true;
  cfg.duration_s = 0;
  cfg.max_requests = 2;
  cfg.connections = 1;
  cfg.request_timeout = 200ms;
  EngineResult r = run_engine(cfg, workload);
  const OpStats& s = r.stats.op(0);
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.failures[static_cast<int>(Failure::timeout)], 2u);
  EXPECT_GE(s.latency.min(), 200'000u);
}

TEST(EngineTest, RefusedConnectionsAreConnectErrors) {
  // Bind a port, then close it: nothing listens there.
  Target target;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    target = Target{"127.0.0.1", std::to_string(a.local_endpoint().port()), ""};
  }
  GetWorkload workload;
  EngineConfig cfg;
  cfg.target = target;
  cfg.closed_loop = true;
  cfg.duration_s = 0;
  cfg.max_requests = 3;
  cfg.connections = 1;
  EngineResult r = run_engine(cfg, workload);
  EXPECT_EQ(r.stats.op(0).failures[static_cast<int>(Failure::connect)], 3u);
  EXPECT_EQ(r.stats.op(0).latency.count(), 0u);
}

}  // namespace
}  // namespace commentd::loadgen

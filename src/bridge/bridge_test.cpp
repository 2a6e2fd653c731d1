// Bridge tests that need no server: error mapping, value encoding, the runtime, and the
// completion contract (exactly once, posted to the caller) against a refused port and a
// silent one (a listener that never answers).
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/detached.hpp>
#include <mutex>
#include <vector>

#include "bridge/bridge_error.h"
#include "bridge/cql_client.h"
#include "bridge/pulsar_client.h"
#include "bridge/testing.h"

namespace commentd::bridge {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

TEST(BridgeError, EveryCodeMapsOnce) {
  struct Case {
    int32_t code;
    Errc errc;
    const char* detail;
    bool transient;
  };
  const Case cases[] = {
      {CB_CANCELLED, Errc::unavailable, "bridge_cancelled", false},
      {CB_TIMEOUT, Errc::unavailable, "bridge_timeout", true},
      {CB_WRITE_TIMEOUT, Errc::unavailable, "bridge_write_timeout", true},
      {CB_UNAVAILABLE, Errc::unavailable, "bridge_unavailable", true},
      {CB_OVERLOADED, Errc::overloaded, "bridge_overloaded", true},
      {CB_SYNTAX, Errc::internal, "bridge_syntax", false},
      {CB_INVALID, Errc::internal, "bridge_invalid", false},
      {CB_ALREADY_EXISTS, Errc::conflict, "bridge_already_exists", false},
      {CB_SERVER, Errc::internal, "bridge_server", false},
      {CB_CONNECTION, Errc::unavailable, "bridge_connection", true},
      {CB_BAD_ARGUMENT, Errc::internal, "bridge_bad_argument", false},
      {CB_AUTH, Errc::internal, "bridge_auth", false},
      {CB_CLOSED, Errc::unavailable, "bridge_closed", false},
      {CB_INTERNAL, Errc::internal, "bridge_internal", false},
      {999, Errc::internal, "bridge_unknown", false},
  };
  for (const auto& c : cases) {
    Error e = to_error(c.code, "why");
    EXPECT_EQ(e.code, c.errc) << c.code;
    EXPECT_EQ(e.detail_code, c.detail);
    EXPECT_NE(e.message.find("why"), std::string::npos);
    EXPECT_EQ(is_transient(c.code), c.transient) << c.code;
  }
  EXPECT_EQ(to_error(CB_OVERLOADED, "").retry_after_s, 1);
}

TEST(BridgeValue, EncodesEveryKind) {
  Uuid u{};
  for (int i = 0; i < 16; ++i) u[i] = static_cast<uint8_t>(i + 1);
  auto t = Value::text("h\xC3\xA9llo");  // to_c() borrows: keep the Value alive
  EXPECT_EQ(t.to_c().kind, CB_VALUE_TEXT);
  EXPECT_EQ(t.to_c().len, 6u);
  auto uv = Value::uuid(u);
  auto uu = uv.to_c();
  ASSERT_EQ(uu.len, 16u);
  EXPECT_EQ(uu.data[0], 1);
  EXPECT_EQ(uu.data[15], 16);
  EXPECT_EQ(Value::bigint(-5).to_c().i64, -5);
  EXPECT_EQ(Value::int32(7).to_c().kind, CB_VALUE_INT);
  EXPECT_EQ(Value::counter(3).to_c().kind, CB_VALUE_COUNTER);
  EXPECT_EQ(Value::boolean(true).to_c().i64, 1);
  EXPECT_EQ(Value::timestamp_ms(1700000000123).to_c().i64, 1700000000123);
  EXPECT_EQ(Value::null().to_c().kind, CB_VALUE_NULL);
  EXPECT_EQ(Value::blob(std::string("\0\1", 2)).to_c().len, 2u);

  ExecOptions o;
  o.consistency = Consistency::local_one;
  o.serial_consistency = Consistency::local_serial;
  o.page_size = 50;
  o.paging_state = "abc";
  o.timeout = 250ms;
  o.idempotent = true;
  auto c = o.to_c();
  EXPECT_EQ(c.consistency, CB_LOCAL_ONE);
  EXPECT_EQ(c.serial_consistency, CB_LOCAL_SERIAL);
  EXPECT_EQ(c.page_size, 50);
  EXPECT_EQ(c.paging_state_len, 3u);
  EXPECT_EQ(c.timeout_ms, 250u);
  EXPECT_EQ(c.idempotent, 1);
  EXPECT_EQ(ExecOptions{}.to_c().paging_state_len, 0u);
  EXPECT_EQ(ExecOptions{}.to_c().consistency, CB_CONSISTENCY_DEFAULT);

  EXPECT_EQ(parse_consistency("local_quorum"), Consistency::local_quorum);
  EXPECT_EQ(parse_consistency("serial"), Consistency::serial);
  EXPECT_FALSE(parse_consistency("LOCAL_QUORUM").has_value());
}

TEST(BridgeRuntime, WorkerThreadsAreBounded) {
  auto one = Runtime::create(0);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ((*one)->worker_threads(), 1u);
  auto three = Runtime::create(3);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ((*three)->worker_threads(), 3u);
}

// A peer that resets a connection must cost the process an EPIPE, never its life.
TEST(BridgeRuntime, SigpipeIsIgnoredOnceARuntimeExists) {
  std::signal(SIGPIPE, SIG_DFL);
  auto rt = Runtime::create(1);
  ASSERT_TRUE(rt.ok());
  struct sigaction now {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  EXPECT_EQ(raise(SIGPIPE), 0);  // still alive
}

// A port with nothing listening (bound, then closed).
uint16_t refused_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  uint16_t p = a.local_endpoint().port();
  a.close();
  return p;
}

TEST(BridgeCompletion, RefusedCqlConnectIsAConnectionError) {
  auto rt = Runtime::create(1);
  ASSERT_TRUE(rt.ok());
  CqlConfig cfg;
  cfg.contact_points = "127.0.0.1:" + std::to_string(refused_port());
  auto r = testing::wait<std::unique_ptr<CqlSession>>(
      [&](auto h) { CqlSession::connect(**rt, cfg, std::move(h)); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(r.error().detail_code, "bridge_connection") << r.error().message;
}

TEST(BridgeCompletion, RefusedPulsarConnectIsAnError) {
  auto rt = Runtime::create(1);
  ASSERT_TRUE(rt.ok());
  PulsarConfig cfg;
  cfg.service_url = "pulsar://127.0.0.1:" + std::to_string(refused_port());
  cfg.connect_timeout = 500ms;
  cfg.operation_timeout = 1000ms;
  auto r = testing::wait<std::unique_ptr<PulsarClient>>(
      [&](auto h) { PulsarClient::connect(**rt, cfg, std::move(h)); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message;
}

TEST(BridgeCompletion, BadArgumentsCompleteWithAnError) {
  auto rt = Runtime::create(1);
  ASSERT_TRUE(rt.ok());
  CqlConfig cfg;  // no contact points
  auto r = testing::wait<std::unique_ptr<CqlSession>>(
      [&](auto h) { CqlSession::connect(**rt, cfg, std::move(h)); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().detail_code, "bridge_bad_argument");
}

// Raw C contract: a callback counter per call.
struct Counter {
  std::mutex mu;
  std::vector<int32_t> codes;
  static void done(void* user, int32_t code, const char*, size_t, void* result) {
    auto* c = static_cast<Counter*>(user);
    EXPECT_EQ(result, nullptr);
    std::lock_guard lk(c->mu);
    c->codes.push_back(code);
  }
};

// Freeing the runtime while connects hang on a silent server completes each exactly once
// with CB_CANCELLED, before cb_runtime_free returns.
TEST(BridgeCompletion, RuntimeShutdownCancelsPendingCallsExactlyOnce) {
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));  // never accepts
  std::string addr = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  std::string url = "pulsar://" + addr;

  cb_runtime* rt = cb_runtime_new(2, nullptr, 0);
  ASSERT_NE(rt, nullptr);
  constexpr int kCalls = 8;
  std::vector<Counter> counters(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    if (i % 2 == 0) {
      cb_cql_config c{addr.c_str(), nullptr, nullptr, nullptr, nullptr, 60000, 60000, CB_CONSISTENCY_DEFAULT};
      cb_cql_connect(rt, &c, &Counter::done, &counters[i]);
    } else {
      cb_pulsar_config c{url.c_str(), nullptr, 60000, 60000};
      cb_pulsar_connect(rt, &c, &Counter::done, &counters[i]);
    }
  }
  cb_runtime_free(rt);
  for (auto& c : counters) {
    std::lock_guard lk(c.mu);
    ASSERT_EQ(c.codes.size(), 1u);
    EXPECT_EQ(c.codes[0], CB_CANCELLED);
  }
}

// The same through the C++ side: the awaiting coroutine resumes with Errc::unavailable.
TEST(BridgeCompletion, AwaitingCoroutineResumesWhenRuntimeIsDestroyed) {
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  auto rt = Runtime::create(1);
  ASSERT_TRUE(rt.ok());
  CqlConfig cfg;
  cfg.contact_points = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  cfg.connect_timeout = 60s;
  std::optional<Result<std::unique_ptr<CqlSession>>> out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        out.emplace(co_await CqlSession::connect(**rt, cfg, asio::use_awaitable));
      },
      asio::detached);
  io.poll();  // starts the connect
  EXPECT_FALSE(out.has_value());
  rt->reset();  // ~Runtime: the pending connect is cancelled and its completion posted
  io.run();
  ASSERT_TRUE(out.has_value());
  ASSERT_FALSE(out->ok());
  EXPECT_EQ(out->error().detail_code, "bridge_cancelled");
}

}  // namespace
}  // namespace commentd::bridge

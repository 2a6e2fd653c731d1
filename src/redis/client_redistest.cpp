// The Redis client against a real Redis: pipelining, binary safety, script loading with the
// NOSCRIPT fallback, deadlines, reconnects after a server restart, the circuit breaker, TLS,
// and Redis Cluster redirections including a live `redis-cli --cluster reshard`.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "net/tls.h"
#include "redis/client.h"
#include "redis/metrics.h"
#include "redis/test_env.h"

namespace commentd::redis {
namespace {

using namespace std::chrono_literals;

using testenv::Loop;  // the service's executors: two threads

Deadline dl() { return Deadline::after(5s); }

Result<Reply> cmd(Loop& loop, Client& c, std::vector<std::string> args, Deadline d = dl()) {
  return loop.run(c.command(std::move(args), d));
}

TEST(RedisClient, PipelinedConcurrentCallsOnOneConnection) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  Loop loop;
  Client c(loop.ex(), {.nodes = nodes, .pool_size = 1});
  const std::string key = testenv::unique_prefix() + "ctr";
  // 2,000 INCRs issued at once: one connection, so they are necessarily pipelined; every
  // reply reaches its own caller (each value 1..2000 exactly once).
  std::vector<std::promise<Result<Reply>>> ps(2000);
  for (auto& p : ps) loop.spawn(c.command({"INCR", key}, dl()), &p);
  std::vector<int64_t> values;
  for (auto& p : ps) {
    auto r = p.get_future().get();
    values.push_back(r ? r->integer : -1);
  }
  std::sort(values.begin(), values.end());
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(values[i], i + 1);
  EXPECT_EQ(c.stats().connections.connects.load(), 1u);
  EXPECT_EQ(c.stats().timeouts.load(), 0u);
  // The metrics: calls and latency by command.
  std::vector<prometheus::MetricFamily> fams;
  append_metrics(c, fams);
  ASSERT_FALSE(fams.empty());
  EXPECT_EQ(fams[0].name, "commentd_redis_commands_total");
  ASSERT_EQ(fams[0].metric.size(), 1u);
  EXPECT_EQ(fams[0].metric[0].label[0].value, "incr");
  EXPECT_EQ(fams[0].metric[0].counter.value, 2000);
  EXPECT_EQ(fams[2].metric[0].histogram.sample_count, 2000u);
}

TEST(RedisClient, BinarySafeValuesAndErrorReplies) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  Loop loop;
  Client c(loop.ex(), {.nodes = nodes});
  const std::string key = testenv::unique_prefix() + "bin";
  std::string value("a\0b\r\n$3\r\n\xff", 10);
  ASSERT_TRUE(cmd(loop, c, {"SET", key, value, "PX", "60000"}));
  auto got = cmd(loop, c, {"GET", key});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->str, value);
  auto missing = cmd(loop, c, {"GET", key + "-none"});
  ASSERT_TRUE(missing);
  EXPECT_TRUE(missing->is_nil());
  auto wrong = cmd(loop, c, {"INCR", key});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::internal);
  EXPECT_NE(wrong.error().message.find("ERR"), std::string::npos);
}

// The keys and args of `n` runs of an INCRBY script: key i gets i + 1.
void incr_calls(const std::string& p, int n, std::vector<std::vector<std::string>>& keys,
                std::vector<std::vector<std::string>>& args) {
  for (int i = 0; i < n; ++i) {
    keys.push_back({p + std::to_string(i)});
    args.push_back({std::to_string(i + 1)});
  }
}

TEST(RedisClient, EvalPipelinedAnswersEachCallInOrderAndLoadsTheScriptOnce) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  Loop loop;
  Client c(loop.ex(), {.nodes = nodes, .pool_size = 1});
  // A script this server has never seen: the first wave is all NOSCRIPT.
  Script s("test_incrby", "return redis.call('INCRBY', KEYS[1], ARGV[1]) -- " +
                              std::to_string(std::random_device{}()));
  const std::string p = testenv::unique_prefix();
  ASSERT_TRUE(cmd(loop, c, {"SET", p + "7", "not a number"}));
  std::vector<std::vector<std::string>> keys, args;
  incr_calls(p, 50, keys, args);
  auto rs = loop.run(c.eval_pipelined(s, keys, args, dl()));
  ASSERT_EQ(rs.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    if (i == 7) {
      EXPECT_FALSE(rs[i].ok()) << "an error reply fails its own call only";
      continue;
    }
    ASSERT_TRUE(rs[i].ok()) << i << ": " << rs[i].error().message;
    EXPECT_EQ(rs[i]->integer, i + 1);
  }
  EXPECT_EQ(c.stats().noscript.load(), 1u) << "one call alone loads the script; the rest are sent again";
  // Loaded now: one pipelined wave, every reply to its own call.
  rs = loop.run(c.eval_pipelined(s, keys, args, dl()));
  for (int i = 0; i < 50; ++i)
    if (i != 7) {
      EXPECT_EQ(rs[i].ok() ? rs[i]->integer : -1, 2 * (i + 1));
    }
  EXPECT_EQ(c.stats().noscript.load(), 1u);
  EXPECT_EQ(c.stats().timeouts.load(), 0u);
}

TEST(RedisClient, EvalPipelinedFailsFastOnAnUnreachableServer) {
  Loop loop;
  Client c(loop.ex(), {.nodes = {{"127.0.0.1", testenv::closed_port()}},
                       .connect_timeout = 100ms, .command_timeout = 100ms});
  Script s("test_incrby_dead", "return 1");
  std::vector<std::vector<std::string>> keys, args;
  incr_calls("k", 20, keys, args);
  auto rs = loop.run(c.eval_pipelined(s, keys, args, Deadline::after(2s)));
  ASSERT_EQ(rs.size(), 20u);
  for (auto& r : rs) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable);
  }
}

// Retries until the client answers (the server is starting, the client reconnecting).
bool eventually_ok(Loop& loop, Client& c, std::vector<std::string> args) {
  for (int i = 0; i < 500; ++i) {
    if (cmd(loop, c, args, Deadline::after(200ms))) return true;
    std::this_thread::sleep_for(20ms);  // a retry pace, not a timing assumption
  }
  return false;
}

TEST(RedisClient, CallsEndAtTheDeadlineAndAStuckConnectionIsReplaced) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  Loop loop;
  Client c(loop.ex(), {.nodes = nodes, .pool_size = 1, .command_timeout = 2000ms, .breaker_failures = 100});
  const std::string key = testenv::unique_prefix() + "never";
  // BLPOP on an empty list holds the connection for 5 s; the caller's deadline is 100 ms.
  auto t0 = std::chrono::steady_clock::now();
  auto r = cmd(loop, c, {"BLPOP", key, "5"}, Deadline::after(100ms));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(c.stats().timeouts.load(), 1u);
  // The command timeout bounds a call whose request deadline is later.
  Client fast(loop.ex(), {.nodes = nodes, .pool_size = 1, .command_timeout = 100ms, .breaker_failures = 100});
  t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cmd(loop, fast, {"BLPOP", key, "5"}, dl()));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  // The connection blocked longer than command_timeout is reset; the client works again.
  EXPECT_TRUE(eventually_ok(loop, fast, {"PING"}));
  EXPECT_GE(fast.stats().connections.connects.load(), 2u) << "the stuck connection was not replaced";
}

TEST(RedisClient, OneStallsTimeoutsDoNotOpenTheBreakerButAStuckServerDoes) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  Loop loop(1);  // one thread: the calls are sent in the order they are spawned
  Client c(loop.ex(), {.nodes = nodes, .pool_size = 1, .command_timeout = 300ms, .breaker_failures = 3});
  const std::string key = testenv::unique_prefix() + "never";
  // A BLPOP holds the one connection; the 20 calls pipelined behind it time out together,
  // as in a stall: one failure, the breaker stays closed.
  std::vector<std::promise<Result<Reply>>> ps(21);
  loop.spawn(c.command({"BLPOP", key, "5"}, dl()), &ps[0]);
  for (size_t i = 1; i < ps.size(); ++i) loop.spawn(c.command({"GET", key}, dl()), &ps[i]);
  for (auto& p : ps) EXPECT_FALSE(p.get_future().get().ok());
  EXPECT_EQ(c.stats().timeouts.load(), 21u);
  EXPECT_EQ(c.breaker().stats().opens.load(), 0u) << "one stall opened the breaker";
  EXPECT_EQ(c.stats().connections.connects.load(), 1u)
      << "one stall reset the connection (stuck only after 4 x command_timeout without a read)";
  // Calls that keep failing after it (timeouts spaced by command_timeout, or fast failures
  // while the reset connection reconnects): a stuck server.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(cmd(loop, c, {"BLPOP", key, "5"}));
  EXPECT_GE(c.breaker().stats().opens.load(), 1u);
}

// A redis-server of the test's own, so the test may kill and restart it.
class OwnServer {
 public:
  explicit OwnServer(uint16_t port) : port_(port) { start(); }
  ~OwnServer() { stop(); }
  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      std::string p = std::to_string(port_);
      execlp("redis-server", "redis-server", "--bind", "127.0.0.1", "--port", p.c_str(), "--save", "",
             "--appendonly", "no", "--requirepass", "s3cret", (char*)nullptr);
      _exit(127);
    }
  }
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

uint16_t free_port() { return testenv::closed_port(); }

TEST(RedisClient, ReconnectsAfterServerRestartAndBreakerRecovers) {
  if (testenv::nodes_from_env(testenv::kSingle).empty() && !::commentd::testing::servers_required())
    GTEST_SKIP() << "COMMENTD_TEST_REDIS is not set";
  const uint16_t port = free_port();
  OwnServer server(port);
  Loop loop;
  Client c(loop.ex(), {.nodes = {{"127.0.0.1", port}}, .password = "s3cret", .db = 3, .pool_size = 2,
                       .backoff_min = 10ms, .backoff_max = 100ms, .breaker_failures = 3, .breaker_open = 200ms});
  ASSERT_TRUE(eventually_ok(loop, c, {"SET", "k", "v1"}));
  server.stop();
  // Dead server: calls fail (never hang), and the breaker opens and fails the rest fast.
  int failures = 0;
  for (int i = 0; i < 20; ++i) failures += !cmd(loop, c, {"GET", "k"}, Deadline::after(1s));
  EXPECT_EQ(failures, 20);
  EXPECT_GE(c.breaker().stats().opens.load(), 1u);
  EXPECT_GE(c.breaker().stats().rejected.load(), 1u);
  server.start();
  ASSERT_TRUE(eventually_ok(loop, c, {"SET", "k", "v2"})) << "no recovery after the restart";
  EXPECT_EQ(c.breaker().stats().state.load(), 0);
  auto r = cmd(loop, c, {"GET", "k"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->str, "v2");
  // AUTH and SELECT ran on the new connections: the key is in db 3.
  EXPECT_GE(c.stats().connections.connects.load(), 3u);
}

// On a server of its own: SCRIPT FLUSH on the shared one would send the scripts of tests
// running beside it (ctest -j) down the NOSCRIPT path once more, and fail their counts.
TEST(RedisClient, ScriptRunsBySha1AndReloadsAfterScriptFlush) {
  if (testenv::nodes_from_env(testenv::kSingle).empty() && !::commentd::testing::servers_required())
    GTEST_SKIP() << "COMMENTD_TEST_REDIS is not set";
  const uint16_t port = free_port();
  OwnServer server(port);
  Loop loop;
  Client c(loop.ex(), {.nodes = {{"127.0.0.1", port}}, .password = "s3cret", .backoff_min = 10ms,
                       .backoff_max = 100ms});
  ASSERT_TRUE(eventually_ok(loop, c, {"PING"}));
  Script s("test_echo", "return {KEYS[1], ARGV[1], " + std::to_string(std::random_device{}()) + "}");
  auto r = loop.run(c.eval(s, {"k1"}, {"a1"}, dl()));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->elements.size(), 3u);
  EXPECT_EQ(r->elements[1].str, "a1");
  EXPECT_EQ(c.stats().noscript.load(), 1u) << "the first run loads the script by EVAL";
  ASSERT_TRUE(loop.run(c.eval(s, {"k1"}, {"a2"}, dl())));
  EXPECT_EQ(c.stats().noscript.load(), 1u) << "later runs use EVALSHA";
  ASSERT_TRUE(cmd(loop, c, {"SCRIPT", "FLUSH"}));  // as after a server restart
  ASSERT_TRUE(loop.run(c.eval(s, {"k1"}, {"a3"}, dl())));
  EXPECT_EQ(c.stats().noscript.load(), 2u);
}

TEST(RedisClient, WrongPasswordFailsWithoutHanging) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  Loop loop;
  Client c(loop.ex(), {.nodes = nodes, .password = "wrong-password", .breaker_failures = 100});
  auto r = cmd(loop, c, {"PING"}, Deadline::after(2s));
  EXPECT_FALSE(r);
}

// redis.tls against the test Redis's TLS port (tls-port: TLS only there; client
// certificates optional, verified when sent): commands and scripts over TLS, a server the
// client cannot verify refused, and files it cannot use refused before any connect.
TEST(RedisClient, TlsVerifiesTheServerAndCarriesCommandsAndScripts) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS_TLS");
  COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_REDIS_TLS_DIR");
  Loop loop;
  for (bool client_cert : {false, true}) {
    auto ctx = client_cert ? net::make_client_context({dir + "/ca.pem", dir + "/client.pem", dir + "/client.key"}, "redis tls")
                           : net::make_client_context({dir + "/ca.pem", "", ""}, "redis tls");
    ASSERT_TRUE(ctx) << ctx.error().message;
    Client c(loop.ex(), {.nodes = nodes, .tls = *ctx});
    const std::string key = testenv::unique_prefix() + "tls";
    ASSERT_TRUE(cmd(loop, c, {"SET", key, "over tls", "PX", "60000"}));
    auto got = cmd(loop, c, {"GET", key});
    ASSERT_TRUE(got) << got.error().message;
    EXPECT_EQ(got->str, "over tls");
    Script s("test_tls", "return redis.call('GET', KEYS[1])");
    auto r = loop.run(c.eval(s, {key}, {}, dl()));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->str, "over tls");
    EXPECT_GE(c.stats().connections.connects.load(), 1u);
  }

  // The port speaks only TLS: a plain client gets nothing from it.
  Client plain(loop.ex(), {.nodes = nodes, .connect_timeout = 500ms, .breaker_failures = 100});
  EXPECT_FALSE(cmd(loop, plain, {"PING"}, Deadline::after(2s)));
  EXPECT_EQ(plain.stats().connections.connects.load(), 0u);

  // A server whose certificate does not chain to the roots given: no connection is made.
  auto other = net::make_client_context({dir + "/other-ca.pem", "", ""}, "redis tls");
  ASSERT_TRUE(other) << other.error().message;
  Client refused(loop.ex(), {.nodes = nodes, .tls = *other, .breaker_failures = 100});
  auto r = cmd(loop, refused, {"PING"}, Deadline::after(2s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(refused.stats().connections.connects.load(), 0u);
  EXPECT_GE(refused.stats().connections.connect_failures.load(), 1u);
}

TEST(RedisTls, FilesItCannotUseAreNamedInTheError) {
  COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_REDIS_TLS_DIR");
  struct Case {
    net::TlsFiles o;
    const char* says;
  } cases[] = {
      {{dir + "/missing.pem", "", ""}, "ca_file"},
      {{dir + "/ca.pem", dir + "/missing.pem", dir + "/client.key"}, "cert_file"},
      {{dir + "/ca.pem", dir + "/client.pem", dir + "/node.key"}, "key_file"},  // not its key
      {{dir + "/ca.pem", dir + "/client.pem", ""}, "go together"},
  };
  for (const Case& c : cases) {
    auto ctx = net::make_client_context(c.o, "redis tls");
    ASSERT_FALSE(ctx) << c.says;
    EXPECT_NE(ctx.error().message.find(c.says), std::string::npos) << ctx.error().message;
  }
}

}  // namespace
}  // namespace commentd::redis

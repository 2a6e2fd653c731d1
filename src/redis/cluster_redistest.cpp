// The client against a real 3-master Redis Cluster: routing by slot, MOVED and ASK during a
// manual slot migration, and a `redis-cli --cluster reshard` under load with no error
// reaching a caller; the same over TLS on a cluster of TLS ports (COMMENTD_TEST_REDIS_CLUSTER_TLS).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include "net/tls.h"
#include "redis/client.h"
#include "redis/test_env.h"

namespace commentd::redis {
namespace {

using namespace std::chrono_literals;

using testenv::Loop;  // the service's executors: two threads

Deadline dl() { return Deadline::after(5s); }

// Runs a shell command; returns its exit status and output.
std::pair<int, std::string> shell(const std::string& c) {
  char path[] = "/tmp/commentd-redistest-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return {-1, "mkstemp failed"};
  close(fd);
  int rc = std::system((c + " >" + path + " 2>&1").c_str());
  std::ifstream in(path);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  unlink(path);
  return {rc, out};
}

// How a test reaches a cluster: plain, or TLS (the client's context and redis-cli's flags).
struct Reach {
  std::shared_ptr<asio::ssl::context> tls;
  std::string cli;  // redis-cli arguments before --cluster
};

// The node id of host:port, from CLUSTER MYID; empty if the node did not answer (a loaded
// machine: connect and handshake get 5 s).
std::string node_id(Loop& loop, const std::pair<std::string, uint16_t>& n, const Reach& reach = {}) {
  Client c(loop.ex(), {.nodes = {n}, .tls = reach.tls, .connect_timeout = 5000ms, .command_timeout = 5000ms});
  auto r = loop.run(c.command({"CLUSTER", "MYID"}, Deadline::after(10s)));
  return r ? r->str : std::string();
}

TEST(RedisCluster, KeysRouteToTheirSlotsFromOneSeed) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS_CLUSTER");
  Loop loop;
  Client c(loop.ex(), {.nodes = {nodes.front()}, .cluster = true});
  const std::string p = testenv::unique_prefix();
  for (int i = 0; i < 300; ++i) {
    auto r = loop.run(c.command({"SET", p + std::to_string(i), std::to_string(i), "PX", "60000"}, dl()));
    ASSERT_TRUE(r) << r.error().message;
  }
  for (int i = 0; i < 300; ++i) {
    auto r = loop.run(c.command({"GET", p + std::to_string(i)}, dl()));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->str, std::to_string(i));
  }
  EXPECT_GE(c.stats().slot_refreshes.load(), 1u);
}

TEST(RedisCluster, EvalPipelinedRoutesEachCallToItsSlot) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS_CLUSTER");
  Loop loop;
  Client c(loop.ex(), {.nodes = {nodes.front()}, .cluster = true});
  Script s("test_set_get", "redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000) return redis.call('GET', KEYS[1])");
  const std::string p = testenv::unique_prefix();
  std::vector<std::vector<std::string>> keys, args;
  for (int i = 0; i < 200; ++i) {  // keys on every master
    keys.push_back({"{" + p + std::to_string(i) + "}"});
    args.push_back({std::to_string(i)});
  }
  auto rs = loop.run(c.eval_pipelined(s, keys, args, dl()));
  ASSERT_EQ(rs.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(rs[i].ok()) << i << ": " << rs[i].error().message;
    EXPECT_EQ(rs[i]->str, std::to_string(i));
  }
  for (int i = 0; i < 200; i += 37) {
    auto r = loop.run(c.command({"GET", keys[i][0]}, dl()));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->str, std::to_string(i));
  }
}

// Moves the slot of `key` from its owner to another master by hand, step by step, checking
// ASK while it is migrating and MOVED after.
void ask_during_migration_and_moved_after(const std::vector<std::pair<std::string, uint16_t>>& nodes) {
  Loop loop;
  Client c(loop.ex(), {.nodes = {nodes.front()}, .cluster = true});
  const std::string tag = "{" + testenv::unique_prefix() + "}";
  const std::string a = tag + "a", b = tag + "b";
  ASSERT_TRUE(loop.run(c.command({"SET", a, "1"}, dl())));
  const auto slot = std::to_string(key_slot(a));
  // Who owns it, and who will.
  std::pair<std::string, uint16_t> src, dst;
  for (auto& n : nodes) {
    Client one(loop.ex(), {.nodes = {n}});
    auto r = loop.run(one.command({"CLUSTER", "COUNTKEYSINSLOT", slot}, dl()));
    ASSERT_TRUE(r);
    auto owner = loop.run(one.command({"GET", a}, dl()));  // errors with MOVED unless owner
    if (owner) src = n;
  }
  ASSERT_FALSE(src.first.empty());
  for (auto& n : nodes)
    if (n != src) dst = n;
  const std::string src_id = node_id(loop, src), dst_id = node_id(loop, dst);
  Client s(loop.ex(), {.nodes = {src}}), d(loop.ex(), {.nodes = {dst}});
  ASSERT_TRUE(loop.run(d.command({"CLUSTER", "SETSLOT", slot, "IMPORTING", src_id}, dl())));
  ASSERT_TRUE(loop.run(s.command({"CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id}, dl())));
  // `b` does not exist on the source: the source answers ASK; the client asks the target.
  ASSERT_TRUE(loop.run(c.command({"SET", b, "2"}, dl())));
  EXPECT_GE(c.stats().ask.load(), 1u);
  auto ra = loop.run(c.command({"GET", a}, dl()));  // still on the source
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->str, "1");
  // Every key of the slot moves (other tests' keys may share it), then the slot itself.
  for (;;) {
    auto keys = loop.run(s.command({"CLUSTER", "GETKEYSINSLOT", slot, "1000"}, dl()));
    ASSERT_TRUE(keys);
    if (keys->elements.empty()) break;
    std::vector<std::string> mig{"MIGRATE", dst.first, std::to_string(dst.second), "", "0", "5000", "KEYS"};
    for (auto& k : keys->elements) mig.push_back(k.str);
    auto m = loop.run(s.command(mig, dl()));
    ASSERT_TRUE(m) << m.error().message;
  }
  for (auto* n : {&s, &d})
    ASSERT_TRUE(loop.run(n->command({"CLUSTER", "SETSLOT", slot, "NODE", dst_id}, dl())));
  auto r = loop.run(c.command({"GET", a}, dl()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->str, "1");
  EXPECT_GE(c.stats().moved.load(), 1u);
  auto rb = loop.run(c.command({"GET", b}, dl()));
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->str, "2");
}

void reshard_under_load(const std::vector<std::pair<std::string, uint16_t>>& nodes, const Reach& reach = {}) {
  Loop loop;
  // Slots from every other master to a random one: repeatable without draining a master. Its
  // id first: without one redis-cli would ask how many slots to move, forever (stdin is closed).
  const auto& target = nodes[std::random_device{}() % nodes.size()];
  const std::string to = node_id(loop, target, reach);
  ASSERT_FALSE(to.empty()) << "CLUSTER MYID of " << target.first << ":" << target.second;
  Client c(loop.ex(), {.nodes = nodes,
                       .cluster = true,
                       .tls = reach.tls,
                       .connect_timeout = 5000ms,
                       .command_timeout = 2000ms});
  Script incr2("test_incr2",
               "redis.call('INCR', KEYS[1]); return redis.call('INCR', KEYS[2])");
  const std::string p = testenv::unique_prefix();
  std::atomic<bool> done{false};
  std::atomic<int> errors{0}, ok{0};
  std::string first_error;
  std::mutex mu;
  // Load: 8 workers, each on its own hash tag, a two-key script and a read per step.
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w)
    workers.emplace_back([&, w] {
      for (int i = 0; !done || i < 50; ++i) {
        const std::string tag = "{" + p + std::to_string((w * 7919 + i) % 2048) + "}";
        auto r = loop.run(c.eval(incr2, {tag + "x", tag + "y"}, {}, dl()));
        auto g = loop.run(c.command({"GET", tag + "x"}, dl()));
        if (r && g) {
          ok++;
        } else {
          errors++;
          std::lock_guard lk(mu);
          if (first_error.empty()) first_error = r ? g.error().message : r.error().message;
        }
      }
    });
  // Bounded: a redis-cli that waits on a prompt or a node fails the test instead of hanging it.
  const auto [rc, out] = shell("timeout 240 redis-cli " + reach.cli + " --cluster reshard " + target.first + ":" +
                               std::to_string(target.second) +
                                " --cluster-from all --cluster-to " + to +
                                " --cluster-slots 600 --cluster-yes </dev/null");
  done = true;
  for (auto& t : workers) t.join();
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(errors.load(), 0) << first_error;
  EXPECT_GT(ok.load(), 400);
  EXPECT_GT(c.stats().moved.load() + c.stats().ask.load(), 0u) << "the reshard moved nothing under load:\n" << out;
}

// One test, so the two slot moves never run at once (ctest runs tests in parallel).
TEST(RedisCluster, SlotMovesSurfaceNoErrors) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS_CLUSTER");
  ASSERT_GE(nodes.size(), 2u);
  {
    SCOPED_TRACE("manual migration: ASK, then MOVED");
    ask_during_migration_and_moved_after(nodes);
  }
  if (HasFatalFailure()) return;
  SCOPED_TRACE("redis-cli --cluster reshard under load");
  reshard_under_load(nodes);
}

// Every connection to the TLS cluster is TLS, verified against its CA and with the client's
// certificate (the cluster requires one): the seeds, the nodes CLUSTER SLOTS names (each node
// answers a TLS client with its TLS port), and those MOVED and ASK name while redis-cli (over
// TLS too: with tls-cluster a node's MIGRATE speaks TLS) moves slots under the load. A node's
// TLS port speaks nothing else, so a client sent to a plain port would fail every call there.
TEST(RedisClusterTls, RoutesBySlotAndFollowsAReshardUnderLoadOverTls) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS_CLUSTER_TLS");
  COMMENTD_TEST_SERVER(dir, "COMMENTD_TEST_REDIS_CLUSTER_TLS_DIR");
  {
    SCOPED_TRACE("without a client certificate the cluster takes no connection");
    auto bare = net::make_client_context({dir + "/ca.pem", "", ""}, "redis tls");
    ASSERT_TRUE(bare) << bare.error().message;
    Loop loop;
    Client c(loop.ex(), {.nodes = {nodes.front()}, .cluster = true, .tls = *bare, .breaker_failures = 100});
    EXPECT_FALSE(loop.run(c.command({"PING"}, Deadline::after(2s))));
    EXPECT_EQ(c.stats().connections.connects.load(), 0u);
  }
  auto ctx = net::make_client_context({dir + "/ca.pem", dir + "/client.pem", dir + "/client.key"}, "redis tls");
  ASSERT_TRUE(ctx) << ctx.error().message;
  const Reach reach{*ctx, "--tls --cacert " + dir + "/ca.pem --cert " + dir + "/client.pem --key " + dir + "/client.key"};
  {
    SCOPED_TRACE("keys on every master from one seed");
    Loop loop;
    // A fresh client's first call waits for its TLS connect: on a loaded machine that can take
    // longer than the default command timeout (250 ms), which is the product's, not the test's.
    Client c(loop.ex(), {.nodes = {nodes.front()},
                         .cluster = true,
                         .tls = reach.tls,
                         .connect_timeout = 5000ms,
                         .command_timeout = 5000ms});
    const std::string p = testenv::unique_prefix();
    for (int i = 0; i < 300; ++i)
      ASSERT_TRUE(loop.run(c.command({"SET", p + std::to_string(i), std::to_string(i), "PX", "60000"}, dl())));
    for (int i = 0; i < 300; ++i) {
      auto r = loop.run(c.command({"GET", p + std::to_string(i)}, dl()));
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->str, std::to_string(i));
    }
    EXPECT_GE(c.stats().slot_refreshes.load(), 1u);
    // Three nodes, each reached: the seed and the two CLUSTER SLOTS named.
    EXPECT_GE(c.stats().connections.connects.load(), 3u);
  }
  if (HasFatalFailure()) return;
  SCOPED_TRACE("redis-cli --cluster reshard under load, over TLS");
  reshard_under_load(nodes, reach);
}

}  // namespace
}  // namespace commentd::redis

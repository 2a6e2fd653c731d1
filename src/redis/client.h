// The Redis client: asynchronous and pipelined over a few connections per node, on the
// caller's Asio executors. Single node or Redis Cluster (follows MOVED/ASK, refreshes its
// slot map with CLUSTER SLOTS). Every call is bounded by the request's Deadline capped by
// command_timeout. A circuit breaker turns a dead or stuck Redis into immediate errors
// instead of a wait on every request, and lets one probe through per open interval to
// notice recovery; connections reconnect by themselves with backoff and jitter.
//
// Errors: Errc::unavailable for transport failures, timeouts and an open breaker;
// Errc::internal for an error reply from Redis (the message is Redis's).
// Thread-safe; every call completes on the awaiting coroutine's executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/circuit_breaker.h"
#include "core/deadline.h"
#include "metrics/histogram.h"
#include "redis/connection.h"
#include "redis/resp.h"

namespace commentd::redis {

struct ClientOptions {
  std::vector<std::pair<std::string, uint16_t>> nodes;  // one node, or cluster seeds
  bool cluster = false;
  std::string username, password;
  int db = 0;                      // single node only
  std::shared_ptr<asio::ssl::context> tls;  // set: every connection is TLS (net::make_client_context)
  size_t pool_size = 2;            // connections per node
  milliseconds connect_timeout{1000};
  milliseconds command_timeout{250};
  milliseconds backoff_min{50}, backoff_max{2000};
  int breaker_failures = 5;        // consecutive transport failures that open the breaker
                                   // (timeouts count at most one per command_timeout)
  milliseconds breaker_open{1000}; // how long it stays open before one probe
  int max_redirects = 5;
};

// A Lua script, run by EVALSHA; on NOSCRIPT (a restarted or new node) it is sent once by EVAL,
// which loads it. `name` labels its metrics.
struct Script {
  Script(std::string name, std::string source);
  std::string name, source, sha1;
};

// Per-command figures, labelled by command ("get", "evalsha:cache_lookup"...).
struct CommandStats {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> errors{0};  // transport errors, timeouts and error replies
  metrics::Histogram latency{metrics::Histogram::latency_bounds()};
};

struct ClientStats {
  // Owned with the client's connections, which may count an attempt after the client is gone
  // (connection.h); `connections` is the same object.
  std::shared_ptr<ConnectionCounters> connection_counters = std::make_shared<ConnectionCounters>();
  ConnectionCounters& connections = *connection_counters;
  std::atomic<uint64_t> moved{0}, ask{0}, slot_refreshes{0}, noscript{0};
  std::atomic<uint64_t> timeouts{0};
  // Stable addresses: entries are never removed.
  CommandStats& command(const std::string& name);
  std::vector<std::pair<std::string, const CommandStats*>> commands() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<CommandStats>> by_name_;  // GUARDED_BY(mu_)
};

class Client {
 public:
  // Starts connecting at once (to the seeds; in cluster mode, then to every master).
  Client(asio::any_io_executor ex, ClientOptions opts);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // args[1] (if any) is the key that routes the command; keyless commands go to any node.
  asio::awaitable<Result<Reply>> command(std::vector<std::string> args, Deadline d);
  // EVALSHA with a NOSCRIPT fallback; keys[0] routes it (every key must share its slot).
  asio::awaitable<Result<Reply>> eval(const Script& s, std::vector<std::string> keys,
                                      std::vector<std::string> args, Deadline d);
  // Runs `s` once per entry of `keys` (with the same entry of `args`), pipelined: the calls
  // are written together (one write per connection, keys[i][0] routing each) and awaited
  // together under one deadline. One result per call, in order, as eval() would give it.
  // Calls answered by a redirection, TRYAGAIN or NOSCRIPT are sent again after one of them
  // has gone through eval() alone (which follows it, refreshes the slot map or loads the script).
  asio::awaitable<std::vector<Result<Reply>>> eval_pipelined(const Script& s,
                                                             std::vector<std::vector<std::string>> keys,
                                                             std::vector<std::vector<std::string>> args,
                                                             Deadline d);
  // Closes every connection; calls in flight fail. Idempotent.
  void stop();

  const ClientStats& stats() const { return stats_; }
  // Transport failures open it; timeouts count once per command_timeout (see circuit_breaker.h).
  const CircuitBreaker& breaker() const { return breaker_; }
  bool breaker_open() const { return breaker_.state() == CircuitBreaker::State::open; }
  const ClientOptions& options() const { return opts_; }
  const asio::any_io_executor& executor() const { return ex_; }

 private:
  struct Node;
  struct Routed {
    std::shared_ptr<Connection> conn;
    bool asking = false;
  };

  std::shared_ptr<Node> node_for(const std::string& host, uint16_t port);
  std::shared_ptr<Connection> pick(const std::string& key);
  asio::awaitable<Result<Reply>> exec(std::shared_ptr<Connection> c, std::string bytes, int n, Deadline d);
  asio::awaitable<Result<Reply>> routed(std::string label, std::vector<std::string> args, std::string key,
                                        Deadline d);
  // One pipelined wave of `calls` (formatted commands with their routing keys); see eval_pipelined.
  asio::awaitable<std::vector<Result<Reply>>> wave(std::vector<std::pair<std::string, std::string>> calls, Deadline d);
  // Cluster mode with no slot map yet: loads it (one caller at a time).
  asio::awaitable<void> ensure_slots();
  asio::awaitable<void> refresh_slots();
  void maybe_refresh();
  // admit() for `calls` calls (a pipelined wave asks once).
  bool breaker_admit(uint64_t calls = 1);
  // transport_ok: the server answered. timed_out: the call (or every call of a wave) ended at
  // its deadline. Logs the breaker's transitions (an opening at most once per 10 s).
  void breaker_result(bool transport_ok, bool timed_out = false);

  asio::any_io_executor ex_;
  const ClientOptions opts_;
  ClientStats stats_;
  std::atomic<uint64_t> seed_{0x9e3779b97f4a7c15ULL};

  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> nodes_;  // GUARDED_BY(mu_), by "host:port"
  std::vector<std::shared_ptr<Node>> slots_;            // GUARDED_BY(mu_); 16384 in cluster mode
  bool stopped_ = false;                                // GUARDED_BY(mu_)
  std::atomic<bool> refreshing_{false};

  CircuitBreaker breaker_;
  std::atomic<int64_t> last_log_ms_{0};
};

}  // namespace commentd::redis

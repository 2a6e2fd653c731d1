// One TCP connection to one Redis node, pipelined: commands are written back to back as
// they arrive and replies are matched to callers in order. It connects, authenticates and
// selects its db by itself, and after a failure reconnects with exponential backoff and
// jitter until stop(). While it is connecting, calls wait for the handshake; while it is
// down (between attempts), calls fail at once, so nobody waits on a dead node.
// With `tls` set, every connection is TLS: Redis's certificate is verified against the
// context's roots and must name `host` (its IP or DNS name in subjectAltName); SNI is sent
// for a DNS name. A failed handshake is a failed connect (logged when its reason changes).
// Thread-safe: every member runs on the connection's strand; send() may be called anywhere.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "redis/resp.h"

namespace boost::asio::ssl {
class context;
}

namespace commentd::redis {

namespace asio = boost::asio;
using std::chrono::milliseconds;

struct ConnectionOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string username;  // ACL user; empty = the default user
  std::string password;  // empty = no AUTH
  int db = 0;            // SELECT when > 0 (never in cluster mode)
  std::shared_ptr<asio::ssl::context> tls;  // set: TLS (net::make_client_context)
  milliseconds connect_timeout{1000};  // TCP connect + TLS handshake + AUTH/SELECT
  milliseconds backoff_min{50};
  milliseconds backoff_max{2000};
};

// Counters shared by every connection of a client. Shared ownership: a connection stopped by
// its client's destructor may still finish the attempt it was making (a connect, a TLS
// handshake) and count it after the client is gone.
struct ConnectionCounters {
  std::atomic<uint64_t> connects{0};         // handshakes completed
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> disconnects{0};      // up connections lost
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Called exactly once, on the connection's strand: the reply of the last of the `n`
  // commands sent together, or Errc::unavailable when the connection failed first.
  using Callback = std::function<void(Result<Reply>)>;

  static std::shared_ptr<Connection> create(asio::any_io_executor ex, ConnectionOptions opts,
                                            std::shared_ptr<ConnectionCounters> counters, uint64_t seed);
  void start();
  // Closes the socket, fails every call in flight, and stops reconnecting.
  void stop();
  // `bytes` holds `n` formatted commands; replies to all but the last are dropped, except
  // that an error among them is what the callback gets.
  void send(std::string bytes, int n, Callback cb);
  // Pipelined: every command of `calls` is written in one go (none waits for another's
  // reply); each callback gets its own command's reply, as send(bytes, 1, cb) would.
  void send_each(std::vector<std::pair<std::string, Callback>> calls);
  // A caller gave up on a call: if nothing was read for `stuck_after` while calls are in
  // flight, the server is taken as stuck and the connection is reset.
  void note_timeout(milliseconds stuck_after);

  bool up() const { return up_.load(std::memory_order_relaxed); }
  bool down() const { return down_.load(std::memory_order_relaxed); }
  const ConnectionOptions& options() const { return opts_; }

 private:
  Connection(asio::any_io_executor ex, ConnectionOptions opts, std::shared_ptr<ConnectionCounters> counters,
             uint64_t seed);
  enum class State { connecting, ready, down, stopped };
  struct Pending {
    int remaining;
    Callback cb;
    std::optional<Reply> first_error;
  };

  struct Link;  // one connect attempt's socket and its TLS session (connection.cpp)

  asio::awaitable<void> run();
  asio::awaitable<bool> connect_once();
  void close_link();
  asio::awaitable<void> read_loop();
  void do_write();
  void fail_all(const std::string& why);
  void deliver(Reply r);

  ConnectionOptions opts_;
  std::shared_ptr<ConnectionCounters> counters_;
  asio::strand<asio::any_io_executor> strand_;
  std::shared_ptr<Link> link_;       // all below: strand only. Never null; a new one per
                                     // attempt (an old one lives until its last operation ends)
  asio::steady_timer timer_;
  State state_ = State::connecting;
  std::string out_;                   // bytes queued for the next write (on link_)
  std::deque<Pending> pending_;       // sent, awaiting replies, in order
  std::deque<std::pair<std::string, Pending>> waiting_;  // queued during the handshake
  std::unique_ptr<RespReader> reader_;
  std::chrono::steady_clock::time_point last_read_;
  std::mt19937_64 rng_;
  std::string last_tls_error_;        // logged once until it changes or a connect succeeds
  std::atomic<bool> up_{false}, down_{false};
};

}  // namespace commentd::redis

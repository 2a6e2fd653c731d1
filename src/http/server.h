// The HTTP/1.1 server: Boost.Beast on Asio C++20 coroutines, keep-alive, one strand per
// connection, a body limit (413) and a per-request timeout. It knows nothing of comments:
// every request goes to one Handler (the router).
//
// Connections (see conn_table.h): at most max_connections_per_ip per peer address and an
// effective cap of min(max_connections, RLIMIT_NOFILE - a reserve), both met by evicting the
// oldest idle connection, never a busy one. Timeouts: header_timeout for a request's header
// (from the connection's accept, or from the first byte of a later request: slowloris),
// idle_timeout between keep-alive requests, request_timeout for the body and the handler
// (RequestContext.deadline). accept() failing for want of descriptors (EMFILE/ENFILE) backs
// off 1 ms doubling to 100 ms, frees the oldest idle connection, and logs one line per 5 s.
// HTTP: HEAD is answered with the GET headers (Content-Length included) and no body; an
// HTTP/1.1 request without exactly one Host header gets 400 (RFC 9112 3.2).
//
// Thread-safe: start() and stop() may be called from any thread; the io_context may be run
// by many threads.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/deadline.h"
#include "core/error.h"
#include "http/conn_table.h"

namespace commentd::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using Request = beast::http::request<beast::http::string_body>;
using Response = beast::http::response<beast::http::string_body>;

// What the server knows of a request beyond its bytes.
struct RequestContext {
  Deadline deadline;             // server.request_timeout after the request was read
  asio::ip::address peer;        // the TCP peer (the balancer's address behind a proxy)
};
// REQUIRES: the handler does not keep `ctx` past its completion.
using Handler = std::function<asio::awaitable<Response>(Request&, const RequestContext& ctx)>;

struct ServerOptions {
  size_t max_body_bytes = 65536;
  size_t max_connections = 10000;
  size_t max_connections_per_ip = 1000;  // 0 = no per-address cap
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds idle_timeout{30000};
  std::chrono::milliseconds header_timeout{10000};
  // Receives the event loop's lag every ~10 ms (how late a timer ran); null = no probe.
  std::function<void(std::chrono::nanoseconds lag)> on_loop_lag;
};

struct ServerStats {
  std::atomic<uint64_t> refused{0};    // new connections closed at once: no idle one to evict
  std::atomic<uint64_t> evicted{0};    // idle connections closed to make room
  std::atomic<uint64_t> fd_errors{0};  // accept() failures for want of descriptors
  std::atomic<uint64_t> timeouts{0};   // connections closed by the header or idle timeout
};

// The connection cap the descriptor limit allows: min(max_connections, soft - reserve),
// reserve = min(soft / 2, 128 + soft / 8) descriptors kept for RocksDB, the store's files
// and outgoing clients; at least 1.
size_t connection_cap(size_t max_connections, uint64_t nofile_soft, uint64_t* reserve_out = nullptr);

class Server {
 public:
  Server(asio::io_context& ioc, ServerOptions opts, Handler handler);
  ~Server();

  // Binds and starts accepting. Returns the bound port (useful with port 0).
  Result<uint16_t> start(const std::string& host, uint16_t port);
  // Stops accepting, closes idle connections, lets in-flight requests finish.
  void stop();
  // Connections still open (in flight or idle).
  size_t connections() const { return live_.load(); }
  size_t in_flight() const { return in_flight_.load(); }
  // The cap in force (set by start()).
  size_t max_connections() const { return cap_; }
  const ServerStats& stats() const { return stats_; }

 private:
  struct Conn;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<Conn> conn);
  asio::awaitable<void> lag_probe();
  // Closes the connections the table evicted (on their strands).
  void close_evicted(const std::vector<uint64_t>& ids);

  asio::io_context& ioc_;
  const ServerOptions opts_;
  Handler handler_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> live_{0};
  std::atomic<size_t> in_flight_{0};
  size_t cap_ = 0;                         // set by start()
  std::unique_ptr<ConnTable> table_;         // set by start()
  ServerStats stats_;
  std::mutex conns_mu_;
  uint64_t next_conn_id_ = 0;                                        // GUARDED_BY(conns_mu_)
  std::unordered_map<uint64_t, std::weak_ptr<Conn>> conns_;          // GUARDED_BY(conns_mu_)
};

// A JSON response with the given status and body, keep-alive as the request asked.
Response json_response(const Request& req, beast::http::status status, std::string body);

}  // namespace commentd::http

// The HTTP/1.1 server: Boost.Beast on Asio C++20 coroutines, keep-alive, one strand per
// connection, a body limit (413) and a per-request timeout. It knows nothing of comments:
// every request goes to one Handler (the router).
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

#include "core/deadline.h"
#include "core/error.h"

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
  std::chrono::milliseconds request_timeout{30000};
};

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

 private:
  struct Conn;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> session(std::shared_ptr<Conn> conn);

  asio::io_context& ioc_;
  const ServerOptions opts_;
  Handler handler_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> live_{0};
  std::atomic<size_t> in_flight_{0};
  std::mutex conns_mu_;
  uint64_t next_conn_id_ = 0;                                        // GUARDED_BY(conns_mu_)
  std::unordered_map<uint64_t, std::weak_ptr<Conn>> conns_;          // GUARDED_BY(conns_mu_)
};

// A JSON response with the given status and body, keep-alive as the request asked.
Response json_response(const Request& req, beast::http::status status, std::string body);

}  // namespace commentd::http

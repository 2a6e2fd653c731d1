#include "http/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <spdlog/spdlog.h>

namespace commentd::http {

namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct Server::Conn {
  explicit Conn(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  bool busy = false;  // a request is being handled; owned by the connection's strand
};

Server::Server(asio::io_context& ioc, ServerOptions opts, Handler handler)
    : ioc_(ioc), opts_(opts), handler_(std::move(handler)), acceptor_(asio::make_strand(ioc)) {}

Server::~Server() = default;

Result<uint16_t> Server::start(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Error(Errc::bad_request, "bad listen address '" + host + "': " + ec.message());
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(Errc::unavailable, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  uint16_t bound = acceptor_.local_endpoint().port();
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return bound;
}

void Server::stop() {
  if (stopping_.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  // Idle keep-alive connections are closed now; busy ones close after their response.
  std::lock_guard lk(conns_mu_);
  for (auto& [id, w] : conns_) {
    if (auto c = w.lock()) {
      asio::post(c->stream.get_executor(), [c] {
        if (!c->busy) {
          beast::error_code ec;
          c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
          c->stream.cancel();
        }
      });
    }
  }
}

asio::awaitable<void> Server::accept_loop() {
  for (;;) {
    beast::error_code ec;
    tcp::socket sock = co_await acceptor_.async_accept(asio::make_strand(ioc_),
                                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      continue;
    }
    if (live_.load() >= opts_.max_connections) {
      sock.close(ec);  // over the cap: refuse rather than grow without bound
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Conn>(std::move(sock));
    auto ex = conn->stream.get_executor();
    asio::co_spawn(ex, session(std::move(conn)), asio::detached);
  }
}

asio::awaitable<void> Server::session(std::shared_ptr<Conn> conn) {
  live_.fetch_add(1);
  uint64_t id;
  {
    std::lock_guard lk(conns_mu_);
    id = next_conn_id_++;
    conns_[id] = conn;
  }
  beast::flat_buffer buffer;
  for (;;) {
    if (stopping_) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.max_body_bytes);
    parser.header_limit(16 * 1024);
    conn->stream.expires_after(opts_.request_timeout);
    beast::error_code ec;
    co_await bhttp::async_read(conn->stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bhttp::error::body_limit) {
      Request req;
      req.version(11);
      auto res = json_response(req, bhttp::status::payload_too_large,
                               "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"request body is over " +
                                   std::to_string(opts_.max_body_bytes) + " bytes\"}}");
      res.keep_alive(false);
      co_await bhttp::async_write(conn->stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
          ec != beast::error::timeout && ec != asio::error::connection_reset) {
        // Malformed HTTP: answer 400 once, then close.
        Request req;
        req.version(11);
        auto res = json_response(req, bhttp::status::bad_request,
                                 "{\"error\":{\"code\":\"bad_request\",\"message\":\"malformed HTTP request\"}}");
        res.keep_alive(false);
        conn->stream.expires_after(std::chrono::seconds(5));
        co_await bhttp::async_write(conn->stream, res, asio::redirect_error(asio::use_awaitable, ec));
      }
      break;
    }
    conn->busy = true;
    in_flight_.fetch_add(1);
    Request req = parser.release();
    RequestContext ctx{Deadline::after(opts_.request_timeout), {}};
    beast::error_code pec;
    auto peer = conn->stream.socket().remote_endpoint(pec);
    if (!pec) ctx.peer = peer.address();
    Response res = co_await handler_(req, ctx);
    res.keep_alive(req.keep_alive() && !stopping_);
    res.prepare_payload();
    conn->stream.expires_after(opts_.request_timeout);
    co_await bhttp::async_write(conn->stream, res, asio::redirect_error(asio::use_awaitable, ec));
    in_flight_.fetch_sub(1);
    conn->busy = false;
    if (ec || !res.keep_alive()) break;
  }
  beast::error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  {
    std::lock_guard lk(conns_mu_);
    conns_.erase(id);
  }
  live_.fetch_sub(1);
}

Response json_response(const Request& req, bhttp::status status, std::string body) {
  Response res{status, req.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::server, "commentd");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  return res;
}

}  // namespace commentd::http

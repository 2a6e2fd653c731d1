#include "http/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>

namespace commentd::http {

namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Server::Conn {
  Conn(tcp::socket s, uint64_t i, asio::ip::address p, ConnTable::Handle e)
      : stream(std::move(s)), id(i), peer(p), entry(std::move(e)) {}
  beast::tcp_stream stream;
  const uint64_t id;
  const asio::ip::address peer;  // read once at accept: a syscall per request otherwise
  const ConnTable::Handle entry;  // busy/idle, without the table's lock
  bool busy = false;  // a request is being handled; owned by the connection's strand
};

namespace {

Response error_json(unsigned version, bhttp::status status, std::string_view code, std::string_view message) {
  Request req;
  req.version(version);
  auto res = json_response(req, status,
                           "{\"error\":{\"code\":\"" + std::string(code) + "\",\"message\":\"" +
                               std::string(message) + "\"}}");
  res.keep_alive(false);
  return res;
}

// RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; any request has at most one.
bool host_ok(const Request& req) {
  size_t n = req.count(bhttp::field::host);
  return n == 1 || (n == 0 && req.version() < 11);
}

bool out_of_descriptors(const beast::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory ||
         (ec.category() == boost::system::system_category() && ec.value() == ENFILE);
}

}  // namespace

size_t connection_cap(size_t max_connections, uint64_t nofile_soft, uint64_t* reserve_out) {
  if (reserve_out) *reserve_out = 0;
  if (nofile_soft == RLIM_INFINITY) return max_connections;
  uint64_t reserve = std::min<uint64_t>(nofile_soft / 2, 128 + nofile_soft / 8);
  if (reserve_out) *reserve_out = reserve;
  uint64_t avail = nofile_soft > reserve ? nofile_soft - reserve : 1;
  return std::max<size_t>(1, static_cast<size_t>(std::min<uint64_t>(max_connections, avail)));
}

Server::Server(asio::io_context& ioc, ServerOptions opts, Handler handler)
    : ioc_(ioc), opts_(std::move(opts)), handler_(std::move(handler)), acceptor_(asio::make_strand(ioc)) {}

Server::~Server() = default;

Result<uint16_t> Server::start(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Error(Errc::bad_request, "bad listen address '" + host + "': " + ec.message());

  // Descriptors: raise the soft limit to the hard one, then keep a reserve for everything
  // that is not a client connection.
  rlimit rl{};
  uint64_t soft = RLIM_INFINITY;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rlimit raised = rl;
      raised.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    soft = rl.rlim_cur;
  }
  uint64_t reserve = 0;
  cap_ = connection_cap(opts_.max_connections, soft, &reserve);
  table_ = std::make_unique<ConnTable>(ConnTable::Limits{cap_, opts_.max_connections_per_ip});
  if (soft == RLIM_INFINITY)
    spdlog::info("connections: at most {} (server.max_connections; RLIMIT_NOFILE unlimited), {} per address",
                 cap_, opts_.max_connections_per_ip);
  else
    spdlog::info("connections: at most {} = min(server.max_connections {}, RLIMIT_NOFILE {} - {} kept for "
                 "RocksDB files, the store and outgoing clients), {} per address",
                 cap_, opts_.max_connections, soft, reserve, opts_.max_connections_per_ip);

  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(Errc::unavailable, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  uint16_t bound = acceptor_.local_endpoint().port();
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  if (opts_.on_loop_lag) asio::co_spawn(ioc_, lag_probe(), asio::detached);
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

void Server::close_evicted(const std::vector<uint64_t>& ids) {
  std::lock_guard lk(conns_mu_);
  for (uint64_t id : ids) {
    stats_.evicted.fetch_add(1, std::memory_order_relaxed);
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    if (auto c = it->second.lock()) {
      // The table no longer holds it, so its session will not start another request.
      asio::post(c->stream.get_executor(), [c] {
        if (c->busy) return;
        beast::error_code ec;
        c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        c->stream.cancel();
      });
    }
  }
}

asio::awaitable<void> Server::accept_loop() {
  asio::steady_timer backoff_timer(acceptor_.get_executor());
  std::chrono::milliseconds backoff{0};
  steady::time_point last_log{};
  uint64_t unlogged = 0;
  for (;;) {
    beast::error_code ec;
    tcp::socket sock = co_await acceptor_.async_accept(asio::make_strand(ioc_),
                                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      bool no_fds = out_of_descriptors(ec);
      if (no_fds) {
        stats_.fd_errors.fetch_add(1, std::memory_order_relaxed);
        if (auto victim = table_->evict_oldest_idle()) close_evicted({*victim});
      }
      ++unlogged;
      auto now = steady::now();
      if (now - last_log >= 5s) {
        spdlog::warn("accept failed: {} ({} failures since the last such line){}", ec.message(), unlogged,
                     no_fds ? "; backing off up to 100 ms" : "");
        last_log = now;
        unlogged = 0;
      }
      if (!no_fds) continue;
      // Without a free descriptor the pending connection stays in the backlog and accept
      // fails again at once: wait instead of spinning.
      backoff = std::clamp(backoff * 2, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
      backoff_timer.expires_after(backoff);
      co_await backoff_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    backoff = std::chrono::milliseconds(0);
    auto peer = sock.remote_endpoint(ec);
    if (ec) continue;  // already gone; the socket closes here
    uint64_t id;
    {
      std::lock_guard lk(conns_mu_);
      id = next_conn_id_++;
    }
    auto opened = table_->open(id, peer.address(), steady::now());
    if (!opened.accepted) {
      // Full of busy connections: refuse rather than grow without bound.
      stats_.refused.fetch_add(1, std::memory_order_relaxed);
      sock.close(ec);
      continue;
    }
    if (!opened.evicted.empty()) close_evicted(opened.evicted);
    sock.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Conn>(std::move(sock), id, peer.address(), std::move(opened.handle));
    {
      std::lock_guard lk(conns_mu_);
      conns_[id] = conn;
    }
    live_.fetch_add(1);
    auto ex = conn->stream.get_executor();
    asio::co_spawn(ex, session(std::move(conn)), asio::detached);
  }
}

asio::awaitable<void> Server::lag_probe() {
  constexpr auto kPeriod = 10ms;
  asio::steady_timer timer(ioc_);
  while (!stopping_) {
    auto due = steady::now() + kPeriod;
    timer.expires_at(due);
    beast::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || stopping_) co_return;
    opts_.on_loop_lag(steady::now() - due);
  }
}

asio::awaitable<void> Server::session(std::shared_ptr<Conn> conn) {
  beast::flat_buffer buffer;
  bool first = true;
  for (;;) {
    if (stopping_) break;
    beast::error_code ec;
    // The first request's header must arrive within header_timeout of the accept; a later
    // one may take idle_timeout to start, then header_timeout from its first byte.
    if (first) {
      conn->stream.expires_after(opts_.header_timeout);
    } else if (buffer.size() == 0) {
      conn->stream.expires_after(opts_.idle_timeout);
      size_t n = co_await conn->stream.async_read_some(buffer.prepare(4096),
                                                       asio::redirect_error(asio::use_awaitable, ec));
      buffer.commit(n);
      if (ec) {
        if (ec == beast::error::timeout) stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      conn->stream.expires_after(opts_.header_timeout);
    } else {
      conn->stream.expires_after(opts_.header_timeout);  // pipelined: already started
    }
    first = false;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(opts_.max_body_bytes);
    parser.header_limit(16 * 1024);
    co_await bhttp::async_read_header(conn->stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    // From its complete header on, a request is busy: never evicted (its body may be long).
    if (!ec && !ConnTable::busy(*conn->entry)) break;  // evicted while idle: not started
    if (!ec && !parser.is_done()) {
      conn->stream.expires_after(opts_.request_timeout);
      co_await bhttp::async_read(conn->stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec == bhttp::error::body_limit) {
      auto res = error_json(11, bhttp::status::payload_too_large, "payload_too_large",
                            "request body is over " + std::to_string(opts_.max_body_bytes) + " bytes");
      co_await bhttp::async_write(conn->stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (ec) {
      if (ec == beast::error::timeout) {
        stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
      } else if (ec != bhttp::error::end_of_stream && ec != asio::error::operation_aborted &&
                 ec != asio::error::connection_reset && ec != asio::error::eof) {
        // Malformed HTTP: answer 400 once, then close.
        auto res = error_json(11, bhttp::status::bad_request, "bad_request", "malformed HTTP request");
        conn->stream.expires_after(std::chrono::seconds(5));
        co_await bhttp::async_write(conn->stream, res, asio::redirect_error(asio::use_awaitable, ec));
      }
      break;
    }
    conn->busy = true;
    in_flight_.fetch_add(1);
    Request req = parser.release();
    Response res;
    if (!host_ok(req)) {
      res = error_json(req.version(), bhttp::status::bad_request, "bad_request",
                       "an HTTP/1.1 request needs exactly one Host header");
    } else {
      RequestContext ctx{Deadline::after(opts_.request_timeout), conn->peer};
      res = co_await handler_(req, ctx);
      res.keep_alive(req.keep_alive() && !stopping_);
    }
    conn->stream.expires_after(opts_.request_timeout);
    if (req.method() == bhttp::verb::head) {
      // RFC 9110 9.3.2: the GET headers, Content-Length included, and no body.
      size_t length = res.body().size();
      bhttp::response<bhttp::empty_body> head{std::move(res.base())};
      head.content_length(length);
      co_await bhttp::async_write(conn->stream, head, asio::redirect_error(asio::use_awaitable, ec));
      res.keep_alive(head.keep_alive());
    } else {
      res.prepare_payload();
      co_await bhttp::async_write(conn->stream, res, asio::redirect_error(asio::use_awaitable, ec));
    }
    in_flight_.fetch_sub(1);
    conn->busy = false;
    ConnTable::idle(*conn->entry, steady::now());
    if (ec || !res.keep_alive()) break;
  }
  beast::error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  {
    std::lock_guard lk(conns_mu_);
    conns_.erase(conn->id);
  }
  table_->close(conn->id);
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

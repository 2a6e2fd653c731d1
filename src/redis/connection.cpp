#include "redis/connection.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <spdlog/spdlog.h>

#include "net/tls.h"

namespace commentd::redis {

namespace {
Error conn_error(const ConnectionOptions& o, std::string_view why) {
  return Error(Errc::unavailable, "redis " + o.host + ":" + std::to_string(o.port) + ": " + std::string(why));
}
}  // namespace

// One connect attempt's socket, and the TLS session over it when the connection speaks TLS.
// Operations in flight hold it, so a new attempt never pulls a stream from under them: nor
// the bytes of a write (the attempt's own buffer, alive until that write's completion).
struct Connection::Link {
  explicit Link(const asio::strand<asio::any_io_executor>& strand) : sock(strand) {}
  asio::ip::tcp::socket sock;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket&>> tls;
  std::string inflight;  // the bytes of its one write in flight
  bool writing = false;

  // f(stream) on the stream the connection reads and writes.
  template <class F>
  decltype(auto) on_stream(F&& f) {
    return tls ? f(*tls) : f(sock);
  }
};

std::shared_ptr<Connection> Connection::create(asio::any_io_executor ex, ConnectionOptions opts,
                                               std::shared_ptr<ConnectionCounters> counters, uint64_t seed) {
  return std::shared_ptr<Connection>(new Connection(std::move(ex), std::move(opts), std::move(counters), seed));
}

Connection::Connection(asio::any_io_executor ex, ConnectionOptions opts, std::shared_ptr<ConnectionCounters> counters,
                       uint64_t seed)
    : opts_(std::move(opts)),
      counters_(std::move(counters)),
      strand_(asio::make_strand(ex)),
      link_(std::make_shared<Link>(strand_)),
      timer_(strand_),
      rng_(seed) {}

void Connection::start() {
  asio::co_spawn(strand_, [self = shared_from_this()]() { return self->run(); }, asio::detached);
}

void Connection::stop() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->state_ = State::stopped;
    self->close_link();
    self->timer_.cancel();
  });
}

void Connection::send(std::string bytes, int n, Callback cb) {
  asio::dispatch(strand_, [self = shared_from_this(), bytes = std::move(bytes), n, cb = std::move(cb)]() mutable {
    switch (self->state_) {
      case State::ready:
        self->out_ += bytes;
        self->pending_.push_back(Pending{n, std::move(cb), std::nullopt});
        if (!self->link_->writing) self->do_write();
        return;
      case State::connecting:
        self->waiting_.emplace_back(std::move(bytes), Pending{n, std::move(cb), std::nullopt});
        return;
      case State::down:
      case State::stopped:
        cb(conn_error(self->opts_, "not connected"));
        return;
    }
  });
}

void Connection::send_each(std::vector<std::pair<std::string, Callback>> calls) {
  asio::dispatch(strand_, [self = shared_from_this(), calls = std::move(calls)]() mutable {
    for (auto& [bytes, cb] : calls) {
      switch (self->state_) {
        case State::ready:
          self->out_ += bytes;
          self->pending_.push_back(Pending{1, std::move(cb), std::nullopt});
          break;
        case State::connecting:
          self->waiting_.emplace_back(std::move(bytes), Pending{1, std::move(cb), std::nullopt});
          break;
        case State::down:
        case State::stopped:
          cb(conn_error(self->opts_, "not connected"));
          break;
      }
    }
    if (self->state_ == State::ready && !self->link_->writing && !self->out_.empty()) self->do_write();
  });
}

void Connection::note_timeout(milliseconds stuck_after) {
  asio::dispatch(strand_, [self = shared_from_this(), stuck_after] {
    if (self->state_ == State::ready && !self->pending_.empty() &&
        std::chrono::steady_clock::now() - self->last_read_ >= stuck_after) {
      spdlog::warn("redis {}:{}: no reply for {} ms with {} calls in flight; reconnecting", self->opts_.host,
                   self->opts_.port, stuck_after.count(), self->pending_.size());
      self->close_link();
    }
  });
}

void Connection::close_link() {
  boost::system::error_code ignored;
  link_->sock.close(ignored);
}

void Connection::do_write() {
  std::shared_ptr<Link> link = link_;
  link->writing = true;
  link->inflight.swap(out_);
  out_.clear();
  link->on_stream([&](auto& stream) {
    asio::async_write(stream, asio::buffer(link->inflight),
                      [self = shared_from_this(), link](boost::system::error_code ec, size_t) {
                        link->writing = false;
                        link->inflight.clear();
                        if (link != self->link_) return;  // a closed attempt's: the state is the new one's
                        if (ec) {
                          self->close_link();  // the read loop sees it and fails the calls
                          return;
                        }
                        if (!self->out_.empty() && link->sock.is_open()) self->do_write();
                      });
  });
}

void Connection::deliver(Reply r) {
  if (pending_.empty()) {  // a reply nobody asked for: the stream is out of step
    close_link();
    return;
  }
  Pending& p = pending_.front();
  if (r.is_error() && !p.first_error && p.remaining > 1) p.first_error = r;
  if (--p.remaining > 0) return;
  Pending done = std::move(p);
  pending_.pop_front();
  done.cb(done.first_error ? std::move(*done.first_error) : std::move(r));
}

void Connection::fail_all(const std::string& why) {
  auto pending = std::move(pending_);
  auto waiting = std::move(waiting_);
  pending_.clear();
  waiting_.clear();
  out_.clear();
  for (auto& p : pending) p.cb(conn_error(opts_, why));
  for (auto& w : waiting) w.second.cb(conn_error(opts_, why));
}

asio::awaitable<bool> Connection::connect_once() {
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(strand_);
  auto endpoints = co_await resolver.async_resolve(opts_.host, std::to_string(opts_.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec || state_ == State::stopped) co_return false;
  auto link = link_ = std::make_shared<Link>(strand_);
  // The timeout bounds the connect, the TLS handshake and the AUTH/SELECT round (run()).
  timer_.expires_after(opts_.connect_timeout);
  timer_.async_wait([self = shared_from_this(), link](boost::system::error_code e) {
    if (!e && self->state_ == State::connecting) {
      boost::system::error_code ignored;
      link->sock.close(ignored);
    }
  });
  co_await asio::async_connect(link->sock, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec || state_ == State::stopped) co_return false;
  link->sock.set_option(asio::ip::tcp::no_delay(true), ec);
  if (opts_.tls) {
    auto& tls = link->tls.emplace(link->sock, *opts_.tls);
    net::expect_server_name(tls, opts_.host);
    co_await tls.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      std::string why = ec.message();
      if (why != last_tls_error_ && state_ != State::stopped)
        spdlog::warn("redis {}:{}: TLS handshake failed: {}", opts_.host, opts_.port, why);
      last_tls_error_ = std::move(why);
      co_return false;
    }
    last_tls_error_.clear();
  }
  co_return state_ != State::stopped;
}

asio::awaitable<void> Connection::read_loop() {
  char buf[16384];
  auto link = link_;
  for (;;) {
    boost::system::error_code ec;
    size_t n = co_await link->on_stream([&](auto& stream) {
      return stream.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    });
    if (ec) co_return;
    last_read_ = std::chrono::steady_clock::now();
    reader_->feed(buf, n);
    for (;;) {
      auto r = reader_->next();
      if (!r) {
        spdlog::warn("redis {}:{}: {}", opts_.host, opts_.port, r.error().message);
        link->sock.close(ec);
        co_return;
      }
      if (!*r) break;
      deliver(std::move(**r));
      if (!link->sock.is_open()) co_return;
    }
  }
}

asio::awaitable<void> Connection::run() {
  auto self = shared_from_this();
  milliseconds backoff = opts_.backoff_min;
  while (state_ != State::stopped) {
    state_ = State::connecting;
    down_ = false;
    reader_ = std::make_unique<RespReader>();
    if (co_await connect_once()) {
      // The handshake is the first pipelined call; calls queued meanwhile follow it.
      std::vector<std::string> cmds;
      if (!opts_.password.empty()) {
        if (opts_.username.empty()) cmds.push_back(format_command({"AUTH", opts_.password}));
        else cmds.push_back(format_command({"AUTH", opts_.username, opts_.password}));
      }
      if (opts_.db > 0) cmds.push_back(format_command({"SELECT", std::to_string(opts_.db)}));
      cmds.push_back(format_command({"PING"}));
      std::string bytes;
      for (auto& c : cmds) bytes += c;
      last_read_ = std::chrono::steady_clock::now();
      pending_.push_back(Pending{int(cmds.size()), [this](Result<Reply> r) {
        if (!r || r->is_error()) {
          spdlog::warn("redis {}:{}: handshake failed: {}", opts_.host, opts_.port, r ? r->str : r.error().message);
          close_link();
          return;
        }
        timer_.cancel();
        state_ = State::ready;
        up_ = true;
        counters_->connects++;
        for (auto& [b, p] : waiting_) {
          out_ += b;
          pending_.push_back(std::move(p));
        }
        waiting_.clear();
        if (!link_->writing && !out_.empty()) do_write();
      }, std::nullopt});
      out_ = std::move(bytes);
      do_write();
      co_await read_loop();
      if (state_ == State::ready) {
        counters_->disconnects++;
        backoff = opts_.backoff_min;  // it was up: retry soon
      } else {
        counters_->connect_failures++;
      }
    } else {
      counters_->connect_failures++;
    }
    boost::system::error_code ec;
    close_link();
    timer_.cancel();
    up_ = false;
    const bool stopping = state_ == State::stopped;
    state_ = stopping ? State::stopped : State::down;
    down_ = !stopping;
    fail_all(stopping ? "stopped" : "connection lost");
    if (stopping) break;
    // Full jitter over [backoff/2, backoff]: reconnecting nodes do not arrive in lockstep.
    auto half = backoff.count() / 2;
    timer_.expires_after(milliseconds(half + int64_t(rng_() % uint64_t(half + 1))));
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    backoff = std::min(backoff * 2, opts_.backoff_max);
  }
}

}  // namespace commentd::redis

#include "redis/subscriber.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <random>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <spdlog/spdlog.h>

#include "redis/resp.h"

namespace commentd::redis {
namespace {

using Clock = std::chrono::steady_clock;

int millis(Clock::duration d) {
  return static_cast<int>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(d).count()));
}

}  // namespace

Subscriber::Subscriber(SubscriberOptions opts, OnMessage on_message, OnReset on_reset)
    : opts_(std::move(opts)), on_message_(std::move(on_message)), on_reset_(std::move(on_reset)) {
  thread_ = std::thread([this] { run(); });
}

Subscriber::~Subscriber() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes the thread's poll
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t Subscriber::hash(std::string_view s) { return std::hash<std::string_view>{}(s); }

int Subscriber::connect_once() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(opts_.host.c_str(), std::to_string(opts_.port).c_str(), &hints, &res) != 0) return -1;
  int out = -1;
  const auto until = Clock::now() + opts_.connect_timeout;
  for (addrinfo* a = res; a && out < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (r < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, millis(until - Clock::now())) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        r = err == 0 ? 0 : -1;
      }
    }
    if (r == 0) {
      out = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  return out;
}

ssl_st* Subscriber::handshake(int fd) {
  SSL* ssl = SSL_new(opts_.tls->native_handle());
  if (!ssl) return nullptr;
  SSL_set_fd(ssl, fd);
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(opts_.host, not_ip);
  if (not_ip) {
    SSL_set1_host(ssl, opts_.host.c_str());
    SSL_set_tlsext_host_name(ssl, opts_.host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), opts_.host.c_str());
  }
  const auto until = Clock::now() + opts_.connect_timeout;
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(ssl);
    if (r == 1) return ssl;
    const int e = SSL_get_error(ssl, r);
    pollfd p{fd, static_cast<short>(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && ::poll(&p, 1, millis(until - Clock::now())) == 1)
      continue;
    char why[256] = "timed out";
    if (unsigned long code = ERR_get_error()) ERR_error_string_n(code, why, sizeof why);
    if (tls_error_ != why) spdlog::warn("redis subscriber: TLS handshake with {}:{} failed: {}", opts_.host, opts_.port, why);
    tls_error_ = why;
    SSL_free(ssl);
    return nullptr;
  }
}

bool Subscriber::write_all(int fd, ssl_st* ssl, const std::string& bytes, std::chrono::milliseconds wait_up_to) {
  size_t done = 0;
  const auto until = Clock::now() + wait_up_to;
  while (done < bytes.size()) {
    short wait = POLLOUT;
    if (ssl) {
      ERR_clear_error();
      const int n = SSL_write(ssl, bytes.data() + done, static_cast<int>(bytes.size() - done));
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      const int e = SSL_get_error(ssl, n);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
      if (e == SSL_ERROR_WANT_READ) wait = POLLIN;
    } else {
      const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    }
    pollfd p{fd, wait, 0};
    if (::poll(&p, 1, millis(until - Clock::now())) != 1) return false;
  }
  return true;
}

long Subscriber::read_some(char* buf, size_t n) {
  if (ssl_) {
    ERR_clear_error();
    const int r = SSL_read(ssl_, buf, static_cast<int>(n));
    if (r > 0) return r;
    const int e = SSL_get_error(ssl_, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
  }
  for (;;) {
    const ssize_t r = ::recv(fd_, buf, n, MSG_DONTWAIT);
    if (r > 0) return static_cast<long>(r);
    if (r < 0 && errno == EINTR) continue;
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
  }
}

bool Subscriber::drain_locked() {
  if (fd_ < 0 || failed_) return false;
  char buf[16384];
  for (;;) {
    const long n = read_some(buf, sizeof buf);
    if (n < 0) return false;  // EOF or an error
    if (n == 0) break;
    reader_->feed(buf, static_cast<size_t>(n));
    // A short plain read took what the kernel held; TLS reads on until OpenSSL wants more.
    if (!ssl_ && static_cast<size_t>(n) < sizeof buf) break;
  }
  for (;;) {
    auto r = reader_->next();
    if (!r) return false;
    if (!*r) return true;
    Reply& rep = **r;
    heard_ = Clock::now();
    if (rep.is_error()) {
      spdlog::warn("redis subscriber: {}", rep.str);
      return false;
    }
    if (rep.type != Reply::Type::array || rep.elements.empty()) continue;  // AUTH's +OK
    const std::string& kind = rep.elements[0].str;
    if (kind == "message" && rep.elements.size() == 3) {
      const std::string& payload = rep.elements[2].str;
      record_locked(payload);
      stats_.messages++;
      on_message_(payload);
    } else if (kind == "subscribe") {
      subscribed_ = true;
      ++epoch_;
      stats_.subscribes++;
      stats_.up = true;
    }  // "pong": heard
  }
}

std::string Subscriber::local_address() const {
  std::lock_guard l(mu_);
  if (fd_ < 0) return "";
  sockaddr_storage a{};
  socklen_t n = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &n) != 0) return "";
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&a), n, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "";
  return a.ss_family == AF_INET6 ? "[" + std::string(host) + "]:" + port : std::string(host) + ":" + port;
}

bool Subscriber::current_locked() const {
  return subscribed_ && !failed_ && Clock::now() - heard_ <= opts_.stale_after;
}

void Subscriber::lost_locked() {
  if (subscribed_) {
    stats_.resets++;
    on_reset_();
  }
  subscribed_ = false;
  stats_.up = false;
  ++epoch_;
}

void Subscriber::apply_pending_locked() {
  if (fd_ >= 0 && !failed_ && !drain_locked()) {
    failed_ = true;
    lost_locked();
    ::shutdown(fd_, SHUT_RDWR);  // the thread closes it and reconnects
  }
}

bool Subscriber::unchanged_locked(const Mark& m, std::string_view payload) const {
  if (!m.current || !current_locked() || epoch_ != m.epoch) return false;
  if (seq_ == m.seq) return true;
  if (seq_ - m.seq >= kRecent) return false;
  const uint64_t h = hash(payload);
  for (uint64_t s = m.seq + 1; s <= seq_; ++s)
    if (recent_[s % kRecent] == h) return false;
  return true;
}

void Subscriber::record_locked(std::string_view payload) {
  ++seq_;
  recent_[seq_ % kRecent] = hash(payload);
}

void Subscriber::run() {
  std::mt19937_64 rng(std::random_device{}());
  auto backoff = opts_.backoff_min;
  std::string hello;
  if (!opts_.password.empty())
    hello += opts_.username.empty() ? format_command({"AUTH", opts_.password})
                                    : format_command({"AUTH", opts_.username, opts_.password});
  hello += format_command({"SUBSCRIBE", opts_.channel});
  const std::string ping = format_command({"PING"});
  bool logged_down = false;
  for (;;) {
    {
      std::lock_guard l(mu_);
      if (stop_) return;
    }
    int fd = connect_once();
    SSL* ssl = fd >= 0 && opts_.tls ? handshake(fd) : nullptr;
    if (fd >= 0 && (ssl || !opts_.tls) && write_all(fd, ssl, hello, opts_.connect_timeout)) {
      {
        std::lock_guard l(mu_);
        fd_ = fd;
        ssl_ = ssl;
        reader_ = std::make_unique<RespReader>();
        failed_ = false;
        heard_ = Clock::now();
      }
      auto pinged = Clock::now();
      for (;;) {
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, millis(opts_.ping_interval - (Clock::now() - pinged)));
        std::unique_lock l(mu_);
        if (stop_ || failed_ || (r < 0 && errno != EINTR) || (r > 0 && !drain_locked())) break;
        if (subscribed_) {
          backoff = opts_.backoff_min;
          if (logged_down) spdlog::info("redis subscriber: subscribed again to {}", opts_.channel);
          logged_down = false;
        }
        if (Clock::now() - pinged >= opts_.ping_interval) {
          // Under the lock: an SSL object takes one caller at a time. A PING is a few bytes;
          // one that does not fit in the socket at once means Redis stopped reading: no wait
          // (readers wait on this lock), reconnect.
          if (!write_all(fd, ssl, ping, std::chrono::milliseconds(0))) break;
          pinged = Clock::now();
        }
      }
      std::lock_guard l(mu_);
      lost_locked();
      fd_ = -1;
      ssl_ = nullptr;
      reader_.reset();
    }
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
    std::unique_lock l(mu_);
    if (stop_) return;
    if (!logged_down) spdlog::warn("redis subscriber: {}:{} unreachable; near copies off until it is back",
                                        opts_.host, opts_.port);
    logged_down = true;
    std::uniform_int_distribution<int64_t> jitter(0, backoff.count() / 2);
    cv_.wait_for(l, backoff + std::chrono::milliseconds(jitter(rng)), [&] { return stop_; });
    backoff = std::min(backoff * 2, opts_.backoff_max);
  }
}

}  // namespace commentd::redis

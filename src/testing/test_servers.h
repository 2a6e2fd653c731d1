// Test support for the real-server tiers (*_redistest, *_cqltest, *_pulsartest; never linked
// into the service): server addresses from the environment, and a blocking loopback TCP
// client for protocol-level checks.
//
// deploy/test-servers.sh starts the servers and writes their addresses to
// build/test-servers/env: COMMENTD_TEST_REDIS, COMMENTD_TEST_REDIS_TLS (its TLS port),
// COMMENTD_TEST_REDIS_CLUSTER (a comma list), COMMENTD_TEST_CQL (TLS or plain),
// COMMENTD_TEST_{REDIS_TLS_DIR,CQL_TLS} (each server's test CA files: ca.pem, client.pem,
// client.key, other-ca.pem), COMMENTD_TEST_PULSAR (pulsar://host:port),
// COMMENTD_TEST_PULSAR_ADMIN (http://host:port), COMMENTD_TEST_PULSAR_TLS
// (pulsar+ssl://host:port, the broker's TLS port), COMMENTD_TEST_PULSAR_ADMIN_TLS
// (https://host:port) and COMMENTD_TEST_PULSAR_TLS_DIR (its CA files). `make test` loads that file and sets COMMENTD_TEST_REQUIRE=1.
#pragma once

#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace commentd::testing {

struct HostPort {
  std::string host;
  std::string port;
};

inline std::optional<std::string> server_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

// True when a missing server must fail the test instead of skipping it.
inline bool servers_required() {
  const char* v = std::getenv("COMMENTD_TEST_REQUIRE");
  return v != nullptr && std::string_view(v) == "1";
}

// "host:port", "scheme://host:port" or "scheme://host:port/path" -> host and port.
// Throws std::invalid_argument when there is no port.
inline HostPort parse_host_port(std::string_view s) {
  if (auto scheme = s.find("://"); scheme != std::string_view::npos) s.remove_prefix(scheme + 3);
  if (auto slash = s.find('/'); slash != std::string_view::npos) s = s.substr(0, slash);
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == s.size())
    throw std::invalid_argument("no port in address '" + std::string(s) + "'");
  return {std::string(s.substr(0, colon)), std::string(s.substr(colon + 1))};
}

// "a:1,b:2" -> both.
inline std::vector<HostPort> parse_host_port_list(std::string_view s) {
  std::vector<HostPort> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    out.push_back(parse_host_port(s.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// A connected, blocking TCP socket whose every read and write times out. Not thread-safe.
// Every failure (refused, timeout, peer closed early) throws std::runtime_error.
class TcpClient {
 public:
  explicit TcpClient(const HostPort& addr, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(addr.host.c_str(), addr.port.c_str(), &hints, &res); rc != 0)
      throw std::runtime_error("resolve " + addr.host + ": " + ::gai_strerror(rc));
    int err = 0;
    for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
      if (fd < 0) continue;
      timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        err = errno;
        ::close(fd);
      }
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) throw std::runtime_error("connect " + addr.host + ":" + addr.port + ": " + std::strerror(err));
  }
  ~TcpClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  void send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Exactly n bytes.
  std::string recv_exact(size_t n) {
    while (buf_.size() < n) fill();
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }

  // Everything up to and including the first `delim`.
  std::string recv_until(std::string_view delim) {
    size_t pos;
    while ((pos = buf_.find(delim)) == std::string::npos) fill();
    return recv_exact(pos + delim.size());
  }

  // Everything until the peer closes the connection.
  std::string recv_to_eof() {
    while (fill()) {
    }
    return std::exchange(buf_, {});
  }

 private:
  // Appends what arrives; false on an orderly close.
  bool fill() {
    char tmp[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) throw std::runtime_error("recv: timed out");
      if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
      if (n == 0) {
        if (eof_) throw std::runtime_error("recv: connection closed by the server");
        eof_ = true;
        return false;
      }
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
  }

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace commentd::testing

// Declares `std::string var` holding env var NAME. When NAME is unset the test FAILS under
// COMMENTD_TEST_REQUIRE=1 (make test) and is skipped otherwise (a dev box without servers).
#define COMMENTD_TEST_SERVER(var, NAME)                                                         \
  std::string var;                                                                              \
  if (auto env_value_ = ::commentd::testing::server_env(NAME)) {                                \
    var = *env_value_;                                                                          \
  } else if (::commentd::testing::servers_required()) {                                         \
    FAIL() << NAME " is not set: run deploy/test-servers.sh start and load build/test-servers/env"; \
  } else {                                                                                      \
    GTEST_SKIP() << NAME " is not set (no test server; make test starts them)";                 \
  }

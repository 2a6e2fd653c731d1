// Test-only fault injection: a loopback TCP proxy that can be frozen. While frozen, bytes are
// held in both directions (nothing is lost or reordered); thaw() releases them. Runs its own
// io_context thread. Thread-safe: freeze()/thaw() from any thread.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace commentd::bridge::testing {

class TcpProxy {
 public:
  // Listens on loopback `listen_port` (0: any free port; a fixed one brings a proxy back
  // where an earlier one was).
  TcpProxy(std::string host, uint16_t port, uint16_t listen_port = 0)
      : acceptor_(io_, {boost::asio::ip::address_v4::loopback(), listen_port}),
        upstream_(boost::asio::ip::make_address(host), port) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TcpProxy() {
    boost::asio::post(io_, [this] { io_.stop(); });
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void freeze() { frozen_ = true; }
  void thaw() {
    std::vector<std::function<void()>> parked;
    {
      std::lock_guard lk(mu_);
      frozen_ = false;
      parked.swap(parked_);
    }
    for (auto& f : parked) boost::asio::post(io_, std::move(f));
  }

 private:
  using tcp = boost::asio::ip::tcp;
  struct Pipe : std::enable_shared_from_this<Pipe> {
    std::shared_ptr<tcp::socket> from, to;
    std::array<char, 65536> buf;
    TcpProxy* proxy;
    void read() {
      auto self = shared_from_this();
      from->async_read_some(boost::asio::buffer(buf), [self](boost::system::error_code ec, size_t n) {
        if (ec) {
          boost::system::error_code ignored;
          self->to->shutdown(tcp::socket::shutdown_send, ignored);
          return;
        }
        self->proxy->forward([self, n] {
          boost::asio::async_write(*self->to, boost::asio::buffer(self->buf.data(), n),
                                   [self](boost::system::error_code ec, size_t) {
                                     if (!ec) self->read();
                                   });
        });
      });
    }
  };

  void forward(std::function<void()> f) {
    {
      std::lock_guard lk(mu_);
      if (frozen_) {
        parked_.push_back(std::move(f));
        return;
      }
    }
    f();
  }

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      auto client = std::make_shared<tcp::socket>(std::move(s));
      auto server = std::make_shared<tcp::socket>(io_);
      server->async_connect(upstream_, [this, client, server](boost::system::error_code ec) {
        if (ec) return;
        auto up = std::make_shared<Pipe>();
        up->from = client, up->to = server, up->proxy = this;
        auto down = std::make_shared<Pipe>();
        down->from = server, down->to = client, down->proxy = this;
        up->read();
        down->read();
      });
      accept();
    });
  }

  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  tcp::endpoint upstream_;
  std::mutex mu_;
  std::atomic<bool> frozen_{false};  // written under mu_
  std::vector<std::function<void()>> parked_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace commentd::bridge::testing

// One Redis connection SUBSCRIBEd to one channel, for a node's own copies of Redis values
// that a change elsewhere must drop at once (the per-user rows' near copies, redis/user_rows.h).
//
// Why a thread and plain blocking-style reads instead of the Asio client: the guarantee a
// near copy needs is "every message that reached this host before I looked has been
// applied". Every byte is therefore taken from the socket and applied under one mutex, by
// the subscriber's thread (woken by poll()) or by a caller of `with_current()` (or of
// `if_unchanged()`), which first applies whatever the socket holds. Between a byte leaving the kernel and its message being
// applied there is no moment a reader can see (an Asio read completes in the reactor before
// its handler runs, which leaves one).
//
// Liveness: a PING every `ping_interval`; `current()` is false unless Redis was heard from
// within `stale_after` and the subscription is confirmed. A lost connection runs `on_reset`
// (the owner drops every copy: messages may have been lost) and reconnects with backoff.
// Single node Redis (the owner does not start one for Redis Cluster), plain TCP or TLS (with
// `tls`: OpenSSL on the socket, Redis's certificate verified and its name checked, SNI for a
// DNS name; every TLS call under the same lock, so the rule above holds for decrypted bytes).
//
// Thread-safe. `on_message` and `on_reset` run under the lock; they must not call back in.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

struct ssl_st;

namespace boost::asio::ssl {
class context;
}

namespace commentd::redis {

class RespReader;

struct SubscriberOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string username, password;
  std::string channel;
  std::shared_ptr<boost::asio::ssl::context> tls;  // set: TLS (net::make_client_context)
  std::chrono::milliseconds connect_timeout{1000};  // TCP connect + TLS handshake
  std::chrono::milliseconds ping_interval{200};
  std::chrono::milliseconds stale_after{1000};  // not heard from for this long: not current
  std::chrono::milliseconds backoff_min{50}, backoff_max{2000};
};

struct SubscriberStats {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> resets{0};       // subscriptions lost (copies dropped)
  std::atomic<uint64_t> subscribes{0};   // subscriptions confirmed
  std::atomic<bool> up{false};
};

class Subscriber {
 public:
  using OnMessage = std::function<void(std::string_view payload)>;
  using OnReset = std::function<void()>;
  Subscriber(SubscriberOptions opts, OnMessage on_message, OnReset on_reset);
  ~Subscriber();  // stops and joins the thread
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Where the stream stood: the subscription it is on (epoch) and the messages applied (seq).
  struct Mark {
    uint64_t epoch = 0, seq = 0;
    bool current = false;
  };
  // Applies what the socket holds, then runs f() under the lock if current; returns whether
  // it ran. The mark (if asked) is taken in the same lock. (Templates: every signed-in read
  // calls this, and a std::function of its lambda would be an allocation per read.)
  template <class F>
  bool with_current(F&& f, Mark* mark = nullptr) {
    std::lock_guard l(mu_);
    apply_pending_locked();
    const bool cur = current_locked();
    if (mark) *mark = Mark{epoch_, seq_, cur};
    if (cur) f();
    return cur;
  }
  // Runs f() under the lock (after applying what the socket holds) if the subscription is
  // still the one of `m`, current, and no message since `m` named `payload`; returns whether
  // it ran. For a copy read from Redis after `m`: if a message about it came since, the read
  // may predate the change, so it is not kept.
  template <class F>
  bool if_unchanged(const Mark& m, std::string_view payload, F&& f) {
    std::lock_guard l(mu_);
    apply_pending_locked();
    if (!unchanged_locked(m, payload)) return false;
    f();
    return true;
  }
  // A change this process made itself (its own message is still on the way): counted as a
  // message about `payload` (so if_unchanged refuses a read that began before it), with f()
  // run under the lock.
  template <class F>
  void note(std::string_view payload, F&& f) {
    std::lock_guard l(mu_);
    record_locked(payload);
    f();
  }

  const SubscriberStats& stats() const { return stats_; }
  // The connection's own address as Redis's CLIENT LIST names it ("ip:port"), or "" while not
  // connected: what `CLIENT KILL ADDR` takes to end this subscription and no other.
  std::string local_address() const;

 private:
  void run();
  // Under mu_: reads what the socket holds and applies every complete reply. False if the
  // connection failed (EOF, error, protocol error, error reply).
  bool drain_locked();
  bool current_locked() const;
  // Under mu_: drain_locked() when connected; a failure there closes the link (the thread
  // reconnects) and drops the copies.
  void apply_pending_locked();
  bool unchanged_locked(const Mark& m, std::string_view payload) const;
  void record_locked(std::string_view payload);  // one more message about `payload`
  // Under mu_: the connection is gone; drops the copies (if it was subscribed).
  void lost_locked();
  int connect_once();  // a connected, non-blocking fd, or -1
  // With `tls`: the handshake on `fd`; the SSL object, or null (logged when its reason changes).
  ssl_st* handshake(int fd);
  // Writes every byte, waiting for the socket up to `wait_up_to`; over TLS under mu_ once the
  // link is published.
  bool write_all(int fd, ssl_st* ssl, const std::string& bytes, std::chrono::milliseconds wait_up_to);
  // Under mu_ once published: > 0 bytes read, 0 nothing more now, -1 failed (EOF or error).
  long read_some(char* buf, size_t n);
  static uint64_t hash(std::string_view s);

  const SubscriberOptions opts_;
  const OnMessage on_message_;
  const OnReset on_reset_;
  SubscriberStats stats_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // backoff sleeps, woken by stop
  bool stop_ = false;
  int fd_ = -1;
  ssl_st* ssl_ = nullptr;  // with tls
  std::string tls_error_;  // the last handshake failure logged
  std::unique_ptr<RespReader> reader_;
  bool subscribed_ = false;
  bool failed_ = false;  // a reader in with_current saw the connection fail; the thread closes it
  uint64_t epoch_ = 0, seq_ = 0;
  std::chrono::steady_clock::time_point heard_{};
  // The last messages' payload hashes, by seq % size (if_unchanged's look back).
  static constexpr size_t kRecent = 4096;
  std::array<uint64_t, kRecent> recent_{};
  std::thread thread_;
};

}  // namespace commentd::redis

// Which client connections are open, per peer address, and which are idle since when: the
// server's policy for a new connection when it is full.
//
// A connection is idle from its accept or the end of its last response until a request
// begins (it may be sending a slow header meanwhile). When a new connection arrives:
//   - its address already has max_per_ip connections: the address's oldest idle connection
//     is evicted for it; if none of them is idle, the new one is refused;
//   - the server has max_connections: the oldest idle connection (any address) is evicted
//     for it; if none is idle, the new one is refused.
// So one address holding many idle connections cannot lock other clients out, and a busy
// connection (a request in flight) is never evicted. Evicted ids leave the table at once;
// the caller closes their sockets.
//
// Thread-safe. open(), close() and the evictions take one mutex; a request's busy() and
// idle() touch only its connection's entry (one atomic each, no lock): they run on every
// request, evictions only when the server is full. An eviction finds the oldest idle
// connection by a scan (of the address's connections, or of all of them: then it keeps the
// kCandidates oldest for the next evictions, so a flood at the limit costs one scan per
// kCandidates connections). Time comes in as an argument.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace commentd::http {

class ConnTable {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using address = boost::asio::ip::address;

  struct Limits {
    size_t max_connections = 10000;
    size_t max_per_ip = 1000;  // 0 = no per-address cap
  };
  // One connection's state, kept by its session: busy() and idle() take it.
  class Entry;
  using Handle = std::shared_ptr<Entry>;
  struct Opened {
    bool accepted = false;
    std::vector<uint64_t> evicted;  // close these; already removed from the table
    Handle handle;                  // when accepted
  };

  explicit ConnTable(Limits limits) : limits_(limits) {}

  // A new connection `id` (unique, never reused) from `ip` at `now`; idle until busy().
  Opened open(uint64_t id, const address& ip, time_point now);
  // A request began on the connection. false: it was evicted (close it without answering).
  static bool busy(Entry& e);
  // The request on the connection ended; it waits for the next one.
  static void idle(Entry& e, time_point now);
  // `id` closed (or was evicted already: then nothing happens).
  void close(uint64_t id);
  // The oldest idle connection, removed from the table (to free a descriptor), if any.
  std::optional<uint64_t> evict_oldest_idle();

  size_t size() const;
  size_t count(const address& ip) const;
  size_t idle_count() const;
  const Limits& limits() const { return limits_; }

 private:
  static constexpr size_t kCandidates = 64;
  // REQUIRES: mu_ held. The oldest idle connection of `ip` (of all, if null), evicted.
  std::optional<uint64_t> evict_locked(const address* ip);
  // REQUIRES: mu_ held; `id` is in conns_ and its entry is no longer idle.
  void erase_locked(uint64_t id);

  const Limits limits_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Handle> conns_;     // GUARDED_BY(mu_)
  std::map<address, std::vector<Handle>> per_ip_;  // GUARDED_BY(mu_); non-empty vectors
  // The oldest idle connections at the last scan of all, the oldest last, each with the
  // idle time it had then: one still idle since then is older than any other idle one.
  std::vector<std::pair<int64_t, Handle>> candidates_;  // GUARDED_BY(mu_)
};

class ConnTable::Entry {
 public:
  Entry(uint64_t i, address a, int64_t idle_since) : id(i), ip(a), state(idle_since) {}
  static constexpr int64_t kBusy = -1, kGone = -2;  // gone: evicted or closed
  const uint64_t id;
  const address ip;
  std::atomic<int64_t> state;  // >= 0: idle since then (steady clock, ns); kBusy; kGone
};

}  // namespace commentd::http

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
// Thread-safe (one mutex). Time comes in as an argument.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
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
  struct Opened {
    bool accepted = false;
    std::vector<uint64_t> evicted;  // close these; already removed from the table
  };

  explicit ConnTable(Limits limits) : limits_(limits) {}

  // A new connection `id` (unique, never reused) from `ip` at `now`; idle until busy().
  Opened open(uint64_t id, const address& ip, time_point now);
  // A request began on `id`. false: `id` was evicted (close it without answering).
  bool busy(uint64_t id);
  // The request on `id` ended; it waits for the next one.
  void idle(uint64_t id, time_point now);
  // `id` closed (or was evicted already: then nothing happens).
  void close(uint64_t id);
  // The oldest idle connection, removed from the table (to free a descriptor), if any.
  std::optional<uint64_t> evict_oldest_idle();

  size_t size() const;
  size_t count(const address& ip) const;
  size_t idle_count() const;
  const Limits& limits() const { return limits_; }

 private:
  using IdleKey = std::pair<time_point, uint64_t>;
  struct Conn {
    address ip;
    bool idle = true;
    time_point idle_since{};
  };
  struct PerIp {
    size_t count = 0;
    std::set<IdleKey> idle;
  };
  // REQUIRES: mu_ held; `id` is in conns_.
  void erase(uint64_t id);
  void erase_idle_key(const Conn& c, uint64_t id);

  const Limits limits_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Conn> conns_;  // GUARDED_BY(mu_)
  std::map<address, PerIp> per_ip_;           // GUARDED_BY(mu_); entries with count > 0
  std::set<IdleKey> idle_;                    // GUARDED_BY(mu_); every idle connection
};

}  // namespace commentd::http

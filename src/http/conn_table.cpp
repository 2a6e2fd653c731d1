#include "http/conn_table.h"

namespace commentd::http {

void ConnTable::erase_idle_key(const Conn& c, uint64_t id) {
  if (!c.idle) return;
  IdleKey key{c.idle_since, id};
  idle_.erase(key);
  auto it = per_ip_.find(c.ip);
  if (it != per_ip_.end()) it->second.idle.erase(key);
}

void ConnTable::erase(uint64_t id) {
  auto it = conns_.find(id);
  erase_idle_key(it->second, id);
  auto ip = per_ip_.find(it->second.ip);
  if (ip != per_ip_.end() && --ip->second.count == 0) per_ip_.erase(ip);
  conns_.erase(it);
}

ConnTable::Opened ConnTable::open(uint64_t id, const address& ip, time_point now) {
  Opened out;
  std::lock_guard lk(mu_);
  auto pit = per_ip_.find(ip);
  if (limits_.max_per_ip > 0 && pit != per_ip_.end() && pit->second.count >= limits_.max_per_ip) {
    if (pit->second.idle.empty()) return out;
    uint64_t victim = pit->second.idle.begin()->second;
    erase(victim);  // may erase pit when it was the address's last connection
    out.evicted.push_back(victim);
  }
  if (conns_.size() >= limits_.max_connections) {
    if (idle_.empty()) return out;  // (a per-address eviction above left room already)
    uint64_t victim = idle_.begin()->second;
    erase(victim);
    out.evicted.push_back(victim);
  }
  conns_.emplace(id, Conn{ip, true, now});
  IdleKey key{now, id};
  idle_.insert(key);
  auto& p = per_ip_[ip];
  ++p.count;
  p.idle.insert(key);
  out.accepted = true;
  return out;
}

bool ConnTable::busy(uint64_t id) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end()) return false;
  erase_idle_key(it->second, id);
  it->second.idle = false;
  return true;
}

void ConnTable::idle(uint64_t id, time_point now) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.idle) return;
  it->second.idle = true;
  it->second.idle_since = now;
  IdleKey key{now, id};
  idle_.insert(key);
  per_ip_[it->second.ip].idle.insert(key);
}

void ConnTable::close(uint64_t id) {
  std::lock_guard lk(mu_);
  if (conns_.contains(id)) erase(id);
}

std::optional<uint64_t> ConnTable::evict_oldest_idle() {
  std::lock_guard lk(mu_);
  if (idle_.empty()) return std::nullopt;
  uint64_t victim = idle_.begin()->second;
  erase(victim);
  return victim;
}

size_t ConnTable::size() const {
  std::lock_guard lk(mu_);
  return conns_.size();
}

size_t ConnTable::count(const address& ip) const {
  std::lock_guard lk(mu_);
  auto it = per_ip_.find(ip);
  return it == per_ip_.end() ? 0 : it->second.count;
}

size_t ConnTable::idle_count() const {
  std::lock_guard lk(mu_);
  return idle_.size();
}

}  // namespace commentd::http

#include "http/conn_table.h"

#include <algorithm>

namespace commentd::http {

namespace {
int64_t ns(ConnTable::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
// (idle since, id): older first, the smaller id on a tie.
bool older(int64_t a, uint64_t a_id, int64_t b, uint64_t b_id) { return a != b ? a < b : a_id < b_id; }
}  // namespace

bool ConnTable::busy(Entry& e) {
  int64_t s = e.state.load();
  while (s != Entry::kGone)
    if (e.state.compare_exchange_weak(s, Entry::kBusy)) return true;
  return false;
}

void ConnTable::idle(Entry& e, time_point now) {
  // Only from busy: an evicted entry stays gone, an idle one keeps its time.
  int64_t busy = Entry::kBusy;
  e.state.compare_exchange_strong(busy, std::max<int64_t>(ns(now), 0));
}

void ConnTable::erase_locked(uint64_t id) {
  auto it = conns_.find(id);
  auto ip = per_ip_.find(it->second->ip);
  if (ip != per_ip_.end()) {
    auto& v = ip->second;
    auto at = std::find(v.begin(), v.end(), it->second);
    if (at != v.end()) {
      *at = std::move(v.back());
      v.pop_back();
    }
    if (v.empty()) per_ip_.erase(ip);
  }
  conns_.erase(it);
}

std::optional<uint64_t> ConnTable::evict_locked(const address* ip) {
  if (ip) {
    auto it = per_ip_.find(*ip);
    if (it == per_ip_.end()) return std::nullopt;
    for (;;) {
      Entry* best = nullptr;
      int64_t best_at = 0;
      for (const auto& e : it->second) {
        int64_t s = e->state.load();
        if (s >= 0 && (!best || older(s, e->id, best_at, best->id))) {
          best = e.get();
          best_at = s;
        }
      }
      if (!best) return std::nullopt;
      if (best->state.compare_exchange_strong(best_at, Entry::kGone)) {
        uint64_t id = best->id;
        erase_locked(id);  // may erase `it`: returns at once
        return id;
      }
      // It began a request meanwhile: look again.
    }
  }
  // A scan whose candidates all began a request meanwhile is followed by another (a few at
  // most: then the server is as good as full of busy connections).
  for (int scans = 0;;) {
    if (candidates_.empty()) {
      if (scans++ == 4) return std::nullopt;
      for (const auto& [id, e] : conns_)
        if (int64_t s = e->state.load(); s >= 0) candidates_.emplace_back(s, e);
      auto newer = [](const auto& a, const auto& b) { return older(b.first, b.second->id, a.first, a.second->id); };
      if (candidates_.size() > kCandidates) {
        std::nth_element(candidates_.begin(), candidates_.end() - kCandidates, candidates_.end(), newer);
        candidates_.erase(candidates_.begin(), candidates_.end() - kCandidates);
      }
      std::sort(candidates_.begin(), candidates_.end(), newer);  // the oldest last
      if (candidates_.empty()) return std::nullopt;
    }
    auto [at, e] = std::move(candidates_.back());
    candidates_.pop_back();
    // Still idle since the scan (busy since, idle again, closed or evicted: skipped).
    if (e->state.compare_exchange_strong(at, Entry::kGone)) {
      erase_locked(e->id);
      return e->id;
    }
  }
}

ConnTable::Opened ConnTable::open(uint64_t id, const address& ip, time_point now) {
  Opened out;
  std::lock_guard lk(mu_);
  auto pit = per_ip_.find(ip);
  if (limits_.max_per_ip > 0 && pit != per_ip_.end() && pit->second.size() >= limits_.max_per_ip) {
    auto victim = evict_locked(&ip);
    if (!victim) return out;
    out.evicted.push_back(*victim);
  }
  if (conns_.size() >= limits_.max_connections) {
    auto victim = evict_locked(nullptr);  // (a per-address eviction above left room already)
    if (!victim) return out;
    out.evicted.push_back(*victim);
  }
  auto e = std::make_shared<Entry>(id, ip, std::max<int64_t>(ns(now), 0));
  conns_.emplace(id, e);
  per_ip_[ip].push_back(e);
  out.accepted = true;
  out.handle = std::move(e);
  return out;
}

void ConnTable::close(uint64_t id) {
  std::lock_guard lk(mu_);
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  it->second->state.store(Entry::kGone);  // a kept eviction candidate is skipped
  erase_locked(id);
}

std::optional<uint64_t> ConnTable::evict_oldest_idle() {
  std::lock_guard lk(mu_);
  return evict_locked(nullptr);
}

size_t ConnTable::size() const {
  std::lock_guard lk(mu_);
  return conns_.size();
}

size_t ConnTable::count(const address& ip) const {
  std::lock_guard lk(mu_);
  auto it = per_ip_.find(ip);
  return it == per_ip_.end() ? 0 : it->second.size();
}

size_t ConnTable::idle_count() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (const auto& [id, e] : conns_) n += e->state.load() >= 0;
  return n;
}

}  // namespace commentd::http

#include "workers/owner_leases.h"

#include <spdlog/spdlog.h>

namespace commentd::workers {

namespace {
// The store's TTL counts whole seconds from the write's arrival: a lease may end up to one
// second before lease + the time its write was sent.
constexpr std::chrono::seconds kTtlGranularity{1};
}  // namespace

OwnerLeases::OwnerLeases(Hold hold, Release release, OwnerLeaseOptions opts)
    : hold_(std::move(hold)), release_(std::move(release)), opts_(std::move(opts)) {}

Result<std::set<Uuid>> OwnerLeases::hold(const std::set<Uuid>& comments) {
  std::lock_guard lk(mu_);
  const TimePoint now = opts_.now();
  prune(now);
  // Renewed once a third of the lease has passed, so a batch starts with at least two thirds
  // (>= 2 x write_margin) ahead of it.
  const auto renew_below = opts_.lease - opts_.lease / 3;
  std::set<Uuid> not_held;
  std::vector<std::pair<Uuid, bool>> asks;
  for (const Uuid& c : comments) {
    auto it = leases_.find(c);
    if (it != leases_.end() && it->second.mine) it->second.used = now;
    if (it == leases_.end()) {
      asks.emplace_back(c, false);
    } else if (it->second.mine) {
      if (it->second.until - now < renew_below) asks.emplace_back(c, it->second.until > now);
    } else if (it->second.until > now) {
      not_held.insert(c);  // another node's: not asked again yet
    } else {
      asks.emplace_back(c, false);
    }
  }
  if (asks.empty()) return not_held;
  auto r = hold_(asks, opts_.lease);
  if (!r || r->size() != asks.size()) {
    stats_.failures.fetch_add(1);
    // A renewal whose answer was lost leaves the lease as it was; a take may have landed, and
    // is found ours by the next take.
    if (!r) return r.take_error();
    return Error(Errc::internal, "owner leases: the store answered " + std::to_string(r->size()) + " of " +
                                     std::to_string(asks.size()) + " asks");
  }
  const TimePoint until = now + opts_.lease - kTtlGranularity;
  for (size_t i = 0; i < asks.size(); ++i) {
    const auto& [c, renew] = asks[i];
    Entry& e = leases_[c];
    if ((*r)[i]) {
      (renew || e.mine ? stats_.renewed : stats_.taken).fetch_add(1);
      e = Entry{true, until, now};
    } else {
      // Someone else holds it (or took it after ours ran out): ours is gone either way.
      stats_.refused.fetch_add(1);
      e = Entry{false, now + opts_.retry_other, {}};
      not_held.insert(c);
    }
  }
  size_t held = 0;
  for (auto& [c, e] : leases_) held += e.mine && e.until > now;
  stats_.held.store(held);
  return not_held;
}

bool OwnerLeases::writable(const std::set<Uuid>& comments) const {
  std::lock_guard lk(mu_);
  const TimePoint now = opts_.now();
  for (const Uuid& c : comments) {
    auto it = leases_.find(c);
    if (it == leases_.end() || !it->second.mine || it->second.until - now < opts_.write_margin) return false;
  }
  return true;
}

void OwnerLeases::release_all() {
  std::lock_guard lk(mu_);
  const TimePoint now = opts_.now();
  std::vector<Uuid> mine;
  for (auto& [c, e] : leases_)
    if (e.mine && e.until > now) mine.push_back(c);
  leases_.clear();
  release_locked(mine);
}

void OwnerLeases::release_idle() {
  std::lock_guard lk(mu_);
  const TimePoint now = opts_.now();
  std::vector<Uuid> idle;
  for (auto& [c, e] : leases_)
    if (e.mine && e.until > now && now - e.used >= opts_.idle_release) idle.push_back(c);
  release_locked(idle);
}

void OwnerLeases::release_locked(const std::vector<Uuid>& which) {
  // Forgotten whatever the answer: a release that did land leaves nothing to hold, and one
  // that did not is found ours by the next take.
  for (const Uuid& c : which) leases_.erase(c);
  size_t held = 0;
  const TimePoint now = opts_.now();
  for (auto& [c, e] : leases_) held += e.mine && e.until > now;
  stats_.held.store(held);
  if (which.empty()) return;
  if (auto s = release_(which); !s) {
    stats_.failures.fetch_add(1);
    spdlog::warn("owner leases: releasing {} lease(s) failed ({}); they end by their TTL", which.size(),
                 s.error().message);
    return;
  }
  stats_.released.fetch_add(which.size());
}

void OwnerLeases::prune(TimePoint now) {
  if (now - last_prune_ < opts_.lease) return;
  last_prune_ = now;
  std::erase_if(leases_, [now](const auto& kv) { return kv.second.until <= now; });
}

}  // namespace commentd::workers

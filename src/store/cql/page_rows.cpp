#include "store/cql/page_rows.h"

namespace commentd::store::cql {

std::optional<Comment> PageRows::get(const Uuid& list, uint64_t generation, const Uuid& id, Clock::time_point now) {
  {
    std::lock_guard lk(mu_);
    // Looked at without touching its recency: only a row that serves is made recent, so rows
    // of a past version go first when the bounds are reached. One past its TTL goes now.
    if (Entry* e = kept_.peek(id)) {
      if (now - e->read_at >= ttl_) {
        drop(id);
      } else if (e->list == list && e->generation == generation) {
        stats_.hits.fetch_add(1, std::memory_order_relaxed);
        return kept_.find(id)->row;
      }
    }
  }
  stats_.misses.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

void PageRows::put(const Uuid& list, uint64_t generation, const Comment& c, uint64_t fill, Clock::time_point read_at) {
  std::lock_guard lk(mu_);
  // Under the lock, so a forget cannot fall between the check and the insert.
  if (fill != fills_.load(std::memory_order_acquire)) {
    stats_.stale_fills.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  drop(c.id);
  Entry e{list, generation, c, read_at};
  bytes_ += e.bytes();
  // Past the row bound, put drops the least recently used row itself: taken out here first.
  if (kept_.size() == kept_.capacity()) {
    Entry old;
    if (kept_.pop_least_recent(&old)) bytes_ -= old.bytes();
  }
  kept_.put(c.id, std::move(e));
  while (bytes_ > max_bytes_ && kept_.size() > 1) {
    Entry old;
    if (!kept_.pop_least_recent(&old)) break;
    bytes_ -= old.bytes();
  }
}

void PageRows::drop(const Uuid& id) {
  if (Entry* e = kept_.peek(id)) {
    bytes_ -= e->bytes();
    kept_.erase(id);
  }
}

void PageRows::forget(const Uuid& id) {
  std::lock_guard lk(mu_);
  fills_.fetch_add(1, std::memory_order_acq_rel);
  if (kept_.peek(id)) {
    drop(id);
    stats_.forgotten.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace commentd::store::cql

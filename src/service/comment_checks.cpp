#include "service/comment_checks.h"

namespace commentd::service {

std::optional<Comment> CommentChecks::get(const Uuid& id, Clock::time_point now) {
  {
    std::lock_guard lk(mu_);
    if (Entry* e = kept_.find(id)) {
      if (now - e->read_at < ttl_) {
        stats_.hits.fetch_add(1, std::memory_order_relaxed);
        return e->comment;
      }
      kept_.erase(id);
    }
  }
  stats_.misses.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

void CommentChecks::put(const Comment& c, uint64_t generation, Clock::time_point read_at) {
  std::lock_guard lk(mu_);
  // Under the lock, so a forget cannot fall between the check and the insert.
  if (generation != generation_.load(std::memory_order_acquire)) {
    stats_.stale_fills.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Comment kept = c;
  kept.content.clear();  // a reaction needs the video, the author and the status
  kept_.put(c.id, Entry{std::move(kept), read_at});
}

void CommentChecks::forget(const Uuid& id) {
  std::lock_guard lk(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (kept_.erase(id)) stats_.forgotten.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace commentd::service

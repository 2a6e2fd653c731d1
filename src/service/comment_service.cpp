#include "service/comment_service.h"

#include <unordered_map>

#include "service/read_model.h"
#include "service/service_internal.h"
#include "store/async.h"

namespace commentd::service {

CommentService::CommentService(store::Store& store, cache::PageCache& cache,
                               limit::RateLimiter& limiter, const Clock& clock, UuidGenerator& ids,
                               ReactionOverlay& overlay, ServiceOptions opts)
    : store_(store),
      cache_(cache),
      limiter_(limiter),
      clock_(clock),
      ids_(ids),
      overlay_(overlay),
      opts_(std::move(opts)) {}

asio::awaitable<Status> CommentService::check_rate(const Actor& actor, limit::Action a,
                                                   Deadline d) {
  Status st = decide(co_await limiter_.check("u:" + actor.user_id->str(), a, d));
  if (st && address_limiter_ && !actor.address_subject.empty())
    st = decide(co_await address_limiter_->check(actor.address_subject, a, d));
  co_return st;
}

Status CommentService::decide(const limit::Decision& dec) {
  switch (dec.outcome) {
    case limit::Outcome::allowed:
      return ok_status();
    case limit::Outcome::limited: {
      stats_.rate_limited.fetch_add(1, std::memory_order_relaxed);
      int secs = static_cast<int>((dec.retry_after_ms + 999) / 1000);
      return Error(Errc::rate_limited,
                   "rate limit exceeded; retry in " + std::to_string(secs) + " s",
                   "rate_limited", std::max(secs, 1));
    }
    case limit::Outcome::error:
      break;
  }
  stats_.limiter_errors.fetch_add(1, std::memory_order_relaxed);
  if (opts_.on_limiter_error == LimiterErrorPolicy::open) return ok_status();
  return Error(Errc::unavailable, "the rate limiter is unavailable; retry later",
               "rate_limiter_unavailable", 1);
}

asio::awaitable<void> CommentService::invalidate(Uuid video_id, Deadline d) {
  // The write is already durable: a failed bump leaves the video's cached pages at most one
  // TTL old, like others' new comments, so it is counted and not returned.
  auto st = co_await cache_.bump_video(video_id, d);
  if (!st) stats_.cache_errors.fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<void> CommentService::invalidate_counts(std::optional<Uuid> id, Deadline d) {
  if (!id || !counts_.invalidate) co_return;
  auto st = co_await counts_.invalidate(*id, d);
  if (!st) stats_.cache_errors.fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<Result<std::optional<Comment>>> CommentService::load(const Uuid& id, Deadline d) {
  co_return co_await store_.get_comment(id, d);
}

asio::awaitable<Result<std::optional<Comment>>> CommentService::load_within(const Uuid& id,
                                                                            Deadline d) {
  // A row the store holds in memory needs no race against the deadline: the race's timer and
  // spawned coroutine cost more than the read (every reaction and edit loads its comment).
  if (auto held = store_.try_get_comment(id)) co_return std::move(*held);
  co_return co_await store::within(d, store_.get_comment(id, d));
}

asio::awaitable<Result<std::optional<Comment>>> CommentService::load_for_reaction(const Uuid& id,
                                                                                 Deadline d) {
  if (!checks_ && !shared_checks_) co_return co_await load_within(id, d);
  if (checks_)
    if (auto kept = checks_->get(id, CommentChecks::Clock::now())) co_return std::optional<Comment>(std::move(*kept));
  const uint64_t generation = checks_ ? checks_->begin_fill() : 0;
  const auto read_at = CommentChecks::Clock::now();
  std::optional<std::string> token;
  if (shared_checks_) {
    auto l = co_await shared_checks_->lookup(id, d);
    if (l.copy) {
      if (checks_) checks_->put(*l.copy, generation, read_at);
      co_return std::optional<Comment>(std::move(*l.copy));
    }
    token = std::move(l.token);
  }
  auto r = co_await load_within(id, d);
  // Only a comment that exists is kept: a new comment's id must not be refused by a copy of
  // its absence (it may be created on another node a moment later).
  if (r && *r) {
    if (checks_) checks_->put(**r, generation, read_at);
    if (token) co_await shared_checks_->fill(**r, std::move(*token), d);
  }
  co_return r;
}

asio::awaitable<Status> CommentService::forget_comment_check(Uuid id, Deadline d) {
  if (checks_) checks_->forget(id);
  if (!shared_checks_) co_return ok_status();
  auto st = co_await shared_checks_->forget(id, d);
  if (!st) stats_.cache_errors.fetch_add(1, std::memory_order_relaxed);
  co_return st;
}

asio::awaitable<Result<std::vector<ReactionType>>> CommentService::mine(
    const Actor& actor, const Uuid& video_id, const std::vector<Uuid>& ids, Deadline d,
    const KnownReactions& known) {
  if (!actor.user_id || ids.empty()) co_return std::vector<ReactionType>(ids.size(), ReactionType::none);
  Uuid user = *actor.user_id;
  if (known) co_return mine_known(user, ids, *known);
  auto rows = co_await store_.get_reactions(video_id, user, ids, d);
  if (!rows) co_return rows.take_error();
  with_pending(user, ids, *rows);
  co_return std::move(*rows);
}

std::vector<ReactionType> CommentService::mine_known(const Uuid& user, const std::vector<Uuid>& ids,
                                                     const std::vector<std::pair<Uuid, ReactionType>>& known) const {
  std::vector<ReactionType> rows(ids.size(), ReactionType::none);
  if (known.size() <= 8) {  // the common case, a few reactions: no index of the page to build
    for (auto& [c, type] : known)
      for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == c) rows[i] = type;
  } else {  // `known` may hold a thousand
    std::unordered_map<Uuid, size_t, UuidHash> at;
    for (size_t i = 0; i < ids.size(); ++i) at.emplace(ids[i], i);
    for (auto& [c, type] : known)
      if (auto it = at.find(c); it != at.end()) rows[it->second] = type;
  }
  with_pending(user, ids, rows);
  return rows;
}

void CommentService::with_pending(const Uuid& user, const std::vector<Uuid>& ids,
                                  std::vector<ReactionType>& rows) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (auto pending = overlay_.find(ids[i], user)) rows[i] = *pending;
}

asio::awaitable<Result<std::string>> CommentService::render(const Actor& actor, const Comment& c,
                                                            Deadline d) {
  std::vector<Uuid> ids{c.id};
  CommentMetrics counts;
  if (counts_.get) {
    auto m = co_await counts_.get(c.id, d);
    if (!m) co_return m.take_error();
    counts = *m;
  } else {
    auto m = co_await store_.get_counts(ids, d);
    if (!m) co_return m.take_error();
    counts = (*m)[0];
  }
  auto my = co_await mine(actor, c.video_id, ids, d);
  if (!my) co_return my.take_error();
  co_return comment_json(c, counts, (*my)[0]);
}

}  // namespace commentd::service

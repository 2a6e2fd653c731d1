#include "service/comment_service.h"

#include "service/read_model.h"
#include "service/service_internal.h"
#include "store/async.h"

namespace commentd::service {

CommentService::CommentService(store::Store& store, asio::thread_pool& read_pool,
                               cache::PageCache& cache, limit::RateLimiter& limiter,
                               const Clock& clock, UuidGenerator& ids, ReactionOverlay& overlay,
                               ServiceOptions opts)
    : store_(store),
      read_pool_(read_pool),
      cache_(cache),
      limiter_(limiter),
      clock_(clock),
      ids_(ids),
      overlay_(overlay),
      opts_(std::move(opts)) {}

Status CommentService::check_rate(const Actor& actor, limit::Action a) {
  auto d = limiter_.check(*actor.user_id, a);
  if (d.allowed) return ok_status();
  stats_.rate_limited.fetch_add(1, std::memory_order_relaxed);
  int secs = static_cast<int>((d.retry_after_ms + 999) / 1000);
  return Error(Errc::rate_limited, "rate limit exceeded; retry in " + std::to_string(secs) + " s",
               "rate_limited", std::max(secs, 1));
}

asio::awaitable<Result<std::optional<Comment>>> CommentService::load(const Uuid& id) {
  co_return co_await store::read(read_pool_, [this, id](store::ReadMode m) {
    return store_.get_comment(id, m);
  });
}

asio::awaitable<Result<std::vector<ReactionType>>> CommentService::mine(
    const Actor& actor, const Uuid& video_id, const std::vector<Uuid>& ids) {
  if (!actor.user_id || ids.empty()) co_return std::vector<ReactionType>(ids.size(), ReactionType::none);
  Uuid user = *actor.user_id;
  auto rows = co_await store::read(read_pool_, [&](store::ReadMode m) {
    return store_.get_reactions(video_id, user, ids, m);
  });
  if (!rows) co_return rows.take_error();
  for (size_t i = 0; i < ids.size(); ++i)
    if (auto pending = overlay_.find(ids[i], user)) (*rows)[i] = *pending;
  co_return std::move(*rows);
}

asio::awaitable<Result<std::string>> CommentService::render(const Actor& actor, const Comment& c) {
  std::vector<Uuid> ids{c.id};
  auto m = co_await store::read(read_pool_, [&](store::ReadMode mode) {
    return store_.get_metrics(ids, mode);
  });
  if (!m) co_return m.take_error();
  auto my = co_await mine(actor, c.video_id, ids);
  if (!my) co_return my.take_error();
  co_return comment_json(c, (*m)[0], (*my)[0]);
}

}  // namespace commentd::service

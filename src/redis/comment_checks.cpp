#include "redis/comment_checks.h"

#include <charconv>

#include "metrics/metrics.h"

namespace commentd::redis {

std::string encode_comment_check(const Comment& c) {
  return "c1 " + c.video_id.str() + " " + c.user_id.str() + " " + std::to_string(static_cast<int>(c.status)) + " " +
         std::to_string(c.version);
}

std::optional<Comment> decode_comment_check(const Uuid& id, std::string_view s) {
  // "c1 " video(36) " " author(36) " " status " " version
  constexpr size_t kHead = 3 + 36 + 1 + 36 + 1;
  if (s.size() < kHead + 3 || s.substr(0, 3) != "c1 " || s[39] != ' ' || s[76] != ' ') return std::nullopt;
  auto video = Uuid::parse(s.substr(3, 36));
  auto author = Uuid::parse(s.substr(40, 36));
  if (!video || !author) return std::nullopt;
  s.remove_prefix(kHead);
  const auto sp = s.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  int status = -1;
  uint64_t version = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + sp, status);
  auto [q, ec2] = std::from_chars(s.data() + sp + 1, s.data() + s.size(), version);
  if (ec != std::errc() || p != s.data() + sp || ec2 != std::errc() || q != s.data() + s.size() || status < 0 ||
      status > static_cast<int>(CommentStatus::deleted) || version == 0)
    return std::nullopt;
  Comment c;
  c.id = id;
  c.video_id = *video;
  c.user_id = *author;
  c.status = static_cast<CommentStatus>(status);
  c.version = version;
  return c;
}

RedisCommentChecks::RedisCommentChecks(Client& client, CommentChecksOptions opts)
    : opts_(std::move(opts)), copies_(client, "comment_check", opts_.ttl_ms) {}

asio::awaitable<service::SharedCommentChecks::Lookup> RedisCommentChecks::lookup(Uuid id, Deadline d) {
  // A copy of another format is an error: read storage, do not fill (a forget replaces it).
  auto l = co_await copies_.lookup_as<Comment>(key(id), d, stats_,
                                               [&id](const std::string& s) { return decode_comment_check(id, s); });
  co_return Lookup{std::move(l.value), std::move(l.token)};
}

asio::awaitable<void> RedisCommentChecks::fill(Comment c, std::string token, Deadline d) {
  co_await copies_.fill_counted(key(c.id), std::move(token), encode_comment_check(c), d, stats_);
}

asio::awaitable<Status> RedisCommentChecks::forget(Uuid id, Deadline d) {
  std::vector<std::string> keys;
  keys.push_back(key(id));
  auto st = co_await copies_.invalidate(std::move(keys), d);
  if (st.empty()) {
    stats_.errors++;
    co_return Error(Errc::internal, "redis: no answer to the comment check's forget");
  }
  if (!st.front()) {
    stats_.errors++;
    co_return std::move(st.front());
  }
  stats_.forgotten++;
  co_return ok_status();
}

void append_metrics(const CommentChecksStats& s, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_redis_comment_checks_hits_total",
                               "Reactions' comment checks served from the copy in Redis", s.hits.load()));
  out.push_back(counter_family("commentd_redis_comment_checks_misses_total",
                               "Reactions' comment checks read from storage: no copy in Redis", s.misses.load()));
  out.push_back(counter_family("commentd_redis_comment_checks_fills_total",
                               "Comment checks put in Redis after a storage read", s.fills.load()));
  out.push_back(counter_family("commentd_redis_comment_checks_fills_refused_total",
                               "Comment check fills refused: the comment changed during the read",
                               s.fills_refused.load()));
  out.push_back(counter_family("commentd_redis_comment_checks_forgotten_total",
                               "Comment check copies dropped in Redis after a change of the comment",
                               s.forgotten.load()));
  out.push_back(counter_family("commentd_redis_comment_checks_errors_total",
                               "Comment check calls to Redis that failed (storage answered)", s.errors.load()));
}

}  // namespace commentd::redis

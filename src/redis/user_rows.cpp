#include "redis/user_rows.h"

#include <charconv>

#include "metrics/metrics.h"

namespace commentd::redis {

std::string encode_user_rows(const store::UserRows& rows) {
  std::string out;
  out.reserve(24 + rows.reactions.size() * 40);
  out += rows.view.hidden ? "h1 " : "h0 ";
  out += std::to_string(rows.view.recent_until);
  out += '\n';
  for (auto& [id, type] : rows.reactions) {
    if (type == ReactionType::none) continue;
    out += id.str();
    out += type == ReactionType::like ? " l\n" : " d\n";
  }
  return out;
}

std::optional<store::UserRows> decode_user_rows(std::string_view s) {
  store::UserRows rows;
  auto nl = s.find('\n');
  if (nl == std::string_view::npos || nl < 4 || s[0] != 'h' || (s[1] != '0' && s[1] != '1') || s[2] != ' ')
    return std::nullopt;
  rows.view.hidden = s[1] == '1';
  auto head = s.substr(3, nl - 3);
  auto [p, ec] = std::from_chars(head.data(), head.data() + head.size(), rows.view.recent_until);
  if (ec != std::errc() || p != head.data() + head.size()) return std::nullopt;
  s.remove_prefix(nl + 1);
  while (!s.empty()) {
    nl = s.find('\n');
    if (nl != 38 || s[36] != ' ') return std::nullopt;
    auto id = Uuid::parse(s.substr(0, 36));
    if (!id || (s[37] != 'l' && s[37] != 'd')) return std::nullopt;
    rows.reactions.emplace_back(*id, s[37] == 'l' ? ReactionType::like : ReactionType::dislike);
    s.remove_prefix(39);
  }
  return rows;
}

RedisUserRows::RedisUserRows(Client& client, UserRowsOptions opts)
    : opts_(std::move(opts)), copies_(client, "user_rows", opts_.ttl_ms) {}

asio::awaitable<store::UserRowsCache::Lookup> RedisUserRows::lookup(Uuid video_id, Uuid user_id, Deadline d) {
  auto l = co_await copies_.lookup(key(video_id, user_id), d);
  Lookup out;
  if (l.copy) {
    if (auto rows = decode_user_rows(*l.copy)) {
      stats_.hits++;
      out.rows = std::move(*rows);
      co_return out;
    }
    stats_.errors++;  // not ours: read storage, do not fill
    co_return out;
  }
  if (l.error) {
    stats_.errors++;
    co_return out;
  }
  stats_.misses++;
  out.token = std::move(l.token);
  co_return out;
}

asio::awaitable<void> RedisUserRows::fill(Uuid video_id, Uuid user_id, std::string token,
                                          const store::UserRows& rows, Deadline d) {
  if (rows.reactions.size() > opts_.max_reactions) {
    stats_.too_big++;
    co_return;
  }
  auto r = co_await copies_.fill(key(video_id, user_id), std::move(token), encode_user_rows(rows), d);
  if (!r)
    stats_.errors++;
  else if (*r)
    stats_.fills++;
  else
    stats_.fills_refused++;
}

asio::awaitable<void> RedisUserRows::invalidate(std::vector<std::pair<Uuid, Uuid>> video_user, Deadline d) {
  if (video_user.empty()) co_return;
  std::vector<std::string> keys;
  keys.reserve(video_user.size());
  for (auto& [v, u] : video_user) keys.push_back(key(v, u));
  for (auto& st : co_await copies_.invalidate(std::move(keys), d)) (st ? stats_.invalidations : stats_.errors)++;
}

void append_metrics(const UserRowsStats& s, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_redis_user_rows_hits_total", "Per-user rows (view, reactions) served from Redis", s.hits.load()));
  out.push_back(counter_family("commentd_redis_user_rows_misses_total", "Per-user rows read from storage: not cached", s.misses.load()));
  out.push_back(counter_family("commentd_redis_user_rows_fills_total", "Per-user rows put in Redis after a storage read", s.fills.load()));
  out.push_back(counter_family("commentd_redis_user_rows_fills_refused_total", "Fills refused: the user wrote during the read", s.fills_refused.load()));
  out.push_back(counter_family("commentd_redis_user_rows_too_big_total", "Per-user rows not cached: too many reactions in the video", s.too_big.load()));
  out.push_back(counter_family("commentd_redis_user_rows_invalidations_total", "Per-user copies dropped after a write to the rows", s.invalidations.load()));
  out.push_back(counter_family("commentd_redis_user_rows_errors_total", "Per-user rows Redis calls that failed (storage answered; a lost invalidation waits out redis.user_rows_ttl)", s.errors.load()));
}

}  // namespace commentd::redis

#include "redis/user_rows.h"

#include <charconv>

#include <boost/asio/this_coro.hpp>
#include <map>

#include "metrics/metrics.h"
#include "store/async.h"

namespace commentd::redis {
namespace {

// A mark's value: "<at> <l|d|n>".
std::string mark_value(const store::RowMark& m) {
  const char t = m.type == ReactionType::like ? 'l' : m.type == ReactionType::dislike ? 'd' : 'n';
  return std::to_string(m.at) + ' ' + t;
}

// KEYS: the marks hash. ARGV: user, "<at> <type>", ttl_ms. Keeps the newer mark of a
// user (two requests of one user racing through two nodes).
const char* const kMark = R"lua(
local function at(v) return tonumber(string.sub(v, 1, string.find(v, ' ', 1, true) - 1)) end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur or at(cur) < at(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

// KEYS: the marks hash. ARGV: user 1, "<at> <type>" 1, user 2, ... (the rows the owner is
// about to write). Per row, 1 if its user's mark covers it (newer, or the same value), else 0;
// a mark no newer than the asked row is taken.
const char* const kTake = R"lua(
local function at(v) return tonumber(string.sub(v, 1, string.find(v, ' ', 1, true) - 1)) end
local out = {}
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local covered = 0
  if cur then
    local have, want = at(cur), at(ARGV[i + 1])
    if have > want or cur == ARGV[i + 1] then covered = 1 end
    if have <= want then redis.call('HDEL', KEYS[1], ARGV[i]) end
  end
  out[#out + 1] = covered
end
return out
)lua";

}  // namespace

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
    : client_(client),
      opts_(std::move(opts)),
      copies_(client, "user_rows", opts_.ttl_ms),
      mark_("user_rows_mark", kMark),
      take_("user_rows_take", kTake) {}

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

asio::awaitable<void> RedisUserRows::invalidate(std::vector<std::pair<Uuid, Uuid>> video_user,
                                                std::vector<store::RowMark> written, Deadline d) {
  // The marks go beside the invalidation (pipelined on the same connections): one round trip.
  std::optional<store::Started<bool>> marking;
  if (!written.empty()) {
    auto run = [](RedisUserRows* self, std::vector<store::RowMark> w, Deadline d) -> asio::awaitable<Result<bool>> {
      co_await self->mark(std::move(w), d);
      co_return true;
    };
    marking.emplace(co_await asio::this_coro::executor, run(this, std::move(written), d));
  }
  if (!video_user.empty()) {
    std::vector<std::string> keys;
    keys.reserve(video_user.size());
    for (auto& [v, u] : video_user) keys.push_back(key(v, u));
    for (auto& st : co_await copies_.invalidate(std::move(keys), d)) (st ? stats_.invalidations : stats_.errors)++;
  }
  if (marking) (void)co_await marking->join();
}

asio::awaitable<void> RedisUserRows::mark(std::vector<store::RowMark> written, Deadline d) {
  std::vector<std::vector<std::string>> keys, args;
  keys.reserve(written.size());
  args.reserve(written.size());
  const std::string ttl = std::to_string(opts_.mark_ttl_ms);
  for (auto& m : written) {
    keys.push_back({marks_key(m.video_id, m.comment_id, m.at)});
    args.push_back({m.user_id.str(), mark_value(m), ttl});
  }
  for (auto& r : co_await client_.eval_pipelined(mark_, std::move(keys), std::move(args), d))
    (r ? stats_.marks : stats_.errors)++;
}

asio::awaitable<std::vector<bool>> RedisUserRows::take_written(std::vector<store::RowMark> rows, Deadline d) {
  std::vector<bool> out(rows.size(), false);
  // One call per marks hash (a comment and an op minute), all pipelined.
  std::map<std::string, std::vector<size_t>> by_hash;
  for (size_t i = 0; i < rows.size(); ++i)
    by_hash[marks_key(rows[i].video_id, rows[i].comment_id, rows[i].at)].push_back(i);
  std::vector<std::vector<std::string>> keys, args;
  std::vector<const std::vector<size_t>*> asked;
  keys.reserve(by_hash.size());
  args.reserve(by_hash.size());
  for (auto& [hash, idx] : by_hash) {
    keys.push_back({hash});
    auto& a = args.emplace_back();
    a.reserve(2 * idx.size());
    for (size_t i : idx) {
      a.push_back(rows[i].user_id.str());
      a.push_back(mark_value(rows[i]));
    }
    asked.push_back(&idx);
  }
  auto rs = co_await client_.eval_pipelined(take_, std::move(keys), std::move(args), d);
  for (size_t c = 0; c < rs.size() && c < asked.size(); ++c) {
    const auto& idx = *asked[c];
    if (!rs[c] || rs[c]->elements.size() != idx.size()) {
      stats_.errors++;  // those rows are written
      continue;
    }
    for (size_t j = 0; j < idx.size(); ++j)
      if (rs[c]->elements[j].integer == 1) {
        out[idx[j]] = true;
        stats_.marks_used++;
      }
  }
  co_return out;
}

void append_metrics(const UserRowsStats& s, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_redis_user_rows_hits_total", "Per-user rows (view, reactions) served from Redis", s.hits.load()));
  out.push_back(counter_family("commentd_redis_user_rows_misses_total", "Per-user rows read from storage: not cached", s.misses.load()));
  out.push_back(counter_family("commentd_redis_user_rows_fills_total", "Per-user rows put in Redis after a storage read", s.fills.load()));
  out.push_back(counter_family("commentd_redis_user_rows_fills_refused_total", "Fills refused: the user wrote during the read", s.fills_refused.load()));
  out.push_back(counter_family("commentd_redis_user_rows_too_big_total", "Per-user rows not cached: too many reactions in the video", s.too_big.load()));
  out.push_back(counter_family("commentd_redis_user_rows_invalidations_total", "Per-user copies dropped after a write to the rows", s.invalidations.load()));
  out.push_back(counter_family("commentd_redis_user_rows_marks_total", "Reaction rows a request wrote, marked for their owner to skip", s.marks.load()));
  out.push_back(counter_family("commentd_redis_user_rows_marks_used_total", "Reaction owners' rows not written again: a request's mark covered them", s.marks_used.load()));
  out.push_back(counter_family("commentd_redis_user_rows_errors_total", "Per-user rows Redis calls that failed (storage answered; a lost invalidation waits out redis.user_rows_ttl)", s.errors.load()));
}

}  // namespace commentd::redis

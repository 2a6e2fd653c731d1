#include "redis/user_rows.h"

#include <charconv>

#include <boost/asio/this_coro.hpp>
#include <map>

#include "metrics/metrics.h"

namespace commentd::redis {
namespace {

// A row's value in a copy, and a mark's: "<at> <l|d|n>".
std::string row_value(int64_t at, ReactionType type) {
  const char t = type == ReactionType::like ? 'l' : type == ReactionType::dislike ? 'd' : 'n';
  return std::to_string(at) + ' ' + t;
}
std::string mark_value(const store::RowMark& m) { return row_value(m.at, m.type); }

// A user_reactions row written (GuardedCopies::update). KEYS: the copy, its token, and the
// marks hash when marked. ARGV: a fresh token, its TTL (ms), comment, "<at> <type>",
// max_reactions, user, "1" to mark, the marks' TTL (ms)[, a channel to PUBLISH the copy's key on
// if the copy changed (near copies, redis/subscriber.h)]. Writes the row into a copy of ours:
// in place if its comment's row is older, appended if the copy has none and room for it; a
// row of the same time and another value, a full copy or one not ours is deleted. Keeps the
// newer mark of a user (two requests of one user racing through two nodes). Returns 0: no
// copy, 1: the copy holds the row, 2: the copy was deleted.
const char* const kWrite = R"lua(
local function at(v) return tonumber(string.sub(v, 1, string.find(v, ' ', 1, true) - 1)) end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local row = ARGV[4]
local out = 0
local changed = false
local c = redis.call('GET', KEYS[1])
if c then
  out = 2
  if string.sub(c, 1, 3) == 'u2 ' then
    local s = string.find(c, '\n' .. ARGV[3] .. ' ', 1, true)
    if s then
      local e = string.find(c, '\n', s + 1, true)
      local cur = string.sub(c, s + 38, e - 1)
      if cur == row or at(cur) > at(row) then
        out = 1
      elseif at(cur) < at(row) then
        -- the copy keeps its expiry (PTTL and PX, not KEEPTTL: any Redis that has scripts)
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl > 0 then
          redis.call('SET', KEYS[1], string.sub(c, 1, s + 37) .. row .. string.sub(c, e), 'PX', ttl)
          out = 1
          changed = true
        end
      end
    else
      local _, lines = string.gsub(c, '\n', '\n')
      if lines - 1 < tonumber(ARGV[5]) then
        redis.call('APPEND', KEYS[1], ARGV[3] .. ' ' .. row .. '\n')
        out = 1
        changed = true
      end
    end
  end
  if out == 2 then
    redis.call('DEL', KEYS[1])
    changed = true
  end
end
if changed and ARGV[9] then redis.call('PUBLISH', ARGV[9], KEYS[1]) end
if ARGV[7] == '1' then
  local cur = redis.call('HGET', KEYS[3], ARGV[6])
  if not cur or at(cur) < at(row) then redis.call('HSET', KEYS[3], ARGV[6], row) end
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end
return out
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
  out.reserve(24 + rows.reactions.size() * 58);
  out += rows.view.hidden ? "u2 h1 " : "u2 h0 ";
  out += std::to_string(rows.view.recent_until);
  out += '\n';
  for (auto& r : rows.reactions) {
    out += r.comment_id.str();
    out += ' ';
    out += row_value(r.at, r.type);
    out += '\n';
  }
  return out;
}

std::optional<store::UserRows> decode_user_rows(std::string_view s) {
  store::UserRows rows;
  auto nl = s.find('\n');
  if (nl == std::string_view::npos || nl < 7 || s.substr(0, 4) != "u2 h" || (s[4] != '0' && s[4] != '1') ||
      s[5] != ' ')
    return std::nullopt;
  rows.view.hidden = s[4] == '1';
  auto head = s.substr(6, nl - 6);
  auto [p, ec] = std::from_chars(head.data(), head.data() + head.size(), rows.view.recent_until);
  if (ec != std::errc() || p != head.data() + head.size()) return std::nullopt;
  s.remove_prefix(nl + 1);
  while (!s.empty()) {
    // "<comment_id> <at> <l|d|n>"
    nl = s.find('\n');
    if (nl == std::string_view::npos || nl < 40 || s[36] != ' ' || s[nl - 2] != ' ') return std::nullopt;
    auto id = Uuid::parse(s.substr(0, 36));
    auto when = s.substr(37, nl - 39);
    store::UserReaction r;
    auto [q, ec2] = std::from_chars(when.data(), when.data() + when.size(), r.at);
    const char t = s[nl - 1];
    if (!id || ec2 != std::errc() || q != when.data() + when.size() || (t != 'l' && t != 'd' && t != 'n'))
      return std::nullopt;
    r.comment_id = *id;
    r.type = t == 'l' ? ReactionType::like : t == 'd' ? ReactionType::dislike : ReactionType::none;
    rows.reactions.push_back(r);
    s.remove_prefix(nl + 1);
  }
  return rows;
}

RedisUserRows::RedisUserRows(Client& client, UserRowsOptions opts)
    : client_(client),
      opts_(std::move(opts)),
      copies_(client, "user_rows", opts_.ttl_ms, opts_.refresh_ahead_ms,
              opts_.near_ttl_ms > 0 ? opts_.prefix + "ur:changes" : std::string()),
      write_("user_rows_write", kWrite),
      take_("user_rows_take", kTake),
      near_(opts_.near_entries + 1) {  // near_put evicts past near_entries itself (it counts the rows)
  if (opts_.near_ttl_ms <= 0) return;
  SubscriberOptions so = opts_.near;
  so.channel = copies_.channel();
  sub_ = std::make_unique<Subscriber>(
      std::move(so),
      [this](std::string_view key) {
        if (near_erase(std::string(key))) stats_.near_dropped++;
      },
      [this] { near_clear(); });
}

void RedisUserRows::near_put(const std::string& k, Near n) {
  near_erase(k);
  near_rows_ += n.rows.reactions.size();
  near_.put(k, std::move(n));
  Near out;
  while ((near_rows_ > opts_.near_rows || near_.size() > opts_.near_entries) && near_.pop_least_recent(&out))
    near_rows_ -= out.rows.reactions.size();
}

bool RedisUserRows::near_erase(const std::string& k) {
  const Near* n = near_.peek(k);
  if (!n) return false;
  near_rows_ -= n->rows.reactions.size();
  near_.erase(k);
  return true;
}

void RedisUserRows::near_clear() {
  while (near_.pop_least_recent()) {
  }
  near_rows_ = 0;
}

RedisUserRows::~RedisUserRows() = default;

void RedisUserRows::changed_here(const std::vector<std::string>& keys) {
  if (!sub_) return;
  for (auto& k : keys)
    sub_->note(k, [&] {
      if (near_erase(k)) stats_.near_dropped++;
    });
}

asio::awaitable<store::UserRowsCache::Lookup> RedisUserRows::lookup(Uuid video_id, Uuid user_id, Deadline d) {
  std::string k = key(video_id, user_id);
  Lookup out;
  Subscriber::Mark mark;
  if (sub_) {
    const auto now = std::chrono::steady_clock::now();
    const auto half = std::chrono::milliseconds(opts_.near_ttl_ms / 2);
    sub_->with_current(
        [&] {
          Near* n = near_.find(k);
          if (!n) return;
          if (n->until <= now) {
            near_erase(k);
            return;
          }
          out.rows = n->rows;
          // Past half its life: one read asks for it to be renewed behind it (refresh ahead), so
          // a user who keeps reading is always served here.
          if (n->until - now < half && !n->renewing) out.renew = n->renewing = true;
        },
        &mark);
    if (out.rows) {
      stats_.near_hits++;
      co_return out;
    }
  }
  co_return co_await shared_lookup(k, mark, d);
}

asio::awaitable<store::UserRowsCache::Lookup> RedisUserRows::renew(Uuid video_id, Uuid user_id, Deadline d) {
  if (!sub_) co_return Lookup{};
  Subscriber::Mark mark;
  sub_->with_current([] {}, &mark);
  stats_.near_renewals++;
  co_return co_await shared_lookup(key(video_id, user_id), mark, d);
}

asio::awaitable<store::UserRowsCache::Lookup> RedisUserRows::shared_lookup(const std::string& k,
                                                                            const Subscriber::Mark& mark, Deadline d) {
  // A copy not ours (another release's format) is an error: read storage, do not fill.
  auto l = co_await copies_.lookup_as<store::UserRows>(k, d, stats_,
                                                       [](const std::string& s) { return decode_user_rows(s); });
  if (sub_ && l.value) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts_.near_ttl_ms);
    const bool kept = sub_->if_unchanged(mark, k, [&] { near_put(k, Near{*l.value, until}); });
    (kept ? stats_.near_kept : stats_.near_refused)++;
  }
  Lookup out;
  out.rows = std::move(l.value);
  out.token = std::move(l.token);
  co_return out;
}

asio::awaitable<void> RedisUserRows::fill(Uuid video_id, Uuid user_id, std::string token,
                                          const store::UserRows& rows, Deadline d) {
  if (rows.reactions.size() > opts_.max_reactions) {
    stats_.too_big++;
    co_return;
  }
  co_await copies_.fill_counted(key(video_id, user_id), std::move(token), encode_user_rows(rows), d, stats_);
}

asio::awaitable<void> RedisUserRows::after_write(std::vector<std::pair<Uuid, Uuid>> dropped,
                                                 std::vector<store::UserRowsCache::WrittenRow> written, Deadline d) {
  if (!written.empty()) {
    std::vector<GuardedCopies::Update> updates;
    updates.reserve(written.size());
    const std::string max = std::to_string(opts_.max_reactions), mark_ttl = std::to_string(opts_.mark_ttl_ms);
    for (auto& [m, marked] : written) {
      GuardedCopies::Update& u = updates.emplace_back();
      u.key = key(m.video_id, m.user_id);
      if (marked) u.keys.push_back(marks_key(m.video_id, m.comment_id, m.at));
      u.args = {m.comment_id.str(), mark_value(m), max, m.user_id.str(), marked ? "1" : "0", mark_ttl};
      if (!copies_.channel().empty()) u.args.push_back(copies_.channel());
    }
    std::vector<std::string> keys;
    if (sub_) {
      keys.reserve(updates.size());
      for (auto& u : updates) keys.push_back(u.key);
    }
    auto rs = co_await copies_.update(write_, std::move(updates), d);
    changed_here(keys);
    for (size_t i = 0; i < rs.size(); ++i) {
      if (!rs[i]) {
        stats_.errors++;
        continue;
      }
      if (rs[i]->integer == 1) stats_.updates++;
      if (rs[i]->integer == 2) stats_.invalidations++;
      if (i < written.size() && written[i].mark) stats_.marks++;
    }
  }
  if (!dropped.empty()) {
    std::vector<std::string> keys;
    keys.reserve(dropped.size());
    for (auto& [v, u] : dropped) keys.push_back(key(v, u));
    std::vector<std::string> near_keys;
    if (sub_) near_keys = keys;
    for (auto& st : co_await copies_.invalidate(std::move(keys), d)) (st ? stats_.invalidations : stats_.errors)++;
    changed_here(near_keys);
  }
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

void append_metrics(const UserRowsStats& s, const SubscriberStats* near, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_redis_user_rows_near_hits_total", "Per-user rows served from this node's near copy, without a Redis call (redis.user_rows_near_ttl)", s.near_hits.load()));
  out.push_back(counter_family("commentd_redis_user_rows_near_kept_total", "Per-user rows read from Redis and kept as near copies", s.near_kept.load()));
  out.push_back(counter_family("commentd_redis_user_rows_near_refused_total", "Per-user rows read from Redis and not kept: a change came during the read, or the subscription was not current", s.near_refused.load()));
  out.push_back(counter_family("commentd_redis_user_rows_near_renewals_total", "Near copies past half their life renewed from Redis behind a read", s.near_renewals.load()));
  out.push_back(counter_family("commentd_redis_user_rows_near_dropped_total", "Near copies dropped by a change of the user's rows", s.near_dropped.load()));
  if (near) {
    out.push_back(counter_family("commentd_redis_user_rows_near_messages_total", "Change messages received on the near copies' subscription", near->messages.load()));
    out.push_back(counter_family("commentd_redis_user_rows_near_resets_total", "Near copies' subscriptions lost (every near copy dropped)", near->resets.load()));
    out.push_back(metrics::gauge_family("commentd_redis_user_rows_near_up", "1 while the near copies' subscription is confirmed", near->up.load() ? 1.0 : 0.0));
  }
  out.push_back(counter_family("commentd_redis_user_rows_hits_total", "Per-user rows (view, reactions) served from Redis", s.hits.load()));
  out.push_back(counter_family("commentd_redis_user_rows_misses_total", "Per-user rows read from storage: not cached", s.misses.load()));
  out.push_back(counter_family("commentd_redis_user_rows_fills_total", "Per-user rows put in Redis after a storage read", s.fills.load()));
  out.push_back(counter_family("commentd_redis_user_rows_fills_refused_total", "Fills refused: the user wrote during the read", s.fills_refused.load()));
  out.push_back(counter_family("commentd_redis_user_rows_refreshes_ahead_total", "Copies read near their TTL and refilled behind the read (redis.user_rows_refresh_ahead)", s.refreshes_ahead.load()));
  out.push_back(counter_family("commentd_redis_user_rows_too_big_total", "Per-user rows not cached: too many reactions in the video", s.too_big.load()));
  out.push_back(counter_family("commentd_redis_user_rows_invalidations_total", "Per-user copies dropped after a write to the rows", s.invalidations.load()));
  out.push_back(counter_family("commentd_redis_user_rows_updates_total", "Reaction rows written into a cached per-user copy in place", s.updates.load()));
  out.push_back(counter_family("commentd_redis_user_rows_marks_total", "Reaction rows a request wrote, marked for their owner to skip", s.marks.load()));
  out.push_back(counter_family("commentd_redis_user_rows_marks_used_total", "Reaction owners' rows not written again: a request's mark covered them", s.marks_used.load()));
  out.push_back(counter_family("commentd_redis_user_rows_errors_total", "Per-user rows Redis calls that failed (storage answered; a lost invalidation waits out redis.user_rows_ttl)", s.errors.load()));
}

}  // namespace commentd::redis

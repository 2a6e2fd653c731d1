#include "cache/redis_cache.h"

#include <charconv>
#include <cstring>
#include <random>

#include "metrics/metrics.h"

namespace commentd::cache {
namespace {

// KEYS: version, page, lease. ARGV: now_ms, ttl_ms, stale_ms, lease_ms, key_ttl_ms, ahead_ms.
// Returns {version, page bytes or nil, stale 0/1, fill 0/1, stored at (ms) on a fresh hit}.
// A fresh page within ahead_ms of its TTL comes with the lease to the first caller that
// takes it: that caller refreshes it behind its read, so a hot page is never missing.
const redis::Script kLookup("cache_lookup", R"lua(
local v = redis.call('GET', KEYS[1])
if not v then
  v = string.format('%.0f', tonumber(ARGV[1]) * 1000)
  redis.call('SET', KEYS[1], v, 'PX', ARGV[5])
end
local now = tonumber(ARGV[1])
local p = redis.call('HMGET', KEYS[2], 'v', 't', 'd')
if p[1] == v and p[3] then
  local age = now - tonumber(p[2])
  if age < tonumber(ARGV[2]) then
    local fill = 0
    if age >= tonumber(ARGV[2]) - tonumber(ARGV[6]) and redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[4]) then
      fill = 1
    end
    return {v, p[3], 0, fill, p[2]}
  end
  if age < tonumber(ARGV[2]) + tonumber(ARGV[3]) then
    local got = redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[4])
    return {v, p[3], 1, got and 1 or 0}
  end
end
local got = redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[4])
return {v, false, 0, got and 1 or 0}
)lua");

// KEYS: version, page, lease. ARGV: version, now_ms, bytes, key_ttl_ms.
// Stores the page only if `version` is still the video's current one; always frees the lease.
const redis::Script kPut("cache_put", R"lua(
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'v', ARGV[1], 't', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
)lua");

// KEYS: version. ARGV: now_ms, key_ttl_ms.
const redis::Script kBump("cache_bump", R"lua(
if redis.call('GET', KEYS[1]) then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], string.format('%.0f', tonumber(ARGV[1]) * 1000 + 1), 'PX', ARGV[2])
end
return 1
)lua");

void put_u32(std::string& out, uint32_t v) {
  char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.append(b, 4);
}
bool get_u32(std::string_view& in, uint32_t& v) {
  if (in.size() < 4) return false;
  auto u = [&](size_t i) { return uint32_t(static_cast<unsigned char>(in[i])); };
  v = u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
  in.remove_prefix(4);
  return true;
}
void put_u64(std::string& out, uint64_t v) {
  put_u32(out, static_cast<uint32_t>(v >> 32));
  put_u32(out, static_cast<uint32_t>(v));
}
bool get_u64(std::string_view& in, uint64_t& v) {
  uint32_t hi = 0, lo = 0;
  if (!get_u32(in, hi) || !get_u32(in, lo)) return false;
  v = uint64_t{hi} << 32 | lo;
  return true;
}
bool get_bytes(std::string_view& in, size_t n, std::string_view& out) {
  if (in.size() < n) return false;
  out = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

}  // namespace

uint64_t process_incarnation() {
  static const uint64_t id = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32 | rd()) | 1;  // never 0
  }();
  return id;
}

std::string encode_page(const CachedPage& page, uint64_t incarnation) {
  std::string out;
  size_t size = 4 + 1 + 4 + 8 + 16;  // count, flags, cursor length, build time, epoch
  for (auto& it : page.items) size += 36 + it.json.size();
  out.reserve(size + (page.next_cursor ? page.next_cursor->size() : 0));
  put_u32(out, static_cast<uint32_t>(page.items.size()));
  for (auto& it : page.items) {
    out.append(reinterpret_cast<const char*>(it.id.bytes.data()), 16);
    out.append(reinterpret_cast<const char*>(it.user_id.bytes.data()), 16);
    put_u32(out, static_cast<uint32_t>(it.json.size()));
    out += it.json;
  }
  // Flags: 1 = a cursor follows, 2 = the build time follows it (8 bytes), 4 = the builder's
  // incarnation and build epoch follow that (8 + 8 bytes). Release a45b726 wrote no 4 (and
  // refuses it: a miss there); the one before it wrote 0 or 1 and nothing after the cursor
  // (refusing 2). This one reads both, with what they lack unknown.
  const bool has_built_at = page.built_at_ms > 0;
  const bool has_epoch = page.built_epoch > 0;
  out.push_back(static_cast<char>((page.next_cursor ? 1 : 0) | (has_built_at ? 2 : 0) | (has_epoch ? 4 : 0)));
  if (page.next_cursor) {
    put_u32(out, static_cast<uint32_t>(page.next_cursor->size()));
    out += *page.next_cursor;
  }
  if (has_built_at) put_u64(out, static_cast<uint64_t>(page.built_at_ms));
  if (has_epoch) {
    put_u64(out, incarnation);
    put_u64(out, page.built_epoch);
  }
  return out;
}

std::optional<CachedPage> decode_page(std::string_view in, uint64_t incarnation) {
  CachedPage page;
  uint32_t n = 0;
  if (!get_u32(in, n) || n > in.size() / 36) return std::nullopt;
  page.items.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    PageItem it;
    std::string_view id, user, json;
    uint32_t len = 0;
    if (!get_bytes(in, 16, id) || !get_bytes(in, 16, user) || !get_u32(in, len) || !get_bytes(in, len, json))
      return std::nullopt;
    std::memcpy(it.id.bytes.data(), id.data(), 16);
    std::memcpy(it.user_id.bytes.data(), user.data(), 16);
    it.json.assign(json);
    page.items.push_back(std::move(it));
  }
  if (in.empty()) return std::nullopt;
  const auto flags = static_cast<unsigned char>(in[0]);
  if (flags > 7) return std::nullopt;
  in.remove_prefix(1);
  if (flags & 1) {
    uint32_t len = 0;
    std::string_view c;
    if (!get_u32(in, len) || !get_bytes(in, len, c)) return std::nullopt;
    page.next_cursor = std::string(c);
  }
  if (flags & 2) {
    uint64_t at = 0;
    if (!get_u64(in, at)) return std::nullopt;
    page.built_at_ms = static_cast<TimeMs>(at);
  }
  if (flags & 4) {
    uint64_t builder = 0, epoch = 0;
    if (!get_u64(in, builder) || !get_u64(in, epoch)) return std::nullopt;
    if (builder == incarnation) page.built_epoch = epoch;  // another process's count means nothing here
  }
  if (!in.empty()) return std::nullopt;
  return page;
}

RedisPageCache::RedisPageCache(redis::Client& client, RedisCacheOptions opts, const Clock& clock)
    : client_(client), opts_(std::move(opts)), clock_(clock) {}

std::optional<RedisPageCache::Local> RedisPageCache::local_get(const Uuid& video, const std::string& key,
                                                               TimeMs now) {
  std::lock_guard lk(local_mu_);
  auto v = local_.find(video);
  if (v == local_.end()) return std::nullopt;
  auto e = v->second.find(key);
  if (e == v->second.end()) return std::nullopt;
  if (now < e->second.until) return e->second;
  v->second.erase(e);
  --local_entries_;
  if (v->second.empty()) local_.erase(v);
  return std::nullopt;
}

void RedisPageCache::local_put(const Uuid& video, const std::string& key, Local l, uint64_t gen, TimeMs now) {
  std::lock_guard lk(local_mu_);
  if (gen != local_gen_) return;
  // Entries expire in arrival order (each is held at most local_ms): drop the expired ones, so
  // keys read once (a reader's next-page cursor) do not pile up.
  while (!local_order_.empty() && local_order_.front().until <= now) {
    const auto& o = local_order_.front();
    if (auto v = local_.find(o.video); v != local_.end()) {
      if (auto e = v->second.find(o.key); e != v->second.end() && e->second.until <= now) {
        v->second.erase(e);
        --local_entries_;
        if (v->second.empty()) local_.erase(v);
      }
    }
    local_order_.pop_front();
  }
  if (local_entries_ >= opts_.local_max_entries) {
    local_.clear();
    local_order_.clear();
    local_entries_ = 0;
  }
  local_order_.push_back(LocalOrder{l.until, video, key});
  auto [it, added] = local_[video].insert_or_assign(key, std::move(l));
  (void)it;
  if (added) ++local_entries_;
}

std::optional<Lookup> RedisPageCache::try_lookup(const Uuid& video_id, const std::string& key) {
  if (opts_.local_ms <= 0) return std::nullopt;
  auto l = local_get(video_id, key, clock_.now_ms());
  if (!l) return std::nullopt;
  stats_.hits++;
  stats_.local_hits++;
  return Lookup{.page = std::move(l->page), .version = l->version, .stale = false, .fill = false};
}

asio::awaitable<Result<Lookup>> RedisPageCache::lookup(Uuid video_id, std::string key, Deadline d) {
  uint64_t gen = 0;
  if (opts_.local_ms > 0) {
    if (auto l = try_lookup(video_id, key)) co_return std::move(*l);
    std::lock_guard lk(local_mu_);
    gen = local_gen_;
  }
  // Named locals, not braced lists inside the co_await: g++ 12 miscompiles those.
  const std::string t = tag(video_id);
  std::vector<std::string> keys{t + "v", t + "p:" + key, t + "l:" + key};
  std::vector<std::string> args{std::to_string(clock_.now_ms()), std::to_string(opts_.ttl_ms),
                                std::to_string(opts_.stale_ms), std::to_string(opts_.lease_ms),
                                std::to_string(opts_.key_ttl_ms),
                                std::to_string(std::min(opts_.refresh_ahead_ms, opts_.ttl_ms / 2))};
  auto r = co_await client_.eval(kLookup, std::move(keys), std::move(args), d);
  if (!r) {
    stats_.errors++;
    co_return r.take_error();
  }
  if (r->elements.size() != 4 && r->elements.size() != 5) {
    stats_.errors++;
    co_return Error(Errc::internal, "redis cache: unexpected lookup reply");
  }
  Lookup l;
  const auto& vs = r->elements[0].str;
  if (std::from_chars(vs.data(), vs.data() + vs.size(), l.version).ec != std::errc()) {
    stats_.errors++;
    co_return Error(Errc::internal, "redis cache: bad version '" + vs + "'");
  }
  l.stale = r->elements[2].integer != 0;
  l.fill = r->elements[3].integer != 0;
  if (!r->elements[1].is_nil()) {
    auto page = decode_page(r->elements[1].str);
    if (page) l.page = std::make_shared<const CachedPage>(std::move(*page));
  }
  if (!l.page) {
    l.stale = false;
    stats_.misses++;
    if (!l.fill) stats_.lease_waits++;
  } else {
    (l.stale ? stats_.stale_hits : stats_.hits)++;
    if (l.fill && !l.stale) stats_.refreshes_ahead++;
    TimeMs stored_at = 0;
    const auto& ts = r->elements.size() == 5 ? r->elements[4].str : std::string();
    if (opts_.local_ms > 0 && !l.stale &&
        std::from_chars(ts.data(), ts.data() + ts.size(), stored_at).ec == std::errc()) {
      const TimeMs now = clock_.now_ms();
      local_put(video_id, key, Local{l.page, l.version, std::min(now + opts_.local_ms, stored_at + opts_.ttl_ms)}, gen,
                now);
    }
  }
  co_return l;
}

asio::awaitable<Status> RedisPageCache::put(Uuid video_id, std::string key, uint64_t version, PagePtr page,
                                            Deadline d) {
  uint64_t gen = 0;
  if (opts_.local_ms > 0) {
    std::lock_guard lk(local_mu_);
    gen = local_gen_;
  }
  const TimeMs put_at = clock_.now_ms();
  const std::string t = tag(video_id);
  std::vector<std::string> keys{t + "v", t + "p:" + key, t + "l:" + key};
  std::vector<std::string> args{std::to_string(version), std::to_string(put_at),
                                page ? encode_page(*page) : encode_page(CachedPage{}),
                                std::to_string(opts_.key_ttl_ms)};
  auto r = co_await client_.eval(kPut, std::move(keys), std::move(args), d);
  if (!r) {
    stats_.errors++;
    co_return r.take_error();
  }
  (r->integer == 1 ? stats_.puts : stats_.puts_superseded)++;
  if (r->integer == 1 && opts_.local_ms > 0 && page)
    local_put(video_id, key, Local{page, version, put_at + std::min(opts_.local_ms, opts_.ttl_ms)}, gen, put_at);
  co_return ok_status();
}

asio::awaitable<Status> RedisPageCache::bump_video(Uuid video_id, Deadline d) {
  std::vector<std::string> keys{tag(video_id) + "v"};
  std::vector<std::string> args{std::to_string(clock_.now_ms()), std::to_string(opts_.key_ttl_ms)};
  auto r = co_await client_.eval(kBump, std::move(keys), std::move(args), d);
  if (opts_.local_ms > 0) {
    // Even when the bump failed: this node's readers must not keep the old pages.
    std::lock_guard lk(local_mu_);
    ++local_gen_;
    if (auto it = local_.find(video_id); it != local_.end()) {
      local_entries_ -= it->second.size();
      local_.erase(it);
    }
  }
  if (!r) {
    stats_.errors++;
    co_return r.take_error();
  }
  stats_.bumps++;
  co_return ok_status();
}

void append_metrics(const RedisCacheStats& s, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_redis_cache_hits_total", "Redis page cache lookups that found a fresh page", double(s.hits.load())));
  out.push_back(counter_family("commentd_redis_cache_local_hits_total", "Redis page cache hits served by the local layer (redis.local_cache_ttl)", double(s.local_hits.load())));
  out.push_back(counter_family("commentd_redis_cache_stale_hits_total", "Redis page cache lookups served stale (inside stale_while_revalidate)", double(s.stale_hits.load())));
  out.push_back(counter_family("commentd_redis_cache_refreshes_ahead_total", "Fresh pages refreshed behind a read near their TTL (redis.refresh_ahead)", double(s.refreshes_ahead.load())));
  out.push_back(counter_family("commentd_redis_cache_misses_total", "Redis page cache lookups that found no current page", double(s.misses.load())));
  out.push_back(counter_family("commentd_redis_cache_lease_waits_total", "Misses whose fill lease another caller or node held", double(s.lease_waits.load())));
  out.push_back(counter_family("commentd_redis_cache_puts_total", "Pages stored in Redis", double(s.puts.load())));
  out.push_back(counter_family("commentd_redis_cache_puts_superseded_total", "Puts dropped: the video was written meanwhile", double(s.puts_superseded.load())));
  out.push_back(counter_family("commentd_redis_cache_bumps_total", "Video version bumps (writes)", double(s.bumps.load())));
  out.push_back(counter_family("commentd_redis_cache_errors_total", "Redis page cache calls that failed", double(s.errors.load())));
}

}  // namespace commentd::cache

#include "redis/guarded_copies.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <random>

namespace commentd::redis {
namespace {

// KEYS: copy, token[, refresh lease]. ARGV: a fresh token, token_ttl_ms[, refresh window ms].
// Returns {1, copy} on a hit, else {0, the current token} (made from ARGV[1] if none). With a
// window: a hit on a copy with less than that left to live also takes the refresh lease (SET
// NX, for the window: one holder per copy, as the copy is gone before the lease) and returns
// {2, copy, the current token}: its holder serves the copy and refills it under that token.
const char* const kLookup = R"lua(
local v = redis.call('GET', KEYS[1])
local function current()
  local g = redis.call('GET', KEYS[2])
  if not g then
    g = ARGV[1]
    redis.call('SET', KEYS[2], g, 'PX', ARGV[2])
  end
  return g
end
if v then
  local w = tonumber(ARGV[3] or '0')
  if w > 0 then
    local left = redis.call('PTTL', KEYS[1])
    if left >= 0 and left < w and redis.call('SET', KEYS[3], '1', 'NX', 'PX', w) then
      return {2, v, current()}
    end
  end
  return {1, v}
end
return {0, current()}
)lua";

// KEYS: copy, token. ARGV: the token the lookup saw, the copy, ttl_ms. 1 if stored.
const char* const kFill = R"lua(
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
)lua";

// KEYS: copy, token. ARGV: a fresh token, token_ttl_ms[, a channel to PUBLISH the copy's key
// on]. The message leaves Redis in the same turn of its event loop as this call's reply.
const char* const kInvalidate = R"lua(
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if ARGV[3] then redis.call('PUBLISH', ARGV[3], KEYS[1]) end
return 1
)lua";

// KEYS: copy 1, token 1, copy 2, token 2, ... ARGV: a fresh token per pair, then
// token_ttl_ms[, then a channel to PUBLISH each copy's key on]. The invalidation of every
// pair, in one call (one slot: a single Redis).
const char* const kInvalidateMany = R"lua(
local n = #KEYS / 2
local ttl, channel = ARGV[n + 1], ARGV[n + 2]
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[i + 1], ARGV[(i + 1) / 2], 'PX', ttl)
  if channel then redis.call('PUBLISH', channel, KEYS[i]) end
end
return n
)lua";

}  // namespace

GuardedCopies::GuardedCopies(Client& client, const std::string& name, int64_t ttl_ms, int64_t refresh_ahead_ms,
                             std::string channel)
    : client_(client),
      channel_(std::move(channel)),
      ttl_ms_(ttl_ms),
      refresh_ahead_ms_(std::clamp<int64_t>(refresh_ahead_ms, 0, ttl_ms / 2)),
      nonce_(std::random_device{}() * 0x100000001ULL ^ std::random_device{}()),
      lookup_(name + "_lookup", kLookup),
      fill_(name + "_fill", kFill),
      invalidate_(name + "_invalidate", kInvalidate),
      invalidate_many_(name + "_invalidate_many", kInvalidateMany) {}

std::string GuardedCopies::token() {
  char b[48];
  int n = std::snprintf(b, sizeof b, "%016" PRIx64 ":%" PRIu64, nonce_, ++seq_);
  return std::string(b, static_cast<size_t>(n));
}

asio::awaitable<GuardedCopies::Lookup> GuardedCopies::lookup(const std::string& key, Deadline d) {
  std::vector<std::string> keys{key, key + ":g"};
  std::vector<std::string> args{token(), std::to_string(ttl_ms_ * 2)};
  if (refresh_ahead_ms_ > 0) {
    keys.push_back(key + ":r");
    args.push_back(std::to_string(refresh_ahead_ms_));
  }
  auto r = co_await client_.eval(lookup_, std::move(keys), std::move(args), d);
  Lookup out;
  const size_t n = r ? r->elements.size() : 0;
  if (!r || n < 2) {
    out.error = true;
  } else if (r->elements[0].integer == 1) {
    out.copy = std::move(r->elements[1].str);
  } else if (r->elements[0].integer == 2 && n == 3) {
    out.copy = std::move(r->elements[1].str);
    out.token = std::move(r->elements[2].str);
  } else {
    out.token = std::move(r->elements[1].str);
  }
  co_return out;
}

asio::awaitable<Result<bool>> GuardedCopies::fill(const std::string& key, std::string token, std::string value,
                                                  Deadline d) {
  std::vector<std::string> keys{key, key + ":g"};
  std::vector<std::string> args{std::move(token), std::move(value), std::to_string(ttl_ms_)};
  auto r = co_await client_.eval(fill_, std::move(keys), std::move(args), d);
  if (!r) co_return r.take_error();
  co_return r->integer == 1;
}

asio::awaitable<void> GuardedCopies::fill_counted(const std::string& key, std::string token, std::string value,
                                                 Deadline d, CopyStats& s) {
  auto r = co_await fill(key, std::move(token), std::move(value), d);
  (!r ? s.errors : *r ? s.fills : s.fills_refused)++;
}

asio::awaitable<std::vector<Status>> GuardedCopies::invalidate(std::vector<std::string> keys, Deadline d) {
  const std::string token_ttl = std::to_string(ttl_ms_ * 2);
  std::vector<Status> out;
  if (keys.size() == 1) {
    std::vector<std::string> ks{keys[0], keys[0] + ":g"};
    std::vector<std::string> as{token(), token_ttl};
    if (!channel_.empty()) as.push_back(channel_);
    auto r = co_await client_.eval(invalidate_, std::move(ks), std::move(as), d);
    out.push_back(r ? ok_status() : Status(r.take_error()));
    co_return out;
  }
  if (!client_.options().cluster) {
    std::vector<std::string> ks, as;
    ks.reserve(keys.size() * 2);
    as.reserve(keys.size() + 1);
    for (auto& k : keys) {
      ks.push_back(k);
      ks.push_back(k + ":g");
      as.push_back(token());
    }
    as.push_back(token_ttl);
    if (!channel_.empty()) as.push_back(channel_);
    auto r = co_await client_.eval(invalidate_many_, std::move(ks), std::move(as), d);
    const Status st = r ? ok_status() : Status(r.take_error());
    out.assign(keys.size(), st);
    co_return out;
  }
  std::vector<std::vector<std::string>> ks, as;
  ks.reserve(keys.size());
  as.reserve(keys.size());
  for (auto& k : keys) {
    std::vector<std::string> key_pair{k, k + ":g"}, arg_pair{token(), token_ttl};
    if (!channel_.empty()) arg_pair.push_back(channel_);
    ks.push_back(std::move(key_pair));
    as.push_back(std::move(arg_pair));
  }
  auto rs = co_await client_.eval_pipelined(invalidate_, std::move(ks), std::move(as), d);
  out.reserve(rs.size());
  for (auto& r : rs) out.push_back(r ? ok_status() : Status(r.take_error()));
  co_return out;
}

asio::awaitable<std::vector<Result<Reply>>> GuardedCopies::update(const Script& s, std::vector<Update> updates,
                                                                 Deadline d) {
  const std::string token_ttl = std::to_string(ttl_ms_ * 2);
  std::vector<std::vector<std::string>> ks, as;
  ks.reserve(updates.size());
  as.reserve(updates.size());
  for (auto& u : updates) {
    auto& k = ks.emplace_back();
    k.reserve(2 + u.keys.size());
    k.push_back(u.key);
    k.push_back(u.key + ":g");
    for (auto& x : u.keys) k.push_back(std::move(x));
    auto& a = as.emplace_back();
    a.reserve(2 + u.args.size());
    a.push_back(token());
    a.push_back(token_ttl);
    for (auto& x : u.args) a.push_back(std::move(x));
  }
  co_return co_await client_.eval_pipelined(s, std::move(ks), std::move(as), d);
}

}  // namespace commentd::redis

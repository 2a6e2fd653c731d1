#include "redis/counter_cache.h"

#include <cinttypes>
#include <cstdio>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "metrics/metrics.h"

namespace commentd::redis {
namespace {

std::string encode(const CommentMetrics& m) {
  char b[96];
  int n = std::snprintf(b, sizeof b, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, m.likes,
                        m.dislikes, m.replies_count, m.last_updated);
  return std::string(b, static_cast<size_t>(n));
}

bool decode(const std::string& s, CommentMetrics& m) {
  return std::sscanf(s.c_str(), "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64, &m.likes,
                     &m.dislikes, &m.replies_count, &m.last_updated) == 4;
}

}  // namespace

PendingInvalidations::Added PendingInvalidations::add(const std::vector<Uuid>& ids) {
  Added a;
  for (const Uuid& id : ids) {
    if (queued_.count(id)) {
      ++a.coalesced;
    } else if (order_.size() >= max_) {
      ++a.dropped;
    } else {
      queued_.insert(id);
      order_.push_back(id);
      ++a.queued;
    }
  }
  return a;
}

std::vector<Uuid> PendingInvalidations::take(size_t n) {
  std::vector<Uuid> out;
  while (!order_.empty() && out.size() < n) {
    out.push_back(order_.front());
    queued_.erase(order_.front());
    order_.pop_front();
  }
  return out;
}

CounterCache::CounterCache(Client& client, CounterCacheOptions opts)
    : client_(client), opts_(std::move(opts)), copies_(client, "counter", opts_.ttl_ms), pending_(opts_.max_pending) {}

CounterCache::~CounterCache() {
  std::unique_lock lk(inv_mu_);
  closing_ = true;
  // A running flush stops after its wave, which ends by its deadline (bounded wait: an
  // executor stopped mid-wave never resumes it). A flush spawned on a stopped executor never
  // runs and is not waited for.
  idle_cv_.wait_for(lk, opts_.wave_timeout * 2, [&] { return !running_; });
}

asio::awaitable<Result<CommentMetrics>> CounterCache::get(store::Store& store, Uuid id, Deadline d) {
  const std::string k = key(id);
  auto looked = co_await copies_.lookup_as<CommentMetrics>(k, d, stats_, [](const std::string& s) {
    CommentMetrics m;
    return decode(s, m) ? std::optional<CommentMetrics>(m) : std::nullopt;
  });
  if (looked.value) co_return *looked.value;
  std::vector<Uuid> ids{id};
  auto stored = co_await store.get_counts(std::move(ids), d);
  if (!stored) co_return stored.take_error();
  CommentMetrics m = stored->at(0);
  if (looked.token) co_await copies_.fill_counted(k, std::move(*looked.token), encode(m), d, stats_);
  co_return m;
}

asio::awaitable<Status> CounterCache::invalidate(Uuid id, Deadline d) {
  std::vector<Uuid> ids{id};
  co_return co_await invalidate_many(std::move(ids), d);
}

asio::awaitable<Status> CounterCache::invalidate_many(std::vector<Uuid> ids, Deadline d) {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const Uuid& id : ids) keys.push_back(key(id));
  auto rs = co_await copies_.invalidate(std::move(keys), d);
  Status first = ok_status();
  for (auto& r : rs) {
    if (r) {
      stats_.invalidations++;
      continue;
    }
    stats_.errors++;
    if (first.ok()) first = r.take_error();
  }
  co_return first;
}

void CounterCache::invalidate_later(const std::vector<Uuid>& ids) {
  if (ids.empty()) return;
  bool spawn = false;
  {
    std::lock_guard lk(inv_mu_);
    if (closing_) return;
    auto a = pending_.add(ids);
    stats_.invalidations_coalesced += a.coalesced;
    stats_.invalidations_dropped += a.dropped;
    if (!flushing_ && pending_.size() > 0) spawn = flushing_ = true;
  }
  if (spawn) asio::co_spawn(client_.executor(), flush(), asio::detached);
}

asio::awaitable<void> CounterCache::flush() {
  for (;;) {
    std::vector<Uuid> wave;
    {
      std::lock_guard lk(inv_mu_);
      running_ = true;
      if (!closing_) wave = pending_.take(opts_.max_wave);
      if (wave.empty()) {
        flushing_ = running_ = false;
        idle_cv_.notify_all();
        co_return;
      }
    }
    stats_.invalidation_waves++;
    (void)co_await invalidate_many(std::move(wave), Deadline::after(opts_.wave_timeout));
  }
}

bool CounterCache::wait_idle(std::chrono::milliseconds max) {
  std::unique_lock lk(inv_mu_);
  return idle_cv_.wait_for(lk, max, [&] { return !flushing_ && pending_.size() == 0; });
}

void append_metrics(const CounterCacheStats& s, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_redis_counter_cache_hits_total", "Reaction counts served from the Redis counter cache", s.hits.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_misses_total", "Reaction counts read from storage: not cached", s.misses.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_fills_total", "Counter copies put in Redis after a storage read", s.fills.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_fills_refused_total", "Fills refused: the comment was invalidated during the read", s.fills_refused.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_invalidations_total", "Counter copies dropped after the applier committed", s.invalidations.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_invalidation_waves_total", "Pipelined waves of counter invalidations sent", s.invalidation_waves.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_invalidations_coalesced_total", "Counter invalidations merged into one already pending", s.invalidations_coalesced.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_invalidations_dropped_total", "Counter invalidations dropped (pending set full); the copy expires within redis.counter_ttl", s.invalidations_dropped.load()));
  out.push_back(counter_family("commentd_redis_counter_cache_errors_total", "Counter cache Redis calls that failed (storage answered)", s.errors.load()));
}

}  // namespace commentd::redis

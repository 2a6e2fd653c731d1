// Wiring lives here and only here (STYLE.md #4): builds every part from the config, starts
// them in order, and stops them in reverse: stop accepting, finish in-flight requests,
// drain the reaction log, close storage.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "api/api.h"
#include "auth/jwt.h"
#include "cache/page_cache.h"
#include "cache/redis_cache.h"
#include "config/config.h"
#include "bridge/runtime.h"
#include "events/pulsar/pulsar_bus.h"
#include "events/pulsar/stall_watchdog.h"
#include "http/router.h"
#include "http/server.h"
#include "limit/rate_limiter.h"
#include "limit/redis_limiter.h"
#include "metrics/metrics.h"
#include "redis/client.h"
#include "redis/comment_checks.h"
#include "redis/counter_cache.h"
#include "redis/metrics.h"
#include "redis/user_rows.h"
#include "service/comment_service.h"
#include "store/cql/count_repair.h"
#include "store/cql/cql_store.h"
#include "store/rocks/rocks_store.h"
#include "workers/activity_tracker.h"
#include "workers/bus_reaction_applier.h"
#include "workers/event_subscriber.h"
#include "workers/metrics_worker.h"
#include "workers/outbox_relay.h"
#include "workers/reaction_applier.h"
#include "workers/worker_manager.h"

namespace commentd::app {

class Application {
 public:
  explicit Application(config::Config cfg);
  ~Application();

  // Opens storage, starts workers and the server. Returns the bound port.
  Result<uint16_t> start();
  // Blocks until SIGINT/SIGTERM, then stops gracefully.
  void run_until_signal();
  void stop();

 private:
  void register_routes();

  config::Config cfg_;
  SystemClock clock_;
  std::unique_ptr<UuidGenerator> ids_;
  boost::asio::io_context ioc_;
  // storage.backend cql: the driver bridge's runtime (outlives the store) and the store.
  std::unique_ptr<bridge::Runtime> cql_runtime_;
  std::unique_ptr<store::Store> store_;
  store::rocks::RocksStore* rocks_ = nullptr;    // store_ when the backend is rocksdb
  store::cql::CqlStore* cql_ = nullptr;          // store_ when the backend is cql
  // redis_ outlives the cache and limiter that use it (members are destroyed in reverse).
  std::unique_ptr<redis::Client> redis_;
  std::unique_ptr<cache::PageCache> cache_;                // when Redis is off
  std::unique_ptr<limit::RateLimiter> limiter_;            // when Redis is off
  std::unique_ptr<cache::RedisPageCache> redis_cache_;     // when redis.enabled
  std::unique_ptr<limit::RedisRateLimiter> redis_limiter_; // when redis.enabled
  std::unique_ptr<redis::CounterCache> counter_cache_;     // when redis.enabled
  std::unique_ptr<redis::RedisUserRows> user_rows_;        // redis.enabled, on CQL, user_rows_ttl > 0
  std::unique_ptr<redis::RedisCommentChecks> shared_checks_;  // redis.enabled, on CQL, comment_check_ttl > 0
  // limits.per_ip, when any is set: in-process, or Redis when redis.enabled.
  std::unique_ptr<limit::RateLimiter> address_limiter_;
  std::unique_ptr<limit::RedisRateLimiter> redis_address_limiter_;
  http::TrustedProxies trusted_proxies_;
  service::ReactionOverlay overlay_;
  // CQL with storage.cql.comment_check_ttl > 0: what reactions know of their comments.
  std::unique_ptr<service::CommentChecks> comment_checks_;
  std::unique_ptr<service::CommentService> service_;
  std::unique_ptr<workers::ReactionApplier> applier_;          // embedded reactions (the op log)
  std::unique_ptr<workers::ActivityTracker> activity_;
  std::unique_ptr<workers::MetricsWorker> reconciler_;
  // CQL: video comments_count / comment replies_count made exact after dead writes; the one
  // task of repair_scheduler_ (declared after it, so stopped and destroyed first).
  std::unique_ptr<store::cql::CountRepairer> count_repairer_;
  std::unique_ptr<workers::Scheduler> repair_scheduler_;
  std::unique_ptr<workers::Scheduler> maintenance_;
  uint16_t node_id_ = 0;
  std::unique_ptr<bridge::Runtime> bridge_rt_;  // with pulsar.enabled and no cql_runtime_; outlives the bus
  std::unique_ptr<events::EventBus> bus_;        // the PulsarBus with pulsar.enabled; else none
  events::PulsarBus* pulsar_bus_ = nullptr;      // bus_ when it is the PulsarBus
  // Cluster mode: the reaction owner's leases on its comments (fencing), and the reactions
  // topic's consumer, which holds them.
  std::unique_ptr<workers::OwnerLeases> owner_leases_;
  std::unique_ptr<workers::BusReactionApplier> bus_applier_;
  // Unloads the reactions topic when its Key_Shared subscription stops dispatching (a broker
  // fault; pulsar.stuck_after). Runs on the maintenance thread.
  std::unique_ptr<events::StallWatchdog> stall_watchdog_;
  std::unique_ptr<workers::OutboxRelay> relay_;           // the outbox
  std::unique_ptr<workers::OutboxRelay> reaction_relay_;  // the op log: the reaction events
  std::unique_ptr<workers::EventSubscriber> cache_invalidation_;
  std::unique_ptr<workers::WorkerManager> workers_;
  std::unique_ptr<auth::JwtVerifier> jwt_;
  std::unique_ptr<metrics::Metrics> metrics_;
  http::Router router_;
  std::unique_ptr<http::Server> server_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

// Opens the store (the server must be stopped), recounts every comment's and video's
// counters from the source of truth and prints each drift. Returns the exit code: 0 when
// every counter is exact, 1 when any drifted, 2 on error.
int verify_counts(const config::Config& cfg);

// The seams' Redis implementations from the config (redis.*, cache.page_ttl, limits.*).
// Fails only when redis.tls names files it cannot use.
Result<redis::ClientOptions> redis_client_options(const config::RedisConfig& rc);
std::unique_ptr<cache::RedisPageCache> cache_from_config(const config::Config& c, redis::Client& client,
                                                         const Clock& clock);
// per_ip: the limiter of limits.per_ip (subjects "ip:..."), else of the per-user limits.
std::unique_ptr<limit::RedisRateLimiter> limiter_from_config(const config::Config& c, redis::Client& client,
                                                             const Clock& clock, bool per_ip = false);

// "METHOD /pattern" of every route the API serves, without starting anything.
std::vector<std::string> describe_routes();

}  // namespace commentd::app

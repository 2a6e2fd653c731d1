#include "app/application.h"

#include "app/node_identity.h"
#include "net/tls.h"
#include "workers/cache_invalidation.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <random>

// jemalloc reads this at start-up (MALLOC_CONF in the environment still overrides it):
// a background thread returns freed dirty pages to the OS after dirty_decay_ms, so RSS falls
// back after a burst instead of staying at its peak. Measured in `make bench` (overload run).
extern "C" {
__attribute__((used)) const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}

namespace commentd::app {

namespace asio = boost::asio;
using metrics::counter_family;
using metrics::gauge_family;

namespace {
// Closes the bus when the workers stop (it is registered before its users, so it closes
// after them).
class BusCloser final : public workers::Worker {
 public:
  explicit BusCloser(events::EventBus& bus) : bus_(bus) {}
  Status start() override { return ok_status(); }
  void stop() override { bus_.close(); }
  std::string name() const override { return "event-bus"; }

 private:
  events::EventBus& bus_;
};

// Earlier versions kept a node-local bus for a CQL node without Pulsar in a RocksDB of its own
// under the data dir; no bus runs there now, so the directory is removed (it held only bus
// topics and cursors, never acknowledged data).
void drop_unused_local_bus_dir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return;
  std::filesystem::remove_all(dir, ec);
  if (ec) spdlog::warn("storage: could not remove the unused local bus at {}: {}", dir, ec.message());
  else spdlog::info("storage: removed the node-local event bus an earlier version kept at {}", dir);
}
}  // namespace

Application::Application(config::Config cfg) : cfg_(std::move(cfg)) {}

Result<redis::ClientOptions> redis_client_options(const config::RedisConfig& rc) {
  redis::ClientOptions o;
  if (rc.tls.enabled) {
    auto tls = net::make_client_context({rc.tls.ca_file, rc.tls.cert_file, rc.tls.key_file}, "redis tls");
    if (!tls) return tls.take_error();
    o.tls = std::move(*tls);
  }
  for (const auto& n : rc.cluster_nodes)
    if (auto hp = config::parse_host_port(n)) o.nodes.emplace_back(hp->host, hp->port);
  o.cluster = !o.nodes.empty();
  if (!o.cluster) o.nodes.emplace_back(rc.host, static_cast<uint16_t>(rc.port));
  o.username = rc.username;
  o.password = rc.password;
  o.db = rc.db;
  o.pool_size = static_cast<size_t>(rc.pool_size);
  o.connect_timeout = rc.connect_timeout;
  o.command_timeout = rc.command_timeout;
  o.breaker_failures = rc.breaker_failures;
  o.breaker_open = rc.breaker_open;
  return o;
}

std::unique_ptr<cache::RedisPageCache> cache_from_config(const config::Config& c, redis::Client& client,
                                                         const Clock& clock) {
  cache::RedisCacheOptions o;
  o.prefix = c.redis.key_prefix;
  o.ttl_ms = c.cache.page_ttl.count();
  o.stale_ms = c.redis.stale_while_revalidate.count();
  o.lease_ms = c.redis.lease_ttl.count();
  o.refresh_ahead_ms = c.redis.refresh_ahead.count();
  o.key_ttl_ms = int64_t(c.redis.ttl) * 1000;
  o.local_ms = c.redis.local_cache_ttl.count();
  return std::make_unique<cache::RedisPageCache>(client, o, clock);
}

namespace {
limit::Rule rule(const config::RateRule& r) { return {r.limit, r.window.count()}; }

// Cluster mode: a reaction op to the reactions topic, keyed by its comment; its bus position.
asio::awaitable<Result<uint64_t>> publish_reaction(events::EventBus& bus, std::string topic, ReactionOp op,
                                                   std::string event) {
  auto a = co_await bus.publish(std::move(topic), op.comment_id.str(), std::move(event), 0);
  if (!a) co_return a.take_error();
  co_return a->message_id;
}

void append_bus_applier_metrics(workers::BusReactionApplier& a, service::ServiceStats& ss,
                                std::vector<prometheus::MetricFamily>& out) {
  auto& as = a.stats();
  workers::append_applier_metrics(as, ss.reactions_published.load(), out);
  out.push_back(metrics::histogram_family("commentd_reaction_apply_lag_seconds",
                                          "From a reaction op's acceptance to its batch applied by the comment's owner", as.lag_seconds));
  out.push_back(counter_family("commentd_reaction_redelivered_total", "Reaction messages this node's applier received again", as.redelivered.load()));
  out.push_back(counter_family("commentd_reaction_duplicates_total", "Reaction ops received again after being applied here (skipped)", as.duplicates.load()));
  out.push_back(counter_family("commentd_reaction_malformed_total", "Messages on the reactions topic that are not reaction events", as.malformed.load()));
  out.push_back(counter_family("commentd_reaction_failed_batches_total", "Reaction batches that failed and were given back", as.errors.load()));
  out.push_back(counter_family("commentd_reaction_recounts_total", "Comments recounted from their registers by their owner", as.recounts.load()));
  out.push_back(counter_family("commentd_reaction_owner_repairs_total", "Owner recounts that found the stored counters off and repaired them", as.repairs.load()));
  out.push_back(counter_family("commentd_reaction_deferred_total", "Reaction messages given back because another node holds their comment's owner lease", as.deferred.load()));
  out.push_back(counter_family("commentd_reaction_fenced_batches_total", "Reaction batches failed because an owner lease had too little time left to write", as.fenced.load()));
  out.push_back(counter_family("commentd_reaction_view_errors_total", "Reactions accepted whose read-your-writes row failed to write", ss.reaction_view_errors.load()));
}

void append_owner_lease_metrics(const workers::OwnerLeaseStats& ls, std::vector<prometheus::MetricFamily>& out) {
  out.push_back(gauge_family("commentd_reaction_owner_leases", "Comment owner leases this node holds", static_cast<double>(ls.held.load())));
  out.push_back(counter_family("commentd_reaction_owner_lease_asks_total", "Owner lease conditional writes by outcome",
                               "outcome",
                               {{"taken", double(ls.taken.load())},
                                {"renewed", double(ls.renewed.load())},
                                {"refused", double(ls.refused.load())},
                                {"released", double(ls.released.load())}}));
  out.push_back(counter_family("commentd_reaction_owner_lease_failures_total", "Owner lease calls that failed (the batch waited)", ls.failures.load()));
}
}  // namespace

std::unique_ptr<limit::RedisRateLimiter> limiter_from_config(const config::Config& c, redis::Client& client,
                                                             const Clock& clock, bool per_ip) {
  const config::RateRule& cc = per_ip ? c.limits.per_ip.create_comment : c.limits.create_comment;
  const config::RateRule& ar = per_ip ? c.limits.per_ip.add_reaction : c.limits.add_reaction;
  return std::make_unique<limit::RedisRateLimiter>(client, rule(cc), rule(ar), clock, c.redis.key_prefix);
}

Application::~Application() { stop(); }

Result<uint16_t> Application::start() {
  auto hp = config::parse_host_port(cfg_.server.listen);
  if (!hp) return Error(Errc::bad_request, "server.listen: bad host:port '" + cfg_.server.listen + "'");

  std::random_device rd;
  auto node = resolve_node_id(cfg_.node.id, cfg_.storage.data_dir, (uint64_t(rd()) << 32) ^ rd());
  if (!node) return node.take_error();
  node_id_ = *node;
  ids_ = std::make_unique<UuidGenerator>(clock_, (uint64_t(rd()) << 32) ^ rd(), node_id_);

  store::rocks::RocksOptions ro;
  ro.data_dir = cfg_.storage.data_dir;
  ro.block_cache_mb = static_cast<size_t>(cfg_.storage.block_cache_mb);
  ro.memtable_mb = static_cast<size_t>(cfg_.storage.memtable_mb);
  ro.read_threads = static_cast<size_t>(cfg_.storage.read_threads);
  ro.inline_reads = cfg_.storage.inline_reads;
  ro.sync_writes = cfg_.storage.sync_writes;
  ro.write_queue_capacity = cfg_.storage.write_queue_capacity;
  ro.max_group_commit = cfg_.storage.max_group_commit;
  if (cfg_.storage.backend == "cql") {
    auto rt = bridge::Runtime::create(static_cast<unsigned>(cfg_.storage.cql.driver_threads));
    if (!rt) return rt.take_error();
    cql_runtime_ = std::move(*rt);
    store::cql::CqlStoreOptions co;
    co.cql = cfg_.storage.cql;
    co.node_id = node_id_;
    co.max_in_flight_commits = cfg_.storage.write_queue_capacity;
    auto cs = store::cql::CqlStore::open(*cql_runtime_, co);
    if (!cs) return cs.take_error();
    cql_ = cs->get();
    store_ = std::move(*cs);
    if (!cfg_.pulsar.enabled) drop_unused_local_bus_dir(cfg_.storage.data_dir + "/local-bus");
    spdlog::info("storage: cql, keyspace {} on {} (node {})", cfg_.storage.cql.keyspace,
                 cfg_.storage.cql.hosts.empty() ? "" : cfg_.storage.cql.hosts.front(), node_id_);
  } else {
    auto st = store::rocks::RocksStore::open(ro);
    if (!st) return st.take_error();
    rocks_ = st->get();
    store_ = std::move(*st);
    // Earlier versions copied every event into a node-local bus in this store (up to
    // storage.log_retention per topic). No bus runs here now ("The event bus" below), so
    // nothing reads or trims those rows: drop them once. A failure (a full volume) only
    // leaves them for the next start.
    if (!cfg_.pulsar.enabled) {
      auto cleared = rocks_->clear_bus();
      if (!cleared)
        spdlog::warn("storage: could not drop the unused node-local event bus: {}", cleared.error().message);
      else if (*cleared)
        spdlog::info("storage: dropped the node-local event bus an earlier version kept (no bus runs without Pulsar)");
    }
  }

  // The cache and limiter seams: Redis when redis.enabled (shared by every node), else
  // in-process; independent of the storage backend.
  if (cfg_.redis.enabled) {
    auto ro = redis_client_options(cfg_.redis);
    if (!ro) return ro.take_error();
    redis_ = std::make_unique<redis::Client>(ioc_.get_executor(), std::move(*ro));
    redis_cache_ = cache_from_config(cfg_, *redis_, clock_);
    redis_limiter_ = limiter_from_config(cfg_, *redis_, clock_);
    counter_cache_ = std::make_unique<redis::CounterCache>(
        *redis_, redis::CounterCacheOptions{.prefix = cfg_.redis.key_prefix, .ttl_ms = cfg_.redis.counter_ttl.count()});
    // The two per-user rows every signed-in list reads (embedded keeps them in its exact
    // row caches; on CQL they would be two Cassandra reads per read).
    if (cql_ && cfg_.redis.user_rows_ttl.count() > 0) {
      redis::UserRowsOptions uo{.prefix = cfg_.redis.key_prefix,
                                .ttl_ms = cfg_.redis.user_rows_ttl.count(),
                                .refresh_ahead_ms = cfg_.redis.user_rows_refresh_ahead.count()};
      // Near copies need a subscription whose messages keep Redis's order: one Redis (in
      // Redis Cluster a PUBLISH crosses the cluster bus, unordered with the writer's reply).
      if (cfg_.redis.cluster_nodes.empty()) {
        // At most the refresh window: a user who reads at least that often then reaches the
        // Redis copy inside its window, which refreshes it before it ends.
        uo.near_ttl_ms = cfg_.redis.user_rows_near_ttl.count();
        if (uo.refresh_ahead_ms > 0) uo.near_ttl_ms = std::min(uo.near_ttl_ms, uo.refresh_ahead_ms);
        uo.near.host = cfg_.redis.host;
        uo.near.port = static_cast<uint16_t>(cfg_.redis.port);
        uo.near.username = cfg_.redis.username;
        uo.near.password = cfg_.redis.password;
        uo.near.connect_timeout = cfg_.redis.connect_timeout;
        uo.near.tls = redis_->options().tls;
      } else if (cfg_.redis.user_rows_near_ttl.count() > 0) {
        spdlog::info("redis.user_rows_near_ttl: off with redis.cluster_nodes (near copies need one Redis)");
      }
      user_rows_ = std::make_unique<redis::RedisUserRows>(*redis_, std::move(uo));
      cql_->set_user_rows_cache(user_rows_.get());
    }
    // What reactions read of a comment, shared by the nodes (the service asks it on a miss of
    // its own copies, below).
    if (cql_ && cfg_.redis.comment_check_ttl.count() > 0)
      shared_checks_ = std::make_unique<redis::RedisCommentChecks>(
          *redis_, redis::CommentChecksOptions{.prefix = cfg_.redis.key_prefix,
                                               .ttl_ms = cfg_.redis.comment_check_ttl.count()});
  } else {
    cache_ = cache::make_memory_cache(
        {.max_entries = cfg_.cache.max_entries, .ttl_ms = cfg_.cache.page_ttl.count()}, clock_);
    limiter_ = limit::make_memory_limiter(rule(cfg_.limits.create_comment), rule(cfg_.limits.add_reaction), clock_);
  }
  auto trusted = http::TrustedProxies::parse(cfg_.server.trusted_proxies);
  if (!trusted) return trusted.take_error();
  trusted_proxies_ = std::move(*trusted);
  const auto& ip = cfg_.limits.per_ip;
  if (ip.create_comment.limit > 0 || ip.add_reaction.limit > 0) {
    if (redis_)
      redis_address_limiter_ = limiter_from_config(cfg_, *redis_, clock_, /*per_ip=*/true);
    else
      address_limiter_ = limit::make_memory_limiter(rule(ip.create_comment), rule(ip.add_reaction), clock_);
  }
  cache::PageCache& page_cache = redis_cache_ ? *redis_cache_ : *cache_;
  limit::RateLimiter& rate_limiter = redis_limiter_ ? *redis_limiter_ : *limiter_;

  service::ServiceOptions so;
  so.max_content_bytes = cfg_.limits.max_content_bytes;
  so.max_reply_depth = static_cast<uint32_t>(cfg_.limits.max_reply_depth);
  so.max_pending_ops = cfg_.workers.reaction_batch.max_pending_ops;
  so.node_id = node_id_;
  so.comments_topic = cfg_.pulsar.topics.comments;
  so.page_ttl_ms = cfg_.cache.page_ttl.count();
  so.stale_window_ms = redis_cache_ ? cfg_.redis.stale_while_revalidate.count() : 0;
  // Pages read ahead are only worth their scans where a cache keeps them.
  const bool pages_kept = cfg_.cache.page_ttl.count() > 0 && (redis_ || cfg_.cache.max_entries > 0);
  so.read_ahead_pages = pages_kept ? cfg_.cache.read_ahead_pages : 0;
  so.cursor_key = derive_cursor_key(cfg_.auth.cursor_secret, cfg_.auth.jwt_secret);
  so.reaction_row_at_request = cql_ != nullptr;  // only CQL is shared by several nodes
  so.on_limiter_error = cfg_.limits.on_error == "closed" ? service::LimiterErrorPolicy::closed
                                                         : service::LimiterErrorPolicy::open;
  service_ = std::make_unique<service::CommentService>(*store_, page_cache, rate_limiter, clock_,
                                                       *ids_, overlay_, so);
  if (counter_cache_) {
    service_->set_counts_cache(
        {[cc = counter_cache_.get(), st = store_.get()](Uuid id, Deadline d) { return cc->get(*st, id, d); },
         [cc = counter_cache_.get()](Uuid id, Deadline d) { return cc->invalidate(id, d); }});
  }
  service_->set_address_limiter(redis_address_limiter_ ? redis_address_limiter_.get() : address_limiter_.get());
  // RocksDB answers a reaction's comment from memory; CQL would read it for every reaction.
  if (cql_ && cfg_.storage.cql.comment_check_ttl.count() > 0) {
    comment_checks_ = std::make_unique<service::CommentChecks>(cfg_.storage.cql.comment_check_ttl);
    service_->set_comment_checks(comment_checks_.get());
  }
  if (shared_checks_) service_->set_shared_comment_checks(shared_checks_.get());

  // Reactions: embedded, the node's op log and its applier; in cluster mode (CQL with Pulsar)
  // the reactions topic and its Key_Shared appliers (docs/cluster.md "Reaction op").
  const bool reactions_on_bus = cql_ && cfg_.pulsar.enabled;
  if (!reactions_on_bus) {
    workers::ApplierOptions ao;
    ao.batch_size = cfg_.workers.reaction_batch.batch_size;
    ao.flush_interval = cfg_.workers.reaction_batch.flush_interval;
    applier_ = std::make_unique<workers::ReactionApplier>(*store_, overlay_, clock_, ao);
    service_->set_on_op_appended([a = applier_.get()] { a->notify(); });
    service_->set_applied_seq_source([a = applier_.get()] { return a->applied_seq(); });
  }
  // A reaction's event is its op: the op log is the reactions topic's outbox (relayed below
  // when there is a bus). Where it starts is recorded once, before any op is appended.
  uint64_t op_events_from = 0;
  if (!reactions_on_bus) {
    auto first = workers::reaction_events_start(*store_);
    if (!first) return Error(first.error().code, "reading where reaction events start: " + first.error().message);
    op_events_from = *first;
  }

  const auto& w = cfg_.workers;
  activity_ = std::make_unique<workers::ActivityTracker>(
      clock_, workers::TierRules{w.tiers.realtime_per_minute, w.tiers.high_per_minute, w.tiers.normal_per_minute,
                                 w.trending.window.count(), w.trending.min_events});
  auto on_applied = [a = activity_.get()](const ReactionOp& op) {
    a->record_comment(op.comment_id);
    a->record_video(op.video_id);
  };
  if (applier_) {
    applier_->set_on_applied(on_applied);
    // The batch is durable: drop the cached counters of the comments it changed, once each,
    // pipelined and coalesced (redis/counter_cache.h). A failure or a drop is counted by the
    // cache; the copy then expires within redis.counter_ttl.
    if (counter_cache_)
      applier_->set_on_batch_applied([cc = counter_cache_.get()](const std::vector<Uuid>& ids) { cc->invalidate_later(ids); });
  }
  service_->set_on_activity([a = activity_.get()](const Uuid& video, const std::optional<Uuid>& comment) {
    a->record_video(video);
    if (comment) a->record_comment(*comment);
  });
  service_->set_video_tier_source([a = activity_.get()](const Uuid& v) {
    return std::pair{a->video_trending(v), a->video_tier(v)};
  });

  // Workers are owned here and registered without ownership: they must outlive the
  // service. Started in this order, stopped in reverse: the reconciler stops first, then the
  // applier drains the log.
  workers_ = std::make_unique<workers::WorkerManager>();
  auto unowned = [](workers::Worker* p) { return std::shared_ptr<workers::Worker>(p, [](workers::Worker*) {}); };
  Status s = ok_status();
  if (applier_) {
    s = workers_->register_worker(unowned(applier_.get()));
    if (!s) return s.take_error();
  }
  // The event bus is Pulsar (pulsar.enabled), fed by the outbox relay, with its subscribers.
  // Registered in this order, stopped in reverse: subscribers leave, the relay publishes what
  // is left in the outbox, then the bus closes. The PulsarBus connects lazily: a broker that
  // is away does not stop the start (the outbox keeps the events, the relay retries, the
  // subscriber subscribes when it can).
  //
  // Without Pulsar no bus runs: nothing would read it. Every subscriber of the service reads a
  // bus the nodes share (the cache invalidation carries one node's edits to the others, the
  // reaction owners read the reactions topic), and a node-local bus is read by no other
  // process. Relaying each event into one (the LocalBus, its own log in the same RocksDB) cost
  // the embedded node about 15 % of its reaction throughput: a second write of every event,
  // and two threads on the cores (docs/cluster.md "Outbox relay"). The outbox is then the
  // node's event log, kept for storage.log_retention events; a relay started later (Pulsar
  // enabled) publishes what it still holds after the relay's stored position.
  if (cfg_.pulsar.enabled) {
    const auto& pc = cfg_.pulsar;
    if (!cql_runtime_) {  // one bridge runtime per process: the CQL store's when there is one
      auto rt = bridge::Runtime::create(2);
      if (!rt) return rt.take_error();
      bridge_rt_ = std::move(*rt);
    }
    events::PulsarBusOptions po;
    po.url = pc.url;
    po.token = pc.token;
    if (pc.url.starts_with("pulsar+ssl://")) po.tls_ca_file = pc.tls_ca_file;  // else it is the admin API's
    po.producer_name = "commentd-node-" + std::to_string(node_id_);
    po.batch_size = static_cast<uint32_t>(pc.batch_size);
    po.batch_delay = pc.batch_delay;
    po.max_pending = static_cast<uint32_t>(pc.max_pending_messages);
    po.send_timeout = pc.send_timeout;
    po.operation_timeout = pc.send_timeout;
    po.connect_timeout = pc.connect_timeout;
    // Read through Key_Shared by the appliers: a batch would go whole to its first key's owner.
    if (reactions_on_bus) po.unbatched_topics = {pc.topics.reactions};
    if (Status st = events::PulsarBus::check_options(po); !st) return st.take_error();
    auto pb = std::make_unique<events::PulsarBus>(cql_runtime_ ? *cql_runtime_ : *bridge_rt_,
                                                  std::move(po));
    pulsar_bus_ = pb.get();
    bus_ = std::move(pb);
    s = workers_->register_worker(std::make_shared<BusCloser>(*bus_));
    if (!s) return s.take_error();
  }
  if (reactions_on_bus) {
    workers::BusApplierOptions bo;
    bo.topic = cfg_.pulsar.topics.reactions;
    bo.batch_size = cfg_.workers.reaction_batch.owner_batch_size;
    bo.batch_timeout = cfg_.workers.reaction_batch.flush_interval;
    // The lease's owner names this process, not just the node: a node restarted at once
    // waits out the leases of its previous run, whose last writes may still be landing.
    std::random_device rd;
    const std::string owner = fmt::format("node-{}-{:08x}", node_id_, rd());
    workers::OwnerLeaseOptions lo;
    lo.lease = std::chrono::duration_cast<std::chrono::seconds>(cfg_.workers.reaction_batch.owner_lease);
    lo.write_margin = cfg_.storage.cql.request_timeout + std::chrono::seconds(2);
    owner_leases_ = std::make_unique<workers::OwnerLeases>(
        [c = cql_, owner](const std::vector<std::pair<Uuid, bool>>& asks, std::chrono::seconds ttl) {
          std::vector<store::cql::CqlStore::LeaseAsk> a;
          a.reserve(asks.size());
          for (auto& [comment, renew] : asks) a.push_back({comment, renew});
          return c->hold_owner_leases(a, owner, ttl);
        },
        [c = cql_, owner](const std::vector<Uuid>& comments) { return c->release_owner_leases(comments, owner); },
        lo);
    bus_applier_ = std::make_unique<workers::BusReactionApplier>(
        *store_, *bus_, [c = cql_](const Uuid& comment, const Uuid& video) { return c->owner_recount(comment, video); },
        clock_, bo, owner_leases_.get());
    // Each applied op's comment joins the counter cache's next invalidation wave (repeats
    // merge there), as the embedded applier's batches do.
    bus_applier_->set_on_applied([on_applied, cc = counter_cache_.get()](const ReactionOp& op) {
      on_applied(op);
      if (cc) cc->invalidate_later({op.comment_id});
    });
    service_->set_reaction_publisher([bus = bus_.get(), topic = cfg_.pulsar.topics.reactions](
                                         ReactionOp op, std::string event) {
      return publish_reaction(*bus, topic, std::move(op), std::move(event));
    });
    s = workers_->register_worker(unowned(bus_applier_.get()));
    if (!s) return s.take_error();
  }
  if (bus_ && w.outbox_relay.enabled) {
    // Each relay publishes under a producer name of its own log (with the log's incarnation,
    // see outbox_relay.h): the broker drops a batch republished after a crash.
    const std::string producer = "commentd-node-" + std::to_string(node_id_);
    relay_ = std::make_unique<workers::OutboxRelay>(
        *store_, *bus_, workers::RelayOptions{.name = "outbox", .producer = producer + "-outbox",
                                              .batch_size = w.outbox_relay.batch_size,
                                              .poll_interval = w.outbox_relay.poll_interval});
    s = workers_->register_worker(unowned(relay_.get()));
    if (!s) return s.take_error();
    if (!reactions_on_bus) {
      reaction_relay_ = std::make_unique<workers::OutboxRelay>(
          *store_, *bus_,
          workers::RelayOptions{.name = "reactions", .producer = producer + "-ops",
                                .batch_size = w.outbox_relay.batch_size,
                                .poll_interval = w.outbox_relay.poll_interval},
          workers::op_log_source(*store_, cfg_.pulsar.topics.reactions, op_events_from - 1));
      s = workers_->register_worker(unowned(reaction_relay_.get()));
      if (!s) return s.take_error();
    }
  }
  // Only on a bus the nodes share (Pulsar). It exists to carry one node's edits to the other
  // nodes' caches and skips its own node's events; on the local bus, which holds this node's
  // events alone, it would read and acknowledge every event to do nothing (about 5 % of the
  // embedded node's CPU under the viral mix).
  if (w.cache_invalidation.enabled && pulsar_bus_) {
    workers::ForgetComment forget;
    if (comment_checks_ || shared_checks_ || cql_)
      forget = [svc = service_.get(), checks = comment_checks_ || shared_checks_, cql = cql_](
                   Uuid id, Deadline d) -> boost::asio::awaitable<Status> {
        if (cql) cql->forget_page_row(id);  // the rows kept for page builds (store/cql/page_rows.h)
        if (!checks) co_return ok_status();
        co_return co_await svc->forget_comment_check(id, d);
      };
    cache_invalidation_ = workers::make_cache_invalidation(*bus_, page_cache, cfg_.pulsar.topics.comments, node_id_,
                                                           std::move(forget));
    s = workers_->register_worker(unowned(cache_invalidation_.get()));
    if (!s) return s.take_error();
  }
  // Log retention: applied ops and outbox events beyond storage.log_retention. With a bus, an
  // event the relays have not delivered is never trimmed (nor with the relays switched off:
  // the events wait for them); without one, the outbox and the op log are the node's event
  // logs, trimmed by age alone.
  maintenance_ = std::make_unique<workers::Scheduler>("maintenance", clock_, std::chrono::seconds(1));
  s = maintenance_->add_task("trim-logs", std::chrono::seconds(60), [this] {
    const uint64_t keep = cfg_.storage.log_retention, applied = applier_ ? applier_->applied_seq() : 0;
    const uint64_t delivered = !bus_ ? store_->last_outbox_seq() : relay_ ? relay_->delivered() : 0;
    std::optional<uint64_t> ops_delivered;
    if (bus_) ops_delivered = reaction_relay_ ? reaction_relay_->delivered() : 0;
    return store_->trim_logs(workers::op_log_trim_bound(applied, ops_delivered, keep), delivered, keep);
  });
  if (!s) return s.take_error();
  s = workers_->register_worker(unowned(maintenance_.get()));
  if (!s) return s.take_error();
  if (cql_) {
    // docs/cluster.md "Commit intents": writes that died after their entity write get their
    // derived rows and events; part of the write model, so not switchable.
    s = maintenance_->add_task("commit-intents", std::chrono::seconds(10),
                               [c = cql_, settle = store::cql::intent_settle(cfg_.storage.cql)] {
                                 return c->sweep_intents(settle);
                               });
    if (!s) return s.take_error();
  }
  if (bus_applier_) {
    s = maintenance_->add_task("owner-leases", std::chrono::seconds(1), [a = bus_applier_.get()] {
      a->release_idle_leases();
      return ok_status();
    });
    if (!s) return s.take_error();
  }
  if (bus_applier_ && cfg_.pulsar.stuck_after.count() > 0) {
    auto http = events::make_admin_http(cfg_.pulsar.admin_url, cfg_.pulsar.token, std::chrono::seconds(2),
                                        cfg_.pulsar.tls_ca_file);
    if (!http) return Error(http.error().code, http.error().message + " (or pulsar.stuck_after: 0)");
    stall_watchdog_ = std::make_unique<events::StallWatchdog>(
        std::move(*http),
        std::vector{events::WatchedSubscription{cfg_.pulsar.topics.reactions, workers::BusApplierOptions{}.subscription}},
        cfg_.pulsar.stuck_after, clock_);
    // Six looks per stuck_after: a stall is acted on between 1 and 7/6 of it after it began.
    const auto every = std::max<std::chrono::milliseconds>(std::chrono::seconds(1), cfg_.pulsar.stuck_after / 6);
    s = maintenance_->add_task("pulsar-stalls", every, [w = stall_watchdog_.get()] { return w->check(); });
    if (!s) return s.take_error();
  }
  if (w.metrics_reconciliation.enabled && cql_) {
    // docs/cluster.md "Reconciliation repair": CQL has no snapshots, so the tiered snapshot
    // recounts do not run here. Reaction counters are their owner's (its recount); a video's
    // comments_count and a comment's replies_count are the counter repair's, which recounts
    // only keys left by a dead write, once nothing can race it ("Counter repair").
    // Its statements are counted with the store's (commentd_cql_requests_total).
    auto cr = store::cql::CountRepairer::open(*cql_runtime_, cfg_.storage.cql, std::nullopt, &cql_->statement_metrics());
    if (!cr) return Error(cr.error().code, "counter repair: " + cr.error().message);
    count_repairer_ = std::move(*cr);
    // A thread of its own: a large video's recount reads each of its comments (about 50 s for
    // 40,000 on the 2-core test machine), which would hold up the maintenance thread's lease
    // releases and stall checks, due every second or so.
    repair_scheduler_ = std::make_unique<workers::Scheduler>("count-repair", clock_, std::chrono::seconds(1));
    count_repairer_->set_cancelled([s = repair_scheduler_.get()] { return s->stopping(); });  // a prompt stop
    s = repair_scheduler_->add_task("count-repair", w.metrics_reconciliation.high_frequency_interval,
                                    [r = count_repairer_.get()] { return r->round(); });
    if (!s) return s.take_error();
    s = workers_->register_worker(unowned(repair_scheduler_.get()));
    if (!s) return s.take_error();
  } else if (w.metrics_reconciliation.enabled) {
    const auto& mr = w.metrics_reconciliation;
    reconciler_ = std::make_unique<workers::MetricsWorker>(
        *store_, *activity_, clock_,
        workers::ReconcileIntervals{mr.realtime_interval, mr.high_frequency_interval, mr.normal_frequency_interval,
                                    mr.low_frequency_interval});
    s = workers_->register_worker(unowned(reconciler_.get()));
    if (!s) return s.take_error();
  }
  s = workers_->start_all();
  if (!s) return s.take_error();

  jwt_ = std::make_unique<auth::JwtVerifier>(cfg_.auth.jwt_secret, clock_);
  if (cfg_.auth.jwt_secret.empty())
    spdlog::warn("auth.jwt_secret is empty: every authenticated request will get 401");
  if (cfg_.auth.dev_mode)
    spdlog::warn("auth.dev_mode is ON: X-User-Id/X-User-Role headers are trusted. Never in production.");

  metrics_ = std::make_unique<metrics::Metrics>();
  metrics_->add_source([this](std::vector<prometheus::MetricFamily>& out) {
    auto& ss = service_->stats();
    out.push_back(counter_family("comment_cache_hits_total", "Total number of comment cache hits", ss.cache_hits.load()));
    out.push_back(counter_family("comment_cache_misses_total", "Total number of comment cache misses", ss.cache_misses.load()));
    out.push_back(counter_family("commentd_cache_coalesced_reads_total", "Cache misses served by another request's storage read", ss.coalesced_reads.load()));
    out.push_back(counter_family("commentd_cache_pages_read_ahead_total", "Pages cached beside a cursor page's fill, read from the same scans", ss.pages_read_ahead.load()));
    out.push_back(counter_family("commentd_pages_built_public_total",
                                 "Public pages built from storage: one per coalesced read, cached when its read held the fill lease",
                                 ss.public_pages.load()));
    out.push_back(counter_family("commentd_cache_lease_waits_total",
                                 "Looks again of a node's read for another node's fill of the page (one per node and wait, "
                                 "whatever its readers)",
                                 ss.lease_waits.load()));
    out.push_back(counter_family("commentd_pages_built_private_total",
                                 "Pages built from storage for one reader (moderators, authors inside a recent write's mark, "
                                 "authors with hidden comments), never cached",
                                 ss.private_pages.load()));
    out.push_back(counter_family("commentd_write_conflicts_total", "Writes retried after a concurrent change", ss.write_conflicts.load()));
    out.push_back(counter_family("commentd_rate_limited_total", "Requests refused by the rate limiter", ss.rate_limited.load()));
    out.push_back(counter_family("commentd_cache_errors_total", "Page cache calls that failed (served as misses)", ss.cache_errors.load()));
    out.push_back(counter_family("commentd_rate_limiter_errors_total", "Rate limiter checks that failed (then limits.on_error)", ss.limiter_errors.load()));
    if (applier_) {
      auto& as = applier_->stats();
      uint64_t last = store_->last_op_seq(), applied = applier_->applied_seq();
      workers::append_applier_metrics(as, last, out);
      out.push_back(gauge_family("commentd_event_lag", "Reaction ops durable but not yet applied", double(last - std::min(last, applied))));
    }
    if (bus_applier_) append_bus_applier_metrics(*bus_applier_, service_->stats(), out);
    if (owner_leases_) append_owner_lease_metrics(owner_leases_->stats(), out);
    if (rocks_) {
      auto& st = rocks_->stats();
      out.push_back(metrics::histogram_family("commentd_storage_commit_seconds",
                                              "A write from queued to durable (group commit included)", st.commit_seconds));
      out.push_back(metrics::histogram_family("commentd_storage_group_size", "Writes per WAL write (group commit)", st.group_size));
      out.push_back(counter_family("commentd_storage_conflicts_total", "Writes refused by a precondition (retried by the service)", st.conflicts.load()));
      out.push_back(counter_family("commentd_storage_refused_total", "Writes refused: queue full or closing", st.refused.load()));
      out.push_back(gauge_family("commentd_storage_write_queue_depth", "Writes waiting for the writer thread", rocks_->queue_depth()));
      out.push_back(gauge_family("commentd_storage_degraded", "1 while storage refuses writes on a background error (e.g. disk full)", rocks_->degraded() ? 1 : 0));
      out.push_back(gauge_family("commentd_storage_memtable_bytes", "RocksDB memtables, all together (bound: storage.memtable_mb)", double(rocks_->memtable_bytes())));
      out.push_back(gauge_family("commentd_storage_block_cache_bytes", "RocksDB block cache in use (bound: storage.block_cache_mb)", double(rocks_->block_cache_bytes())));
      out.push_back(counter_family("commentd_storage_reads_total",
                                   "Request-path storage reads that went to RocksDB, by where they ran (store/rocks/read_gate.h)",
                                   "where", {{"inline", double(st.inline_reads.load())}, {"pool", double(st.pool_reads.load())}}));
      out.push_back(counter_family("commentd_storage_file_reads_total",
                                   "Request-path reads that read a block from a table file (one slower than 250 us sends reads to the pool for 1 s)",
                                   st.file_reads.load()));
      const auto& rows = st.rows;  // the exact row caches (store/rocks/row_cache.h)
      out.push_back(counter_family("commentd_row_cache_hits_total", "Row reads answered by the row caches", rows.hits.load()));
      out.push_back(counter_family("commentd_row_cache_misses_total", "Row reads that went to RocksDB", rows.misses.load()));
      out.push_back(counter_family("commentd_row_cache_fills_refused_total",
                                   "Row cache fills dropped because a write came between the read and the fill", rows.fills_refused.load()));
      out.push_back(counter_family("commentd_row_cache_evictions_total", "Row cache entries pushed out by the byte bound", rows.evictions.load()));
      out.push_back(counter_family("commentd_row_cache_invalidations_total", "Row cache keys invalidated by writes", rows.invalidations.load()));
      out.push_back(counter_family("commentd_row_cache_updates_total",
                                   "Row cache values written through (changed in place) by writes", rows.updates.load()));
    }
    if (cql_) {
      out.push_back(gauge_family("commentd_storage_write_queue_depth", "Writes in flight to CQL", cql_->in_flight_commits()));
      out.push_back(gauge_family("commentd_cql_user_view_folded",
                                 "1 once the node reads a user's view from user_reactions alone (the fold marker is set)",
                                 cql_->user_view_folded() ? 1 : 0));
      metrics::append_breaker_metrics("commentd_storage", "CQL", cql_->breaker().stats(), out);
      bridge::append_metrics(cql_->statement_metrics(), cql_->driver_metrics(), out);
      auto& is = cql_->intent_stats();
      out.push_back(counter_family("commentd_commit_intents_resolved_total",
                                   "Commit intents left by writes that did not finish, resolved by the sweep, by outcome",
                                   "outcome",
                                   {{"rolled_forward", double(is.rolled_forward.load())},
                                    {"never_applied", double(is.never_applied.load())},
                                    {"lost", double(is.lost.load())},
                                    {"unresolved", double(is.unresolved.load())}}));
      auto& bl = cql_->bucket_list_stats();
      out.push_back(counter_family(
          "commentd_cql_bucket_lists_total",
          "Newest-first video pages' bucket lists, kept by the node (hit) or read from video_buckets (miss)",
          "outcome", {{"hit", double(bl.hits.load())}, {"miss", double(bl.misses.load())}}));
      out.push_back(counter_family("commentd_cql_bucket_list_recent_reads_total",
                                   "Recent buckets read beside a kept bucket list (they may not exist)",
                                   double(bl.speculative_reads.load())));
      auto& pr = cql_->page_rows_stats();
      out.push_back(counter_family(
          "commentd_cql_page_rows_total",
          "Comment rows of page builds: reused from an earlier build of the list under the same page version (hit) "
          "or read (miss)",
          "outcome", {{"hit", double(pr.hits.load())}, {"miss", double(pr.misses.load())}}));
      out.push_back(counter_family("commentd_cql_page_rows_forgotten_total",
                                   "Kept page rows dropped by a change (this node's write or another node's event)",
                                   double(pr.forgotten.load())));
      out.push_back(counter_family("commentd_cql_page_rows_stale_fills_total",
                                   "Page rows not kept: a comment changed while they were read",
                                   double(pr.stale_fills.load())));
      out.push_back(counter_family("commentd_commit_intent_sweeps_total", "Passes of the commit intents' sweep",
                                   double(is.sweeps.load())));
      out.push_back(counter_family("commentd_commit_intent_sweeps_failed_total",
                                   "Passes of the commit intents' sweep stopped by an error (retried next pass)",
                                   double(is.failed_sweeps.load())));
    }
    if (comment_checks_) {
      auto& cc = comment_checks_->stats();
      out.push_back(counter_family(
          "commentd_comment_checks_total",
          "Reactions' comment lookups: a copy the node read in the last comment_check_ttl (hit) or a storage read (miss)",
          "outcome", {{"hit", double(cc.hits.load())}, {"miss", double(cc.misses.load())}}));
      out.push_back(counter_family("commentd_comment_checks_forgotten_total",
                                   "Kept comment copies dropped by a change (this node's write or another node's event)",
                                   double(cc.forgotten.load())));
      out.push_back(counter_family("commentd_comment_checks_stale_fills_total",
                                   "Comment copies not kept: the comment changed while it was read",
                                   double(cc.stale_fills.load())));
    }
    out.push_back(gauge_family("commentd_http_in_flight_requests", "Requests being handled", server_ ? server_->in_flight() : 0));
    if (count_repairer_) {
      auto& cs = count_repairer_->stats();
      out.push_back(counter_family("commentd_count_repair_rounds_total", "Counter repair passes over the candidates",
                                   cs.rounds.load()));
      out.push_back(counter_family("commentd_count_repair_failed_rounds_total",
                                   "Counter repair passes with an error (retried next pass)", cs.failed_rounds.load()));
      out.push_back(counter_family("commentd_count_repair_repaired_total",
                                   "Counts recounted after a dead write (video comments_count, comment replies_count)",
                                   cs.repaired.load()));
      out.push_back(counter_family("commentd_count_repair_drift_total",
                                   "Sum of |recount - stored| over the counter repairs", cs.drift.load()));
      out.push_back(gauge_family("commentd_count_repair_pending", "Counts with an unfinished write at the last pass",
                                 cs.pending.load()));
      out.push_back(counter_family("commentd_count_repair_claim_renewals_total",
                                   "Counter repair claims renewed by a recount that outlasted half of one",
                                   cs.claim_renewals.load()));
      out.push_back(counter_family("commentd_count_updates_deferred_total",
                                   "Guarded count updates left to the counter repair (late or failed)",
                                   cql_->counts_deferred()));
      out.push_back(counter_family("commentd_commit_appends_after_answer_failed_total",
                                   "Comment writes whose events' append after the answer failed (their commit "
                                   "intents' roll-forward appends them)",
                                   cql_->appends_after_answer_failed()));
    }
    if (reconciler_) {
      auto& rs = reconciler_->stats();
      prometheus::MetricFamily repairs{"commentd_reconciliation_repairs_total",
                                       "Counter rows found drifted and repaired, by tier and table",
                                       prometheus::MetricType::Counter, {}};
      prometheus::MetricFamily runs{"commentd_reconciliation_runs_total", "Reconciliation passes, by tier",
                                    prometheus::MetricType::Counter, {}};
      for (Tier t : {Tier::low, Tier::normal, Tier::high, Tier::realtime}) {
        size_t i = static_cast<size_t>(t);
        std::string tier(to_string(t));
        metrics::add_sample(repairs, {{"tier", tier}, {"table", "comment_metrics"}}, rs.comment_repairs[i].load());
        metrics::add_sample(repairs, {{"tier", tier}, {"table", "video_stats"}}, rs.video_repairs[i].load());
        metrics::add_sample(runs, {{"tier", tier}}, rs.runs[i].load());
      }
      out.push_back(std::move(repairs));
      out.push_back(std::move(runs));
      out.push_back(counter_family("commentd_reconciliation_errors_total", "Reconciliation checks that failed", rs.errors.load()));
    }
    // The relays' figures are their sums (the outbox's and the op log's, which carries the
    // reaction events): "the outbox" to an operator is every event waiting for the bus.
    if (bus_) {  // without a bus nothing waits in the outbox: it is the node's event log
      // With the relay switched off, every event in the outbox waits.
      uint64_t depth = relay_ ? relay_->depth() : store_->last_outbox_seq();
      if (reaction_relay_) depth += reaction_relay_->depth();
      out.push_back(gauge_family("commentd_outbox_depth", "Outbox events not yet delivered to the event bus",
                                 double(depth)));
    }
    if (relay_) {
      uint64_t published = 0, reloads = 0, duplicates = 0, errors = 0;
      int64_t backoff_ms = 0, oldest = 0;
      for (auto* r : {relay_.get(), reaction_relay_.get()}) {
        if (!r) continue;
        auto& rs = r->stats();
        published += rs.published.load();
        reloads += rs.position_reloads.load();
        duplicates += rs.duplicates.load();
        errors += rs.errors.load();
        backoff_ms = std::max(backoff_ms, rs.backoff_ms.load());
        if (int64_t at = rs.oldest_pending_at_ms.load(); at > 0) oldest = oldest == 0 ? at : std::min(oldest, at);
      }
      out.push_back(counter_family("commentd_relay_published_total", "Outbox events the bus stored", published));
      out.push_back(counter_family("commentd_relay_position_reloads_total",
                                   "Relay positions found moved in storage (a timed-out write that applied late) and reloaded",
                                   reloads));
      out.push_back(counter_family("commentd_relay_duplicates_total", "Outbox events republished after a crash and dropped by the bus's dedup", duplicates));
      out.push_back(counter_family("commentd_relay_errors_total", "Relay rounds that failed (retried)", errors));
      out.push_back(gauge_family("commentd_relay_backoff_seconds", "The relay's wait before retrying a failed round; 0 when healthy", double(backoff_ms) / 1000.0));
      out.push_back(gauge_family("commentd_outbox_oldest_age_seconds",
                                 "Age of the oldest event not yet delivered to the event bus; 0 when drained",
                                 oldest > 0 ? std::max<int64_t>(0, clock_.now_ms() - oldest) / 1000.0 : 0.0));
    }
    if (pulsar_bus_) {
      auto& ps = pulsar_bus_->stats();
      out.push_back(counter_family("commentd_bus_delivered_total", "Bus messages delivered to subscribers (redeliveries included)", ps.delivered.load()));
      out.push_back(counter_family("commentd_bus_redelivered_total", "Bus messages delivered again (nack, consumer gone, restart)", ps.redelivered.load()));
      out.push_back(counter_family("commentd_bus_errors_total", "Pulsar publishes that failed (retried by the relay)", ps.publish_errors.load()));
      out.push_back(counter_family("commentd_pulsar_published_total", "Messages Pulsar acknowledged", ps.published.load()));
      out.push_back(counter_family("commentd_pulsar_publish_seconds_total", "Time spent in publishes up to the broker's receipts", double(ps.publish_latency_us_sum.load()) / 1e6));
      out.push_back(counter_family("commentd_pulsar_connects_total", "Connections to the Pulsar broker made", ps.connects.load()));
      if (stall_watchdog_) {
        auto& ws = stall_watchdog_->stats();
        out.push_back(counter_family("commentd_pulsar_stall_checks_total", "Subscription stats the stall watchdog read", ws.checks.load()));
        out.push_back(counter_family("commentd_pulsar_stall_check_errors_total", "Stall watchdog admin calls that failed", ws.errors.load()));
        out.push_back(counter_family("commentd_pulsar_stalls_total", "Subscriptions found dispatching nothing with a backlog and ready consumers", ws.stalls.load()));
        out.push_back(counter_family("commentd_pulsar_stall_unloads_total", "Topics unloaded by the stall watchdog", ws.unloads.load()));
      }
      out.push_back(counter_family("commentd_pulsar_client_resets_total",
                                   "Pulsar clients dropped after a producer or consumer could not be created",
                                   ps.client_resets.load()));
    }
    if (cache_invalidation_) {
      auto& cs = cache_invalidation_->stats();
      out.push_back(counter_family("commentd_cache_invalidation_events_total", "Comment events handled by the cache-invalidation subscriber", cs.handled.load()));
      out.push_back(counter_family("commentd_cache_invalidation_duplicates_total", "Comment events seen again (by event id) and skipped", cs.duplicates.load()));
      auto lat = metrics::histogram_family("commentd_event_latency_seconds",
                                           "From a change's write to its event handled by a subscriber, by subscription",
                                           cs.latency_seconds);
      lat.metric.front().label = {{"subscription", cache_invalidation_->name()}};
      out.push_back(std::move(lat));
      out.push_back(counter_family("commentd_cache_invalidation_failed_total", "Comment events whose handling failed (redelivered)", cs.failed.load()));
    }
    {
      std::vector<std::pair<std::string, const workers::SubscriptionStats*>> subs;
      if (cache_invalidation_) subs.emplace_back(cache_invalidation_->name(), &cache_invalidation_->stats());
      if (bus_applier_ && bus_applier_->consumer_stats()) subs.emplace_back(bus_applier_->name(), bus_applier_->consumer_stats());
      if (!subs.empty()) workers::append_subscription_metrics(subs, out);
    }
    out.push_back(gauge_family("commentd_activity_tracked_keys", "Comments and videos with recent activity", activity_->size()));
    out.push_back(gauge_family("commentd_http_connections", "Open client connections", server_ ? server_->connections() : 0));
    if (redis_) {
      redis::append_metrics(*redis_, out);
      cache::append_metrics(redis_cache_->stats(), out);
      redis::append_metrics(counter_cache_->stats(), out);
      if (user_rows_) redis::append_metrics(user_rows_->stats(), user_rows_->near_stats(), out);
      if (shared_checks_) redis::append_metrics(shared_checks_->stats(), out);
      limit::append_metrics(redis_limiter_->stats(),
                            redis_address_limiter_ ? &redis_address_limiter_->stats() : nullptr, out);
    }
    if (server_) {
      auto& hs = server_->stats();
      out.push_back(counter_family("commentd_http_connections_evicted_total", "Idle connections closed to make room", hs.evicted.load()));
      out.push_back(counter_family("commentd_http_connections_refused_total", "New connections refused: full of busy ones", hs.refused.load()));
      out.push_back(counter_family("commentd_http_accept_fd_errors_total", "accept() failures for want of descriptors", hs.fd_errors.load()));
    }
    if (auto* a = router_.admission()) {
      std::vector<std::pair<std::string, double>> shed;
      for (auto c : {http::RequestClass::read, http::RequestClass::write, http::RequestClass::reaction})
        shed.emplace_back(http::to_string(c), double(a->stats().shed[static_cast<size_t>(c)].load()));
      out.push_back(counter_family("commentd_http_shed_total", "Requests answered 503 overloaded by admission, by class",
                                   "class", shed));
      out.push_back(gauge_family("commentd_http_shed_probability", "Probability that a request is shed for the event loop's lag (PIE)", a->shed_probability()));
      out.push_back(gauge_family("commentd_event_loop_lag_seconds", "How late the last event-loop probe timer ran", std::chrono::duration<double>(a->last_lag()).count()));
    }
  });

  register_routes();
  const auto& adm = cfg_.server.admission;
  router_.enable_admission({{adm.max_reads, adm.max_writes, adm.max_reactions}, adm.queue_target, adm.queue_interval,
                            adm.loop_lag_target, std::chrono::seconds(1)});
  http::ServerOptions hso;
  hso.max_body_bytes = cfg_.server.max_body_bytes;
  hso.max_connections = static_cast<size_t>(cfg_.server.max_connections);
  hso.max_connections_per_ip = static_cast<size_t>(cfg_.server.max_connections_per_ip);
  hso.request_timeout = cfg_.server.request_timeout;
  hso.idle_timeout = cfg_.server.idle_timeout;
  hso.header_timeout = cfg_.server.header_timeout;
  hso.on_loop_lag = [a = router_.admission()](std::chrono::nanoseconds lag) {
    a->observe_lag(lag, http::Admission::clock::now());
  };
  server_ = std::make_unique<http::Server>(ioc_, hso, [this](http::Request& r, const http::RequestContext& c) { return router_.handle(r, c); });
  auto port = server_->start(hp->host, hp->port);
  if (!port) return port.take_error();

  unsigned n = cfg_.server.threads > 0 ? unsigned(cfg_.server.threads) : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i)
    threads_.emplace_back([this, i] {
      pthread_setname_np(pthread_self(), ("commentd-io-" + std::to_string(i)).c_str());
      ioc_.run();
    });
  spdlog::info("commentd {} listening on {}:{} ({} threads, data in {})", COMMENTD_VERSION, hp->host, *port, n,
               cfg_.storage.data_dir);
  return *port;
}

void Application::register_routes() {
  router_.set_observer([this](std::string_view m, std::string_view route, unsigned status, double secs) {
    metrics_->observe_request(m, route, status, secs);
  });
  api::register_routes(router_, api::ApiDeps{
      service_.get(), jwt_.get(), cfg_.auth.dev_mode,
      [this] { return store_ && store_->ready(); },
      [this] { return metrics_->render(); }, trusted_proxies_});
}

void Application::run_until_signal() {
  asio::io_context sig_ioc;
  asio::signal_set signals(sig_ioc, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int sig) {
    spdlog::info("signal {}: shutting down", sig);
  });
  sig_ioc.run();
  stop();
}

void Application::stop() {
  if (stopped_) return;
  stopped_ = true;
  // 1. Stop accepting; idle connections close, in-flight requests finish (up to the grace).
  if (server_) {
    server_->stop();
    auto deadline = std::chrono::steady_clock::now() + cfg_.server.shutdown_grace;
    while (server_->connections() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (server_->connections() > 0)
      spdlog::warn("{} connections still open after the grace period", server_->connections());
  }
  // Commits after this leave the per-user copies to their TTL: the Redis client stops with
  // the event loops below, and an invalidation must not wait on it.
  if (cql_ && user_rows_) cql_->detach_user_rows_cache(std::chrono::seconds(2));
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // 2. Apply every durable reaction op, 3. close storage (flushes the WAL). A subscriber or
  // the relay waiting on a broker that is away stops at once: its subscribe, connect or
  // producer creation is cancelled first. The relay's last round gets the shutdown grace to
  // be acknowledged (a hung broker holds the stop no longer); its unpublished rest stays in
  // the outbox for the next start.
  if (bus_) bus_->stop_waiting(cfg_.server.shutdown_grace);
  if (workers_) workers_->stop_all();
  if (store_) store_->close();
  spdlog::info("commentd stopped cleanly");
}

int verify_counts(const config::Config& cfg) {
  store::rocks::RocksOptions ro;
  ro.data_dir = cfg.storage.data_dir;
  ro.sync_writes = false;
  ro.read_only = true;  // writes nothing: also works on a full volume
  auto st = store::rocks::RocksStore::open(ro);
  if (!st) {
    std::fprintf(stderr, "verify: %s\n", st.error().message.c_str());
    return 2;
  }
  auto& s = **st;
  uint64_t checked = 0, drifted = 0;
  for (auto table : {store::Store::IdTable::comments, store::Store::IdTable::videos}) {
    std::optional<Uuid> after;
    for (;;) {
      auto ids = s.list_ids(table, after, 1000);
      if (!ids) {
        std::fprintf(stderr, "verify: %s\n", ids.error().message.c_str());
        return 2;
      }
      for (auto& id : *ids) {
        ++checked;
        if (table == store::Store::IdTable::comments) {
          auto r = s.recount_comment(id);
          if (!r) return std::fprintf(stderr, "verify: %s\n", r.error().message.c_str()), 2;
          if (!*r) continue;
          const auto& [video, stored, truth] = **r;
          if (stored.likes != truth.likes || stored.dislikes != truth.dislikes ||
              stored.replies_count != truth.replies_count) {
            ++drifted;
            std::printf("comment %s: stored likes=%lld dislikes=%lld replies=%lld, truth %lld/%lld/%lld\n",
                        id.str().c_str(), (long long)stored.likes, (long long)stored.dislikes,
                        (long long)stored.replies_count, (long long)truth.likes, (long long)truth.dislikes,
                        (long long)truth.replies_count);
          }
        } else {
          auto r = s.recount_video(id);
          if (!r) return std::fprintf(stderr, "verify: %s\n", r.error().message.c_str()), 2;
          if (r->stored.comments_count != r->truth.comments_count ||
              r->stored.reactions_count != r->truth.reactions_count) {
            ++drifted;
            std::printf("video %s: stored comments=%lld reactions=%lld, truth %lld/%lld\n", id.str().c_str(),
                        (long long)r->stored.comments_count, (long long)r->stored.reactions_count,
                        (long long)r->truth.comments_count, (long long)r->truth.reactions_count);
          }
        }
      }
      if (ids->size() < 1000) break;
      after = ids->back();
    }
  }
  auto pending = s.last_op_seq() - std::min(s.last_op_seq(), *s.consumer_pos(workers::ReactionApplier::kConsumerName));
  std::printf("verify: %llu counters checked, %llu drifted; %llu reaction ops not yet applied\n",
              (unsigned long long)checked, (unsigned long long)drifted, (unsigned long long)pending);
  return drifted ? 1 : 0;
}

std::vector<std::string> describe_routes() {
  http::Router r;
  api::register_routes(r, api::ApiDeps{});
  return r.describe();
}

}  // namespace commentd::app

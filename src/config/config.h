// The service configuration: a typed mirror of docs/config-schema.md.
// Field names are the YAML key names. Every key's type, default, bounds and description are
// declared once, in the table in config/schema.cpp; a test proves the member defaults below
// equal that table. Value types; thread-safe once built.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace commentd::config {

using std::chrono::milliseconds;

// Load shedding (http/admission.h). max_writes + max_reactions <= storage.write_queue_capacity:
// every admitted write has room in the write queue, so writes are refused at admission.
struct AdmissionConfig {
  size_t max_reads = 512;
  size_t max_writes = 1024;
  size_t max_reactions = 2048;
  milliseconds queue_target{20};
  milliseconds queue_interval{100};
  milliseconds loop_lag_target{50};  // 0 = the event-loop lag is not used
  bool operator==(const AdmissionConfig&) const = default;
};

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // host:port, see parse_host_port(); port 0 = any
  int threads = 0;                        // 0 = one per core
  size_t max_body_bytes = 65536;
  int max_connections = 10000;            // also capped by RLIMIT_NOFILE at start-up
  int max_connections_per_ip = 1000;      // 0 = no per-address cap
  milliseconds request_timeout{30'000};
  milliseconds idle_timeout{30'000};
  milliseconds header_timeout{10'000};
  milliseconds shutdown_grace{10'000};
  // Peers whose X-Forwarded-For is believed (addresses or CIDRs); empty = none.
  std::vector<std::string> trusted_proxies;
  AdmissionConfig admission;
  bool operator==(const ServerConfig&) const = default;
};

struct LogConfig {
  std::string level = "info";  // trace|debug|info|warn|error|off
  bool operator==(const LogConfig&) const = default;
};

// TLS to a server (storage.cql.tls, redis.tls; docs/operations.md): verification is always on.
struct TlsConfig {
  bool enabled = false;
  std::string ca_file;    // PEM roots the servers' certificates chain to; empty = the system's
  std::string cert_file;  // PEM client certificate chain (servers that require one) ...
  std::string key_file;   // ... and its key; both or neither
  bool operator==(const TlsConfig&) const = default;
};

struct CqlConfig {
  std::vector<std::string> hosts = {"127.0.0.1:9042"};  // contact points, each host:port
  std::string local_datacenter = "datacenter1";
  std::string username;  // empty = no authentication
  std::string password;
  TlsConfig tls;
  std::string keyspace = "pavilion_comments";
  std::string replication = "SimpleStrategy";  // SimpleStrategy|NetworkTopologyStrategy
  int replication_factor = 1;                   // SimpleStrategy
  std::vector<std::string> datacenters;         // NetworkTopologyStrategy: "dc:rf" each
  std::string consistency = "local_quorum";  // one|quorum|local_quorum|all
  milliseconds request_timeout{5000};
  // No answer to any call for this long while calls are in flight opens the storage breaker
  // (core/circuit_breaker.h, stall_after): a frozen cluster fails fast. 0 = off.
  milliseconds stall_timeout{2000};
  milliseconds schema_timeout{60000};  // `commentd migrate`: each DDL and its agreement wait
  int driver_threads = 2;  // the driver bridge's tokio worker threads
  // A page's comment rows and counters: up to this many keys per read (`id IN (...)`); 1 = one
  // single-partition read per key (docs/cluster.md "Reads by key"). 25: a default page (20
  // rows and the one past it) in one read.
  int keys_per_read = 25;
  // How long a node keeps a video's bucket list (video_buckets) for its pages; 0 = read it
  // for every page (docs/cluster.md "Time buckets", store/cql/bucket_lists.h).
  milliseconds bucket_list_ttl{60'000};
  // How long a node trusts what it read of a comment (its video, author and status) to accept
  // a reaction to it without reading the comment again; 0 = read it for every reaction
  // (docs/cluster.md "Reaction op", service/comment_checks.h).
  milliseconds comment_check_ttl{5'000};
  // How long a node reuses a comment row it read for a page build in the next builds of the
  // same list while the video's page version holds; 0 = read every row at every build
  // (store/cql/page_rows.h).
  milliseconds row_reuse{5'000};
  bool bucketed_pages = true;  // video pages from the time buckets (docs/cluster.md "Time buckets")
  bool operator==(const CqlConfig&) const = default;
};

struct StorageConfig {
  std::string backend = "rocksdb";  // rocksdb|cql
  std::string data_dir = "./data";
  int block_cache_mb = 256;
  int memtable_mb = 128;
  bool sync_writes = true;
  size_t write_queue_capacity = 10000;
  size_t max_group_commit = 1024;  // <= write_queue_capacity
  int read_threads = 2;
  bool inline_reads = true;  // reads on the request's thread unless one waited on the disk (store/rocks/read_gate.h)
  size_t log_retention = 1000000;  // applied ops / outbox events kept
  CqlConfig cql;
  bool operator==(const StorageConfig&) const = default;
};

struct AuthConfig {
  std::string jwt_secret;  // empty = JWT auth not configured; see apply_env()
  std::string cursor_secret;  // empty = a key derived from jwt_secret; see apply_env()
  bool dev_mode = false;
  bool operator==(const AuthConfig&) const = default;
};

struct RateRule {
  int limit = 0;  // events per window per user; 0 = unlimited
  milliseconds window{60'000};
  bool operator==(const RateRule&) const = default;
};

struct PerIpLimits {
  RateRule create_comment{0, milliseconds{60'000}};
  RateRule add_reaction{0, milliseconds{60'000}};
  bool operator==(const PerIpLimits&) const = default;
};

struct LimitsConfig {
  size_t max_content_bytes = 10000;
  int max_reply_depth = 1;
  RateRule create_comment{5, milliseconds{60'000}};
  RateRule add_reaction{20, milliseconds{60'000}};
  PerIpLimits per_ip;  // per client address (server.trusted_proxies), beside the per-user ones
  std::string on_error = "open";  // open|closed: a limiter error lets the request through or gives 503
  bool operator==(const LimitsConfig&) const = default;
};

struct CacheConfig {
  size_t max_entries = 100000;  // 0 = cache off
  milliseconds page_ttl{1'000};
  size_t read_ahead_pages = 3;  // pages cached beside a cursor page's fill; 0 = none
  bool operator==(const CacheConfig&) const = default;
};

struct RedisConfig {
  bool enabled = false;
  std::string host = "localhost";
  int port = 6379;
  std::string password;
  int db = 0;
  int ttl = 3600;  // seconds
  std::string username;                    // ACL user; empty = the default user
  TlsConfig tls;                           // one node, or every node of cluster_nodes
  std::vector<std::string> cluster_nodes;  // host:port seeds; non-empty = Redis Cluster
  int pool_size = 2;                       // connections per Redis node
  milliseconds connect_timeout{1'000};
  milliseconds command_timeout{250};
  milliseconds lease_ttl{250};
  milliseconds stale_while_revalidate{0};
  milliseconds refresh_ahead{200};  // a page read this close to cache.page_ttl is refreshed behind the read
  milliseconds local_cache_ttl{100};  // the page cache's local layer (cache/redis_cache.h); 0 = none
  std::string key_prefix = "cd:";
  int breaker_failures = 5;
  milliseconds breaker_open{1'000};
  milliseconds counter_ttl{60'000};  // the counter cache's copies (redis/counter_cache.h)
  milliseconds user_rows_ttl{30'000};  // per-user rows on CQL (redis/user_rows.h); 0 = not cached
  milliseconds user_rows_refresh_ahead{10'000};  // a copy read this close to its end is refilled behind the read
  milliseconds user_rows_near_ttl{10'000};  // a node's own copies of the copies (redis/user_rows.h); 0 = off
  // The comment checks' shared layer on CQL (redis/comment_checks.h): a copy's life if a
  // change's forget cannot reach Redis; 0 = none (each node reads storage on its own misses).
  milliseconds comment_check_ttl{60'000};
  bool operator==(const RedisConfig&) const = default;
};

struct PulsarTopics {
  std::string comments = "persistent://pavilion/comments/events";
  std::string reactions = "persistent://pavilion/reactions/events";
  std::string metrics = "persistent://pavilion/metrics/updates";
  bool operator==(const PulsarTopics&) const = default;
};

struct PulsarConfig {
  bool enabled = false;
  std::string url = "pulsar://localhost:6650";
  std::string admin_url = "http://localhost:8080";
  std::string token;  // empty: no authentication; else a JWT for token auth
  // pulsar+ssl:// only (the url's scheme turns TLS on, as in Pulsar's own clients): PEM
  // certificates trusted besides the system's roots. No client certificate: the pulsar crate
  // presents none, so brokers are authenticated to with `token`.
  std::string tls_ca_file;
  int batch_size = 100;
  milliseconds batch_delay{5};
  int max_pending_messages = 1000;
  milliseconds send_timeout{5'000};
  milliseconds connect_timeout{3'000};
  // The stall watchdog (events/pulsar/stall_watchdog.h): a Key_Shared subscription that
  // dispatches nothing this long while it has a backlog and ready consumers has its topic
  // unloaded. 0 = off.
  milliseconds stuck_after{60'000};
  PulsarTopics topics;
  bool operator==(const PulsarConfig&) const = default;
};

// Intervals are non-decreasing from realtime to low.
struct MetricsReconciliationConfig {
  bool enabled = true;
  milliseconds realtime_interval{5'000};
  milliseconds high_frequency_interval{30'000};
  milliseconds normal_frequency_interval{300'000};
  milliseconds low_frequency_interval{1'800'000};
  bool operator==(const MetricsReconciliationConfig&) const = default;
};

struct ReactionBatchConfig {
  size_t batch_size = 64;  // <= max_pending_ops
  milliseconds flush_interval{5};
  size_t max_pending_ops = 100000;
  // Cluster mode (pulsar.enabled on CQL): the most ops a reaction owner applies in one batch.
  // Larger than batch_size: an owner's cost is per comment and per round trip, so a backlog
  // drains faster in larger batches; under light load a batch closes at flush_interval anyway.
  // 1024 rather than 256: docs/cluster.md "Reaction apply" (measured, session 34).
  size_t owner_batch_size = 1024;
  // Cluster mode: the TTL of a reaction owner's lease on a comment (docs/cluster.md "Owner
  // leases"). A node that dies holding leases delays its comments' reactions this long at
  // most; >= 3 x (storage.cql.request_timeout + 2 s), so a write started with the margin
  // left lands before the lease can move.
  milliseconds owner_lease{30'000};
  bool operator==(const ReactionBatchConfig&) const = default;
};

// Thresholds are non-increasing from realtime to normal.
struct TiersConfig {
  int realtime_per_minute = 600;
  int high_per_minute = 60;
  int normal_per_minute = 1;
  bool operator==(const TiersConfig&) const = default;
};

struct TrendingConfig {
  milliseconds window{600'000};
  int min_events = 300;
  bool operator==(const TrendingConfig&) const = default;
};

struct OutboxRelayConfig {
  bool enabled = true;
  size_t batch_size = 256;
  milliseconds poll_interval{5};
  bool operator==(const OutboxRelayConfig&) const = default;
};

struct CacheInvalidationConfig {
  bool enabled = true;
  bool operator==(const CacheInvalidationConfig&) const = default;
};

struct WorkersConfig {
  MetricsReconciliationConfig metrics_reconciliation;
  ReactionBatchConfig reaction_batch;
  TiersConfig tiers;
  TrendingConfig trending;
  OutboxRelayConfig outbox_relay;
  CacheInvalidationConfig cache_invalidation;
  bool operator==(const WorkersConfig&) const = default;
};

struct NodeConfig {
  int id = 0;  // 1..1023; 0 = derived once and kept in the data dir
  bool operator==(const NodeConfig&) const = default;
};

// A default-constructed Config is the schema's defaults: the embedded engine.
struct Config {
  NodeConfig node;
  ServerConfig server;
  LogConfig log;
  StorageConfig storage;
  AuthConfig auth;
  LimitsConfig limits;
  CacheConfig cache;
  RedisConfig redis;
  PulsarConfig pulsar;
  WorkersConfig workers;
  bool operator==(const Config&) const = default;
};

// Keys absent from the text keep their defaults; empty text = all defaults. The result has
// passed validate_config(). Errors are Errc::bad_request and name the full dotted key.
Result<Config> parse_config_yaml(std::string_view yaml_text);
// As parse_config_yaml; error messages are prefixed with "<path>: ".
Result<Config> load_config_file(const std::string& path);

// Per-key bounds and allowed values, then the rules that span keys. Errc::bad_request.
Status validate_config(const Config& config);

// A non-empty COMMENTD_JWT_SECRET replaces auth.jwt_secret, and a non-empty
// COMMENTD_CURSOR_SECRET auth.cursor_secret. Reads the environment: call
// before starting threads.
void apply_env(Config& config);

// Every key with its type, default, bounds and description, for `commentd --help-config`.
std::string describe_schema();

struct HostPort {
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
};
// "host:port" or "[v6addr]:port"; host non-empty, port 0..65535 in decimal.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace commentd::config

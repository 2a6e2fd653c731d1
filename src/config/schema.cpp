#include "config/schema.h"

#include <charconv>
#include <limits>

namespace commentd::config {
namespace {

constexpr int64_t kMs = 1;
constexpr int64_t kSec = 1000 * kMs;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kHour = 60 * kMin;

constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
constexpr std::string_view kBackends[] = {"rocksdb", "cql"};
constexpr std::string_view kReplications[] = {"SimpleStrategy", "NetworkTopologyStrategy"};
constexpr std::string_view kConsistencies[] = {"one", "quorum", "local_quorum", "all"};
constexpr std::string_view kOnError[] = {"open", "closed"};

// Document order of docs/config-schema.md. Bounds the schema leaves open are chosen here.
const KeySpec kKeys[] = {
    // node
    {.path = "node.id", .field = [](Config& c) -> auto& { return c.node.id; },
     .default_text = "0", .min = 0, .max = 1023,
     .description = "this node's id in ids, LWW tie-breaks and the relay's producer name; 0 = derive once, keep in data_dir"},
    // server
    {.path = "server.listen", .field = [](Config& c) -> auto& { return c.server.listen; },
     .default_text = R"("127.0.0.1:8080")",
     .description = "host:port to listen on; port 0 = any free port"},
    {.path = "server.threads", .field = [](Config& c) -> auto& { return c.server.threads; },
     .default_text = "0", .min = 0, .max = 256,
     .description = "event-loop threads; 0 = one per core"},
    {.path = "server.max_body_bytes",
     .field = [](Config& c) -> auto& { return c.server.max_body_bytes; },
     .default_text = "65536", .min = 1024, .max = 16777216,
     .description = "request bodies above this get 413"},
    {.path = "server.max_connections",
     .field = [](Config& c) -> auto& { return c.server.max_connections; },
     .default_text = "10000", .min = 1, .max = 1000000,
     .description = "open client connections at most; also capped by RLIMIT_NOFILE at start-up"},
    {.path = "server.max_connections_per_ip",
     .field = [](Config& c) -> auto& { return c.server.max_connections_per_ip; },
     .default_text = "1000", .min = 0, .max = 1000000,
     .description = "connections per peer address; beyond it its oldest idle one closes; 0 = no cap"},
    {.path = "server.request_timeout",
     .field = [](Config& c) -> auto& { return c.server.request_timeout; },
     .default_text = "30s", .min = 100 * kMs, .max = 10 * kMin,
     .description = "each request's end-to-end deadline: past it the answer is 503 "
                    "deadline_exceeded (reads abandoned; a queued write completes)"},
    {.path = "server.idle_timeout",
     .field = [](Config& c) -> auto& { return c.server.idle_timeout; },
     .default_text = "30s", .min = 100 * kMs, .max = 1 * kHour,
     .description = "a keep-alive connection with no new request for this long is closed"},
    {.path = "server.header_timeout",
     .field = [](Config& c) -> auto& { return c.server.header_timeout; },
     .default_text = "10s", .min = 100 * kMs, .max = 10 * kMin,
     .description = "a request header must arrive within this (from accept or its first byte)"},
    {.path = "server.shutdown_grace",
     .field = [](Config& c) -> auto& { return c.server.shutdown_grace; },
     .default_text = "10s", .min = 0, .max = 10 * kMin,
     .description = "in-flight requests get this long on SIGTERM"},
    {.path = "server.trusted_proxies",
     .field = [](Config& c) -> auto& { return c.server.trusted_proxies; }, .default_text = "[]",
     .description = "proxies (addresses or CIDRs) whose X-Forwarded-For names the client; "
                    "empty = the TCP peer is always the client"},
    {.path = "server.admission.max_reads",
     .field = [](Config& c) -> auto& { return c.server.admission.max_reads; },
     .default_text = "512", .min = 1, .max = 1000000,
     .description = "read requests in flight at most; as many more may wait, then 503"},
    {.path = "server.admission.max_writes",
     .field = [](Config& c) -> auto& { return c.server.admission.max_writes; },
     .default_text = "1024", .min = 1, .max = 1000000,
     .description = "comment writes in flight at most; + max_reactions <= storage.write_queue_capacity"},
    {.path = "server.admission.max_reactions",
     .field = [](Config& c) -> auto& { return c.server.admission.max_reactions; },
     .default_text = "2048", .min = 1, .max = 1000000,
     .description = "reaction requests in flight at most"},
    {.path = "server.admission.queue_target",
     .field = [](Config& c) -> auto& { return c.server.admission.queue_target; },
     .default_text = "20ms", .min = 1 * kMs, .max = 10 * kSec,
     .description = "queueing delay target: a standing queue above it sheds load (CoDel)"},
    {.path = "server.admission.queue_interval",
     .field = [](Config& c) -> auto& { return c.server.admission.queue_interval; },
     .default_text = "100ms", .min = 10 * kMs, .max = 10 * kSec,
     .description = "the window whose minimum queueing delay is compared with queue_target"},
    {.path = "server.admission.loop_lag_target",
     .field = [](Config& c) -> auto& { return c.server.admission.loop_lag_target; },
     .default_text = "50ms", .min = 0, .max = 10 * kSec,
     .description = "event-loop lag target: above it requests are shed by PIE (RFC 8033); 0 = off"},
    // log
    {.path = "log.level", .field = [](Config& c) -> auto& { return c.log.level; },
     .default_text = R"("info")", .allowed = kLogLevels,
     .description = "least severe level logged"},
    // storage
    {.path = "storage.backend", .field = [](Config& c) -> auto& { return c.storage.backend; },
     .default_text = R"("rocksdb")", .allowed = kBackends,
     .description = "rocksdb (embedded) or cql (cluster)"},
    {.path = "storage.data_dir", .field = [](Config& c) -> auto& { return c.storage.data_dir; },
     .default_text = R"("./data")", .description = "RocksDB directory; created if missing"},
    {.path = "storage.block_cache_mb",
     .field = [](Config& c) -> auto& { return c.storage.block_cache_mb; },
     .default_text = "256", .min = 8, .max = 65536,
     .description = "RocksDB block cache size in MiB"},
    {.path = "storage.memtable_mb",
     .field = [](Config& c) -> auto& { return c.storage.memtable_mb; },
     .default_text = "128", .min = 8, .max = 65536,
     .description = "RocksDB memtables of all column families together, in MiB; past it the largest is flushed"},
    {.path = "storage.sync_writes",
     .field = [](Config& c) -> auto& { return c.storage.sync_writes; },
     .default_text = "true",
     .description = "fsync the WAL (group commit) before acknowledging a write"},
    {.path = "storage.write_queue_capacity",
     .field = [](Config& c) -> auto& { return c.storage.write_queue_capacity; },
     .default_text = "10000", .min = 16, .max = 10000000,
     .description = "writes waiting for the writer; >= server.admission.max_writes + max_reactions"},
    {.path = "storage.max_group_commit",
     .field = [](Config& c) -> auto& { return c.storage.max_group_commit; },
     .default_text = "1024", .min = 1, .max = 100000,
     .description = "writes per WAL sync at most; <= write_queue_capacity"},
    {.path = "storage.read_threads",
     .field = [](Config& c) -> auto& { return c.storage.read_threads; },
     .default_text = "2", .min = 1, .max = 256,
     .description = "threads for reads that must touch disk"},
    {.path = "storage.inline_reads",
     .field = [](Config& c) -> auto& { return c.storage.inline_reads; },
     .default_text = "true",
     .description = "reads on the request's thread unless one waited on the disk in the last second"},
    {.path = "storage.log_retention",
     .field = [](Config& c) -> auto& { return c.storage.log_retention; },
     .default_text = "1000000", .min = 1000, .max = 1000000000,
     .description = "applied reaction ops and outbox events kept (older ones are trimmed)"},
    {.path = "storage.cql.hosts", .field = [](Config& c) -> auto& { return c.storage.cql.hosts; },
     .default_text = R"(["127.0.0.1:9042"])",
     .description = "CQL contact points, host:port each; non-empty when backend is cql"},
    {.path = "storage.cql.local_datacenter",
     .field = [](Config& c) -> auto& { return c.storage.cql.local_datacenter; },
     .default_text = R"("datacenter1")",
     .description = "the node's datacenter: routing and local_* consistency"},
    {.path = "storage.cql.username",
     .field = [](Config& c) -> auto& { return c.storage.cql.username; },
     .default_text = R"("")", .description = "CQL user; empty = no authentication"},
    {.path = "storage.cql.password",
     .field = [](Config& c) -> auto& { return c.storage.cql.password; },
     .default_text = R"("")",
     .description = "CQL password; env COMMENTD_CQL_PASSWORD overrides"},
    {.path = "storage.cql.tls.enabled",
     .field = [](Config& c) -> auto& { return c.storage.cql.tls.enabled; },
     .default_text = "false",
     .description = "TLS to every CQL node; each node's certificate is verified (chain and address)"},
    {.path = "storage.cql.tls.ca_file",
     .field = [](Config& c) -> auto& { return c.storage.cql.tls.ca_file; },
     .default_text = R"("")",
     .description = "PEM file of the roots the nodes' certificates chain to; empty = the system's"},
    {.path = "storage.cql.tls.cert_file",
     .field = [](Config& c) -> auto& { return c.storage.cql.tls.cert_file; },
     .default_text = R"("")",
     .description = "PEM client certificate chain, for nodes that require one; with key_file"},
    {.path = "storage.cql.tls.key_file",
     .field = [](Config& c) -> auto& { return c.storage.cql.tls.key_file; },
     .default_text = R"("")", .description = "PEM key of cert_file (unencrypted)"},
    {.path = "storage.cql.keyspace",
     .field = [](Config& c) -> auto& { return c.storage.cql.keyspace; },
     .default_text = R"("pavilion_comments")", .description = "CQL keyspace"},
    {.path = "storage.cql.replication",
     .field = [](Config& c) -> auto& { return c.storage.cql.replication; },
     .default_text = R"("SimpleStrategy")", .allowed = kReplications,
     .description = "replication class of the keyspace created by migrate"},
    {.path = "storage.cql.replication_factor",
     .field = [](Config& c) -> auto& { return c.storage.cql.replication_factor; },
     .default_text = "1", .min = 1, .max = 32,
     .description = "replicas (SimpleStrategy)"},
    {.path = "storage.cql.datacenters",
     .field = [](Config& c) -> auto& { return c.storage.cql.datacenters; },
     .default_text = "[]",
     .description = "\"dc:rf\" each (NetworkTopologyStrategy); non-empty for it"},
    {.path = "storage.cql.consistency",
     .field = [](Config& c) -> auto& { return c.storage.cql.consistency; },
     .default_text = R"("local_quorum")", .allowed = kConsistencies,
     .description = "CQL consistency level for reads and writes"},
    {.path = "storage.cql.request_timeout",
     .field = [](Config& c) -> auto& { return c.storage.cql.request_timeout; },
     .default_text = "5s", .min = 100 * kMs, .max = 10 * kMin,
     .description = "one CQL request at most (reads: never past the request's deadline); "
                    "timeouts in a row open the storage circuit breaker"},
    {.path = "storage.cql.stall_timeout",
     .field = [](Config& c) -> auto& { return c.storage.cql.stall_timeout; },
     .default_text = "2s", .min = 0, .max = 10 * kMin,
     .description = "no CQL answer for this long while 3 or more calls wait opens the storage "
                    "circuit breaker, so a hung (not refusing) cluster fails fast; 0 = off"},
    {.path = "storage.cql.schema_timeout",
     .field = [](Config& c) -> auto& { return c.storage.cql.schema_timeout; },
     .default_text = "1m", .min = 1 * kSec, .max = 10 * kMin,
     .description = "`commentd migrate`: one schema change and its agreement wait at most"},
    {.path = "storage.cql.driver_threads",
     .field = [](Config& c) -> auto& { return c.storage.cql.driver_threads; },
     .default_text = "2", .min = 1, .max = 64,
     .description = "worker threads of the CQL driver (the bridge's tokio runtime)"},
    {.path = "storage.cql.keys_per_read",
     .field = [](Config& c) -> auto& { return c.storage.cql.keys_per_read; },
     .default_text = "25", .min = 1, .max = 100,
     .description = "a page's comment rows and counters, and the rows of users of one video asked while "
                    "another user's read is out: keys per read (key IN (...)); 1 = a single-partition read per key"},
    {.path = "storage.cql.bucket_list_ttl",
     .field = [](Config& c) -> auto& { return c.storage.cql.bucket_list_ttl; },
     .default_text = "1m", .min = 0, .max = 10 * kMin,
     .description = "how long a node keeps a video's list of time buckets for its pages (the "
                    "newest buckets are read besides it); 0 = list them for every page"},
    {.path = "storage.cql.comment_check_ttl",
     .field = [](Config& c) -> auto& { return c.storage.cql.comment_check_ttl; },
     .default_text = "5s", .min = 0, .max = kMin,
     .description = "how long a node trusts what it read of a comment (video, author, status) to "
                    "accept reactions to it without reading it again; 0 = read it for every reaction"},
    {.path = "storage.cql.row_reuse",
     .field = [](Config& c) -> auto& { return c.storage.cql.row_reuse; },
     .default_text = "5s", .min = 0, .max = kMin,
     .description = "how long a node reuses a comment row it read for a page in its next builds of the "
                    "same list while the video's page version holds (edits, deletes and moderation move "
                    "it); 0 = read every row at every build"},
    {.path = "storage.cql.bucketed_pages",
     .field = [](Config& c) -> auto& { return c.storage.cql.bucketed_pages; },
     .default_text = "true",
     .description = "page a video's comments from its time buckets; false = from the one "
                    "comments_by_video partition (until a V1 keyspace is backfilled)"},
    // auth
    {.path = "auth.jwt_secret", .field = [](Config& c) -> auto& { return c.auth.jwt_secret; },
     .default_text = R"("")",
     .description = "HS256 key; empty = JWT auth off; env COMMENTD_JWT_SECRET overrides"},
    {.path = "auth.cursor_secret",
     .field = [](Config& c) -> auto& { return c.auth.cursor_secret; }, .default_text = R"("")",
     .description = "page-cursor HMAC key, the same on every node; empty = derived from "
                    "jwt_secret; env COMMENTD_CURSOR_SECRET overrides"},
    {.path = "auth.dev_mode", .field = [](Config& c) -> auto& { return c.auth.dev_mode; },
     .default_text = "false",
     .description = "also accept X-User-Id / X-User-Role headers (never in production)"},
    // limits
    {.path = "limits.max_content_bytes",
     .field = [](Config& c) -> auto& { return c.limits.max_content_bytes; },
     .default_text = "10000", .min = 1, .max = 1048576,
     .description = "comment content size limit in bytes"},
    {.path = "limits.max_reply_depth",
     .field = [](Config& c) -> auto& { return c.limits.max_reply_depth; },
     .default_text = "1", .min = 1, .max = 32,
     .description = "1 = YouTube style: a reply to a reply joins the thread"},
    {.path = "limits.create_comment.limit",
     .field = [](Config& c) -> auto& { return c.limits.create_comment.limit; },
     .default_text = "5", .min = 0, .max = 1000000,
     .description = "comments per user per window; 0 = unlimited"},
    {.path = "limits.create_comment.window",
     .field = [](Config& c) -> auto& { return c.limits.create_comment.window; },
     .default_text = "1m", .min = 1 * kSec, .max = 24 * kHour,
     .description = "rate window for create_comment"},
    {.path = "limits.add_reaction.limit",
     .field = [](Config& c) -> auto& { return c.limits.add_reaction.limit; },
     .default_text = "20", .min = 0, .max = 1000000,
     .description = "reactions per user per window; 0 = unlimited"},
    {.path = "limits.add_reaction.window",
     .field = [](Config& c) -> auto& { return c.limits.add_reaction.window; },
     .default_text = "1m", .min = 1 * kSec, .max = 24 * kHour,
     .description = "rate window for add_reaction"},
    {.path = "limits.per_ip.create_comment.limit",
     .field = [](Config& c) -> auto& { return c.limits.per_ip.create_comment.limit; },
     .default_text = "0", .min = 0, .max = 1000000,
     .description = "comments per client address per window; 0 = unlimited"},
    {.path = "limits.per_ip.create_comment.window",
     .field = [](Config& c) -> auto& { return c.limits.per_ip.create_comment.window; },
     .default_text = "1m", .min = 1 * kSec, .max = 24 * kHour,
     .description = "per-address rate window for create_comment"},
    {.path = "limits.per_ip.add_reaction.limit",
     .field = [](Config& c) -> auto& { return c.limits.per_ip.add_reaction.limit; },
     .default_text = "0", .min = 0, .max = 1000000,
     .description = "reactions per client address per window; 0 = unlimited"},
    {.path = "limits.per_ip.add_reaction.window",
     .field = [](Config& c) -> auto& { return c.limits.per_ip.add_reaction.window; },
     .default_text = "1m", .min = 1 * kSec, .max = 24 * kHour,
     .description = "per-address rate window for add_reaction"},
    {.path = "limits.on_error", .field = [](Config& c) -> auto& { return c.limits.on_error; },
     .default_text = R"("open")", .allowed = kOnError,
     .description = "when the rate limiter fails: open lets the request through, closed answers 503"},
    // cache
    {.path = "cache.max_entries", .field = [](Config& c) -> auto& { return c.cache.max_entries; },
     .default_text = "100000", .min = 0, .max = 100000000,
     .description = "pages kept in the in-process cache; 0 = off"},
    {.path = "cache.page_ttl", .field = [](Config& c) -> auto& { return c.cache.page_ttl; },
     .default_text = "1s", .min = 0, .max = 1 * kHour,
     .description = "a cached page is at most this old: its counts, and others' new comments"},
    {.path = "cache.read_ahead_pages", .field = [](Config& c) -> auto& { return c.cache.read_ahead_pages; },
     .default_text = "3", .min = 0, .max = 20,
     .description = "a page read from a cursor also caches this many pages after it; 0 = none"},
    // redis
    {.path = "redis.enabled", .field = [](Config& c) -> auto& { return c.redis.enabled; },
     .default_text = "false", .description = "use Redis (cluster mode)"},
    {.path = "redis.host", .field = [](Config& c) -> auto& { return c.redis.host; },
     .default_text = R"("localhost")", .description = "Redis host; non-empty when enabled"},
    {.path = "redis.port", .field = [](Config& c) -> auto& { return c.redis.port; },
     .default_text = "6379", .min = 1, .max = 65535, .description = "Redis port"},
    {.path = "redis.password", .field = [](Config& c) -> auto& { return c.redis.password; },
     .default_text = R"("")", .description = "Redis password; empty = none"},
    {.path = "redis.db", .field = [](Config& c) -> auto& { return c.redis.db; },
     .default_text = "0", .min = 0, .max = 1023, .description = "Redis database index"},
    {.path = "redis.ttl", .field = [](Config& c) -> auto& { return c.redis.ttl; },
     .default_text = "3600", .min = 1, .max = 31536000,
     .description = "Redis entry lifetime in seconds"},
    {.path = "redis.username", .field = [](Config& c) -> auto& { return c.redis.username; },
     .default_text = R"("")", .description = "Redis ACL user for AUTH; empty = the default user"},
    {.path = "redis.tls.enabled", .field = [](Config& c) -> auto& { return c.redis.tls.enabled; },
     .default_text = "false",
     .description = "TLS to Redis (one node, or every node of cluster_nodes: their TLS ports); "
                    "each certificate is verified (chain and host)"},
    {.path = "redis.tls.ca_file", .field = [](Config& c) -> auto& { return c.redis.tls.ca_file; },
     .default_text = R"("")",
     .description = "PEM file of the roots Redis's certificate chains to; empty = the system's"},
    {.path = "redis.tls.cert_file", .field = [](Config& c) -> auto& { return c.redis.tls.cert_file; },
     .default_text = R"("")",
     .description = "PEM client certificate chain (tls-auth-clients yes); with key_file"},
    {.path = "redis.tls.key_file", .field = [](Config& c) -> auto& { return c.redis.tls.key_file; },
     .default_text = R"("")", .description = "PEM key of cert_file (unencrypted)"},
    {.path = "redis.cluster_nodes", .field = [](Config& c) -> auto& { return c.redis.cluster_nodes; },
     .default_text = "[]",
     .description = "Redis Cluster seed nodes, host:port each; empty = one node at host:port"},
    {.path = "redis.pool_size", .field = [](Config& c) -> auto& { return c.redis.pool_size; },
     .default_text = "2", .min = 1, .max = 64, .description = "pipelined connections per Redis node"},
    {.path = "redis.connect_timeout", .field = [](Config& c) -> auto& { return c.redis.connect_timeout; },
     .default_text = "1s", .min = 10 * kMs, .max = 1 * kMin,
     .description = "TCP connect + AUTH/SELECT at most this long"},
    {.path = "redis.command_timeout", .field = [](Config& c) -> auto& { return c.redis.command_timeout; },
     .default_text = "250ms", .min = 1 * kMs, .max = 1 * kMin,
     .description = "one Redis call at most this long (and never past the request's deadline)"},
    {.path = "redis.lease_ttl", .field = [](Config& c) -> auto& { return c.redis.lease_ttl; },
     .default_text = "250ms", .min = 10 * kMs, .max = 1 * kMin,
     .description = "a page's cross-node fill lease expires after this if its holder never fills"},
    {.path = "redis.stale_while_revalidate",
     .field = [](Config& c) -> auto& { return c.redis.stale_while_revalidate; },
     .default_text = "0s", .min = 0, .max = 1 * kHour,
     .description = "a page past cache.page_ttl is still served this long while one caller refreshes it"},
    {.path = "redis.refresh_ahead", .field = [](Config& c) -> auto& { return c.redis.refresh_ahead; },
     .default_text = "200ms", .min = 0, .max = 1 * kMin,
     .description = "a page read this close to cache.page_ttl (at most half of it) is refreshed behind "
                    "the read by one caller, so a hot page never misses; 0 = off"},
    {.path = "redis.local_cache_ttl", .field = [](Config& c) -> auto& { return c.redis.local_cache_ttl; },
     .default_text = "100ms", .min = 0, .max = 1 * kMin,
     .description = "a page got from Redis is also kept in this node's memory this long (never past "
                    "cache.page_ttl); another node's edit or delete is seen here within it; 0 = off"},
    {.path = "redis.key_prefix", .field = [](Config& c) -> auto& { return c.redis.key_prefix; },
     .default_text = R"("cd:")", .description = "prefix of every Redis key; no '{' or '}'"},
    {.path = "redis.breaker_failures", .field = [](Config& c) -> auto& { return c.redis.breaker_failures; },
     .default_text = "5", .min = 1, .max = 1000,
     .description = "consecutive failed Redis calls that open the circuit breaker"},
    {.path = "redis.breaker_open", .field = [](Config& c) -> auto& { return c.redis.breaker_open; },
     .default_text = "1s", .min = 10 * kMs, .max = 10 * kMin,
     .description = "an open breaker fails calls at once this long, then lets one probe through"},
    {.path = "redis.counter_ttl", .field = [](Config& c) -> auto& { return c.redis.counter_ttl; },
     .default_text = "1m", .min = 100 * kMs, .max = 1 * kHour,
     .description = "a cached copy of a comment's counters lives this long (dropped at once on change)"},
    {.path = "redis.user_rows_ttl", .field = [](Config& c) -> auto& { return c.redis.user_rows_ttl; },
     .default_text = "30s", .min = 0, .max = 1 * kHour,
     .description = "with storage.backend cql: a user's view of a video and reactions in it are cached "
                    "this long (reactions written into the copy, other writes drop it, at once; the bound if that "
                    "fails); 0 = not cached"},
    {.path = "redis.user_rows_refresh_ahead",
     .field = [](Config& c) -> auto& { return c.redis.user_rows_refresh_ahead; },
     .default_text = "10s", .min = 0, .max = 1 * kHour,
     .description = "a user's cached rows read this close to redis.user_rows_ttl (at most half of it) are "
                    "refilled from storage behind the read, so a user who keeps reading never waits for "
                    "that read; 0 = off"},
    {.path = "redis.user_rows_near_ttl",
     .field = [](Config& c) -> auto& { return c.redis.user_rows_near_ttl; },
     .default_text = "10s", .min = 0, .max = 1 * kHour,
     .description = "each node also keeps the users' rows it read from Redis in its own memory for this "
                    "long (at most redis.user_rows_refresh_ahead when that is on, so the copy behind is "
                    "refreshed before it ends), dropped at once by a change through any node (a Redis "
                    "subscription; a single Redis only, not redis.cluster_nodes), so a signed-in read makes no Redis "
                    "call; 0 = off"},
    {.path = "redis.comment_check_ttl", .field = [](Config& c) -> auto& { return c.redis.comment_check_ttl; },
     .default_text = "1m", .min = 0, .max = 1 * kHour,
     .description = "with storage.backend cql: what reactions need of a comment (video, author, status) is "
                    "shared by the nodes in Redis this long, under each node's storage.cql.comment_check_ttl "
                    "(dropped at once by the node that changes the comment; the bound if that fails); 0 = not shared"},
    // pulsar
    {.path = "pulsar.enabled", .field = [](Config& c) -> auto& { return c.pulsar.enabled; },
     .default_text = "false", .description = "publish events to Pulsar (cluster mode)"},
    {.path = "pulsar.url", .field = [](Config& c) -> auto& { return c.pulsar.url; },
     .default_text = R"("pulsar://localhost:6650")",
     .description = "broker URL, pulsar:// or pulsar+ssl://"},
    {.path = "pulsar.tls.ca_file", .field = [](Config& c) -> auto& { return c.pulsar.tls_ca_file; },
     .default_text = R"("")",
     .description = "with a pulsar+ssl:// url or an https:// admin_url: PEM file of roots the brokers' "
                    "certificates chain to, trusted besides the system's (no client certificate: "
                    "authenticate with token)"},
    {.path = "pulsar.admin_url", .field = [](Config& c) -> auto& { return c.pulsar.admin_url; },
     .default_text = R"("http://localhost:8080")",
     .description = "admin REST URL, http:// or https:// (verified against pulsar.tls.ca_file, or the system's roots)"},
    {.path = "pulsar.token", .field = [](Config& c) -> auto& { return c.pulsar.token; },
     .default_text = R"("")", .description = "JWT for Pulsar token authentication; empty: none"},
    {.path = "pulsar.batch_size", .field = [](Config& c) -> auto& { return c.pulsar.batch_size; },
     .default_text = "100", .min = 1, .max = 4096,
     .description = "messages per producer batch at most; 1: no batching"},
    {.path = "pulsar.batch_delay", .field = [](Config& c) -> auto& { return c.pulsar.batch_delay; },
     .default_text = "5ms", .min = 1 * kMs, .max = 1 * kSec,
     .description = "a producer batch is sent after this long even if not full"},
    {.path = "pulsar.max_pending_messages",
     .field = [](Config& c) -> auto& { return c.pulsar.max_pending_messages; },
     .default_text = "1000", .min = 1, .max = 100000,
     .description = "sends awaiting the broker's receipt per topic; a publish is cut in chunks of it"},
    {.path = "pulsar.send_timeout", .field = [](Config& c) -> auto& { return c.pulsar.send_timeout; },
     .default_text = "5s", .min = 100 * kMs, .max = 10 * kMin,
     .description = "a publish fails (the relay retries) when the broker's receipt takes longer"},
    {.path = "pulsar.connect_timeout", .field = [](Config& c) -> auto& { return c.pulsar.connect_timeout; },
     .default_text = "3s", .min = 100 * kMs, .max = 10 * kMin,
     .description = "bounds connecting to the broker; with it away operations fail after this"},
    {.path = "pulsar.stuck_after", .field = [](Config& c) -> auto& { return c.pulsar.stuck_after; },
     .default_text = "1m", .min = 0, .max = 1 * kHour,
     .description = "the reaction owners' Key_Shared subscription dispatching nothing this long with a "
                    "backlog and ready consumers gets its topic unloaded through admin_url (a "
                    "broker fault); 0 = off"},
    {.path = "pulsar.topics.comments",
     .field = [](Config& c) -> auto& { return c.pulsar.topics.comments; },
     .default_text = R"("persistent://pavilion/comments/events")",
     .description = "topic for comment events"},
    {.path = "pulsar.topics.reactions",
     .field = [](Config& c) -> auto& { return c.pulsar.topics.reactions; },
     .default_text = R"("persistent://pavilion/reactions/events")",
     .description = "topic for reaction events"},
    {.path = "pulsar.topics.metrics",
     .field = [](Config& c) -> auto& { return c.pulsar.topics.metrics; },
     .default_text = R"("persistent://pavilion/metrics/updates")",
     .description = "topic for metric updates"},
    // workers.metrics_reconciliation
    {.path = "workers.metrics_reconciliation.enabled",
     .field = [](Config& c) -> auto& { return c.workers.metrics_reconciliation.enabled; },
     .default_text = "true",
     .description = "run the metrics reconciliation worker (on CQL: the counter repair instead)"},
    {.path = "workers.metrics_reconciliation.realtime_interval",
     .field = [](Config& c) -> auto& {
       return c.workers.metrics_reconciliation.realtime_interval;
     },
     .default_text = "5s", .min = 100 * kMs, .max = 24 * kHour,
     .description = "reconcile realtime-tier items this often"},
    {.path = "workers.metrics_reconciliation.high_frequency_interval",
     .field = [](Config& c) -> auto& {
       return c.workers.metrics_reconciliation.high_frequency_interval;
     },
     .default_text = "30s", .min = 100 * kMs, .max = 24 * kHour,
     .description = "reconcile high-tier items this often (on CQL: the counter repair's pass); >= realtime_interval"},
    {.path = "workers.metrics_reconciliation.normal_frequency_interval",
     .field = [](Config& c) -> auto& {
       return c.workers.metrics_reconciliation.normal_frequency_interval;
     },
     .default_text = "5m", .min = 100 * kMs, .max = 24 * kHour,
     .description = "reconcile normal-tier items this often; >= high_frequency_interval"},
    {.path = "workers.metrics_reconciliation.low_frequency_interval",
     .field = [](Config& c) -> auto& {
       return c.workers.metrics_reconciliation.low_frequency_interval;
     },
     .default_text = "30m", .min = 100 * kMs, .max = 24 * kHour,
     .description = "reconcile low-tier items this often; >= normal_frequency_interval"},
    // workers.reaction_batch
    {.path = "workers.reaction_batch.batch_size",
     .field = [](Config& c) -> auto& { return c.workers.reaction_batch.batch_size; },
     .default_text = "64", .min = 1, .max = 1000000,
     .description = "ops applied per flush: a full batch is applied at once; <= max_pending_ops"},
    {.path = "workers.reaction_batch.flush_interval",
     .field = [](Config& c) -> auto& { return c.workers.reaction_batch.flush_interval; },
     .default_text = "5ms", .min = 1 * kMs, .max = 1 * kMin,
     .description = "a partial batch of ops waits at most this long to be applied"},
    {.path = "workers.reaction_batch.max_pending_ops",
     .field = [](Config& c) -> auto& { return c.workers.reaction_batch.max_pending_ops; },
     .default_text = "100000", .min = 1, .max = 100000000,
     .description = "appended but not yet applied; beyond it 503"},
    {.path = "workers.reaction_batch.owner_batch_size",
     .field = [](Config& c) -> auto& { return c.workers.reaction_batch.owner_batch_size; },
     .default_text = "1024", .min = 1, .max = 100000,
     .description = "cluster mode: the most ops a reaction owner applies in one batch"},
    {.path = "workers.reaction_batch.owner_lease",
     .field = [](Config& c) -> auto& { return c.workers.reaction_batch.owner_lease; },
     .default_text = "30s", .min = 3 * kSec, .max = 10 * kMin,
     .description = "cluster mode: a reaction owner's lease on a comment; a dead owner's comments "
                    "wait this long at most; >= 3 x (storage.cql.request_timeout + 2s)"},
    // workers.tiers
    {.path = "workers.tiers.realtime_per_minute",
     .field = [](Config& c) -> auto& { return c.workers.tiers.realtime_per_minute; },
     .default_text = "600", .min = 0, .max = 100000000,
     .description = "events per minute for the realtime tier; >= high_per_minute"},
    {.path = "workers.tiers.high_per_minute",
     .field = [](Config& c) -> auto& { return c.workers.tiers.high_per_minute; },
     .default_text = "60", .min = 0, .max = 100000000,
     .description = "events per minute for the high tier; >= normal_per_minute"},
    {.path = "workers.tiers.normal_per_minute",
     .field = [](Config& c) -> auto& { return c.workers.tiers.normal_per_minute; },
     .default_text = "1", .min = 0, .max = 100000000,
     .description = "events per minute for the normal tier; below it: low"},
    // workers.trending
    {.path = "workers.trending.window",
     .field = [](Config& c) -> auto& { return c.workers.trending.window; },
     .default_text = "10m", .min = 1 * kSec, .max = 24 * kHour,
     .description = "sliding window over which trending events are counted"},
    {.path = "workers.trending.min_events",
     .field = [](Config& c) -> auto& { return c.workers.trending.min_events; },
     .default_text = "300", .min = 1, .max = 100000000,
     .description = "events in the window that make a video trending"},
    // workers.outbox_relay
    {.path = "workers.outbox_relay.enabled",
     .field = [](Config& c) -> auto& { return c.workers.outbox_relay.enabled; },
     .default_text = "true",
     .description = "with pulsar.enabled, relay the outbox to Pulsar (off: events wait in the outbox); no bus runs without Pulsar"},
    {.path = "workers.outbox_relay.batch_size",
     .field = [](Config& c) -> auto& { return c.workers.outbox_relay.batch_size; },
     .default_text = "256", .min = 1, .max = 100000,
     .description = "outbox events published per round at most"},
    {.path = "workers.outbox_relay.poll_interval",
     .field = [](Config& c) -> auto& { return c.workers.outbox_relay.poll_interval; },
     .default_text = "5ms", .min = 1 * kMs, .max = 10 * kSec,
     .description = "an idle relay looks at the outbox again after this long"},
    // workers.cache_invalidation
    {.path = "workers.cache_invalidation.enabled",
     .field = [](Config& c) -> auto& { return c.workers.cache_invalidation.enabled; },
     .default_text = "true",
     .description = "bump cached pages of videos edited, deleted or moderated on other nodes (a bus subscriber)"},
};

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('"');
  return out;
}

std::string join(std::span<const std::string_view> items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

}  // namespace

bool KeySpec::has_bounds() const {
  return std::holds_alternative<FieldRef<int>>(field) ||
         std::holds_alternative<FieldRef<size_t>>(field) ||
         std::holds_alternative<FieldRef<milliseconds>>(field);
}

std::span<const KeySpec> schema() { return kKeys; }

const KeySpec* find_key(std::string_view path) {
  for (const KeySpec& k : kKeys)
    if (k.path == path) return &k;
  return nullptr;
}

bool is_section(std::string_view path) {
  for (const KeySpec& k : kKeys)
    if (k.path.size() > path.size() && k.path.starts_with(path) && k.path[path.size()] == '.')
      return true;
  return false;
}

std::string_view type_name(const KeySpec& key) {
  if (key.is_enum()) return "enum";
  struct Visitor {
    std::string_view operator()(FieldRef<bool>) const { return "bool"; }
    std::string_view operator()(FieldRef<int>) const { return "int"; }
    std::string_view operator()(FieldRef<size_t>) const { return "int"; }
    std::string_view operator()(FieldRef<std::string>) const { return "string"; }
    std::string_view operator()(FieldRef<milliseconds>) const { return "duration"; }
    std::string_view operator()(FieldRef<std::vector<std::string>>) const {
      return "list of string";
    }
  };
  return std::visit(Visitor{}, key.field);
}

std::string format_value(const KeySpec& key, const Config& config) {
  Config copy = config;  // FieldRef takes a mutable Config
  struct Visitor {
    Config& c;
    std::string operator()(FieldRef<bool> f) const { return f(c) ? "true" : "false"; }
    std::string operator()(FieldRef<int> f) const { return std::to_string(f(c)); }
    std::string operator()(FieldRef<size_t> f) const { return std::to_string(f(c)); }
    std::string operator()(FieldRef<std::string> f) const { return quote(f(c)); }
    std::string operator()(FieldRef<milliseconds> f) const { return format_duration(f(c)); }
    std::string operator()(FieldRef<std::vector<std::string>> f) const {
      std::string out = "[";
      for (size_t i = 0; i < f(c).size(); ++i) {
        if (i) out += ", ";
        out += quote(f(c)[i]);
      }
      return out + "]";
    }
  };
  return std::visit(Visitor{copy}, key.field);
}

std::string format_bounds(const KeySpec& key) {
  if (key.is_enum()) return join(key.allowed, "|");
  if (!key.has_bounds()) return "";
  if (std::holds_alternative<FieldRef<milliseconds>>(key.field))
    return format_duration(milliseconds{key.min}) + ".." + format_duration(milliseconds{key.max});
  return std::to_string(key.min) + ".." + std::to_string(key.max);
}

std::optional<milliseconds> parse_duration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::string_view unit = text.substr(digits);
  int64_t scale;
  if (unit == "ms") scale = kMs;
  else if (unit == "s") scale = kSec;
  else if (unit == "m") scale = kMin;
  else if (unit == "h") scale = kHour;
  else return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (ec != std::errc() || end != text.data() + digits) return std::nullopt;
  if (n > std::numeric_limits<int64_t>::max() / scale) return std::nullopt;
  return milliseconds{n * scale};
}

std::string format_duration(milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % kHour == 0) return std::to_string(ms / kHour) + "h";
  if (ms % kMin == 0) return std::to_string(ms / kMin) + "m";
  if (ms % kSec == 0) return std::to_string(ms / kSec) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace commentd::config

#include "store/cql/schema.h"

namespace commentd::store::cql {
namespace {

// Version 1: the plan's V1 tables, exactly as the plan lists them, so a keyspace that already
// holds them (and their data) is left as it is.
const MigrationStep kV1{
    1,
    "V1 tables of the plan: comments, comments_by_video, replies, reactions",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.comments (
  id uuid PRIMARY KEY,
  video_id uuid,
  user_id uuid,
  content text,
  created_at timestamp,
  updated_at timestamp,
  deleted_at timestamp,
  parent_id uuid,
  likes int,
  dislikes int,
  status text
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.comments_by_video (
  video_id uuid,
  comment_id uuid,
  created_at timestamp,
  PRIMARY KEY (video_id, created_at, comment_id)
) WITH CLUSTERING ORDER BY (created_at DESC, comment_id ASC))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.replies (
  parent_id uuid,
  comment_id uuid,
  created_at timestamp,
  PRIMARY KEY (parent_id, created_at, comment_id)
) WITH CLUSTERING ORDER BY (created_at DESC, comment_id ASC))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.reactions (
  comment_id uuid,
  user_id uuid,
  type text,
  created_at timestamp,
  PRIMARY KEY (comment_id, user_id)
))",
    },
    {},
};

// Version 2: the plan's V2 tables. CQL refuses counters beside regular columns, so
// comment_metrics and video_stats keep only their counters and the plan's other columns live
// in the *_meta companions (docs/cluster.md "Tables").
const MigrationStep kV2{
    2,
    "V2 tables of the plan: comment_metrics, video_stats (counters only) and their _meta "
    "companions, reaction_events, comments_by_video_bucketed",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.comment_metrics (
  comment_id uuid PRIMARY KEY,
  likes counter,
  dislikes counter,
  replies_count counter
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.comment_metrics_meta (
  comment_id uuid PRIMARY KEY,
  last_updated timestamp,
  update_frequency text
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.video_stats (
  video_id uuid PRIMARY KEY,
  comments_count counter,
  reactions_count counter
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.video_stats_meta (
  video_id uuid PRIMARY KEY,
  last_updated timestamp,
  is_trending boolean,
  update_frequency text
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.reaction_events (
  reaction_id uuid,
  comment_id uuid,
  user_id uuid,
  type text,
  action text,
  created_at timestamp,
  PRIMARY KEY ((comment_id), created_at, reaction_id)
) WITH CLUSTERING ORDER BY (created_at DESC, reaction_id ASC))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.comments_by_video_bucketed (
  video_id uuid,
  time_bucket text,
  comment_id uuid,
  created_at timestamp,
  PRIMARY KEY ((video_id, time_bucket), created_at, comment_id)
) WITH CLUSTERING ORDER BY (created_at DESC, comment_id ASC))",
    },
    {},
};

// Version 3: the cluster write model's columns and tables (docs/cluster.md "Tables"): the
// bucket index, the author's access paths, the outbox and positions. (Until session 20 it
// also made comment_log; see version 9.)
const MigrationStep kV3{
    3,
    "cluster write model: comments/reactions columns, video_buckets, "
    "user_reactions, user_video_view, outbox, relay_positions, consumer_positions",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.video_buckets (
  video_id uuid,
  time_bucket text,
  PRIMARY KEY ((video_id), time_bucket)
) WITH CLUSTERING ORDER BY (time_bucket DESC))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.user_reactions (
  video_id uuid,
  user_id uuid,
  comment_id uuid,
  type text,
  PRIMARY KEY ((video_id, user_id), comment_id)
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.user_video_view (
  video_id uuid,
  user_id uuid,
  hidden set<uuid>,
  recent_until timestamp,
  PRIMARY KEY ((video_id, user_id))
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.outbox (
  shard int,
  hour bigint,
  position bigint,
  event_id uuid,
  comment_id uuid,
  version bigint,
  topic text,
  key text,
  PRIMARY KEY ((shard, hour), position, event_id)
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.relay_positions (
  name text,
  shard int,
  position bigint,
  owner text,
  PRIMARY KEY ((name, shard))
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.consumer_positions (
  name text,
  shard int,
  position bigint,
  PRIMARY KEY ((name, shard))
))",
    },
    {
        {"comments", "version", "bigint"},
        {"comments", "reply_to", "uuid"},
        {"comments", "depth", "int"},
        {"comments", "edited", "boolean"},
        {"comments", "event_id", "uuid"},
        {"reactions", "node_id", "int"},
        {"reactions", "op_id", "uuid"},
        {"reactions", "set_at", "bigint"},
        {"reactions", "prev_type", "text"},
    },
};

// Version 4: what CqlStore needs beyond the write model's tables (docs/cluster.md "Tables"):
// this node's reaction-op log and outbox log (writer-assigned sequences, partitioned by node
// and block of 65536), their heads, and the user's hidden comments per video as rows with
// the read-your-writes mark as a static column (one read answers both; the bridge does not
// decode collections, so user_video_view's set is not used).
const MigrationStep kV4{
    4,
    "CqlStore: reaction_ops, outbox_log, log_heads (per-node logs), user_hidden",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.reaction_ops (
  node_id int,
  block bigint,
  seq bigint,
  op_id uuid,
  comment_id uuid,
  video_id uuid,
  user_id uuid,
  type text,
  created_at timestamp,
  op_node int,
  PRIMARY KEY ((node_id, block), seq)
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.outbox_log (
  node_id int,
  block bigint,
  seq bigint,
  topic text,
  key text,
  payload blob,
  PRIMARY KEY ((node_id, block), seq)
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.log_heads (
  node_id int,
  log text,
  seq bigint,
  PRIMARY KEY ((node_id, log))
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.user_hidden (
  video_id uuid,
  user_id uuid,
  comment_id uuid,
  recent_until timestamp static,
  PRIMARY KEY ((video_id, user_id), comment_id)
))",
    },
    {},
};

// Version 5: the checkpoints of `commentd backfill` (store/cql/backfill.h): one row per
// (job, phase, token range), holding the highest token whose partitions are done.
const MigrationStep kV5{
    5,
    "backfill: backfill_progress (checkpoints per job, phase and token range)",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.backfill_progress (
  job text,
  phase text,
  range_id int,
  next_token bigint,
  done boolean,
  rows bigint,
  updated_at timestamp,
  PRIMARY KEY ((job), phase, range_id)
))",
    },
    {},
};

// Version 6: exact comment counts after a write that died between its entity write and its
// counter step (docs/cluster.md "Counter repair"): started/done counters beside the counts
// they guard (in the same row, so the done mark lands with the count, or neither does), the
// repair candidates (a row per guarded key, sharded), and a claim row per key so that one
// node repairs a key at a time.
const MigrationStep kV6{
    6,
    "counter repair: writes_started/writes_done on video_stats and comment_metrics, count_repairs, "
    "count_claims",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.count_repairs (
  shard int,
  kind text,
  key uuid,
  PRIMARY KEY ((shard), kind, key)
))",
        R"(CREATE TABLE IF NOT EXISTS {ks}.count_claims (
  kind text,
  key uuid,
  claim bigint,
  PRIMARY KEY ((kind, key))
))",
    },
    {
        {"video_stats", "writes_started", "counter"},
        {"video_stats", "writes_done", "counter"},
        {"comment_metrics", "writes_started", "counter"},
        {"comment_metrics", "writes_done", "counter"},
    },
};

// Version 7: commit intents (docs/cluster.md "Commit intents"): a write with an entity write
// first records what it will write after it (derived rows, outbox events) in an intent, and
// its entity write names the intent in slot `version % 4` of the comment row, so that a
// write that dies after its entity write is rolled forward by any node, and one that lost
// its race or never ran is told apart. Intents are sharded per minute (a partition is read
// once it has settled, never again, so the deletes' tombstones are never read in bulk);
// intent_sweeps holds, per shard, the first minute not yet swept.
const MigrationStep kV7{
    7,
    "commit intents: commit_intents, intent_sweeps, comments.intent_0..intent_3",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.commit_intents (
  shard int,
  minute bigint,
  id uuid,
  comment_id uuid,
  version bigint,
  written_at bigint,
  body blob,
  claim bigint,
  PRIMARY KEY ((shard, minute), id)
) WITH default_time_to_live = 1209600)",
        R"(CREATE TABLE IF NOT EXISTS {ks}.intent_sweeps (
  shard int,
  minute bigint,
  PRIMARY KEY ((shard))
))",
    },
    {
        {"comments", "intent_0", "uuid"},
        {"comments", "intent_1", "uuid"},
        {"comments", "intent_2", "uuid"},
        {"comments", "intent_3", "uuid"},
    },
};

// Version 8: reaction owner leases (docs/cluster.md "Owner leases"): the node that applies a
// comment's reactions holds the comment's row here, taken and renewed by conditional writes
// with a TTL, so a node cut off from Pulsar whose keys moved cannot keep writing the comment's
// registers and counters beside its new owner. A lease ends by its TTL or its holder's delete.
const MigrationStep kV8{
    8,
    "reaction owner leases: reaction_owners",
    {
        R"(CREATE TABLE IF NOT EXISTS {ks}.reaction_owners (
  comment_id uuid,
  owner text,
  PRIMARY KEY ((comment_id))
))",
    },
    {},
};

// Version 9: the design's comment_log is gone (docs/cluster.md "Commit intents": the entity
// write is conditional on the comments row itself, and a write that died is rolled forward
// from its commit intent). Version 3 created it until session 20 and nothing ever wrote to
// it; version 3 no longer does, and a keyspace migrated before that loses the empty table here.
const MigrationStep kV9{
    9,
    "drop comment_log (never written: commit intents took its place)",
    {
        R"(DROP TABLE IF EXISTS {ks}.comment_log)",
    },
    {},
};

// Version 10: a user's view of a video (the hidden comments and the read-your-writes mark of
// user_hidden) folded into the user's user_reactions partition, which has the same key, so a
// signed-in read of a video costs one partition read instead of two (docs/cluster.md
// "Tables"). Columns only: nodes write both tables from this release on, and read the fold
// alone once its marker is set (schema.h kFoldMarkerJob). The read-your-writes mark is a row
// of its own (comment_id = kViewMarkRow), not a static column: the previous release reads
// these partitions during a roll and refuses a row without a comment_id.
const MigrationStep kV10{
    kFoldVersion,
    "user view folded into user_reactions: user_reactions.hidden, user_reactions.recent_until",
    {},
    {
        {"user_reactions", "hidden", "boolean"},
        {"user_reactions", "recent_until", "timestamp"},
    },
};

const MigrationStep kSteps[] = {kV1, kV2, kV3, kV4, kV5, kV6, kV7, kV8, kV9, kV10};

constexpr std::string_view kBookkeeping[] = {
    R"(CREATE TABLE IF NOT EXISTS {ks}.schema_version (
  version int PRIMARY KEY,
  description text,
  applied_at timestamp,
  applied_by text
))",
    R"(CREATE TABLE IF NOT EXISTS {ks}.schema_lease (
  name text PRIMARY KEY,
  owner text
))",
};

}  // namespace

std::span<const MigrationStep> migration_steps() { return kSteps; }

int latest_schema_version() { return kSteps[std::size(kSteps) - 1].version; }

std::string with_keyspace(std::string_view cql, std::string_view keyspace) {
  std::string out;
  out.reserve(cql.size() + 4 * keyspace.size());
  for (size_t i = 0; i < cql.size();) {
    if (cql.compare(i, 4, "{ks}") == 0) {
      out += keyspace;
      i += 4;
    } else {
      out += cql[i++];
    }
  }
  return out;
}

std::string create_keyspace_cql(const config::CqlConfig& cfg) {
  std::string replication;
  if (cfg.replication == "NetworkTopologyStrategy") {
    replication = "{'class': 'NetworkTopologyStrategy'";
    for (const std::string& dc : cfg.datacenters) {
      auto colon = dc.rfind(':');
      replication += ", '" + dc.substr(0, colon) + "': " + dc.substr(colon + 1);
    }
    replication += "}";
  } else {
    replication = "{'class': 'SimpleStrategy', 'replication_factor': " +
                  std::to_string(cfg.replication_factor) + "}";
  }
  return "CREATE KEYSPACE IF NOT EXISTS " + cfg.keyspace + " WITH replication = " + replication;
}

std::span<const std::string_view> bookkeeping_statements() { return kBookkeeping; }

}  // namespace commentd::store::cql

// CqlStore internals shared by its .cpp files: the prepared statements, value conversions and
// row decoding. Not part of the store's interface.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/cql_client.h"
#include "store/cql/count_repair.h"
#include "store/cql/cql_store.h"

namespace commentd::store::cql {

// Registers one register_get_in reads.
inline constexpr size_t kRegistersPerRead = 16;

// Counter repair candidates are spread over this many `count_repairs` partitions.
inline constexpr int kRepairShards = 16;
// A candidate row outlives any repair it may need (deleted by the repairer once settled).
inline constexpr int kRepairMarkTtlSeconds = 7 * 24 * 3600;
// The repair kinds: video_stats.comments_count, comment_metrics.replies_count.
inline constexpr std::string_view kRepairVideo = "video", kRepairComment = "comment";
inline int repair_shard(const Uuid& key) { return key.bytes[15] % kRepairShards; }
// The counter a mutation's delta is guarded for the repair: a video's comments_count or a
// comment's replies_count (kind, key). Reaction counters are not: their owner's recount
// keeps them exact.
inline std::optional<std::pair<std::string_view, Uuid>> guarded_counter(const Mutation& m) {
  if (auto* x = std::get_if<StatsDelta>(&m); x && x->comments) return std::pair{kRepairVideo, x->video_id};
  if (auto* x = std::get_if<MetricsDelta>(&m); x && x->replies) return std::pair{kRepairComment, x->comment_id};
  return std::nullopt;
}

// Sequence logs are partitioned by (node_id, seq / kLogBlock).
inline constexpr uint64_t kLogBlock = 65536;

// Commit intents (docs/cluster.md "Commit intents"): the comment row names the intent that
// wrote its version `v` in slot v % kIntentSlots, so a roll-forward can tell whether the
// intent's write won its version as long as the row is fewer than kIntentSlots versions past it.
inline constexpr int kIntentSlots = 4;
inline int intent_slot(uint64_t version) { return static_cast<int>(version % kIntentSlots); }
// Intents are spread over this many partitions per minute (`shard, minute`).
inline constexpr int kIntentShards = 16;
inline int intent_shard(const Uuid& comment) { return comment.bytes[15] % kIntentShards; }

struct CqlStore::Statements {
  bridge::PreparedPtr get_comment, upsert_comment;
  // The entity write, naming its intent in slot [intent_slot(new version)].
  bridge::PreparedPtr insert_comment_if_new[kIntentSlots], update_comment_if_version[kIntentSlots];
  // The same update on a V1 row, whose version is null (read as version 1: decode_comment).
  bridge::PreparedPtr update_comment_if_null_version[kIntentSlots];
  // Commit intents: write, delete, a (shard, minute) partition's intents, a claim on one
  // (unclaimed, or at the expiry read), the comment's version and intent slots read through
  // Paxos (a conditional delete that never applies), the sweep positions (created IF NOT
  // EXISTS, moved IF minute = ?).
  bridge::PreparedPtr intent_put, intent_delete, intent_scan, intent_claim_new, intent_claim, intent_probe;
  bridge::PreparedPtr sweep_get, sweep_init, sweep_move;
  // Reaction owner leases: taken when free (IF NOT EXISTS), renewed or released by their
  // holder (IF owner = ?); both take the lease's TTL in seconds.
  bridge::PreparedPtr owner_take, owner_renew, owner_release;
  // Linearizable reads as conditional deletes that never apply (the bridge has no SERIAL
  // read consistency): not applied, they answer the row's current value in column 1.
  bridge::PreparedPtr comment_probe, consumer_probe;
  bridge::PreparedPtr index_first[2], index_ties[2], index_put[2], index_delete[2];
  // [index][sort][bounded]: the first page (unbounded) or the entries strictly after a time.
  bridge::PreparedPtr index_page[2][2][2];
  bridge::PreparedPtr bucket_put, video_bucket_put;
  // Time-bucketed video pages (cql_pages.cpp). [sort][0: from the start, 1: from a bucket
  // inclusive, 2: after a bucket]: a video's bucket names in walk order.
  bridge::PreparedPtr bucket_list[2][3];
  // [sort][bounded]: one bucket's entries, from its start or strictly after a time.
  bridge::PreparedPtr bucket_page[2][2];
  bridge::PreparedPtr bucket_ties;  // one bucket's entries at one created_at
  bridge::PreparedPtr video_entry_get;  // is (created_at, id) in comments_by_video?
  // metrics_get and metrics_meta_get select comment_id first, as get_comment selects id first:
  // what read_keyed needs of a statement.
  bridge::PreparedPtr metrics_get, metrics_meta_get, metrics_add, metrics_meta_put;
  // The same reads for keys_per_read keys (key IN (...)); null when keys_per_read is 1.
  bridge::PreparedPtr comments_in, metrics_in, metrics_meta_in;
  bridge::PreparedPtr stats_get, stats_meta_get, stats_add, stats_meta_put;
  // Counter repair (docs/cluster.md "Counter repair"): a guarded write's writes_started
  // (before its entity write), its candidate row, and its counts with writes_done + 1.
  bridge::PreparedPtr stats_started, metrics_started, repair_mark, stats_add_done, metrics_add_done;
  bridge::PreparedPtr stats_done, metrics_done;  // writes_done + 1 alone (a refused write)
  bridge::PreparedPtr user_view_get, hidden_put, hidden_delete, recent_put;
  bridge::PreparedPtr user_reactions_get, user_reaction_put;
  // The user's view folded into user_reactions (schema step 10): written beside user_hidden's
  // rows; user_rows_get reads reactions and view at once once the fold marker is set, and
  // hidden_any answers the view of a partition past user_rows_get's LIMIT.
  bridge::PreparedPtr fold_hidden_put, fold_hidden_delete, fold_recent_put;
  bridge::PreparedPtr user_rows_get, hidden_any, fold_marker_get;
  // user_rows_get for keys_per_read users of one video (user_id IN, user_id selected first,
  // PER PARTITION LIMIT for the LIMIT); null when keys_per_read is 1.
  bridge::PreparedPtr user_rows_in;
  bridge::PreparedPtr register_get, register_put, reaction_event_put;
  // Up to kRegistersPerRead registers of one comment in one partition read (user_id IN, the
  // list padded with repeats of its last id: an IN on a clustering key yields each row once).
  bridge::PreparedPtr register_get_in;
  bridge::PreparedPtr register_types;  // every register of a comment (the owner's recount)
  bridge::PreparedPtr op_put, ops_read, ops_trim_block, ops_trim_upto;
  bridge::PreparedPtr outbox_put, outbox_read, outbox_trim_block, outbox_trim_upto;
  bridge::PreparedPtr head_put, head_get;
  bridge::PreparedPtr consumer_get, consumer_put, consumer_insert_if_new, consumer_update_if;
};

// The fold marker's row (Statements::fold_marker_get) says done.
bool fold_marker_set(const bridge::Rows& r);

// Prepares every statement of `keyspace` (cql_statements.cpp). Blocking.
// keys_per_read: the width of the *_in statements (1: none).
Result<std::unique_ptr<CqlStore::Statements>> prepare_statements(bridge::CqlSession& s, const std::string& keyspace,
                                                                 size_t keys_per_read,
                                                                 boost::asio::thread_pool& pool);

inline bridge::Uuid to_cql(const Uuid& u) {
  bridge::Uuid out;
  for (size_t i = 0; i < 16; ++i) out[i] = u.bytes[i];
  return out;
}
inline Uuid from_cql(const bridge::Uuid& u) {
  Uuid out;
  for (size_t i = 0; i < 16; ++i) out.bytes[i] = u[i];
  return out;
}
inline bridge::Value V(const Uuid& u) { return bridge::Value::uuid(to_cql(u)); }
inline bridge::Value V(const std::optional<Uuid>& u) { return u ? V(*u) : bridge::Value::null(); }
inline bridge::Value ts(TimeMs ms) { return bridge::Value::timestamp_ms(ms); }
inline bridge::Value big(int64_t v) { return bridge::Value::bigint(v); }
inline bridge::Value txt(std::string_view s) { return bridge::Value::text(std::string(s)); }
// Bound values as a vector. (A braced list inside a co_await expression trips g++ 12.)
template <class... Ts>
std::vector<bridge::Value> args(Ts&&... v) {
  std::vector<bridge::Value> out;
  out.reserve(sizeof...(v));
  (out.push_back(std::forward<Ts>(v)), ...);
  return out;
}

// The writes of exec_writes in the requests that carry them: the calls that name one
// partition (Call::partition), in their order, cut into groups of at most `max_bytes` of
// bound values and `max_items` statements; the calls that name none, one per group. A group of
// one goes as itself, a larger one as an unlogged batch. Why: Cassandra and ScyllaDB apply the
// statements of one partition key in one batch as one mutation (atomic and isolated in that
// partition, even across tables that share the key), so N writes cost one request instead of
// N. The byte bound keeps each batch under Cassandra's batch_size_warn_threshold (5 KiB).
// Statements without USING TIMESTAMP in one batch share its timestamp; none compete, since no
// WriteSet writes one cell twice.
inline constexpr size_t kMaxBatchBytes = 4096;
inline constexpr size_t kMaxBatchItems = 64;
std::vector<std::vector<CqlStore::Call>> group_writes(std::vector<CqlStore::Call> calls,
                                                      size_t max_bytes = kMaxBatchBytes,
                                                      size_t max_items = kMaxBatchItems);
// Partition keys for Call::partition: one uuid (comments, reactions, reaction_events and the
// metrics tables by comment; comments_by_video, video_buckets and video_stats_meta by video;
// replies by parent), (video, user) (user_reactions, user_video_view, user_hidden), and
// (video, bucket) (comments_by_video_bucketed).
// Tagged, so keys of different shapes never compare equal.
std::string pk(const Uuid& a);
std::string pk(const Uuid& a, const Uuid& b);
std::string pk(const Uuid& a, std::string_view b);  // (video_id, time_bucket)

std::string_view status_text(CommentStatus s);
ReactionType reaction_from_text(std::string_view s);

// The columns every comment read selects, in this order.
inline constexpr const char* kCommentColumns =
    "id, video_id, user_id, content, created_at, updated_at, deleted_at, parent_id, status, version, reply_to, "
    "depth, edited";
// Row `row` of a result selecting kCommentColumns.
Result<Comment> decode_comment(const bridge::Rows& r, size_t row);
// The values of kCommentColumns for `c`, in order.
std::vector<bridge::Value> comment_values(const Comment& c);

// The index of column `name` in `r` (a conditional write's answer carries the columns it
// tested, after [applied]); nullopt if it has none.
inline std::optional<size_t> column_of(const bridge::Rows& r, std::string_view name) {
  for (size_t c = 0; c < r.columns(); ++c)
    if (r.column_name(c) == name) return c;
  return std::nullopt;
}

// Blocking wait for one bridge operation whose completion runs on `pool`.
template <class T, class Init>
Result<T> wait_on(boost::asio::thread_pool& pool, Init init);

}  // namespace commentd::store::cql

#include <boost/asio/bind_executor.hpp>
#include <future>

namespace commentd::store::cql {
template <class T, class Init>
Result<T> wait_on(boost::asio::thread_pool& pool, Init init) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  init(boost::asio::bind_executor(pool, [&p](Result<T> r) { p.set_value(std::move(r)); }));
  return f.get();
}
}  // namespace commentd::store::cql

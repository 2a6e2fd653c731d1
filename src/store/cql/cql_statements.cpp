// CqlStore's statements, prepared once at open, and its row codec.
#include <map>

#include "store/cql/cql_internal.h"
#include "store/cql/schema.h"

namespace commentd::store::cql {

std::string_view status_text(CommentStatus s) { return to_string(s); }

ReactionType reaction_from_text(std::string_view s) {
  if (s == "like") return ReactionType::like;
  if (s == "dislike") return ReactionType::dislike;
  return ReactionType::none;
}

namespace {
std::optional<CommentStatus> status_from_text(std::string_view s) {
  if (s == "deleted") return CommentStatus::deleted;
  return parse_status(s);
}
}  // namespace

Result<Comment> decode_comment(const bridge::Rows& r, size_t row) {
  Comment c;
  auto id = r.uuid(row, 0);
  if (!id) return id.take_error();
  if (!*id) return Error(Errc::internal, "comment row without id");
  c.id = from_cql(**id);
  auto opt_uuid = [&](size_t col) -> Result<std::optional<Uuid>> {
    auto v = r.uuid(row, col);
    if (!v) return v.take_error();
    return *v ? std::optional<Uuid>(from_cql(**v)) : std::nullopt;
  };
  auto i64 = [&](size_t col, int64_t dflt) -> Result<int64_t> {
    auto v = r.i64(row, col);
    if (!v) return v.take_error();
    return v->value_or(dflt);
  };
  auto vid = opt_uuid(1), uid = opt_uuid(2), parent = opt_uuid(7), reply_to = opt_uuid(10);
  if (!vid || !uid || !parent || !reply_to) return Error(Errc::internal, "corrupt comment row " + c.id.str());
  c.video_id = vid->value_or(Uuid{});
  c.user_id = uid->value_or(Uuid{});
  c.parent_id = *parent;
  c.reply_to = *reply_to;
  auto content = r.bytes(row, 3);
  if (!content) return content.take_error();
  if (*content) c.content = std::string(**content);
  auto created = i64(4, 0), updated = i64(5, 0), deleted = i64(6, 0), depth = i64(11, 0);
  auto version = r.i64(row, 9);
  if (!created || !updated || !deleted || !version || !depth)
    return Error(Errc::internal, "corrupt comment row " + c.id.str());
  c.created_at = *created;
  c.updated_at = *updated;
  c.deleted_at = *deleted;
  c.version = static_cast<uint64_t>(version->value_or(1));
  c.depth = static_cast<uint32_t>(*depth);
  // A V1 row (null version, written by the old service, not yet backfilled): it reads as
  // version 1, and a V1 reply answers its parent_id one level down (the old service's
  // replies are one level). The backfill writes the same values (store/cql/backfill.h).
  if (!version->has_value() && c.parent_id && !c.reply_to) {
    c.reply_to = c.parent_id;
    c.depth = 1;
  }
  auto status = r.bytes(row, 8);
  if (!status) return status.take_error();
  if (*status) {
    auto s = status_from_text(**status);
    if (!s) return Error(Errc::internal, "comment " + c.id.str() + ": unknown status '" + std::string(**status) + "'");
    c.status = *s;
  }
  auto edited = r.boolean(row, 12);
  if (!edited) return edited.take_error();
  c.edited = edited->value_or(false);
  return c;
}

std::vector<bridge::Value> comment_values(const Comment& c) {
  std::vector<bridge::Value> v;
  v.push_back(V(c.id));
  v.push_back(V(c.video_id));
  v.push_back(V(c.user_id));
  v.push_back(txt(c.content));
  v.push_back(ts(c.created_at));
  v.push_back(ts(c.updated_at));
  v.push_back(c.deleted_at ? ts(c.deleted_at) : bridge::Value::null());
  v.push_back(V(c.parent_id));
  v.push_back(txt(status_text(c.status)));
  v.push_back(big(static_cast<int64_t>(c.version)));
  v.push_back(V(c.reply_to));
  v.push_back(bridge::Value::int32(static_cast<int32_t>(c.depth)));
  v.push_back(bridge::Value::boolean(c.edited));
  return v;
}

Result<std::unique_ptr<CqlStore::Statements>> prepare_statements(bridge::CqlSession& s, const std::string& ks,
                                                                 size_t keys_per_read,
                                                                 boost::asio::thread_pool& pool) {
  auto st = std::make_unique<CqlStore::Statements>();
  std::optional<Error> failed;
  auto prep = [&](bridge::PreparedPtr& out, std::string cql) {
    if (failed) return;
    cql = with_keyspace(cql, ks);
    auto p = wait_on<bridge::PreparedPtr>(pool, [&](auto h) { s.prepare(cql, std::move(h)); });
    if (!p) {
      failed = Error(p.error().code == Errc::unavailable ? Errc::unavailable : Errc::internal,
                     "cql: cannot prepare '" + cql + "': " + p.error().message + " (is the keyspace migrated?)");
      return;
    }
    out = std::move(*p);
  };
  const std::string cols = kCommentColumns;
  prep(st->get_comment, "SELECT " + cols + " FROM {ks}.comments WHERE id = ?");
  prep(st->comment_probe, "DELETE FROM {ks}.comments WHERE id = ? IF version = -1");
  prep(st->consumer_probe, "DELETE FROM {ks}.consumer_positions WHERE name = ? AND shard = ? IF position = -1");
  prep(st->upsert_comment, "INSERT INTO {ks}.comments (" + cols + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  const std::string set_all =
      "UPDATE {ks}.comments SET video_id = ?, user_id = ?, content = ?, created_at = ?, updated_at = ?, "
      "deleted_at = ?, parent_id = ?, status = ?, version = ?, reply_to = ?, depth = ?, edited = ?, ";
  for (int k = 0; k < kIntentSlots; ++k) {
    const std::string slot = "intent_" + std::to_string(k);
    prep(st->insert_comment_if_new[k], "INSERT INTO {ks}.comments (" + cols + ", " + slot +
                                           ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS");
    prep(st->update_comment_if_version[k], set_all + slot + " = ? WHERE id = ? IF version = ?");
    prep(st->update_comment_if_null_version[k], set_all + slot + " = ? WHERE id = ? IF version = null");
  }
  prep(st->intent_put,
       "INSERT INTO {ks}.commit_intents (shard, minute, id, comment_id, version, written_at, body) "
       "VALUES (?, ?, ?, ?, ?, ?, ?)");
  prep(st->intent_delete, "DELETE FROM {ks}.commit_intents WHERE shard = ? AND minute = ? AND id = ?");
  prep(st->intent_scan,
       "SELECT id, comment_id, version, written_at, body, claim FROM {ks}.commit_intents WHERE shard = ? AND minute = ?");
  prep(st->intent_claim_new,
       "UPDATE {ks}.commit_intents SET claim = ? WHERE shard = ? AND minute = ? AND id = ? IF comment_id = ? AND claim = null");
  prep(st->intent_claim,
       "UPDATE {ks}.commit_intents SET claim = ? WHERE shard = ? AND minute = ? AND id = ? IF comment_id = ? AND claim = ?");
  prep(st->intent_probe,
       "DELETE FROM {ks}.comments WHERE id = ? IF version = -1 AND intent_0 = ? AND intent_1 = ? AND intent_2 = ? AND "
       "intent_3 = ?");
  prep(st->sweep_get, "SELECT minute FROM {ks}.intent_sweeps WHERE shard = ?");
  prep(st->sweep_init, "INSERT INTO {ks}.intent_sweeps (shard, minute) VALUES (?, ?) IF NOT EXISTS");
  prep(st->sweep_move, "UPDATE {ks}.intent_sweeps SET minute = ? WHERE shard = ? IF minute = ?");
  prep(st->owner_take,
       "INSERT INTO {ks}.reaction_owners (comment_id, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?");
  prep(st->owner_renew, "UPDATE {ks}.reaction_owners USING TTL ? SET owner = ? WHERE comment_id = ? IF owner = ?");
  prep(st->owner_release, "DELETE FROM {ks}.reaction_owners WHERE comment_id = ? IF owner = ?");
  const char* tables[2] = {"comments_by_video", "replies"};
  const char* keys[2] = {"video_id", "parent_id"};
  for (int i = 0; i < 2; ++i) {
    std::string t = std::string("{ks}.") + tables[i], k = keys[i];
    prep(st->index_first[i], "SELECT comment_id FROM " + t + " WHERE " + k + " = ? LIMIT 1");
    prep(st->index_ties[i], "SELECT comment_id FROM " + t + " WHERE " + k + " = ? AND created_at = ?");
    prep(st->index_put[i], "INSERT INTO " + t + " (" + k + ", created_at, comment_id) VALUES (?, ?, ?)");
    prep(st->index_delete[i], "DELETE FROM " + t + " WHERE " + k + " = ? AND created_at = ? AND comment_id = ?");
    const std::string sel = "SELECT created_at, comment_id FROM " + t + " WHERE " + k + " = ?";
    prep(st->index_page[i][0][0], sel + " ORDER BY created_at DESC LIMIT ?");
    prep(st->index_page[i][0][1], sel + " AND created_at < ? ORDER BY created_at DESC LIMIT ?");
    prep(st->index_page[i][1][0], sel + " ORDER BY created_at ASC LIMIT ?");
    prep(st->index_page[i][1][1], sel + " AND created_at > ? ORDER BY created_at ASC LIMIT ?");
  }
  prep(st->bucket_put,
       "INSERT INTO {ks}.comments_by_video_bucketed (video_id, time_bucket, created_at, comment_id) "
       "VALUES (?, ?, ?, ?)");
  prep(st->video_bucket_put, "INSERT INTO {ks}.video_buckets (video_id, time_bucket) VALUES (?, ?)");
  {
    const std::string list = "SELECT time_bucket FROM {ks}.video_buckets WHERE video_id = ?";
    prep(st->bucket_list[0][0], list + " ORDER BY time_bucket DESC LIMIT ?");
    prep(st->bucket_list[0][1], list + " AND time_bucket <= ? ORDER BY time_bucket DESC LIMIT ?");
    prep(st->bucket_list[0][2], list + " AND time_bucket < ? ORDER BY time_bucket DESC LIMIT ?");
    prep(st->bucket_list[1][0], list + " ORDER BY time_bucket ASC LIMIT ?");
    prep(st->bucket_list[1][1], list + " AND time_bucket >= ? ORDER BY time_bucket ASC LIMIT ?");
    prep(st->bucket_list[1][2], list + " AND time_bucket > ? ORDER BY time_bucket ASC LIMIT ?");
    const std::string sel =
        "SELECT created_at, comment_id FROM {ks}.comments_by_video_bucketed WHERE video_id = ? AND time_bucket = ?";
    prep(st->bucket_page[0][0], sel + " ORDER BY created_at DESC LIMIT ?");
    prep(st->bucket_page[0][1], sel + " AND created_at < ? ORDER BY created_at DESC LIMIT ?");
    prep(st->bucket_page[1][0], sel + " ORDER BY created_at ASC LIMIT ?");
    prep(st->bucket_page[1][1], sel + " AND created_at > ? ORDER BY created_at ASC LIMIT ?");
    prep(st->bucket_ties, "SELECT comment_id FROM {ks}.comments_by_video_bucketed "
                          "WHERE video_id = ? AND time_bucket = ? AND created_at = ?");
    prep(st->video_entry_get,
         "SELECT comment_id FROM {ks}.comments_by_video WHERE video_id = ? AND created_at = ? AND comment_id = ?");
  }
  const std::string metrics_cols = "SELECT comment_id, likes, dislikes, replies_count FROM {ks}.comment_metrics";
  const std::string meta_cols = "SELECT comment_id, last_updated FROM {ks}.comment_metrics_meta";
  prep(st->metrics_get, metrics_cols + " WHERE comment_id = ?");
  prep(st->metrics_meta_get, meta_cols + " WHERE comment_id = ?");
  if (keys_per_read > 1) {
    std::string in = "?";
    for (size_t i = 1; i < keys_per_read; ++i) in += ", ?";
    prep(st->comments_in, "SELECT " + cols + " FROM {ks}.comments WHERE id IN (" + in + ")");
    prep(st->metrics_in, metrics_cols + " WHERE comment_id IN (" + in + ")");
    prep(st->metrics_meta_in, meta_cols + " WHERE comment_id IN (" + in + ")");
  }
  prep(st->metrics_add,
       "UPDATE {ks}.comment_metrics SET likes = likes + ?, dislikes = dislikes + ?, "
       "replies_count = replies_count + ? WHERE comment_id = ?");
  prep(st->metrics_meta_put,
       "UPDATE {ks}.comment_metrics_meta USING TIMESTAMP ? SET last_updated = ? WHERE comment_id = ?");
  prep(st->stats_get, "SELECT comments_count, reactions_count FROM {ks}.video_stats WHERE video_id = ?");
  prep(st->stats_meta_get, "SELECT last_updated FROM {ks}.video_stats_meta WHERE video_id = ?");
  prep(st->stats_add,
       "UPDATE {ks}.video_stats SET comments_count = comments_count + ?, reactions_count = reactions_count + ? "
       "WHERE video_id = ?");
  prep(st->stats_meta_put, "UPDATE {ks}.video_stats_meta USING TIMESTAMP ? SET last_updated = ? WHERE video_id = ?");
  prep(st->stats_started, "UPDATE {ks}.video_stats SET writes_started = writes_started + 1 WHERE video_id = ?");
  prep(st->metrics_started,
       "UPDATE {ks}.comment_metrics SET writes_started = writes_started + 1 WHERE comment_id = ?");
  prep(st->repair_mark,
       "INSERT INTO {ks}.count_repairs (shard, kind, key) VALUES (?, ?, ?) USING TTL " +
           std::to_string(kRepairMarkTtlSeconds) + " AND TIMESTAMP ?");
  prep(st->stats_done, "UPDATE {ks}.video_stats SET writes_done = writes_done + 1 WHERE video_id = ?");
  prep(st->metrics_done, "UPDATE {ks}.comment_metrics SET writes_done = writes_done + 1 WHERE comment_id = ?");
  prep(st->stats_add_done,
       "UPDATE {ks}.video_stats SET comments_count = comments_count + ?, reactions_count = reactions_count + ?, "
       "writes_done = writes_done + 1 WHERE video_id = ?");
  prep(st->metrics_add_done,
       "UPDATE {ks}.comment_metrics SET likes = likes + ?, dislikes = dislikes + ?, "
       "replies_count = replies_count + ?, writes_done = writes_done + 1 WHERE comment_id = ?");
  prep(st->user_view_get,
       "SELECT recent_until, comment_id FROM {ks}.user_hidden WHERE video_id = ? AND user_id = ? LIMIT 1");
  prep(st->hidden_put, "INSERT INTO {ks}.user_hidden (video_id, user_id, comment_id) VALUES (?, ?, ?)");
  prep(st->hidden_delete, "DELETE FROM {ks}.user_hidden WHERE video_id = ? AND user_id = ? AND comment_id = ?");
  prep(st->recent_put,
       "UPDATE {ks}.user_hidden USING TIMESTAMP ? SET recent_until = ? WHERE video_id = ? AND user_id = ?");
  prep(st->fold_hidden_put,
       "UPDATE {ks}.user_reactions SET hidden = true WHERE video_id = ? AND user_id = ? AND comment_id = ?");
  prep(st->fold_hidden_delete,
       "DELETE hidden FROM {ks}.user_reactions WHERE video_id = ? AND user_id = ? AND comment_id = ?");
  prep(st->fold_recent_put,
       "UPDATE {ks}.user_reactions USING TIMESTAMP ? SET recent_until = ? WHERE video_id = ? AND user_id = ? "
       "AND comment_id = " + std::string(kViewMarkRow));
  prep(st->user_rows_get,
       "SELECT comment_id, type, WRITETIME(type), hidden, recent_until FROM {ks}.user_reactions "
       "WHERE video_id = ? AND user_id = ? LIMIT 1000");
  if (keys_per_read > 1) {
    std::string in = "?";
    for (size_t i = 1; i < keys_per_read; ++i) in += ", ?";
    prep(st->user_rows_in,
         "SELECT user_id, comment_id, type, WRITETIME(type), hidden, recent_until FROM {ks}.user_reactions "
         "WHERE video_id = ? AND user_id IN (" + in + ") PER PARTITION LIMIT 1000");
  }
  prep(st->hidden_any,
       "SELECT comment_id FROM {ks}.user_reactions WHERE video_id = ? AND user_id = ? AND hidden = true "
       "LIMIT 1 ALLOW FILTERING");
  prep(st->fold_marker_get,
       "SELECT done FROM {ks}.backfill_progress WHERE job = '" + std::string(kFoldMarkerJob) + "' AND phase = '" +
           std::string(kFoldMarkerPhase) + "' AND range_id = 0");
  prep(st->user_reactions_get,
       "SELECT comment_id, type, WRITETIME(type) FROM {ks}.user_reactions WHERE video_id = ? AND user_id = ? "
       "LIMIT 1000");
  prep(st->user_reaction_put,
       "INSERT INTO {ks}.user_reactions (video_id, user_id, comment_id, type) VALUES (?, ?, ?, ?) USING TIMESTAMP ?");
  prep(st->register_get,
       "SELECT type, created_at, node_id, op_id FROM {ks}.reactions WHERE comment_id = ? AND user_id = ?");
  {
    std::string in = "?";
    for (size_t i = 1; i < kRegistersPerRead; ++i) in += ", ?";
    prep(st->register_get_in, "SELECT user_id, type, created_at, node_id, op_id FROM {ks}.reactions "
                              "WHERE comment_id = ? AND user_id IN (" + in + ")");
  }
  prep(st->register_types, "SELECT type FROM {ks}.reactions WHERE comment_id = ?");
  prep(st->register_put,
       "INSERT INTO {ks}.reactions (comment_id, user_id, type, created_at, node_id, op_id) "
       "VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?");
  prep(st->reaction_event_put,
       "INSERT INTO {ks}.reaction_events (comment_id, created_at, reaction_id, user_id, type, action) "
       "VALUES (?, ?, ?, ?, ?, ?)");
  prep(st->op_put,
       "INSERT INTO {ks}.reaction_ops (node_id, block, seq, op_id, comment_id, video_id, user_id, type, "
       "created_at, op_node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?");
  prep(st->ops_read,
       "SELECT seq, op_id, comment_id, video_id, user_id, type, created_at, op_node FROM {ks}.reaction_ops "
       "WHERE node_id = ? AND block = ? AND seq > ? AND seq <= ? LIMIT ?");
  prep(st->ops_trim_block, "DELETE FROM {ks}.reaction_ops WHERE node_id = ? AND block = ?");
  prep(st->ops_trim_upto, "DELETE FROM {ks}.reaction_ops WHERE node_id = ? AND block = ? AND seq <= ?");
  prep(st->outbox_put,
       "INSERT INTO {ks}.outbox_log (node_id, block, seq, topic, key, payload) VALUES (?, ?, ?, ?, ?, ?) "
       "USING TIMESTAMP ?");
  prep(st->outbox_read,
       "SELECT seq, topic, key, payload FROM {ks}.outbox_log "
       "WHERE node_id = ? AND block = ? AND seq > ? AND seq <= ? LIMIT ?");
  prep(st->outbox_trim_block, "DELETE FROM {ks}.outbox_log WHERE node_id = ? AND block = ?");
  prep(st->outbox_trim_upto, "DELETE FROM {ks}.outbox_log WHERE node_id = ? AND block = ? AND seq <= ?");
  prep(st->head_put, "INSERT INTO {ks}.log_heads (node_id, log, seq) VALUES (?, ?, ?) USING TIMESTAMP ?");
  prep(st->head_get, "SELECT seq FROM {ks}.log_heads WHERE node_id = ? AND log = ?");
  prep(st->consumer_get, "SELECT position FROM {ks}.consumer_positions WHERE name = ? AND shard = ?");
  prep(st->consumer_put, "UPDATE {ks}.consumer_positions SET position = ? WHERE name = ? AND shard = ?");
  prep(st->consumer_insert_if_new,
       "INSERT INTO {ks}.consumer_positions (name, shard, position) VALUES (?, ?, ?) IF NOT EXISTS");
  prep(st->consumer_update_if,
       "UPDATE {ks}.consumer_positions SET position = ? WHERE name = ? AND shard = ? IF position = ?");
  if (failed) return *failed;
  return st;
}

}  // namespace commentd::store::cql

// CqlStore's per-node logs: the reaction-op log and the outbox, with sequences owned by this
// node's log writer (one thread), and the consumer positions. Exact for ONE node writing its
// own logs; docs/cluster.md "The embedded logs on CQL" says what holds with several.
#include <spdlog/spdlog.h>

#include <pthread.h>

#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

using bridge::Rows;
using bridge::Value;

namespace {
constexpr size_t kMaxGroupEntries = 64;
constexpr size_t kMaxGroupBytes = 24 * 1024;  // under Cassandra's default 50 KiB batch limit

int64_t block_of(uint64_t seq) { return static_cast<int64_t>(seq / kLogBlock); }
}  // namespace

int64_t CqlStore::next_write_timestamp_us() {
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_ts_us_.load();
  int64_t next;
  do {
    next = std::max(now, last + 1);
  } while (!last_ts_us_.compare_exchange_weak(last, next));
  return next;
}

Status CqlStore::load_log_heads() {
  const Value node = Value::int32(static_cast<int32_t>(opts_.node_id));
  for (const char* log : {"ops", "outbox"}) {
    auto r = exec_blocking(*st_->head_get, {node, txt(log)}, read_opts({}));
    if (!r) return Error(r.error().code, "cql: reading the " + std::string(log) + " log head: " + r.error().message);
    uint64_t head = 0;
    if (r->size() > 0) {
      auto v = r->i64(0, 0);
      if (!v) return v.take_error();
      head = static_cast<uint64_t>(v->value_or(0));
    }
    if (std::string_view(log) == "ops") {
      next_op_seq_ = head + 1;
      last_op_seq_.store(head);
    } else {
      next_outbox_seq_ = head + 1;
      last_outbox_seq_.store(head);
    }
  }
  return ok_status();
}

void CqlStore::enqueue_log(LogAppend a) {
  {
    std::lock_guard lk(log_mu_);
    if (!log_stop_) {
      log_queue_.push_back(std::move(a));
      a.done = nullptr;
    }
  }
  if (a.done) return a.done(Error(Errc::unavailable, "storage is closing", "shutting_down"));
  log_cv_.notify_one();
}

void CqlStore::log_writer_loop() {
  pthread_setname_np(pthread_self(), "commentd-cqllog");
  for (;;) {
    std::vector<LogAppend> group;
    {
      std::unique_lock lk(log_mu_);
      log_cv_.wait(lk, [&] { return !log_queue_.empty() || log_stop_; });
      if (log_queue_.empty()) return;
      size_t entries = 0, bytes = 0;
      while (!log_queue_.empty()) {
        auto& a = log_queue_.front();
        size_t n = a.ops.size() + a.outbox.size(), b = a.ops.size() * 128;
        for (auto& o : a.outbox) b += o.topic.size() + o.key.size() + o.payload.size() + 64;
        if (!group.empty() && (entries + n > kMaxGroupEntries || bytes + b > kMaxGroupBytes)) break;
        entries += n;
        bytes += b;
        group.push_back(std::move(a));
        log_queue_.pop_front();
      }
    }
    const uint64_t op0 = next_op_seq_, ob0 = next_outbox_seq_;
    auto st = write_log_group(group, op0, ob0);
    if (!st) {
      // Nothing of the group is visible: its sequences are handed out again, and the rows a
      // failed batch may still have written are overwritten with a later timestamp.
      for (auto& a : group) a.done(st.error());
      continue;
    }
    uint64_t op = op0, ob = ob0;
    std::vector<CommitResult> results(group.size());
    for (size_t i = 0; i < group.size(); ++i) {
      for (size_t j = 0; j < group[i].ops.size(); ++j) results[i].op_seqs.push_back(op++);
      ob += group[i].outbox.size();
    }
    next_op_seq_ = op;
    next_outbox_seq_ = ob;
    last_op_seq_.store(op - 1);
    last_outbox_seq_.store(ob - 1);
    for (size_t i = 0; i < group.size(); ++i) group[i].done(std::move(results[i]));
  }
}

// One logged batch: every entry of the group and the new heads, all with one write
// timestamp above any earlier attempt's (all-or-nothing; a retry overwrites).
Status CqlStore::write_log_group(std::vector<LogAppend>& group, uint64_t op0, uint64_t ob0) {
  const int64_t at = next_write_timestamp_us();
  const Value node = Value::int32(static_cast<int32_t>(opts_.node_id));
  std::vector<bridge::BatchItem> items;
  uint64_t op = op0, ob = ob0;
  for (auto& a : group) {
    for (auto& o : a.ops) {
      const uint64_t seq = op++;
      items.push_back({st_->op_put.get(),
                       {node, big(block_of(seq)), big(static_cast<int64_t>(seq)), V(o.op_id), V(o.comment_id),
                        V(o.video_id), V(o.user_id), txt(to_string(o.type)), ts(o.timestamp),
                        Value::int32(static_cast<int32_t>(o.node_id)), big(at)}});
    }
    for (auto& o : a.outbox) {
      const uint64_t seq = ob++;
      items.push_back({st_->outbox_put.get(),
                       {node, big(block_of(seq)), big(static_cast<int64_t>(seq)), txt(o.topic), txt(o.key),
                        Value::blob(o.payload), big(at)}});
    }
  }
  if (op != op0) items.push_back({st_->head_put.get(), {node, txt("ops"), big(static_cast<int64_t>(op - 1)), big(at)}});
  if (ob != ob0) items.push_back({st_->head_put.get(), {node, txt("outbox"), big(static_cast<int64_t>(ob - 1)), big(at)}});
  if (auto no = breaker_refusal()) return *no;
  auto r = wait_on<Rows>(*pool_, [&](auto h) {
    session_->batch(bridge::BatchType::logged, std::move(items), write_opts(true), std::move(h));
  });
  breaker_note(r ? nullptr : &r.error(), opts_.cql.request_timeout);
  if (!r) return r.take_error();
  return ok_status();
}

Result<std::vector<ReactionOp>> CqlStore::read_ops(uint64_t after_seq, size_t max) {
  std::vector<ReactionOp> out;
  const uint64_t last = last_op_seq_.load();
  const Value node = Value::int32(static_cast<int32_t>(opts_.node_id));
  for (uint64_t from = after_seq; from < last && out.size() < max;) {
    const int64_t block = block_of(from + 1);
    const uint64_t block_end = std::min<uint64_t>(last, static_cast<uint64_t>(block + 1) * kLogBlock - 1);
    auto r = exec_blocking(*st_->ops_read,
                           {node, big(block), big(static_cast<int64_t>(from)), big(static_cast<int64_t>(block_end)),
                            Value::int32(static_cast<int32_t>(max - out.size()))},
                           read_opts({}));
    if (!r) return r.take_error();
    for (size_t i = 0; i < r->size(); ++i) {
      ReactionOp op;
      auto seq = r->i64(i, 0);
      auto id = r->uuid(i, 1), c = r->uuid(i, 2), v = r->uuid(i, 3), u = r->uuid(i, 4);
      auto type = r->bytes(i, 5);
      auto at = r->i64(i, 6), n = r->i64(i, 7);
      if (!seq || !*seq || !id || !*id || !c || !*c || !v || !*v || !u || !*u || !type || !*type || !at || !n)
        return Error(Errc::internal, "cql: corrupt reaction_ops row");
      op.seq = static_cast<uint64_t>(**seq);
      op.op_id = from_cql(**id);
      op.comment_id = from_cql(**c);
      op.video_id = from_cql(**v);
      op.user_id = from_cql(**u);
      op.type = reaction_from_text(**type);
      op.timestamp = at->value_or(0);
      op.node_id = static_cast<uint32_t>(n->value_or(0));
      out.push_back(op);
    }
    from = block_end;
  }
  return out;
}

Result<std::vector<OutboxEntry>> CqlStore::read_outbox_entries(uint64_t after_seq, size_t max) {
  std::vector<OutboxEntry> out;
  const uint64_t last = last_outbox_seq_.load();
  const Value node = Value::int32(static_cast<int32_t>(opts_.node_id));
  for (uint64_t from = after_seq; from < last && out.size() < max;) {
    const int64_t block = block_of(from + 1);
    const uint64_t block_end = std::min<uint64_t>(last, static_cast<uint64_t>(block + 1) * kLogBlock - 1);
    auto r = exec_blocking(*st_->outbox_read,
                           {node, big(block), big(static_cast<int64_t>(from)), big(static_cast<int64_t>(block_end)),
                            Value::int32(static_cast<int32_t>(max - out.size()))},
                           read_opts({}));
    if (!r) return r.take_error();
    for (size_t i = 0; i < r->size(); ++i) {
      auto seq = r->i64(i, 0);
      auto topic = r->bytes(i, 1), key = r->bytes(i, 2), payload = r->bytes(i, 3);
      if (!seq || !*seq || !topic || !*topic || !key || !*key || !payload || !*payload)
        return Error(Errc::internal, "cql: corrupt outbox_log row");
      out.push_back(OutboxEntry{static_cast<uint64_t>(**seq), std::string(**topic), std::string(**key),
                                std::string(**payload)});
    }
    from = block_end;
  }
  return out;
}

Result<uint64_t> CqlStore::consumer_pos(const std::string& consumer) {
  auto r = exec_blocking(*st_->consumer_get, {txt(consumer), Value::int32(static_cast<int32_t>(opts_.node_id))},
                         read_opts({}));
  if (!r) return r.take_error();
  if (r->size() == 0) return uint64_t{0};
  auto v = r->i64(0, 0);
  if (!v) return v.take_error();
  return static_cast<uint64_t>(v->value_or(0));
}

// Whole blocks below the new floor go as partition deletes, the floor's block as one range
// delete. Sequences only grow, so nothing trimmed is written again.
Status CqlStore::trim_logs(uint64_t op_seq_upto, uint64_t outbox_delivered_upto, uint64_t outbox_keep) {
  std::lock_guard lk(trim_mu_);
  const Value node = Value::int32(static_cast<int32_t>(opts_.node_id));
  auto trim = [&](uint64_t upto, int64_t& trimmed_block, const bridge::PreparedPtr& whole,
                  const bridge::PreparedPtr& range) -> Status {
    if (upto == 0) return ok_status();
    const int64_t floor = block_of(upto);
    std::vector<Call> calls;
    for (int64_t b = trimmed_block; b < floor; ++b) calls.push_back(Call{whole.get(), {node, big(b)}, write_opts(true)});
    calls.push_back(Call{range.get(), {node, big(floor), big(static_cast<int64_t>(upto))}, write_opts(true)});
    auto r = exec_all_blocking(std::move(calls));
    if (!r) return r.take_error();
    trimmed_block = floor;
    return ok_status();
  };
  auto s = trim(std::min(op_seq_upto, last_op_seq_.load()), op_trimmed_block_, st_->ops_trim_block, st_->ops_trim_upto);
  if (!s) return s;
  const uint64_t last = last_outbox_seq_.load();
  const uint64_t upto = std::min(outbox_delivered_upto, last > outbox_keep ? last - outbox_keep : 0);
  return trim(upto, outbox_trimmed_block_, st_->outbox_trim_block, st_->outbox_trim_upto);
}

}  // namespace commentd::store::cql

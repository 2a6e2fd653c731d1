// The write side of RocksStore: the writer thread and its group commit, the applier's
// commit_owned, log retention. See rocks_store.h for the contract.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "store/rocks/codec.h"
#include "store/rocks/internal.h"
#include "store/rocks/rocks_store.h"

namespace commentd::store::rocks {

using namespace internal;

// --------------------------------------------------------------------------------- writes

// Log keys only grow, so a range below the newest entry is never written again: the
// DeleteRange needs no coordination with the writer thread. The outbox is trimmed only up to
// the relay's delivered position: an undelivered event is never dropped.
Status RocksStore::trim_logs(uint64_t op_seq_upto, uint64_t outbox_delivered_upto, uint64_t outbox_keep) {
  auto range = [&](Cf c, uint64_t end_exclusive) -> Status {
    if (end_exclusive <= 1) return ok_status();
    std::string b, e;
    put_u64be(b, 0);
    put_u64be(e, end_exclusive);
    rocksdb::WriteBatch wb;
    wb.DeleteRange(cf(c), b, e);
    auto st = write(rocksdb::WriteOptions(), &wb);
    if (!st.ok()) return storage_error(st);
    return ok_status();
  };
  auto s = range(kReactionOps, std::min(op_seq_upto, last_op_seq_.load()) + 1);
  if (!s) return s;
  uint64_t last = last_outbox_seq_.load();
  uint64_t upto = std::min(outbox_delivered_upto, last > outbox_keep ? last - outbox_keep : 0);
  return range(kOutbox, upto + 1);
}

void RocksStore::commit(WriteSet ws, CommitCallback done) {
  std::optional<Error> refused;
  {
    std::lock_guard lk(mu_);
    if (closing_) {
      refused = Error(Errc::unavailable, "storage is closing", "shutting_down");
    } else if (queue_.size() >= opts_.write_queue_capacity) {
      refused = Error(Errc::overloaded, "write queue is full", "write_queue_full", 1);
    } else {
      queue_.push_back({std::move(ws), std::move(done), std::chrono::steady_clock::now()});
    }
  }
  if (refused) {
    stats_.refused.fetch_add(1, std::memory_order_relaxed);
    done(std::move(*refused));  // answered outside the lock
    return;
  }
  cv_.notify_one();
}

Status RocksStore::commit_owned(WriteSet ws) {
  for (auto& m : ws.mutations)
    if (std::holds_alternative<AppendReactionOp>(m) || std::holds_alternative<AppendOutbox>(m))
      return Error(Errc::internal, "commit_owned cannot append to a log");
  {
    std::lock_guard lk(mu_);
    if (closing_) return Error(Errc::unavailable, "storage is closing", "shutting_down");
  }
  for (auto& pre : ws.preconditions) {
    std::string v;
    rocksdb::Status st;
    uint64_t have = 0, want = 0;
    std::string what;
    if (auto* c = std::get_if<CommentAt>(&pre)) {
      st = db_->Get(rocksdb::ReadOptions(), cf(kComments), uuid_key(c->id), &v);
      if (st.ok()) {
        auto cmt = decode_comment(c->id, v);
        have = cmt ? cmt->version : 0;
      }
      want = c->version;
      what = "comment " + c->id.str();
    } else if (auto* k = std::get_if<ConsumerAt>(&pre)) {
      st = db_->Get(rocksdb::ReadOptions(), cf(kDefault), kConsumerPrefix + k->consumer, &v);
      have = st.ok() && v.size() == 8 ? get_u64be(v) : 0;
      want = k->seq;
      what = "consumer " + k->consumer;
    }
    if (!st.ok() && !st.IsNotFound()) return storage_error(st);
    if (have != want) {
      stats_.conflicts.fetch_add(1, std::memory_order_relaxed);
      return Error(Errc::conflict, what + " changed concurrently", "conflict");
    }
  }
  rocksdb::WriteBatch wb;
  CommitResult cr;
  Touched touched;
  encode(ws, wb, cr, nullptr, touched);
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  const auto reactions = begin_rows(touched);
  auto st = write(wo, &wb);
  end_rows(touched, reactions, st.ok());  // also after a failed write: it may have partly landed
  if (!st.ok()) return storage_error(st);
  return ok_status();
}

rocksdb::Status RocksStore::arm_wal_recovery() {
  const uint64_t want = health_->memtable_epoch() + 1;
  if (armed_epoch_.load(std::memory_order_acquire) == want) return rocksdb::Status::OK();
  std::lock_guard lk(arm_mu_);
  if (armed_epoch_.load(std::memory_order_acquire) == want) return rocksdb::Status::OK();
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // never touches the WAL writer, so it cannot be the failed append
  auto st = db_->Put(wo, cf(kDefault), kWalArmKey, "");
  // An epoch that moved meanwhile leaves want stale: the next write arms again.
  if (st.ok()) armed_epoch_.store(want, std::memory_order_release);
  return st;
}

rocksdb::Status RocksStore::write(rocksdb::WriteOptions wo, rocksdb::WriteBatch* wb) {
#if defined(__SANITIZE_THREAD__)
  // Under TSan only: one db write at a time. Concurrent writers (the writer thread, the
  // appliers' commit_owned, the local bus) join a RocksDB write group whose leader copies the
  // followers' batches and hands them back through atomics inside Debian's uninstrumented
  // static librocksdb, which TSan cannot see: it then reports the leader's copy of another
  // thread's batch as a race in our caller. Serializing here gives TSan the ordering and keeps
  // every caller of ours checked; release builds keep RocksDB's group commit.
  std::lock_guard lk(tsan_write_mu_);  // arm_wal_recovery's marker write included
#endif
  auto st = arm_wal_recovery();
  if (!st.ok()) return st;
  return db_->Write(wo, wb);
}

void RocksStore::close() {
  {
    std::lock_guard lk(mu_);
    if (closing_) return;
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  // Makes unsynced writes (sync_writes off, log trims) durable. Not after a background
  // error: the WAL writer may hold a failed write, and syncing it again trips an assertion
  // in RocksDB's WritableFileWriter (on in Debian's build). A WAL write error always sets
  // the background error (paranoid_checks), and no write runs any more here.
  if (db_ && !degraded()) {
    auto st = db_->FlushWAL(true);
    if (!st.ok()) spdlog::warn("storage: WAL sync at close failed: {}", st.ToString());
  }
}

void RocksStore::writer_loop() {
  pthread_setname_np(pthread_self(), "commentd-writer");
  std::vector<Pending> group;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return !queue_.empty() || closing_; });
      if (queue_.empty() && closing_) return;
      size_t n = std::min(queue_.size(), opts_.max_group_commit);
      group.clear();
      for (size_t i = 0; i < n; ++i) {
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    apply_group(group);
  }
}

// Adds `ws`'s mutations to `wb`. Log appends take their sequence from the writer's
// counters: REQUIRES the writer thread, or a WriteSet without appends.
// `written` records the comment rows and consumer positions this batch now holds.
void RocksStore::encode(WriteSet& ws, rocksdb::WriteBatch& wb, CommitResult& cr,
                        std::unordered_map<std::string, std::string>* written, Touched& touched) {
  for (auto& m : ws.mutations) {
    std::visit(
        [&](auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, PutComment>) {
            std::string k = uuid_key(x.comment.id), v = encode_comment(x.comment);
            wb.Put(cf(kComments), k, v);
            touched.comments.push_back(x.comment.id);
            if (written) (*written)[std::move(k)] = std::move(v);
          } else if constexpr (std::is_same_v<T, IndexPut>) {
            wb.Put(cf(x.index == Index::video ? kCommentsByVideo : kReplies),
                   index_key(uuid_key(x.key), x.created_at, x.id), "");
          } else if constexpr (std::is_same_v<T, IndexDelete>) {
            wb.Delete(cf(x.index == Index::video ? kCommentsByVideo : kReplies),
                      index_key(uuid_key(x.key), x.created_at, x.id));
          } else if constexpr (std::is_same_v<T, BucketPut>) {
            wb.Put(cf(kBucketed), index_key(bucket_partition(x.video_id, x.bucket), x.created_at, x.id), "");
          } else if constexpr (std::is_same_v<T, HiddenMark>) {
            int64_t d[kHiddenSlots] = {x.set ? 1 : -1, 0};
            wb.Merge(cf(kHiddenByUser), pair_key(x.video_id, x.user_id), encode_counters(d, kHiddenSlots));
            touched.views.emplace_back(x.video_id, x.user_id);
          } else if constexpr (std::is_same_v<T, MetricsDelta>) {
            int64_t s[kMetricsSlots] = {x.likes, x.dislikes, x.replies, x.at};
            wb.Merge(cf(kCommentMetrics), uuid_key(x.comment_id), encode_counters(s, kMetricsSlots));
          } else if constexpr (std::is_same_v<T, StatsDelta>) {
            int64_t s[kStatsSlots] = {x.comments, x.reactions, x.at};
            wb.Merge(cf(kVideoStats), uuid_key(x.video_id), encode_counters(s, kStatsSlots));
          } else if constexpr (std::is_same_v<T, PutReaction>) {
            wb.Put(cf(kReactions), pair_key(x.comment_id, x.user_id), encode_reaction_row(x.row));
            touched.reactions.push_back({{x.video_id, x.user_id}, x.comment_id, x.row.type});
            std::string k = pair_key(x.video_id, x.user_id);
            put_uuid(k, x.comment_id);
            if (x.row.type == ReactionType::none) wb.Delete(cf(kUserReactions), k);
            else wb.Put(cf(kUserReactions), k, std::string(1, static_cast<char>(x.row.type)));
          } else if constexpr (std::is_same_v<T, PutReactionEvent>) {
            std::string v;
            put_uuid(v, x.user_id);
            v.push_back(static_cast<char>(x.type));
            v.push_back(x.add ? 1 : 0);
            wb.Put(cf(kReactionEvents), index_key(uuid_key(x.comment_id), x.at, x.reaction_id), v);
          } else if constexpr (std::is_same_v<T, AppendReactionOp>) {
            std::string k;
            put_u64be(k, next_op_seq_);
            wb.Put(cf(kReactionOps), k, encode_op(x.op));
            cr.op_seqs.push_back(next_op_seq_++);
          } else if constexpr (std::is_same_v<T, AppendOutbox>) {
            std::string k, v;
            put_u64be(k, next_outbox_seq_++);
            put_u64be(v, x.topic.size());
            v += x.topic;
            put_u64be(v, x.key.size());
            v += x.key;
            v += x.payload;
            wb.Put(cf(kOutbox), k, v);
          } else if constexpr (std::is_same_v<T, RecentWrite>) {
            int64_t d[kHiddenSlots] = {0, x.until};
            wb.Merge(cf(kHiddenByUser), pair_key(x.video_id, x.user_id), encode_counters(d, kHiddenSlots));
            touched.views.emplace_back(x.video_id, x.user_id);
          } else if constexpr (std::is_same_v<T, UserReactionPut>) {
            touched.reactions.push_back({{x.video_id, x.user_id}, x.comment_id, x.type});
            std::string k = pair_key(x.video_id, x.user_id);
            put_uuid(k, x.comment_id);
            if (x.type == ReactionType::none) wb.Delete(cf(kUserReactions), k);
            else wb.Put(cf(kUserReactions), k, std::string(1, static_cast<char>(x.type)));
          } else if constexpr (std::is_same_v<T, SetConsumerPos>) {
            std::string v;
            put_u64be(v, x.seq);
            wb.Put(cf(kDefault), kConsumerPrefix + x.consumer, v);
            if (written) (*written)[kConsumerPrefix + x.consumer] = std::move(v);
          }
        },
        m);
  }
}

RocksStore::ReactionWrites RocksStore::begin_rows(const Touched& touched) {
  ReactionWrites out;
  std::unordered_map<std::pair<Uuid, Uuid>, size_t, UuidPairHash> at;
  for (auto& r : touched.reactions) {
    auto [it, fresh] = at.try_emplace(r.key, out.size());
    if (fresh) {
      out.push_back({r.key, {}});
      rows_->reactions.begin_write(r.key);
    }
    out[it->second].second.push_back(&r);
  }
  return out;
}

void RocksStore::end_rows(const Touched& touched, const ReactionWrites& reactions, bool written) {
  for (auto& id : touched.comments) rows_->comments.invalidate(id);
  for (auto& k : touched.views) rows_->views.invalidate(k);
  for (auto& [key, writes] : reactions) {
    if (!written) {
      rows_->reactions.end_write(key, nullptr);
      continue;
    }
    // Each write is a "set" of one register in the user's list: idempotent, and right on the
    // list as it was just before the batch or just after it (row_cache.h). A list that would
    // pass the cached bound is dropped (the read path does not cache it either).
    rows_->reactions.end_write(key, [&writes](UserReactions& list) {
      for (const Touched::Reaction* r : writes) {
        auto it = std::find_if(list.begin(), list.end(), [r](auto& e) { return e.first == r->comment_id; });
        if (r->type == ReactionType::none) {
          if (it != list.end()) list.erase(it);
        } else if (it != list.end()) {
          it->second = r->type;
        } else {
          if (list.size() >= kMaxCachedReactions) return false;
          list.emplace_back(r->comment_id, r->type);
        }
      }
      return true;
    });
  }
}

void RocksStore::apply_group(std::vector<Pending>& group) {
  // Preconditions read comment rows and consumer positions: from this group's own earlier
  // writes first (`written`), then from the database. Every precondition of a WriteSet is
  // checked before any of its mutations is added, so a refused WriteSet adds nothing and
  // needs no rollback; a plain WriteBatch suffices.
  rocksdb::WriteBatch wb;
  std::unordered_map<std::string, std::string> written;  // comment / consumer keys -> value
  auto read = [&](Cf c, const std::string& key, std::string* v) -> rocksdb::Status {
    auto it = written.find(key);
    if (it != written.end()) {
      *v = it->second;
      return rocksdb::Status::OK();
    }
    return db_->Get(rocksdb::ReadOptions(), cf(c), key, v);
  };
  std::vector<Result<CommitResult>> results;
  results.reserve(group.size());
  Touched touched;
  const uint64_t op_seq0 = next_op_seq_, outbox_seq0 = next_outbox_seq_;

  for (auto& p : group) {
    std::optional<Error> failed;
    for (auto& pre : p.ws.preconditions) {
      std::string v;
      rocksdb::Status st;
      if (auto* c = std::get_if<CommentAt>(&pre)) {
        st = read(kComments, uuid_key(c->id), &v);
        uint64_t have = 0;
        if (st.ok()) {
          auto cmt = decode_comment(c->id, v);
          have = cmt ? cmt->version : 0;
        }
        if (!st.ok() && !st.IsNotFound()) failed = storage_error(st);
        else if (have != c->version)
          failed = Error(Errc::conflict, "comment " + c->id.str() + " changed concurrently", "conflict");
      } else if (auto* k = std::get_if<ConsumerAt>(&pre)) {
        st = read(kDefault, kConsumerPrefix + k->consumer, &v);
        uint64_t have = st.ok() && v.size() == 8 ? get_u64be(v) : 0;
        if (!st.ok() && !st.IsNotFound()) failed = storage_error(st);
        else if (have != k->seq)
          failed = Error(Errc::conflict, "consumer " + k->consumer + " moved", "conflict");
      }
      if (failed) break;
    }
    if (failed) {
      if (failed->code == Errc::conflict) stats_.conflicts.fetch_add(1, std::memory_order_relaxed);
      results.emplace_back(std::move(*failed));
      continue;
    }

    CommitResult cr;
    encode(p.ws, wb, cr, &written, touched);
    results.emplace_back(std::move(cr));
  }

  if (next_op_seq_ != op_seq0) {
    std::string v;
    put_u64be(v, next_op_seq_ - 1);
    wb.Put(cf(kDefault), kOpSeqKey, v);
  }
  if (next_outbox_seq_ != outbox_seq0) {
    std::string v;
    put_u64be(v, next_outbox_seq_ - 1);
    wb.Put(cf(kDefault), kOutboxSeqKey, v);
  }
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  const auto reactions = begin_rows(touched);
  auto st = write(wo, &wb);
  // Before any WriteSet is acknowledged (row_cache.h); also after a failed write, which may
  // have reached the memtable.
  end_rows(touched, reactions, st.ok());
  if (!st.ok()) {
    next_op_seq_ = op_seq0;
    next_outbox_seq_ = outbox_seq0;
    for (auto& r : results)
      if (r.ok()) r = Result<CommitResult>(storage_error(st));
  } else {
    last_op_seq_.store(next_op_seq_ - 1);
    last_outbox_seq_.store(next_outbox_seq_ - 1);
  }
  auto now = std::chrono::steady_clock::now();
  stats_.group_size.observe(static_cast<double>(group.size()));
  for (size_t i = 0; i < group.size(); ++i) {
    stats_.commit_seconds.observe(std::chrono::duration<double>(now - group[i].queued).count());
    group[i].done(std::move(results[i]));
  }
}

}  // namespace commentd::store::rocks

#include "store/rocks/rocks_store.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <pthread.h>

#include <filesystem>
#include <unordered_map>

#include "store/rocks/codec.h"

namespace commentd::store::rocks {
namespace {

const char* const kCfNames[kCfCount] = {
    "default",        "comments",        "comments_by_video", "replies",
    "comments_by_video_bucketed",        "reactions",         "comment_metrics",
    "video_stats",    "reaction_events", "reaction_ops",      "outbox",
    "hidden_by_user", "user_reactions_by_video"};

// Adds every slot but the last, which keeps the max (last_updated).
class CounterMerge final : public rocksdb::AssociativeMergeOperator {
 public:
  explicit CounterMerge(size_t slots) : slots_(slots) {}
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    int64_t a[8] = {}, b[8] = {};
    if (existing) decode_counters(std::string_view(existing->data(), existing->size()), a, slots_);
    decode_counters(std::string_view(value.data(), value.size()), b, slots_);
    for (size_t i = 0; i + 1 < slots_; ++i) a[i] += b[i];
    a[slots_ - 1] = std::max(a[slots_ - 1], b[slots_ - 1]);
    *new_value = encode_counters(a, slots_);
    return true;
  }
  const char* Name() const override { return slots_ == kMetricsSlots ? "commentd.metrics" : "commentd.stats"; }

 private:
  size_t slots_;
};

std::string_view sv(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

Error storage_error(const rocksdb::Status& s) {
  return Error(Errc::internal, "storage: " + s.ToString(), "storage_error");
}

Error would_block() { return Error(Errc::would_block, "read needs I/O"); }

// Turns a read status into a Result error; NotFound is not an error here.
std::optional<Error> read_error(const rocksdb::Status& s) {
  if (s.ok() || s.IsNotFound()) return std::nullopt;
  if (s.IsIncomplete()) return would_block();
  return storage_error(s);
}

CommentMetrics metrics_from(std::string_view v) {
  int64_t s[kMetricsSlots];
  decode_counters(v, s, kMetricsSlots);
  return {s[0], s[1], s[2], s[3]};
}

VideoStats stats_from(std::string_view v) {
  int64_t s[kStatsSlots];
  decode_counters(v, s, kStatsSlots);
  return {s[0], s[1], s[2]};
}

std::string index_partition(Index index, const Uuid& key) {
  (void)index;
  return uuid_key(key);
}

const std::string kConsumerPrefix = "consumer/";
constexpr size_t kHiddenSlots = 2;  // count, (unused max slot)
// A page's reactions come from one prefix scan of the user's reactions in the video; a user
// with more than this many there is answered by point reads instead.
constexpr size_t kMaxReactionScan = 64;
// The last sequence handed out per log, written with every group that appends: a trimmed
// (even empty) log still resumes after it, so a sequence is never reused.
const std::string kOpSeqKey = "seq/reaction_ops";
const std::string kOutboxSeqKey = "seq/outbox";

}  // namespace

Result<std::unique_ptr<RocksStore>> RocksStore::open(const RocksOptions& opts) {
  std::error_code ec;
  std::filesystem::create_directories(opts.data_dir, ec);
  if (ec) return Error(Errc::internal, "cannot create data dir " + opts.data_dir + ": " + ec.message());

  std::unique_ptr<RocksStore> s(new RocksStore());
  s->opts_ = opts;

  rocksdb::Options db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.IncreaseParallelism(2);
  db_opts.max_background_jobs = 2;
  // Two threads write: ours for requests, and the reaction applier's commit_owned(); their
  // memtable inserts may run in parallel.
  db_opts.allow_concurrent_memtable_write = true;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts.block_cache_mb << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (size_t i = 0; i < kCfCount; ++i) {
    rocksdb::ColumnFamilyOptions cfo;
    cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    cfo.write_buffer_size = 32 << 20;
    if (i == kCommentMetrics) cfo.merge_operator = std::make_shared<CounterMerge>(kMetricsSlots);
    if (i == kVideoStats) cfo.merge_operator = std::make_shared<CounterMerge>(kStatsSlots);
    if (i == kHiddenByUser) cfo.merge_operator = std::make_shared<CounterMerge>(kHiddenSlots);
    // The logs are short-lived (trimmed once applied): not worth compressing. (Memtable
    // insert hints for these sequential keys tripped an assertion inside RocksDB 7.8's
    // skiplist in our tests; left off.)
    if (i == kReactionOps || i == kOutbox) cfo.compression = rocksdb::kNoCompression;
    cfs.emplace_back(kCfNames[i], cfo);
  }
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(db_opts, opts.data_dir, cfs, &s->handles_, &raw);
  if (!st.ok()) return Error(Errc::internal, "cannot open RocksDB at " + opts.data_dir + ": " + st.ToString());
  s->db_.reset(raw);

  // Resume the log sequences after the last entry written.
  auto last_key = [&](Cf c) -> uint64_t {
    std::unique_ptr<rocksdb::Iterator> it(s->db_->NewIterator({}, s->cf(c)));
    it->SeekToLast();
    return it->Valid() && it->key().size() == 8 ? get_u64be(sv(it->key())) : 0;
  };
  auto meta_seq = [&](const std::string& k) -> uint64_t {
    std::string v;
    return s->db_->Get({}, s->cf(kDefault), k, &v).ok() && v.size() == 8 ? get_u64be(v) : 0;
  };
  s->next_op_seq_ = std::max(last_key(kReactionOps), meta_seq(kOpSeqKey)) + 1;
  s->next_outbox_seq_ = std::max(last_key(kOutbox), meta_seq(kOutboxSeqKey)) + 1;
  s->last_op_seq_ = s->next_op_seq_ - 1;
  s->last_outbox_seq_ = s->next_outbox_seq_ - 1;
  s->writer_ = std::thread([p = s.get()] { p->writer_loop(); });
  return s;
}

RocksStore::~RocksStore() {
  close();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  if (db_) db_->Close();
}

bool RocksStore::ready() const {
  std::lock_guard lk(mu_);
  return db_ && !closing_;
}

size_t RocksStore::queue_depth() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

uint64_t RocksStore::last_op_seq() const { return last_op_seq_.load(); }

rocksdb::ReadOptions RocksStore::read_options(ReadMode m, const rocksdb::Snapshot* snap) const {
  rocksdb::ReadOptions ro;
  if (!m.may_block) ro.read_tier = rocksdb::kBlockCacheTier;
  ro.snapshot = snap;
  return ro;
}

// ---------------------------------------------------------------------------------- reads

Result<std::optional<Comment>> RocksStore::get_comment(const Uuid& id, ReadMode m) {
  std::string v;
  auto st = db_->Get(read_options(m), cf(kComments), uuid_key(id), &v);
  if (auto e = read_error(st)) return *e;
  if (st.IsNotFound()) return std::optional<Comment>();
  auto c = decode_comment(id, v);
  if (!c) return Error(Errc::internal, "corrupt comment row " + id.str());
  return std::optional<Comment>(std::move(*c));
}

Result<ScanResult> RocksStore::scan(const ScanRequest& req, ReadMode m) {
  Cf c = req.index == Index::video ? kCommentsByVideo : kReplies;
  std::string lower = index_partition(req.index, req.key);
  std::string upper = lower + std::string(25, '\xff');
  rocksdb::Slice lo(lower), up(upper);
  auto ro = read_options(m);
  ro.iterate_lower_bound = &lo;
  ro.iterate_upper_bound = &up;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(c)));

  const bool forward = req.sort == SortOrder::newest;  // key order is created_at DESC
  if (req.after) {
    std::string k = index_key(lower, req.after->created_at, req.after->id);
    if (forward) {
      it->Seek(k);
      if (it->Valid() && sv(it->key()) == k) it->Next();
    } else {
      it->SeekForPrev(k);
      if (it->Valid() && sv(it->key()) == k) it->Prev();
    }
  } else if (forward) {
    it->SeekToFirst();
  } else {
    it->SeekToLast();
  }

  ScanResult out;
  std::vector<Uuid> ids;
  std::vector<std::string> keys;
  while (it->Valid() && ids.size() < req.max_rows) {
    auto pos = parse_index_suffix(sv(it->key()));
    ids.push_back(pos.id);
    out.last = CursorPos{pos.created_at, pos.id};
    forward ? it->Next() : it->Prev();
  }
  if (auto e = read_error(it->status())) return *e;
  out.exhausted = !it->Valid();

  // Join with `comments` in one MultiGet.
  std::vector<rocksdb::Slice> kslices;
  keys.reserve(ids.size());
  for (auto& id : ids) keys.push_back(uuid_key(id));
  for (auto& k : keys) kslices.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> vals(ids.size());
  std::vector<rocksdb::Status> sts(ids.size());
  if (!ids.empty())
    db_->MultiGet(ro, cf(kComments), ids.size(), kslices.data(), vals.data(), sts.data());
  out.rows.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (auto e = read_error(sts[i])) return *e;
    if (sts[i].IsNotFound()) continue;  // index entry without its row: skipped
    auto cmt = decode_comment(ids[i], sv(vals[i]));
    if (!cmt) return Error(Errc::internal, "corrupt comment row " + ids[i].str());
    out.rows.push_back(std::move(*cmt));
  }
  return out;
}

Result<bool> RocksStore::has_entries(Index index, const Uuid& key, ReadMode m) {
  Cf c = index == Index::video ? kCommentsByVideo : kReplies;
  std::string lower = index_partition(index, key);
  std::string upper = lower + std::string(25, '\xff');
  rocksdb::Slice up(upper);
  auto ro = read_options(m);
  ro.iterate_upper_bound = &up;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(c)));
  it->Seek(lower);
  if (auto e = read_error(it->status())) return *e;
  return it->Valid();
}

Result<std::vector<CommentMetrics>> RocksStore::get_metrics(const std::vector<Uuid>& ids,
                                                            ReadMode m) {
  std::vector<std::string> keys;
  std::vector<rocksdb::Slice> ks;
  keys.reserve(ids.size());
  for (auto& id : ids) keys.push_back(uuid_key(id));
  for (auto& k : keys) ks.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> vals(ids.size());
  std::vector<rocksdb::Status> sts(ids.size());
  if (!ids.empty())
    db_->MultiGet(read_options(m), cf(kCommentMetrics), ids.size(), ks.data(), vals.data(),
                  sts.data());
  std::vector<CommentMetrics> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (auto e = read_error(sts[i])) return *e;
    if (sts[i].ok()) out[i] = metrics_from(sv(vals[i]));
  }
  return out;
}

Result<VideoStats> RocksStore::get_video_stats(const Uuid& video_id, ReadMode m) {
  std::string v;
  auto st = db_->Get(read_options(m), cf(kVideoStats), uuid_key(video_id), &v);
  if (auto e = read_error(st)) return *e;
  return st.ok() ? stats_from(v) : VideoStats{};
}

namespace {
Result<std::vector<ReactionRow>> multi_get_rows(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                                rocksdb::ColumnFamilyHandle* cf,
                                                const std::vector<std::string>& keys) {
  std::vector<rocksdb::Slice> ks(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> vals(keys.size());
  std::vector<rocksdb::Status> sts(keys.size());
  if (!keys.empty()) db->MultiGet(ro, cf, keys.size(), ks.data(), vals.data(), sts.data());
  std::vector<ReactionRow> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto e = read_error(sts[i])) return *e;
    if (sts[i].ok()) {
      auto row = decode_reaction_row(sv(vals[i]));
      if (!row) return Error(Errc::internal, "corrupt reaction row");
      out[i] = *row;
    }
  }
  return out;
}
}  // namespace

Result<std::vector<ReactionType>> RocksStore::get_reactions(const Uuid& video_id,
                                                            const Uuid& user_id,
                                                            const std::vector<Uuid>& comment_ids,
                                                            ReadMode m) {
  std::vector<ReactionType> out(comment_ids.size(), ReactionType::none);
  if (comment_ids.empty()) return out;
  std::string prefix = pair_key(video_id, user_id);
  std::string upper = prefix + std::string(17, '\xff');
  rocksdb::Slice up(upper);
  auto ro = read_options(m);
  ro.iterate_upper_bound = &up;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kUserReactions)));
  std::vector<std::pair<Uuid, ReactionType>> found;
  for (it->Seek(prefix); it->Valid() && found.size() <= kMaxReactionScan; it->Next()) {
    if (it->key().size() != 48 || it->value().size() != 1) continue;
    found.emplace_back(get_uuid(sv(it->key()).substr(32)), static_cast<ReactionType>(it->value()[0]));
  }
  if (auto e = read_error(it->status())) return *e;
  if (found.size() <= kMaxReactionScan) {
    for (size_t i = 0; i < comment_ids.size(); ++i)
      for (auto& [cid, t] : found)
        if (cid == comment_ids[i]) out[i] = t;
    return out;
  }
  // A prolific user: point reads of just this page's registers.
  std::vector<std::string> keys;
  keys.reserve(comment_ids.size());
  for (auto& c : comment_ids) keys.push_back(pair_key(c, user_id));
  auto rows = multi_get_rows(db_.get(), ro, cf(kReactions), keys);
  if (!rows) return rows.take_error();
  for (size_t i = 0; i < out.size(); ++i) out[i] = (*rows)[i].type;
  return out;
}

Result<std::vector<ReactionRow>> RocksStore::get_registers(
    const std::vector<std::pair<Uuid, Uuid>>& comment_user) {
  std::vector<std::string> keys;
  keys.reserve(comment_user.size());
  for (auto& [c, u] : comment_user) keys.push_back(pair_key(c, u));
  return multi_get_rows(db_.get(), {}, cf(kReactions), keys);
}

Result<bool> RocksStore::has_hidden(const Uuid& video_id, const Uuid& user_id, ReadMode m) {
  // A point read: for the usual user with nothing hidden, the bloom filter answers.
  std::string v;
  auto st = db_->Get(read_options(m), cf(kHiddenByUser), pair_key(video_id, user_id), &v);
  if (auto e = read_error(st)) return *e;
  if (!st.ok()) return false;
  int64_t slots[kHiddenSlots];
  decode_counters(v, slots, kHiddenSlots);
  return slots[0] > 0;
}

Result<std::optional<Store::CommentRecount>> RocksStore::recount_comment(const Uuid& id) {
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db; const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_.get(), snap};
  auto ro = read_options({}, snap);

  std::string v;
  auto st = db_->Get(ro, cf(kComments), uuid_key(id), &v);
  if (auto e = read_error(st)) return *e;
  if (st.IsNotFound()) return std::optional<CommentRecount>();
  auto cmt = decode_comment(id, v);
  if (!cmt) return Error(Errc::internal, "corrupt comment row " + id.str());

  CommentRecount r;
  r.video_id = cmt->video_id;
  st = db_->Get(ro, cf(kCommentMetrics), uuid_key(id), &v);
  if (auto e = read_error(st)) return *e;
  if (st.ok()) r.stored = metrics_from(v);

  std::string prefix = uuid_key(id);
  std::string upper = prefix + std::string(17, '\xff');
  rocksdb::Slice up(upper);
  auto ro_it = ro;
  ro_it.iterate_upper_bound = &up;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_it, cf(kReactions)));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      auto row = decode_reaction_row(sv(it->value()));
      if (!row) return Error(Errc::internal, "corrupt reaction row");
      if (row->type == ReactionType::like) ++r.truth.likes;
      if (row->type == ReactionType::dislike) ++r.truth.dislikes;
    }
    if (auto e = read_error(it->status())) return *e;
  }
  {
    std::string rupper = prefix + std::string(25, '\xff');
    rocksdb::Slice rup(rupper);
    auto ro_r = ro;
    ro_r.iterate_upper_bound = &rup;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_r, cf(kReplies)));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      auto pos = parse_index_suffix(sv(it->key()));
      std::string rv;
      auto s2 = db_->Get(ro, cf(kComments), uuid_key(pos.id), &rv);
      if (auto e = read_error(s2)) return *e;
      if (s2.IsNotFound()) continue;
      auto reply = decode_comment(pos.id, rv);
      if (reply && is_counted(reply->status)) ++r.truth.replies_count;
    }
    if (auto e = read_error(it->status())) return *e;
  }
  r.truth.last_updated = r.stored.last_updated;
  return std::optional<CommentRecount>(r);
}

Result<Store::VideoRecount> RocksStore::recount_video(const Uuid& video_id) {
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db; const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_.get(), snap};
  auto ro = read_options({}, snap);

  VideoRecount r;
  std::string v;
  auto st = db_->Get(ro, cf(kVideoStats), uuid_key(video_id), &v);
  if (auto e = read_error(st)) return *e;
  if (st.ok()) r.stored = stats_from(v);
  r.truth.last_updated = r.stored.last_updated;

  // Every comment of the video: the top-level index, then each thread's replies.
  auto count_reactions = [&](const Uuid& cid) -> Status {
    std::string prefix = uuid_key(cid);
    std::string upper = prefix + std::string(17, '\xff');
    rocksdb::Slice up(upper);
    auto ro_it = ro;
    ro_it.iterate_upper_bound = &up;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_it, cf(kReactions)));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      auto row = decode_reaction_row(sv(it->value()));
      if (row && row->type != ReactionType::none) ++r.truth.reactions_count;
    }
    if (auto e = read_error(it->status())) return *e;
    return ok_status();
  };
  auto visit = [&](Cf c, const Uuid& key, auto&& on_row) -> Status {
    std::string prefix = uuid_key(key);
    std::string upper = prefix + std::string(25, '\xff');
    rocksdb::Slice up(upper);
    auto ro_it = ro;
    ro_it.iterate_upper_bound = &up;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_it, cf(c)));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      auto pos = parse_index_suffix(sv(it->key()));
      std::string cv;
      auto s2 = db_->Get(ro, cf(kComments), uuid_key(pos.id), &cv);
      if (auto e = read_error(s2)) return *e;
      if (s2.IsNotFound()) continue;
      auto cmt = decode_comment(pos.id, cv);
      if (!cmt) return Error(Errc::internal, "corrupt comment row");
      auto s3 = on_row(*cmt);
      if (!s3) return s3;
    }
    if (auto e = read_error(it->status())) return *e;
    return ok_status();
  };
  auto on_reply = [&](const Comment& c) -> Status {
    if (is_counted(c.status)) ++r.truth.comments_count;
    return count_reactions(c.id);
  };
  auto s = visit(kCommentsByVideo, video_id, [&](const Comment& c) -> Status {
    if (is_counted(c.status)) ++r.truth.comments_count;
    auto s1 = count_reactions(c.id);
    if (!s1) return s1;
    return visit(kReplies, c.id, on_reply);
  });
  if (!s) return s.error();
  return r;
}

Result<std::vector<Uuid>> RocksStore::list_ids(IdTable t, std::optional<Uuid> after, size_t max) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator({}, cf(t == IdTable::comments ? kCommentMetrics : kVideoStats)));
  if (after) {
    std::string k = uuid_key(*after);
    it->Seek(k);
    if (it->Valid() && sv(it->key()) == k) it->Next();
  } else {
    it->SeekToFirst();
  }
  std::vector<Uuid> out;
  for (; it->Valid() && out.size() < max; it->Next())
    if (it->key().size() == 16) out.push_back(get_uuid(sv(it->key())));
  if (auto e = read_error(it->status())) return *e;
  return out;
}

Result<std::vector<ReactionOp>> RocksStore::read_ops(uint64_t after_seq, size_t max) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(kReactionOps)));
  std::string k;
  put_u64be(k, after_seq + 1);
  std::vector<ReactionOp> out;
  for (it->Seek(k); it->Valid() && out.size() < max; it->Next()) {
    auto op = decode_op(get_u64be(sv(it->key())), sv(it->value()));
    if (!op) return Error(Errc::internal, "corrupt op log entry");
    out.push_back(*op);
  }
  if (auto e = read_error(it->status())) return *e;
  return out;
}

Result<uint64_t> RocksStore::consumer_pos(const std::string& consumer) {
  std::string v;
  auto st = db_->Get({}, cf(kDefault), kConsumerPrefix + consumer, &v);
  if (auto e = read_error(st)) return *e;
  return st.ok() && v.size() == 8 ? get_u64be(v) : uint64_t{0};
}

Result<std::vector<std::pair<uint64_t, std::string>>> RocksStore::read_outbox(uint64_t after_seq,
                                                                              size_t max) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}, cf(kOutbox)));
  std::string k;
  put_u64be(k, after_seq + 1);
  std::vector<std::pair<uint64_t, std::string>> out;
  for (it->Seek(k); it->Valid() && out.size() < max; it->Next())
    out.emplace_back(get_u64be(sv(it->key())), it->value().ToString());
  if (auto e = read_error(it->status())) return *e;
  return out;
}

// --------------------------------------------------------------------------------- writes

// Log keys only grow, so a range below the newest entry is never written again: the
// DeleteRange needs no coordination with the writer thread.
Status RocksStore::trim_logs(uint64_t op_seq_upto, uint64_t outbox_keep) {
  auto range = [&](Cf c, uint64_t end_exclusive) -> Status {
    if (end_exclusive <= 1) return ok_status();
    std::string b, e;
    put_u64be(b, 0);
    put_u64be(e, end_exclusive);
    auto st = db_->DeleteRange(rocksdb::WriteOptions(), cf(c), b, e);
    if (!st.ok()) return storage_error(st);
    return ok_status();
  };
  auto s = range(kReactionOps, std::min(op_seq_upto, last_op_seq_.load()) + 1);
  if (!s) return s;
  uint64_t last = last_outbox_seq_.load();
  return range(kOutbox, last > outbox_keep ? last - outbox_keep + 1 : 0);
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
  encode(ws, wb, cr, nullptr);
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  auto st = db_->Write(wo, &wb);
  if (!st.ok()) return storage_error(st);
  return ok_status();
}

void RocksStore::close() {
  {
    std::lock_guard lk(mu_);
    if (closing_) return;
    closing_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (db_) db_->FlushWAL(true);
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
                        std::unordered_map<std::string, std::string>* written) {
  for (auto& m : ws.mutations) {
    std::visit(
        [&](auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, PutComment>) {
            std::string k = uuid_key(x.comment.id), v = encode_comment(x.comment);
            wb.Put(cf(kComments), k, v);
            if (written) (*written)[std::move(k)] = std::move(v);
          } else if constexpr (std::is_same_v<T, IndexPut>) {
            wb.Put(cf(x.index == Index::video ? kCommentsByVideo : kReplies),
                   index_key(uuid_key(x.key), x.created_at, x.id), "");
          } else if constexpr (std::is_same_v<T, IndexDelete>) {
            wb.Delete(cf(x.index == Index::video ? kCommentsByVideo : kReplies),
                      index_key(uuid_key(x.key), x.created_at, x.id));
          } else if constexpr (std::is_same_v<T, BucketPut>) {
            wb.Put(cf(kBucketed), index_key(bucket_partition(x.video_id, x.bucket), x.created_at, x.id), "");
          } else if constexpr (std::is_same_v<T, BucketDelete>) {
            wb.Delete(cf(kBucketed), index_key(bucket_partition(x.video_id, x.bucket), x.created_at, x.id));
          } else if constexpr (std::is_same_v<T, HiddenMark>) {
            int64_t d[kHiddenSlots] = {x.set ? 1 : -1, 0};
            wb.Merge(cf(kHiddenByUser), pair_key(x.video_id, x.user_id), encode_counters(d, kHiddenSlots));
          } else if constexpr (std::is_same_v<T, MetricsDelta>) {
            int64_t s[kMetricsSlots] = {x.likes, x.dislikes, x.replies, x.at};
            wb.Merge(cf(kCommentMetrics), uuid_key(x.comment_id), encode_counters(s, kMetricsSlots));
          } else if constexpr (std::is_same_v<T, StatsDelta>) {
            int64_t s[kStatsSlots] = {x.comments, x.reactions, x.at};
            wb.Merge(cf(kVideoStats), uuid_key(x.video_id), encode_counters(s, kStatsSlots));
          } else if constexpr (std::is_same_v<T, MetricsSet>) {
            int64_t s[kMetricsSlots] = {x.value.likes, x.value.dislikes, x.value.replies_count, x.value.last_updated};
            wb.Put(cf(kCommentMetrics), uuid_key(x.comment_id), encode_counters(s, kMetricsSlots));
          } else if constexpr (std::is_same_v<T, StatsSet>) {
            int64_t s[kStatsSlots] = {x.value.comments_count, x.value.reactions_count, x.value.last_updated};
            wb.Put(cf(kVideoStats), uuid_key(x.video_id), encode_counters(s, kStatsSlots));
          } else if constexpr (std::is_same_v<T, PutReaction>) {
            wb.Put(cf(kReactions), pair_key(x.comment_id, x.user_id), encode_reaction_row(x.row));
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
    encode(p.ws, wb, cr, &written);
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
  auto st = db_->Write(wo, &wb);
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

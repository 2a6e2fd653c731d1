#include "store/rocks/rocks_store.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/perf_context.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "store/async.h"
#include "store/rocks/codec.h"
#include "store/rocks/internal.h"

namespace commentd::store::rocks {

using namespace internal;

namespace {

const char* const kCfNames[kCfCount] = {
    "default",        "comments",        "comments_by_video", "replies",
    "comments_by_video_bucketed",        "reactions",         "comment_metrics",
    "video_stats",    "reaction_events", "reaction_ops",      "outbox",
    "hidden_by_user", "user_reactions_by_video", "local_bus"};

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


size_t comment_charge(const std::optional<Comment>& c) { return c ? c->content.size() : 0; }
size_t view_charge(const Store::UserView&) { return 0; }
size_t reactions_charge(const std::vector<std::pair<Uuid, ReactionType>>& r) {
  return r.capacity() * sizeof(r[0]);
}

// A value known now, as an awaitable: a row-cache hit completes inline.
template <class T>
asio::awaitable<T> completed(T v) {
  co_return v;
}

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
  if (opts.env) db_opts.env = opts.env.get();
  // No LOG file in data_dir: a full volume must not be able to fail (and, in Debian's
  // assert-enabled librocksdb, abort on) RocksDB's own logging. See db_events.h.
  db_opts.info_log = std::make_shared<SpdlogLogger>();
  s->health_ = std::make_shared<HealthListener>();
  db_opts.listeners.push_back(s->health_);
  // RocksDB's automatic recovery from a full volume: on a no-space error it stops writes and
  // this manager polls free space, resuming the DB (flushing memtables to a fresh WAL) once
  // write_buffer_size is free. RocksDB makes a default one; named here as the contract.
  db_opts.sst_file_manager.reset(rocksdb::NewSstFileManager(db_opts.env, db_opts.info_log));
  // The WAL-less marker (arm_wal_recovery) needs no flush at close; a flush there, on a full
  // volume, would touch the failed WAL writer.
  db_opts.avoid_flush_during_shutdown = true;

  // The store's memory is bounded by configuration: the block cache, the row caches, and all
  // memtables together (without this cap each column family may hold two 32 MiB memtables:
  // an overload bench saw RSS grow 25 MB per run over six runs, with no bound in sight).
  db_opts.db_write_buffer_size = opts.memtable_mb << 20;

  rocksdb::BlockBasedTableOptions table;
  s->block_cache_ = rocksdb::NewLRUCache(opts.block_cache_mb << 20);
  table.block_cache = s->block_cache_;
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
    if (i == kHiddenByUser || i == kUserReactions) {
      // Every read of these is one (video, user) pair: its 32-byte key prefix gets a bloom
      // filter in the memtable and in each table file, so a pair with no rows (most users of
      // most videos) is answered without a skiplist search or a table index lookup. The one
      // iterator over user_reactions stays inside its prefix (read_user_reactions).
      cfo.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(32));
      cfo.memtable_prefix_bloom_size_ratio = 0.02;
    }
    // The logs are short-lived (trimmed once applied): not worth compressing. (Memtable
    // insert hints for these sequential keys tripped an assertion inside RocksDB 7.8's
    // skiplist in our tests; left off.)
    if (i == kReactionOps || i == kOutbox) cfo.compression = rocksdb::kNoCompression;
    cfs.emplace_back(kCfNames[i], cfo);
  }
  rocksdb::DB* raw = nullptr;
  auto st = opts.read_only
                ? rocksdb::DB::OpenForReadOnly(db_opts, opts.data_dir, cfs, &s->handles_, &raw)
                : rocksdb::DB::Open(db_opts, opts.data_dir, cfs, &s->handles_, &raw);
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
  s->readers_ = std::make_unique<asio::thread_pool>(std::max<size_t>(1, opts.read_threads));
  s->read_gate_.set_enabled(opts.inline_reads);
  s->read_gate_.set_slow_file_read(opts.slow_file_read_ns);
  s->rows_ = std::make_unique<RowCaches>(opts.row_cache_bytes, s->stats_.rows);
  if (opts.read_only) {
    s->closing_ = true;  // no writer: commits are refused as after close()
    return s;
  }
  s->writer_ = std::thread([p = s.get()] { p->writer_loop(); });
  return s;
}

RocksStore::RowCaches::RowCaches(size_t bytes, RowCacheStats& st)
    : comments(bytes / 2, comment_charge, st),
      views(bytes / 4, view_charge, st),
      reactions(bytes / 4, reactions_charge, st) {}

RocksStore::~RocksStore() {
  if (readers_) readers_->join();  // queued reads finish before the database closes
  close();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  if (db_) db_->Close();
}

bool RocksStore::ready() const {
  {
    std::lock_guard lk(mu_);
    if (!db_ || closing_) return false;
  }
  return !degraded();
}

bool RocksStore::degraded() const { return health_ && health_->degraded(); }

size_t RocksStore::queue_depth() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

uint64_t RocksStore::memtable_bytes() const {
  uint64_t v = 0;
  if (db_ && !db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables, &v)) return 0;
  return v;
}

uint64_t RocksStore::block_cache_bytes() const { return block_cache_ ? block_cache_->GetUsage() : 0; }

uint64_t RocksStore::memtable_limit() const { return db_ ? db_->GetDBOptions().db_write_buffer_size : 0; }

uint64_t RocksStore::last_op_seq() const { return last_op_seq_.load(); }

rocksdb::ReadOptions RocksStore::read_options(const rocksdb::Snapshot* snap) const {
  rocksdb::ReadOptions ro;  // read_tier stays kReadAllTier: see rocks_store.h
  ro.snapshot = snap;
  return ro;
}

namespace {
// Blocks this thread has read from table files (RocksDB's per-thread perf context, which
// counts only from the first call on each thread).
uint64_t table_block_reads() {
  thread_local bool counting = false;
  if (!counting) {
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
    counting = true;
  }
  return rocksdb::get_perf_context()->block_read_count;
}

int64_t steady_ns(std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now()) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

template <class F>
auto RocksStore::timed_read(F& fn, int64_t start_ns) -> std::invoke_result_t<F&> {
  const uint64_t blocks = table_block_reads();
  auto r = fn();
  const int64_t end = steady_ns();
  const bool read_files = table_block_reads() != blocks;
  if (read_files) stats_.file_reads.fetch_add(1, std::memory_order_relaxed);
  read_gate_.report(end, read_files, end - start_ns);
  return r;
}

template <class F>
auto RocksStore::read_here(F& fn, int64_t now_ns) -> std::invoke_result_t<F&> {
  stats_.inline_reads.fetch_add(1, std::memory_order_relaxed);
  const int64_t began = read_gate_.begin(now_ns);
  auto r = timed_read(fn, now_ns);
  read_gate_.end(began);
  return r;
}

template <class F>
auto RocksStore::on_reader(Deadline d, F fn) -> asio::awaitable<std::invoke_result_t<F&>> {
  using R = std::invoke_result_t<F&>;
  static_assert(std::is_same_v<Deadline::clock, std::chrono::steady_clock>);
  // fn() unless the deadline had passed at `start`. One clock read before the read serves
  // the gate, the deadline and the timing.
  auto expired = [d](Deadline::clock::time_point start) -> std::optional<R> {
    if (start < d.at) return std::nullopt;
    return R(deadline_error());
  };
  if (const auto now = Deadline::clock::now(); read_gate_.inline_ok(steady_ns(now))) {
    if (auto e = expired(now)) return completed(std::move(*e));
    return completed(read_here(fn, steady_ns(now)));
  }
  stats_.pool_reads.fetch_add(1, std::memory_order_relaxed);
  // Not a coroutine: `fn` moves straight into the job.
  auto init = [this, expired](auto handler, F f) {
    asio::post(*readers_, [this, expired, f = std::move(f), handler = std::move(handler)]() mutable {
      const auto start = Deadline::clock::now();
      auto e = expired(start);
      R r = e ? std::move(*e) : timed_read(f, steady_ns(start));
      auto ex = asio::get_associated_executor(handler);
      asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable {
        std::move(handler)(std::move(r));
      });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(init),
                                                                      asio::use_awaitable, std::move(fn));
}

std::optional<std::optional<Comment>> RocksStore::try_get_comment(const Uuid& id) {
  return std::move(rows_->comments.get(id).value);
}
std::optional<Store::ViewAndReactions> RocksStore::try_view_and_reactions(const Uuid& video_id,
                                                                        const Uuid& user_id) {
  // Lookups are counted only when it answers from them (both held, or read here): a caller
  // that gets nullopt asks through get_user_view and get_reactions, which count their own.
  // (A read here that fails has counted its misses; the retry counts them again.)
  const std::pair<Uuid, Uuid> key{video_id, user_id};
  auto view = rows_->views.find(key);
  auto reactions = view ? rows_->reactions.find(key) : std::nullopt;
  if (view && reactions) {
    rows_->views.count_hits(1);
    rows_->reactions.count_hits(1);
    return ViewAndReactions{*view, std::move(*reactions)};
  }
  // Not both held (a user's first read of the video since a write or an eviction): read them
  // here when the read gate lets this thread read, as on_reader's inline reads do, and fill
  // the caches as get_user_view's read does. An error, or more reactions than one scan
  // keeps: nullopt, and the asynchronous reads answer (and report it).
  const int64_t now = steady_ns();
  if (!read_gate_.inline_ok(now)) return std::nullopt;
  auto lv = rows_->views.get(key);
  auto lr = rows_->reactions.get(key);
  auto read = [&]() -> std::optional<ViewAndReactions> {
    ViewAndReactions out;
    if (lv.value) {
      out.view = *lv.value;
    } else {
      auto r = read_user_view(video_id, user_id);
      if (!r) return std::nullopt;
      rows_->views.fill(key, lv.epoch, *r);
      out.view = *r;
    }
    if (lr.value) {
      out.reactions = std::move(*lr.value);
    } else {
      auto found = read_user_reactions(video_id, user_id);
      if (!found || !*found) return std::nullopt;
      rows_->reactions.fill(key, lr.epoch, **found);
      out.reactions = std::move(**found);
    }
    return out;
  };
  return read_here(read, now);
}
asio::awaitable<Result<std::optional<Comment>>> RocksStore::get_comment(Uuid id, Deadline d) {
  auto l = rows_->comments.get(id);
  if (l.value) return completed(Result<std::optional<Comment>>(std::move(*l.value)));
  return on_reader(d, [this, id, epoch = l.epoch] {
    auto r = read_comment(id);
    if (r) rows_->comments.fill(id, epoch, *r);
    return r;
  });
}
asio::awaitable<Result<ScanResult>> RocksStore::scan(ScanRequest req, Deadline d) {
  return on_reader(d, [this, req = std::move(req)] { return read_scan(req); });
}
asio::awaitable<Result<bool>> RocksStore::has_entries(Index index, Uuid key, Deadline d) {
  return on_reader(d, [this, index, key] { return read_has_entries(index, key); });
}
asio::awaitable<Result<std::vector<CommentMetrics>>> RocksStore::get_metrics(std::vector<Uuid> ids,
                                                                             Deadline d) {
  return on_reader(d, [this, ids = std::move(ids)] { return read_metrics(ids); });
}
asio::awaitable<Result<VideoStats>> RocksStore::get_video_stats(Uuid video_id, Deadline d) {
  return on_reader(d, [this, video_id] { return read_video_stats(video_id); });
}
namespace {
std::vector<ReactionType> pick(const std::vector<std::pair<Uuid, ReactionType>>& found,
                               const std::vector<Uuid>& comment_ids) {
  std::vector<ReactionType> out(comment_ids.size(), ReactionType::none);
  for (size_t i = 0; i < comment_ids.size(); ++i)
    for (auto& [cid, t] : found)
      if (cid == comment_ids[i]) out[i] = t;
  return out;
}
}  // namespace

asio::awaitable<Result<std::vector<ReactionType>>> RocksStore::get_reactions(
    Uuid video_id, Uuid user_id, std::vector<Uuid> comment_ids, Deadline d) {
  if (comment_ids.empty()) return completed(Result<std::vector<ReactionType>>(std::vector<ReactionType>{}));
  auto l = rows_->reactions.get({video_id, user_id});
  if (l.value) return completed(Result<std::vector<ReactionType>>(pick(*l.value, comment_ids)));
  return on_reader(d, [this, video_id, user_id, ids = std::move(comment_ids), epoch = l.epoch] {
    return read_reactions(video_id, user_id, ids, epoch);
  });
}
asio::awaitable<Result<bool>> RocksStore::has_hidden(Uuid video_id, Uuid user_id, Deadline d) {
  auto l = rows_->views.get({video_id, user_id});
  if (l.value) return completed(Result<bool>(l.value->hidden));
  return on_reader(d, [this, video_id, user_id, epoch = l.epoch]() -> Result<bool> {
    auto r = read_user_view(video_id, user_id);
    if (!r) return r.take_error();
    rows_->views.fill({video_id, user_id}, epoch, *r);
    return r->hidden;
  });
}

asio::awaitable<Result<Store::UserView>> RocksStore::get_user_view(Uuid video_id, Uuid user_id, Deadline d) {
  auto l = rows_->views.get({video_id, user_id});
  if (l.value) return completed(Result<UserView>(*l.value));
  return on_reader(d, [this, video_id, user_id, epoch = l.epoch] {
    // The list request that asks for the view asks for the same user's reactions next: a
    // user missing one (a first read of the video) misses both, so this hop fills both and
    // the next lookup completes inline. Each fill keeps its own epoch, taken before its read.
    auto reactions_epoch = rows_->reactions.absent({video_id, user_id});
    auto r = read_user_view(video_id, user_id);
    if (r) rows_->views.fill({video_id, user_id}, epoch, *r);
    if (r && reactions_epoch) {
      auto found = read_user_reactions(video_id, user_id);
      if (found && *found) rows_->reactions.fill({video_id, user_id}, *reactions_epoch, std::move(**found));
    }
    return r;
  });
}

// ---------------------------------------------------------------------------------- reads

Result<std::optional<Comment>> RocksStore::read_comment(const Uuid& id) {
  std::string v;
  auto st = db_->Get(read_options(), cf(kComments), uuid_key(id), &v);
  if (auto e = read_error(st)) return *e;
  if (st.IsNotFound()) return std::optional<Comment>();
  auto c = decode_comment(id, v);
  if (!c) return Error(Errc::internal, "corrupt comment row " + id.str());
  return std::optional<Comment>(std::move(*c));
}

Result<ScanResult> RocksStore::read_scan(const ScanRequest& req) {
  Cf c = req.index == Index::video ? kCommentsByVideo : kReplies;
  std::string lower = index_partition(req.index, req.key);
  std::string upper = lower + std::string(25, '\xff');
  rocksdb::Slice lo(lower), up(upper);
  auto ro = read_options();
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
  if (req.with_counts) {  // on this reader hop, saving the caller a second one
    std::vector<Uuid> joined;
    joined.reserve(out.rows.size());
    for (auto& r : out.rows) joined.push_back(r.id);
    auto m = read_metrics(joined);
    if (!m) return m.take_error();
    for (auto& x : *m) x.last_updated = 0;
    out.counts = std::move(*m);
  }
  return out;
}

Result<bool> RocksStore::read_has_entries(Index index, const Uuid& key) {
  Cf c = index == Index::video ? kCommentsByVideo : kReplies;
  std::string lower = index_partition(index, key);
  std::string upper = lower + std::string(25, '\xff');
  rocksdb::Slice up(upper);
  auto ro = read_options();
  ro.iterate_upper_bound = &up;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(c)));
  it->Seek(lower);
  if (auto e = read_error(it->status())) return *e;
  return it->Valid();
}

Result<std::vector<CommentMetrics>> RocksStore::read_metrics(const std::vector<Uuid>& ids) {
  std::vector<std::string> keys;
  std::vector<rocksdb::Slice> ks;
  keys.reserve(ids.size());
  for (auto& id : ids) keys.push_back(uuid_key(id));
  for (auto& k : keys) ks.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> vals(ids.size());
  std::vector<rocksdb::Status> sts(ids.size());
  if (!ids.empty())
    db_->MultiGet(read_options(), cf(kCommentMetrics), ids.size(), ks.data(), vals.data(),
                  sts.data());
  std::vector<CommentMetrics> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (auto e = read_error(sts[i])) return *e;
    if (sts[i].ok()) out[i] = metrics_from(sv(vals[i]));
  }
  return out;
}

Result<VideoStats> RocksStore::read_video_stats(const Uuid& video_id) {
  std::string v;
  auto st = db_->Get(read_options(), cf(kVideoStats), uuid_key(video_id), &v);
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

Result<std::optional<RocksStore::UserReactions>> RocksStore::read_user_reactions(
    const Uuid& video_id, const Uuid& user_id) {
  std::string prefix = pair_key(video_id, user_id);
  std::string upper = prefix + std::string(17, '\xff');
  rocksdb::Slice up(upper);
  auto ro = read_options();
  ro.iterate_upper_bound = &up;
  ro.prefix_same_as_start = true;  // the family's prefix extractor: (video, user)
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kUserReactions)));
  UserReactions found;
  for (it->Seek(prefix); it->Valid() && found.size() <= kMaxCachedReactions; it->Next()) {
    if (it->key().size() != 48 || it->value().size() != 1) continue;
    found.emplace_back(get_uuid(sv(it->key()).substr(32)), static_cast<ReactionType>(it->value()[0]));
  }
  if (auto e = read_error(it->status())) return *e;
  if (found.size() > kMaxCachedReactions) return std::optional<UserReactions>();
  found.shrink_to_fit();
  return std::optional<UserReactions>(std::move(found));
}

Result<std::vector<ReactionType>> RocksStore::read_reactions(const Uuid& video_id,
                                                             const Uuid& user_id,
                                                             const std::vector<Uuid>& comment_ids,
                                                             uint64_t fill_epoch) {
  std::vector<ReactionType> out(comment_ids.size(), ReactionType::none);
  if (comment_ids.empty()) return out;
  auto found = read_user_reactions(video_id, user_id);
  if (!found) return found.take_error();
  if (*found) {
    out = pick(**found, comment_ids);
    rows_->reactions.fill({video_id, user_id}, fill_epoch, std::move(**found));
    return out;
  }
  // A prolific user: point reads of just this page's registers (not cached).
  auto ro = read_options();
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

Result<Store::UserView> RocksStore::read_user_view(const Uuid& video_id, const Uuid& user_id) {
  std::string v;
  auto st = db_->Get(read_options(), cf(kHiddenByUser), pair_key(video_id, user_id), &v);
  if (auto e = read_error(st)) return *e;
  if (!st.ok()) return UserView{};
  int64_t slots[kHiddenSlots];
  decode_counters(v, slots, kHiddenSlots);
  return UserView{slots[0] > 0, slots[1]};
}

Result<std::optional<Store::CommentRecount>> RocksStore::recount_comment(const Uuid& id) {
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  struct Release {
    rocksdb::DB* db; const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db_.get(), snap};
  auto ro = read_options(snap);

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
  auto ro = read_options(snap);

  VideoRecount r;
  std::string v;
  auto st = db_->Get(ro, cf(kVideoStats), uuid_key(video_id), &v);
  if (auto e = read_error(st)) return *e;
  if (st.ok()) r.stored = stats_from(v);
  r.truth.last_updated = r.stored.last_updated;

  // Every comment the video ever had, top-level and replies, deleted ones included:
  // comments_by_video_bucketed keeps them all (a delete leaves the lists, not this history).
  // reactions_count counts the standing reactions on all of them, as the applier's deltas
  // do (a reaction is never taken back by deleting its comment).
  std::string prefix = uuid_key(video_id);
  std::string upper = prefix + std::string(13 + 25, '\xff');
  rocksdb::Slice up(upper);
  auto ro_it = ro;
  ro_it.iterate_upper_bound = &up;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro_it, cf(kBucketed)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto pos = parse_index_suffix(sv(it->key()));
    std::string cv;
    auto s2 = db_->Get(ro, cf(kComments), uuid_key(pos.id), &cv);
    if (auto e = read_error(s2)) return *e;
    if (s2.IsNotFound()) continue;
    auto cmt = decode_comment(pos.id, cv);
    if (!cmt) return Error(Errc::internal, "corrupt comment row");
    if (is_counted(cmt->status)) ++r.truth.comments_count;
    std::string rprefix = uuid_key(pos.id);
    std::string rupper = rprefix + std::string(17, '\xff');
    rocksdb::Slice rup(rupper);
    auto ro_r = ro;
    ro_r.iterate_upper_bound = &rup;
    std::unique_ptr<rocksdb::Iterator> rit(db_->NewIterator(ro_r, cf(kReactions)));
    for (rit->Seek(rprefix); rit->Valid(); rit->Next()) {
      auto row = decode_reaction_row(sv(rit->value()));
      if (row && row->type != ReactionType::none) ++r.truth.reactions_count;
    }
    if (auto e = read_error(rit->status())) return *e;
  }
  if (auto e = read_error(it->status())) return *e;
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

Result<std::vector<OutboxEntry>> RocksStore::read_outbox_entries(uint64_t after_seq, size_t max) {
  auto raw = read_outbox(after_seq, max);
  if (!raw) return raw.take_error();
  std::vector<OutboxEntry> out;
  out.reserve(raw->size());
  for (auto& [seq, v] : *raw) {
    // topic_len(8) topic key_len(8) key payload (see encode() in rocks_writer.cpp)
    std::string_view in(v);
    auto take = [&](std::string& dst) -> bool {
      if (in.size() < 8) return false;
      uint64_t n = get_u64be(in);
      in.remove_prefix(8);
      if (in.size() < n) return false;
      dst.assign(in.substr(0, n));
      in.remove_prefix(n);
      return true;
    };
    OutboxEntry e;
    e.seq = seq;
    if (!take(e.topic) || !take(e.key))
      return Error(Errc::internal, "storage: corrupt outbox entry " + std::to_string(seq), "storage_error");
    e.payload.assign(in);
    out.push_back(std::move(e));
  }
  return out;
}

Status RocksStore::bus_write(const std::vector<BusOp>& ops, bool sync) {
  rocksdb::WriteBatch wb;
  for (auto& op : ops) {
    switch (op.kind) {
      case BusOp::put: wb.Put(cf(kBus), op.key, op.value); break;
      case BusOp::del: wb.Delete(cf(kBus), op.key); break;
      case BusOp::del_range: wb.DeleteRange(cf(kBus), op.key, op.value); break;
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync && opts_.sync_writes;
  auto st = write(wo, &wb);  // through the writer's path: arms the WAL's no-space recovery
  if (!st.ok()) return storage_error(st);
  return ok_status();
}

Result<bool> RocksStore::clear_bus() {
  // Every bus key starts with an ASCII kind letter (events/local/local_bus.h), below "\xff".
  const std::string end(1, '\xff');
  auto any = bus_scan(std::string(), end, 1);
  if (!any) return any.take_error();
  if (any->empty()) return false;
  if (auto st = bus_write({{BusOp::del_range, std::string(), end}}, /*sync=*/false); !st) return st.error();
  return true;
}

Result<std::vector<std::pair<std::string, std::string>>> RocksStore::bus_scan(const std::string& from,
                                                                            const std::string& to,
                                                                            size_t max) {
  rocksdb::ReadOptions ro;
  rocksdb::Slice upper(to);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kBus)));
  std::vector<std::pair<std::string, std::string>> out;
  for (it->Seek(from); it->Valid() && out.size() < max; it->Next())
    out.emplace_back(it->key().ToString(), it->value().ToString());
  if (auto e = read_error(it->status())) return *e;
  return out;
}

}  // namespace commentd::store::rocks

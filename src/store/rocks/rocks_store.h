// The embedded Store: one RocksDB database, one column family per table of the plan.
//
// Writes: commit() enqueues into a bounded queue drained by one writer thread. The writer
// takes up to max_group_commit WriteSets, checks each one's preconditions against the
// database plus the writes of the group before it, and writes the whole group as one
// WriteBatch with one WAL fsync: group commit, never on an event-loop thread. A WriteSet
// whose precondition fails is refused alone (Errc::conflict) and adds nothing.
// Because one thread applies all writes in order, a precondition checked by the writer
// cannot be invalidated before its batch lands.
//
// A full volume: the write that hits it, and every write after it until space returns, fails
// with Errc::insufficient_storage ("storage_full"); nothing of a refused WriteSet is applied.
// RocksDB stops writes on that background error and resumes them by itself once enough space
// is free (its SstFileManager polls every 5 s); ready() is false meanwhile. Reads keep working.
//
// Request-path reads run inline on the caller's thread while recent reads were fast, and
// otherwise on the store's own read executor (storage.read_threads threads), resuming on the
// caller's executor; a read whose deadline passed while it was queued is not run. Which of
// the two: read_gate.h (storage.inline_reads). Every read is a full read: no cache-only (kBlockCacheTier) attempt, whose
// iterators can stop part-way with OK and whose cold MultiGet can return OK with a stale or
// default value on RocksDB 7.8.3.
// Except: get_comment, get_user_view, has_hidden and get_reactions first ask an exact row
// cache (row_cache.h) filled by those full reads and invalidated by every write before it is
// acknowledged (a user's reactions are written through instead: changed in place, as every
// reaction writes them); a hit completes inline, without the hop (try_get_comment
// and try_view_and_reactions answer hits with no coroutine at all; the latter also reads a
// user's rows it does not hold on the calling thread when the read gate lets it).
//
// Thread-safe. Reads in rocks_store.cpp, the write side in rocks_writer.cpp.
#pragma once

#include <rocksdb/db.h>

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "metrics/histogram.h"
#include "store/rocks/db_events.h"
#include "store/rocks/read_gate.h"
#include "store/rocks/row_cache.h"
#include "store/store.h"

namespace commentd::store::rocks {

// The store's own numbers (STYLE.md #11), read by the metrics module at scrape time.
struct StoreStats {
  metrics::Histogram commit_seconds{metrics::Histogram::latency_bounds()};  // queued -> durable
  metrics::Histogram group_size{metrics::Histogram::size_bounds()};         // WriteSets per WAL write
  std::atomic<uint64_t> conflicts{0};  // WriteSets refused by a precondition
  std::atomic<uint64_t> refused{0};    // queue full or closing
  RowCacheStats rows;                  // the row caches (comments, user views, user reactions)
  std::atomic<uint64_t> inline_reads{0};  // request-path reads run on the caller's thread
  std::atomic<uint64_t> pool_reads{0};    // ... handed to the read executor
  std::atomic<uint64_t> file_reads{0};    // ... that read a block from a table file
};

struct RocksOptions {
  std::string data_dir = "./data";
  size_t block_cache_mb = 256;
  // All column families' memtables together (RocksDB's db_write_buffer_size): past it the
  // largest memtable is flushed. Without it each of the 14 families may hold 2 x 32 MiB.
  size_t memtable_mb = 128;
  bool sync_writes = true;
  size_t write_queue_capacity = 10000;
  size_t max_group_commit = 1024;
  // Opens without writing anything (commentd --verify): works on a full volume; every write
  // is refused with unavailable.
  bool read_only = false;
  // Tests only: the Env RocksDB runs on (e.g. one with a fault-injecting FileSystem);
  // nullptr = the default Env. Must outlive the store.
  std::shared_ptr<rocksdb::Env> env;
  size_t read_threads = 2;  // the read executor (storage.read_threads)
  // Reads run inline while recent reads were fast (read_gate.h); false = every read goes to
  // the read executor (storage.inline_reads).
  bool inline_reads = true;
  // A read that read a table file for longer than this closes the gate (read_gate.h); tests
  // set 0 so that any table-file read does.
  int64_t slow_file_read_ns = ReadGate::kSlowFileRead;
  // The exact row caches (row_cache.h), bytes in all: half comment rows, a quarter each user
  // views and user reaction lists. 0 = off (every read goes to RocksDB).
  size_t row_cache_bytes = 64 << 20;
};

// Column families, in creation order (index into handles_).
enum Cf : size_t {
  kDefault = 0,          // meta: consumer positions
  kComments,             // comments: id -> row
  kCommentsByVideo,      // comments_by_video: video + desc(created_at) + id
  kReplies,              // replies: parent + desc(created_at) + id
  kBucketed,             // comments_by_video_bucketed: video + bucket + desc(created_at) + id
  kReactions,            // reactions: comment + user -> register
  kCommentMetrics,       // comment_metrics: comment -> counters (merge)
  kVideoStats,           // video_stats: video -> counters (merge)
  kReactionEvents,       // reaction_events: comment + desc(created_at) + reaction_id
  kReactionOps,          // the durable op log: seq -> op
  kOutbox,               // domain events waiting for the bus: seq -> event
  kHiddenByUser,         // added: video + user -> count of the user's non-public comments, recent-write mark (max)
  kUserReactions,        // added: video + user + comment -> type, a user's reactions by video
  kBus,                  // the local event bus's topics and cursors (events/local), its own keys
  kCfCount
};

class RocksStore final : public Store {
 public:
  static Result<std::unique_ptr<RocksStore>> open(const RocksOptions& opts);
  ~RocksStore() override;

  asio::awaitable<Result<std::optional<Comment>>> get_comment(Uuid id, Deadline d) override;
  std::optional<std::optional<Comment>> try_get_comment(const Uuid& id) override;
  std::optional<ViewAndReactions> try_view_and_reactions(const Uuid& video_id, const Uuid& user_id) override;
  asio::awaitable<Result<ScanResult>> scan(ScanRequest req, Deadline d) override;
  asio::awaitable<Result<bool>> has_entries(Index index, Uuid key, Deadline d) override;
  asio::awaitable<Result<std::vector<CommentMetrics>>> get_metrics(std::vector<Uuid> ids,
                                                                   Deadline d) override;
  asio::awaitable<Result<VideoStats>> get_video_stats(Uuid video_id, Deadline d) override;
  asio::awaitable<Result<std::vector<ReactionType>>> get_reactions(
      Uuid video_id, Uuid user_id, std::vector<Uuid> comment_ids, Deadline d) override;
  asio::awaitable<Result<bool>> has_hidden(Uuid video_id, Uuid user_id, Deadline d) override;
  Result<std::vector<ReactionRow>> get_registers(
      const std::vector<std::pair<Uuid, Uuid>>& comment_user) override;
  asio::awaitable<Result<UserView>> get_user_view(Uuid video_id, Uuid user_id, Deadline d) override;
  Result<std::optional<CommentRecount>> recount_comment(const Uuid& id) override;
  Result<VideoRecount> recount_video(const Uuid& video_id) override;
  Result<std::vector<Uuid>> list_ids(IdTable t, std::optional<Uuid> after,
                                     size_t max) override;
  Result<std::vector<ReactionOp>> read_ops(uint64_t after_seq, size_t max) override;
  Result<uint64_t> consumer_pos(const std::string& consumer) override;
  uint64_t last_op_seq() const override;
  void commit(WriteSet ws, CommitCallback done) override;
  Status commit_owned(WriteSet ws) override;
  Result<std::vector<OutboxEntry>> read_outbox_entries(uint64_t after_seq, size_t max) override;
  uint64_t last_outbox_seq() const override { return last_outbox_seq_.load(); }
  Status trim_logs(uint64_t op_seq_upto, uint64_t outbox_delivered_upto, uint64_t outbox_keep) override;
  void close() override;
  // Open, not closing, and RocksDB holds no background error (e.g. no space).
  bool ready() const override;
  // RocksDB holds a background error: writes are refused until it recovers.
  bool degraded() const;

  // Outbox entries after `seq` (for the relay to the event bus and for tests).
  Result<std::vector<std::pair<uint64_t, std::string>>> read_outbox(uint64_t after_seq,
                                                                    size_t max);
  size_t queue_depth() const;
  // Memory held by RocksDB against the configured bounds: all memtables (active, immutable and
  // being flushed) and the block cache's charged bytes. 0 when closed.
  uint64_t memtable_bytes() const;
  uint64_t block_cache_bytes() const;
  // The bound RocksDB was opened with for all memtables together (its db_write_buffer_size).
  uint64_t memtable_limit() const;

  // The local event bus's storage (events/local/local_bus.h owns the key layout): an ordered
  // key-value space of its own, written beside the writer thread. Blocking; thread-safe.
  struct BusOp {
    enum Kind : uint8_t { put, del, del_range } kind = put;
    std::string key;
    std::string value;  // put: the value; del_range: the end key (exclusive)
  };
  Status bus_write(const std::vector<BusOp>& ops, bool sync);
  // Entries with from <= key < to, in key order, at most `max`.
  Result<std::vector<std::pair<std::string, std::string>>> bus_scan(const std::string& from,
                                                                    const std::string& to,
                                                                    size_t max);
  // Deletes everything in the bus's key space (one range tombstone; compaction reclaims the
  // space). Returns whether there was anything. For a node that no longer runs a local bus:
  // what an earlier version stored there would otherwise stay for good.
  Result<bool> clear_bus();
  StoreStats& stats() { return stats_; }

 private:
  struct Pending {
    WriteSet ws;
    CommitCallback done;
    std::chrono::steady_clock::time_point queued;
  };

  RocksStore() = default;
  void writer_loop();
  void apply_group(std::vector<Pending>& group);
  // The cached rows a batch writes (row_cache.h): comment rows and views are invalidated once
  // the batch is in RocksDB, before any of its WriteSets is acknowledged; a user's reactions
  // are written through (begin_rows before the write, end_rows after it), since every
  // reaction writes them and the next page read by that user reads them.
  struct Touched {
    struct Reaction {
      std::pair<Uuid, Uuid> key;  // (video, user)
      Uuid comment_id;
      ReactionType type;          // none: the user's reaction to the comment is gone
    };
    std::vector<Uuid> comments;
    std::vector<std::pair<Uuid, Uuid>> views;  // (video, user)
    std::vector<Reaction> reactions;
  };
  void encode(WriteSet& ws, rocksdb::WriteBatch& wb, CommitResult& cr,
              std::unordered_map<std::string, std::string>* written, Touched& touched);
  // A batch's reaction writes grouped by (video, user), each key's in batch order: one batch
  // is one RocksDB write, so one begin_write/end_write per key.
  using ReactionWrites = std::vector<std::pair<std::pair<Uuid, Uuid>, std::vector<const Touched::Reaction*>>>;
  ReactionWrites begin_rows(const Touched& touched);
  // `written`: the batch reached RocksDB (else it may have partly landed: every row is dropped).
  void end_rows(const Touched& touched, const ReactionWrites& reactions, bool written);
  // Every write goes through here: arms the WAL recovery, then writes.
  rocksdb::Status write(rocksdb::WriteOptions wo, rocksdb::WriteBatch* wb);
  // RocksDB's no-space recovery replaces the WAL (and with it the writer that saw the
  // failed append) only when it has a non-empty memtable to flush; left in place, that
  // writer aborts the process on its next append (the assertion Debian's build keeps on).
  // So before a WAL write, the default column family's memtable must hold something: a
  // marker written without the WAL, again after each seal of that memtable or background
  // error (HealthListener::memtable_epoch).
  rocksdb::Status arm_wal_recovery();
  rocksdb::ReadOptions read_options(const rocksdb::Snapshot* snap = nullptr) const;
  // The blocking bodies of the request-path reads, run on readers_.
  Result<std::optional<Comment>> read_comment(const Uuid& id);
  Result<ScanResult> read_scan(const ScanRequest& req);
  Result<bool> read_has_entries(Index index, const Uuid& key);
  Result<std::vector<CommentMetrics>> read_metrics(const std::vector<Uuid>& ids);
  Result<VideoStats> read_video_stats(const Uuid& video_id);
  // A user's reactions in a video, from one prefix scan; nullopt when there are more than a
  // scan's worth (then read_reactions reads this page's registers instead).
  using UserReactions = std::vector<std::pair<Uuid, ReactionType>>;
  // A page's reactions come from one prefix scan of the user's reactions in the video (and
  // that list is cached); a user with more than this many there is answered by point reads.
  static constexpr size_t kMaxCachedReactions = 64;
  Result<std::optional<UserReactions>> read_user_reactions(const Uuid& video_id, const Uuid& user_id);
  Result<std::vector<ReactionType>> read_reactions(const Uuid& video_id, const Uuid& user_id,
                                                   const std::vector<Uuid>& comment_ids,
                                                   uint64_t fill_epoch);
  Result<UserView> read_user_view(const Uuid& video_id, const Uuid& user_id);
  // Runs fn() (unless `d` has passed) inline if the gate allows, else on readers_, and
  // completes on the caller's executor; reports fn()'s duration to the gate.
  template <class F>
  auto on_reader(Deadline d, F fn) -> asio::awaitable<std::invoke_result_t<F&>>;
  // fn() on this thread, begun at `now_ns`, as on_reader's inline reads: counted, and held
  // by the gate while it runs. REQUIRES: read_gate_.inline_ok(now_ns).
  template <class F>
  auto read_here(F& fn, int64_t now_ns) -> std::invoke_result_t<F&>;
  // fn(), begun at `start_ns`: the gate learns its duration and whether it read a table file.
  template <class F>
  auto timed_read(F& fn, int64_t start_ns) -> std::invoke_result_t<F&>;
  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles_[c]; }

  RocksOptions opts_;
  StoreStats stats_;
  std::shared_ptr<HealthListener> health_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<asio::thread_pool> readers_;
  ReadGate read_gate_;

  struct RowCaches {
    explicit RowCaches(size_t bytes, RowCacheStats& st);
    RowCache<Uuid, std::optional<Comment>, UuidHash> comments;
    RowCache<std::pair<Uuid, Uuid>, UserView, UuidPairHash> views;
    RowCache<std::pair<Uuid, Uuid>, UserReactions, UuidPairHash> reactions;
  };
  std::unique_ptr<RowCaches> rows_;  // set by open()

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // GUARDED_BY(mu_)
  bool closing_ = false;       // GUARDED_BY(mu_)
  std::thread writer_;

  // Owned by the writer thread after open(); read elsewhere through the atomic.
  uint64_t next_op_seq_ = 1;
  uint64_t next_outbox_seq_ = 1;
  std::atomic<uint64_t> last_op_seq_{0};
  std::atomic<uint64_t> last_outbox_seq_{0};

  std::mutex arm_mu_;                      // serializes arm_wal_recovery's marker writes
#if defined(__SANITIZE_THREAD__)
  std::mutex tsan_write_mu_;               // write(): one db write at a time under TSan
#endif
  std::atomic<uint64_t> armed_epoch_{0};   // memtable_epoch() + 1 when the marker was written
};

}  // namespace commentd::store::rocks

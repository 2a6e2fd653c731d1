// The Store on CQL (Cassandra, ScyllaDB) through the bridge's CqlSession, following the write
// model of docs/cluster.md. The keyspace must be migrated (`commentd migrate`, schema.h).
//
// Reads: request-path reads never start past their Deadline (Errc::deadline_exceeded), run
// with a driver timeout capped by what is left of it, and a driver timeout or lost node
// answers Errc::unavailable (or deadline_exceeded once the deadline has passed). Reads are
// idempotent (the driver may retry them).
//
// commit(WriteSet), in this order (docs/cluster.md "Every write"):
//  1. Preconditions without a write of their own (a reply's parent, a consumer position
//     checked but not moved) are read through Paxos (a conditional delete that never applies).
//  2. The entity write: a PutComment with a CommentAt on the same id is ONE conditional write
//     on `comments` (version 0: INSERT IF NOT EXISTS; else UPDATE ... IF version = ?); a
//     SetConsumerPos with a ConsumerAt on the same consumer is ONE conditional write on
//     `consumer_positions`. Not applied -> Errc::conflict and nothing else is written.
//     REQUIRES at most one conditional write per WriteSet (else Errc::internal).
//  3. Derived rows, idempotent (retried by the driver): indexes, buckets, reactions with
//     USING TIMESTAMP from the op (LWW), the user's hidden rows and read-your-writes mark,
//     the counters' *_meta last_updated with USING TIMESTAMP = at (so the max wins).
//     The writes of one partition go as one unlogged batch (exec_writes, group_writes).
//  4. Log appends (AppendReactionOp, AppendOutbox): sequences owned by this node's log
//     writer, written in one logged batch per group with the log's head; a sequence becomes
//     visible (read_ops, read_outbox_entries, last_*_seq) only once it and every lower one
//     are durable.
//  5. Counter deltas, never retried.
// A failure after step 2 answers the error (Errc::unavailable) although the entity write
// stands. Before step 2, a write with an entity write on a comment records steps 3 and 4 in
// a commit intent (commit_intent.h), and its entity write names the intent in the comment
// row; the intent is deleted once the write is whole (or refused). sweep_intents() rolls
// forward the intents whose write died after its entity write (docs/cluster.md "Commit
// intents"); counters are the counter repair's (a roll-forward marks them for it).
//
// A storage circuit breaker (core/circuit_breaker.h) wraps every CQL call: after
// `breaker.failures` calls in a row time out or find no connection, calls fail at once with
// Errc::unavailable ("storage_unavailable") for `breaker.open_for`, then one probe goes. So a
// dead or frozen cluster answers writes 503 at once instead of after request_timeout each,
// and the service recovers by itself within open_for of the cluster's return. A frozen
// (hung, not refusing) cluster opens it sooner: no answer to any call for
// `storage.cql.stall_timeout` while 3 or more wait (breaker.stall_after, stall_calls).
//
// Snapshot recounts (recount_comment/recount_video) and list_ids are not offered: CQL has no
// snapshots (docs/cluster.md "Reconciliation repair"); they answer Errc::unavailable.
//
// Thread-safe. Reads in cql_store.cpp (video pages in cql_pages.cpp), writes in cql_commit.cpp,
// logs in cql_logs.cpp.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bridge/cql_client.h"
#include "config/config.h"
#include "core/circuit_breaker.h"
#include "core/clock.h"
#include "core/uuid.h"
#include "store/cql/bucket_lists.h"
#include "store/cql/page_rows.h"
#include "store/store.h"
#include "store/user_rows_cache.h"

namespace commentd::store::cql {

struct CqlStoreOptions {
  // keyspace, consistency, request_timeout; bucketed_pages: a video's pages from its time
  // buckets (comments_by_video_bucketed walked through video_buckets, docs/cluster.md "Time
  // buckets"), else from the one comments_by_video partition (the path before buckets).
  config::CqlConfig cql;
  uint32_t node_id = 1;   // owns this node's op log, outbox and consumer positions
  size_t max_in_flight_commits = 10000;  // more: Errc::overloaded
  // probe_timeout 0 here: open() uses request_timeout + 1 s (a probe's longest wait).
  CircuitBreaker::Options breaker{.failures = 3, .open_for = std::chrono::milliseconds(1000)};
  // Tests only: a commit with a commit intent stops, answering Errc::unavailable, right before
  // or right after its entity write, as a node killed there would; or its log append fails
  // (nothing of it written), as Cassandra refusing the log's batch would.
  enum class CommitFault { none, before_entity_write, after_entity_write, log_append };
  CommitFault testing_commit_fault = CommitFault::none;
  // How often a node that reads the user's view from user_hidden looks for the fold marker
  // (schema.h kFoldMarkerJob), beside a read it makes anyway.
  std::chrono::milliseconds fold_poll{10000};
  // Where the session's statements are counted; null: the store's own (statement_metrics()).
  // Outlives the store.
  bridge::CqlMetrics* metrics = nullptr;
};

// How old a commit intent must be before sweep_intents() resolves it: longer than any live
// write takes from its intent to its last step (each step is bounded by request_timeout, and
// the log writer's queue by the same), so a sweep never races the write it would repair.
inline std::chrono::milliseconds intent_settle(const config::CqlConfig& c) {
  return std::max<std::chrono::milliseconds>(std::chrono::seconds(60), 6 * c.request_timeout);
}

struct IntentStats {
  std::atomic<uint64_t> sweeps{0}, failed_sweeps{0};
  std::atomic<uint64_t> rolled_forward{0};  // the entity write won: its steps 3-4 written again
  std::atomic<uint64_t> never_applied{0};   // the entity write never happened: dropped
  std::atomic<uint64_t> lost{0};            // another write took the version: dropped
  std::atomic<uint64_t> unresolved{0};      // the row moved kIntentSlots versions on: dropped, logged
};

// (comment, user): a reaction owner's rows whose user_reactions write a request's mark covers
// (written by that request already).
using WrittenRows = std::set<std::pair<Uuid, Uuid>>;

class CqlStore final : public Store {
 public:
  // Connects (through `rt`, which must outlive the store) and prepares every statement.
  // Blocking. Errc::unavailable when the cluster cannot be reached, internal when the
  // keyspace is not migrated.
  static Result<std::unique_ptr<CqlStore>> open(const bridge::Runtime& rt, const CqlStoreOptions& opts);
  ~CqlStore() override;

  asio::awaitable<Result<std::optional<Comment>>> get_comment(Uuid id, Deadline d) override;
  asio::awaitable<Result<ScanResult>> scan(ScanRequest req, Deadline d) override;
  asio::awaitable<Result<bool>> has_entries(Index index, Uuid key, Deadline d) override;
  asio::awaitable<Result<std::vector<CommentMetrics>>> get_metrics(std::vector<Uuid> ids, Deadline d) override;
  asio::awaitable<Result<std::vector<CommentMetrics>>> get_counts(std::vector<Uuid> ids, Deadline d) override;
  asio::awaitable<Result<VideoStats>> get_video_stats(Uuid video_id, Deadline d) override;
  asio::awaitable<Result<std::vector<ReactionType>>> get_reactions(Uuid video_id, Uuid user_id,
                                                                   std::vector<Uuid> comment_ids,
                                                                   Deadline d) override;
  asio::awaitable<Result<bool>> has_hidden(Uuid video_id, Uuid user_id, Deadline d) override;
  Result<std::vector<ReactionRow>> get_registers(const std::vector<std::pair<Uuid, Uuid>>& comment_user) override;
  asio::awaitable<Result<UserView>> get_user_view(Uuid video_id, Uuid user_id, Deadline d) override;
  // Both per-user rows at once (or their copy in the user-rows cache).
  asio::awaitable<Result<ViewAndReactions>> get_view_and_reactions(Uuid video_id, Uuid user_id, Deadline d) override;
  Result<std::optional<CommentRecount>> recount_comment(const Uuid& id) override;
  Result<VideoRecount> recount_video(const Uuid& video_id) override;
  Result<std::vector<Uuid>> list_ids(IdTable t, std::optional<Uuid> after, size_t max) override;
  Result<std::vector<ReactionOp>> read_ops(uint64_t after_seq, size_t max) override;
  Result<uint64_t> consumer_pos(const std::string& consumer) override;
  uint64_t last_op_seq() const override { return last_op_seq_.load(); }
  Result<std::vector<OutboxEntry>> read_outbox_entries(uint64_t after_seq, size_t max) override;
  uint64_t last_outbox_seq() const override { return last_outbox_seq_.load(); }
  void commit(WriteSet ws, CommitCallback done) override;
  Status commit_owned(WriteSet ws) override;
  Status trim_logs(uint64_t op_seq_upto, uint64_t outbox_delivered_upto, uint64_t outbox_keep) override;
  void close() override;
  bool ready() const override { return !closing_.load(); }

  size_t in_flight_commits() const { return in_flight_.load(); }
  // A shared cache of the per-user rows (redis/user_rows.h), asked before Cassandra by
  // get_user_view and get_reactions and invalidated by every commit that writes those rows
  // (after the write, before the ack). REQUIRES: set before serving; outlives the store.
  void set_user_rows_cache(UserRowsCache* c) { user_rows_.store(c); }
  // Stops using it, waiting (up to `max`) for the invalidations in flight: at shutdown, before
  // the cache's client stops. Later commits leave its copies to their TTL.
  void detach_user_rows_cache(std::chrono::milliseconds max);
  const CircuitBreaker& breaker() const { return *breaker_; }
  // Guarded counter updates (docs/cluster.md "Counter repair") left to the repairer: the
  // write ran past its window, or the update failed. The write itself succeeded.
  uint64_t counts_deferred() const { return counts_deferred_.load(); }
  // Writes whose events' append after the answer failed (their intents' roll-forward appends them).
  uint64_t appends_after_answer_failed() const { return appends_after_answer_failed_.load(); }

  // One pass of the commit intents' sweep (docs/cluster.md "Commit intents"): per shard, from
  // its sweep position, every intent older than `settle` is resolved (one node at a time, by
  // an expiring claim): its entity write is read through Paxos, and an intent whose write won
  // its version has its derived rows (at the intent's timestamp, so any later write of the
  // same rows wins) and outbox events written again, then is deleted; the others are deleted.
  // A shard's position moves past a minute once the minute is settled and empty.
  // Blocking (a worker thread); one pass at a time.
  Status sweep_intents(std::chrono::milliseconds settle);
  const IntentStats& intent_stats() const { return intent_stats_; }
  // Video pages' bucket lists (bucket_lists.h): hits, misses, recent buckets read besides.
  const BucketListStats& bucket_list_stats() const { return bucket_lists_->stats(); }
  // Comment rows kept for page builds (page_rows.h): forget() drops one (the
  // cache-invalidation subscriber's, for another node's change; this node's commits do it).
  const PageRowsStats& page_rows_stats() const { return page_rows_->stats(); }
  void forget_page_row(const Uuid& id) { page_rows_->forget(id); }
  // The user's view is read from user_reactions alone (the fold marker was seen; schema.h).
  bool user_view_folded() const { return view_folded_.load(); }
  // Every statement of this store's session, by statement (commentd_cql_* metrics), and the
  // driver's own counters.
  const bridge::CqlMetrics& statement_metrics() const { return metrics_; }
  bridge::CqlMetrics& statement_metrics() { return metrics_; }
  cb_cql_driver_metrics driver_metrics() const { return session_->driver_metrics(); }

  // The owner's recount (docs/cluster.md "Reaction apply"): the stored counters of
  // `comment` and its likes/dislikes counted from all its registers, read one after the
  // other at storage.cql.consistency (no snapshot). Exact only in the comment's owner, the
  // only writer of both; `video` is echoed into the answer. Blocking.
  Result<std::optional<CommentRecount>> owner_recount(const Uuid& comment, const Uuid& video);

  // Reaction owner leases (docs/cluster.md "Owner leases"): one conditional write per comment,
  // all at once. A lease asked with `renew` is renewed (IF owner = `owner`); the others are
  // taken when free (IF NOT EXISTS), and one found already naming `owner` (an earlier take
  // whose answer was lost) is renewed in a second round. Each write sets the row's TTL to
  // `ttl` (whole seconds, at least 1). Answer per comment, in order: held by `owner` now.
  // An error: the outcome of some is unknown (treat them as not held). Blocking.
  struct LeaseAsk {
    Uuid comment;
    bool renew = false;
  };
  Result<std::vector<bool>> hold_owner_leases(const std::vector<LeaseAsk>& asks, const std::string& owner,
                                              std::chrono::seconds ttl);
  // Ends the leases `owner` holds on `comments` (IF owner = ?), so their next owner need not
  // wait for the TTL. Blocking.
  Status release_owner_leases(const std::vector<Uuid>& comments, const std::string& owner);

  // Every prepared statement (cql_statements.cpp).
  struct Statements;
  // A statement and its values, for exec_all.
  struct Call {
    const bridge::Prepared* stmt;
    std::vector<bridge::Value> values;
    bridge::ExecOptions opts;
    // The serialized partition key the statement writes, when the caller names it (empty:
    // unknown). exec_writes sends the writes of one partition as one unlogged batch.
    std::string partition;
  };

 private:
  CqlStore() = default;

  // --- plumbing (cql_store.cpp)
  // Errc::unavailable when the breaker refuses a call now; nullopt when it may go.
  std::optional<Error> breaker_refusal();
  // Feeds one call's outcome to the breaker: only a failure that says the cluster is
  // unreachable or stuck counts, not a timeout cut short by the caller's own deadline.
  void breaker_note(const Error* e, std::chrono::milliseconds timeout);
  bridge::ExecOptions read_opts(Deadline d) const;
  // Both per-user rows from Cassandra (`complete`: every reaction fit the read's LIMIT), and
  // through user_rows_ when set (a hit, else the read and a guarded fill).
  struct UserRowsRead {
    UserRows rows;
    bool complete = true;
  };
  // One read of user_reactions once the user's view is folded into it (view_folded_), else
  // user_hidden and user_reactions at once (and, every fold_poll, the fold marker beside them).
  asio::awaitable<Result<UserRowsRead>> read_user_rows(Uuid video_id, Uuid user_id, Deadline d);
  // Folded (view_folded_): the rows of `users` of one video, one per user; one user's by
  // user_rows_get, more by one user_rows_in (padded with the last user), then hidden_any for
  // each user past the LIMIT.
  asio::awaitable<Result<std::vector<UserRowsRead>>> read_folded_rows(Uuid video_id, std::vector<Uuid> users,
                                                                      Deadline d);
  // Folded, with user_rows_in: a user's rows read with the other users' of the video asked
  // meanwhile (docs/cluster.md "Reads by key"). An asker reads at once (alone, or with those
  // waiting) while fewer than kUserRowsReadsPerVideo reads of the video are out on this node;
  // past that it waits for one to return and is read with the others that came,
  // keys_per_read at a time, by that read's reader (user_rows_reader).
  asio::awaitable<Result<UserRowsRead>> read_user_rows_together(Uuid video_id, Uuid user_id, Deadline d);
  asio::awaitable<void> user_rows_reader(Uuid video_id);
  asio::awaitable<Result<UserRowsRead>> cached_user_rows(UserRowsCache& cache, Uuid video_id, Uuid user_id,
                                                         Deadline d);
  // A copy's refill ahead of its TTL, under the token its lookup gave (the cache's refresh
  // ahead): the read, then the guarded fill. No token: the node's own copy to renew
  // (UserRowsCache::renew), then the same if that gives a token. REQUIRES: user_rows_busy_
  // counted for it.
  asio::awaitable<void> refresh_user_rows(Uuid video_id, Uuid user_id, std::optional<std::string> token);
  bridge::ExecOptions write_opts(bool idempotent) const;
  // The buckets `muts` write, into this node's bucket lists (bucket_lists.h). Before the write:
  // a name whose write then fails costs pages an empty read until the list expires.
  void note_buckets(const std::vector<Mutation>& muts);
  // get_metrics (with_time: also comment_metrics_meta.last_updated) and get_counts.
  asio::awaitable<Result<std::vector<CommentMetrics>>> read_metrics(std::vector<Uuid> ids, bool with_time, Deadline d);
  // read_metrics' decoding: the counts of `ids` from rows[first_call, end_call) (the reads
  // add_keyed_reads made with metrics_get / metrics_in), without last_updated.
  static Result<std::vector<CommentMetrics>> counts_of(const std::vector<bridge::Rows>& rows, size_t first_call,
                                                       size_t end_call, const std::vector<Uuid>& ids);
  bridge::ExecOptions serial_read_opts() const;
  asio::awaitable<Result<bridge::Rows>> exec(const bridge::Prepared& stmt, std::vector<bridge::Value> values,
                                             bridge::ExecOptions opts);
  static std::chrono::milliseconds shortest_timeout(const std::vector<Call>& calls);
  // Runs every call at once; all rows in order, or the first error.
  asio::awaitable<Result<std::vector<bridge::Rows>>> exec_all(std::vector<Call> calls);
  // Idempotent writes, all at once: the calls that name one partition go as unlogged batches
  // (group_writes), the others alone. Ok, or the first error (some may have landed).
  asio::awaitable<Status> exec_writes(std::vector<Call> calls);
  // Reads of one row per key (docs/cluster.md "Reads by key"). add_keyed_reads appends to
  // `calls` the reads of `ids`: `in` (key IN (...), opts_.cql.keys_per_read markers, a short
  // chunk padded with its last key) per keys_per_read of them, `one` (key = ?) for a chunk of
  // one or when `in` is null. Both select the key first. find_keyed then says, per id, which
  // of those calls' results and which row holds it (nullopt: none).
  using KeyedRow = std::optional<std::pair<size_t, size_t>>;
  void add_keyed_reads(std::vector<Call>& calls, const bridge::Prepared& one, const bridge::Prepared* in,
                       const std::vector<Uuid>& ids, Deadline d) const;
  static Result<std::vector<KeyedRow>> find_keyed(const std::vector<bridge::Rows>& rows, size_t first_call,
                                                  size_t end_call, const std::vector<Uuid>& ids);
  // Blocking forms, for the worker-side methods (never on an event-loop thread).
  Result<bridge::Rows> exec_blocking(const bridge::Prepared& stmt, std::vector<bridge::Value> values,
                                     bridge::ExecOptions opts);
  Result<std::vector<bridge::Rows>> exec_all_blocking(std::vector<Call> calls);
  // All index entries at `created_at` of one list, in the list's order.
  asio::awaitable<Result<std::vector<CursorPos>>> tie_group(Index index, Uuid key, TimeMs at, SortOrder sort,
                                                            Deadline d);
  // The page's comment rows for `entries` (keyed reads in parallel), in order. With
  // `video_list`, rows that are not in the video's top-level list are dropped: replies, and
  // deleted comments whose comments_by_video entry is gone (the bucketed history keeps both).
  // req.with_counts: their counts too (ScanResult::counts), read at the same time. With
  // req.reuse_generation, rows kept in page_rows_ for req.key under it are not read again,
  // and the rows read are kept. `req` outlives the call (the caller's own parameter).
  asio::awaitable<Result<ScanResult>> join_entries(std::vector<CursorPos> entries, const ScanRequest& req,
                                                   std::optional<Uuid> video_list, Deadline d);

  // --- time-bucketed video pages (cql_pages.cpp)
  asio::awaitable<Result<ScanResult>> scan_buckets(ScanRequest req, Deadline d);
  // Up to `limit` of the video's bucket names in walk order, starting at `from` (inclusive)
  // or after it, or from the first.
  asio::awaitable<Result<std::vector<std::string>>> list_buckets(Uuid video, SortOrder sort,
                                                                 std::optional<std::string> from, bool inclusive,
                                                                 int32_t limit, Deadline d);
  // Every bucketed entry at `at` (in its hourly and its daily bucket), deduplicated, in order.
  asio::awaitable<Result<std::vector<CursorPos>>> bucket_tie_group(Uuid video, TimeMs at, SortOrder sort,
                                                                   Deadline d);

  // --- writes (cql_commit.cpp)
  // A commit intent's row key.
  struct IntentKey {
    int32_t shard = 0;
    int64_t minute = 0;
    Uuid id;
  };
  struct LogAppend;
  // `finished`: set to the write's intent when it is to be deleted after the answer (the
  // write is whole, or refused with nothing written); left empty when the sweep must decide.
  // `after_answer`: the log append of a write with an intent, for commit() to make after the
  // answer (the intent is deleted only if it stands).
  asio::awaitable<Result<CommitResult>> run_commit(WriteSet ws, std::optional<IntentKey>& finished,
                                                   std::optional<LogAppend>& after_answer);
  // Step 3 of a commit: its derived rows, then the users' row copies they touched (both
  // before the answer). `ws` and `written` outlive the call (the commit awaits it).
  asio::awaitable<Status> write_derived(const WriteSet& ws, const WrittenRows& written, std::vector<Call> derived);
  // Per guarded counter of `ws` (docs/cluster.md "Counter repair"): its writes_started + 1
  // and its candidate row (`start`; none when this node wrote the key's candidate within
  // candidate_reuse_window, the others' keys added to `candidates`), or its writes_done + 1 alone.
  std::vector<Call> mark_calls(const WriteSet& ws, bool start, std::vector<std::string>* candidates = nullptr) const;
  // The candidates of `keys` (mark_calls' `candidates`) were written at `at_ms`.
  void note_candidates(const std::vector<std::string>& keys, int64_t at_ms);
  // writes_done + 1 for each guarded counter of a write refused before its entity write.
  asio::awaitable<void> release_marks(const WriteSet& ws);
  // `user_row`: false leaves out a PutReaction's user_reactions row (a request's mark covers it).
  void derived_calls(const Mutation& m, std::vector<Call>& out, bool user_row = true) const;
  void counter_calls(const Mutation& m, std::vector<Call>& out) const;

  // --- commit intents (cql_intents.cpp)
  // Each shard's sweep position, created (the current minute) where missing. Blocking.
  Result<std::vector<int64_t>> sweep_positions();
  enum class IntentOutcome { resolved, held };
  struct IntentRow {
    IntentKey key;
    Uuid comment_id;
    uint64_t version = 0;
    int64_t written_at_us = 0;
    std::string body;
    std::optional<int64_t> claim;
  };
  Result<IntentOutcome> resolve_intent(const IntentRow& row);
  // Writes the intent's derived rows and outbox events (`muts`, its decoded body) again.
  // Blocking.
  Status roll_forward(const IntentRow& row, std::vector<Mutation> muts);

  // --- logs (cql_logs.cpp)
  struct LogAppend {
    std::vector<ReactionOp> ops;
    std::vector<AppendOutbox> outbox;
    std::function<void(Result<CommitResult>)> done;
  };
  Status load_log_heads();
  void enqueue_log(LogAppend a);
  // Queues `append` for the log writer and answers once its group is written.
  asio::awaitable<Result<CommitResult>> append_logs(LogAppend append);
  void log_writer_loop();
  Status write_log_group(std::vector<LogAppend>& group, uint64_t op0, uint64_t ob0);
  int64_t next_write_timestamp_us();
  asio::awaitable<Result<bool>> move_consumer(std::string consumer, uint64_t from, uint64_t to);

  CqlStoreOptions opts_;
  bridge::Consistency consistency_ = bridge::Consistency::local_quorum;
  bridge::Consistency serial_ = bridge::Consistency::serial;
  bridge::CqlMetrics metrics_;  // before session_: outlives it
  std::unique_ptr<bridge::CqlSession> session_;
  std::unique_ptr<Statements> st_;
  // Completions of blocking calls and the commit coroutines run here.
  std::unique_ptr<asio::thread_pool> pool_;

  std::unique_ptr<CircuitBreaker> breaker_;
  std::atomic<UserRowsCache*> user_rows_{nullptr};
  std::atomic<int> user_rows_busy_{0};  // commits inside an invalidation, and refills ahead
  // read_user_rows_together's askers waiting, and readers running, by video.
  struct UserRowsAsk {
    Uuid user;
    Deadline d;
    std::function<void(Result<UserRowsRead>)> done;
  };
  struct UserRowsAsks {
    std::vector<UserRowsAsk> waiting;
    int readers = 0;
  };
  std::mutex user_asks_mu_;
  std::map<Uuid, UserRowsAsks> user_asks_;
  std::atomic<int64_t> breaker_logged_ms_{0};
  std::atomic<uint64_t> stalls_logged_{0};  // breaker stalls already logged
  std::atomic<bool> closing_{false};
  // The fold marker (schema.h kFoldMarkerJob) was read set: the user's view is read from
  // user_reactions alone. Read at open, then beside a split read once per fold_poll.
  std::atomic<bool> view_folded_{false};
  std::atomic<int64_t> fold_next_poll_ms_{0};
  std::atomic<size_t> in_flight_{0};
  std::atomic<uint64_t> counts_deferred_{0};
  std::atomic<uint64_t> appends_after_answer_failed_{0};
  // Counter repair candidates this node wrote: kind + key -> the write's wall time (ms).
  mutable std::mutex candidates_mu_;
  std::unordered_map<std::string, int64_t> candidates_written_;  // GUARDED_BY(candidates_mu_)
  IntentStats intent_stats_;
  std::unique_ptr<BucketLists> bucket_lists_;
  std::unique_ptr<PageRows> page_rows_;
  SystemClock clock_;
  std::unique_ptr<UuidGenerator> intent_ids_;
  std::mutex drain_mu_;
  std::condition_variable drained_;

  // The log writer: one thread, groups appends in order.
  std::mutex log_mu_;
  std::condition_variable log_cv_;
  std::deque<LogAppend> log_queue_;  // GUARDED_BY(log_mu_)
  bool log_stop_ = false;            // GUARDED_BY(log_mu_)
  std::thread log_writer_;
  uint64_t next_op_seq_ = 1;      // owned by the log writer after open()
  uint64_t next_outbox_seq_ = 1;  // owned by the log writer after open()
  std::atomic<uint64_t> last_op_seq_{0};
  std::atomic<uint64_t> last_outbox_seq_{0};
  std::atomic<int64_t> last_ts_us_{0};
  std::mutex trim_mu_;
  int64_t op_trimmed_block_ = 0;      // GUARDED_BY(trim_mu_): blocks below are deleted
  int64_t outbox_trimmed_block_ = 0;  // GUARDED_BY(trim_mu_)
};

}  // namespace commentd::store::cql

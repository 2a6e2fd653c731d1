// The storage seam. RocksStore (embedded, store/rocks/) implements it today; a CQL store for
// ScyllaDB/Cassandra plugs in here. Callers never see RocksDB or CQL types.
//
// Request-path reads are awaitable: each completes on the caller's executor with a Result
// and takes the request's Deadline. An implementation never starts a read whose deadline
// has passed (Errc::deadline_exceeded); the caller bounds how long it waits (store/async.h
// within()), so a read may finish after its caller gave up, and its result is dropped.
// A read is always complete: never a partial scan or a default value standing in for a row
// it could not read (it fails instead). Parameters are by value: coroutine parameters by
// reference dangle. The worker-side reads (registers, recounts, logs) are blocking.
// Writes are asynchronous: commit() queues a WriteSet for the writer, which checks its
// preconditions and applies all of its mutations atomically and durably, then calls back.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/cursor.h"
#include "core/deadline.h"
#include "core/error.h"
#include "core/model.h"

namespace commentd::store {

namespace asio = boost::asio;

// The list indexes: comments_by_video (top-level comments of a video) and replies (the
// replies of one thread). Order: created_at DESC, then id DESC (see store/rocks/codec.h).
enum class Index : uint8_t { video = 0, replies = 1 };

struct ScanRequest {
  Index index = Index::video;
  Uuid key;                         // video_id or parent_id
  SortOrder sort = SortOrder::newest;
  std::optional<CursorPos> after;   // start strictly after this position
  size_t max_rows = 20;
  // Also the joined rows' counts (ScanResult::counts), read beside the rows: where a read is
  // a round trip (CQL), a page needs no get_counts after its scan.
  bool with_counts = false;
  // Set by a caller that keeps what it builds under a generation of the list (the page
  // cache's version of the video, which every edit, delete and moderation of its comments
  // moves): an engine that reads rows by key (CQL) may answer a row it read for an earlier
  // scan of the same list under the same generation instead of reading it again
  // (store/cql/page_rows.h). Counts are read all the same. Engines holding rows in memory
  // ignore it.
  std::optional<uint64_t> reuse_generation;
};

struct ScanResult {
  std::vector<Comment> rows;   // joined from `comments`, in list order
  std::optional<CursorPos> last;  // position of the last index entry scanned
  bool exhausted = false;      // no entries after `last`
  // with_counts: one per row, as get_counts answers them; empty when the engine did not read
  // them (the caller asks get_counts).
  std::vector<CommentMetrics> counts;
};

// --- mutations: typed rows, applied atomically by one commit -----------------------------
struct PutComment { Comment comment; };
struct IndexPut { Index index; Uuid key; TimeMs created_at; Uuid id; };
struct IndexDelete { Index index; Uuid key; TimeMs created_at; Uuid id; };
// comments_by_video_bucketed: (video_id, time_bucket) partitions; a video's whole history
// (a delete leaves the lists, not this table). `bucket` is comment_bucket(created_at, ...)
// (core/clock.h): the hourly or the daily bucket of created_at, nothing else.
// On CQL the video list is paged from these rows (docs/cluster.md "Time buckets"), so every
// IndexPut{video} comes with its BucketPut, and an IndexDelete{video} only with the comment's
// deletion (status deleted): the reader drops replies and deleted comments whose list entry
// is gone.
struct BucketPut { Uuid video_id; std::string bucket; TimeMs created_at; Uuid id; };
// Counts `user`'s non-public comments in `video` (so their lists skip the shared cache):
// set=true adds one, set=false removes one. REQUIRES: calls balance per comment.
struct HiddenMark { Uuid video_id; Uuid user_id; Uuid id; bool set; };
// Read-your-writes across nodes (docs/cluster.md): `user` wrote to `video` and reads it
// fresh, bypassing the shared page cache, until `until` (the max of all marks is kept).
struct RecentWrite { Uuid video_id; Uuid user_id; TimeMs until; };
// The user's entry in the reactions-by-video access path, written with the reaction op so
// the user reads their reaction on any node before the applier has applied it. The applier
// rewrites it with the register's winner when it applies the op. `at`/`node_id`: the op's
// LWW order (ReactionRow's timestamp and node), so that CQL keeps the same winner here as in
// the register whatever order the writes land in (0: none given, the write's own time).
struct UserReactionPut {
  Uuid video_id;
  Uuid user_id;
  Uuid comment_id;
  ReactionType type;
  TimeMs at = 0;
  uint32_t node_id = 0;
};
// Counter deltas (the plan's counter columns); last_updated takes the max.
struct MetricsDelta { Uuid comment_id; int64_t likes = 0, dislikes = 0, replies = 0; TimeMs at = 0; };
struct StatsDelta { Uuid video_id; int64_t comments = 0, reactions = 0; TimeMs at = 0; };
// The (comment, user) register. type none is kept as a tombstone so LWW order holds.
// Also maintains the user's reactions by video (one read answers a whole page).
struct PutReaction { Uuid comment_id; Uuid user_id; Uuid video_id; ReactionRow row; };
// reaction_events: the plan's event log of reaction changes.
struct PutReactionEvent { Uuid comment_id; TimeMs at; Uuid reaction_id; Uuid user_id; ReactionType type; bool add; };
// Append to the durable op log; its seq is assigned by the writer and returned.
struct AppendReactionOp { ReactionOp op; };
// Append a domain event to the outbox (relayed to the event bus). Durable once commit()
// answers; on CQL a comment write's events may reach read_outbox_entries just after the
// answer, from the write's commit intent (docs/cluster.md "Writes").
struct AppendOutbox { std::string topic; std::string key; std::string payload; };
// A consumer's position in the op log.
struct SetConsumerPos { std::string consumer; uint64_t seq; };

using Mutation = std::variant<PutComment, IndexPut, IndexDelete, BucketPut,
                              HiddenMark, MetricsDelta, StatsDelta,
                              PutReaction, PutReactionEvent, AppendReactionOp, AppendOutbox,
                              SetConsumerPos, RecentWrite, UserReactionPut>;

// The comment row must be at `version` (0 = must not exist, or be absent).
struct CommentAt { Uuid id; uint64_t version; };
// The consumer's position must be `seq`.
struct ConsumerAt { std::string consumer; uint64_t seq; };
using Precondition = std::variant<CommentAt, ConsumerAt>;

struct WriteSet {
  std::vector<Precondition> preconditions;
  std::vector<Mutation> mutations;
};

// One outbox entry, decoded (the relay's input).
struct OutboxEntry {
  uint64_t seq = 0;  // position in the outbox: strictly increasing, never reused
  std::string topic;
  std::string key;
  std::string payload;
};

struct CommitResult {
  std::vector<uint64_t> op_seqs;  // one per AppendReactionOp, in order
};

// Errc::conflict when a precondition does not hold (nothing written); Errc::overloaded when
// the write queue is full; Errc::unavailable after close().
using CommitCallback = std::function<void(Result<CommitResult>)>;

class Store {
 public:
  virtual ~Store() = default;

  virtual asio::awaitable<Result<std::optional<Comment>>> get_comment(Uuid id, Deadline d) = 0;
  // The same read answered synchronously, when the implementation holds the comment's exact
  // row in this process's memory: the comment, or nullopt inside when it is known absent.
  // nullopt outside: not in memory, call get_comment(). Never blocks or does I/O, so the
  // caller needs no deadline race for it (as PageCache::try_lookup).
  virtual std::optional<std::optional<Comment>> try_get_comment(const Uuid& id) {
    (void)id;
    return std::nullopt;
  }
  virtual asio::awaitable<Result<ScanResult>> scan(ScanRequest req, Deadline d) = 0;
  // Does the index have any entry under `key` (e.g. does a comment have replies)?
  virtual asio::awaitable<Result<bool>> has_entries(Index index, Uuid key, Deadline d) = 0;
  // One per id, in order; zeros for a comment with no counters.
  virtual asio::awaitable<Result<std::vector<CommentMetrics>>> get_metrics(std::vector<Uuid> ids,
                                                                           Deadline d) = 0;
  // The same without last_updated (0), for what shows counts (pages, a comment's JSON, the
  // counter cache): an engine that keeps last_updated apart (CQL: a counter table holds only
  // counters) skips that read.
  virtual asio::awaitable<Result<std::vector<CommentMetrics>>> get_counts(std::vector<Uuid> ids, Deadline d) {
    auto m = co_await get_metrics(std::move(ids), d);
    if (m)
      for (auto& x : *m) x.last_updated = 0;
    co_return m;
  }
  virtual asio::awaitable<Result<VideoStats>> get_video_stats(Uuid video_id, Deadline d) = 0;
  // The caller's reaction to each comment of `video_id` (none where there is none).
  virtual asio::awaitable<Result<std::vector<ReactionType>>> get_reactions(
      Uuid video_id, Uuid user_id, std::vector<Uuid> comment_ids, Deadline d) = 0;
  // Does `user_id` have non-public comments in `video_id`?
  virtual asio::awaitable<Result<bool>> has_hidden(Uuid video_id, Uuid user_id, Deadline d) = 0;

  // The registers of arbitrary (comment, user) pairs (the reaction applier). Blocking.
  virtual Result<std::vector<ReactionRow>> get_registers(
      const std::vector<std::pair<Uuid, Uuid>>& comment_user) = 0;
  // What decides whether `user` reads `video` through the shared page cache: has the user
  // non-public comments there, and until when is a recent write of theirs to be read fresh.
  struct UserView { bool hidden = false; TimeMs recent_until = 0; };
  virtual asio::awaitable<Result<UserView>> get_user_view(Uuid video_id, Uuid user_id, Deadline d) = 0;
  // The view and, where the store reads them in the same round trip, every reaction of the
  // user in the video (a list request needs both: the page's reactions are then known before
  // the page is, instead of read after it). reactions nullopt: not read, or more than the
  // store reads at once; ask get_reactions. By default the view alone.
  struct ViewAndReactions {
    UserView view;
    std::optional<std::vector<std::pair<Uuid, ReactionType>>> reactions;
  };
  virtual asio::awaitable<Result<ViewAndReactions>> get_view_and_reactions(Uuid video_id, Uuid user_id, Deadline d) {
    auto v = co_await get_user_view(video_id, user_id, d);
    if (!v) co_return v.take_error();
    co_return ViewAndReactions{*v, std::nullopt};
  }
  // Both answered synchronously, when the implementation holds the user's exact view and
  // every reaction of theirs in the video in this process's memory (as try_get_comment), or
  // can read what it lacks on the calling thread without waiting (the RocksStore, when its
  // read gate lets it): reactions then always set. nullopt: call get_view_and_reactions().
  virtual std::optional<ViewAndReactions> try_view_and_reactions(const Uuid& video_id, const Uuid& user_id) {
    (void)video_id;
    (void)user_id;
    return std::nullopt;
  }

  // Stored counters and a recount from the source of truth, read at one snapshot, so the
  // difference is exactly the drift (reconciliation). Blocking.
  struct CommentRecount { Uuid video_id; CommentMetrics stored; CommentMetrics truth; };
  struct VideoRecount { VideoStats stored; VideoStats truth; };
  virtual Result<std::optional<CommentRecount>> recount_comment(const Uuid& id) = 0;
  virtual Result<VideoRecount> recount_video(const Uuid& video_id) = 0;
  // Ids of comments (or videos) after `after`, in key order, at most `max`. Blocking.
  enum class IdTable { comments, videos };
  virtual Result<std::vector<Uuid>> list_ids(IdTable t, std::optional<Uuid> after,
                                             size_t max) = 0;
  // The op log after `seq`, at most `max` ops. Blocking.
  virtual Result<std::vector<ReactionOp>> read_ops(uint64_t after_seq, size_t max) = 0;
  virtual Result<uint64_t> consumer_pos(const std::string& consumer) = 0;
  virtual uint64_t last_op_seq() const = 0;
  // The outbox after `seq`, at most `max` entries, in seq order. Blocking.
  virtual Result<std::vector<OutboxEntry>> read_outbox_entries(uint64_t after_seq, size_t max) = 0;
  // The newest outbox seq handed out and durable (0 if none).
  virtual uint64_t last_outbox_seq() const = 0;

  virtual void commit(WriteSet ws, CommitCallback done) = 0;

  // Applies `ws` atomically and durably from the calling thread, beside the writer, for a
  // caller that alone writes every key its preconditions read (the reaction applier: its
  // position, the reaction rows; counter deltas commute). REQUIRES: no log appends.
  // Blocking.
  virtual Status commit_owned(WriteSet ws) = 0;

  // Retention: drops op-log entries up to `op_seq_upto` (REQUIRES: all applied) and outbox
  // events up to `outbox_delivered_upto` (the relay's delivered position) except the newest
  // `outbox_keep` of the outbox. Never drops an outbox event above `outbox_delivered_upto`.
  // Blocking.
  virtual Status trim_logs(uint64_t op_seq_upto, uint64_t outbox_delivered_upto,
                           uint64_t outbox_keep) = 0;

  // Stops the writer after draining queued commits; later commits fail with unavailable.
  virtual void close() = 0;
  virtual bool ready() const = 0;
};

}  // namespace commentd::store

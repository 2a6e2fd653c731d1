// What `commentd backfill` and the CQL `commentd --verify` share (backfill.cpp, verify.cpp):
// a session with their statements, blocking calls from worker threads, the recounts of one
// comment and one video from their sources of truth, and the parallel scan of a table by
// token ranges. Not part of any public interface.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bridge/cql_client.h"
#include "config/config.h"
#include "store/cql/cql_internal.h"
#include "store/cql/cql_store.h"

namespace commentd::store::cql::tool {

// One comment's stored counters and their recount (Store::CommentRecount semantics):
// likes/dislikes = the comment's registers of that type, replies_count = its replies (the
// `replies` partition of its id) whose status is counted (visible or null).
struct CommentCheck {
  Store::CommentRecount r;
  bool differs() const {
    return r.stored.likes != r.truth.likes || r.stored.dislikes != r.truth.dislikes ||
           r.stored.replies_count != r.truth.replies_count;
  }
};
// One video's: comments_count = its counted comments in comments_by_video_bucketed (every
// comment it ever had, replies included), reactions_count = the standing registers on them
// (RocksStore::recount_video's definition).
struct VideoCheck {
  Store::VideoRecount r;
  bool differs() const {
    return r.stored.comments_count != r.truth.comments_count ||
           r.stored.reactions_count != r.truth.reactions_count;
  }
};

// A connected session, its statements, and a CqlStore on the same keyspace (for its owner
// recount). Thread-safe; every call blocks (worker threads only, never an event loop).
class Tool {
 public:
  // REQUIRES: the keyspace is at the latest schema version (else Errc::internal).
  // `metrics`: where both its sessions' statements are counted (null: their store's own).
  static Result<std::unique_ptr<Tool>> open(const bridge::Runtime& rt, const config::CqlConfig& cfg,
                                            bridge::CqlMetrics* metrics = nullptr);
  ~Tool();

  // Reads are idempotent (retried by the driver); writes say so.
  Result<bridge::Rows> run(const bridge::Prepared& p, std::vector<bridge::Value> v, bool idempotent = true,
                           int32_t page_size = 0, std::string paging = {});
  // Every call at once; the first error, if any.
  Status run_all(std::vector<CqlStore::Call> calls);
  CqlStore::Call call(const bridge::PreparedPtr& p, std::vector<bridge::Value> v) const;

  // Every row of a single-partition query, page by page; `row` sees each page and its index.
  Status for_each_row(const bridge::Prepared& p, std::vector<bridge::Value> v,
                      const std::function<Status(const bridge::Rows&, size_t)>& row);

  // Every comment id in the video's bucketed history (replies included), bucket by bucket.
  Status for_each_video_comment(const Uuid& video, const std::function<Status(const Uuid&)>& fn);
  // The counted (visible or null status) comments of that history: comments_count's truth.
  // `step`, if set, runs before each comment is read (one read per comment: a large video's
  // recount is long); an error from it stops the count.
  Result<int64_t> count_video_comments(const Uuid& video, const std::function<Status()>& step = {});
  // The comment's counted replies (its `replies` partition): replies_count's truth.
  Result<int64_t> count_replies(const Uuid& comment, const std::function<Status()>& step = {});

  Result<CommentCheck> recount_comment(const Uuid& comment, const Uuid& video);
  Result<VideoCheck> recount_video(const Uuid& video);
  // Adds truth - stored to the counters (counters cannot be set). Not retried: a timed-out
  // add may still land, which is why callers recount again instead of adding again.
  Status add_difference(const Uuid& comment, const Store::CommentRecount& r);
  Status add_difference(const Uuid& video, const Store::VideoRecount& r);

  // A recount reads its comments' statuses this many per read (`id IN (...)`).
  static constexpr size_t kStatusesPerRead = 25;

  struct Statements {
    bridge::PreparedPtr scan_comments, scan_videos, scan_user_hidden;
    bridge::PreparedPtr fold_hidden_put, fold_recent_put;  // the user's view folded (schema step 10)
    bridge::PreparedPtr set_v1_version, comment_states;
    bridge::PreparedPtr bucket_put, video_bucket_put, hidden_put;
    bridge::PreparedPtr registers, user_reaction_put, user_reaction_delete;
    bridge::PreparedPtr replies_of, buckets_of, bucket_ids;
    bridge::PreparedPtr metrics_add, stats_get, stats_add;
    bridge::PreparedPtr progress_get, progress_put, progress_clear;
    // Counter repair (count_repair.h).
    bridge::PreparedPtr repairs_list, repairs_delete, stats_marks, metrics_marks;
    bridge::PreparedPtr claim_get, claim_new, claim_move, stats_repair, metrics_repair;
  };
  const Statements& st() const { return st_; }
  const config::CqlConfig& cfg() const { return cfg_; }

 private:
  Tool() = default;
  // How many of `ids` (at most kStatusesPerRead, distinct) are counted, in one read.
  Result<int64_t> count_counted(const std::vector<Uuid>& ids);
  // The counts' recounts below: each id through `step`, then read kStatusesPerRead at a time.
  Result<int64_t> count_ids(const std::function<Status(const std::function<Status(const Uuid&)>&)>& each,
                            const std::function<Status()>& step);

  config::CqlConfig cfg_;
  bridge::Consistency consistency_ = bridge::Consistency::local_quorum;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::unique_ptr<bridge::CqlSession> session_;
  std::unique_ptr<CqlStore> store_;
  Statements st_;
};

// The Murmur3 token ring split in `n` equal ranges: range i is (start(i), end(i)].
struct TokenRanges {
  int n;
  int64_t start(int i) const;
  int64_t end(int i) const;
  // How much of range i is covered once every token <= `at` is done, in [0, 1].
  double covered(int i, int64_t at) const;
};

// A parallel scan of one table by token ranges, with a checkpoint after every page.
struct ScanSpec {
  std::string phase;                 // "comments", "videos": the checkpoint's phase
  const bridge::Prepared* select;    // SELECT token(key), ... WHERE token(key) > ? AND token(key) <= ?
  int ranges = 256;
  int concurrency = 8;
  int32_t page_size = 500;
  double max_rate = 0;               // rows per second over all workers; 0 = unlimited
  // One row (column 0 is its token). Must be idempotent: a range resumes after the last
  // checkpointed page, so rows of a page cut short by a crash are handled again.
  std::function<Status(const bridge::Rows&, size_t)> row;
  // Where a range starts (its checkpoint; nullopt = from its start) and is done: the
  // resumable scan's bookkeeping. Both may be empty (verify keeps no checkpoints).
  std::function<Result<std::optional<int64_t>>(int range)> resume_at;  // nullopt: done already
  std::function<Status(int range, int64_t token, bool done, uint64_t rows)> checkpoint;
  FILE* progress = nullptr;          // a line every progress_every; nullptr = silent
  std::chrono::milliseconds progress_every{2000};
};
struct ScanOutcome {
  uint64_t rows = 0;
  int ranges_skipped = 0;  // done before this run
};
// Stops at the first error (the other workers finish their current row).
Result<ScanOutcome> scan(Tool& t, const ScanSpec& spec);

}  // namespace commentd::store::cql::tool

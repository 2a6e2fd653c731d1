// `commentd backfill` (docs/operations.md section 3): brings V1-shaped data written by the old
// service (rows with a null `version`, no V2 rows, no counters) up to what commentd reads and
// writes on CQL. Two phases, each a parallel scan by token ranges with a checkpoint per page
// in `backfill_progress` (schema step 5):
//  1. "comments" (every row of `comments`): the V1 row's first version (`version = 1`,
//     `reply_to = parent_id`, `depth` 0 or 1, `edited`, one conditional write `IF version =
//     null`), its bucket row and `video_buckets` entry, the author's `user_hidden` row for a
//     non-public comment, `user_reactions` from its registers, and its `comment_metrics`
//     counters set to the recount (likes, dislikes from the registers through
//     CqlStore::owner_recount; replies_count from its counted replies).
//  2. "videos" (every video of `video_buckets`, so after phase 1): `video_stats` set to the
//     recount of the video's bucketed comments.
//  3. "user_view" (every row of `user_hidden`): the user's view folded into `user_reactions`
//     (schema step 10: `hidden`, and `recent_until` in its own row), then the fold marker (schema.h), after
//     which nodes read a user's view of a video from user_reactions alone. Run it once every
//     node runs a release that writes both tables, alone (`--phase user_view`) on a live
//     keyspace (docs/operations.md section 2, step 4).
// Counters cannot be set: each is moved by (recount - stored). Every step is idempotent, so
// a run killed at any point (kill -9) and run again finishes with the same result: the
// conditional version write applies once, derived rows are the same rows again, and a
// counter's difference is recomputed from what is stored, so an add that landed before the
// kill is not added twice. Concurrent writers: see docs/operations.md section 3.
// Blocking: the CLI.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "bridge/runtime.h"
#include "config/config.h"
#include "core/error.h"

namespace commentd::store::cql {

struct BackfillOptions {
  std::string job = "v1";  // the checkpoints' key: another name starts afresh
  int ranges = 256;        // token ranges; a job keeps the count of its first run
  int concurrency = 8;     // ranges scanned at once (each one row at a time)
  int page_size = 500;     // rows per page, and per checkpoint
  double max_rate = 0;     // rows per second over all workers; 0 = unlimited
  bool restart = false;    // forget the job's checkpoints first
  // "": every phase in order; else only this one ("comments", "videos", "user_view"). An
  // upgrade runs "user_view" alone: the others recount counters, unsafe beside live writers.
  std::string phase;
  FILE* progress = nullptr;  // progress lines (stderr in the CLI); nullptr = silent
};

struct BackfillOutcome {
  uint64_t comments = 0, videos = 0;     // rows handled by this run
  uint64_t user_view_rows = 0;           // user_hidden rows folded by this run
  uint64_t versions_set = 0;             // V1 rows given their first version
  uint64_t comment_counters_moved = 0, video_counters_moved = 0;
  int ranges_skipped = 0;                // done by an earlier run
};

Result<BackfillOutcome> run_backfill(const bridge::Runtime& rt, const config::CqlConfig& cfg,
                                     const BackfillOptions& opts);

// `commentd backfill --config F [flags]`; `args` are the flags after the config's.
// 0 when done, 1 with the reason on stderr, 2 for a bad flag.
int run_backfill_command(const config::Config& config, const std::vector<std::string>& args);

}  // namespace commentd::store::cql

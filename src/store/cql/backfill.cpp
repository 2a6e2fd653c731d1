// `commentd backfill`: the phases and why each step is idempotent are in backfill.h.
#include "store/cql/backfill.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "core/clock.h"
#include "store/cql/backfill_internal.h"
#include "store/cql/schema.h"

namespace commentd::store::cql {

using bridge::Rows;
using bridge::Value;

namespace {

constexpr const char* kMeta = "meta";  // phase of the row keeping the job's range count

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Checkpoint {
  int64_t next_token = 0;
  bool done = false;
};

class Backfill {
 public:
  Backfill(tool::Tool& t, const BackfillOptions& o) : t_(t), o_(o) {}

  Result<BackfillOutcome> run() {
    if (o_.restart) {
      auto r = t_.run(*t_.st().progress_clear, args(txt(o_.job)));
      if (!r) return r.take_error();
    }
    if (auto st = load_checkpoints(); !st) return st.error();
    BackfillOutcome out;
    for (const char* phase : {"comments", "videos", "user_view"}) {
      if (!o_.phase.empty() && o_.phase != phase) continue;
      tool::ScanSpec spec;
      spec.phase = phase;
      const bool comments = spec.phase == "comments", views = spec.phase == "user_view";
      spec.select = comments ? t_.st().scan_comments.get()
                    : views  ? t_.st().scan_user_hidden.get()
                             : t_.st().scan_videos.get();
      spec.ranges = ranges_;
      spec.concurrency = o_.concurrency;
      spec.page_size = o_.page_size;
      spec.max_rate = o_.max_rate;
      spec.progress = o_.progress;
      spec.row = [this, comments, views](const Rows& r, size_t i) {
        return comments ? comment_row(r, i) : views ? user_view_row(r, i) : video_row(r, i);
      };
      const tool::TokenRanges tr{ranges_};
      spec.resume_at = [this, tr, phase = spec.phase](int range) -> Result<std::optional<int64_t>> {
        auto it = saved_.find({phase, range});
        if (it == saved_.end()) return std::optional<int64_t>(tr.start(range));
        if (it->second.done) return std::optional<int64_t>();
        return std::optional<int64_t>(it->second.next_token);
      };
      spec.checkpoint = [this, phase = spec.phase](int range, int64_t token, bool done, uint64_t rows) -> Status {
        auto w = t_.run(*t_.st().progress_put,
                        args(txt(o_.job), txt(phase), Value::int32(range), big(token), Value::boolean(done),
                             big(static_cast<int64_t>(rows)), ts(wall_ms())));
        return w ? ok_status() : Status(w.take_error());
      };
      auto s = tool::scan(t_, spec);
      if (!s) return Error(s.error().code, std::string(phase) + " phase: " + s.error().message);
      if (comments) out.comments = s->rows;
      if (views) out.user_view_rows = s->rows;
      out.ranges_skipped += s->ranges_skipped;
    }
    // Every range of "user_view" is done: user_hidden is folded, and nodes read the fold alone.
    if (!o_.phase.empty() && o_.phase != "user_view") return out;
    auto m = t_.run(*t_.st().progress_put, args(txt(std::string(kFoldMarkerJob)), txt(std::string(kFoldMarkerPhase)),
                                                Value::int32(0), big(0), Value::boolean(true),
                                                big(static_cast<int64_t>(out.user_view_rows)), ts(wall_ms())));
    if (!m) return Error(m.error().code, "fold marker: " + m.error().message);
    out.videos = videos_.load();
    out.versions_set = versions_set_.load();
    out.comment_counters_moved = comment_moves_.load();
    out.video_counters_moved = video_moves_.load();
    return out;
  }

 private:
  // The job's checkpoints, and its range count (the first run's, kept in a "meta" row).
  Status load_checkpoints() {
    auto st = t_.for_each_row(*t_.st().progress_get, args(txt(o_.job)), [&](const Rows& r, size_t i) -> Status {
      auto phase = r.bytes(i, 0);
      auto range = r.i64(i, 1), token = r.i64(i, 2);
      auto done = r.boolean(i, 3);
      if (!phase || !*phase || !range || !*range || !token || !done)
        return Error(Errc::internal, "cql: corrupt backfill_progress row");
      saved_[{std::string(**phase), static_cast<int>(**range)}] = Checkpoint{token->value_or(0), done->value_or(false)};
      return ok_status();
    });
    if (!st) return st;
    ranges_ = o_.ranges;
    if (auto it = saved_.find({kMeta, 0}); it != saved_.end()) {
      if (it->second.next_token != o_.ranges)
        spdlog::info("backfill: job {} keeps the {} token ranges of its first run", o_.job, it->second.next_token);
      ranges_ = static_cast<int>(it->second.next_token);
      return ok_status();
    }
    auto w = t_.run(*t_.st().progress_put, args(txt(o_.job), txt(kMeta), Value::int32(0), big(ranges_),
                                                Value::boolean(false), big(0), ts(wall_ms())));
    return w ? ok_status() : Status(w.take_error());
  }

  // Columns of scan_comments: token, id, video_id, user_id, created_at, updated_at,
  // parent_id, status, version.
  Status comment_row(const Rows& r, size_t i) {
    auto id = r.uuid(i, 1), video = r.uuid(i, 2), user = r.uuid(i, 3), parent = r.uuid(i, 6);
    auto created = r.i64(i, 4), updated = r.i64(i, 5), version = r.i64(i, 8);
    auto status = r.bytes(i, 7);
    if (!id || !*id || !video || !user || !parent || !created || !updated || !version || !status)
      return Error(Errc::internal, "cql: corrupt comments row");
    const Uuid cid = from_cql(**id);
    if (!*video) {
      spdlog::warn("backfill: comment {} has no video_id: left as it is", cid.str());
      return ok_status();
    }
    const Uuid vid = from_cql(**video);
    const TimeMs at = created->value_or(0);

    // 1. The first version: a conditional write that applies only while the version is null
    // (a rerun, or an edit that came first, finds it set and changes nothing).
    if (!version->has_value()) {
      const bool reply = parent->has_value();
      auto w = t_.run(*t_.st().set_v1_version,
                      args(reply ? V(from_cql(**parent)) : Value::null(), Value::int32(reply ? 1 : 0),
                           Value::boolean(updated->value_or(at) > at), V(cid)),
                      /*idempotent=*/true);  // a replayed `IF version = null` does not apply twice
      if (!w) return w.take_error();
      if (w->applied().value_or(false)) versions_set_.fetch_add(1);
    }

    // 2. Derived rows: the same rows on every run.
    std::vector<CqlStore::Call> calls;
    const std::string bucket = time_bucket(at);
    calls.push_back(t_.call(t_.st().bucket_put, args(V(vid), txt(bucket), ts(at), V(cid))));
    calls.push_back(t_.call(t_.st().video_bucket_put, args(V(vid), txt(bucket))));
    const std::string_view s = *status ? **status : std::string_view("visible");
    if (user->has_value() && (s == "hidden" || s == "pending" || s == "spam")) {
      calls.push_back(t_.call(t_.st().hidden_put, args(V(vid), V(from_cql(**user)), V(cid))));
      calls.push_back(t_.call(t_.st().fold_hidden_put, args(big(started_us_), V(vid), V(from_cql(**user)), V(cid))));
    }
    if (auto st = t_.run_all(std::move(calls)); !st) return st;

    // 3. The readers' access path to their reactions, written USING TIMESTAMP of the
    // register's own LWW order (docs/cluster.md rule 5): a later reaction commentd wrote
    // always wins over this copy, and a rerun writes the same cell.
    calls.clear();
    auto flush = [&]() -> Status {
      auto st = t_.run_all(std::move(calls));
      calls.clear();
      return st;
    };
    auto st = t_.for_each_row(*t_.st().registers, args(V(cid)), [&](const Rows& g, size_t k) -> Status {
      auto u = g.uuid(k, 0);
      auto type = g.bytes(k, 1);
      auto when = g.i64(k, 2), node = g.i64(k, 3);
      if (!u || !*u || !type || !when || !node) return Error(Errc::internal, "cql: corrupt reactions row");
      const int64_t stamp = when->value_or(0) * 1000 + node->value_or(0) % 1000;
      const ReactionType rt = *type ? reaction_from_text(**type) : ReactionType::none;
      if (rt == ReactionType::none)
        calls.push_back(t_.call(t_.st().user_reaction_delete, args(big(stamp), V(vid), V(from_cql(**u)), V(cid))));
      else
        calls.push_back(t_.call(t_.st().user_reaction_put,
                                args(V(vid), V(from_cql(**u)), V(cid), txt(to_string(rt)), big(stamp))));
      return calls.size() >= 256 ? flush() : ok_status();
    });
    if (!st) return st;
    if (st = flush(); !st) return st;

    // 4. The counters: moved by recount - stored, so a rerun moves them by 0.
    auto check = t_.recount_comment(cid, vid);
    if (!check) return check.take_error();
    if (check->differs()) {
      if (st = t_.add_difference(cid, check->r); !st) return st;
      comment_moves_.fetch_add(1);
    }
    return ok_status();
  }

  // Columns of scan_user_hidden: token, video_id, user_id, comment_id (null: the partition's
  // static mark alone), recent_until (into the fold's mark row, schema.h kViewMarkRow). Copied into the fold (schema step 10) USING TIMESTAMP
  // of this run's start, so a hidden mark a node deletes after the scan read it stays
  // deleted (nodes write both tables); a mark deleted before the read is not in it. A
  // read-your-writes mark still to come is copied with its own time (the latest wins), one
  // already past is of no use to a read and left.
  Status user_view_row(const Rows& r, size_t i) {
    auto video = r.uuid(i, 1), user = r.uuid(i, 2), cid = r.uuid(i, 3);
    auto until = r.i64(i, 4);
    if (!video || !*video || !user || !*user || !cid || !until)
      return Error(Errc::internal, "cql: corrupt user_hidden row");
    const Uuid vid = from_cql(**video), uid = from_cql(**user);
    std::vector<CqlStore::Call> calls;
    if (*cid) calls.push_back(t_.call(t_.st().fold_hidden_put, args(big(started_us_), V(vid), V(uid), V(from_cql(**cid)))));
    if (const int64_t u = until->value_or(0); u > wall_ms())
      calls.push_back(t_.call(t_.st().fold_recent_put, args(big(u * 1000), ts(u), V(vid), V(uid))));
    return t_.run_all(std::move(calls));
  }

  // Columns of scan_videos: token, video_id; one row per bucket, a video's rows in a row.
  Status video_row(const Rows& r, size_t i) {
    static thread_local std::optional<Uuid> last;  // a range is scanned by one thread
    auto id = r.uuid(i, 1);
    if (!id || !*id) return Error(Errc::internal, "cql: corrupt video_buckets row");
    const Uuid vid = from_cql(**id);
    if (last && *last == vid) return ok_status();
    last = vid;
    videos_.fetch_add(1);
    auto check = t_.recount_video(vid);
    if (!check) return check.take_error();
    if (check->differs()) {
      if (auto st = t_.add_difference(vid, check->r); !st) return st;
      video_moves_.fetch_add(1);
    }
    return ok_status();
  }

  tool::Tool& t_;
  const BackfillOptions& o_;
  int ranges_ = 256;
  std::map<std::pair<std::string, int>, Checkpoint> saved_;  // read before the scans start
  const int64_t started_us_ = wall_ms() * 1000;              // the fold's write timestamp
  std::atomic<uint64_t> videos_{0}, versions_set_{0}, comment_moves_{0}, video_moves_{0};
};

bool parse_int(const std::string& s, int lo, int hi, int& out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || v < lo || v > hi) return false;
  out = static_cast<int>(v);
  return true;
}

}  // namespace

Result<BackfillOutcome> run_backfill(const bridge::Runtime& rt, const config::CqlConfig& cfg,
                                     const BackfillOptions& opts) {
  auto t = tool::Tool::open(rt, cfg);
  if (!t) return t.take_error();
  Backfill b(**t, opts);
  return b.run();
}

int run_backfill_command(const config::Config& config, const std::vector<std::string>& args) {
  BackfillOptions o;
  o.progress = stderr;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has = i + 1 < args.size();
    int v = 0;
    if (a == "--restart") {
      o.restart = true;
    } else if (a == "--job" && has) {
      o.job = args[++i];
    } else if (a == "--phase" && has &&
               (args[i + 1] == "comments" || args[i + 1] == "videos" || args[i + 1] == "user_view")) {
      o.phase = args[++i];
    } else if (a == "--concurrency" && has && parse_int(args[i + 1], 1, 256, v)) {
      o.concurrency = v, ++i;
    } else if (a == "--ranges" && has && parse_int(args[i + 1], 1, 65536, v)) {
      o.ranges = v, ++i;
    } else if (a == "--page-size" && has && parse_int(args[i + 1], 1, 10000, v)) {
      o.page_size = v, ++i;
    } else if (a == "--max-rate" && has && parse_int(args[i + 1], 0, 10000000, v)) {
      o.max_rate = v, ++i;
    } else {
      std::fprintf(stderr,
                   "commentd backfill: bad argument '%s' (flags: --concurrency N, --ranges N, --page-size N, "
                   "--max-rate ROWS_PER_S, --job NAME, --phase comments|videos|user_view, --restart)\n",
                   a.c_str());
      return 2;
    }
  }
  if (config.storage.backend != "cql") {
    std::fprintf(stderr, "commentd backfill: needs storage.backend: cql\n");
    return 1;
  }
  auto rt = bridge::Runtime::create(static_cast<unsigned>(std::max(2, config.storage.cql.driver_threads)));
  if (!rt) {
    std::fprintf(stderr, "commentd backfill: %s\n", rt.error().message.c_str());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto out = run_backfill(**rt, config.storage.cql, o);
  if (!out) {
    std::fprintf(stderr, "commentd backfill: stopped: %s (run it again to resume)\n", out.error().message.c_str());
    return 1;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "commentd backfill: job %s done in %.1f s: %llu comments, %llu videos, %llu user_hidden rows folded this run "
      "(%d ranges done before); %llu V1 rows given version 1; counters moved on %llu comments, %llu videos\n",
      o.job.c_str(), secs, (unsigned long long)out->comments, (unsigned long long)out->videos,
      (unsigned long long)out->user_view_rows, out->ranges_skipped,
      (unsigned long long)out->versions_set, (unsigned long long)out->comment_counters_moved,
      (unsigned long long)out->video_counters_moved);
  return 0;
}

}  // namespace commentd::store::cql

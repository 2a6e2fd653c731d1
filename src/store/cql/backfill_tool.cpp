// The shared plumbing of `commentd backfill` and the CQL `--verify` (backfill_internal.h):
// statements, recounts, and the token-range scan.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <limits>
#include <thread>
#include <unordered_set>

#include "store/cql/backfill_internal.h"
#include "store/cql/migrate.h"
#include "store/cql/schema.h"

namespace commentd::store::cql::tool {

using bridge::Rows;
using bridge::Value;

Result<std::unique_ptr<Tool>> Tool::open(const bridge::Runtime& rt, const config::CqlConfig& cfg,
                                         bridge::CqlMetrics* metrics) {
  std::unique_ptr<Tool> t(new Tool());
  t->cfg_ = cfg;
  auto c = bridge::parse_consistency(cfg.consistency);
  t->consistency_ = c ? *c : bridge::Consistency::local_quorum;
  CqlStoreOptions so;
  so.cql = cfg;
  // Never appends to a node log: the id only names the (unused) log partitions it reads.
  so.node_id = 1;
  so.metrics = metrics;
  auto store = CqlStore::open(rt, so);  // also refuses a keyspace below the latest schema
  if (!store) return store.take_error();
  t->store_ = std::move(*store);
  t->pool_ = std::make_unique<boost::asio::thread_pool>(2);
  auto s = connect_cql(rt, cfg);
  if (!s) return Error(Errc::unavailable, "cql: cannot connect: " + s.error().message);
  t->session_ = std::move(*s);
  if (metrics) t->session_->set_metrics(metrics);

  std::optional<Error> failed;
  auto prep = [&](bridge::PreparedPtr& out, const std::string& cql) {
    if (failed) return;
    std::string q = with_keyspace(cql, cfg.keyspace);
    auto p = wait_on<bridge::PreparedPtr>(*t->pool_, [&](auto h) { t->session_->prepare(q, std::move(h)); });
    if (!p) failed = Error(Errc::internal, "cql: cannot prepare '" + q + "': " + p.error().message);
    else out = std::move(*p);
  };
  auto& st = t->st_;
  prep(st.scan_comments,
       "SELECT token(id), id, video_id, user_id, created_at, updated_at, parent_id, status, version "
       "FROM {ks}.comments WHERE token(id) > ? AND token(id) <= ?");
  prep(st.scan_videos,
       "SELECT token(video_id), video_id FROM {ks}.video_buckets WHERE token(video_id) > ? AND token(video_id) <= ?");
  prep(st.scan_user_hidden,
       "SELECT token(video_id, user_id), video_id, user_id, comment_id, recent_until FROM {ks}.user_hidden "
       "WHERE token(video_id, user_id) > ? AND token(video_id, user_id) <= ?");
  prep(st.fold_hidden_put,
       "UPDATE {ks}.user_reactions USING TIMESTAMP ? SET hidden = true WHERE video_id = ? AND user_id = ? "
       "AND comment_id = ?");
  prep(st.fold_recent_put,
       "UPDATE {ks}.user_reactions USING TIMESTAMP ? SET recent_until = ? WHERE video_id = ? AND user_id = ? "
       "AND comment_id = " + std::string(kViewMarkRow));
  // The V1 row's first version: applied only while the version is still null, so it never
  // overwrites a version commentd wrote (an edit of a V1 row that came first).
  prep(st.set_v1_version,
       "UPDATE {ks}.comments SET version = 1, reply_to = ?, depth = ?, edited = ? WHERE id = ? IF version = null");
  {
    std::string in = "?";
    for (size_t i = 1; i < kStatusesPerRead; ++i) in += ", ?";
    prep(st.comment_states, "SELECT id, status FROM {ks}.comments WHERE id IN (" + in + ")");
  }
  prep(st.bucket_put,
       "INSERT INTO {ks}.comments_by_video_bucketed (video_id, time_bucket, created_at, comment_id) "
       "VALUES (?, ?, ?, ?)");
  prep(st.video_bucket_put, "INSERT INTO {ks}.video_buckets (video_id, time_bucket) VALUES (?, ?)");
  prep(st.hidden_put, "INSERT INTO {ks}.user_hidden (video_id, user_id, comment_id) VALUES (?, ?, ?)");
  prep(st.registers, "SELECT user_id, type, created_at, node_id FROM {ks}.reactions WHERE comment_id = ?");
  prep(st.user_reaction_put,
       "INSERT INTO {ks}.user_reactions (video_id, user_id, comment_id, type) VALUES (?, ?, ?, ?) USING TIMESTAMP ?");
  prep(st.user_reaction_delete,
       "DELETE FROM {ks}.user_reactions USING TIMESTAMP ? WHERE video_id = ? AND user_id = ? AND comment_id = ?");
  prep(st.replies_of, "SELECT comment_id FROM {ks}.replies WHERE parent_id = ?");
  prep(st.buckets_of, "SELECT time_bucket FROM {ks}.video_buckets WHERE video_id = ?");
  prep(st.bucket_ids, "SELECT comment_id FROM {ks}.comments_by_video_bucketed WHERE video_id = ? AND time_bucket = ?");
  prep(st.metrics_add,
       "UPDATE {ks}.comment_metrics SET likes = likes + ?, dislikes = dislikes + ?, "
       "replies_count = replies_count + ? WHERE comment_id = ?");
  prep(st.stats_get, "SELECT comments_count, reactions_count FROM {ks}.video_stats WHERE video_id = ?");
  prep(st.stats_add,
       "UPDATE {ks}.video_stats SET comments_count = comments_count + ?, reactions_count = reactions_count + ? "
       "WHERE video_id = ?");
  prep(st.progress_get, "SELECT phase, range_id, next_token, done FROM {ks}.backfill_progress WHERE job = ?");
  prep(st.progress_put,
       "INSERT INTO {ks}.backfill_progress (job, phase, range_id, next_token, done, rows, updated_at) "
       "VALUES (?, ?, ?, ?, ?, ?, ?)");
  prep(st.progress_clear, "DELETE FROM {ks}.backfill_progress WHERE job = ?");
  prep(st.repairs_list, "SELECT kind, key FROM {ks}.count_repairs WHERE shard = ?");
  prep(st.repairs_delete, "DELETE FROM {ks}.count_repairs USING TIMESTAMP ? WHERE shard = ? AND kind = ? AND key = ?");
  prep(st.stats_marks, "SELECT comments_count, writes_started, writes_done FROM {ks}.video_stats WHERE video_id = ?");
  prep(st.metrics_marks,
       "SELECT replies_count, writes_started, writes_done FROM {ks}.comment_metrics WHERE comment_id = ?");
  prep(st.claim_get, "SELECT claim FROM {ks}.count_claims WHERE kind = ? AND key = ?");
  prep(st.claim_new, "INSERT INTO {ks}.count_claims (kind, key, claim) VALUES (?, ?, ?) IF NOT EXISTS");
  prep(st.claim_move, "UPDATE {ks}.count_claims SET claim = ? WHERE kind = ? AND key = ? IF claim = ?");
  prep(st.stats_repair,
       "UPDATE {ks}.video_stats SET comments_count = comments_count + ?, writes_done = writes_done + ? "
       "WHERE video_id = ?");
  prep(st.metrics_repair,
       "UPDATE {ks}.comment_metrics SET replies_count = replies_count + ?, writes_done = writes_done + ? "
       "WHERE comment_id = ?");
  if (failed) return *failed;
  return t;
}

Tool::~Tool() {
  if (store_) store_->close();
  store_.reset();
  session_.reset();
  if (pool_) pool_->join();
}

Result<Rows> Tool::run(const bridge::Prepared& p, std::vector<Value> v, bool idempotent, int32_t page_size,
                       std::string paging) {
  bridge::ExecOptions o;
  o.consistency = consistency_;
  o.serial_consistency = cfg_.consistency.rfind("local_", 0) == 0 ? bridge::Consistency::local_serial
                                                                  : bridge::Consistency::serial;
  o.timeout = cfg_.request_timeout;
  o.idempotent = idempotent;
  o.page_size = page_size;
  o.paging_state = std::move(paging);
  return wait_on<Rows>(*pool_, [&](auto h) { session_->execute(p, std::move(v), std::move(o), std::move(h)); });
}

CqlStore::Call Tool::call(const bridge::PreparedPtr& p, std::vector<Value> v) const {
  bridge::ExecOptions o;
  o.consistency = consistency_;
  o.timeout = cfg_.request_timeout;
  o.idempotent = true;
  return CqlStore::Call{p.get(), std::move(v), std::move(o)};
}

Status Tool::run_all(std::vector<CqlStore::Call> calls) {
  std::vector<std::future<Result<Rows>>> fs;
  std::vector<std::shared_ptr<std::promise<Result<Rows>>>> ps;
  for (auto& c : calls) {
    auto p = std::make_shared<std::promise<Result<Rows>>>();
    fs.push_back(p->get_future());
    session_->execute(*c.stmt, std::move(c.values), std::move(c.opts),
                      boost::asio::bind_executor(*pool_, [p](Result<Rows> r) { p->set_value(std::move(r)); }));
  }
  Status out = ok_status();
  for (auto& f : fs) {
    auto r = f.get();
    if (!r && out.ok()) out = r.take_error();
  }
  return out;
}

Status Tool::for_each_row(const bridge::Prepared& p, std::vector<Value> v,
                          const std::function<Status(const Rows&, size_t)>& row) {
  std::string paging;
  for (;;) {
    auto r = run(p, v, true, 1000, paging);
    if (!r) return r.take_error();
    for (size_t i = 0; i < r->size(); ++i)
      if (auto st = row(*r, i); !st) return st;
    auto next = r->paging_state();
    if (!next || next->empty()) return ok_status();
    paging = std::move(*next);
  }
}

namespace {
// The one rule of what a count counts: a comment row whose status is visible, or unset (a V1
// row, which has no status column value).
bool counts(const std::optional<std::string_view>& status) { return !status || *status == "visible"; }
}  // namespace

Result<int64_t> Tool::count_counted(const std::vector<Uuid>& ids) {
  if (ids.empty()) return int64_t{0};
  // A short batch repeats its last id (the statement has kStatusesPerRead markers); the rows
  // are counted by distinct id, so a repeat counts once whatever the server does with it.
  std::vector<Value> v;
  for (size_t i = 0; i < kStatusesPerRead; ++i) v.push_back(V(ids[std::min(i, ids.size() - 1)]));
  auto r = run(*st_.comment_states, std::move(v));
  if (!r) return r.take_error();
  std::unordered_set<Uuid, UuidHash> yes;
  for (size_t i = 0; i < r->size(); ++i) {
    auto id = r->uuid(i, 0);
    auto s = r->bytes(i, 1);
    if (!id || !*id || !s) return Error(Errc::internal, "cql: corrupt comments row");
    if (counts(*s)) yes.insert(from_cql(**id));
  }
  return static_cast<int64_t>(yes.size());
}

Result<int64_t> Tool::count_ids(const std::function<Status(const std::function<Status(const Uuid&)>&)>& each,
                                const std::function<Status()>& step) {
  int64_t n = 0;
  std::vector<Uuid> batch;
  auto flush = [&]() -> Status {
    auto c = count_counted(batch);
    if (!c) return c.take_error();
    n += *c;
    batch.clear();
    return ok_status();
  };
  auto st = each([&](const Uuid& id) -> Status {
    if (step)
      if (auto s = step(); !s) return s;
    batch.push_back(id);
    return batch.size() == kStatusesPerRead ? flush() : ok_status();
  });
  if (!st) return st.error();
  if (auto f = flush(); !f) return f.error();
  return n;
}

Result<int64_t> Tool::count_replies(const Uuid& comment, const std::function<Status()>& step) {
  return count_ids(
      [&](const std::function<Status(const Uuid&)>& fn) {
        return for_each_row(*st_.replies_of, args(V(comment)), [&](const Rows& r, size_t i) -> Status {
          auto id = r.uuid(i, 0);
          if (!id || !*id) return Error(Errc::internal, "cql: replies row without id");
          return fn(from_cql(**id));
        });
      },
      step);
}

Result<CommentCheck> Tool::recount_comment(const Uuid& comment, const Uuid& video) {
  // Likes and dislikes: the owner's recount (stored counters, every register counted).
  auto owner = store_->owner_recount(comment, video);
  if (!owner) return owner.take_error();
  CommentCheck out;
  out.r = std::move(**owner);
  auto replies = count_replies(comment);
  if (!replies) return replies.take_error();
  out.r.truth.replies_count = *replies;
  return out;
}

Status Tool::for_each_video_comment(const Uuid& video, const std::function<Status(const Uuid&)>& fn) {
  std::vector<std::string> buckets;
  auto st = for_each_row(*st_.buckets_of, args(V(video)), [&](const Rows& r, size_t i) -> Status {
    auto b = r.bytes(i, 0);
    if (!b || !*b) return Error(Errc::internal, "cql: video_buckets row without bucket");
    buckets.emplace_back(**b);
    return ok_status();
  });
  if (!st) return st;
  for (const auto& b : buckets) {
    st = for_each_row(*st_.bucket_ids, args(V(video), txt(b)), [&](const Rows& r, size_t i) -> Status {
      auto id = r.uuid(i, 0);
      if (!id || !*id) return Error(Errc::internal, "cql: bucket row without id");
      return fn(from_cql(**id));
    });
    if (!st) return st;
  }
  return ok_status();
}

Result<int64_t> Tool::count_video_comments(const Uuid& video, const std::function<Status()>& step) {
  return count_ids([&](const std::function<Status(const Uuid&)>& fn) { return for_each_video_comment(video, fn); },
                   step);
}

Result<VideoCheck> Tool::recount_video(const Uuid& video) {
  VideoCheck out;
  auto s = run(*st_.stats_get, args(V(video)));
  if (!s) return s.take_error();
  if (s->size() > 0) {
    auto c = s->i64(0, 0), r = s->i64(0, 1);
    if (!c || !r) return Error(Errc::internal, "cql: corrupt video_stats row");
    out.r.stored.comments_count = c->value_or(0);
    out.r.stored.reactions_count = r->value_or(0);
  }
  // Every comment's registers, and the comments counted kStatusesPerRead statuses per read.
  auto comments = count_ids(
      [&](const std::function<Status(const Uuid&)>& fn) {
        return for_each_video_comment(video, [&](const Uuid& cid) -> Status {
          auto regs = store_->owner_recount(cid, video);
          if (!regs) return regs.take_error();
          out.r.truth.reactions_count += (*regs)->truth.likes + (*regs)->truth.dislikes;
          return fn(cid);
        });
      },
      {});
  if (!comments) return comments.take_error();
  out.r.truth.comments_count = *comments;
  return out;
}

Status Tool::add_difference(const Uuid& comment, const Store::CommentRecount& r) {
  const int64_t l = r.truth.likes - r.stored.likes, d = r.truth.dislikes - r.stored.dislikes,
                n = r.truth.replies_count - r.stored.replies_count;
  if (!l && !d && !n) return ok_status();
  auto w = run(*st_.metrics_add, args(big(l), big(d), big(n), V(comment)), /*idempotent=*/false);
  return w ? ok_status() : Status(w.take_error());
}

Status Tool::add_difference(const Uuid& video, const Store::VideoRecount& r) {
  const int64_t c = r.truth.comments_count - r.stored.comments_count,
                n = r.truth.reactions_count - r.stored.reactions_count;
  if (!c && !n) return ok_status();
  auto w = run(*st_.stats_add, args(big(c), big(n), V(video)), /*idempotent=*/false);
  return w ? ok_status() : Status(w.take_error());
}

// ------------------------------------------------------------------------------------ scan

int64_t TokenRanges::start(int i) const {
  // Murmur3 tokens are in [-2^63 + 1, 2^63 - 1]: (INT64_MIN, INT64_MAX] covers them all.
  const long double span = std::ldexp(1.0L, 64);
  if (i == 0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(std::floor(-std::ldexp(1.0L, 63) + span * i / n));
}

int64_t TokenRanges::end(int i) const {
  return i + 1 == n ? std::numeric_limits<int64_t>::max() : start(i + 1);
}

double TokenRanges::covered(int i, int64_t at) const {
  const long double a = start(i), b = end(i);
  if (at <= a) return 0;
  if (at >= b) return 1;
  return static_cast<double>((static_cast<long double>(at) - a) / (b - a));
}

Result<ScanOutcome> scan(Tool& t, const ScanSpec& spec) {
  const TokenRanges tr{spec.ranges};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> done_frac(spec.ranges, 0.0);  // GUARDED_BY(mu)
  int next_range = 0, finished = 0;                   // GUARDED_BY(mu)
  std::optional<Error> failed;                        // GUARDED_BY(mu)
  ScanOutcome out;                                    // GUARDED_BY(mu)
  std::atomic<uint64_t> rows{0};
  // Rate limit: each row takes the next slot on one shared schedule.
  std::chrono::steady_clock::time_point next_slot = std::chrono::steady_clock::now();  // GUARDED_BY(mu)
  const auto t0 = std::chrono::steady_clock::now();

  auto pace = [&] {
    if (spec.max_rate <= 0) return;
    std::chrono::steady_clock::time_point at;
    {
      std::lock_guard lk(mu);
      auto now = std::chrono::steady_clock::now();
      next_slot = std::max(next_slot, now) +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(1.0 / spec.max_rate));
      at = next_slot;
    }
    std::this_thread::sleep_until(at);
  };

  auto run_range = [&](int i) -> Status {
    int64_t from = tr.start(i);
    if (spec.resume_at) {
      auto r = spec.resume_at(i);
      if (!r) return r.take_error();
      if (!*r) {
        std::lock_guard lk(mu);
        done_frac[i] = 1;
        ++out.ranges_skipped;
        return ok_status();
      }
      from = **r;
    }
    std::string paging;
    uint64_t n = 0;
    for (;;) {
      auto page = t.run(*spec.select, args(big(from), big(tr.end(i))), true, spec.page_size, paging);
      if (!page) return page.take_error();
      int64_t last = from;
      for (size_t r = 0; r < page->size(); ++r) {
        {
          std::lock_guard lk(mu);
          if (failed) return ok_status();
        }
        pace();
        if (auto st = spec.row(*page, r); !st) return st;
        auto tok = page->i64(r, 0);
        if (!tok || !*tok) return Error(Errc::internal, "cql: scan row without token");
        last = **tok;
        ++n;
        rows.fetch_add(1);
      }
      auto next = page->paging_state();
      const bool end = !next || next->empty();
      if (spec.checkpoint)
        if (auto st = spec.checkpoint(i, last, end, n); !st) return st;
      {
        std::lock_guard lk(mu);
        done_frac[i] = end ? 1.0 : tr.covered(i, last);
      }
      if (end) return ok_status();
      paging = std::move(*next);
    }
  };

  auto worker = [&] {
    for (;;) {
      int i;
      {
        std::lock_guard lk(mu);
        if (failed || next_range >= spec.ranges) break;
        i = next_range++;
      }
      auto st = run_range(i);
      std::lock_guard lk(mu);
      ++finished;
      if (!st && !failed) failed = st.error();
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < std::max(1, spec.concurrency); ++w) threads.emplace_back(worker);

  {
    std::unique_lock lk(mu);
    for (;;) {
      bool all = cv.wait_for(lk, spec.progress_every, [&] {
        return failed || (finished == spec.ranges) || (next_range >= spec.ranges && finished == next_range);
      });
      if (spec.progress) {
        double frac = 0;
        for (double f : done_frac) frac += f;
        frac /= spec.ranges;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const uint64_t n = rows.load();
        const double rate = secs > 0 ? n / secs : 0;
        // ETA from the token space left at this run's pace (ranges skipped count as done).
        const double base = static_cast<double>(out.ranges_skipped) / spec.ranges;
        const double pace_frac = secs > 0 ? (frac - base) / secs : 0;
        std::string eta = pace_frac > 0 ? std::to_string(static_cast<long long>((1 - frac) / pace_frac)) + " s" : "?";
        std::fprintf(spec.progress, "%s: %5.1f%% of the token ring, %d/%d ranges done, %llu rows, %.0f rows/s, ETA %s\n",
                     spec.phase.c_str(), 100 * frac, finished, spec.ranges, static_cast<unsigned long long>(n), rate,
                     all ? "0 s" : eta.c_str());
        std::fflush(spec.progress);
      }
      if (all) break;
    }
  }
  for (auto& th : threads) th.join();
  if (failed) return *failed;
  out.rows = rows.load();
  return out;
}

}  // namespace commentd::store::cql::tool

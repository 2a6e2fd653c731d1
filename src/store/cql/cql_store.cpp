// CqlStore: opening, the statement plumbing and the request-path reads (cql_store.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <random>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "store/async.h"
#include "store/cql/cql_internal.h"
#include "store/cql/migrate.h"
#include "store/cql/schema.h"

namespace commentd::store::cql {

using bridge::Rows;

namespace {

// A failed read: deadline_exceeded once the request's deadline has passed (the driver's
// timeout was capped by it), else the bridge's error.
Error read_error(const Error& e, Deadline d) {
  if (d.expired()) return deadline_error();
  return e;
}

// Column `col` of row `row` as an integer, 0 when null.
Result<int64_t> num(const Rows& r, size_t row, size_t col) {
  auto v = r.i64(row, col);
  if (!v) return v.take_error();
  return v->value_or(0);
}

// Reads integer columns into `out` (0 for null), the first type error otherwise.
Status nums(const Rows& r, size_t row, std::initializer_list<std::pair<size_t, int64_t*>> cols) {
  for (auto [col, dst] : cols) {
    auto v = num(r, row, col);
    if (!v) return v.take_error();
    *dst = *v;
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<CqlStore>> CqlStore::open(const bridge::Runtime& rt, const CqlStoreOptions& opts) {
  std::unique_ptr<CqlStore> s(new CqlStore());
  s->opts_ = opts;
  s->bucket_lists_ = std::make_unique<BucketLists>(opts.cql.bucket_list_ttl);
  s->page_rows_ = std::make_unique<PageRows>(opts.cql.row_reuse);
  auto bo = opts.breaker;
  if (bo.probe_timeout.count() == 0) bo.probe_timeout = opts.cql.request_timeout + std::chrono::seconds(1);
  if (bo.stall_after.count() == 0) bo.stall_after = opts.cql.stall_timeout;
  s->breaker_ = std::make_unique<CircuitBreaker>(bo);
  auto c = bridge::parse_consistency(opts.cql.consistency);
  s->consistency_ = c ? *c : bridge::Consistency::local_quorum;
  s->serial_ = opts.cql.consistency.rfind("local_", 0) == 0 ? bridge::Consistency::local_serial
                                                            : bridge::Consistency::serial;
  s->pool_ = std::make_unique<asio::thread_pool>(2);
  auto session = connect_cql(rt, opts.cql);
  if (!session) {
    s->pool_->join();
    return Error(Errc::unavailable, "cql: cannot connect: " + session.error().message);
  }
  s->session_ = std::move(*session);
  s->session_->set_metrics(opts.metrics ? opts.metrics : &s->metrics_);
  auto version = read_schema_version(*s->session_, opts.cql);
  if (!version) return version.take_error();
  if (*version < latest_schema_version())
    return Error(Errc::internal, "cql: keyspace " + opts.cql.keyspace + " is at schema version " +
                                     std::to_string(*version) + ", this binary needs " +
                                     std::to_string(latest_schema_version()) + ": run `commentd migrate`");
  auto st = prepare_statements(*s->session_, opts.cql.keyspace, static_cast<size_t>(opts.cql.keys_per_read), *s->pool_);
  if (!st) return st.take_error();
  s->st_ = std::move(*st);
  {
    auto m = s->exec_blocking(*s->st_->fold_marker_get, {}, s->read_opts({}));
    if (!m) return Error(m.error().code, "cql: reading the fold marker: " + m.error().message);
    s->view_folded_ = fold_marker_set(*m);
    s->fold_next_poll_ms_ = s->clock_.now_ms() + opts.fold_poll.count();
  }
  if (auto h = s->load_log_heads(); !h) return h.error();
  s->intent_ids_ = std::make_unique<UuidGenerator>(s->clock_, std::random_device{}(),
                                                   static_cast<uint16_t>(opts.node_id % 1024));
  // The commit intents' sweep positions exist before this node writes its first intent.
  if (auto p = s->sweep_positions(); !p) return p.take_error();
  s->log_writer_ = std::thread([p = s.get()] { p->log_writer_loop(); });
  return s;
}

CqlStore::~CqlStore() {
  close();
  if (pool_) pool_->join();
}

void CqlStore::close() {
  if (closing_.exchange(true)) return;
  {
    std::unique_lock lk(drain_mu_);
    drained_.wait(lk, [&] { return in_flight_.load() == 0; });
  }
  {
    std::lock_guard lk(log_mu_);
    log_stop_ = true;
  }
  log_cv_.notify_all();
  if (log_writer_.joinable()) log_writer_.join();
}

// ------------------------------------------------------------------------------ plumbing

bridge::ExecOptions CqlStore::read_opts(Deadline d) const {
  bridge::ExecOptions o;
  o.consistency = consistency_;
  o.timeout = std::max(std::chrono::milliseconds(1), std::min(opts_.cql.request_timeout, d.remaining()));
  o.idempotent = true;
  return o;
}

bridge::ExecOptions CqlStore::write_opts(bool idempotent) const {
  bridge::ExecOptions o;
  o.consistency = consistency_;
  o.serial_consistency = serial_;
  o.timeout = opts_.cql.request_timeout;
  o.idempotent = idempotent;
  return o;
}

bridge::ExecOptions CqlStore::serial_read_opts() const {
  bridge::ExecOptions o;
  o.consistency = consistency_;
  o.serial_consistency = serial_;
  o.timeout = opts_.cql.request_timeout;
  o.idempotent = true;
  return o;
}

std::optional<Error> CqlStore::breaker_refusal() {
  if (breaker_->admit()) return std::nullopt;
  if (uint64_t stalls = breaker_->stats().stalls.load(); stalls != stalls_logged_.exchange(stalls))
    spdlog::warn("cql: no answer from storage for {} ms with calls waiting; circuit open: calls fail at once "
                 "for {} ms between probes",
                 breaker_->options().stall_after.count(), opts_.breaker.open_for.count());
  return Error(Errc::unavailable, "cql: storage unavailable (circuit open after calls in a row failed)",
               "storage_unavailable", 1);
}

void CqlStore::breaker_note(const Error* e, std::chrono::milliseconds timeout) {
  // No evidence either way: a call cancelled at shutdown, or a timeout shorter than
  // request_timeout (cut by the caller's own deadline). A lost probe is replaced later.
  if (e && (e->detail_code == "bridge_cancelled" ||
            (e->detail_code == "bridge_timeout" && timeout < opts_.cql.request_timeout))) {
    breaker_->release();
    return;
  }
  // Any answer from the cluster (rows, a conflict, a bad request) shows it is serving.
  const bool counts = e && e->code == Errc::unavailable;
  auto change = breaker_->record(!counts);
  if (change == CircuitBreaker::Change::none) return;
  if (change == CircuitBreaker::Change::closed) {
    spdlog::info("cql: storage available again; circuit closed");
    return;
  }
  // At most one line per 10 s while the cluster stays away.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  int64_t last = breaker_logged_ms_.load();
  if (now - last >= 10'000 && breaker_logged_ms_.compare_exchange_strong(last, now))
    spdlog::warn("cql: storage unavailable ({}); circuit open: calls fail at once for {} ms between probes",
                 e ? e->message : std::string("?"), opts_.breaker.open_for.count());
}

asio::awaitable<Result<Rows>> CqlStore::exec(const bridge::Prepared& stmt, std::vector<bridge::Value> values,
                                             bridge::ExecOptions opts) {
  if (auto no = breaker_refusal()) co_return *no;
  const auto timeout = opts.timeout;
  auto r = co_await session_->execute(stmt, std::move(values), std::move(opts), asio::use_awaitable);
  breaker_note(r ? nullptr : &r.error(), timeout);
  co_return r;
}

namespace {
// The shared state of one exec_all: completes once, after every call has answered.
struct Gather {
  std::mutex mu;
  std::vector<std::optional<Rows>> rows;
  std::optional<Error> error;
  size_t left = 0;
  std::function<void(Result<std::vector<Rows>>)> deliver;
  void done(size_t i, Result<Rows> r) {
    std::unique_lock lk(mu);
    if (r) rows[i].emplace(std::move(*r));
    else if (!error) error = r.error();
    if (--left != 0) return;
    lk.unlock();
    if (error) return deliver(*error);
    std::vector<Rows> out;
    out.reserve(rows.size());
    for (auto& x : rows) out.push_back(std::move(*x));
    deliver(std::move(out));
  }
};

// Each call's completion is posted to `ex`: the awaiting caller's own executor for the
// asynchronous paths (a read on an event loop then resumes there after one hand-off from the
// bridge's thread, not two through the store's pool), the pool for the blocking ones.
template <class Executor, class Deliver>
void start_all(bridge::CqlSession& s, const Executor& ex, std::vector<CqlStore::Call> calls, Deliver deliver) {
  auto g = std::make_shared<Gather>();
  g->rows.resize(calls.size());
  g->left = calls.size();
  g->deliver = std::move(deliver);
  if (calls.empty()) return g->deliver(std::vector<Rows>{});
  for (size_t i = 0; i < calls.size(); ++i)
    s.execute(*calls[i].stmt, std::move(calls[i].values), std::move(calls[i].opts),
              asio::bind_executor(ex, [g, i](Result<Rows> r) { g->done(i, std::move(r)); }));
}
}  // namespace

std::chrono::milliseconds CqlStore::shortest_timeout(const std::vector<Call>& calls) {
  auto t = std::chrono::milliseconds::max();
  for (auto& c : calls) t = std::min(t, c.opts.timeout);
  return t;
}

asio::awaitable<Result<std::vector<Rows>>> CqlStore::exec_all(std::vector<Call> calls) {
  using R = Result<std::vector<Rows>>;
  if (calls.empty()) co_return std::vector<Rows>{};
  if (auto no = breaker_refusal()) co_return *no;
  const auto timeout = shortest_timeout(calls);
  auto init = [this, timeout](auto handler, std::vector<Call> c) {
    const auto ex = asio::get_associated_executor(handler);
    start_all(*session_, ex, std::move(c), [this, done = posting(std::move(handler)), timeout](R r) {
      breaker_note(r ? nullptr : &r.error(), timeout);
      done(std::move(r));
    });
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      std::move(init), asio::use_awaitable, std::move(calls));
}

asio::awaitable<Status> CqlStore::exec_writes(std::vector<Call> calls) {
  if (calls.empty()) co_return ok_status();
  if (auto no = breaker_refusal()) co_return *no;
  const auto timeout = shortest_timeout(calls);
  auto groups = group_writes(std::move(calls));
  auto init = [this, timeout](auto handler, std::vector<std::vector<Call>> groups) {
    const auto ex = asio::get_associated_executor(handler);  // as start_all's
    auto g = std::make_shared<Gather>();
    g->rows.resize(groups.size());
    g->left = groups.size();
    g->deliver = [this, done = posting(std::move(handler)), timeout](Result<std::vector<Rows>> r) {
      breaker_note(r ? nullptr : &r.error(), timeout);
      done(r ? ok_status() : Status(r.take_error()));
    };
    for (size_t i = 0; i < groups.size(); ++i) {
      auto done = asio::bind_executor(ex, [g, i](Result<Rows> r) { g->done(i, std::move(r)); });
      auto& group = groups[i];
      if (group.size() == 1) {
        session_->execute(*group[0].stmt, std::move(group[0].values), std::move(group[0].opts), std::move(done));
        continue;
      }
      std::vector<bridge::BatchItem> items;
      items.reserve(group.size());
      for (auto& c : group) items.push_back({c.stmt, std::move(c.values)});
      session_->batch(bridge::BatchType::unlogged, std::move(items), std::move(group[0].opts), std::move(done));
    }
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Status)>(
      std::move(init), asio::use_awaitable, std::move(groups));
}

Result<Rows> CqlStore::exec_blocking(const bridge::Prepared& stmt, std::vector<bridge::Value> values,
                                     bridge::ExecOptions opts) {
  if (auto no = breaker_refusal()) return *no;
  const auto timeout = opts.timeout;
  auto r = wait_on<Rows>(*pool_, [&](auto h) {
    session_->execute(stmt, std::move(values), std::move(opts), std::move(h));
  });
  breaker_note(r ? nullptr : &r.error(), timeout);
  return r;
}

Result<std::vector<Rows>> CqlStore::exec_all_blocking(std::vector<Call> calls) {
  if (calls.empty()) return std::vector<Rows>{};
  if (auto no = breaker_refusal()) return *no;
  const auto timeout = shortest_timeout(calls);
  std::promise<Result<std::vector<Rows>>> p;
  auto f = p.get_future();
  start_all(*session_, pool_->get_executor(), std::move(calls),
            [&p](Result<std::vector<Rows>> r) { p.set_value(std::move(r)); });
  auto r = f.get();
  breaker_note(r ? nullptr : &r.error(), timeout);
  return r;
}

// ---------------------------------------------------------------------------------- reads

asio::awaitable<Result<std::optional<Comment>>> CqlStore::get_comment(Uuid id, Deadline d) {
  if (d.expired()) co_return deadline_error();
  auto r = co_await exec(*st_->get_comment, args(V(id)), read_opts(d));
  if (!r) co_return read_error(r.error(), d);
  if (r->size() == 0) co_return std::optional<Comment>();
  auto c = decode_comment(*r, 0);
  if (!c) co_return c.take_error();
  co_return std::optional<Comment>(std::move(*c));
}

namespace {
// Our list order inside one created_at: id DESC for newest, ASC for oldest. (CQL orders the
// clustering uuid by its own rules, not bytewise, so ties are ordered here.)
void order_ties(std::vector<CursorPos>& v, SortOrder sort) {
  std::sort(v.begin(), v.end(), [sort](const CursorPos& a, const CursorPos& b) {
    if (a.created_at != b.created_at)
      return sort == SortOrder::newest ? a.created_at > b.created_at : a.created_at < b.created_at;
    return sort == SortOrder::newest ? a.id > b.id : a.id < b.id;
  });
}
}  // namespace

asio::awaitable<Result<std::vector<CursorPos>>> CqlStore::tie_group(Index index, Uuid key, TimeMs at, SortOrder sort,
                                                                    Deadline d) {
  if (d.expired()) co_return deadline_error();
  auto r = co_await exec(*st_->index_ties[static_cast<int>(index)], args(V(key), ts(at)), read_opts(d));
  if (!r) co_return read_error(r.error(), d);
  std::vector<CursorPos> out;
  for (size_t i = 0; i < r->size(); ++i) {
    auto id = r->uuid(i, 0);
    if (!id || !*id) co_return Error(Errc::internal, "cql: index entry without id");
    out.push_back(CursorPos{at, from_cql(**id)});
  }
  order_ties(out, sort);
  co_return out;
}

// Pages through the index in (created_at, id) order with the id order ours, not CQL's: a
// page query by created_at, and every group of equal created_at that the page may have cut
// is read whole and ordered here. One extra entry tells whether the list is exhausted. Each
// page query asks for one entry more than that: when the last entry's created_at is not the
// one before it (almost always), the entries before it fill the page and the cut group's
// read, one more round trip in sequence, is skipped.
asio::awaitable<Result<ScanResult>> CqlStore::scan(ScanRequest req, Deadline d) {
  if (d.expired()) co_return deadline_error();
  if (req.index == Index::video && opts_.cql.bucketed_pages) co_return co_await scan_buckets(std::move(req), d);
  const int ix = static_cast<int>(req.index), so = req.sort == SortOrder::newest ? 0 : 1;
  const size_t want = req.max_rows + 1;
  std::vector<CursorPos> entries;
  std::optional<TimeMs> bound;  // entries strictly beyond this created_at come next
  if (req.after) {
    auto g = co_await tie_group(req.index, req.key, req.after->created_at, req.sort, d);
    if (!g) co_return g.take_error();
    for (auto& p : *g) {
      bool beyond = req.sort == SortOrder::newest ? p.id < req.after->id : p.id > req.after->id;
      if (beyond) entries.push_back(p);
    }
    bound = req.after->created_at;
  }
  while (entries.size() < want) {
    if (d.expired()) co_return deadline_error();
    const int32_t limit = static_cast<int32_t>(want - entries.size() + 1);
    std::vector<bridge::Value> vals{V(req.key)};
    if (bound) vals.push_back(ts(*bound));
    vals.push_back(bridge::Value::int32(limit));
    auto r = co_await exec(*st_->index_page[ix][so][bound ? 1 : 0], std::move(vals), read_opts(d));
    if (!r) co_return read_error(r.error(), d);
    std::vector<CursorPos> page;
    for (size_t i = 0; i < r->size(); ++i) {
      auto at = r->i64(i, 0);
      auto id = r->uuid(i, 1);
      if (!at || !*at || !id || !*id) co_return Error(Errc::internal, "cql: corrupt index entry");
      page.push_back(CursorPos{**at, from_cql(**id)});
    }
    if (page.empty()) break;
    if (page.size() < static_cast<size_t>(limit)) {  // the list's end: every group is whole
      order_ties(page, req.sort);
      entries.insert(entries.end(), page.begin(), page.end());
      break;
    }
    const TimeMs last_at = page.back().created_at;
    std::vector<CursorPos> whole;
    for (auto& p : page)
      if (p.created_at != last_at) whole.push_back(p);
    order_ties(whole, req.sort);
    entries.insert(entries.end(), whole.begin(), whole.end());
    if (entries.size() >= want) break;
    auto g = co_await tie_group(req.index, req.key, last_at, req.sort, d);
    if (!g) co_return g.take_error();
    entries.insert(entries.end(), g->begin(), g->end());
    bound = last_at;
  }
  co_return co_await join_entries(std::move(entries), req, std::nullopt, d);
}

asio::awaitable<Result<ScanResult>> CqlStore::join_entries(std::vector<CursorPos> entries, const ScanRequest& req,
                                                           std::optional<Uuid> video_list, Deadline d) {
  const bool with_counts = req.with_counts;
  ScanResult out;
  out.exhausted = entries.size() <= req.max_rows;
  if (entries.size() > req.max_rows) entries.resize(req.max_rows);
  if (!entries.empty()) out.last = entries.back();
  if (entries.empty()) co_return out;
  if (d.expired()) co_return deadline_error();
  std::vector<Uuid> ids;
  for (auto& e : entries) ids.push_back(e.id);
  // Rows an earlier build of this list read under the same generation are not read again.
  const bool reuse = req.reuse_generation && page_rows_->enabled();
  const auto read_at = PageRows::Clock::now();
  const uint64_t fill = page_rows_->begin_fill();  // before the read
  std::vector<std::optional<Comment>> known(ids.size());
  std::vector<Uuid> unread;  // the ids whose rows are read
  for (size_t i = 0; i < ids.size(); ++i) {
    if (reuse) known[i] = page_rows_->get(req.key, *req.reuse_generation, ids[i], read_at);
    if (!known[i]) unread.push_back(ids[i]);
  }
  // The rows and (with_counts) their counts, all at once: the counts of entries whose rows
  // turn out to be skipped are read for nothing, one round trip sooner than after the rows.
  std::vector<Call> calls;
  add_keyed_reads(calls, *st_->get_comment, st_->comments_in.get(), unread, d);
  const size_t rows_end = calls.size();
  if (with_counts) add_keyed_reads(calls, *st_->metrics_get, st_->metrics_in.get(), ids, d);
  auto rows = co_await exec_all(std::move(calls));
  if (!rows) co_return read_error(rows.error(), d);
  auto at = find_keyed(*rows, 0, rows_end, unread);
  if (!at) co_return at.take_error();
  std::vector<CommentMetrics> counts;
  if (with_counts) {
    auto c = counts_of(*rows, rows_end, rows->size(), ids);
    if (!c) co_return c.take_error();
    counts = std::move(*c);
  }
  std::vector<size_t> check;  // deleted comments: still listed only with their list entry
  for (size_t i = 0, u = 0; i < ids.size(); ++i) {
    Result<Comment> c = Comment{};
    if (known[i]) {
      c = std::move(*known[i]);
    } else {
      const auto& a = (*at)[u++];
      if (!a) continue;  // an index entry without its row: skipped
      c = decode_comment((*rows)[a->first], a->second);
      if (!c) co_return c.take_error();
      if (reuse) page_rows_->put(req.key, *req.reuse_generation, *c, fill, read_at);
    }
    if (video_list) {
      if (c->parent_id || c->video_id != *video_list) continue;
      if (c->status == CommentStatus::deleted) check.push_back(out.rows.size());
    }
    out.rows.push_back(std::move(*c));
    if (with_counts) out.counts.push_back(counts[i]);
  }
  if (check.empty()) co_return out;
  if (d.expired()) co_return deadline_error();
  calls.clear();
  for (size_t i : check)
    calls.push_back(Call{st_->video_entry_get.get(), {V(*video_list), ts(out.rows[i].created_at), V(out.rows[i].id)},
                         read_opts(d)});
  auto listed = co_await exec_all(std::move(calls));
  if (!listed) co_return read_error(listed.error(), d);
  std::vector<bool> drop(out.rows.size(), false);
  for (size_t j = 0; j < check.size(); ++j) drop[check[j]] = (*listed)[j].size() == 0;
  ScanResult kept;
  kept.exhausted = out.exhausted;
  kept.last = out.last;
  for (size_t i = 0; i < out.rows.size(); ++i) {
    if (drop[i]) continue;
    kept.rows.push_back(std::move(out.rows[i]));
    if (with_counts) kept.counts.push_back(out.counts[i]);
  }
  co_return kept;
}

asio::awaitable<Result<bool>> CqlStore::has_entries(Index index, Uuid key, Deadline d) {
  if (d.expired()) co_return deadline_error();
  auto r = co_await exec(*st_->index_first[static_cast<int>(index)], args(V(key)), read_opts(d));
  if (!r) co_return read_error(r.error(), d);
  co_return r->size() > 0;
}

asio::awaitable<Result<std::vector<CommentMetrics>>> CqlStore::get_metrics(std::vector<Uuid> ids, Deadline d) {
  co_return co_await read_metrics(std::move(ids), true, d);
}

asio::awaitable<Result<std::vector<CommentMetrics>>> CqlStore::get_counts(std::vector<Uuid> ids, Deadline d) {
  co_return co_await read_metrics(std::move(ids), false, d);
}

asio::awaitable<Result<std::vector<CommentMetrics>>> CqlStore::read_metrics(std::vector<Uuid> ids, bool with_time,
                                                                            Deadline d) {
  if (d.expired()) co_return deadline_error();
  std::vector<Call> calls;
  add_keyed_reads(calls, *st_->metrics_get, st_->metrics_in.get(), ids, d);
  const size_t counters_end = calls.size();
  if (with_time) add_keyed_reads(calls, *st_->metrics_meta_get, st_->metrics_meta_in.get(), ids, d);
  auto rows = co_await exec_all(std::move(calls));
  if (!rows) co_return read_error(rows.error(), d);
  auto counts = counts_of(*rows, 0, counters_end, ids);
  if (!counts) co_return counts.take_error();
  std::vector<CommentMetrics> out = std::move(*counts);
  if (!with_time) co_return out;
  auto meta = find_keyed(*rows, counters_end, rows->size(), ids);
  if (!meta) co_return meta.take_error();
  for (size_t i = 0; i < ids.size(); ++i)
    if (const auto& a = (*meta)[i])
      if (auto st = nums((*rows)[a->first], a->second, {{1, &out[i].last_updated}}); !st) co_return st.take_error();
  co_return out;
}

Result<std::vector<CommentMetrics>> CqlStore::counts_of(const std::vector<Rows>& rows, size_t first_call,
                                                        size_t end_call, const std::vector<Uuid>& ids) {
  auto at = find_keyed(rows, first_call, end_call, ids);
  if (!at) return at.take_error();
  std::vector<CommentMetrics> out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    if (const auto& a = (*at)[i])
      if (auto st = nums(rows[a->first], a->second,
                         {{1, &out[i].likes}, {2, &out[i].dislikes}, {3, &out[i].replies_count}});
          !st)
        return st.take_error();
  return out;
}

void CqlStore::add_keyed_reads(std::vector<Call>& calls, const bridge::Prepared& one, const bridge::Prepared* in,
                               const std::vector<Uuid>& ids, Deadline d) const {
  const size_t width = in ? static_cast<size_t>(opts_.cql.keys_per_read) : 1;
  for (size_t from = 0; from < ids.size(); from += width) {
    const size_t n = std::min(width, ids.size() - from);
    if (n == 1) {
      calls.push_back(Call{&one, {V(ids[from])}, read_opts(d)});
      continue;
    }
    std::vector<bridge::Value> v;
    for (size_t k = 0; k < width; ++k) v.push_back(V(ids[from + std::min(k, n - 1)]));
    calls.push_back(Call{in, std::move(v), read_opts(d)});
  }
}

Result<std::vector<CqlStore::KeyedRow>> CqlStore::find_keyed(const std::vector<Rows>& rows, size_t first_call,
                                                             size_t end_call, const std::vector<Uuid>& ids) {
  std::vector<KeyedRow> at(ids.size());
  for (size_t c = first_call; c < end_call; ++c)
    for (size_t r = 0; r < rows[c].size(); ++r) {
      auto key = rows[c].uuid(r, 0);
      if (!key || !*key) return Error(Errc::internal, "cql: a keyed read's row has no key");
      const Uuid k = from_cql(**key);
      for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == k) at[i] = std::make_pair(c, r);
    }
  return at;
}

asio::awaitable<Result<VideoStats>> CqlStore::get_video_stats(Uuid video_id, Deadline d) {
  if (d.expired()) co_return deadline_error();
  std::vector<Call> calls;
  calls.push_back(Call{st_->stats_get.get(), {V(video_id)}, read_opts(d)});
  calls.push_back(Call{st_->stats_meta_get.get(), {V(video_id)}, read_opts(d)});
  auto rows = co_await exec_all(std::move(calls));
  if (!rows) co_return read_error(rows.error(), d);
  VideoStats out;
  const Rows& s = (*rows)[0];
  if (s.size() > 0)
    if (auto st = nums(s, 0, {{0, &out.comments_count}, {1, &out.reactions_count}}); !st) co_return st.take_error();
  if ((*rows)[1].size() > 0)
    if (auto st = nums((*rows)[1], 0, {{0, &out.last_updated}}); !st) co_return st.take_error();
  co_return out;
}

namespace {
// The user_hidden row of (video, user): recent_until, and any hidden comment.
Result<Store::UserView> user_view_of(const Rows& r) {
  Store::UserView v;
  if (r.size() == 0) return v;
  auto until = r.i64(0, 0);
  auto cid = r.uuid(0, 1);
  if (!until || !cid) return Error(Errc::internal, "cql: corrupt user_hidden row");
  v.recent_until = until->value_or(0);
  v.hidden = cid->has_value();
  return v;
}

// The user_reactions rows of (video, user), withdrawn ones (type none) included. A row with
// no type holds only a hidden mark of the folded view (schema step 10): no reaction.
Status user_reactions_of(const Rows& r, std::vector<UserReaction>& out) {
  for (size_t i = 0; i < r.size(); ++i) {
    auto cid = r.uuid(i, 0);
    auto type = r.bytes(i, 1);
    auto at = r.i64(i, 2);
    if (!cid || !*cid || !type || !at) return Error(Errc::internal, "cql: corrupt user_reactions row");
    if (*type) out.push_back(UserReaction{from_cql(**cid), reaction_from_text(**type), at->value_or(0)});
  }
  return ok_status();
}

// The fold's rows of (video, user) (user_rows_get: comment_id, type, WRITETIME(type), hidden,
// recent_until): the reactions (withdrawn ones included; a row of a hidden comment alone has
// no type and is no reaction), the view's hidden flag, and its read-your-writes mark in the
// row of comment kViewMarkRow. That row is always among the rows a LIMIT keeps: CQL orders
// uuids by version first, and the nil uuid's version (0) is below every comment id's.
// From column `col` on (user_rows_in selects user_id first), of the rows `only` (all if null).
Status folded_rows_of(const Rows& r, UserRows& out, size_t col = 0, const std::vector<size_t>* only = nullptr) {
  static const Uuid mark_row = *Uuid::parse(kViewMarkRow);
  const size_t n = only ? only->size() : r.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = only ? (*only)[k] : k;
    auto cid = r.uuid(i, col);
    auto type = r.bytes(i, col + 1);
    auto at = r.i64(i, col + 2);
    auto hidden = r.boolean(i, col + 3);
    auto until = r.i64(i, col + 4);
    if (!cid || !*cid || !type || !at || !hidden || !until)
      return Error(Errc::internal, "cql: corrupt user_reactions row");
    if (from_cql(**cid) == mark_row) {
      out.view.recent_until = until->value_or(0);
      continue;
    }
    if (hidden->value_or(false)) out.view.hidden = true;
    if (*type) out.reactions.push_back(UserReaction{from_cql(**cid), reaction_from_text(**type), at->value_or(0)});
  }
  return ok_status();
}

constexpr size_t kUserReactionsLimit = 1000;  // the LIMIT of user_reactions_get and user_rows_get
// A refill ahead of a copy's TTL (redis.user_rows_refresh_ahead): its read and fill, behind
// the read that served the copy; under detach_user_rows_cache's wait at shutdown.
constexpr auto kUserRowsRefreshTimeout = std::chrono::seconds(1);
// Users' rows reads of one video out at once on a node before askers wait to be read together
// (read_user_rows_together): under that, each reads at once, as alone; past it, reads carry up
// to keys_per_read users.
constexpr int kUserRowsReadsPerVideo = 4;
}  // namespace

bool fold_marker_set(const Rows& r) {
  if (r.size() == 0) return false;
  auto done = r.boolean(0, 0);
  return done && done->value_or(false);
}

asio::awaitable<Result<CqlStore::UserRowsRead>> CqlStore::read_user_rows(Uuid video_id, Uuid user_id, Deadline d) {
  UserRowsRead out;
  if (view_folded_.load()) {
    if (st_->user_rows_in) co_return co_await read_user_rows_together(video_id, user_id, d);
    std::vector<Uuid> one{user_id};
    auto r = co_await read_folded_rows(video_id, std::move(one), d);
    if (!r) co_return r.take_error();
    co_return std::move(r->front());
  }
  std::vector<Call> calls;
  calls.push_back(Call{st_->user_view_get.get(), args(V(video_id), V(user_id)), read_opts(d)});
  calls.push_back(Call{st_->user_reactions_get.get(), args(V(video_id), V(user_id)), read_opts(d)});
  // Not folded yet: the marker, beside this read once per fold_poll (no read of its own).
  int64_t due = fold_next_poll_ms_.load();
  const int64_t now = clock_.now_ms();
  const bool poll = now >= due && fold_next_poll_ms_.compare_exchange_strong(due, now + opts_.fold_poll.count());
  if (poll) calls.push_back(Call{st_->fold_marker_get.get(), {}, read_opts(d)});
  auto rows = co_await exec_all(std::move(calls));
  if (!rows) co_return read_error(rows.error(), d);
  auto v = user_view_of((*rows)[0]);
  if (!v) co_return v.take_error();
  out.rows.view = *v;
  if (auto st = user_reactions_of((*rows)[1], out.rows.reactions); !st) co_return st.take_error();
  out.complete = (*rows)[1].size() < kUserReactionsLimit;
  if (poll && fold_marker_set((*rows)[2]) && !view_folded_.exchange(true))
    spdlog::info("cql: the fold marker is set: a user's view is now read from user_reactions alone");
  co_return out;
}

asio::awaitable<Result<std::vector<CqlStore::UserRowsRead>>> CqlStore::read_folded_rows(Uuid video_id,
                                                                                      std::vector<Uuid> users,
                                                                                      Deadline d) {
  std::vector<UserRowsRead> out(users.size());
  std::vector<size_t> counts(users.size(), 0);
  if (users.size() == 1) {
    auto r = co_await exec(*st_->user_rows_get, args(V(video_id), V(users[0])), read_opts(d));
    if (!r) co_return read_error(r.error(), d);
    if (auto st = folded_rows_of(*r, out[0].rows); !st) co_return st.take_error();
    counts[0] = r->size();
  } else {
    const size_t width = static_cast<size_t>(opts_.cql.keys_per_read);
    std::vector<bridge::Value> values;
    values.reserve(1 + width);
    values.push_back(V(video_id));
    for (size_t i = 0; i < width; ++i) values.push_back(V(users[std::min(i, users.size() - 1)]));
    auto r = co_await exec(*st_->user_rows_in, std::move(values), read_opts(d));
    if (!r) co_return read_error(r.error(), d);
    std::map<Uuid, std::vector<size_t>> rows_of;  // a user's rows, by their user_id
    for (size_t i = 0; i < r->size(); ++i) {
      auto u = r->uuid(i, 0);
      if (!u || !*u) co_return Error(Errc::internal, "cql: corrupt user_reactions row");
      rows_of[from_cql(**u)].push_back(i);
    }
    static const std::vector<size_t> kNone;
    for (size_t k = 0; k < users.size(); ++k) {
      auto it = rows_of.find(users[k]);
      const std::vector<size_t>& mine = it == rows_of.end() ? kNone : it->second;
      if (auto st = folded_rows_of(*r, out[k].rows, 1, &mine); !st) co_return st.take_error();
      counts[k] = mine.size();
    }
  }
  for (size_t k = 0; k < users.size(); ++k) {
    out[k].complete = counts[k] < kUserReactionsLimit;
    if (!out[k].complete && !out[k].rows.view.hidden) {
      // Past the LIMIT: a hidden comment may be in the rows not read.
      auto h = co_await exec(*st_->hidden_any, args(V(video_id), V(users[k])), read_opts(d));
      if (!h) co_return read_error(h.error(), d);
      out[k].rows.view.hidden = h->size() > 0;
    }
  }
  co_return out;
}

asio::awaitable<Result<CqlStore::UserRowsRead>> CqlStore::read_user_rows_together(Uuid video_id, Uuid user_id,
                                                                                  Deadline d) {
  using R = Result<UserRowsRead>;
  auto init = [this, video_id, user_id, d](auto handler) {
    auto ex = asio::get_associated_executor(handler);
    UserRowsAsk ask{user_id, d, posting(std::move(handler))};
    bool start;
    {
      std::lock_guard lk(user_asks_mu_);
      UserRowsAsks& asks = user_asks_[video_id];
      asks.waiting.push_back(std::move(ask));
      start = asks.readers < kUserRowsReadsPerVideo;
      if (start) ++asks.readers;
    }
    if (start) asio::co_spawn(ex, user_rows_reader(video_id), asio::detached);
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(init),
                                                                                  asio::use_awaitable);
}

asio::awaitable<void> CqlStore::user_rows_reader(Uuid video_id) {
  using R = Result<UserRowsRead>;
  const size_t width = static_cast<size_t>(opts_.cql.keys_per_read);
  for (;;) {
    std::vector<UserRowsAsk> batch;
    {
      std::lock_guard lk(user_asks_mu_);
      auto it = user_asks_.find(video_id);
      auto& asks = it->second.waiting;
      if (asks.empty()) {  // the next asker starts a reader again
        if (--it->second.readers == 0) user_asks_.erase(it);
        co_return;
      }
      const size_t n = std::min(width, asks.size());
      batch.assign(std::make_move_iterator(asks.begin()), std::make_move_iterator(asks.begin() + n));
      asks.erase(asks.begin(), asks.begin() + n);
    }
    // An asker past its deadline is answered so at once: in the read it would only cut the
    // others' short. The read takes the latest deadline of the rest (read_opts caps it at
    // storage.cql.request_timeout), so no asker's read ends early for another's; an asker's
    // own wait is its caller's to bound (the service's reads run under store::within).
    std::erase_if(batch, [](UserRowsAsk& a) {
      if (!a.d.expired()) return false;
      a.done(deadline_error());
      return true;
    });
    if (batch.empty()) continue;
    Deadline d = batch.front().d;
    std::vector<Uuid> users;
    users.reserve(batch.size());
    for (auto& a : batch) {
      if (a.d.at > d.at) d = a.d;
      users.push_back(a.user);
    }
    Result<std::vector<UserRowsRead>> r = Error(Errc::internal, "cql: users' rows not read");
    try {
      r = co_await read_folded_rows(video_id, std::move(users), d);
    } catch (const std::exception& e) {  // never leave the askers (and the video's next ones) waiting
      r = Error(Errc::internal, std::string("cql: users' rows: ") + e.what());
    }
    for (size_t k = 0; k < batch.size(); ++k) batch[k].done(r ? R(std::move((*r)[k])) : R(r.error()));
  }
}

asio::awaitable<Result<CqlStore::UserRowsRead>> CqlStore::cached_user_rows(UserRowsCache& cache, Uuid video_id,
                                                                           Uuid user_id, Deadline d) {
  auto l = co_await cache.lookup(video_id, user_id, d);
  if (l.rows) {
    // Near its end, and this lookup's to refresh, or the node's own copy to renew from the
    // shared one: served now, refreshed behind.
    if (l.token || l.renew) {
      // Counted before the cache is looked at again, as the commits do: detach_user_rows_cache
      // either waits for this refill or has already detached the cache, and then none starts.
      user_rows_busy_.fetch_add(1);
      if (user_rows_.load() == &cache)
        asio::co_spawn(co_await asio::this_coro::executor, refresh_user_rows(video_id, user_id, std::move(l.token)),
                       asio::detached);
      else
        user_rows_busy_.fetch_sub(1);
    }
    co_return UserRowsRead{std::move(*l.rows), true};
  }
  auto r = co_await read_user_rows(video_id, user_id, d);
  if (r && l.token && r->complete) co_await cache.fill(video_id, user_id, std::move(*l.token), r->rows, d);
  co_return r;
}

asio::awaitable<void> CqlStore::refresh_user_rows(Uuid video_id, Uuid user_id, std::optional<std::string> token) {
  // Counted in user_rows_busy_ by the caller, so detach_user_rows_cache waits for it; its
  // deadline is under that wait's, so the cache it fills is still there.
  const Deadline d = Deadline::after(kUserRowsRefreshTimeout);
  if (!token) {  // the node's own copy, renewed from the shared one, which may want a refill itself
    if (auto* cache = user_rows_.load()) token = (co_await cache->renew(video_id, user_id, d)).token;
  }
  if (token) {
    auto r = co_await read_user_rows(video_id, user_id, d);
    if (r && r->complete) {
      if (auto* cache = user_rows_.load()) co_await cache->fill(video_id, user_id, std::move(*token), r->rows, d);
    }
  }
  // Here, not in a destructor: a frame that a stopped event loop destroys must not touch the
  // store, which may be gone by then.
  user_rows_busy_.fetch_sub(1);
}

asio::awaitable<Result<std::vector<ReactionType>>> CqlStore::get_reactions(Uuid video_id, Uuid user_id,
                                                                           std::vector<Uuid> comment_ids,
                                                                           Deadline d) {
  std::vector<ReactionType> out(comment_ids.size(), ReactionType::none);
  if (d.expired()) co_return deadline_error();
  if (comment_ids.empty()) co_return out;
  auto fill_out = [&](const std::vector<UserReaction>& mine) {
    for (auto& r : mine)
      for (size_t j = 0; j < comment_ids.size(); ++j)
        if (comment_ids[j] == r.comment_id) out[j] = r.type;
  };
  // One partition read of the user's reactions in the video (LIMIT 1000), or its copy in the
  // shared cache; a user with more than that there is answered from this page's registers.
  if (auto* cache = user_rows_.load()) {
    auto r = co_await cached_user_rows(*cache, video_id, user_id, d);
    if (!r) co_return r.take_error();
    if (r->complete) {
      fill_out(r->rows.reactions);
      co_return out;
    }
  } else if (view_folded_.load()) {
    auto r = co_await read_user_rows(video_id, user_id, d);
    if (!r) co_return r.take_error();
    if (r->complete) {
      fill_out(r->rows.reactions);
      co_return out;
    }
  } else {
    auto r = co_await exec(*st_->user_reactions_get, args(V(video_id), V(user_id)), read_opts(d));
    if (!r) co_return read_error(r.error(), d);
    if (r->size() < kUserReactionsLimit) {
      std::vector<UserReaction> mine;
      if (auto st = user_reactions_of(*r, mine); !st) co_return st.take_error();
      fill_out(mine);
      co_return out;
    }
  }
  std::vector<Call> calls;
  for (auto& c : comment_ids) calls.push_back(Call{st_->register_get.get(), {V(c), V(user_id)}, read_opts(d)});
  auto rows = co_await exec_all(std::move(calls));
  if (!rows) co_return read_error(rows.error(), d);
  for (size_t j = 0; j < comment_ids.size(); ++j) {
    const Rows& x = (*rows)[j];
    if (x.size() == 0) continue;
    auto type = x.bytes(0, 0);
    if (type && *type) out[j] = reaction_from_text(**type);
  }
  co_return out;
}

asio::awaitable<Result<Store::UserView>> CqlStore::get_user_view(Uuid video_id, Uuid user_id, Deadline d) {
  if (d.expired()) co_return deadline_error();
  if (auto* cache = user_rows_.load()) {
    auto r = co_await cached_user_rows(*cache, video_id, user_id, d);
    if (!r) co_return r.take_error();
    co_return r->rows.view;
  }
  if (view_folded_.load()) {
    auto r = co_await read_user_rows(video_id, user_id, d);
    if (!r) co_return r.take_error();
    co_return r->rows.view;
  }
  auto r = co_await exec(*st_->user_view_get, args(V(video_id), V(user_id)), read_opts(d));
  if (!r) co_return read_error(r.error(), d);
  co_return user_view_of(*r);
}

asio::awaitable<Result<Store::ViewAndReactions>> CqlStore::get_view_and_reactions(Uuid video_id, Uuid user_id,
                                                                                 Deadline d) {
  if (d.expired()) co_return deadline_error();
  // (Not a ?: of two co_awaits: g++ 12 miscompiles that.)
  Result<UserRowsRead> r = UserRowsRead{};
  if (auto* cache = user_rows_.load())
    r = co_await cached_user_rows(*cache, video_id, user_id, d);
  else
    r = co_await read_user_rows(video_id, user_id, d);
  if (!r) co_return r.take_error();
  ViewAndReactions out{r->rows.view, std::nullopt};
  if (r->complete) out.reactions = r->rows.live();
  co_return out;
}

asio::awaitable<Result<bool>> CqlStore::has_hidden(Uuid video_id, Uuid user_id, Deadline d) {
  auto v = co_await get_user_view(video_id, user_id, d);
  if (!v) co_return v.take_error();
  co_return v->hidden;
}

namespace {
// One register row: `first` is the column of its type; then created_at, node_id, op_id.
Result<ReactionRow> register_of(const Rows& x, size_t row, size_t first) {
  auto type = x.bytes(row, first);
  auto at = x.i64(row, first + 1);
  auto node = x.i64(row, first + 2);
  auto op = x.uuid(row, first + 3);
  if (!type || !at || !node || !op) return Error(Errc::internal, "cql: corrupt reactions row");
  ReactionRow out;
  out.type = *type ? reaction_from_text(**type) : ReactionType::none;
  out.timestamp = at->value_or(0);
  out.node_id = static_cast<uint32_t>(node->value_or(0));
  if (*op) out.op_id = from_cql(**op);
  return out;
}
}  // namespace

Result<std::vector<ReactionRow>> CqlStore::get_registers(const std::vector<std::pair<Uuid, Uuid>>& comment_user) {
  // One partition read per comment (per kRegistersPerRead of its users), all at once.
  std::map<Uuid, std::vector<size_t>> by_comment;  // comment -> indexes into comment_user
  for (size_t i = 0; i < comment_user.size(); ++i) by_comment[comment_user[i].first].push_back(i);
  std::vector<Call> calls;
  std::vector<std::vector<size_t>> asked;  // per call: indexes into comment_user
  for (auto& [comment, idx] : by_comment) {
    for (size_t from = 0; from < idx.size(); from += kRegistersPerRead) {
      std::vector<size_t> part(idx.begin() + from, idx.begin() + std::min(idx.size(), from + kRegistersPerRead));
      if (part.size() == 1) {
        calls.push_back(Call{st_->register_get.get(), {V(comment), V(comment_user[part[0]].second)}, read_opts({})});
      } else {
        std::vector<bridge::Value> v{V(comment)};
        for (size_t k = 0; k < kRegistersPerRead; ++k) v.push_back(V(comment_user[part[std::min(k, part.size() - 1)]].second));
        calls.push_back(Call{st_->register_get_in.get(), std::move(v), read_opts({})});
      }
      asked.push_back(std::move(part));
    }
  }
  auto rows = exec_all_blocking(std::move(calls));
  if (!rows) return rows.take_error();
  std::vector<ReactionRow> out(comment_user.size());
  for (size_t c = 0; c < asked.size(); ++c) {
    const Rows& x = (*rows)[c];
    if (asked[c].size() == 1) {
      if (x.size() == 0) continue;
      auto r = register_of(x, 0, 0);
      if (!r) return r.take_error();
      out[asked[c][0]] = *r;
      continue;
    }
    for (size_t row = 0; row < x.size(); ++row) {
      auto user = x.uuid(row, 0);
      if (!user || !*user) return Error(Errc::internal, "cql: corrupt reactions row");
      auto r = register_of(x, row, 1);
      if (!r) return r.take_error();
      const Uuid u = from_cql(**user);
      for (size_t i : asked[c])
        if (comment_user[i].second == u) out[i] = *r;
    }
  }
  return out;
}

Result<std::optional<Store::CommentRecount>> CqlStore::recount_comment(const Uuid&) {
  return Error(Errc::unavailable, "cql: no snapshot recounts (docs/cluster.md: Reconciliation repair)",
               "not_supported");
}

Result<Store::VideoRecount> CqlStore::recount_video(const Uuid&) {
  return Error(Errc::unavailable, "cql: no snapshot recounts (docs/cluster.md: Reconciliation repair)",
               "not_supported");
}

Result<std::vector<Uuid>> CqlStore::list_ids(IdTable, std::optional<Uuid>, size_t) {
  return Error(Errc::unavailable, "cql: no key-ordered id listing (partitions are in token order)",
               "not_supported");
}

}  // namespace commentd::store::cql

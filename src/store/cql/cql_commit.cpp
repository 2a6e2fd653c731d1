// CqlStore's write side: commit() and commit_owned() (the order is in cql_store.h and
// docs/cluster.md "Every write").
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <future>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/posting.h"
#include "store/cql/commit_intent.h"
#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

using bridge::Rows;
using bridge::Value;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

Error conflict(const std::string& what) { return Error(Errc::conflict, what + " changed concurrently", "conflict"); }

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The value a never-applying conditional write found (column 1); 0 when there is no row.
Result<uint64_t> probed(const Rows& r) {
  if (r.applied().value_or(true)) return Error(Errc::internal, "cql: a probe applied or answered no [applied]");
  if (r.size() == 0 || r.columns() < 2) return uint64_t{0};
  auto v = r.i64(0, 1);
  if (!v) return v.take_error();
  return static_cast<uint64_t>(v->value_or(0));
}

// Bounds the Redis invalidation inside a commit (the client's command_timeout bounds each call too).
constexpr auto kUserRowsInvalidateTimeout = std::chrono::seconds(1);

bool covered(const WrittenRows& written, const PutReaction& p) {
  return written.count({p.comment_id, p.user_id}) > 0;
}

// A user_reactions write's timestamp: the op's LWW order (docs/cluster.md rule 5), as the
// register's, so CQL keeps the same winner in both whatever order the writes land in.
int64_t lww_timestamp(TimeMs at, uint32_t node_id) { return at * 1000 + node_id % 1000; }

// The user_reactions row a reaction owner's register write carries, with its write timestamp.
RowMark row_of(const PutReaction& p) {
  return RowMark{p.video_id, p.user_id, p.comment_id, lww_timestamp(p.row.timestamp, p.row.node_id), p.row.type};
}

// What the per-user rows cache is told after a WriteSet's derived writes (store/
// user_rows_cache.h): `ok`, they are durable: the reaction rows written (a request's marked
// for its owner; an owner's row a mark covered was not written), and the keys whose view row
// was written, whose copies go; else every key it touches goes (a failed write may have
// landed in part).
struct UserRowsWrites {
  std::vector<std::pair<Uuid, Uuid>> dropped;
  std::vector<UserRowsCache::WrittenRow> written;
};
UserRowsWrites user_rows_writes(const WriteSet& ws, const WrittenRows& covered_rows, bool ok) {
  UserRowsWrites out;
  auto drop = [&out](const Uuid& video, const Uuid& user) {
    std::pair<Uuid, Uuid> k{video, user};
    if (std::find(out.dropped.begin(), out.dropped.end(), k) == out.dropped.end()) out.dropped.push_back(k);
  };
  auto row = [&](const RowMark& m, bool mark) {
    if (ok) out.written.push_back({m, mark});
    else drop(m.video_id, m.user_id);
  };
  for (auto& m : ws.mutations) {
    if (auto* x = std::get_if<RecentWrite>(&m)) {
      drop(x->video_id, x->user_id);
    } else if (auto* h = std::get_if<HiddenMark>(&m)) {
      drop(h->video_id, h->user_id);
    } else if (auto* u = std::get_if<UserReactionPut>(&m)) {
      if (u->at)  // else written at the commit's own time, which the cache is not told: dropped
        row(RowMark{u->video_id, u->user_id, u->comment_id, lww_timestamp(u->at, u->node_id), u->type}, true);
      else
        drop(u->video_id, u->user_id);
    } else if (auto* p = std::get_if<PutReaction>(&m); p && !covered(covered_rows, *p)) {
      row(row_of(*p), false);
    }
  }
  return out;
}

// The user rows a reaction owner's WriteSet would write with its registers (PutReaction), as
// the marks that would cover them.
std::vector<RowMark> owner_rows(const WriteSet& ws) {
  std::vector<RowMark> out;
  for (auto& m : ws.mutations)
    if (auto* p = std::get_if<PutReaction>(&m)) out.push_back(row_of(*p));
  return out;
}

std::string bytes_of(const Uuid& u) { return std::string(u.bytes.begin(), u.bytes.end()); }
}  // namespace

std::string pk(const Uuid& a) { return "1" + bytes_of(a); }
std::string pk(const Uuid& a, const Uuid& b) { return "2" + bytes_of(a) + bytes_of(b); }
std::string pk(const Uuid& a, std::string_view b) { return "3" + bytes_of(a) + std::string(b); }

std::vector<std::vector<CqlStore::Call>> group_writes(std::vector<CqlStore::Call> calls, size_t max_bytes,
                                                      size_t max_items) {
  std::vector<std::vector<CqlStore::Call>> out;
  std::unordered_map<std::string, size_t> open;  // partition -> its group being filled
  std::vector<size_t> bytes;                      // per group
  for (auto& c : calls) {
    size_t size = 0;
    for (auto& v : c.values) size += v.wire_size();
    if (!c.partition.empty()) {
      auto it = open.find(c.partition);
      if (it != open.end() && out[it->second].size() < max_items && bytes[it->second] + size <= max_bytes) {
        bytes[it->second] += size;
        out[it->second].push_back(std::move(c));
        continue;
      }
      open[c.partition] = out.size();
    }
    out.emplace_back().push_back(std::move(c));
    bytes.push_back(size);
  }
  return out;
}

void CqlStore::commit(WriteSet ws, CommitCallback done) {
  in_flight_.fetch_add(1);
  auto release = [this] {
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard lk(drain_mu_);
      drained_.notify_all();
    }
  };
  if (closing_.load()) {
    release();
    done(Error(Errc::unavailable, "storage is closing", "shutting_down"));
    return;
  }
  if (in_flight_.load() > opts_.max_in_flight_commits) {
    release();
    done(Error(Errc::overloaded, "too many writes in flight", "write_queue_full", 1));
    return;
  }
  note_buckets(ws.mutations);
  // The comments this write changes (a new one, version 1, has no kept row): their rows kept
  // for page builds go once the write is over, whatever its outcome, before its answer.
  std::vector<Uuid> changed;
  for (auto& m : ws.mutations)
    if (auto* p = std::get_if<PutComment>(&m); p && p->comment.version > 1) changed.push_back(p->comment.id);
  asio::co_spawn(
      *pool_,
      [this, ws = std::move(ws), done = std::move(done), release,
       changed = std::move(changed)]() mutable -> asio::awaitable<void> {
        Result<CommitResult> r = Error(Errc::internal, "commit did not run");
        std::optional<IntentKey> finished;
        std::optional<LogAppend> after_answer;
        try {
          r = co_await run_commit(std::move(ws), finished, after_answer);
        } catch (const std::exception& e) {
          r = Error(Errc::internal, std::string("cql commit threw: ") + e.what());
        }
        for (auto& id : changed) page_rows_->forget(id);
        done(std::move(r));
        // After the answer, nothing waits on these. The events of a write with an intent (run_commit
        // step 4): if their append fails, the intent stays for the sweep, which appends them.
        if (after_answer) {
          Result<CommitResult> appended = CommitResult{};
          try {
            appended = co_await append_logs(std::move(*after_answer));
          } catch (const std::exception& e) {
            appended = Error(Errc::internal, std::string("the append threw: ") + e.what());
          }
          if (!appended) {
            finished.reset();
            appends_after_answer_failed_.fetch_add(1);
            spdlog::warn("cql: a write's events were not appended after its answer ({}); its commit intent's "
                         "roll-forward appends them",
                         appended.error().message);
          }
        }
        // The intent's delete. If it fails (or the node dies first), the sweep finds the intent and
        // resolves it (a whole write is then written again, which its idempotent rows and event
        // ids allow).
        if (finished) {
          std::vector<Value> key{Value::int32(finished->shard), big(finished->minute), V(finished->id)};
          try {
            (void)co_await exec(*st_->intent_delete, std::move(key), write_opts(true));
          } catch (const std::exception&) {
          }
        }
        release();
      },
      asio::detached);
}

void CqlStore::detach_user_rows_cache(std::chrono::milliseconds max) {
  user_rows_.store(nullptr);
  const auto until = std::chrono::steady_clock::now() + max;
  while (user_rows_busy_.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

Status CqlStore::commit_owned(WriteSet ws) {
  for (auto& m : ws.mutations)
    if (std::holds_alternative<AppendReactionOp>(m) || std::holds_alternative<AppendOutbox>(m))
      return Error(Errc::internal, "commit_owned cannot append to a log");
  std::promise<Result<CommitResult>> p;
  auto f = p.get_future();
  commit(std::move(ws), [&p](Result<CommitResult> r) { p.set_value(std::move(r)); });
  auto r = f.get();
  if (!r) return r.take_error();
  return ok_status();
}

asio::awaitable<Result<CommitResult>> CqlStore::run_commit(WriteSet ws, std::optional<IntentKey>& finished,
                                                           std::optional<LogAppend>& after_answer) {
  // Which precondition is a conditional write (it guards a mutation of its own key) and
  // which is only checked.
  const CommentAt* lwt_at = nullptr;
  const PutComment* lwt_put = nullptr;
  const ConsumerAt* lwt_from = nullptr;
  const SetConsumerPos* lwt_to = nullptr;
  std::vector<const CommentAt*> check_comments;
  std::vector<const ConsumerAt*> check_consumers;
  size_t conditional = 0;
  for (auto& pre : ws.preconditions) {
    if (auto* c = std::get_if<CommentAt>(&pre)) {
      const PutComment* put = nullptr;
      for (auto& m : ws.mutations)
        if (auto* p = std::get_if<PutComment>(&m); p && p->comment.id == c->id) put = p;
      if (put) lwt_at = c, lwt_put = put, ++conditional;
      else check_comments.push_back(c);
    } else if (auto* k = std::get_if<ConsumerAt>(&pre)) {
      const SetConsumerPos* set = nullptr;
      for (auto& m : ws.mutations)
        if (auto* s = std::get_if<SetConsumerPos>(&m); s && s->consumer == k->consumer) set = s;
      if (set) lwt_from = k, lwt_to = set, ++conditional;
      else check_consumers.push_back(k);
    }
  }
  if (conditional > 1)
    co_return Error(Errc::internal, "cql: a WriteSet may hold one conditional write (docs/cluster.md)");

  // The commit intent (docs/cluster.md "Commit intents"): what this write makes after its
  // entity write on a comment, recorded before it (sent with step 1), named by the entity
  // write in the comment row's slot for its new version.
  std::optional<IntentKey> intent;
  std::vector<Call> intent_put;
  if (lwt_put) {
    auto body = encode_intent(ws.mutations);
    if (!body) co_return body.take_error();
    const int64_t at_us = next_write_timestamp_us();
    intent = IntentKey{intent_shard(lwt_put->comment.id), at_us / 60'000'000, intent_ids_->next()};
    intent_put.push_back(Call{st_->intent_put.get(),
                              {Value::int32(intent->shard), big(intent->minute), V(intent->id),
                               V(lwt_put->comment.id), big(static_cast<int64_t>(lwt_put->comment.version)),
                               big(at_us), Value::blob(std::move(*body))},
                              write_opts(true)});
  }
  // A refusal from here on has written nothing but the intent and the marks.
  auto refused = [&](Error e) -> Result<CommitResult> {
    finished = intent;
    return e;
  };

  // 0. Counter repair marks (docs/cluster.md "Counter repair"), before the entity write and
  // sent with step 1's reads: each guarded counter's writes_started and its candidate row.
  // From here until its counter update lands with writes_done + 1, the key's marks differ,
  // which is how the repairer finds a write that died in between.
  const auto marked_at = std::chrono::steady_clock::now();
  const int64_t marked_wall_ms = wall_ms();
  std::vector<std::string> candidates;
  std::vector<Call> marks = mark_calls(ws, /*start=*/true, &candidates);

  // 1. Checked preconditions, read through Paxos (a conditional delete that never applies
  // answers the current value and completes any in-flight round, as a SERIAL read).
  if (!check_comments.empty() || !check_consumers.empty() || !marks.empty() || intent) {
    std::vector<Call> calls;
    for (auto* c : check_comments) calls.push_back(Call{st_->comment_probe.get(), {V(c->id)}, serial_read_opts()});
    for (auto* k : check_consumers)
      calls.push_back(Call{st_->consumer_probe.get(), {txt(k->consumer), Value::int32(static_cast<int32_t>(opts_.node_id))},
                           serial_read_opts()});
    for (auto& m : marks) calls.push_back(std::move(m));
    for (auto& c : intent_put) calls.push_back(std::move(c));
    auto rows = co_await exec_all(std::move(calls));
    if (!rows) co_return rows.take_error();
    if (!candidates.empty()) note_candidates(candidates, marked_wall_ms);
    size_t i = 0;
    for (auto* c : check_comments) {
      const Rows& r = (*rows)[i++];
      auto have = probed(r);
      if (!have) co_return have.take_error();
      if (*have != c->version) {
        co_await release_marks(ws);
        co_return refused(conflict("comment " + c->id.str()));
      }
    }
    for (auto* k : check_consumers) {
      const Rows& r = (*rows)[i++];
      auto have = probed(r);
      if (!have) co_return have.take_error();
      if (*have != k->seq) {
        co_await release_marks(ws);
        co_return refused(conflict("consumer " + k->consumer));
      }
    }
  }
  if (opts_.testing_commit_fault == CqlStoreOptions::CommitFault::before_entity_write && intent)
    co_return Error(Errc::unavailable, "testing: the commit stopped before its entity write");

  // 2. The conditional write.
  if (lwt_put) {
    auto vals = comment_values(lwt_put->comment);
    const int slot = intent_slot(lwt_put->comment.version);
    Result<Rows> r = Error(Errc::internal, "unset");
    if (lwt_at->version == 0) {
      vals.push_back(V(intent->id));
      r = co_await exec(*st_->insert_comment_if_new[slot], std::move(vals), write_opts(false));
    } else {
      std::vector<Value> upd(std::make_move_iterator(vals.begin() + 1), std::make_move_iterator(vals.end()));
      upd.push_back(V(intent->id));
      upd.push_back(V(lwt_put->comment.id));
      upd.push_back(big(static_cast<int64_t>(lwt_at->version)));
      auto upd_null = upd;
      r = co_await exec(*st_->update_comment_if_version[slot], std::move(upd), write_opts(false));
      // Version 1 is also a V1 row's null version (decode_comment): when the condition
      // failed on a row whose version is null, the same write goes `IF version = null`.
      // Still one conditional write that applies: the first failed without writing.
      if (r && lwt_at->version == 1 && !r->applied().value_or(true) && r->size() > 0 && r->columns() >= 2) {
        auto have = r->i64(0, 1);
        if (have && !have->has_value()) {
          upd_null.pop_back();
          r = co_await exec(*st_->update_comment_if_null_version[slot], std::move(upd_null), write_opts(false));
        }
      }
    }
    // An error here leaves the outcome unknown (a timeout may have applied): the sweep decides.
    if (!r) co_return r.take_error();
    auto applied = r->applied();
    if (!applied) co_return Error(Errc::internal, "cql: a conditional write answered no [applied]");
    if (!*applied) {
      co_await release_marks(ws);
      co_return refused(conflict("comment " + lwt_put->comment.id.str()));
    }
    if (opts_.testing_commit_fault == CqlStoreOptions::CommitFault::after_entity_write)
      co_return Error(Errc::unavailable, "testing: the commit stopped after its entity write");
  }
  if (lwt_to) {
    auto moved = co_await move_consumer(lwt_to->consumer, lwt_from->seq, lwt_to->seq);
    if (!moved) co_return moved.take_error();
    if (!*moved) {
      co_await release_marks(ws);
      co_return refused(conflict("consumer " + lwt_to->consumer));
    }
  }

  // 3. Derived rows, idempotent. A reaction owner's registers (PutReaction) also write the
  // user's user_reactions row, which the request that accepted the op wrote already unless it
  // died first: the rows whose request left a written mark are not written again
  // (store/user_rows_cache.h "Written marks"; half of the INSERT user_reactions in viral 1x).
  WrittenRows written;
  if (auto asks = owner_rows(ws); !asks.empty()) {
    user_rows_busy_.fetch_add(1);
    if (auto* cache = user_rows_.load()) {
      auto hit = co_await cache->take_written(asks, Deadline::after(kUserRowsInvalidateTimeout));
      for (size_t i = 0; i < asks.size() && i < hit.size(); ++i)
        if (hit[i]) written.emplace(asks[i].comment_id, asks[i].user_id);
    }
    user_rows_busy_.fetch_sub(1);
  }
  std::vector<Call> derived;
  for (auto& m : ws.mutations) {
    if (auto* p = std::get_if<PutComment>(&m); p && p == lwt_put) continue;
    if (auto* s = std::get_if<SetConsumerPos>(&m); s && s == lwt_to) continue;
    const auto* p = std::get_if<PutReaction>(&m);
    derived_calls(m, derived, !p || !covered(written, *p));
  }
  // 3b. At the same time, the guarded counters' updates (a create's comments_count, a reply's
  // replies_count, a counted status change's), one round trip each, so the write waits for the
  // longer of the two instead of both in turn. A guarded update carries writes_done + 1; past
  // its window, or when it fails, the count is the repairer's and the write still succeeds. If
  // the derived rows fail while the update landed, the write answers its error with the entity
  // write standing, as before; its intent's roll-forward moves the key's marks first
  // (writes_started + 1), so the repairer recounts the key once its rows are all there: the
  // early update counts nothing twice.
  std::vector<Call> counters, guarded;
  for (auto& m : ws.mutations) counter_calls(m, guarded_counter(m) ? guarded : counters);
  if (!guarded.empty() && std::chrono::steady_clock::now() - marked_at > guarded_counter_window(opts_.cql)) {
    counts_deferred_.fetch_add(1);
    guarded.clear();
  }
  Status rows_written = ok_status();
  Result<std::vector<Rows>> counted = std::vector<Rows>{};
  if (!derived.empty() && !guarded.empty()) {
    std::tie(rows_written, counted) =
        co_await (write_derived(ws, written, std::move(derived)) && exec_all(std::move(guarded)));
  } else if (!derived.empty()) {
    rows_written = co_await write_derived(ws, written, std::move(derived));
  } else if (!guarded.empty()) {
    counted = co_await exec_all(std::move(guarded));
  }
  if (!counted) counts_deferred_.fetch_add(1);
  if (!rows_written) co_return rows_written.take_error();

  // 4. Log appends, sequenced by this node's log writer. A write with a commit intent has its
  // events in the intent, durable since step 1: its append goes after the answer (commit()),
  // and the intent is deleted once the append stands, so an append that fails there (or a node
  // that dies first) has the events appended by the intent's roll-forward. Any other write
  // appends here, before its answer.
  CommitResult out;
  LogAppend append;
  for (auto& m : ws.mutations) {
    if (auto* a = std::get_if<AppendReactionOp>(&m)) append.ops.push_back(a->op);
    if (auto* o = std::get_if<AppendOutbox>(&m)) append.outbox.push_back(std::move(*o));
  }
  if (!append.ops.empty() || !append.outbox.empty()) {
    if (intent && append.ops.empty()) {
      after_answer = std::move(append);
    } else {
      auto logged = co_await append_logs(std::move(append));
      if (!logged) co_return logged.take_error();
      out = std::move(*logged);
    }
  }
  // Steps 3 and 4 are whole (or 4 comes after the answer): the intent has done its work,
  // deleted after the answer.
  finished = intent;

  // 5. The other counters (a reaction owner's), not idempotent and never retried, so only
  // once the log append stands: a failed append fails the write before any of them lands.
  // Their last_updated went in 3.
  if (!counters.empty()) {
    auto r = co_await exec_all(std::move(counters));
    if (!r) co_return r.take_error();
  }
  co_return out;
}

std::vector<CqlStore::Call> CqlStore::mark_calls(const WriteSet& ws, bool start,
                                                 std::vector<std::string>* candidates) const {
  std::vector<Call> out;
  const int64_t now = wall_ms();
  const int64_t reuse = candidate_reuse_window(opts_.cql).count();
  for (auto& m : ws.mutations) {
    auto g = guarded_counter(m);
    if (!g) continue;
    const bool video = g->first == kRepairVideo;
    const auto& counter = start ? (video ? st_->stats_started : st_->metrics_started)
                                : (video ? st_->stats_done : st_->metrics_done);
    out.push_back(Call{counter.get(), {V(g->second)}, write_opts(false)});
    if (!start) continue;
    // A hot video's creates all name the same candidate row: one write of it per window
    // (count_repair.h candidate_reuse_window) stands for the others (3 % of the statements of
    // viral 1x were this row written again).
    std::string key = std::string(g->first) + bytes_of(g->second);
    {
      std::lock_guard lk(candidates_mu_);
      auto it = candidates_written_.find(key);
      if (it != candidates_written_.end() && now - it->second >= 0 && now - it->second < reuse) continue;
    }
    out.push_back(Call{st_->repair_mark.get(),
                       {Value::int32(repair_shard(g->second)), txt(std::string(g->first)), V(g->second), big(now * 1000)},
                       write_opts(true)});
    if (candidates) candidates->push_back(std::move(key));
  }
  return out;
}

void CqlStore::note_candidates(const std::vector<std::string>& keys, int64_t at_ms) {
  std::lock_guard lk(candidates_mu_);
  // Only the last window's entries matter; past this size the map starts again (the next
  // write of each key then writes its candidate).
  if (candidates_written_.size() > 65'536) candidates_written_.clear();
  for (auto& k : keys) {
    auto& t = candidates_written_[k];
    t = std::max(t, at_ms);
  }
}

asio::awaitable<Status> CqlStore::write_derived(const WriteSet& ws, const WrittenRows& written,
                                                std::vector<Call> derived) {
  auto r = co_await exec_writes(std::move(derived));
  // The per-user rows these writes touched, before any ack: the reaction rows now durable go
  // into their shared copies (and a request's are marked for their owner); other copies go.
  user_rows_busy_.fetch_add(1);
  if (auto* cache = user_rows_.load()) {
    auto [dropped, rows] = user_rows_writes(ws, written, r.ok());
    if (!dropped.empty() || !rows.empty())
      co_await cache->after_write(std::move(dropped), std::move(rows), Deadline::after(kUserRowsInvalidateTimeout));
  }
  user_rows_busy_.fetch_sub(1);
  co_return r;
}

asio::awaitable<Result<CommitResult>> CqlStore::append_logs(LogAppend append) {
  using R = Result<CommitResult>;
  if (opts_.testing_commit_fault == CqlStoreOptions::CommitFault::log_append)
    co_return Error(Errc::unavailable, "testing: the log append failed");
  auto init = [this](auto handler, LogAppend a) {
    a.done = posting(std::move(handler));
    enqueue_log(std::move(a));
  };
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(init), asio::use_awaitable,
                                                                                  std::move(append));
}

asio::awaitable<void> CqlStore::release_marks(const WriteSet& ws) {
  // A write refused before its entity write changed nothing: its marks are brought together
  // at once instead of leaving the key to a recount. Best effort: if this fails, the
  // repairer's recount finds nothing to change and brings them together itself.
  auto calls = mark_calls(ws, /*start=*/false);
  if (!calls.empty()) (void)co_await exec_all(std::move(calls));
}

asio::awaitable<Result<bool>> CqlStore::move_consumer(std::string consumer, uint64_t from, uint64_t to) {
  const Value shard = Value::int32(static_cast<int32_t>(opts_.node_id));
  if (from == 0) {
    auto r = co_await exec(*st_->consumer_insert_if_new, args(txt(consumer), shard, big(static_cast<int64_t>(to))),
                           write_opts(false));
    if (!r) co_return r.take_error();
    if (r->applied().value_or(false)) co_return true;
    // The row exists: it may still be at 0.
  }
  auto r = co_await exec(*st_->consumer_update_if,
                         args(big(static_cast<int64_t>(to)), txt(consumer), shard, big(static_cast<int64_t>(from))),
                         write_opts(false));
  if (!r) co_return r.take_error();
  co_return r->applied().value_or(false);
}

void CqlStore::derived_calls(const Mutation& m, std::vector<Call>& out, bool user_row) const {
  // `key`: the partition the statement writes (pk(), for exec_writes' batches).
  auto add = [&](const bridge::PreparedPtr& p, std::vector<Value> v, std::string key = {}) {
    out.push_back(Call{p.get(), std::move(v), write_opts(true), std::move(key)});
  };
  const Value node = Value::int32(static_cast<int32_t>(opts_.node_id));
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, PutComment>) {
          add(st_->upsert_comment, comment_values(x.comment), pk(x.comment.id));
        } else if constexpr (std::is_same_v<T, IndexPut>) {
          add(st_->index_put[static_cast<int>(x.index)], {V(x.key), ts(x.created_at), V(x.id)}, pk(x.key));
        } else if constexpr (std::is_same_v<T, IndexDelete>) {
          add(st_->index_delete[static_cast<int>(x.index)], {V(x.key), ts(x.created_at), V(x.id)}, pk(x.key));
        } else if constexpr (std::is_same_v<T, BucketPut>) {
          add(st_->bucket_put, {V(x.video_id), txt(x.bucket), ts(x.created_at), V(x.id)}, pk(x.video_id, x.bucket));
          add(st_->video_bucket_put, {V(x.video_id), txt(x.bucket)}, pk(x.video_id));
        } else if constexpr (std::is_same_v<T, HiddenMark>) {
          // Both tables, in one batch (same partition key: one mutation): user_hidden for the
          // nodes of the release before and until the fold marker, the fold for this one's reads.
          add(x.set ? st_->hidden_put : st_->hidden_delete, {V(x.video_id), V(x.user_id), V(x.id)},
              pk(x.video_id, x.user_id));
          add(x.set ? st_->fold_hidden_put : st_->fold_hidden_delete, {V(x.video_id), V(x.user_id), V(x.id)},
              pk(x.video_id, x.user_id));
        } else if constexpr (std::is_same_v<T, RecentWrite>) {
          // USING TIMESTAMP = the mark: the latest mark wins, as the max the contract asks.
          // Both tables, as HiddenMark.
          add(st_->recent_put, {big(x.until * 1000), ts(x.until), V(x.video_id), V(x.user_id)}, pk(x.video_id, x.user_id));
          add(st_->fold_recent_put, {big(x.until * 1000), ts(x.until), V(x.video_id), V(x.user_id)},
              pk(x.video_id, x.user_id));
        } else if constexpr (std::is_same_v<T, UserReactionPut>) {
          // The op's LWW order, as PutReaction writes the same row: an older op's write that
          // lands later (another node, a slow request) cannot overwrite a newer op's.
          // A withdrawn reaction is a row of type none, not a tombstone: a read sees its time,
          // which the per-user rows cache orders later writes by (store/user_rows_cache.h).
          const int64_t at = x.at ? lww_timestamp(x.at, x.node_id) : lww_timestamp(wall_ms(), opts_.node_id);
          add(st_->user_reaction_put, {V(x.video_id), V(x.user_id), V(x.comment_id), txt(to_string(x.type)), big(at)},
              pk(x.video_id, x.user_id));
        } else if constexpr (std::is_same_v<T, PutReaction>) {
          // docs/cluster.md rule 5: the register's LWW order as the write timestamp.
          const int64_t at = lww_timestamp(x.row.timestamp, x.row.node_id);
          add(st_->register_put, {V(x.comment_id), V(x.user_id), txt(to_string(x.row.type)), ts(x.row.timestamp),
                                  Value::int32(static_cast<int32_t>(x.row.node_id)), V(x.row.op_id), big(at)},
              pk(x.comment_id));
          if (!user_row) return;
          add(st_->user_reaction_put, {V(x.video_id), V(x.user_id), V(x.comment_id), txt(to_string(x.row.type)), big(at)},
              pk(x.video_id, x.user_id));
        } else if constexpr (std::is_same_v<T, PutReactionEvent>) {
          add(st_->reaction_event_put, {V(x.comment_id), ts(x.at), V(x.reaction_id), V(x.user_id),
                                        txt(to_string(x.type)), txt(x.add ? "add" : "remove")},
              pk(x.comment_id));
        } else if constexpr (std::is_same_v<T, SetConsumerPos>) {
          add(st_->consumer_put, {big(static_cast<int64_t>(x.seq)), txt(x.consumer), node});
        } else if constexpr (std::is_same_v<T, MetricsDelta>) {
          // The counters' last_updated: idempotent (USING TIMESTAMP at, so the max wins), and its
          // table shares the comment's partition key, so it rides in the batch of the comment's
          // other rows (the owner's registers and events, a reply's index row) instead of
          // costing a statement of its own beside the counters (7 % of the statements in viral
          // 1x). Written before the counters move: a reader may see the new time with the old
          // counts for a moment, and a counter write that fails leaves the key to a recount.
          add(st_->metrics_meta_put, {big(x.at * 1000), ts(x.at), V(x.comment_id)}, pk(x.comment_id));
        } else if constexpr (std::is_same_v<T, StatsDelta>) {
          add(st_->stats_meta_put, {big(x.at * 1000), ts(x.at), V(x.video_id)}, pk(x.video_id));
        }
        // AppendReactionOp, AppendOutbox: the log writer's. The counters of MetricsDelta and
        // StatsDelta: counter_calls'.
      },
      m);
}

void CqlStore::counter_calls(const Mutation& m, std::vector<Call>& out) const {
  // Their last_updated is a derived row (derived_calls). A guarded counter's update
  // (guarded_counter) also moves writes_done, in the same row.
  const bool done = guarded_counter(m).has_value();
  if (auto* x = std::get_if<MetricsDelta>(&m)) {
    if (x->likes || x->dislikes || x->replies)
      out.push_back(Call{(done ? st_->metrics_add_done : st_->metrics_add).get(),
                         {big(x->likes), big(x->dislikes), big(x->replies), V(x->comment_id)}, write_opts(false)});
  }
  if (auto* x = std::get_if<StatsDelta>(&m)) {
    if (x->comments || x->reactions)
      out.push_back(Call{(done ? st_->stats_add_done : st_->stats_add).get(),
                         {big(x->comments), big(x->reactions), V(x->video_id)}, write_opts(false)});
  }
}

}  // namespace commentd::store::cql

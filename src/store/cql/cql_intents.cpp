// CqlStore's commit intents' sweep (docs/cluster.md "Commit intents"); the intents are
// written by run_commit (cql_commit.cpp) and their bodies encoded by commit_intent.h.
#include <spdlog/spdlog.h>

#include <future>

#include "store/cql/commit_intent.h"
#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

using bridge::Rows;
using bridge::Value;

namespace {

constexpr int64_t kMinuteMs = 60'000;
// A shard catches up at most this many minutes per pass, so one pass stays short.
constexpr int64_t kMinutesPerPass = 240;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::vector<int64_t>> CqlStore::sweep_positions() {
  std::vector<int64_t> out(kIntentShards, -1);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<Call> reads;
    for (int s = 0; s < kIntentShards; ++s)
      reads.push_back(Call{st_->sweep_get.get(), {Value::int32(s)}, write_opts(true)});
    auto rows = exec_all_blocking(std::move(reads));
    if (!rows) return rows.take_error();
    std::vector<Call> inits;
    for (int s = 0; s < kIntentShards; ++s) {
      const Rows& r = (*rows)[s];
      if (r.size() > 0) {
        auto m = r.i64(0, 0);
        if (!m) return m.take_error();
        if (m->has_value()) {
          out[s] = **m;
          continue;
        }
      }
      // A shard nobody has swept yet: no intent can be older than the first node that writes
      // them, which creates the row at open, before it serves a write. IF NOT EXISTS: the
      // first node's row stays.
      inits.push_back(Call{st_->sweep_init.get(), {Value::int32(s), big(wall_ms() / kMinuteMs - 1)}, write_opts(false)});
    }
    if (inits.empty()) return out;
    auto made = exec_all_blocking(std::move(inits));
    if (!made) return made.take_error();
  }
  return Error(Errc::unavailable, "cql: the intent sweep positions could not be created");
}

Status CqlStore::sweep_intents(std::chrono::milliseconds settle) {
  if (closing_.load()) return Error(Errc::unavailable, "storage is closing", "shutting_down");
  intent_stats_.sweeps.fetch_add(1);
  auto failed = [this](Error e) -> Status {
    intent_stats_.failed_sweeps.fetch_add(1);
    return e;
  };
  auto positions = sweep_positions();
  if (!positions) return failed(positions.take_error());
  const int64_t settled_ms = wall_ms() - settle.count();
  for (int shard = 0; shard < kIntentShards; ++shard) {
    const int64_t from = (*positions)[shard];
    for (int64_t minute = from; minute * kMinuteMs <= settled_ms && minute < from + kMinutesPerPass; ++minute) {
      bool whole = (minute + 1) * kMinuteMs <= settled_ms;  // every intent of the minute has settled
      std::string paging;
      do {
        bridge::ExecOptions o = write_opts(true);
        o.page_size = 1000;
        o.paging_state = paging;
        auto page = exec_blocking(*st_->intent_scan, {Value::int32(shard), big(minute)}, std::move(o));
        if (!page) return failed(page.take_error());
        for (size_t i = 0; i < page->size(); ++i) {
          IntentRow row;
          row.key = IntentKey{shard, minute, {}};
          auto id = page->uuid(i, 0);
          auto comment = page->uuid(i, 1);
          auto version = page->i64(i, 2);
          auto at = page->i64(i, 3);
          auto body = page->bytes(i, 4);
          auto claim = page->i64(i, 5);
          if (!id || !comment || !version || !at || !body || !claim || !*id || !*comment || !*version || !*at ||
              !*body) {
            // A row the TTL or a delete is taking apart: gone by the next pass.
            whole = false;
            continue;
          }
          row.key.id = from_cql(**id);
          row.comment_id = from_cql(**comment);
          row.version = static_cast<uint64_t>(**version);
          row.written_at_us = **at;
          row.body = std::string(**body);
          row.claim = *claim;
          if (row.written_at_us / 1000 > settled_ms) {
            whole = false;
            continue;
          }
          auto r = resolve_intent(row);
          if (!r) return failed(r.take_error());
          if (*r == IntentOutcome::held) whole = false;
        }
        paging = page->paging_state().value_or("");
      } while (!paging.empty());
      if (!whole) break;
      auto moved = exec_blocking(*st_->sweep_move, {big(minute + 1), Value::int32(shard), big(minute)}, write_opts(false));
      if (!moved) return failed(moved.take_error());
      if (!moved->applied().value_or(false)) break;  // another node swept it: next pass reads where
    }
  }
  return ok_status();
}

Result<CqlStore::IntentOutcome> CqlStore::resolve_intent(const IntentRow& row) {
  const Value shard = Value::int32(row.key.shard), minute = big(row.key.minute), id = V(row.key.id);
  // The claim: one node resolves an intent at a time. It expires (after longer than a
  // resolution takes), so a node that dies holding one delays the intent, never strands it.
  const int64_t now = wall_ms();
  if (row.claim && *row.claim > now) return IntentOutcome::held;
  const int64_t until = now + 2 * opts_.cql.request_timeout.count() + 10'000;
  auto claimed = row.claim ? exec_blocking(*st_->intent_claim, {big(until), shard, minute, id, V(row.comment_id), big(*row.claim)},
                                           write_opts(false))
                           : exec_blocking(*st_->intent_claim_new, {big(until), shard, minute, id, V(row.comment_id)},
                                           write_opts(false));
  if (!claimed) return claimed.take_error();
  if (!claimed->applied().value_or(false)) return IntentOutcome::held;

  // The comment row through Paxos: an entity write still in flight is finished or dropped by
  // this round, so what it answers is final for the intent's version.
  std::vector<Value> probe{V(row.comment_id)};
  for (int k = 0; k < kIntentSlots; ++k) probe.push_back(V(Uuid{}));
  auto r = exec_blocking(*st_->intent_probe, std::move(probe), serial_read_opts());
  if (!r) return r.take_error();
  if (r->applied().value_or(true)) return Error(Errc::internal, "cql: the intent probe applied");
  std::optional<int64_t> version;
  std::optional<Uuid> in_slot;
  // No row: the answer holds [applied] alone.
  if (auto vc = column_of(*r, "version"); r->size() > 0 && vc) {
    auto sc = column_of(*r, "intent_" + std::to_string(intent_slot(row.version)));
    if (!sc) return Error(Errc::internal, "cql: the intent probe answered without the intent's slot");
    auto v = r->i64(0, *vc);
    auto s = r->uuid(0, *sc);
    if (!v || !s) return Error(Errc::internal, "cql: the intent probe answered a bad row");
    version = *v;
    if (*s) in_slot = from_cql(**s);
  }
  const auto have = static_cast<uint64_t>(version.value_or(0));
  if (have < row.version) {
    intent_stats_.never_applied.fetch_add(1);
  } else if (have >= row.version + kIntentSlots) {
    // Too many writes since: its slot was reused, and whether it won cannot be told.
    intent_stats_.unresolved.fetch_add(1);
    spdlog::warn("commit intent {} of comment {} (version {}): the comment is at version {}; dropped unresolved",
                 row.key.id.str(), row.comment_id.str(), row.version, have);
  } else if (in_slot != row.key.id) {
    intent_stats_.lost.fetch_add(1);
  } else if (auto body = decode_intent(row.body); !body) {
    // Not a body of ours (only corruption could make one): it could never be rolled forward,
    // and retrying it every pass would hold the shard's sweep for good.
    intent_stats_.unresolved.fetch_add(1);
    spdlog::error("commit intent {} of comment {} (version {}): {}; dropped unresolved", row.key.id.str(),
                  row.comment_id.str(), row.version, body.error().message);
  } else {
    if (auto s = roll_forward(row, std::move(*body)); !s) return s.take_error();
    page_rows_->forget(row.comment_id);  // its comments row may have been written just now
    intent_stats_.rolled_forward.fetch_add(1);
  }
  auto gone = exec_blocking(*st_->intent_delete, {shard, minute, id}, write_opts(true));
  if (!gone) return gone.take_error();
  return IntentOutcome::resolved;
}

Status CqlStore::roll_forward(const IntentRow& row, std::vector<Mutation> muts) {
  // First the counter repair's marks for the write's guarded counters (writes_started + 1 and
  // the candidate; never writes_done): the counts are then recounted once they have stood
  // still for repair_settle, which is after the rows below land. The deltas themselves are
  // never applied again: whether the write's own counter update landed is unknown.
  WriteSet marked;
  marked.mutations = muts;
  if (auto marks = mark_calls(marked, /*start=*/true); !marks.empty()) {
    auto m = exec_all_blocking(std::move(marks));
    if (!m) return m.take_error();
  }
  note_buckets(muts);
  std::vector<Call> calls;
  LogAppend events;
  for (auto& m : muts) {
    if (auto* o = std::get_if<AppendOutbox>(&m)) {
      events.outbox.push_back(std::move(*o));
      continue;
    }
    const size_t first = calls.size();
    derived_calls(m, calls);
    // At the intent's time, not now: a later write of the same rows (a delete's index delete,
    // a hidden mark taken back) has a later timestamp and stays. The read-your-writes mark
    // carries its own (USING TIMESTAMP).
    if (!std::holds_alternative<RecentWrite>(m))
      for (size_t i = first; i < calls.size(); ++i) calls[i].opts.timestamp_us = row.written_at_us;
  }
  auto written = exec_all_blocking(std::move(calls));
  if (!written) return written.take_error();
  if (events.outbox.empty()) return ok_status();
  // The events again, through this node's log writer. If the write had appended them before
  // it died, they are now there twice, with the same event ids (consumers are idempotent by
  // event id).
  std::promise<Result<CommitResult>> p;
  auto f = p.get_future();
  events.done = [&p](Result<CommitResult> r) { p.set_value(std::move(r)); };
  enqueue_log(std::move(events));
  auto logged = f.get();
  if (!logged) return logged.take_error();
  return ok_status();
}

}  // namespace commentd::store::cql

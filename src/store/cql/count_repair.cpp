// The counter repair on CQL (count_repair.h).
#include "store/cql/count_repair.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "store/cql/backfill_internal.h"
#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

using bridge::Rows;
using bridge::Value;

namespace {
int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

CountRepairer::CountRepairer(std::unique_ptr<tool::Tool> tool, std::chrono::milliseconds settle)
    : tool_(std::move(tool)), settle_(settle) {}

CountRepairer::~CountRepairer() = default;

Result<std::unique_ptr<CountRepairer>> CountRepairer::open(const bridge::Runtime& rt, const config::CqlConfig& cfg,
                                                           std::optional<std::chrono::milliseconds> settle,
                                                           bridge::CqlMetrics* metrics) {
  auto t = tool::Tool::open(rt, cfg, metrics);
  if (!t) return t.take_error();
  return std::unique_ptr<CountRepairer>(new CountRepairer(std::move(*t), settle.value_or(repair_settle(cfg))));
}

Result<CountRepairer::Marks> CountRepairer::marks(std::string_view kind, const Uuid& key) {
  const auto& st = tool_->st();
  auto r = tool_->run(kind == kRepairVideo ? *st.stats_marks : *st.metrics_marks, args(V(key)));
  if (!r) return r.take_error();
  Marks m;
  if (r->size() == 0) return m;
  auto c = r->i64(0, 0), s = r->i64(0, 1), d = r->i64(0, 2);
  if (!c || !s || !d) return Error(Errc::internal, "cql: corrupt counter row of " + key.str());
  m.count = c->value_or(0);
  m.started = s->value_or(0);
  m.done = d->value_or(0);
  return m;
}

Status CountRepairer::round(Clock::time_point now) {
  stats_.rounds.fetch_add(1);
  const auto& st = tool_->st();
  uint64_t pending = 0;
  Status failed = ok_status();
  std::map<std::pair<std::string, Uuid>, Seen> still;  // seen_ of the keys listed this pass
  for (int shard = 0; shard < kRepairShards; ++shard) {
    std::vector<std::pair<std::string, Uuid>> keys;
    auto listed = tool_->for_each_row(*st.repairs_list, args(Value::int32(shard)), [&](const Rows& r, size_t i) -> Status {
      auto kind = r.bytes(i, 0);
      auto key = r.uuid(i, 1);
      if (!kind || !*kind || !key || !*key) return Error(Errc::internal, "cql: corrupt count_repairs row");
      keys.emplace_back(**kind, from_cql(**key));
      return ok_status();
    });
    if (!listed) {
      failed = listed;
      continue;
    }
    for (auto& k : keys) {
      const int64_t read_us = wall_us();
      auto m = marks(k.first, k.second);
      if (!m) {
        failed = m.take_error();
        continue;
      }
      if (m->started == m->done) {
        // Settled. The delete is dated a settle before the read, so a candidate that a new
        // write marked since then survives it (a write's mark and its candidate are sent
        // together; one older than that has landed, and its write is done).
        const int64_t at = read_us - std::chrono::duration_cast<std::chrono::microseconds>(settle_).count() - 1;
        auto d = tool_->run(*st.repairs_delete, args(big(at), Value::int32(shard), txt(k.first), V(k.second)));
        if (!d) failed = d.take_error();
        continue;
      }
      ++pending;
      auto [it, fresh] = seen_.try_emplace(k, Seen{*m, now});
      if (!fresh && (it->second.marks.started != m->started || it->second.marks.done != m->done)) {
        it->second = Seen{*m, now};  // moved: a write is live
        still.insert(*it);
        continue;
      }
      if (now - it->second.since < settle_) {
        still.insert(*it);
        continue;
      }
      auto r = repair(k.first, k.second, *m);
      if (!r) failed = r.take_error();
      if (!r || !*r) still.insert(*it);
    }
  }
  // Keys no longer listed (settled, or their candidate deleted by another node) are forgotten.
  seen_ = std::move(still);
  stats_.pending.store(pending);
  if (!failed) stats_.failed_rounds.fetch_add(1);
  return failed;
}

Result<bool> CountRepairer::repair(std::string_view kind, const Uuid& key, const Marks& seen) {
  const auto& st = tool_->st();
  // The claim: an expiry time; taken when the one read has expired, by one conditional write.
  const auto lease = lease_for_test_.value_or(std::max(settle_, std::chrono::milliseconds(10'000)));
  // The claim's age is measured from the moment its expiry was computed, not from after the
  // write that took it: a slow claim write must not stretch the half-life the renewal keeps.
  auto claimed = std::chrono::steady_clock::now();
  const int64_t now_ms = wall_us() / 1000;
  const int64_t until_ms = now_ms + lease.count();
  auto c = tool_->run(*st.claim_get, args(txt(std::string(kind)), V(key)));
  if (!c) return c.take_error();
  const Value until = big(until_ms);
  Result<Rows> took = Error(Errc::internal, "unset");
  if (c->size() == 0) {
    took = tool_->run(*st.claim_new, args(txt(std::string(kind)), V(key), until), /*idempotent=*/false);
  } else {
    auto held = c->i64(0, 0);
    if (!held) return held.take_error();
    if (held->value_or(0) > now_ms) return false;  // another node's, still running
    took = tool_->run(*st.claim_move, args(until, txt(std::string(kind)), V(key), big(held->value_or(0))),
                      /*idempotent=*/false);
  }
  if (!took) return took.take_error();
  if (!took->applied().value_or(false)) return false;
  // The claim is kept through the recount, however long (a viral video's recount reads each
  // of its comments): past half of it, it is renewed by a write conditional on still being the
  // value this repair wrote. If another node took it after it expired, that node may be
  // repairing too: this one stops. (Before, a recount that outlasted half the claim gave up
  // and retried next pass, so a large video's drift was never repaired; two nodes could even
  // take the claim from each other for ever.)
  int64_t held_until = until_ms;
  bool lost = false;
  auto keep_claim = [&]() -> Status {
    if (step_for_test_) step_for_test_();
    if (cancelled_ && cancelled_()) return Error(Errc::unavailable, "counter repair: stopping");
    const auto renewing = std::chrono::steady_clock::now();
    if (renewing - claimed <= lease / 2) return ok_status();
    const int64_t renewed = wall_us() / 1000 + lease.count();
    auto again = tool_->run(*st.claim_move, args(big(renewed), txt(std::string(kind)), V(key), big(held_until)),
                            /*idempotent=*/false);
    if (!again) return again.take_error();
    if (!again->applied().value_or(false)) {
      lost = true;
      return Error(Errc::conflict, "counter repair: the claim was taken by another node");
    }
    held_until = renewed;
    claimed = renewing;
    stats_.claim_renewals.fetch_add(1);
    return ok_status();
  };

  auto truth = kind == kRepairVideo ? tool_->count_video_comments(key, keep_claim) : tool_->count_replies(key, keep_claim);
  if (lost) return false;
  if (!truth) return truth.take_error();
  auto now = marks(kind, key);
  if (!now) return now.take_error();
  if (now->started != seen.started || now->done != seen.done) return false;  // a write started
  // The update starts with at least half a claim ahead.
  if (auto k = keep_claim(); !k) {
    if (lost) return false;
    return k.take_error();
  }
  const int64_t delta = *truth - now->count, done = now->started - now->done;
  auto w = tool_->run(kind == kRepairVideo ? *st.stats_repair : *st.metrics_repair, args(big(delta), big(done), V(key)),
                      /*idempotent=*/false);
  if (!w) return w.take_error();
  stats_.repaired.fetch_add(1);
  stats_.drift.fetch_add(static_cast<uint64_t>(std::llabs(delta)));
  if (delta != 0)
    spdlog::info("counter repair: {} {} count {} -> {} ({} unfinished write(s))", kind, key.str(), now->count,
                 *truth, done);
  return true;
}

}  // namespace commentd::store::cql

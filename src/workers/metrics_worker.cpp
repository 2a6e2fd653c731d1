#include "workers/metrics_worker.h"

#include <future>
#include <spdlog/spdlog.h>

namespace commentd::workers {

namespace {
size_t idx(Tier t) { return static_cast<size_t>(t); }
constexpr size_t kPage = 1000;
}  // namespace

MetricsWorker::MetricsWorker(store::Store& store, ActivityTracker& activity, const Clock& clock,
                             ReconcileIntervals iv, std::chrono::milliseconds resolution)
    : store_(store), activity_(activity), clock_(clock), scheduler_("metrics-reconciliation", clock, resolution) {
  (void)scheduler_.add_task("realtime", iv.realtime, [this] { return reconcile_tier(Tier::realtime); });
  (void)scheduler_.add_task("high", iv.high, [this] { return reconcile_tier(Tier::high); });
  (void)scheduler_.add_task("normal", iv.normal, [this] { return reconcile_tier(Tier::normal); });
  (void)scheduler_.add_task("low", iv.low, [this] {
    activity_.sweep();
    return reconcile_tier(Tier::low);
  });
}

MetricsWorker::~MetricsWorker() { stop(); }

Status MetricsWorker::start() { return scheduler_.start(); }
void MetricsWorker::stop() { scheduler_.stop(); }

Status MetricsWorker::commit_repair(store::WriteSet ws) {
  std::promise<Result<store::CommitResult>> p;
  auto f = p.get_future();
  store_.commit(std::move(ws), [&p](Result<store::CommitResult> r) { p.set_value(std::move(r)); });
  auto r = f.get();
  if (!r) return r.take_error();
  return ok_status();
}

Status MetricsWorker::reconcile_comment(const Uuid& id, Tier tier) {
  auto rc = store_.recount_comment(id);
  if (!rc) return rc.take_error();
  stats_.checked[idx(tier)].fetch_add(1);
  if (!*rc) return ok_status();  // no such comment (a stale tracker key)
  const auto& r = **rc;
  store::MetricsDelta d{id, r.truth.likes - r.stored.likes, r.truth.dislikes - r.stored.dislikes,
                        r.truth.replies_count - r.stored.replies_count, 0};
  if (!d.likes && !d.dislikes && !d.replies) return ok_status();
  spdlog::warn("reconcile[{}]: comment {} drifted (likes {}, dislikes {}, replies {}); repaired",
               to_string(tier), id.str(), -d.likes, -d.dislikes, -d.replies);
  store::WriteSet ws;
  ws.mutations.push_back(d);
  auto s = commit_repair(std::move(ws));
  if (s) stats_.comment_repairs[idx(tier)].fetch_add(1);
  return s;
}

Status MetricsWorker::reconcile_video(const Uuid& id, Tier tier) {
  auto rv = store_.recount_video(id);
  if (!rv) return rv.take_error();
  stats_.checked[idx(tier)].fetch_add(1);
  store::StatsDelta d{id, rv->truth.comments_count - rv->stored.comments_count,
                      rv->truth.reactions_count - rv->stored.reactions_count, 0};
  if (!d.comments && !d.reactions) return ok_status();
  spdlog::warn("reconcile[{}]: video {} drifted (comments {}, reactions {}); repaired", to_string(tier),
               id.str(), -d.comments, -d.reactions);
  store::WriteSet ws;
  ws.mutations.push_back(d);
  auto s = commit_repair(std::move(ws));
  if (s) stats_.video_repairs[idx(tier)].fetch_add(1);
  return s;
}

Status MetricsWorker::reconcile_tier(Tier tier) {
  stats_.runs[idx(tier)].fetch_add(1);
  Status last = ok_status();
  auto note = [&](Status s) {
    if (!s) {
      stats_.errors.fetch_add(1);
      last = std::move(s);
    }
  };
  if (tier != Tier::low) {
    for (auto& id : activity_.comments_in(tier)) note(reconcile_comment(id, tier));
    for (auto& id : activity_.videos_in(tier)) note(reconcile_video(id, tier));
    return last;
  }
  // The full sweep, a page of ids at a time.
  for (auto table : {store::Store::IdTable::comments, store::Store::IdTable::videos}) {
    std::optional<Uuid> after;
    for (;;) {
      auto ids = store_.list_ids(table, after, kPage);
      if (!ids) return ids.take_error();
      for (auto& id : *ids)
        note(table == store::Store::IdTable::comments ? reconcile_comment(id, tier) : reconcile_video(id, tier));
      if (ids->size() < kPage) break;
      after = ids->back();
    }
  }
  return last;
}

}  // namespace commentd::workers

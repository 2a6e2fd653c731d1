#include "workers/reaction_applier.h"

#include <pthread.h>

#include <future>
#include <map>
#include <spdlog/spdlog.h>

#include "core/reaction_set.h"

namespace commentd::workers {

ReactionApplier::ReactionApplier(store::Store& store, service::ReactionOverlay& overlay,
                                 const Clock& clock, ApplierOptions opts)
    : store_(store), overlay_(overlay), clock_(clock), opts_(opts) {}

ReactionApplier::~ReactionApplier() { stop(); }

Status ReactionApplier::start() {
  auto pos = store_.consumer_pos(kConsumerName);
  if (!pos) return pos.take_error();
  applied_ = *pos;
  // Ops that were durable but not applied before a restart are visible to their users again
  // through the overlay until they are applied.
  for (uint64_t at = *pos;;) {
    auto ops = store_.read_ops(at, 4096);
    if (!ops) return ops.take_error();
    if (ops->empty()) break;
    for (auto& op : *ops) overlay_.put(op);
    at = ops->back().seq;
  }
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

void ReactionApplier::notify() {
  // Called for every op appended: wake the applier only when a full batch waits, without the
  // lock. A wake-up lost to the race costs at most one flush_interval, never an op.
  uint64_t last = store_.last_op_seq();
  if (last - std::min(last, applied_.load()) >= opts_.batch_size) cv_.notify_one();
}

void ReactionApplier::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void ReactionApplier::run() {
  pthread_setname_np(pthread_self(), "commentd-apply");
  for (;;) {
    bool stopping;
    {
      // The plan's ReactionBatch: flush when a full batch is waiting, or when the flush
      // interval has passed. Bigger batches mean fewer counter writes per hot comment (the
      // deltas net out) and less fixed cost per op; the reacting user never waits for it
      // (the overlay answers their reads).
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, opts_.flush_interval, [&] {
        return stopping_ || store_.last_op_seq() - std::min(store_.last_op_seq(), applied_.load()) >= opts_.batch_size;
      });
      stopping = stopping_;
    }
    for (;;) {
      auto n = apply_once();
      if (!n) {
        stats_.errors.fetch_add(1);
        spdlog::error("reaction applier: {}", n.error().message);
        // Stopping while storage refuses writes (e.g. a full disk): the ops stay in the
        // durable log and are applied at the next start, as after a crash.
        if (stopping) {
          spdlog::warn("reaction applier: stopping with ops not applied; they are applied at the next start");
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        break;
      }
      if (*n < opts_.batch_size) break;
    }
    if (stopping && store_.last_op_seq() <= applied_.load()) return;
  }
}

Result<size_t> ReactionApplier::apply_once() {
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t from = applied_.load();
  auto ops = store_.read_ops(from, opts_.batch_size);
  if (!ops) return ops.take_error();
  if (ops->empty()) return size_t{0};

  // Current registers of every key the batch touches, in one read.
  std::vector<std::pair<Uuid, Uuid>> keys;
  std::map<RegisterKey, size_t> index;
  for (auto& op : *ops) {
    RegisterKey k{op.comment_id, op.user_id};
    if (index.emplace(k, keys.size()).second) keys.emplace_back(op.comment_id, op.user_id);
  }
  auto rows = store_.get_registers(keys);
  if (!rows) return rows.take_error();

  ReactionSet set;
  for (size_t i = 0; i < keys.size(); ++i)
    if ((*rows)[i].timestamp != 0) set.seed({keys[i].first, keys[i].second}, (*rows)[i]);

  struct Net { int64_t likes = 0, dislikes = 0; Uuid video; };
  std::map<Uuid, Net> per_comment;
  std::map<Uuid, int64_t> per_video;
  std::map<RegisterKey, std::pair<ReactionRow, Uuid>> changed;  // row, video
  store::WriteSet ws;
  const TimeMs now = clock_.now_ms();
  uint64_t ignored = 0;
  for (auto& op : *ops) {
    RegisterKey k{op.comment_id, op.user_id};
    const ReactionRow* prev = set.find(k);
    ReactionType before = prev ? prev->type : ReactionType::none;
    if (!set.add(op)) {
      // Lost the LWW race. Its request may have written the user's reactions-by-video entry
      // (UserReactionPut, ServiceOptions::reaction_row_at_request): put the register's
      // winner back there.
      ++ignored;
      changed.try_emplace(k, *set.find(k), op.video_id);
      continue;
    }
    changed[k] = {*set.find(k), op.video_id};
    auto d = transition(before, op.type);
    if (d.likes || d.dislikes) {
      auto& n = per_comment[op.comment_id];
      n.likes += d.likes;
      n.dislikes += d.dislikes;
      n.video = op.video_id;
      per_video[op.video_id] += d.likes + d.dislikes;
      ws.mutations.push_back(store::PutReactionEvent{op.comment_id, op.timestamp, op.op_id, op.user_id,
                                                     op.type == ReactionType::none ? before : op.type,
                                                     op.type != ReactionType::none});
    } else {
      ++ignored;  // e.g. "like" repeated: the register's order moves, the counts do not
    }
  }
  for (auto& [k, rv] : changed)
    ws.mutations.push_back(store::PutReaction{k.comment_id, k.user_id, rv.second, rv.first});
  uint64_t counter_writes = 0;
  for (auto& [cid, n] : per_comment) {
    if (!n.likes && !n.dislikes) continue;  // the batch's ops cancelled out
    ws.mutations.push_back(store::MetricsDelta{cid, n.likes, n.dislikes, 0, now});
    ++counter_writes;
  }
  for (auto& [vid, n] : per_video)
    if (n) ws.mutations.push_back(store::StatsDelta{vid, 0, n, now});
  const uint64_t to = ops->back().seq;
  ws.preconditions.push_back(store::ConsumerAt{kConsumerName, from});
  ws.mutations.push_back(store::SetConsumerPos{kConsumerName, to});

  // The applier alone writes its position and the reaction rows, so it commits beside the
  // request writer instead of queueing behind it.
  auto r = store_.commit_owned(std::move(ws));
  if (!r) return r.take_error();

  applied_.store(to);
  for (auto& op : *ops) {
    overlay_.applied(op.comment_id, op.user_id, op.seq);
    if (on_applied_) on_applied_(op);
  }
  if (on_batch_applied_) {
    std::vector<Uuid> changed_comments;
    for (auto& [cid, n] : per_comment)
      if (n.likes || n.dislikes) changed_comments.push_back(cid);
    if (!changed_comments.empty()) on_batch_applied_(changed_comments);
  }
  stats_.ops_applied.fetch_add(ops->size() - ignored);
  stats_.ops_ignored.fetch_add(ignored);
  stats_.batches.fetch_add(1);
  stats_.counter_writes.fetch_add(counter_writes);
  stats_.batch_size.observe(static_cast<double>(ops->size()));
  stats_.flush_seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return ops->size();
}

}  // namespace commentd::workers

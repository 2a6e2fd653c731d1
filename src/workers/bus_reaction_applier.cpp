#include "workers/bus_reaction_applier.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <map>

#include "core/reaction_set.h"

namespace commentd::workers {

std::optional<ReactionOp> parse_reaction_event(std::string_view payload) {
  rapidjson::Document d;
  d.Parse(payload.data(), payload.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto s = [&](const char* k) -> std::string_view {
    auto it = d.FindMember(k);
    return it != d.MemberEnd() && it->value.IsString() ? std::string_view(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string_view();
  };
  auto et = s("event_type");
  if (et != "added" && et != "removed") return std::nullopt;
  auto op_id = Uuid::parse(s("reaction_id"));
  auto comment = Uuid::parse(s("comment_id"));
  auto video = Uuid::parse(s("video_id"));
  auto user = Uuid::parse(s("user_id"));
  auto type = parse_reaction(s("type"));
  auto node = d.FindMember("node_id");
  if (!op_id || !comment || !video || !user || !type || node == d.MemberEnd() || !node->value.IsUint())
    return std::nullopt;
  if ((*type == ReactionType::none) != (et == "removed")) return std::nullopt;
  ReactionOp op;
  op.op_id = *op_id;
  op.comment_id = *comment;
  op.video_id = *video;
  op.user_id = *user;
  op.type = *type;
  op.timestamp = op.op_id.v7_time_ms();
  op.node_id = node->value.GetUint();
  return op;
}

BusReactionApplier::BusReactionApplier(store::Store& store, events::EventBus& bus, Recount recount,
                                       const Clock& clock, BusApplierOptions opts, OwnerLeases* leases)
    : store_(store),
      bus_(bus),
      recount_(std::move(recount)),
      clock_(clock),
      opts_(std::move(opts)),
      leases_(leases),
      seen_(opts_.dedup_window) {}

BusReactionApplier::~BusReactionApplier() { stop(); }

Status BusReactionApplier::start() {
  BatchConsumerOptions bo;
  bo.topic = opts_.topic;
  bo.subscription = opts_.subscription;
  bo.sub.type = events::SubscriptionType::key_shared;
  bo.sub.initial = events::InitialPosition::earliest;  // ops accepted before the first owner joined
  bo.sub.max_unacked = std::max<size_t>(1000, 4 * opts_.batch_size);
  bo.sub.nack_delay = opts_.nack_delay;
  bo.batch_size = opts_.batch_size;
  bo.batch_timeout = opts_.batch_timeout;
  bo.resubscribe_backoff = opts_.resubscribe_backoff;
  // A consumer the bus ended has lost its keys (its unacked messages go to whoever the broker
  // picks next), and this node has nothing in flight once its last batch returned: its leases
  // are ended at once, so the comments' next owners need not wait out their TTLs.
  if (leases_) bo.on_consumer_end = [this] { leases_->release_all(); };
  consumer_ = std::make_unique<BatchConsumer>(
      bus_, kName, bo,
      [this](const std::vector<events::Message>& batch, std::vector<size_t>& give_back) -> boost::asio::awaitable<Status> {
        co_return apply(batch, give_back);  // blocking store calls: this consumer's own thread
      });
  return consumer_->start();
}

void BusReactionApplier::stop() {
  if (consumer_) consumer_->stop();  // its consumer's end releases the leases
  // Also when it never subscribed (tests drive apply() directly).
  if (leases_) leases_->release_all();
}

void BusReactionApplier::release_idle_leases() {
  // Never inside a batch. A batch in hand (seconds, when Cassandra is slow) skips this round
  // rather than hold the maintenance thread, which the other tasks share; the next one comes
  // a second later.
  std::unique_lock lk(mu_, std::try_to_lock);
  if (lk.owns_lock() && leases_) leases_->release_idle();
}

Status BusReactionApplier::apply(const std::vector<events::Message>& batch, std::vector<size_t>& give_back) {
  std::lock_guard lk(mu_);
  auto t0 = std::chrono::steady_clock::now();
  // 1. Decode; drop copies of ops this node applied, and repeats within the batch.
  std::vector<ReactionOp> ops;
  std::vector<size_t> op_message;  // ops[i] came in batch[op_message[i]]
  std::set<Uuid> recount;  // comments to recount instead of counting by deltas
  std::set<Uuid> in_batch;
  for (size_t mi = 0; mi < batch.size(); ++mi) {
    const events::Message& m = batch[mi];
    auto op = parse_reaction_event(m.payload);
    if (!op) {
      stats_.malformed.fetch_add(1);
      spdlog::warn("reaction applier: message {} on {} is not a reaction event; dropped", m.message_id, m.topic);
      continue;
    }
    if (m.redelivery_count > 0) {
      stats_.redelivered.fetch_add(1);
      recount.insert(op->comment_id);  // rule (c)
    }
    const std::string id = op->op_id.str();
    if (seen_.contains(id) || !in_batch.insert(op->op_id).second) {
      stats_.duplicates.fetch_add(1);
      continue;
    }
    ops.push_back(*op);
    op_message.push_back(mi);
  }
  if (ops.empty()) return ok_status();

  // Fencing: only comments whose leases this node holds; the others' messages go back.
  std::set<Uuid> comments;
  for (auto& op : ops) comments.insert(op.comment_id);
  if (leases_) {
    auto others = leases_->hold(comments);
    if (!others) {
      stats_.errors.fetch_add(1);
      return others.take_error();
    }
    if (!others->empty()) {
      std::vector<ReactionOp> kept;
      for (size_t i = 0; i < ops.size(); ++i) {
        if (others->count(ops[i].comment_id)) {
          give_back.push_back(op_message[i]);
          continue;
        }
        kept.push_back(std::move(ops[i]));
      }
      stats_.deferred.fetch_add(ops.size() - kept.size());
      ops = std::move(kept);
      for (const Uuid& c : *others) {
        comments.erase(c);
        recount.erase(c);  // not applied here: its dirty mark (if any) must stay
      }
      if (ops.empty()) return ok_status();
    }
  }
  // Before each write step: every lease it relies on lasts until the write has landed.
  auto fenced = [&]() -> std::optional<Error> {
    if (!leases_ || leases_->writable(comments)) return std::nullopt;
    stats_.fenced.fetch_add(1);
    return Error(Errc::unavailable, "reaction applier: an owner lease has too little time left to write");
  };

  auto fail = [&](Error e) -> Status {
    for (auto& op : ops) dirty_.insert(op.comment_id);  // rule (b)
    stats_.errors.fetch_add(1);
    return e;
  };

  // 2. The registers the batch touches, in one read; merge by LWW.
  std::vector<std::pair<Uuid, Uuid>> keys;
  std::map<RegisterKey, size_t> index;
  for (auto& op : ops)
    if (index.emplace(RegisterKey{op.comment_id, op.user_id}, keys.size()).second)
      keys.emplace_back(op.comment_id, op.user_id);
  auto rows = store_.get_registers(keys);
  if (!rows) return fail(rows.take_error());

  ReactionSet set;
  for (size_t i = 0; i < keys.size(); ++i)
    if ((*rows)[i].timestamp != 0) set.seed({keys[i].first, keys[i].second}, (*rows)[i]);
  for (auto& op : ops) {
    const ReactionRow* r = set.find({op.comment_id, op.user_id});
    if (r && r->op_id == op.op_id) recount.insert(op.comment_id);  // rule (a): step 3 ran before
    if (dirty_.count(op.comment_id)) recount.insert(op.comment_id);
    // Rule (d): the op beats the stored register by op id alone (same millisecond, same
    // node). Both writes carry the same USING TIMESTAMP, so CQL keeps the larger value per
    // cell, which may not be our winner: count what is stored instead of the transition.
    if (r && r->op_id != op.op_id && r->timestamp == op.timestamp && r->node_id == op.node_id)
      recount.insert(op.comment_id);
  }

  struct Net {
    int64_t likes = 0, dislikes = 0;
    Uuid video;
  };
  std::map<Uuid, Net> per_comment;
  std::map<Uuid, Uuid> video_of;  // comment -> video
  std::map<RegisterKey, std::pair<ReactionRow, Uuid>> changed;
  store::WriteSet rows_ws;
  uint64_t ignored = 0;
  for (auto& op : ops) {
    video_of[op.comment_id] = op.video_id;
    RegisterKey k{op.comment_id, op.user_id};
    const ReactionRow* prev = set.find(k);
    ReactionType before = prev ? prev->type : ReactionType::none;
    if (!set.add(op)) {
      // Lost the LWW race; its request wrote the user's entry: put the winner back there.
      ++ignored;
      if (const ReactionRow* w = set.find(k)) changed.try_emplace(k, *w, op.video_id);
      continue;
    }
    changed[k] = {*set.find(k), op.video_id};
    auto d = transition(before, op.type);
    if (!d.likes && !d.dislikes) {
      ++ignored;
      continue;
    }
    auto& n = per_comment[op.comment_id];
    n.likes += d.likes;
    n.dislikes += d.dislikes;
    n.video = op.video_id;
    rows_ws.mutations.push_back(store::PutReactionEvent{op.comment_id, op.timestamp, op.op_id, op.user_id,
                                                        op.type == ReactionType::none ? before : op.type,
                                                        op.type != ReactionType::none});
  }
  for (auto& [k, rv] : changed)
    rows_ws.mutations.push_back(store::PutReaction{k.comment_id, k.user_id, rv.second, rv.first});

  // 3. Registers, user_reactions, reaction_events (idempotent), and the counter deltas of the
  // comments counted by their transitions: one commit. The store writes its counters after its
  // rows (Store::commit's order), as two commits did, and each comment's last_updated rides in
  // the batch of its registers instead of costing a statement of its own (CQL).
  const TimeMs now = clock_.now_ms();
  std::map<Uuid, int64_t> per_video;
  uint64_t counter_writes = 0, repairs = 0;
  auto add_video_deltas = [&](store::WriteSet& ws) {
    for (auto& [vid, n] : per_video)
      if (n) ws.mutations.push_back(store::StatsDelta{vid, 0, n, now});
    per_video.clear();
  };
  for (auto& [cid, n] : per_comment) {
    if (recount.count(cid) || (!n.likes && !n.dislikes)) continue;
    rows_ws.mutations.push_back(store::MetricsDelta{cid, n.likes, n.dislikes, 0, now});
    per_video[n.video] += n.likes + n.dislikes;
    ++counter_writes;
  }
  add_video_deltas(rows_ws);
  if (!rows_ws.mutations.empty()) {
    if (auto e = fenced()) return fail(std::move(*e));
    if (auto s = store_.commit_owned(std::move(rows_ws)); !s) return fail(s.take_error());
  }

  // 4. The recounts, once the rows they count are written: the recount's difference.
  store::WriteSet counters;
  for (const Uuid& cid : recount) {
    auto v = video_of.find(cid);
    if (v == video_of.end()) continue;  // only duplicates of it were in the batch
    auto rc = recount_(cid, v->second);
    if (!rc) return fail(rc.take_error());
    stats_.recounts.fetch_add(1);
    if (!*rc) continue;
    const auto& [video, stored, truth] = **rc;
    int64_t dl = truth.likes - stored.likes, dd = truth.dislikes - stored.dislikes;
    if (!dl && !dd) continue;
    ++repairs;
    counters.mutations.push_back(store::MetricsDelta{cid, dl, dd, 0, now});
    per_video[video] += dl + dd;
    ++counter_writes;
  }
  add_video_deltas(counters);
  if (!counters.mutations.empty()) {
    if (auto e = fenced()) return fail(std::move(*e));
    if (auto s = store_.commit_owned(std::move(counters)); !s) return fail(s.take_error());
  }

  for (auto& cid : recount) dirty_.erase(cid);
  const TimeMs applied_at = clock_.now_ms();
  for (auto& op : ops) {
    seen_.insert(op.op_id.str());
    stats_.lag_seconds.observe(double(std::max<TimeMs>(0, applied_at - op.timestamp)) / 1000.0);
    if (on_applied_) on_applied_(op);
  }
  stats_.ops_applied.fetch_add(ops.size() - ignored);
  stats_.ops_ignored.fetch_add(ignored);
  stats_.batches.fetch_add(1);
  stats_.counter_writes.fetch_add(counter_writes);
  stats_.repairs.fetch_add(repairs);
  stats_.batch_size.observe(static_cast<double>(ops.size()));
  stats_.flush_seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return ok_status();
}

}  // namespace commentd::workers

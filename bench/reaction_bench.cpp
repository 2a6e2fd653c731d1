// The plan's BenchmarkReactionProcessing. The goal: >= 500,000 reaction ops/s on one
// core with exact counts. Measured at three depths:
//   (a) the pure CRDT step (ReactionSet::add + transition) over a hot head of comments,
//   (b) ReactionSet::merge of two replicas,
//   (c) the full ReactionApplier::apply_once against a real RocksStore (op log read,
//       register MultiGet, CRDT, one atomic WriteSet per 1000-op batch).
// Every variant checks at the end that its counts are exact against a straightforward
// recount, and fails the benchmark (SkipWithError) otherwise.
#include <benchmark/benchmark.h>

#include "testing/temp_store.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <unistd.h>
#include <vector>

#include "core/reaction_set.h"
#include "service/reaction_overlay.h"
#include "store/rocks/rocks_store.h"
#include "workers/reaction_applier.h"

using namespace commentd;
namespace fs = std::filesystem;

namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

Uuid make_uuid(uint64_t hi, uint64_t lo) {
  Uuid u;
  for (int i = 0; i < 8; ++i) {
    u.bytes[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    u.bytes[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  return u;
}

using commentd::testing::TempDir;

// A deterministic stream of reaction ops on a hot head of `comments` comments of one video
// from `users` users: 45% like, 25% dislike, 30% removal; about one op in eight arrives late
// (up to 200 ms older than the stream's clock, as from a lagging node) so LWW has work to do.
class OpStream {
 public:
  OpStream(uint64_t seed, size_t comments, size_t users) : rng_(seed), users_(users) {
    video_ = make_uuid(0x01900000'00007000, 0x8000000000000001);
    for (size_t i = 0; i < comments; ++i)
      comments_.push_back(make_uuid(0x01900000'00017000 + i, 0x8000000000000000 | i));
  }
  const std::vector<Uuid>& comments() const { return comments_; }
  const Uuid& video() const { return video_; }

  ReactionOp next() {
    ReactionOp op;
    op.op_id = make_uuid(0x01900000'00027000, 0x8000000000000000 | ++n_);
    op.comment_id = comments_[rng_() % comments_.size()];
    op.video_id = video_;
    op.user_id = make_uuid(0x01800000'00007000, 0x9000000000000000 | (rng_() % users_));
    uint64_t r = rng_() % 100;
    op.type = r < 45 ? ReactionType::like : r < 70 ? ReactionType::dislike : ReactionType::none;
    now_ += static_cast<TimeMs>(rng_() % 2);
    op.timestamp = rng_() % 8 == 0 ? now_ - static_cast<TimeMs>(rng_() % 200) : now_;
    op.node_id = 1 + static_cast<uint32_t>(rng_() % 3);
    return op;
  }

 private:
  std::mt19937_64 rng_;
  size_t users_;
  Uuid video_;
  std::vector<Uuid> comments_;
  uint64_t n_ = 0;
  TimeMs now_ = kT0;
};

// The straightforward recount: the winner of each (comment, user) register is the op with
// the largest (timestamp, node_id, op_id), whatever the arrival order; count the winners.
// Deliberately shares no code with ReactionSet.
class Recount {
 public:
  void add(const ReactionOp& op) {
    auto& w = winner_[{op.comment_id, op.user_id}];
    if (!w.set || std::tie(op.timestamp, op.node_id, op.op_id) > std::tie(w.ts, w.node, w.op)) w = {true, op.timestamp, op.node_id, op.op_id, op.type};
  }
  // {likes, dislikes} of one comment.
  std::pair<int64_t, int64_t> counts(const Uuid& comment) const {
    std::pair<int64_t, int64_t> out{0, 0};
    for (auto& [k, w] : winner_) {
      if (k.first != comment) continue;
      if (w.type == ReactionType::like) ++out.first;
      if (w.type == ReactionType::dislike) ++out.second;
    }
    return out;
  }

 private:
  struct Winner {
    bool set = false;
    TimeMs ts = 0;
    uint32_t node = 0;
    Uuid op;
    ReactionType type = ReactionType::none;
  };
  std::map<std::pair<Uuid, Uuid>, Winner> winner_;
};

Result<store::CommitResult> commit_and_wait(store::Store& s, store::WriteSet ws) {
  std::promise<Result<store::CommitResult>> done;
  auto fut = done.get_future();
  s.commit(std::move(ws), [&done](Result<store::CommitResult> r) { done.set_value(std::move(r)); });
  return fut.get();
}

constexpr size_t kHotComments = 16;
constexpr size_t kUsers = 20'000;

}  // namespace

// (a) The CRDT step of the applier, with no storage: for each op, look up the register's
// value before, ReactionSet::add, and fold transition(before, after) into the comment's
// counters. One iteration applies a 100,000-op stream to an empty set (the set's teardown
// is untimed). items/s = ops/s on one core.
void BM_reaction_crdt_apply(benchmark::State& state) {
  constexpr size_t kOps = 100'000;
  OpStream gen(1, kHotComments, kUsers);
  std::vector<ReactionOp> ops;
  std::vector<uint32_t> comment_index;  // ops[i]'s comment as an index into gen.comments()
  Recount recount;
  std::map<Uuid, uint32_t> index_of;
  for (uint32_t i = 0; i < gen.comments().size(); ++i) index_of[gen.comments()[i]] = i;
  for (size_t i = 0; i < kOps; ++i) {
    ops.push_back(gen.next());
    comment_index.push_back(index_of[ops.back().comment_id]);
    recount.add(ops.back());
  }

  ReactionSet set;
  std::vector<int64_t> likes(kHotComments), dislikes(kHotComments);
  for (auto _ : state) {
    state.PauseTiming();
    set = ReactionSet();
    std::fill(likes.begin(), likes.end(), 0);
    std::fill(dislikes.begin(), dislikes.end(), 0);
    state.ResumeTiming();
    for (size_t i = 0; i < ops.size(); ++i) {
      const ReactionOp& op = ops[i];
      const ReactionRow* prev = set.find({op.comment_id, op.user_id});
      const ReactionType before = prev ? prev->type : ReactionType::none;
      if (!set.add(op)) continue;
      const ReactionDelta d = transition(before, op.type);
      likes[comment_index[i]] += d.likes;
      dislikes[comment_index[i]] += d.dislikes;
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kOps));

  // Exactness: the incremental counters, ReactionSet::count_by_type and the recount agree.
  for (uint32_t c = 0; c < kHotComments; ++c) {
    auto truth = recount.counts(gen.comments()[c]);
    auto by_type = set.count_by_type(gen.comments()[c]);
    if (by_type[ReactionType::like] != truth.first || by_type[ReactionType::dislike] != truth.second ||
        likes[c] != truth.first || dislikes[c] != truth.second) {
      state.SkipWithError("CRDT counts differ from the recount");
      return;
    }
  }
  state.counters["registers"] = static_cast<double>(set.registers().size());
}
BENCHMARK(BM_reaction_crdt_apply)->Unit(benchmark::kMillisecond);

// (b) ReactionSet::merge of two replicas that saw different, overlapping op streams
// (~20,000 registers each on the same hot head). items/s = registers merged in per second.
void BM_reaction_set_merge(benchmark::State& state) {
  OpStream gen_a(2, kHotComments, kUsers), gen_b(3, kHotComments, kUsers);
  ReactionSet a, b;
  for (int i = 0; i < 22'000; ++i) {
    a.add(gen_a.next());
    b.add(gen_b.next());
  }
  if (!(a.merge(b) == b.merge(a)) || !(a.merge(b).merge(b) == a.merge(b))) {
    state.SkipWithError("merge is not commutative/idempotent");
    return;
  }
  for (auto _ : state) {
    ReactionSet m = a.merge(b);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * b.registers().size()));
  state.counters["registers_a"] = static_cast<double>(a.registers().size());
  state.counters["registers_b"] = static_cast<double>(b.registers().size());
}
BENCHMARK(BM_reaction_set_merge)->Unit(benchmark::kMicrosecond);

// (c) The full applier: ops are appended to the durable log of a real RocksStore outside the
// timed region (in 1000-op WriteSets, 20 batches at a time), then ReactionApplier::apply_once
// consumes them in batches of 1000. The timed work is what the applier thread does per
// batch: read_ops, get_registers (MultiGet), the CRDT, building the WriteSet, and its commit
// through the writer thread (the WAL write; plus one fsync per batch when sync=1).
// Real time, because the commit runs on the store's writer thread. items/s = ops applied/s.
void BM_reaction_applier(benchmark::State& state) {
  const bool sync = state.range(0) != 0;
  constexpr size_t kBatch = 1000;
  constexpr size_t kBatchesPerRefill = 20;

  TempDir dir("applier");
  auto opened = commentd::testing::open_temp_store(dir, sync);
  if (!opened) {
    state.SkipWithError(opened.error().message.c_str());
    return;
  }
  std::unique_ptr<store::rocks::RocksStore> st = std::move(*opened);

  OpStream gen(4, kHotComments, kUsers);
  {  // The hot comments exist (recount_comment needs their rows).
    store::WriteSet ws;
    for (size_t i = 0; i < gen.comments().size(); ++i) {
      Comment c;
      c.id = gen.comments()[i];
      c.video_id = gen.video();
      c.user_id = make_uuid(1, i);
      c.content = "hot";
      c.created_at = c.updated_at = kT0 - 1000;
      ws.mutations.push_back(store::PutComment{c});
    }
    if (!commit_and_wait(*st, std::move(ws))) {
      state.SkipWithError("seeding comments failed");
      return;
    }
  }

  SystemClock clock;
  service::ReactionOverlay overlay;
  workers::ApplierOptions ao;
  ao.batch_size = kBatch;
  workers::ReactionApplier applier(*st, overlay, clock, ao);  // no start(): no thread
  Recount recount;
  uint64_t appended = 0, applied = 0;

  auto refill = [&]() -> bool {
    for (size_t b = 0; b < kBatchesPerRefill; ++b) {
      store::WriteSet ws;
      for (size_t i = 0; i < kBatch; ++i) {
        ReactionOp op = gen.next();
        recount.add(op);
        ws.mutations.push_back(store::AppendReactionOp{op});
      }
      if (!commit_and_wait(*st, std::move(ws))) return false;
      appended += kBatch;
    }
    return true;
  };

  for (auto _ : state) {
    if (applied == appended) {
      state.PauseTiming();
      bool ok = refill();
      state.ResumeTiming();
      if (!ok) {
        state.SkipWithError("appending ops failed");
        return;
      }
    }
    auto n = applier.apply_once();
    if (!n || *n == 0) {
      state.SkipWithError(n ? "applier consumed nothing" : n.error().message.c_str());
      return;
    }
    applied += *n;
  }
  state.SetItemsProcessed(static_cast<int64_t>(applied));

  // Apply what is left, then check every hot comment: stored counters == the store's own
  // recount of the registers == the independent recount of the op stream.
  for (;;) {
    auto n = applier.apply_once();
    if (!n) {
      state.SkipWithError(n.error().message.c_str());
      return;
    }
    if (*n == 0) break;
  }
  for (const Uuid& c : gen.comments()) {
    auto r = st->recount_comment(c);
    auto truth = recount.counts(c);
    if (!r || !*r || (*r)->stored.likes != (*r)->truth.likes ||
        (*r)->stored.dislikes != (*r)->truth.dislikes || (*r)->stored.likes != truth.first ||
        (*r)->stored.dislikes != truth.second) {
      state.SkipWithError("applied counts are not exact");
      return;
    }
  }
  // Share of ops that lost the LWW race or changed no count (they still cost a register read).
  const auto& as = applier.stats();
  state.counters["ignored_frac"] =
      static_cast<double>(as.ops_ignored.load()) /
      static_cast<double>(std::max<uint64_t>(1, as.ops_applied.load() + as.ops_ignored.load()));
}
BENCHMARK(BM_reaction_applier)
    ->ArgName("sync")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

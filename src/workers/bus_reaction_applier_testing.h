// Test support for the bus reaction applier (never linked into the service), shared by its
// LocalBus/RocksStore tests and its Pulsar/CQL tests:
// - CounterFaultStore: a Store that forwards every call to a real store, except that it
//   refuses the counter deltas of the next `fail_counters` commit_owned() calls holding any,
//   writing the rest of the call (as a store whose counter step fails after its rows) -- the
//   applier then stops between writing the registers and writing the counters, as a crash or
//   a timed-out counter write would; and it can pause the applier after its registers read
//   (a node that stalls mid-batch while its keys move);
// - ReactionScript: random reaction ops on a few comments and the LWW truth they add up to;
// - expect_counts_exact: every comment's recount against that truth.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

#include "core/clock.h"
#include "core/reaction_set.h"
#include "core/uuid.h"
#include "store/store.h"

namespace commentd::workers::fault {

namespace asio = boost::asio;

class CounterFaultStore final : public store::Store {
 public:
  explicit CounterFaultStore(store::Store& s) : s_(s) {}
  std::atomic<int> fail_counters{0};
  std::atomic<int> refused{0};
  // Called after each registers read returns (a test pauses the applier there). Set before
  // the applier runs.
  std::function<void()> after_registers_read;

  asio::awaitable<Result<std::optional<Comment>>> get_comment(Uuid id, Deadline d) override {
    return s_.get_comment(id, d);
  }
  asio::awaitable<Result<store::ScanResult>> scan(store::ScanRequest r, Deadline d) override { return s_.scan(r, d); }
  asio::awaitable<Result<bool>> has_entries(store::Index i, Uuid k, Deadline d) override {
    return s_.has_entries(i, k, d);
  }
  asio::awaitable<Result<std::vector<CommentMetrics>>> get_metrics(std::vector<Uuid> ids, Deadline d) override {
    return s_.get_metrics(std::move(ids), d);
  }
  asio::awaitable<Result<VideoStats>> get_video_stats(Uuid v, Deadline d) override { return s_.get_video_stats(v, d); }
  asio::awaitable<Result<std::vector<ReactionType>>> get_reactions(Uuid v, Uuid u, std::vector<Uuid> c,
                                                                   Deadline d) override {
    return s_.get_reactions(v, u, std::move(c), d);
  }
  asio::awaitable<Result<bool>> has_hidden(Uuid v, Uuid u, Deadline d) override { return s_.has_hidden(v, u, d); }
  Result<std::vector<ReactionRow>> get_registers(const std::vector<std::pair<Uuid, Uuid>>& k) override {
    auto r = s_.get_registers(k);
    if (after_registers_read) after_registers_read();
    return r;
  }
  asio::awaitable<Result<UserView>> get_user_view(Uuid v, Uuid u, Deadline d) override {
    return s_.get_user_view(v, u, d);
  }
  Result<std::optional<CommentRecount>> recount_comment(const Uuid& id) override { return s_.recount_comment(id); }
  Result<VideoRecount> recount_video(const Uuid& v) override { return s_.recount_video(v); }
  Result<std::vector<Uuid>> list_ids(IdTable t, std::optional<Uuid> after, size_t max) override {
    return s_.list_ids(t, after, max);
  }
  Result<std::vector<ReactionOp>> read_ops(uint64_t after, size_t max) override { return s_.read_ops(after, max); }
  Result<uint64_t> consumer_pos(const std::string& c) override { return s_.consumer_pos(c); }
  uint64_t last_op_seq() const override { return s_.last_op_seq(); }
  Result<std::vector<store::OutboxEntry>> read_outbox_entries(uint64_t after, size_t max) override {
    return s_.read_outbox_entries(after, max);
  }
  uint64_t last_outbox_seq() const override { return s_.last_outbox_seq(); }
  void commit(store::WriteSet ws, store::CommitCallback done) override { s_.commit(std::move(ws), std::move(done)); }
  Status commit_owned(store::WriteSet ws) override {
    bool counters = false;
    for (auto& m : ws.mutations)
      counters |= std::holds_alternative<store::MetricsDelta>(m) || std::holds_alternative<store::StatsDelta>(m);
    if (counters) {
      int left = fail_counters.load();
      while (left > 0 && !fail_counters.compare_exchange_weak(left, left - 1)) {
      }
      if (left > 0) {
        // As a store whose counter step fails: the rows before it are written.
        refused.fetch_add(1);
        std::erase_if(ws.mutations, [](const store::Mutation& m) {
          return std::holds_alternative<store::MetricsDelta>(m) || std::holds_alternative<store::StatsDelta>(m);
        });
        if (!ws.mutations.empty())
          if (auto s = s_.commit_owned(std::move(ws)); !s) return s;
        return Error(Errc::unavailable, "injected: counter write lost");
      }
    }
    return s_.commit_owned(std::move(ws));
  }
  Status trim_logs(uint64_t a, uint64_t b, uint64_t c) override { return s_.trim_logs(a, b, c); }
  void close() override { s_.close(); }
  bool ready() const override { return s_.ready(); }

 private:
  store::Store& s_;
};

}  // namespace commentd::workers::fault

namespace commentd::workers::applier_testing {

// Random ops by `users` on `comments` of one video, and the LWW result they must add up to.
struct ReactionScript {
  Uuid video;
  std::vector<Uuid> comments, users;
  ReactionSet expected;
  // Op ids one millisecond apart: no two ops tie on (timestamp, node), so the registers must
  // equal the LWW result (a tie is rule d, tested on its own).
  ManualClock op_clock{1'760'000'000'000};
  UuidGenerator op_ids{op_clock, 29, 5};

  // The next op (a random user, comment and type, from `node`), added to `expected`.
  ReactionOp next_op(std::mt19937& rng, uint32_t node) {
    ReactionOp op;
    op_clock.advance_ms(1);
    op.op_id = op_ids.next();
    op.comment_id = comments[rng() % comments.size()];
    op.video_id = video;
    op.user_id = users[rng() % users.size()];
    op.type = static_cast<ReactionType>(rng() % 3);
    op.timestamp = op.op_id.v7_time_ms();
    op.node_id = node;
    expected.add(op);
    return op;
  }
};

using Recount = std::function<Result<std::optional<store::Store::CommentRecount>>(const Uuid& comment)>;

// Each comment's recount: the truth (its registers) equals the LWW result of every op, and its
// stored counters equal the truth. Returns the reactions of all comments together (-1 when a
// recount failed).
inline int64_t expect_counts_exact(const ReactionScript& s, const Recount& recount) {
  int64_t reactions = 0;
  for (auto& c : s.comments) {
    auto r = recount(c);
    EXPECT_TRUE(r.ok() && *r) << c.str() << ": " << (r.ok() ? "no such comment" : r.error().message);
    if (!r.ok() || !*r) return -1;
    auto want = s.expected.count_by_type(c);
    EXPECT_EQ((*r)->truth.likes, want[ReactionType::like]) << c.str();
    EXPECT_EQ((*r)->truth.dislikes, want[ReactionType::dislike]) << c.str();
    EXPECT_EQ((*r)->stored.likes, (*r)->truth.likes) << c.str();
    EXPECT_EQ((*r)->stored.dislikes, (*r)->truth.dislikes) << c.str();
    reactions += (*r)->truth.likes + (*r)->truth.dislikes;
  }
  return reactions;
}

}  // namespace commentd::workers::applier_testing

#include "core/reaction_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <vector>

namespace commentd {
namespace {

Uuid id_of(uint8_t tag, uint8_t n) {
  Uuid u;
  u.bytes[0] = tag;
  u.bytes[15] = n;
  return u;
}

// ~`n` random ops over a few comments and users, with colliding timestamps and node ids so
// the (timestamp, node_id, op_id) tie-breaks matter. op_ids are unique.
std::vector<ReactionOp> random_ops(uint64_t seed, size_t n, int comments = 3, int users = 8) {
  std::mt19937_64 rng(seed);
  std::vector<ReactionOp> ops;
  for (size_t i = 0; i < n; ++i) {
    ReactionOp op;
    op.op_id = id_of(0x0F, 0);
    op.op_id.bytes[1] = static_cast<uint8_t>(seed);
    op.op_id.bytes[13] = static_cast<uint8_t>(i >> 8);
    op.op_id.bytes[14] = static_cast<uint8_t>(i);
    op.op_id.bytes[15] = static_cast<uint8_t>(rng());  // so op_id order is not op order
    op.op_id.bytes[2] = static_cast<uint8_t>(rng() % 4);
    op.comment_id = id_of(0xC0, static_cast<uint8_t>(rng() % comments));
    op.video_id = id_of(0xF0, 1);
    op.user_id = id_of(0xA0, static_cast<uint8_t>(rng() % users));
    op.type = static_cast<ReactionType>(rng() % 3);
    op.timestamp = 1000 + static_cast<TimeMs>(rng() % 50);  // many equal timestamps
    op.node_id = static_cast<uint32_t>(rng() % 3);
    op.seq = i + 1;
    ops.push_back(op);
  }
  return ops;
}

ReactionSet apply(const std::vector<ReactionOp>& ops) {
  ReactionSet s;
  for (auto& op : ops) s.add(op);
  return s;
}

// The reference: for each register the LWW-greatest op, found by brute force.
std::map<RegisterKey, ReactionOp> reference(const std::vector<ReactionOp>& ops) {
  std::map<RegisterKey, ReactionOp> best;
  auto key = [](const ReactionOp& o) { return std::tie(o.timestamp, o.node_id, o.op_id); };
  for (auto& op : ops) {
    RegisterKey k{op.comment_id, op.user_id};
    auto it = best.find(k);
    if (it == best.end() || key(it->second) < key(op)) best[k] = op;
  }
  return best;
}

class ReactionSetProperty : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ReactionSetProperty, MatchesBruteForceReference) {
  auto ops = random_ops(GetParam(), 1000);
  ReactionSet s = apply(ops);
  auto ref = reference(ops);
  ASSERT_EQ(s.registers().size(), ref.size());
  for (auto& [k, op] : ref) {
    const ReactionRow* row = s.find(k);
    ASSERT_NE(row, nullptr);
    EXPECT_EQ(row->type, op.type);
    EXPECT_EQ(row->timestamp, op.timestamp);
    EXPECT_EQ(row->node_id, op.node_id);
    EXPECT_EQ(row->op_id, op.op_id);
  }
}

TEST_P(ReactionSetProperty, AnyPermutationGivesTheSameSet) {
  auto ops = random_ops(GetParam(), 1000);
  ReactionSet base = apply(ops);
  std::mt19937_64 rng(GetParam() * 31 + 1);
  for (int round = 0; round < 10; ++round) {
    auto shuffled = ops;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    EXPECT_TRUE(apply(shuffled) == base) << "round " << round;
  }
  auto reversed = ops;
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_TRUE(apply(reversed) == base);
}

TEST_P(ReactionSetProperty, ApplyingTwiceEqualsOnce) {
  auto ops = random_ops(GetParam(), 1000);
  ReactionSet once = apply(ops);
  ReactionSet twice = once;
  for (auto& op : ops) EXPECT_FALSE(twice.add(op)) << "re-adding an op changed the set";
  EXPECT_TRUE(twice == once);
  // Interleaved duplicates too.
  std::vector<ReactionOp> dup;
  for (auto& op : ops) {
    dup.push_back(op);
    dup.push_back(op);
  }
  EXPECT_TRUE(apply(dup) == once);
}

TEST_P(ReactionSetProperty, MergeIsCommutativeAssociativeIdempotent) {
  auto ops = random_ops(GetParam(), 1200);
  std::mt19937_64 rng(GetParam() + 7);
  std::vector<ReactionOp> pa, pb, pc;
  for (auto& op : ops) {
    switch (rng() % 3) {
      case 0: pa.push_back(op); break;
      case 1: pb.push_back(op); break;
      default: pc.push_back(op); break;
    }
  }
  ReactionSet a = apply(pa), b = apply(pb), c = apply(pc);
  ASSERT_FALSE(a == b);  // the property below would be vacuous otherwise
  EXPECT_TRUE(a.merge(b) == b.merge(a));
  EXPECT_TRUE(a.merge(b).merge(c) == a.merge(b.merge(c)));
  EXPECT_TRUE(a.merge(a) == a);
  EXPECT_TRUE(a.merge(b).merge(b) == a.merge(b));
  EXPECT_TRUE(a.merge(ReactionSet{}) == a);
  EXPECT_TRUE(ReactionSet{}.merge(a) == a);
  // merge(a, b) is the set of all ops of a and b; and of all three.
  std::vector<ReactionOp> ab = pa;
  ab.insert(ab.end(), pb.begin(), pb.end());
  EXPECT_TRUE(a.merge(b) == apply(ab));
  EXPECT_TRUE(a.merge(b).merge(c) == apply(ops));
}

TEST_P(ReactionSetProperty, CountByTypeMatchesGetReactions) {
  auto ops = random_ops(GetParam(), 1000, 4, 20);
  ReactionSet s = apply(ops);
  auto ref = reference(ops);
  int64_t total_nonzero = 0;
  for (uint8_t c = 0; c < 5; ++c) {  // comment 4 never appears: all zero
    Uuid cid = id_of(0xC0, c);
    auto reactions = s.get_reactions(cid);
    auto counts = s.count_by_type(cid);
    int64_t likes = 0, dislikes = 0;
    for (auto& [user, t] : reactions) {
      EXPECT_NE(t, ReactionType::none) << "tombstones must be omitted";
      likes += t == ReactionType::like;
      dislikes += t == ReactionType::dislike;
    }
    EXPECT_EQ(counts[ReactionType::like], likes);
    EXPECT_EQ(counts[ReactionType::dislike], dislikes);
    // And both agree with the brute-force reference.
    int64_t ref_likes = 0, ref_dislikes = 0;
    for (auto& [k, op] : ref) {
      if (k.comment_id != cid) continue;
      ref_likes += op.type == ReactionType::like;
      ref_dislikes += op.type == ReactionType::dislike;
    }
    EXPECT_EQ(likes, ref_likes);
    EXPECT_EQ(dislikes, ref_dislikes);
    total_nonzero += likes + dislikes;
  }
  EXPECT_GT(total_nonzero, 0);
  EXPECT_TRUE(s.get_reactions(id_of(0xC0, 4)).empty());
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReactionSetProperty, ::testing::Values(1, 2, 3, 42, 1234, 99991));

ReactionOp op_at(ReactionType t, TimeMs ts, uint32_t node = 1, uint8_t op_n = 1) {
  ReactionOp op;
  op.op_id = id_of(0x0F, op_n);
  op.comment_id = id_of(0xC0, 1);
  op.user_id = id_of(0xA0, 1);
  op.video_id = id_of(0xF0, 1);
  op.type = t;
  op.timestamp = ts;
  op.node_id = node;
  return op;
}

TEST(ReactionSetTest, TombstoneBlocksOlderLike) {
  ReactionSet s;
  EXPECT_TRUE(s.add(op_at(ReactionType::like, 1, 1, 1)));
  EXPECT_TRUE(s.add(op_at(ReactionType::none, 2, 1, 2)));
  EXPECT_TRUE(s.get_reactions(id_of(0xC0, 1)).empty());
  // The like at t=1 arriving after the removal at t=2 (a retry, another node).
  EXPECT_FALSE(s.add(op_at(ReactionType::like, 1, 9, 3)));
  EXPECT_TRUE(s.get_reactions(id_of(0xC0, 1)).empty());
  EXPECT_EQ(s.count_by_type(id_of(0xC0, 1))[ReactionType::like], 0);
  // The tombstone is kept as a register.
  const ReactionRow* row = s.find({id_of(0xC0, 1), id_of(0xA0, 1)});
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->type, ReactionType::none);
  EXPECT_EQ(row->timestamp, 2);
}

TEST(ReactionSetTest, RemovalFirstThenOlderLikeInAFreshSet) {
  ReactionSet s;
  EXPECT_TRUE(s.add(op_at(ReactionType::none, 2, 1, 2)));
  EXPECT_FALSE(s.add(op_at(ReactionType::like, 1, 1, 1)));
  EXPECT_TRUE(s.get_reactions(id_of(0xC0, 1)).empty());
}

TEST(ReactionSetTest, TieBreaksByNodeThenOpId) {
  ReactionSet s;
  EXPECT_TRUE(s.add(op_at(ReactionType::like, 5, 1, 1)));
  EXPECT_TRUE(s.add(op_at(ReactionType::dislike, 5, 2, 0)));   // same ts, higher node wins
  EXPECT_FALSE(s.add(op_at(ReactionType::like, 5, 1, 9)));     // lower node loses
  EXPECT_TRUE(s.add(op_at(ReactionType::like, 5, 2, 1)));      // same node, higher op_id wins
  EXPECT_EQ(s.get_reactions(id_of(0xC0, 1)).at(id_of(0xA0, 1)), ReactionType::like);
}

TEST(ReactionSetTest, SeedIsTheStartingState) {
  ReactionSet s;
  RegisterKey k{id_of(0xC0, 1), id_of(0xA0, 1)};
  s.seed(k, ReactionRow{ReactionType::dislike, 10, 0, id_of(0x0F, 5)});
  EXPECT_FALSE(s.add(op_at(ReactionType::like, 9)));
  EXPECT_EQ(s.get_reactions(k.comment_id).at(k.user_id), ReactionType::dislike);
  EXPECT_TRUE(s.add(op_at(ReactionType::like, 11)));
  EXPECT_EQ(s.get_reactions(k.comment_id).at(k.user_id), ReactionType::like);
}

TEST(ReactionSetTest, TransitionTable) {
  using RT = ReactionType;
  struct Case { RT before, after; int64_t likes, dislikes; };
  const Case cases[] = {
      {RT::none, RT::none, 0, 0},       {RT::none, RT::like, 1, 0},
      {RT::none, RT::dislike, 0, 1},    {RT::like, RT::none, -1, 0},
      {RT::like, RT::like, 0, 0},       {RT::like, RT::dislike, -1, 1},
      {RT::dislike, RT::none, 0, -1},   {RT::dislike, RT::like, 1, -1},
      {RT::dislike, RT::dislike, 0, 0},
  };
  for (auto& c : cases) {
    ReactionDelta d = transition(c.before, c.after);
    EXPECT_EQ(d.likes, c.likes) << to_string(c.before) << "->" << to_string(c.after);
    EXPECT_EQ(d.dislikes, c.dislikes) << to_string(c.before) << "->" << to_string(c.after);
  }
}

TEST(ReactionSetTest, SummedTransitionsEqualFinalCounts) {
  // Replaying ops in log order and summing transition() of each winning op must give the
  // final counts: the applier's invariant.
  auto ops = random_ops(77, 2000, 2, 30);
  ReactionSet s;
  std::map<Uuid, ReactionDelta> total;
  for (auto& op : ops) {
    RegisterKey k{op.comment_id, op.user_id};
    const ReactionRow* prev = s.find(k);
    ReactionType before = prev ? prev->type : ReactionType::none;
    if (!s.add(op)) continue;
    auto d = transition(before, op.type);
    total[op.comment_id].likes += d.likes;
    total[op.comment_id].dislikes += d.dislikes;
  }
  for (uint8_t c = 0; c < 2; ++c) {
    Uuid cid = id_of(0xC0, c);
    auto counts = s.count_by_type(cid);
    EXPECT_EQ(total[cid].likes, counts[ReactionType::like]);
    EXPECT_EQ(total[cid].dislikes, counts[ReactionType::dislike]);
  }
}

}  // namespace
}  // namespace commentd

// The Store conformance suite: the read and write contracts of store/store.h, as a typed
// gtest suite every implementation instantiates (RocksStore in rocks/store_conformance_test.cpp;
// the CQL store in a *_cqltest.cpp).
//
// A harness H (one per test, default-constructible) provides:
//   store::Store& store();  // a fresh, empty store, owned by the harness
//
// Instantiate inside the suite's namespace (gtest names it unqualified):
//   using Impls = ::testing::Types<MyHarness>;
//   namespace commentd::store::conformance {
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, StoreConformance, Impls);
//   }
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "store/store.h"
#include "testing/run_sync.h"

namespace commentd::store::conformance {

inline Uuid sid(uint8_t tag, uint32_t n) {
  Uuid u;
  u.bytes[0] = tag;
  u.bytes[6] = 0x70;
  u.bytes[12] = static_cast<uint8_t>(n >> 24);
  u.bytes[13] = static_cast<uint8_t>(n >> 16);
  u.bytes[14] = static_cast<uint8_t>(n >> 8);
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

inline Comment scomment(const Uuid& id, const Uuid& video, TimeMs at,
                        std::optional<Uuid> parent = std::nullopt) {
  Comment c;
  c.id = id;
  c.video_id = video;
  c.user_id = sid(0xA0, 1);
  c.parent_id = parent;
  c.reply_to = parent;
  c.depth = parent ? 1 : 0;
  c.content = "comment " + id.str();
  c.created_at = c.updated_at = at;
  return c;
}

template <class H>
class StoreConformance : public ::testing::Test {
 protected:
  Store& s() { return h_.store(); }

  Result<CommitResult> commit(WriteSet ws) {
    std::promise<Result<CommitResult>> p;
    auto f = p.get_future();
    s().commit(std::move(ws), [&p](Result<CommitResult> r) { p.set_value(std::move(r)); });
    return f.get();
  }
  // A new comment with its list entry and its bucketed row, as the service writes one
  // (hourly: the bucket of a trending video, and of everything written before the rule).
  void create(const Comment& c) { create_in(c, time_bucket(c.created_at)); }
  void create_in(const Comment& c, const std::string& bucket) {
    WriteSet ws;
    ws.preconditions.push_back(CommentAt{c.id, 0});
    ws.mutations.push_back(PutComment{c});
    if (c.parent_id)
      ws.mutations.push_back(IndexPut{Index::replies, *c.parent_id, c.created_at, c.id});
    else
      ws.mutations.push_back(IndexPut{Index::video, c.video_id, c.created_at, c.id});
    ws.mutations.push_back(BucketPut{c.video_id, bucket, c.created_at, c.id});
    auto r = commit(std::move(ws));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  std::optional<Comment> get(const Uuid& id) {
    auto r = testing::run_sync(s().get_comment(id, Deadline::never()));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : std::nullopt;
  }
  // Every id of a list, paging `page` rows at a time through the cursors.
  std::vector<Uuid> page_all(Index index, const Uuid& key, SortOrder sort, size_t page) {
    std::vector<Uuid> out;
    ScanRequest req{index, key, sort, std::nullopt, page};
    for (int n = 0; n < 10'000; ++n) {
      auto r = testing::run_sync(s().scan(req, Deadline::never()));
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (!r.ok()) break;
      EXPECT_LE(r->rows.size(), page);
      for (auto& c : r->rows) out.push_back(c.id);
      if (r->exhausted) break;
      EXPECT_TRUE(r->last.has_value());
      req.after = r->last;
    }
    return out;
  }
  CommentMetrics metrics(const Uuid& id) {
    auto r = testing::run_sync(s().get_metrics({id}, Deadline::never()));
    EXPECT_TRUE(r.ok());
    return r.ok() ? (*r)[0] : CommentMetrics{};
  }

  H h_;
};

TYPED_TEST_SUITE_P(StoreConformance);

TYPED_TEST_P(StoreConformance, CommentRoundTripsAndMissingIsEmpty) {
  Comment c = scomment(sid(1, 1), sid(0xF0, 1), 1000);
  c.content = "h\xC3\xA9llo \"quoted\" \n";
  c.status = CommentStatus::pending;
  c.edited = true;
  c.version = 3;
  this->create(c);
  auto got = this->get(c.id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, c.id);
  EXPECT_EQ(got->video_id, c.video_id);
  EXPECT_EQ(got->user_id, c.user_id);
  EXPECT_EQ(got->content, c.content);
  EXPECT_EQ(got->status, c.status);
  EXPECT_EQ(got->created_at, c.created_at);
  EXPECT_EQ(got->edited, c.edited);
  EXPECT_EQ(got->parent_id, c.parent_id);
  EXPECT_EQ(got->version, c.version);
  EXPECT_FALSE(this->get(sid(1, 99)).has_value());
  // try_get_comment may answer or not, but when it answers it agrees with get_comment: now,
  // for a missing id, and after the row changed (a cache must not answer the old version).
  for (const Uuid& id : {c.id, sid(1, 99)}) {
    auto held = this->s().try_get_comment(id);
    if (held) {
      EXPECT_EQ(held->has_value(), this->get(id).has_value());
    }
  }
  WriteSet edit;
  edit.preconditions.push_back(CommentAt{c.id, 3});
  c.content = "changed";
  c.version = 4;
  edit.mutations.push_back(PutComment{c});
  auto r = this->commit(std::move(edit));
  ASSERT_TRUE(r.ok()) << r.error().message;
  if (auto held = this->s().try_get_comment(c.id)) {
    ASSERT_TRUE(held->has_value());
    EXPECT_EQ((*held)->content, "changed");
    EXPECT_EQ((*held)->version, 4);
  }
}

TYPED_TEST_P(StoreConformance, ScanOrderTiesAndCursorsInBothSorts) {
  const Uuid video = sid(0xF0, 2);
  std::vector<Comment> all;
  for (uint32_t i = 0; i < 45; ++i) all.push_back(scomment(sid(1, i), video, 1000 + i / 3));  // ties
  for (auto& c : all) this->create(c);
  this->create(scomment(sid(2, 1), sid(0xF0, 3), 1000));  // another video's list
  std::vector<Uuid> newest;
  std::vector<Comment> sorted = all;
  std::sort(sorted.begin(), sorted.end(), [](const Comment& a, const Comment& b) {
    return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
  });
  for (auto& c : sorted) newest.push_back(c.id);
  std::vector<Uuid> oldest(newest.rbegin(), newest.rend());
  for (size_t page : {1u, 7u, 45u, 100u}) {
    EXPECT_EQ(this->page_all(Index::video, video, SortOrder::newest, page), newest) << page;
    EXPECT_EQ(this->page_all(Index::video, video, SortOrder::oldest, page), oldest) << page;
  }
  // An empty list: no rows, exhausted, no position.
  auto r = testing::run_sync(this->s().scan(
      ScanRequest{Index::video, sid(0xF0, 99), SortOrder::newest, std::nullopt, 10}, Deadline::never()));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_TRUE(r->exhausted);
  EXPECT_FALSE(r->last.has_value());
}

TYPED_TEST_P(StoreConformance, RepliesListAndHasEntries) {
  const Uuid video = sid(0xF0, 4);
  Comment parent = scomment(sid(1, 1), video, 1000);
  this->create(parent);
  auto has = [&](Index i, const Uuid& k) {
    auto r = testing::run_sync(this->s().has_entries(i, k, Deadline::never()));
    EXPECT_TRUE(r.ok());
    return r.ok() && *r;
  };
  EXPECT_FALSE(has(Index::replies, parent.id));
  EXPECT_TRUE(has(Index::video, video));
  for (uint32_t i = 0; i < 5; ++i) this->create(scomment(sid(3, i), video, 2000 + i, parent.id));
  EXPECT_TRUE(has(Index::replies, parent.id));
  EXPECT_EQ(this->page_all(Index::replies, parent.id, SortOrder::oldest, 2).size(), 5u);
  // Replies are not in the video's top-level list.
  EXPECT_EQ(this->page_all(Index::video, video, SortOrder::newest, 10),
            std::vector<Uuid>{parent.id});
  WriteSet ws;
  for (uint32_t i = 0; i < 5; ++i)
    ws.mutations.push_back(IndexDelete{Index::replies, parent.id, 2000 + i, sid(3, i)});
  ASSERT_TRUE(this->commit(std::move(ws)).ok());
  EXPECT_FALSE(has(Index::replies, parent.id));
  EXPECT_TRUE(this->get(sid(3, 0)).has_value()) << "a delete from a list keeps the row";
}

TYPED_TEST_P(StoreConformance, FailedPreconditionWritesNothing) {
  const Uuid video = sid(0xF0, 5);
  Comment c = scomment(sid(1, 1), video, 1000);
  this->create(c);
  // Creating the same id again conflicts.
  WriteSet again;
  again.preconditions.push_back(CommentAt{c.id, 0});
  again.mutations.push_back(PutComment{c});
  auto r = this->commit(std::move(again));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);

  // A WriteSet with one failing precondition among passing ones: none of it is applied.
  Comment other = scomment(sid(1, 2), video, 1001);
  WriteSet ws;
  ws.preconditions.push_back(CommentAt{other.id, 0});  // holds
  ws.preconditions.push_back(CommentAt{c.id, 5});      // does not: c is at version 1
  ws.mutations.push_back(PutComment{other});
  ws.mutations.push_back(IndexPut{Index::video, video, other.created_at, other.id});
  ws.mutations.push_back(MetricsDelta{c.id, 1, 0, 0, 5});
  ws.mutations.push_back(StatsDelta{video, 1, 0, 5});
  r = this->commit(std::move(ws));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_FALSE(this->get(other.id).has_value());
  EXPECT_EQ(this->page_all(Index::video, video, SortOrder::newest, 10), std::vector<Uuid>{c.id});
  EXPECT_EQ(this->metrics(c.id).likes, 0);
  auto st = testing::run_sync(this->s().get_video_stats(video, Deadline::never()));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->comments_count, 0);

  // The right version passes, and the row moves to the next one.
  Comment edited = c;
  edited.content = "edited";
  edited.version = 2;
  WriteSet edit;
  edit.preconditions.push_back(CommentAt{c.id, 1});
  edit.mutations.push_back(PutComment{edited});
  ASSERT_TRUE(this->commit(std::move(edit)).ok());
  EXPECT_EQ(this->get(c.id)->content, "edited");
  WriteSet stale;
  stale.preconditions.push_back(CommentAt{c.id, 1});  // the version it was read at is gone
  stale.mutations.push_back(PutComment{c});
  r = this->commit(std::move(stale));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(this->get(c.id)->content, "edited");
}

TYPED_TEST_P(StoreConformance, CountersAddUpAndKeepTheLatestTime) {
  const Uuid video = sid(0xF0, 6);
  const Uuid a = sid(1, 1), b = sid(1, 2);
  for (int i = 0; i < 10; ++i) {
    WriteSet ws;
    ws.mutations.push_back(MetricsDelta{a, 1, i % 2, i % 3 == 0 ? 1 : 0, 100 + (i * 7) % 10});
    ws.mutations.push_back(StatsDelta{video, 1, 2, 50 + i});
    ASSERT_TRUE(this->commit(std::move(ws)).ok());
  }
  WriteSet down;
  down.mutations.push_back(MetricsDelta{a, -3, 0, 0, 1});
  ASSERT_TRUE(this->commit(std::move(down)).ok());
  auto m = testing::run_sync(this->s().get_metrics({b, a, b}, Deadline::never()));
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].likes, 0) << "no counters: zeros";
  EXPECT_EQ((*m)[1].likes, 7);
  EXPECT_EQ((*m)[1].dislikes, 5);
  EXPECT_EQ((*m)[1].replies_count, 4);
  EXPECT_EQ((*m)[1].last_updated, 109);
  auto counts = testing::run_sync(this->s().get_counts({b, a, b}, Deadline::never()));
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*counts)[i].likes, (*m)[i].likes);
    EXPECT_EQ((*counts)[i].dislikes, (*m)[i].dislikes);
    EXPECT_EQ((*counts)[i].replies_count, (*m)[i].replies_count);
    EXPECT_EQ((*counts)[i].last_updated, 0) << "counts only";
  }
  auto st = testing::run_sync(this->s().get_video_stats(video, Deadline::never()));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->comments_count, 10);
  EXPECT_EQ(st->reactions_count, 20);
  EXPECT_EQ(st->last_updated, 59);
  auto none = testing::run_sync(this->s().get_video_stats(sid(0xF0, 98), Deadline::never()));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->comments_count, 0);
}

// A scan asked for counts answers each joined row's counts as get_counts does, aligned with
// the rows: across pages, with rows the list skips (a reply in the video's bucketed history,
// a deleted comment whose list entry is gone) and comments with no counters.
TYPED_TEST_P(StoreConformance, ScanWithCountsAnswersEachRowsCounts) {
  const Uuid video = sid(0xF0, 7);
  WriteSet deltas;
  for (uint32_t i = 0; i < 9; ++i) {
    Comment c = scomment(sid(4, i), video, 3000 + i);
    this->create(c);
    if (i % 4 != 3) deltas.mutations.push_back(MetricsDelta{c.id, i + 1, i % 2, i % 3, 10});
  }
  this->create(scomment(sid(5, 1), video, 3004, sid(4, 0)));  // a reply, between the others
  ASSERT_TRUE(this->commit(std::move(deltas)).ok());
  Comment gone = *this->get(sid(4, 5));
  gone.status = CommentStatus::deleted;
  gone.version = 1;
  WriteSet del;
  del.mutations.push_back(PutComment{gone});
  del.mutations.push_back(IndexDelete{Index::video, video, gone.created_at, gone.id});
  ASSERT_TRUE(this->commit(std::move(del)).ok());

  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
    ScanRequest req{Index::video, video, sort, std::nullopt, 4};
    req.with_counts = true;
    size_t seen = 0;
    for (int n = 0; n < 10; ++n) {
      auto r = testing::run_sync(this->s().scan(req, Deadline::never()));
      ASSERT_TRUE(r.ok()) << r.error().message;
      ASSERT_EQ(r->counts.size(), r->rows.size()) << "both engines read counts beside the rows";
      std::vector<Uuid> ids;
      for (auto& c : r->rows) ids.push_back(c.id);
      auto want = testing::run_sync(this->s().get_counts(ids, Deadline::never()));
      ASSERT_TRUE(want.ok());
      for (size_t i = 0; i < ids.size(); ++i) {
        EXPECT_NE(ids[i], gone.id);
        EXPECT_EQ(r->counts[i].likes, (*want)[i].likes) << ids[i].str();
        EXPECT_EQ(r->counts[i].dislikes, (*want)[i].dislikes) << ids[i].str();
        EXPECT_EQ(r->counts[i].replies_count, (*want)[i].replies_count) << ids[i].str();
        EXPECT_EQ(r->counts[i].last_updated, 0);
      }
      seen += ids.size();
      if (r->exhausted) break;
      req.after = r->last;
    }
    EXPECT_EQ(seen, 8u) << "nine comments, one deleted from the list";
  }
  EXPECT_EQ(testing::run_sync(this->s().scan(ScanRequest{Index::video, video, SortOrder::newest, std::nullopt, 4},
                                             Deadline::never()))
                ->counts.size(),
            0u)
      << "counts only when asked";
}

TYPED_TEST_P(StoreConformance, HiddenMarksBalance) {
  const Uuid video = sid(0xF0, 7), user = sid(0xA0, 7);
  // try_view_and_reactions may answer or not, but when it answers its view agrees.
  auto hidden = [&] {
    auto r = testing::run_sync(this->s().has_hidden(video, user, Deadline::never()));
    EXPECT_TRUE(r.ok());
    (void)testing::run_sync(this->s().get_view_and_reactions(video, user, Deadline::never()));  // may fill
    if (auto held = this->s().try_view_and_reactions(video, user)) {
      EXPECT_EQ(held->view.hidden, r.ok() && *r);
      EXPECT_TRUE(held->reactions);
    }
    return r.ok() && *r;
  };
  EXPECT_FALSE(hidden());
  for (uint32_t i = 0; i < 2; ++i) {
    WriteSet ws;
    ws.mutations.push_back(HiddenMark{video, user, sid(1, i), true});
    ASSERT_TRUE(this->commit(std::move(ws)).ok());
  }
  EXPECT_TRUE(hidden());
  WriteSet one;
  one.mutations.push_back(HiddenMark{video, user, sid(1, 0), false});
  ASSERT_TRUE(this->commit(std::move(one)).ok());
  EXPECT_TRUE(hidden()) << "one of two is still hidden";
  WriteSet two;
  two.mutations.push_back(HiddenMark{video, user, sid(1, 1), false});
  ASSERT_TRUE(this->commit(std::move(two)).ok());
  EXPECT_FALSE(hidden());
  auto other = testing::run_sync(this->s().has_hidden(sid(0xF0, 8), user, Deadline::never()));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);
}

TYPED_TEST_P(StoreConformance, ReactionsByVideoAndUser) {
  const Uuid video = sid(0xF0, 9), user = sid(0xA0, 9), other_user = sid(0xA0, 10);
  const Uuid c1 = sid(1, 1), c2 = sid(1, 2), c3 = sid(1, 3);
  WriteSet ws;
  ws.mutations.push_back(PutReaction{c1, user, video, ReactionRow{ReactionType::like, 10, 1, sid(9, 1)}});
  ws.mutations.push_back(PutReaction{c3, user, video, ReactionRow{ReactionType::dislike, 11, 1, sid(9, 2)}});
  ws.mutations.push_back(PutReaction{c2, other_user, video, ReactionRow{ReactionType::like, 12, 1, sid(9, 3)}});
  ASSERT_TRUE(this->commit(std::move(ws)).ok());
  // try_view_and_reactions may answer or not, but when it answers it holds what the reads
  // give, before and after a removal (a cache must not answer the old reactions).
  auto held_agrees = [&](const char* when) {
    (void)testing::run_sync(this->s().get_view_and_reactions(video, user, Deadline::never()));  // may fill
    auto held = this->s().try_view_and_reactions(video, user);
    if (!held) return;
    ASSERT_TRUE(held->reactions) << when;
    std::vector<ReactionType> got(3, ReactionType::none);
    const Uuid ids[] = {c1, c2, c3};
    for (auto& [c, t] : *held->reactions)
      for (size_t i = 0; i < 3; ++i)
        if (ids[i] == c) got[i] = t;
    auto want = testing::run_sync(this->s().get_reactions(video, user, {c1, c2, c3}, Deadline::never()));
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(got, *want) << when;
  };
  held_agrees("after the puts");
  auto r = testing::run_sync(this->s().get_reactions(video, user, {c1, c2, c3}, Deadline::never()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<ReactionType>{ReactionType::like, ReactionType::none, ReactionType::dislike}));
  // A removal is a tombstone: reads as none.
  WriteSet rm;
  rm.mutations.push_back(PutReaction{c1, user, video, ReactionRow{ReactionType::none, 20, 1, sid(9, 4)}});
  ASSERT_TRUE(this->commit(std::move(rm)).ok());
  r = testing::run_sync(this->s().get_reactions(video, user, {c1, c3}, Deadline::never()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<ReactionType>{ReactionType::none, ReactionType::dislike}));
  held_agrees("after the removal");
  auto regs = this->s().get_registers({{c1, user}, {c2, other_user}, {c2, user}});
  ASSERT_TRUE(regs.ok());
  EXPECT_EQ((*regs)[0].timestamp, 20);
  EXPECT_EQ((*regs)[1].type, ReactionType::like);
  EXPECT_EQ((*regs)[2].type, ReactionType::none);
  auto empty = testing::run_sync(this->s().get_reactions(video, user, {}, Deadline::never()));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

// The applier reads a batch's registers at once: many users of one comment (more than one
// partition read holds on CQL), a comment with one, keys in any order, registers absent.
TYPED_TEST_P(StoreConformance, RegistersOfManyUsersOfOneComment) {
  const Uuid video = sid(0xF0, 11), hot = sid(1, 0x40), lone = sid(1, 0x41);
  WriteSet ws;
  for (uint32_t u = 0; u < 40; ++u)
    if (u % 3 == 0)
      ws.mutations.push_back(PutReaction{hot, sid(0xA1, u), video,
                                         ReactionRow{u % 2 ? ReactionType::dislike : ReactionType::like, 100 + u, 2,
                                                     sid(0x9A, u)}});
  ws.mutations.push_back(PutReaction{lone, sid(0xA1, 7), video, ReactionRow{ReactionType::like, 7, 3, sid(0x9B, 7)}});
  ASSERT_TRUE(this->commit(std::move(ws)).ok());
  std::vector<std::pair<Uuid, Uuid>> keys;
  for (uint32_t u = 40; u-- > 0;) {
    keys.emplace_back(hot, sid(0xA1, u));
    if (u == 20) keys.emplace_back(lone, sid(0xA1, 7));
  }
  auto regs = this->s().get_registers(keys);
  ASSERT_TRUE(regs.ok()) << regs.error().message;
  ASSERT_EQ(regs->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& r = (*regs)[i];
    if (keys[i].first == lone) {
      EXPECT_EQ(r.type, ReactionType::like);
      EXPECT_EQ(r.timestamp, 7);
      EXPECT_EQ(r.node_id, 3u);
      EXPECT_EQ(r.op_id, sid(0x9B, 7));
      continue;
    }
    const uint32_t u = keys[i].second.bytes[15];
    if (u % 3 != 0) {
      EXPECT_EQ(r.timestamp, 0) << "user " << u << " has no register";
      continue;
    }
    EXPECT_EQ(r.type, u % 2 ? ReactionType::dislike : ReactionType::like) << u;
    EXPECT_EQ(r.timestamp, 100 + u) << u;
    EXPECT_EQ(r.node_id, 2u) << u;
    EXPECT_EQ(r.op_id, sid(0x9A, u)) << u;
  }
}

TYPED_TEST_P(StoreConformance, ReactionOpsGetIncreasingSequences) {
  std::vector<uint64_t> seqs;
  for (uint32_t i = 0; i < 3; ++i) {
    WriteSet ws;
    for (uint32_t j = 0; j < 2; ++j) {
      ReactionOp op;
      op.op_id = sid(0x0F, i * 2 + j);
      op.comment_id = sid(1, 1);
      op.video_id = sid(0xF0, 10);
      op.user_id = sid(0xA0, j);
      op.type = ReactionType::like;
      op.timestamp = 100 + i;
      ws.mutations.push_back(AppendReactionOp{op});
    }
    auto r = this->commit(std::move(ws));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->op_seqs.size(), 2u);
    seqs.insert(seqs.end(), r->op_seqs.begin(), r->op_seqs.end());
  }
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end()) << "a sequence repeated";
  EXPECT_EQ(this->s().last_op_seq(), seqs.back());
  auto ops = this->s().read_ops(seqs[1], 100);
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 4u);
  EXPECT_EQ((*ops)[0].seq, seqs[2]);
  EXPECT_EQ((*ops)[0].op_id, sid(0x0F, 2));
}

TYPED_TEST_P(StoreConformance, ReadPastItsDeadlineFails) {
  Comment c = scomment(sid(1, 1), sid(0xF0, 11), 1000);
  this->create(c);
  Deadline past{Deadline::clock::now() - std::chrono::milliseconds(1)};
  auto g = testing::run_sync(this->s().get_comment(c.id, past));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, Errc::deadline_exceeded);
  auto sc = testing::run_sync(
      this->s().scan(ScanRequest{Index::video, c.video_id, SortOrder::newest, std::nullopt, 10}, past));
  ASSERT_FALSE(sc.ok());
  EXPECT_EQ(sc.error().code, Errc::deadline_exceeded);
}

// Time buckets (docs/cluster.md "Time buckets"): a video whose comments sit in hourly and
// daily buckets -- days without comments between them, a switch of granularity inside a day
// and inside an hour, equal created_at in both granularities, replies and deleted comments in
// the bucketed history -- pages in both sorts and every page size exactly as its list, while
// another thread inserts comments into the same time range: every comment that existed at the
// first page is seen exactly once, none twice, in strict list order.
TYPED_TEST_P(StoreConformance, BucketedPagingAcrossBoundariesWithConcurrentInserts) {
  constexpr TimeMs kHour = 3'600'000, kDay = 24 * kHour;
  constexpr TimeMs kMay1 = 1'714'521'600'000;  // 2024-05-01T00:00:00Z
  const Uuid video = sid(0xF0, 12);
  std::vector<Comment> listed;
  uint32_t n = 0;
  auto add = [&](TimeMs at, bool hourly) {
    Comment c = scomment(sid(5, n++), video, at);
    this->create_in(c, hourly ? time_bucket(at) : day_bucket(at));
    listed.push_back(c);
  };
  for (int i = 0; i < 4; ++i) add(kMay1 - 3 * kDay + i * kHour, false);   // quiet, then two empty days
  for (int i = 0; i < 6; ++i) add(kMay1 + i * kHour + 17, false);         // quiet morning of May 1
  for (int i = 0; i < 8; ++i) add(kMay1 + 6 * kHour + i * 1000, true);    // trending from 06:00
  for (int i = 0; i < 5; ++i) add(kMay1 + 7 * kHour + i * 60'000, i % 2);  // two nodes disagree in 07
  for (int i = 0; i < 4; ++i) add(kMay1 + 7 * kHour + 30 * 60'000, i % 2);  // equal created_at, both
  for (int i = 0; i < 3; ++i) add(kMay1 + 9 * kHour + i, true);
  for (int i = 0; i < 5; ++i) add(kMay1 + 12 * kHour + i, false);         // quiet again after a gap
  for (int i = 0; i < 6; ++i) add(kMay1 + 20 * kHour + i * 7, true);
  for (int i = 0; i < 3; ++i) add(kMay1 + 3 * kDay + i, true);            // hourly days later
  // Replies and a deleted comment stay in the bucketed history but not in the list; a
  // deleted comment with replies stays in both.
  Comment parent = listed[20];
  for (uint32_t i = 0; i < 4; ++i)
    this->create_in(scomment(sid(6, i), video, kMay1 + 7 * kHour + 30 * 60'000, parent.id), day_bucket(kMay1));
  for (size_t victim : {size_t{3}, size_t{12}, size_t{20}}) {
    Comment gone = listed[victim];
    gone.status = CommentStatus::deleted;
    gone.version = 2;
    WriteSet del;
    del.preconditions.push_back(CommentAt{gone.id, 1});
    del.mutations.push_back(PutComment{gone});
    if (victim != 20) del.mutations.push_back(IndexDelete{Index::video, video, gone.created_at, gone.id});
    ASSERT_TRUE(this->commit(std::move(del)).ok());
  }
  listed.erase(listed.begin() + 12);
  listed.erase(listed.begin() + 3);

  auto in_order = [](std::vector<Comment> v, SortOrder sort) {
    std::sort(v.begin(), v.end(), [](const Comment& a, const Comment& b) {
      return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
    });
    if (sort == SortOrder::oldest) std::reverse(v.begin(), v.end());
    std::vector<Uuid> ids;
    for (auto& c : v) ids.push_back(c.id);
    return ids;
  };
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest})
    for (size_t page : {1u, 4u, 9u, 100u})
      EXPECT_EQ(this->page_all(Index::video, video, sort, page), in_order(listed, sort)) << page;

  // Concurrent inserts while paging, at times inside the paged range, both granularities.
  uint32_t round = 0;
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
    for (size_t page : {1u, 5u}) {
      const std::vector<Uuid> before = in_order(listed, sort);
      std::atomic<bool> stop{false};
      std::vector<Comment> inserted;
      std::thread writer([&, r = round++] {
        for (uint32_t i = 0; i < 200 && !stop.load(); ++i) {
          const TimeMs at = kMay1 - 3 * kDay + static_cast<TimeMs>((i * 7919 + r * 104729) % (7 * 24)) * kHour + i;
          Comment c = scomment(sid(static_cast<uint8_t>(0x10 + r), i), video, at);
          this->create_in(c, i % 3 ? day_bucket(at) : time_bucket(at));
          inserted.push_back(c);
        }
      });
      std::vector<Uuid> seen;
      std::vector<TimeMs> times;
      ScanRequest req{Index::video, video, sort, std::nullopt, page};
      for (int guard = 0; guard < 10'000; ++guard) {
        auto r = testing::run_sync(this->s().scan(req, Deadline::never()));
        ASSERT_TRUE(r.ok()) << r.error().message;
        for (auto& c : r->rows) {
          seen.push_back(c.id);
          times.push_back(c.created_at);
        }
        if (r->exhausted) break;
        req.after = r->last;
      }
      stop.store(true);
      writer.join();
      std::vector<Uuid> uniq = seen;
      std::sort(uniq.begin(), uniq.end());
      EXPECT_EQ(std::adjacent_find(uniq.begin(), uniq.end()), uniq.end()) << "a comment seen twice";
      for (auto& id : before)
        EXPECT_TRUE(std::binary_search(uniq.begin(), uniq.end(), id)) << "a gap: " << id.str() << " page " << page;
      for (size_t i = 1; i < times.size(); ++i)
        EXPECT_TRUE(sort == SortOrder::newest ? times[i - 1] >= times[i] : times[i - 1] <= times[i]);
      listed.insert(listed.end(), inserted.begin(), inserted.end());
    }
  }
  // Afterwards the list holds every comment once, inserted ones included.
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest})
    EXPECT_EQ(this->page_all(Index::video, video, sort, 50), in_order(listed, sort));
}

REGISTER_TYPED_TEST_SUITE_P(StoreConformance, CommentRoundTripsAndMissingIsEmpty,
                            ScanOrderTiesAndCursorsInBothSorts, RepliesListAndHasEntries,
                            FailedPreconditionWritesNothing, CountersAddUpAndKeepTheLatestTime,
                            ScanWithCountsAnswersEachRowsCounts,
                            HiddenMarksBalance, ReactionsByVideoAndUser, RegistersOfManyUsersOfOneComment,
                            ReactionOpsGetIncreasingSequences, ReadPastItsDeadlineFails,
                            BucketedPagingAcrossBoundariesWithConcurrentInserts);

}  // namespace commentd::store::conformance

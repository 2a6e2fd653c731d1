// RocksStore reads: get, scan order and cursors, indexes, counters, registers, recount.
#include "testing/run_sync.h"
#include "store/rocks/rocks_store_fixture.h"

#include <map>
#include <tuple>

namespace commentd::store::rocks {
namespace {

using namespace test;

TEST_F(RocksStoreTest, PutAndGetComment) {
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  c.content = "hello \xf0\x9f\x98\x80";
  c.edited = true;
  c.status = CommentStatus::pending;
  put(c);
  auto got = commentd::testing::run_sync(store_->get_comment(c.id, {}));
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->content, c.content);
  EXPECT_EQ((*got)->video_id, kVideo);
  EXPECT_EQ((*got)->status, CommentStatus::pending);
  EXPECT_TRUE((*got)->edited);
  EXPECT_EQ((*got)->created_at, 1000);

  // Not found is an empty answer, not an error.
  auto missing = commentd::testing::run_sync(store_->get_comment(uid(1, 99), {}));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

class ScanTest : public RocksStoreTest {
 protected:
  // 21 comments of kVideo over 8 distinct timestamps (ties broken by id), 5 of another video
  // and 4 replies: `expected` is newest-first.
  void SetUp() override {
    RocksStoreTest::SetUp();
    std::mt19937_64 rng(17);
    std::vector<Comment> mine;
    for (uint32_t i = 0; i < 21; ++i) {
      Uuid id = uid(0x01, static_cast<uint32_t>(rng() % 1'000'000) * 32 + i);
      mine.push_back(make_comment(id, kVideo, 5000 + static_cast<TimeMs>(rng() % 8)));
    }
    for (auto& c : mine) put(c);
    for (uint32_t i = 0; i < 5; ++i) put(make_comment(uid(0x02, i), kOtherVideo, 5003));
    for (uint32_t i = 0; i < 4; ++i) put(make_comment(uid(0x03, i), kVideo, 5004, mine[0].id));
    std::sort(mine.begin(), mine.end(), [](const Comment& a, const Comment& b) {
      return a.created_at != b.created_at ? a.created_at > b.created_at : a.id > b.id;
    });
    for (auto& c : mine) expected.push_back(c.id);
  }
  std::vector<Uuid> expected;  // kVideo's top-level comments, newest first
};

TEST_F(ScanTest, NewestAndOldestOrder) {
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 100;
  req.sort = SortOrder::newest;
  EXPECT_EQ(scan_ids(req), expected);
  req.sort = SortOrder::oldest;
  std::vector<Uuid> rev(expected.rbegin(), expected.rend());
  EXPECT_EQ(scan_ids(req), rev);

  auto r = commentd::testing::run_sync(store_->scan(req, {}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->exhausted);
  ASSERT_TRUE(r->last.has_value());
  EXPECT_EQ(r->last->id, expected.front());
  // Rows are the joined comments, all of this video and top-level.
  for (auto& c : r->rows) {
    EXPECT_EQ(c.video_id, kVideo);
    EXPECT_FALSE(c.parent_id.has_value());
  }
}

TEST_F(ScanTest, PagingWithAfterCursor) {
  for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
    std::vector<Uuid> want = expected;
    if (sort == SortOrder::oldest) std::reverse(want.begin(), want.end());
    ScanRequest req;
    req.key = kVideo;
    req.sort = sort;
    req.max_rows = 5;
    std::vector<Uuid> got;
    int pages = 0;
    for (;;) {
      auto r = commentd::testing::run_sync(store_->scan(req, {}));
      ASSERT_TRUE(r.ok()) << r.error().message;
      ++pages;
      ASSERT_LE(r->rows.size(), 5u);
      for (auto& c : r->rows) {
        // The cursor row itself is never returned again.
        if (req.after) {
          EXPECT_NE(c.id, req.after->id);
        }
        got.push_back(c.id);
      }
      if (r->exhausted) break;
      ASSERT_EQ(r->rows.size(), 5u) << "a non-final page must be full";
      ASSERT_TRUE(r->last.has_value());
      EXPECT_EQ(r->last->id, r->rows.back().id);
      req.after = r->last;
      ASSERT_LT(pages, 10);
    }
    EXPECT_EQ(got, want) << "sort " << static_cast<int>(sort);
    EXPECT_EQ(pages, 5);  // 21 rows: 5+5+5+5+1
  }
}

TEST_F(ScanTest, MaxRowsAndExhausted) {
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 21;
  auto r = commentd::testing::run_sync(store_->scan(req, {}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.size(), 21u);
  EXPECT_TRUE(r->exhausted);
  req.max_rows = 20;
  r = commentd::testing::run_sync(store_->scan(req, {}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.size(), 20u);
  EXPECT_FALSE(r->exhausted);
  req.max_rows = 1;
  r = commentd::testing::run_sync(store_->scan(req, {}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->rows[0].id, expected[0]);
  EXPECT_FALSE(r->exhausted);
  // After the very last row: nothing, exhausted.
  req.max_rows = 10;
  auto last = commentd::testing::run_sync(store_->get_comment(expected.back(), {}));
  ASSERT_TRUE(last.ok() && last->has_value());
  req.after = CursorPos{(*last)->created_at, expected.back()};
  r = commentd::testing::run_sync(store_->scan(req, {}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_TRUE(r->exhausted);
  // An empty list is exhausted at once.
  ScanRequest none;
  none.key = uid(0xF0, 77);
  r = commentd::testing::run_sync(store_->scan(none, {}));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->rows.empty());
  EXPECT_TRUE(r->exhausted);
  EXPECT_FALSE(r->last.has_value());
}

TEST_F(ScanTest, CursorOfADeletedEntryStillPositions) {
  // Paging is by position, so removing the cursor's own row does not lose or repeat rows.
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 10;
  auto first = commentd::testing::run_sync(store_->scan(req, {}));
  ASSERT_TRUE(first.ok());
  auto cut = *first->last;
  WriteSet ws;
  ws.mutations.push_back(IndexDelete{Index::video, kVideo, cut.created_at, cut.id});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  req.after = cut;
  EXPECT_EQ(scan_ids(req), std::vector<Uuid>(expected.begin() + 10, expected.begin() + 20));
}

TEST_F(ScanTest, RepliesAndHasEntries) {
  ScanRequest req;
  req.index = Index::replies;
  req.key = expected.back();  // not the parent: no replies
  req.max_rows = 100;
  EXPECT_TRUE(scan_ids(req).empty());

  // Find the parent used in SetUp: the comment whose replies exist.
  int with_replies = 0;
  for (auto& id : expected) {
    auto h = commentd::testing::run_sync(store_->has_entries(Index::replies, id, {}));
    ASSERT_TRUE(h.ok());
    if (*h) {
      ++with_replies;
      req.key = id;
      auto ids = scan_ids(req);
      ASSERT_EQ(ids.size(), 4u);
      // Same created_at: id DESC in newest order.
      EXPECT_TRUE(std::is_sorted(ids.rbegin(), ids.rend()));
    }
  }
  EXPECT_EQ(with_replies, 1);
  auto v = commentd::testing::run_sync(store_->has_entries(Index::video, kVideo, {}));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(*v);
  v = commentd::testing::run_sync(store_->has_entries(Index::video, uid(0xF0, 55), {}));
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(*v);
}

TEST_F(RocksStoreTest, HasEntriesFollowsPutAndDelete) {
  const Uuid parent = uid(1, 1);
  auto h = commentd::testing::run_sync(store_->has_entries(Index::replies, parent, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  Comment r = make_comment(uid(2, 1), kVideo, 10, parent);
  put(r);
  h = commentd::testing::run_sync(store_->has_entries(Index::replies, parent, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(*h);
  // A neighbouring key (parent + 1) has none.
  h = commentd::testing::run_sync(store_->has_entries(Index::replies, uid(1, 2), {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  // The video index is separate.
  h = commentd::testing::run_sync(store_->has_entries(Index::video, parent, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  WriteSet ws;
  ws.mutations.push_back(IndexDelete{Index::replies, parent, r.created_at, r.id});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  h = commentd::testing::run_sync(store_->has_entries(Index::replies, parent, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
}

TEST_F(RocksStoreTest, HasHidden) {
  const Uuid other_user = uid(0xA0, 2);
  auto h = commentd::testing::run_sync(store_->has_hidden(kVideo, kUser, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
  WriteSet ws;
  ws.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 1), true});
  ws.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 2), true});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  for (auto [video, user, want] : {std::tuple{kVideo, kUser, true},
                                   std::tuple{kVideo, other_user, false},
                                   std::tuple{kOtherVideo, kUser, false}}) {
    auto r = commentd::testing::run_sync(store_->has_hidden(video, user, {}));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, want);
  }
  WriteSet unset1;
  unset1.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 1), false});
  ASSERT_TRUE(commit_sync(*store_, std::move(unset1)).ok());
  h = commentd::testing::run_sync(store_->has_hidden(kVideo, kUser, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(*h);  // one mark is left
  WriteSet unset2;
  unset2.mutations.push_back(HiddenMark{kVideo, kUser, uid(1, 2), false});
  ASSERT_TRUE(commit_sync(*store_, std::move(unset2)).ok());
  h = commentd::testing::run_sync(store_->has_hidden(kVideo, kUser, {}));
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(*h);
}

TEST_F(RocksStoreTest, RecountCommentFindsInjectedDrift) {
  const Uuid cid = uid(1, 1);
  put(make_comment(cid, kVideo, 100));
  // Truth: 3 likes, 2 dislikes, 1 tombstone; 2 visible replies and 1 hidden one.
  WriteSet ws;
  for (uint32_t u = 0; u < 6; ++u) {
    ReactionType t = u < 3 ? ReactionType::like : u < 5 ? ReactionType::dislike : ReactionType::none;
    ws.mutations.push_back(PutReaction{cid, uid(0xA0, u), kVideo, ReactionRow{t, 10, 1, uid(0x0F, u)}});
  }
  // A register of another comment must not be counted.
  ws.mutations.push_back(PutReaction{uid(1, 2), uid(0xA0, 0), kVideo, ReactionRow{ReactionType::like, 10, 1, {}}});
  ws.mutations.push_back(MetricsDelta{cid, 3, 2, 2, 77});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  put(make_comment(uid(2, 1), kVideo, 200, cid));
  put(make_comment(uid(2, 2), kVideo, 201, cid));
  Comment hidden = make_comment(uid(2, 3), kVideo, 202, cid);
  hidden.status = CommentStatus::hidden;
  put(hidden);

  auto r = store_->recount_comment(cid);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->video_id, kVideo);
  EXPECT_EQ((*r)->truth.likes, 3);
  EXPECT_EQ((*r)->truth.dislikes, 2);
  EXPECT_EQ((*r)->truth.replies_count, 2);
  EXPECT_EQ((*r)->stored.likes, (*r)->truth.likes);
  EXPECT_EQ((*r)->stored.dislikes, (*r)->truth.dislikes);
  EXPECT_EQ((*r)->stored.replies_count, (*r)->truth.replies_count);

  WriteSet drift;
  drift.mutations.push_back(MetricsDelta{cid, 5, -1, 3, 78});
  ASSERT_TRUE(commit_sync(*store_, std::move(drift)).ok());
  r = store_->recount_comment(cid);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->truth.likes, 3);
  EXPECT_EQ((*r)->stored.likes, 8);
  EXPECT_EQ((*r)->stored.dislikes, 1);
  EXPECT_EQ((*r)->stored.replies_count, 5);
  EXPECT_EQ((*r)->stored.last_updated, 78);

  auto none = store_->recount_comment(uid(1, 99));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(RocksStoreTest, GetReactionsAndRegisters) {
  const Uuid c1 = uid(1, 1), c2 = uid(1, 2), c3 = uid(1, 3);
  const Uuid u2 = uid(0xA0, 2);
  WriteSet ws;
  ws.mutations.push_back(PutReaction{c1, kUser, kVideo, ReactionRow{ReactionType::like, 11, 1, uid(0x0F, 1)}});
  ws.mutations.push_back(PutReaction{c2, kUser, kVideo, ReactionRow{ReactionType::none, 12, 2, uid(0x0F, 2)}});
  ws.mutations.push_back(PutReaction{c3, u2, kVideo, ReactionRow{ReactionType::dislike, 13, 3, uid(0x0F, 3)}});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());

  auto r = commentd::testing::run_sync(store_->get_reactions(kVideo, kUser, {c1, c2, c3}, {}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], ReactionType::like);
  EXPECT_EQ((*r)[1], ReactionType::none);  // tombstone
  EXPECT_EQ((*r)[2], ReactionType::none);  // someone else's reaction
  auto other_video = commentd::testing::run_sync(store_->get_reactions(uid(0xB0, 1), kUser, {c1}, {}));
  ASSERT_TRUE(other_video.ok());
  EXPECT_EQ((*other_video)[0], ReactionType::none) << "reactions are looked up within the video";

  // A user with more reactions in the video than one scan reads is answered by point reads.
  WriteSet many;
  for (uint32_t i = 0; i < 100; ++i)
    many.mutations.push_back(PutReaction{uid(3, i), kUser, kVideo, ReactionRow{ReactionType::dislike, 20, 1, uid(0x0E, i)}});
  ASSERT_TRUE(commit_sync(*store_, std::move(many)).ok());
  auto lots = commentd::testing::run_sync(store_->get_reactions(kVideo, kUser, {uid(3, 99), c1, uid(3, 0), c3}, {}));
  ASSERT_TRUE(lots.ok());
  EXPECT_EQ((*lots)[0], ReactionType::dislike);
  EXPECT_EQ((*lots)[1], ReactionType::like);
  EXPECT_EQ((*lots)[2], ReactionType::dislike);
  EXPECT_EQ((*lots)[3], ReactionType::none);

  auto g = store_->get_registers({{c3, u2}, {c1, kUser}, {c1, u2}});
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ((*g)[0].type, ReactionType::dislike);
  EXPECT_EQ((*g)[0].node_id, 3u);
  EXPECT_EQ((*g)[1].type, ReactionType::like);
  EXPECT_EQ((*g)[2].timestamp, 0);

  auto empty = commentd::testing::run_sync(store_->get_reactions(kVideo, kUser, {}, {}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

// user_reactions and hidden_by_user have a (video, user) prefix bloom filter: a user's reads
// must be exact whether their rows are in the memtable, in table files (several, after
// reopens) or both, and for neighbouring pairs (same video other user, same user other video)
// that share part of the key.
TEST_F(RocksStoreTest, UserReadsAreExactAcrossMemtableAndTableFiles) {
  const Uuid v1 = uid(0xB0, 1), v2 = uid(0xB0, 2);
  std::map<std::tuple<Uuid, Uuid, Uuid>, ReactionType> truth;  // (video, user, comment)
  std::map<std::pair<Uuid, Uuid>, int> hidden;
  uint32_t n = 0;
  auto write_round = [&](uint32_t users) {
    WriteSet ws;
    for (uint32_t u = 0; u < users; ++u) {
      const Uuid user = uid(0xA0, u), video = u % 2 ? v1 : v2, comment = uid(4, n++ % 7);
      const ReactionType t = n % 3 == 0 ? ReactionType::none : (n % 3 == 1 ? ReactionType::like : ReactionType::dislike);
      ws.mutations.push_back(UserReactionPut{video, user, comment, t});
      truth[{video, user, comment}] = t;
      if (u % 5 == 0) {
        ws.mutations.push_back(HiddenMark{video, user, uid(5, n), true});
        ++hidden[{video, user}];
      }
    }
    ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  };
  write_round(40);
  reopen();  // into a table file
  write_round(60);
  reopen();  // a second one
  write_round(30);  // and the memtable
  std::vector<Uuid> comments;
  for (uint32_t c = 0; c < 7; ++c) comments.push_back(uid(4, c));
  for (const Uuid& video : {v1, v2, uid(0xB0, 3)})
    for (uint32_t u = 0; u < 70; ++u) {
      const Uuid user = uid(0xA0, u);
      auto r = commentd::testing::run_sync(store_->get_reactions(video, user, comments, {}));
      ASSERT_TRUE(r.ok());
      for (size_t c = 0; c < comments.size(); ++c) {
        auto it = truth.find({video, user, comments[c]});
        EXPECT_EQ((*r)[c], it == truth.end() ? ReactionType::none : it->second) << "user " << u << " comment " << c;
      }
      auto view = commentd::testing::run_sync(store_->get_user_view(video, user, {}));
      ASSERT_TRUE(view.ok());
      EXPECT_EQ(view->hidden, hidden.count({video, user}) > 0) << "user " << u;
    }
}

// Issue 7, defect 1: after a restart, reads of data spread over several table files with a
// cold block cache must equal what was written: every page of a long list (no early end
// with exhausted=true) and every counter (no default zero for a stored value). A cache-only
// (kBlockCacheTier) first attempt broke both on RocksDB 7.8.3.
TEST_F(RocksStoreTest, AfterRestartEveryReadIsComplete) {
  constexpr uint32_t kRounds = 4, kPerRound = 400;
  std::vector<Uuid> expected;  // newest first
  for (uint32_t round = 0; round < kRounds; ++round) {
    WriteSet metrics;
    for (uint32_t i = 0; i < kPerRound; ++i) {
      const uint32_t n = round * kPerRound + i;
      Comment c = make_comment(uid(1, n), kVideo, 1000 + n);
      c.content.append(200, 'x');  // enough bytes for several data blocks per file
      put(c);
      expected.insert(expected.begin(), c.id);
      metrics.mutations.push_back(MetricsDelta{c.id, static_cast<int64_t>(n % 7 + 1), 0,
                                               static_cast<int64_t>(n % 3), 1});
    }
    ASSERT_TRUE(commit_sync(*store_, std::move(metrics)).ok());
    reopen();  // recovery flushes the memtable: one more table file per round
  }

  // Every page, through the async read path, with a cold cache.
  std::vector<Uuid> seen;
  ScanRequest req;
  req.key = kVideo;
  req.max_rows = 37;
  for (int pages = 0; pages < 1000; ++pages) {
    auto r = commentd::testing::run_sync(store_->scan(req, {}));
    ASSERT_TRUE(r.ok()) << r.error().message;
    for (auto& c : r->rows) seen.push_back(c.id);
    if (r->exhausted) break;
    ASSERT_TRUE(r->last.has_value());
    req.after = r->last;
  }
  ASSERT_EQ(seen.size(), expected.size()) << "a page ended early";
  EXPECT_EQ(seen, expected);

  reopen();
  // Every counter, in pages of 20 as the service reads them.
  for (size_t at = 0; at < expected.size(); at += 20) {
    std::vector<Uuid> ids(expected.begin() + at,
                          expected.begin() + std::min(expected.size(), at + 20));
    auto m = commentd::testing::run_sync(store_->get_metrics(ids, {}));
    ASSERT_TRUE(m.ok()) << m.error().message;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint32_t n = static_cast<uint32_t>(expected.size() - 1 - (at + i));
      ASSERT_EQ((*m)[i].likes, static_cast<int64_t>(n % 7 + 1)) << "comment " << n;
      ASSERT_EQ((*m)[i].replies_count, static_cast<int64_t>(n % 3)) << "comment " << n;
    }
  }
  reopen();
  for (uint32_t n = 0; n < kRounds * kPerRound; n += 97) {
    auto g = commentd::testing::run_sync(store_->get_comment(uid(1, n), {}));
    ASSERT_TRUE(g.ok()) << g.error().message;
    ASSERT_TRUE(g->has_value()) << n;
  }
}

TEST_F(RocksStoreTest, ReadPastItsDeadlineIsNotRun) {
  Comment c = make_comment(uid(1, 1), kVideo, 100);
  put(c);
  Deadline past{Deadline::clock::now() - std::chrono::milliseconds(1)};
  auto g = commentd::testing::run_sync(store_->get_comment(c.id, past));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, Errc::deadline_exceeded);
  EXPECT_EQ(g.error().client_code(), "deadline_exceeded");
  auto ok = commentd::testing::run_sync(store_->get_comment(c.id, Deadline::after(std::chrono::seconds(30))));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->has_value());
}

TEST_F(RocksStoreTest, ListIdsAndOutbox) {
  WriteSet ws;
  for (uint32_t i = 0; i < 5; ++i) ws.mutations.push_back(MetricsDelta{uid(1, i), 1, 0, 0, 0});
  ws.mutations.push_back(AppendOutbox{"topic-a", "k1", "payload-1"});
  ws.mutations.push_back(AppendOutbox{"topic-b", "k2", "payload-2"});
  ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
  auto ids = store_->list_ids(Store::IdTable::comments, std::nullopt, 3);
  ASSERT_TRUE(ids.ok());
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], uid(1, 0));
  auto rest = store_->list_ids(Store::IdTable::comments, ids->back(), 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[0], uid(1, 3));
  auto out = store_->read_outbox(0, 10);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  EXPECT_LT((*out)[0].first, (*out)[1].first);
  EXPECT_NE((*out)[0].second.find("payload-1"), std::string::npos);
}

}  // namespace
}  // namespace commentd::store::rocks

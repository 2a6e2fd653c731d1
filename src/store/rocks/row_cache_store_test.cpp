// The RocksStore's row caches (row_cache.h) against the real store: repeated reads are hits,
// every write path (the writer's group commit and the applier's commit_owned) is seen by the
// next read, and, under concurrent readers and writers, no read returns a value older than
// the last acknowledged write.
#include "store/rocks/rocks_store_fixture.h"

namespace commentd::store::rocks::test {
namespace {

using commentd::testing::run_sync;

class RowCacheStoreTest : public RocksStoreTest {
 protected:
  RowCacheStats& rs() { return store_->stats().rows; }
  std::optional<Comment> comment(const Uuid& id) {
    auto r = run_sync(store_->get_comment(id, {}));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }
  Store::UserView view(const Uuid& video, const Uuid& user) {
    auto r = run_sync(store_->get_user_view(video, user, {}));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : Store::UserView{};
  }
  std::vector<ReactionType> reactions(const Uuid& user, std::vector<Uuid> ids) {
    auto r = run_sync(store_->get_reactions(kVideo, user, ids, {}));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<ReactionType>{};
  }
  void commit(WriteSet ws) {
    auto r = commit_sync(*store_, std::move(ws));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  // The same files, opened again with the row caches off: every read goes to RocksDB.
  void reopen_without_row_cache() {
    store_->close();
    store_.reset();
    RocksOptions o;
    o.data_dir = dir_.str();
    o.sync_writes = false;
    o.row_cache_bytes = 0;
    store_ = std::move(*RocksStore::open(o));
  }
  WriteSet edit_ws(Comment c, uint64_t from_version) {
    WriteSet ws;
    ws.preconditions.push_back(CommentAt{c.id, from_version});
    c.version = from_version + 1;
    ws.mutations.push_back(PutComment{c});
    return ws;
  }
};

TEST_F(RowCacheStoreTest, RepeatedReadsAreHits) {
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  put(c);
  ASSERT_TRUE(comment(c.id));
  uint64_t hits = rs().hits.load();
  ASSERT_TRUE(comment(c.id));
  EXPECT_FALSE(comment(uid(1, 2)));  // absence is cached too
  EXPECT_FALSE(comment(uid(1, 2)));
  (void)view(kVideo, kUser);
  (void)view(kVideo, kUser);
  (void)reactions(kUser, {c.id});  // filled by the view's miss
  (void)reactions(kUser, {c.id});
  EXPECT_EQ(rs().hits.load(), hits + 5);
}

// try_get_comment (the service's synchronous path) answers exactly what the row cache holds:
// nothing before a read filled it, the row (or its absence) after, the edited row after an
// edit's read, and nothing with the row caches off.
TEST_F(RowCacheStoreTest, TryGetCommentAnswersWhatTheRowCacheHolds) {
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  put(c);
  EXPECT_FALSE(store_->try_get_comment(c.id));
  ASSERT_TRUE(comment(c.id));
  auto held = store_->try_get_comment(c.id);
  ASSERT_TRUE(held && *held);
  EXPECT_EQ((*held)->content, c.content);
  EXPECT_FALSE(comment(uid(1, 2)));
  held = store_->try_get_comment(uid(1, 2));
  ASSERT_TRUE(held);
  EXPECT_FALSE(*held);  // known absent
  c.content = "edited";
  commit(edit_ws(c, c.version));
  held = store_->try_get_comment(c.id);
  if (held) {  // an edit invalidates the row; a later read fills it again
    ASSERT_TRUE(*held);
    EXPECT_EQ((*held)->content, "edited");
  }
  ASSERT_TRUE(comment(c.id));
  held = store_->try_get_comment(c.id);
  ASSERT_TRUE(held && *held);
  EXPECT_EQ((*held)->content, "edited");
  reopen_without_row_cache();
  ASSERT_TRUE(comment(c.id));
  EXPECT_FALSE(store_->try_get_comment(c.id));
}

// A list request reads the user's view, then their reactions: a user missing the first (a
// first read of the video) gets both from one hop, and what was filled is storage's.
TEST_F(RowCacheStoreTest, AViewMissAlsoFillsTheUsersReactions) {
  Comment a = make_comment(uid(1, 1), kVideo, 1000), b = make_comment(uid(1, 2), kVideo, 1001);
  put(a);
  put(b);
  WriteSet ws;
  ws.mutations.push_back(UserReactionPut{kVideo, kUser, b.id, ReactionType::dislike});
  commit(std::move(ws));
  reopen();  // cold caches
  const uint64_t misses = rs().misses.load();
  EXPECT_EQ(view(kVideo, kUser).recent_until, 0);
  EXPECT_EQ(rs().misses.load(), misses + 1);
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector<ReactionType>{ReactionType::none, ReactionType::dislike}));
  EXPECT_EQ(rs().misses.load(), misses + 1) << "the reactions were read with the view";
  // Already cached reactions are not read again (nothing to refill), and a write after the
  // read ahead is seen.
  WriteSet like;
  like.mutations.push_back(UserReactionPut{kVideo, kUser, a.id, ReactionType::like});
  commit(std::move(like));
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector<ReactionType>{ReactionType::like, ReactionType::dislike}));
}

// try_view_and_reactions (the service's synchronous list path) answers only when both rows
// are held: nothing before a read, both after a view's miss filled them (counted as hits
// only then), a reaction written through, nothing after a hidden mark invalidated the view
// until it is read again, and nothing with the row caches off.
// What it does not hold it reads on the calling thread (the read gate lets it: the rows are
// in the memtable) and keeps; what it holds it answers from memory, counted as hits.
TEST_F(RowCacheStoreTest, TryViewAndReactionsAnswersFromTheCachesOrReadsWhatTheyLack) {
  Comment a = make_comment(uid(1, 1), kVideo, 1000), b = make_comment(uid(1, 2), kVideo, 1001);
  put(a);
  put(b);
  uint64_t hits = rs().hits.load(), misses = rs().misses.load(), reads = store_->stats().inline_reads.load();
  auto held = store_->try_view_and_reactions(kVideo, kUser);
  ASSERT_TRUE(held && held->reactions);
  EXPECT_FALSE(held->view.hidden);
  EXPECT_TRUE(held->reactions->empty());
  EXPECT_EQ(rs().misses.load(), misses + 2) << "both read";
  EXPECT_EQ(store_->stats().inline_reads.load(), reads + 1) << "in one inline read";
  held = store_->try_view_and_reactions(kVideo, kUser);
  ASSERT_TRUE(held && held->reactions);
  EXPECT_EQ(rs().hits.load(), hits + 2) << "then both held";
  EXPECT_EQ(store_->stats().inline_reads.load(), reads + 1);

  WriteSet like;
  like.mutations.push_back(UserReactionPut{kVideo, kUser, b.id, ReactionType::like});
  commit(std::move(like));
  held = store_->try_view_and_reactions(kVideo, kUser);
  ASSERT_TRUE(held && held->reactions);
  EXPECT_EQ(*held->reactions, (std::vector<std::pair<Uuid, ReactionType>>{{b.id, ReactionType::like}}));

  WriteSet hm;
  hm.mutations.push_back(HiddenMark{kVideo, kUser, a.id, true});
  commit(std::move(hm));
  misses = rs().misses.load();
  held = store_->try_view_and_reactions(kVideo, kUser);
  ASSERT_TRUE(held && held->reactions);
  EXPECT_TRUE(held->view.hidden) << "the invalidated view is read again";
  EXPECT_EQ(*held->reactions, (std::vector<std::pair<Uuid, ReactionType>>{{b.id, ReactionType::like}}));
  EXPECT_EQ(rs().misses.load(), misses + 1) << "the view's miss only";
  EXPECT_TRUE(view(kVideo, kUser).hidden);

  // Without a row cache every answer is a read. The reopened store's rows may be in table
  // files: a slow table-file read closes the gate (read_gate.h), and then it declines.
  reopen_without_row_cache();
  for (int i = 0; i < 2; ++i) {
    held = store_->try_view_and_reactions(kVideo, kUser);
    if (i == 1 && !held) {
      EXPECT_GT(store_->stats().file_reads.load(), 0u) << "declined with the gate open";
      break;
    }
    ASSERT_TRUE(held && held->reactions) << "read each time";
    EXPECT_TRUE(held->view.hidden);
    EXPECT_EQ(held->reactions->size(), 1u);
  }
}

TEST_F(RowCacheStoreTest, EveryWriteIsSeenByTheNextRead) {
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  put(c);
  ASSERT_EQ(comment(c.id)->version, 1u);
  commit(edit_ws(c, 1));
  EXPECT_EQ(comment(c.id)->version, 2u);

  EXPECT_EQ(view(kVideo, kUser).recent_until, 0);
  EXPECT_FALSE(view(kVideo, kUser).hidden);
  WriteSet rw;
  rw.mutations.push_back(RecentWrite{kVideo, kUser, 5000});
  commit(std::move(rw));
  EXPECT_EQ(view(kVideo, kUser).recent_until, 5000);
  WriteSet hm;
  hm.mutations.push_back(HiddenMark{kVideo, kUser, c.id, true});
  commit(std::move(hm));
  EXPECT_TRUE(view(kVideo, kUser).hidden);
  EXPECT_TRUE(*run_sync(store_->has_hidden(kVideo, kUser, {})));

  EXPECT_EQ(reactions(kUser, {c.id})[0], ReactionType::none);
  WriteSet ur;
  ur.mutations.push_back(UserReactionPut{kVideo, kUser, c.id, ReactionType::like});
  commit(std::move(ur));
  EXPECT_EQ(reactions(kUser, {c.id})[0], ReactionType::like);

  // The applier's path (commit_owned, its own thread in the server) is seen too.
  WriteSet owned;
  ReactionRow row;
  row.type = ReactionType::dislike;
  owned.mutations.push_back(PutReaction{c.id, kUser, kVideo, row});
  ASSERT_TRUE(store_->commit_owned(std::move(owned)).ok());
  EXPECT_EQ(reactions(kUser, {c.id})[0], ReactionType::dislike);
  ASSERT_TRUE(store_->commit_owned(edit_ws(c, 2)).ok());
  EXPECT_EQ(comment(c.id)->version, 3u);
  EXPECT_GT(rs().invalidations.load(), 0u);
}

// A user's reactions in a video are written through by both write paths: the next page read
// is a hit and sees the write (a reaction, a change, a removal, another comment).
TEST_F(RowCacheStoreTest, AUsersReactionsAreWrittenThroughByBothWritePaths) {
  Comment a = make_comment(uid(1, 1), kVideo, 1000), b = make_comment(uid(1, 2), kVideo, 1001);
  put(a);
  put(b);
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector{ReactionType::none, ReactionType::none}));
  auto user_put = [&](const Uuid& id, ReactionType t) {
    WriteSet ws;
    ws.mutations.push_back(UserReactionPut{kVideo, kUser, id, t});
    commit(std::move(ws));
  };
  auto owned_put = [&](const Uuid& id, ReactionType t) {
    WriteSet ws;
    ReactionRow row;
    row.type = t;
    ws.mutations.push_back(PutReaction{id, kUser, kVideo, row});
    ASSERT_TRUE(store_->commit_owned(std::move(ws)).ok());
  };
  const uint64_t misses = rs().misses.load();
  user_put(a.id, ReactionType::like);
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector{ReactionType::like, ReactionType::none}));
  owned_put(b.id, ReactionType::dislike);
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector{ReactionType::like, ReactionType::dislike}));
  owned_put(a.id, ReactionType::dislike);
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector{ReactionType::dislike, ReactionType::dislike}));
  user_put(b.id, ReactionType::none);
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector{ReactionType::dislike, ReactionType::none}));
  EXPECT_EQ(rs().misses.load(), misses);  // every read after a write was a hit
  EXPECT_EQ(rs().updates.load(), 4u);
  // What the cache answers is what RocksDB holds: a store without the cache reads the same.
  reopen_without_row_cache();
  EXPECT_EQ(reactions(kUser, {a.id, b.id}), (std::vector{ReactionType::dislike, ReactionType::none}));
}

TEST_F(RowCacheStoreTest, OffMeansEveryReadGoesToStorage) {
  reopen_without_row_cache();
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  put(c);
  ASSERT_TRUE(comment(c.id));
  ASSERT_TRUE(comment(c.id));
  EXPECT_EQ(rs().hits.load(), 0u);
}

// Readers on three threads, a writer acknowledging increasing values of each cached row. A
// read that starts after a write was acknowledged must see that write or a later one.
TEST_F(RowCacheStoreTest, NeverOlderThanTheLastAcknowledgedWrite) {
  Comment c = make_comment(uid(1, 1), kVideo, 1000);
  put(c);
  constexpr int kWrites = 300;
  std::vector<Uuid> liked;  // the comments liked by write i: uid(2, i)
  for (int i = 1; i <= kWrites; ++i) liked.push_back(uid(2, static_cast<uint32_t>(i)));
  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  std::atomic<int> stale{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      while (!stop.load()) {
        const int before = acked.load();
        std::string what;
        if (t == 0) {
          auto r = run_sync(store_->get_comment(c.id, {}));
          if (!r.ok() || !*r || (*r)->version < static_cast<uint64_t>(before) + 1) what = "comment";
        } else if (t == 1) {
          auto r = run_sync(store_->get_user_view(kVideo, kUser, {}));
          if (!r.ok() || r->recent_until < before) what = "user view";
        } else {
          // Write i moves the user's one like to liked[i - 1]: the like read must be at the
          // last acknowledged write's comment or a later one (a user with at most 64
          // reactions is served from the scan, which is what the cache holds).
          if (before > 0) {
            auto r = run_sync(store_->get_reactions(kVideo, kUser, liked, {}));
            int at = -1;
            if (r.ok())
              for (size_t j = 0; j < r->size(); ++j)
                if ((*r)[j] == ReactionType::like) at = static_cast<int>(j);
            if (at < before - 1) what = "reactions";
          }
        }
        reads.fetch_add(1);
        if (!what.empty()) {
          stale.fetch_add(1);
          ADD_FAILURE() << what << " older than write " << before;
          return;
        }
      }
    });
  for (int i = 1; i <= kWrites; ++i) {
    WriteSet ws = edit_ws(c, static_cast<uint64_t>(i));
    ws.mutations.push_back(RecentWrite{kVideo, kUser, i});
    // Each write replaces the previous like, so the user never holds more than a scan's worth.
    if (i > 1)
      ws.mutations.push_back(UserReactionPut{kVideo, kUser, liked[i - 2], ReactionType::none});
    ws.mutations.push_back(UserReactionPut{kVideo, kUser, liked[i - 1], ReactionType::like});
    commit(std::move(ws));
    acked.store(i);
    // Every 10 writes, wait for a read: the readers race the writes on any machine's timing
    // (counting reads afterwards failed on a loaded one: 268 reads for 300 writes).
    if (i % 10 == 0)
      for (const int r0 = reads.load(); reads.load() == r0 && stale.load() == 0;) std::this_thread::yield();
  }
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(stale.load(), 0);
  EXPECT_GE(reads.load(), kWrites / 10);
  EXPECT_GT(rs().hits.load(), 0u);
}

}  // namespace
}  // namespace commentd::store::rocks::test

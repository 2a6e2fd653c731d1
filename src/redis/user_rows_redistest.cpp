// The per-user rows cache against a real Redis, single node and 3-master cluster: a miss
// hands out a token and the fill under it is served; an invalidation between the lookup and
// the fill (a write that raced the storage read) refuses the fill; an invalidation drops the
// copy; an unreachable Redis is a miss without a token (the store reads storage, fills nothing).
// A written reaction row goes into the copy in place, the newer write timestamp winning; it
// refuses a fill in flight, and drops a copy it cannot order (the same time, another value),
// a full one, or one in another format.
// Written marks: a request's mark covers the owner's row of the same or an older write and is
// taken by it; a newer owner row is not covered; marks are per user and per comment.
// Refresh ahead: a copy near its TTL goes with the token to one lookup, whose fill renews it.
#include "redis/user_rows.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/clock.h"
#include "redis/test_env.h"
#include "testing/test_servers.h"

namespace commentd::redis {
namespace {

using namespace std::chrono_literals;
using testenv::kCluster;
using testenv::kSingle;

class UserRowsTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const char* env = GetParam();
    COMMENTD_REDIS_NODES(nodes, env);
    client_ = std::make_unique<Client>(loop_.ex(), ClientOptions{.nodes = nodes, .cluster = env == kCluster});
    cache_ = std::make_unique<RedisUserRows>(*client_, UserRowsOptions{.prefix = prefix_, .max_reactions = 3});
  }
  store::UserRowsCache::Lookup lookup(const Uuid& v, const Uuid& u) {
    return loop_.run(cache_->lookup(v, u, Deadline::after(5s)));
  }
  void fill(const Uuid& v, const Uuid& u, std::string token, const store::UserRows& rows) {
    loop_.run([&]() -> asio::awaitable<int> {
      co_await cache_->fill(v, u, std::move(token), rows, Deadline::after(5s));
      co_return 0;
    }());
  }
  // after_write: `dropped` keys, `marked` rows (a request's), `unmarked` rows (an owner's).
  void after(std::vector<std::pair<Uuid, Uuid>> dropped, std::vector<store::RowMark> marked = {},
                  std::vector<store::RowMark> unmarked = {}) {
    std::vector<store::UserRowsCache::WrittenRow> written;
    for (auto& m : marked) written.push_back({m, true});
    for (auto& m : unmarked) written.push_back({m, false});
    loop_.run([&]() -> asio::awaitable<int> {
      co_await cache_->after_write(std::move(dropped), std::move(written), Deadline::after(5s));
      co_return 0;
    }());
  }
  void wrote(std::vector<store::RowMark> rows) { after({}, {}, std::move(rows)); }
  std::vector<bool> take(std::vector<store::RowMark> rows) {
    return loop_.run(cache_->take_written(std::move(rows), Deadline::after(5s)));
  }
  store::RowMark row(const Uuid& comment, const Uuid& user, int64_t at, ReactionType t = ReactionType::like) {
    return store::RowMark{video_, user, comment, at, t};
  }

  testenv::Loop loop_{1};
  const std::string prefix_ = testenv::unique_prefix();
  std::unique_ptr<Client> client_;
  std::unique_ptr<RedisUserRows> cache_;
  ManualClock clock_{1'700'000'000'000};
  UuidGenerator ids_{clock_, 11};
  Uuid video_ = ids_.next(), user_ = ids_.next(), other_ = ids_.next();
};

TEST_P(UserRowsTest, AMissFillsUnderItsTokenAndAnInvalidationDropsTheCopy) {
  auto l = lookup(video_, user_);
  ASSERT_FALSE(l.rows);
  ASSERT_TRUE(l.token);
  store::UserRows rows;
  rows.view.recent_until = 42;
  rows.reactions = {{ids_.next(), ReactionType::like, 77}, {ids_.next(), ReactionType::none, 78}};
  fill(video_, user_, *l.token, rows);
  auto hit = lookup(video_, user_);
  ASSERT_TRUE(hit.rows);
  EXPECT_EQ(hit.rows->view.recent_until, 42);
  EXPECT_EQ(hit.rows->reactions, rows.reactions);
  EXPECT_EQ(cache_->stats().fills.load(), 1u);
  EXPECT_FALSE(lookup(video_, other_).rows) << "per user";

  after({{video_, user_}, {video_, other_}});
  EXPECT_EQ(cache_->stats().invalidations.load(), 2u);
  auto again = lookup(video_, user_);
  EXPECT_FALSE(again.rows);
  EXPECT_TRUE(again.token);
}

TEST_P(UserRowsTest, AWriteBetweenTheLookupAndTheFillRefusesTheFill) {
  auto l = lookup(video_, user_);
  ASSERT_TRUE(l.token);
  store::UserRows before;  // what the storage read saw
  after({{video_, user_}});  // a write landed after that read, before the fill
  fill(video_, user_, *l.token, before);
  EXPECT_EQ(cache_->stats().fills_refused.load(), 1u);
  auto next = lookup(video_, user_);
  EXPECT_FALSE(next.rows) << "the old rows must not be served";
  // A second reader's fill under the fresh token is stored.
  store::UserRows after;
  after.reactions = {{ids_.next(), ReactionType::dislike, 5}};
  fill(video_, user_, *next.token, after);
  auto hit = lookup(video_, user_);
  ASSERT_TRUE(hit.rows);
  EXPECT_EQ(hit.rows->reactions, after.reactions);
}

// Refresh ahead: a copy read with less than the window left comes with the token to the one
// lookup that asks first, and that lookup's fill (a fresh storage read) lives a new TTL; a
// write since the lookup refuses the fill, and that copy still expires at its TTL. The window
// is at most half the TTL (asked 3.6 s of 4 s: 2 s).
TEST_P(UserRowsTest, ACopyNearItsTtlGoesWithTheTokenToOneLookup) {
  cache_ = std::make_unique<RedisUserRows>(
      *client_, UserRowsOptions{.prefix = prefix_, .ttl_ms = 4000, .refresh_ahead_ms = 3600});
  store::UserRows first;
  first.view.recent_until = 1;
  for (const Uuid& u : {user_, other_}) {
    auto miss = lookup(video_, u);
    ASSERT_TRUE(miss.token);
    fill(video_, u, *miss.token, first);
  }
  std::this_thread::sleep_for(1400ms);  // 2.6 s left: outside the window
  auto early = lookup(video_, user_);
  ASSERT_TRUE(early.rows);
  EXPECT_FALSE(early.token) << "outside the window (half the TTL, not the 3.6 s asked)";
  std::this_thread::sleep_for(1200ms);  // 1.4 s left: inside
  auto due = lookup(video_, user_), due_other = lookup(video_, other_);
  ASSERT_TRUE(due.rows);
  ASSERT_TRUE(due.token) << "the first lookup in the window refreshes the copy";
  ASSERT_TRUE(due_other.token);
  auto again = lookup(video_, user_);
  ASSERT_TRUE(again.rows);
  EXPECT_FALSE(again.token) << "one lookup per copy refreshes it";
  EXPECT_EQ(cache_->stats().refreshes_ahead.load(), 2u);
  wrote({row(ids_.next(), other_, 100)});  // a write after other_'s lookup, before its fill
  store::UserRows second;
  second.view.recent_until = 2;
  fill(video_, user_, *due.token, second);
  fill(video_, other_, *due_other.token, second);
  EXPECT_EQ(cache_->stats().fills_refused.load(), 1u);
  std::this_thread::sleep_for(1800ms);  // past the first copies' TTL
  auto refilled = lookup(video_, user_);
  ASSERT_TRUE(refilled.rows) << "the refill lives its own TTL";
  EXPECT_EQ(refilled.rows->view.recent_until, 2);
  EXPECT_FALSE(lookup(video_, other_).rows) << "a refused refill leaves the copy to its TTL, never past it";
}

TEST_P(UserRowsTest, TooManyReactionsAreNotCached) {
  auto l = lookup(video_, user_);
  store::UserRows rows;
  for (int i = 0; i < 4; ++i) rows.reactions.push_back({ids_.next(), ReactionType::like, i});
  fill(video_, user_, *l.token, rows);
  EXPECT_EQ(cache_->stats().too_big.load(), 1u);
  EXPECT_FALSE(lookup(video_, user_).rows);
}

TEST_P(UserRowsTest, AnUnreachableRedisIsAMissWithoutAToken) {
  Client dead(loop_.ex(), ClientOptions{.nodes = {{"127.0.0.1", testenv::closed_port()}},
                                        .connect_timeout = 100ms, .command_timeout = 100ms});
  RedisUserRows down(dead, UserRowsOptions{});
  auto l = loop_.run(down.lookup(video_, user_, Deadline::after(1s)));
  EXPECT_FALSE(l.rows);
  EXPECT_FALSE(l.token) << "no token: the store must not fill";
  EXPECT_GT(down.stats().errors.load(), 0u);
}

TEST_P(UserRowsTest, AWrittenReactionRowGoesIntoTheCopyAndTheNewerRowWins) {
  const Uuid c1 = ids_.next(), c2 = ids_.next();
  auto l = lookup(video_, user_);
  ASSERT_TRUE(l.token);
  store::UserRows rows;
  rows.view = {.hidden = true, .recent_until = 42};
  rows.reactions = {{c1, ReactionType::like, 100}};
  fill(video_, user_, *l.token, rows);
  auto reactions = [&] {
    auto hit = lookup(video_, user_);
    EXPECT_TRUE(hit.rows) << "the copy stays";
    if (hit.rows) {
      EXPECT_TRUE(hit.rows->view.hidden);
      EXPECT_EQ(hit.rows->view.recent_until, 42);
    }
    return hit.rows ? hit.rows->reactions : std::vector<store::UserReaction>{};
  };
  wrote({row(c1, user_, 200, ReactionType::dislike)});
  EXPECT_EQ(reactions(), (std::vector<store::UserReaction>{{c1, ReactionType::dislike, 200}}));
  wrote({row(c1, user_, 150, ReactionType::like)});  // an older op's row, landing later
  wrote({row(c2, user_, 300, ReactionType::none)});   // a withdrawal of a row the copy lacks
  wrote({row(c2, user_, 250, ReactionType::like)});
  EXPECT_EQ(reactions(), (std::vector<store::UserReaction>{{c1, ReactionType::dislike, 200}, {c2, ReactionType::none, 300}}));
  wrote({row(c1, user_, 200, ReactionType::dislike)});  // the owner's write of the same row
  EXPECT_EQ(reactions().size(), 2u);
  EXPECT_EQ(cache_->stats().updates.load(), 5u);
  EXPECT_EQ(cache_->stats().invalidations.load(), 0u);
  // Written in place, the copy keeps the expiry its fill gave it (the staleness bound).
  auto ttl = loop_.run(client_->command({"PTTL", prefix_ + "ur:{" + video_.str() + "}:" + user_.str()}, Deadline::after(5s)));
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 0);
  EXPECT_LE(ttl->integer, UserRowsOptions{}.ttl_ms);
  wrote({row(c1, other_, 400)});
  EXPECT_FALSE(lookup(video_, other_).rows) << "no copy of another user is made";
}

TEST_P(UserRowsTest, AWrittenRowRefusesAFillInFlightAndDropsACopyItCannotOrder) {
  const Uuid c1 = ids_.next();
  auto l = lookup(video_, user_);
  wrote({row(c1, user_, 500)});  // durable after the fill's storage read began
  fill(video_, user_, *l.token, store::UserRows{});
  EXPECT_EQ(cache_->stats().fills_refused.load(), 1u);

  auto fresh = [&](std::vector<store::UserReaction> reactions) {
    auto m = lookup(video_, user_);
    ASSERT_TRUE(m.token);
    store::UserRows rows;
    rows.reactions = std::move(reactions);
    fill(video_, user_, *m.token, rows);
    ASSERT_TRUE(lookup(video_, user_).rows);
  };
  // The same time and another value: CQL keeps one of them by value; the copy goes.
  fresh({{c1, ReactionType::like, 500}});
  wrote({row(c1, user_, 500, ReactionType::dislike)});
  EXPECT_FALSE(lookup(video_, user_).rows);
  // A row that would take a copy past max_reactions (3).
  fresh({{ids_.next(), ReactionType::like, 1}, {ids_.next(), ReactionType::like, 2}, {ids_.next(), ReactionType::like, 3}});
  wrote({row(c1, user_, 600)});
  EXPECT_FALSE(lookup(video_, user_).rows);
  EXPECT_EQ(cache_->stats().invalidations.load(), 2u);
  // A copy in another format (the previous release's): not read, and deleted by a write.
  const std::string key = prefix_ + "ur:{" + video_.str() + "}:" + user_.str();
  ASSERT_TRUE(loop_.run(client_->command({"SET", key, "h0 5\n"}, Deadline::after(5s))));
  auto old = lookup(video_, user_);
  EXPECT_FALSE(old.rows);
  EXPECT_FALSE(old.token) << "not ours: read storage, do not fill";
  wrote({row(c1, user_, 700)});
  auto after = lookup(video_, user_);
  EXPECT_FALSE(after.rows);
  EXPECT_TRUE(after.token);
}

TEST_P(UserRowsTest, ARequestsMarkCoversTheOwnersSameOrOlderRowOnce) {
  const Uuid c1 = ids_.next(), c2 = ids_.next();
  // Two requests wrote their rows: user_ on c1 at 5000 (a like), other_ on c2 at 7000.
  after({{video_, user_}}, {row(c1, user_, 5000)});
  after({}, {row(c2, other_, 7000, ReactionType::none)});
  EXPECT_EQ(cache_->stats().marks.load(), 2u);
  EXPECT_EQ(cache_->stats().invalidations.load(), 1u);

  // The owner's rows: the same write on c1, an older one of other_ on c2 (a newer write
  // covers it), a row of a user no request marked, and user_'s row on c2 (marks are per comment).
  auto hit = take({row(c1, user_, 5000), row(c2, other_, 6000, ReactionType::dislike), row(c1, other_, 5000),
                   row(c2, user_, 7000, ReactionType::none)});
  EXPECT_EQ(hit, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(cache_->stats().marks_used.load(), 2u);
  // c1's mark was taken; c2's is newer than the row asked, so it stays for its own op.
  EXPECT_EQ(take({row(c1, user_, 5000), row(c2, other_, 7000, ReactionType::none)}), (std::vector<bool>{false, true}));
  EXPECT_EQ(take({row(c2, other_, 7000, ReactionType::none)}), (std::vector<bool>{false}));
}

TEST_P(UserRowsTest, AMarkCoversNoNewerRowNorAnotherValueAtItsTime) {
  const Uuid c = ids_.next();
  after({}, {row(c, user_, 5000, ReactionType::like)});
  // Same write timestamp, another value (two ops of one node in one millisecond): CQL keeps
  // the larger value, so the owner's write may change the cell and must go.
  EXPECT_EQ(take({row(c, user_, 5000, ReactionType::dislike)}), (std::vector<bool>{false}));
  after({}, {row(c, user_, 5000, ReactionType::like)});
  EXPECT_EQ(take({row(c, user_, 5001)}), (std::vector<bool>{false})) << "a newer row is not covered";
  // Two requests of the user racing through two nodes: the newer mark stays.
  after({}, {row(c, user_, 9000, ReactionType::dislike)});
  after({}, {row(c, user_, 8000, ReactionType::like)});
  EXPECT_EQ(take({row(c, user_, 8000, ReactionType::like)}), (std::vector<bool>{true}));
  EXPECT_EQ(take({row(c, user_, 9000, ReactionType::dislike)}), (std::vector<bool>{true}));
}

// Marks are kept per op minute (a hash stops growing once its minute is past) and go with
// their hash's TTL: an owner that comes later writes the rows itself.
TEST_P(UserRowsTest, MarksLiveInTheirOpsMinuteAndGoWithTheTtl) {
  const Uuid c = ids_.next();
  const int64_t minute = 60'000'000;  // write timestamps are microseconds
  after({}, {row(c, user_, minute + 5)});
  EXPECT_EQ(take({row(c, user_, minute - 1)}), (std::vector<bool>{false})) << "another minute's hash";
  EXPECT_EQ(take({row(c, user_, minute + 5)}), (std::vector<bool>{true}));

  RedisUserRows brief(*client_, UserRowsOptions{.prefix = testenv::unique_prefix(), .mark_ttl_ms = 200});
  std::vector<store::UserRowsCache::WrittenRow> written{{row(c, user_, 5000), true}};
  loop_.run([&]() -> asio::awaitable<int> {
    co_await brief.after_write({}, std::move(written), Deadline::after(5s));
    co_return 0;
  }());
  EXPECT_EQ(brief.stats().marks.load(), 1u);
  std::this_thread::sleep_for(400ms);  // past the TTL Redis enforces, not timing commentd
  auto hit = loop_.run(brief.take_written({row(c, user_, 5000)}, Deadline::after(5s)));
  EXPECT_EQ(hit, (std::vector<bool>{false}));
}

TEST_P(UserRowsTest, AnUnreachableRedisCoversNothing) {
  Client dead(loop_.ex(), ClientOptions{.nodes = {{"127.0.0.1", testenv::closed_port()}},
                                        .connect_timeout = 100ms, .command_timeout = 100ms});
  RedisUserRows down(dead, UserRowsOptions{});
  std::vector<std::pair<Uuid, Uuid>> keys{{video_, user_}};
  std::vector<store::UserRowsCache::WrittenRow> written{{row(video_, user_, 1), true}};
  loop_.run([&]() -> asio::awaitable<int> {
    co_await down.after_write(std::move(keys), std::move(written), Deadline::after(1s));
    co_return 0;
  }());
  EXPECT_EQ(down.stats().marks.load(), 0u);
  auto hit = loop_.run(down.take_written({row(video_, user_, 1), row(other_, user_, 1)}, Deadline::after(1s)));
  EXPECT_EQ(hit, (std::vector<bool>{false, false})) << "the owner writes every row";
  EXPECT_GT(down.stats().errors.load(), 0u);
}

// Near copies (a single Redis): two nodes' caches on one Redis. B's second read of a copy it
// read from Redis is served from its own memory (no Redis call); a reaction written through A
// drops B's near copy when A's message comes, and B reads the new row; a change through B
// drops its own near copy before after_write returns, so B's next read misses at once.
// One Redis only: in a cluster a PUBLISH crosses its bus, unordered with the writer's reply.
class NearUserRowsTest : public UserRowsTest {};

TEST_P(NearUserRowsTest, NearCopiesAreServedWithoutRedisAndDroppedByAChangeThroughAnyNode) {
  COMMENTD_REDIS_NODES(nodes, kSingle);
  UserRowsOptions o{.prefix = prefix_, .near_ttl_ms = 10'000};
  o.near.host = nodes[0].first;
  o.near.port = nodes[0].second;
  cache_ = std::make_unique<RedisUserRows>(*client_, o);  // node A
  RedisUserRows b(*client_, o);                            // node B
  for (int i = 0; i < 500 && !(b.near_stats()->up && cache_->near_stats()->up); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(b.near_stats()->up.load());
  auto read_b = [&] { return loop_.run(b.lookup(video_, user_, Deadline::after(5s))); };

  auto miss = lookup(video_, user_);
  ASSERT_TRUE(miss.token);
  store::UserRows rows;
  rows.view.recent_until = 7;
  fill(video_, user_, *miss.token, rows);
  ASSERT_TRUE(read_b().rows);
  EXPECT_EQ(b.stats().hits.load(), 1u);
  EXPECT_EQ(b.stats().near_kept.load(), 1u);
  auto near = read_b();
  ASSERT_TRUE(near.rows);
  EXPECT_EQ(near.rows->view.recent_until, 7);
  EXPECT_FALSE(near.token);
  EXPECT_EQ(b.stats().near_hits.load(), 1u);
  EXPECT_EQ(b.stats().hits.load(), 1u) << "served without a Redis call";

  const Uuid c = ids_.next();
  wrote({row(c, user_, 500)});  // through A
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    auto r = read_b();
    seen = r.rows && r.rows->reactions.size() == 1 && r.rows->reactions[0].comment_id == c;
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(seen);
  EXPECT_GE(b.stats().near_dropped.load(), 1u);

  ASSERT_TRUE(read_b().rows);
  const uint64_t hits = b.stats().near_hits;
  ASSERT_TRUE(read_b().rows);
  ASSERT_EQ(b.stats().near_hits.load(), hits + 1) << "B holds a near copy";
  loop_.run([&]() -> asio::awaitable<int> {
    std::vector<std::pair<Uuid, Uuid>> dropped{{video_, user_}};
    std::vector<store::UserRowsCache::WrittenRow> written;
    co_await b.after_write(std::move(dropped), std::move(written), Deadline::after(5s));
    co_return 0;
  }());
  auto gone = read_b();
  EXPECT_FALSE(gone.rows) << "a change through B drops its near copy before after_write returns";
  EXPECT_TRUE(gone.token);

  EXPECT_EQ(RedisUserRows(*client_, UserRowsOptions{.prefix = prefix_}).near_stats(), nullptr) << "off by default";
}

// A near copy past half its life: the first read served by it asks for a renewal (renew, once),
// and renew() looks the shared copy up again and keeps it, so the next reads are near hits
// with a fresh life; a renewal that finds the shared copy in its refresh window hands out
// its token (the store then reads storage and fills).
TEST_P(NearUserRowsTest, ANearCopyPastHalfItsLifeIsRenewedBehindARead) {
  COMMENTD_REDIS_NODES(nodes, kSingle);
  UserRowsOptions o{.prefix = prefix_, .ttl_ms = 4000, .refresh_ahead_ms = 2000, .near_ttl_ms = 600};
  o.near.host = nodes[0].first;
  o.near.port = nodes[0].second;
  cache_ = std::make_unique<RedisUserRows>(*client_, o);
  for (int i = 0; i < 500 && !cache_->near_stats()->up; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(cache_->near_stats()->up.load());
  auto miss = lookup(video_, user_);
  ASSERT_TRUE(miss.token);
  fill(video_, user_, *miss.token, store::UserRows{});
  ASSERT_TRUE(lookup(video_, user_).rows);  // a Redis hit, kept
  auto young = lookup(video_, user_);
  ASSERT_TRUE(young.rows);
  EXPECT_FALSE(young.renew) << "in its first half";
  std::this_thread::sleep_for(400ms);
  auto old = lookup(video_, user_), again = lookup(video_, user_);
  ASSERT_TRUE(old.rows && again.rows);
  EXPECT_TRUE(old.renew) << "past half its life";
  EXPECT_FALSE(again.renew) << "one renewal per copy";
  EXPECT_EQ(cache_->stats().near_hits.load(), 3u);
  auto r = loop_.run(cache_->renew(video_, user_, Deadline::after(5s)));
  ASSERT_TRUE(r.rows);
  EXPECT_FALSE(r.token) << "the shared copy is not in its refresh window yet";
  EXPECT_EQ(cache_->stats().near_renewals.load(), 1u);
  EXPECT_EQ(cache_->stats().near_kept.load(), 2u);
  std::this_thread::sleep_for(400ms);  // past the first life, inside the renewed one
  auto renewed = lookup(video_, user_);
  ASSERT_TRUE(renewed.rows);
  EXPECT_EQ(cache_->stats().near_hits.load(), 4u);
  // 1.2 s of the shared copy's 4 s are gone; at 2.4 s it is in its 2 s window: the renewal's
  // lookup gets its token.
  std::this_thread::sleep_for(1300ms);
  auto due = loop_.run(cache_->renew(video_, user_, Deadline::after(5s)));
  ASSERT_TRUE(due.rows);
  EXPECT_TRUE(due.token) << "the shared copy near its end: this renewal refreshes it";
}

// The near copies hold at most near_rows reaction rows: the least recently used go first.
TEST_P(NearUserRowsTest, NearCopiesHoldAtMostTheirBudgetOfRows) {
  COMMENTD_REDIS_NODES(nodes, kSingle);
  UserRowsOptions o{.prefix = prefix_, .near_ttl_ms = 10'000, .near_rows = 3};
  o.near.host = nodes[0].first;
  o.near.port = nodes[0].second;
  cache_ = std::make_unique<RedisUserRows>(*client_, o);
  for (int i = 0; i < 500 && !cache_->near_stats()->up; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(cache_->near_stats()->up.load());
  store::UserRows two;
  two.reactions = {{ids_.next(), ReactionType::like, 1}, {ids_.next(), ReactionType::like, 2}};
  for (const Uuid& u : {user_, other_}) {
    auto miss = lookup(video_, u);
    ASSERT_TRUE(miss.token);
    fill(video_, u, *miss.token, two);
  }
  ASSERT_TRUE(lookup(video_, user_).rows);   // kept: 2 rows
  ASSERT_TRUE(lookup(video_, other_).rows);  // kept: 4 rows, so user_'s copy goes
  EXPECT_EQ(cache_->stats().near_kept.load(), 2u);
  ASSERT_TRUE(lookup(video_, other_).rows);
  EXPECT_EQ(cache_->stats().near_hits.load(), 1u);
  const uint64_t redis_hits = cache_->stats().hits;
  ASSERT_TRUE(lookup(video_, user_).rows);
  EXPECT_EQ(cache_->stats().hits.load(), redis_hits + 1) << "user_'s near copy was evicted";
  EXPECT_EQ(cache_->stats().near_hits.load(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Redis, UserRowsTest, ::testing::Values(kSingle, kCluster),
                         [](const auto& info) { return std::string(info.param == kSingle ? "Single" : "Cluster"); });
INSTANTIATE_TEST_SUITE_P(Redis, NearUserRowsTest, ::testing::Values(kSingle),
                         [](const auto&) { return std::string("Single"); });

}  // namespace
}  // namespace commentd::redis

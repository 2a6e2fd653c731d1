// CommentService against a real RocksStore: backpressure on the reaction log and
// read-your-writes through the overlay, driven deterministically (the applier's thread is
// not started; the test applies batches itself); reactions on the event bus (cluster mode):
// accepted once the bus holds them, 503 with nothing written when it cannot take them.
#include "testing/run_sync.h"
#include "service/comment_service.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>
#include <filesystem>
#include <set>

#include "events/local/local_bus.h"
#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"
#include "workers/reaction_applier.h"

namespace commentd::service {
namespace {

const Deadline kNoDeadline = Deadline::never();

class CommentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *testing::open_temp_store(dir_, /*sync_writes=*/false);
    cache_ = cache::make_memory_cache({1000, 1000}, clock_);
    limiter_ = limit::make_memory_limiter({0, 60000}, {0, 60000}, clock_);
    ServiceOptions so;
    so.max_pending_ops = 3;
    svc_ = std::make_unique<CommentService>(*store_, *cache_, *limiter_, clock_, ids_, overlay_, so);
    applier_ = std::make_unique<workers::ReactionApplier>(*store_, overlay_, clock_, workers::ApplierOptions{});
    svc_->set_applied_seq_source([this] { return applier_->applied_seq(); });
  }
  void TearDown() override {
    svc_.reset();
    applier_.reset();
    store_.reset();
  }

  template <class T>
  T run(boost::asio::awaitable<T> a) {
    std::optional<T> out;
    boost::asio::co_spawn(
        ioc_, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(a)); },
        boost::asio::detached);
    ioc_.restart();
    ioc_.run();
    return std::move(*out);
  }

  // A comment created through the service: its id (nil, with the test failed, if refused).
  Uuid post(const Actor& author, const Uuid& video, const std::string& text) {
    auto created = run(svc_->create_comment(author, video, text, std::nullopt, kNoDeadline));
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? *Uuid::parse(created->substr(7, 36)) : Uuid{};
  }

  testing::TempDir dir_{"svc"};
  ManualClock clock_;
  UuidGenerator ids_{clock_, 1};
  boost::asio::io_context ioc_;
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<cache::PageCache> cache_;
  std::unique_ptr<limit::RateLimiter> limiter_;
  ReactionOverlay overlay_;
  std::unique_ptr<CommentService> svc_;
  std::unique_ptr<workers::ReactionApplier> applier_;
};

TEST_F(CommentServiceTest, ReactionBacklogGives503ThenRecovers) {
  Actor author{ids_.next(), false};
  Uuid video = ids_.next();
  Uuid cid = post(author, video, "hot");
  ASSERT_FALSE(cid.is_nil());

  for (int i = 0; i < 3; ++i) {
    auto r = run(svc_->react(Actor{ids_.next(), false}, cid, ReactionType::like, kNoDeadline));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto refused = run(svc_->react(Actor{ids_.next(), false}, cid, ReactionType::like, kNoDeadline));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::overloaded);
  EXPECT_GE(refused.error().retry_after_s, 1);

  ASSERT_TRUE(applier_->apply_once().ok());  // the backlog drains
  auto again = run(svc_->react(Actor{ids_.next(), false}, cid, ReactionType::dislike, kNoDeadline));
  EXPECT_TRUE(again.ok());
  ASSERT_TRUE(applier_->apply_once().ok());
  auto m = (*commentd::testing::run_sync(store_->get_metrics({cid}, {})))[0];
  EXPECT_EQ(m.likes, 3);
  EXPECT_EQ(m.dislikes, 1);
}

TEST_F(CommentServiceTest, ReactingUserReadsOwnReactionBeforeItIsApplied) {
  Actor author{ids_.next(), false};
  Actor fan{ids_.next(), false};
  Uuid video = ids_.next();
  Uuid cid = post(author, video, "hello");
  ASSERT_FALSE(cid.is_nil());

  ASSERT_TRUE(run(svc_->react(fan, cid, ReactionType::dislike, kNoDeadline)).ok());
  auto mine = run(svc_->get_comment(fan, cid, kNoDeadline));
  ASSERT_TRUE(mine.ok());
  EXPECT_NE(mine->find("\"reaction_type\":\"dislike\""), std::string::npos) << *mine;
  EXPECT_NE(mine->find("\"dislikes\":0"), std::string::npos) << "not applied yet: " << *mine;
  auto other = run(svc_->get_comment(author, cid, kNoDeadline));
  EXPECT_NE(other->find("\"user_reacted\":false"), std::string::npos);

  ASSERT_TRUE(applier_->apply_once().ok());
  auto after = run(svc_->get_comment(fan, cid, kNoDeadline));
  EXPECT_NE(after->find("\"dislikes\":1"), std::string::npos) << *after;
  EXPECT_NE(after->find("\"reaction_type\":\"dislike\""), std::string::npos);
}

// A signed-in read of a fresh cached page whose user rows the store holds is answered from
// memory (the row cache's hits, no miss), and shows the user's reaction still pending in the
// overlay, before and after it is applied. As the embedded engine runs it: the user's row
// is the applier's to write, so until then the overlay alone knows the reaction.
TEST_F(CommentServiceTest, AListAnsweredFromMemoryShowsTheUsersPendingReaction) {
  ServiceOptions so;
  so.reaction_row_at_request = false;
  CommentService svc(*store_, *cache_, *limiter_, clock_, ids_, overlay_, so);
  Actor author{ids_.next(), false};
  Actor fan{ids_.next(), false};
  Uuid video = ids_.next();
  Uuid cid = post(author, video, "hello");
  ASSERT_FALSE(cid.is_nil());
  ListRequest lr{video, SortOrder::newest, 20, std::nullopt};
  ASSERT_TRUE(run(svc.list_comments(fan, lr, kNoDeadline)).ok());  // fills the page and the fan's rows
  auto& rows = store_->stats().rows;
  const uint64_t hits = rows.hits.load(), misses = rows.misses.load();
  auto first = run(svc.list_comments(fan, lr, kNoDeadline));
  ASSERT_TRUE(first.ok());
  EXPECT_NE(first->find("\"user_reacted\":false"), std::string::npos) << *first;
  EXPECT_EQ(rows.hits.load(), hits + 2) << "the view and the reactions, from memory";
  EXPECT_EQ(rows.misses.load(), misses);

  ASSERT_TRUE(run(svc.react(fan, cid, ReactionType::like, kNoDeadline)).ok());
  const uint64_t misses_after_react = rows.misses.load();  // the reaction read its comment
  auto pending = run(svc.list_comments(fan, lr, kNoDeadline));
  ASSERT_TRUE(pending.ok());
  EXPECT_NE(pending->find("\"reaction_type\":\"like\""), std::string::npos) << "pending: " << *pending;
  EXPECT_EQ(rows.misses.load(), misses_after_react) << "still answered from memory";
  auto other = run(svc.list_comments(Actor{ids_.next(), false}, lr, kNoDeadline));
  EXPECT_EQ(other->find("\"reaction_type\":\"like\""), std::string::npos) << "the fan's alone";
  ASSERT_TRUE(applier_->apply_once().ok());
  auto applied = run(svc.list_comments(fan, lr, kNoDeadline));
  EXPECT_NE(applied->find("\"reaction_type\":\"like\""), std::string::npos) << "applied: " << *applied;
}

// One process (the embedded engine): the op alone is written at request time, the overlay
// answers the user, the applier writes the user's row. Shared store (CQL): the row too, for
// the user's next request on another node (two_nodes_test.cpp).
TEST_F(CommentServiceTest, TheUsersReactionRowIsWrittenAtRequestTimeOnlyWhereNodesShareTheStore) {
  Actor author{ids_.next(), false};
  Uuid video = ids_.next();
  Uuid cid = post(author, video, "hello");
  ASSERT_FALSE(cid.is_nil());
  auto row = [&](const Actor& a) {
    auto r = run(store_->get_reactions(video, *a.user_id, {cid}, kNoDeadline));
    EXPECT_TRUE(r.ok());
    return r.ok() ? (*r)[0] : ReactionType::none;
  };

  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared ? "shared store" : "one process");
    ServiceOptions so;
    so.reaction_row_at_request = shared;
    CommentService svc(*store_, *cache_, *limiter_, clock_, ids_, overlay_, so);
    Actor fan{ids_.next(), false};
    ASSERT_TRUE(run(svc.react(fan, cid, ReactionType::like, kNoDeadline)).ok());
    EXPECT_EQ(row(fan), shared ? ReactionType::like : ReactionType::none);
    auto mine = run(svc.get_comment(fan, cid, kNoDeadline));
    ASSERT_TRUE(mine.ok());
    EXPECT_NE(mine->find("\"reaction_type\":\"like\""), std::string::npos) << *mine;
    ASSERT_TRUE(applier_->apply_once().ok());
    EXPECT_EQ(row(fan), ReactionType::like);
  }
}

TEST_F(CommentServiceTest, NewCommentsReachOthersWithinTheTtlAndTheAuthorAtOnce) {
  Actor author{ids_.next(), false};
  Uuid video = ids_.next();
  ASSERT_TRUE(run(svc_->create_comment(author, video, "one", std::nullopt, kNoDeadline)).ok());
  ListRequest lr{video, SortOrder::newest, 20, std::nullopt};
  auto p1 = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
  auto p2 = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(*p1, *p2);
  EXPECT_EQ(svc_->stats().cache_misses.load(), 1u);
  EXPECT_EQ(svc_->stats().cache_hits.load(), 1u);

  ASSERT_TRUE(run(svc_->create_comment(author, video, "two", std::nullopt, kNoDeadline)).ok());
  // Twice: the second read finds the author's view held in memory beside a fresh cached
  // page, and must still build the author's own page (list_from_memory declines).
  for (int i = 0; i < 2; ++i) {
    auto mine = run(svc_->list_comments(author, lr, kNoDeadline));
    EXPECT_NE(mine->find("\"content\":\"two\""), std::string::npos) << "the author reads their own write at once, read " << i;
  }
  auto others = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
  EXPECT_EQ(others->find("\"content\":\"two\""), std::string::npos) << "others: the cached page, within its TTL";
  clock_.advance_ms(1000);
  auto later = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
  EXPECT_NE(later->find("\"content\":\"two\""), std::string::npos) << "others see it once the TTL passes";
}

// The next_cursor of a page's JSON, or nullopt at the end of the list.
std::optional<std::string> next_cursor_of(const std::string& page) {
  const std::string tag = "\"next_cursor\":\"";
  auto at = page.find(tag);
  if (at == std::string::npos) return std::nullopt;
  at += tag.size();
  return page.substr(at, page.find('"', at) - at);
}

// Every page of a list from the first through the cursors, with the read-ahead cache: each
// page must be the one a service without read-ahead serves, and pages read ahead are hits.
TEST_F(CommentServiceTest, APageReadFromACursorCachesThePagesAfterItAsTheyWouldBeRead) {
  ServiceOptions no_ahead;
  no_ahead.read_ahead_pages = 0;
  auto plain_cache = cache::make_memory_cache({1000, 1000}, clock_);
  CommentService plain(*store_, *plain_cache, *limiter_, clock_, ids_, overlay_, no_ahead);
  Actor author{ids_.next(), false};
  Actor mod{ids_.next(), true};
  // 22 visible comments (5 full pages of 4 and one of 2), with hidden ones among them so the
  // scans skip rows; and a list of exactly 3 full pages, whose last page has no cursor.
  Uuid video = ids_.next(), even = ids_.next();
  std::vector<Uuid> hide;
  for (int i = 0; i < 26; ++i) {
    clock_.advance_ms(1);
    Uuid id = post(author, video, "c" + std::to_string(i));
    if (i % 7 == 3) hide.push_back(id);
  }
  ASSERT_EQ(hide.size(), 4u);
  for (auto& id : hide) ASSERT_TRUE(run(svc_->set_status(mod, id, CommentStatus::hidden, kNoDeadline)).ok());
  for (int i = 0; i < 12; ++i) post(author, even, "e" + std::to_string(i));

  for (auto [list, pages] : {std::pair{video, 6}, std::pair{even, 3}}) {
    for (SortOrder sort : {SortOrder::newest, SortOrder::oldest}) {
      SCOPED_TRACE(::testing::Message() << (list == video ? "video" : "even") << " sort " << int(sort));
      const uint64_t misses0 = svc_->stats().cache_misses, hits0 = svc_->stats().cache_hits;
      const uint64_t ahead0 = svc_->stats().pages_read_ahead;
      ListRequest lr{list, sort, 4, std::nullopt};
      std::set<std::string> seen;
      int n = 0;
      for (;; ++n) {
        auto got = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
        auto want = run(plain.list_comments(Actor{}, lr, kNoDeadline));
        ASSERT_TRUE(got.ok() && want.ok());
        EXPECT_EQ(*got, *want) << "page " << n + 1;
        for (size_t at = got->find("\"id\":\""); at != std::string::npos; at = got->find("\"id\":\"", at + 1))
          EXPECT_TRUE(seen.insert(got->substr(at + 6, 36)).second) << "repeated on page " << n + 1;
        lr.cursor = next_cursor_of(*got);
        if (!lr.cursor) break;
      }
      EXPECT_EQ(n + 1, pages);
      EXPECT_EQ(seen.size(), list == video ? 22u : 12u);
      // Page 1 and page 2 miss; page 2 reads 3, 4 and 5 ahead (as far as the list goes);
      // the page after those misses again.
      const uint64_t ahead = std::min(3, pages - 2);
      EXPECT_EQ(svc_->stats().pages_read_ahead - ahead0, ahead);
      EXPECT_EQ(svc_->stats().cache_hits - hits0, ahead);
      EXPECT_EQ(svc_->stats().cache_misses - misses0, uint64_t(pages) - ahead);
    }
  }
}

// An author inside their recent-write mark reads the shared page when it was built after their
// write on this process, and their own page when it may not hold it: built before the write,
// or a later write of theirs went through another node (a second service on the same store).
TEST_F(CommentServiceTest, AnAuthorReadsTheSharedPageOnlyWhenItHoldsTheirWrites) {
  Actor author{ids_.next(), false};
  Uuid video = ids_.next();
  ListRequest lr{video, SortOrder::newest, 20, std::nullopt};
  auto has = [](const Result<std::string>& page, const char* text) {
    return page.ok() && page->find(std::string("\"content\":\"") + text + "\"") != std::string::npos;
  };
  ASSERT_TRUE(run(svc_->create_comment(author, video, "one", std::nullopt, kNoDeadline)).ok());
  ASSERT_TRUE(has(run(svc_->list_comments(Actor{}, lr, kNoDeadline)), "one"));  // built after "one"
  uint64_t hits = svc_->stats().cache_hits;
  for (int i = 0; i < 2; ++i) {  // through list() (the view read), then from memory
    EXPECT_TRUE(has(run(svc_->list_comments(author, lr, kNoDeadline)), "one"));
    EXPECT_EQ(svc_->stats().cache_hits, hits + i + 1) << "the shared page holds the write: read " << i;
  }

  // A page built before the author's next write does not hold it: their own page.
  clock_.advance_ms(1);
  ASSERT_TRUE(run(svc_->create_comment(author, video, "two", std::nullopt, kNoDeadline)).ok());
  hits = svc_->stats().cache_hits;
  EXPECT_FALSE(has(run(svc_->list_comments(Actor{}, lr, kNoDeadline)), "two")) << "others: within the TTL";
  EXPECT_TRUE(has(run(svc_->list_comments(author, lr, kNoDeadline)), "two"));
  EXPECT_EQ(svc_->stats().cache_hits, hits + 1) << "only the stranger's read was a hit";

  // Once the page is built again it holds "two": shared.
  clock_.advance_ms(1000);
  ASSERT_TRUE(run(svc_->create_comment(author, video, "three", std::nullopt, kNoDeadline)).ok());
  ASSERT_TRUE(has(run(svc_->list_comments(Actor{}, lr, kNoDeadline)), "three"));
  hits = svc_->stats().cache_hits;
  EXPECT_TRUE(has(run(svc_->list_comments(author, lr, kNoDeadline)), "three"));
  EXPECT_EQ(svc_->stats().cache_hits, hits + 1);

  // A later write through another node: this node's shared page (built after "three" only)
  // does not hold it, and this node's record of "three" is not the author's latest mark.
  auto other_cache = cache::make_memory_cache({1000, 1000}, clock_);
  CommentService other(*store_, *other_cache, *limiter_, clock_, ids_, overlay_, ServiceOptions{});
  clock_.advance_ms(1);
  ASSERT_TRUE(run(other.create_comment(author, video, "four", std::nullopt, kNoDeadline)).ok());
  EXPECT_FALSE(has(run(svc_->list_comments(Actor{}, lr, kNoDeadline)), "four"));
  for (int i = 0; i < 2; ++i)
    EXPECT_TRUE(has(run(svc_->list_comments(author, lr, kNoDeadline)), "four")) << "read " << i;
}

// With stale-while-revalidate a page past its TTL is still served for the window after it: a
// page stored before a write can be served after the author's mark (page_ttl) ran out, so for
// a stale page the mark lasts the window longer. Others are served the stale page meanwhile.
TEST_F(CommentServiceTest, AnAuthorIsNotServedAStalePageFromBeforeTheirWrite) {
  auto swr_cache = cache::make_memory_cache({.max_entries = 1000, .ttl_ms = 1000, .stale_ms = 30000}, clock_);
  ServiceOptions so;
  so.stale_window_ms = 30000;
  CommentService svc(*store_, *swr_cache, *limiter_, clock_, ids_, overlay_, so);
  Actor author{ids_.next(), false};
  Uuid video = ids_.next();
  ListRequest lr{video, SortOrder::newest, 20, std::nullopt};
  auto has = [](const Result<std::string>& page, const char* text) {
    return page.ok() && page->find(std::string("\"content\":\"") + text + "\"") != std::string::npos;
  };
  ASSERT_TRUE(run(svc.create_comment(Actor{ids_.next(), false}, video, "zero", std::nullopt, kNoDeadline)).ok());
  ASSERT_TRUE(has(run(svc.list_comments(Actor{}, lr, kNoDeadline)), "zero"));  // cached
  clock_.advance_ms(1);
  ASSERT_TRUE(run(svc.create_comment(author, video, "one", std::nullopt, kNoDeadline)).ok());
  clock_.advance_ms(1500);  // past the page's TTL and the author's mark, inside the window
  for (int i = 0; i < 2; ++i)
    EXPECT_TRUE(has(run(svc.list_comments(author, lr, kNoDeadline)), "one")) << "read " << i;
  // A stranger may be served the stale page (its refresh, behind the read, holds "one").
  const uint64_t hits = svc.stats().cache_hits;
  ASSERT_TRUE(run(svc.list_comments(Actor{}, lr, kNoDeadline)).ok());
  EXPECT_EQ(svc.stats().cache_hits, hits + 1);
  EXPECT_TRUE(has(run(svc.list_comments(Actor{}, lr, kNoDeadline)), "one"));
  EXPECT_TRUE(has(run(svc.list_comments(author, lr, kNoDeadline)), "one"));
}

// A page that says when it was built (CachedPage::built_at_ms, carried through Redis too) is
// served stale to an author whose write's mark was over before its build, as to anyone: it
// holds the write. One built before the write is not. The writes go through another node, so
// this node's own record of its writes (the write epoch) plays no part.
TEST_F(CommentServiceTest, AStalePageBuiltAfterAnAuthorsWriteServesThemAsAnyone) {
  auto swr_cache = cache::make_memory_cache({.max_entries = 1000, .ttl_ms = 1000, .stale_ms = 30000}, clock_);
  ServiceOptions so;
  so.stale_window_ms = 30000;
  CommentService svc(*store_, *swr_cache, *limiter_, clock_, ids_, overlay_, so);
  auto other_cache = cache::make_memory_cache({1000, 1000}, clock_);
  CommentService other(*store_, *other_cache, *limiter_, clock_, ids_, overlay_, so);
  Actor author{ids_.next(), false};
  Actor later_author{ids_.next(), false};
  Uuid video = ids_.next();
  ListRequest lr{video, SortOrder::newest, 20, std::nullopt};
  auto has = [](const Result<std::string>& page, const char* text) {
    return page.ok() && page->find(std::string("\"content\":\"") + text + "\"") != std::string::npos;
  };
  ASSERT_TRUE(run(other.create_comment(author, video, "one", std::nullopt, kNoDeadline)).ok());
  clock_.advance_ms(1000);  // the author's mark (page_ttl) is over
  ASSERT_TRUE(has(run(svc.list_comments(Actor{}, lr, kNoDeadline)), "one"));  // built after it
  clock_.advance_ms(1500);  // the page is stale, inside the window
  EXPECT_TRUE(has(run(svc.list_comments(author, lr, kNoDeadline)), "one"));
  EXPECT_EQ(svc.stats().private_pages, 0u) << "served the shared page";

  // That stale hit refreshed the page; a write after the refresh is not in it, so its author
  // gets a page of their own while the stale one is served.
  clock_.advance_ms(1);
  ASSERT_TRUE(run(other.create_comment(later_author, video, "two", std::nullopt, kNoDeadline)).ok());
  clock_.advance_ms(1500);
  EXPECT_TRUE(has(run(svc.list_comments(later_author, lr, kNoDeadline)), "two"));
  EXPECT_EQ(svc.stats().private_pages, 1u);
}

TEST_F(CommentServiceTest, ModerationTakesEffectForEveryoneAtOnce) {
  Actor author{ids_.next(), false};
  Actor mod{ids_.next(), true};
  Uuid video = ids_.next();
  Uuid cid = post(author, video, "rude");
  ASSERT_FALSE(cid.is_nil());
  ListRequest lr{video, SortOrder::newest, 20, std::nullopt};
  auto before = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
  ASSERT_NE(before->find("rude"), std::string::npos);
  ASSERT_TRUE(run(svc_->set_status(mod, cid, CommentStatus::hidden, kNoDeadline)).ok());
  auto after = run(svc_->list_comments(Actor{}, lr, kNoDeadline));
  EXPECT_EQ(after->find("rude"), std::string::npos) << "hidden at once, not after the TTL";
  for (int i = 0; i < 2; ++i) {  // the second with the author's view held in memory
    auto own = run(svc_->list_comments(author, lr, kNoDeadline));
    EXPECT_NE(own->find("rude"), std::string::npos) << "the author still sees it, read " << i;
  }
}

TEST_F(CommentServiceTest, OnTheBusAReactionIsAcceptedOnceTheBusHoldsItAndRefusedWhenItCannot) {
  events::LocalBus bus(*store_, events::LocalBusOptions{.producer_name = "node-1"});
  svc_->set_reaction_publisher([&bus](ReactionOp op, std::string event) -> asio::awaitable<Result<uint64_t>> {
    auto a = co_await bus.publish("reactions", op.comment_id.str(), std::move(event), 0);
    if (!a) co_return a.take_error();
    co_return a->message_id;
  });
  Actor author{ids_.next(), false};
  Actor fan{ids_.next(), false};
  Uuid cid = post(author, ids_.next(), "hello");
  ASSERT_FALSE(cid.is_nil());

  auto r = run(svc_->react(fan, cid, ReactionType::like, kNoDeadline));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->find("\"seq\":0"), std::string::npos) << "seq: the position on the bus: " << *r;
  EXPECT_EQ(store_->last_op_seq(), 0u) << "not in the node's op log";
  auto mine = run(svc_->get_comment(fan, cid, kNoDeadline));
  EXPECT_NE(mine->find("\"reaction_type\":\"like\""), std::string::npos) << "read-your-writes: " << *mine;
  auto sub = run(bus.subscribe("reactions", "check", {}));
  ASSERT_TRUE(sub.ok());
  auto m = run((*sub)->receive());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->key, cid.str());
  EXPECT_NE(m->payload.find("\"event_type\":\"added\""), std::string::npos) << m->payload;

  bus.close();  // the bus is away
  auto refused = run(svc_->react(fan, cid, ReactionType::dislike, kNoDeadline));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::unavailable);
  EXPECT_GE(refused.error().retry_after_s, 1);
  auto still = run(svc_->get_comment(fan, cid, kNoDeadline));
  EXPECT_NE(still->find("\"reaction_type\":\"like\""), std::string::npos) << "nothing written: " << *still;
  EXPECT_EQ(svc_->stats().reactions_published.load(), 1u);
}

TEST_F(CommentServiceTest, KeptCommentChecksAnswerReactionsUntilTheCommentChanges) {
  CommentChecks checks(std::chrono::hours(1));
  svc_->set_comment_checks(&checks);
  svc_->set_applied_seq_source([] { return ~uint64_t{0}; });  // no backlog: nothing is applied here
  // Another node: the same store, no copy of this node's checks.
  CommentService other(*store_, *cache_, *limiter_, clock_, ids_, overlay_, ServiceOptions{});
  Actor author{ids_.next(), false};
  Actor fan{ids_.next(), false};
  auto post_one = [&] { return post(author, ids_.next(), "hello"); };
  auto react = [&](Uuid cid) { return run(svc_->react(fan, cid, ReactionType::like, kNoDeadline)); };

  // Deleted through this node: its next reaction reads the comment again and finds it gone.
  Uuid mine = post_one();
  ASSERT_TRUE(react(mine).ok());
  ASSERT_TRUE(react(mine).ok());
  EXPECT_EQ(checks.stats().hits.load(), 1u) << "the second reaction needed no read";
  ASSERT_TRUE(run(svc_->delete_comment(author, mine, kNoDeadline)).ok());
  auto gone = react(mine);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::not_found);

  // Deleted through another node: accepted on the kept copy (the documented bound) until the
  // comment's event reaches this node, then refused.
  Uuid theirs = post_one();
  ASSERT_TRUE(react(theirs).ok());
  ASSERT_TRUE(run(other.delete_comment(author, theirs, kNoDeadline)).ok());
  EXPECT_TRUE(react(theirs).ok()) << "within the bound: the copy is not told yet";
  checks.forget(theirs);  // the deleted event, from the cache-invalidation subscriber
  auto refused = react(theirs);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::not_found);

  // A comment not found is not kept: created a moment later (by another node), it is found.
  Uuid later = ids_.next();
  EXPECT_FALSE(react(later).ok());
  EXPECT_FALSE(checks.get(later, CommentChecks::Clock::now()));
}

// The rows a page read from the store are kept for the checks of the reactions that follow
// (readers react to what they just read): none of those reactions reads its comment again.
TEST_F(CommentServiceTest, APageReadKeepsItsRowsForTheReactionsThatFollow) {
  CommentChecks checks(std::chrono::hours(1));
  svc_->set_comment_checks(&checks);
  svc_->set_applied_seq_source([] { return ~uint64_t{0}; });  // no backlog: nothing is applied here
  Actor author{ids_.next(), false};
  Actor fan{ids_.next(), false};
  const Uuid video = ids_.next();
  std::vector<Uuid> posted;
  for (int i = 0; i < 3; ++i) posted.push_back(post(author, video, "hello " + std::to_string(i)));
  ListRequest lr;
  lr.key = video;
  auto page = run(svc_->list_comments(fan, lr, kNoDeadline));
  ASSERT_TRUE(page.ok());
  for (const Uuid& cid : posted) ASSERT_TRUE(run(svc_->react(fan, cid, ReactionType::like, kNoDeadline)).ok());
  EXPECT_EQ(checks.stats().hits.load(), 3u);
  EXPECT_EQ(checks.stats().misses.load(), 0u);
  // A comment changed since: its kept row goes, and its next reaction reads it again.
  ASSERT_TRUE(run(svc_->delete_comment(author, posted[0], kNoDeadline)).ok());
  auto gone = run(svc_->react(fan, posted[0], ReactionType::dislike, kNoDeadline));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::not_found);
  EXPECT_EQ(checks.stats().misses.load(), 1u);
}

}  // namespace
}  // namespace commentd::service

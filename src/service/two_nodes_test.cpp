// Two service nodes over one store, each with its own page cache, reaction overlay and node
// id, as two commentd processes behind a load balancer would be (two embedded processes
// cannot share a RocksDB, so this is the seam-level test; docs/cluster.md). The next request
// of a writer lands on the other node: it must still read its own write. And an edit on one
// node must reach the other node's cache through the bus (the cache-invalidation subscriber).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <set>
#include <thread>

#include "events/local/local_bus.h"
#include "events/schemas.h"
#include "service/comment_service.h"
#include "testing/temp_store.h"
#include "workers/cache_invalidation.h"
#include "workers/outbox_relay.h"

namespace commentd::service {
namespace {

struct Node {
  Node(store::Store& store, const Clock& clock, uint16_t id)
      : ids(clock, id, id),
        cache(cache::make_memory_cache({1000, 1000}, clock)),
        limiter(limit::make_memory_limiter({0, 60000}, {0, 60000}, clock)) {
    ServiceOptions so;
    so.node_id = id;
    so.comments_topic = "comments";
    so.page_ttl_ms = 1000;
    svc = std::make_unique<CommentService>(store, *cache, *limiter, clock, ids, overlay, so);
  }
  ~Node() { svc.reset(); }
  UuidGenerator ids;
  std::unique_ptr<cache::PageCache> cache;
  std::unique_ptr<limit::RateLimiter> limiter;
  ReactionOverlay overlay;
  std::unique_ptr<CommentService> svc;
};

class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *commentd::testing::open_temp_store(dir_, /*sync_writes=*/false);
    a_ = std::make_unique<Node>(*store_, clock_, 1);
    b_ = std::make_unique<Node>(*store_, clock_, 2);
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    store_.reset();
  }
  template <class T>
  T run(boost::asio::awaitable<T> a) {
    std::optional<T> out;
    boost::asio::co_spawn(
        ioc_, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(a)); }, boost::asio::detached);
    ioc_.restart();
    ioc_.run();
    return std::move(*out);
  }
  std::string list(Node& n, Actor who, const Uuid& video) {
    auto r = run(n.svc->list_comments(who, ListRequest{.key = video}, Deadline::never()));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : "";
  }

  commentd::testing::TempDir dir_{"two_nodes"};
  ManualClock clock_;
  UuidGenerator test_ids_{clock_, 99};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<Node> a_, b_;
  boost::asio::io_context ioc_;
};

TEST_F(TwoNodesTest, TheAuthorReadsANewCommentOnTheOtherNode) {
  Actor author{test_ids_.next(), false}, other{test_ids_.next(), false};
  Uuid video = test_ids_.next();
  EXPECT_EQ(list(*b_, other, video).find("hello"), std::string::npos);  // cached on B
  auto created = run(a_->svc->create_comment(author, video, "hello from A", std::nullopt, Deadline::never()));
  ASSERT_TRUE(created.ok()) << created.error().message;

  EXPECT_EQ(list(*b_, other, video).find("hello from A"), std::string::npos)
      << "B's shared page is cached (new comments reach others within page_ttl)";
  EXPECT_NE(list(*b_, author, video).find("hello from A"), std::string::npos)
      << "the author's next request landed on B and did not see their comment";

  clock_.advance_ms(1001);  // past page_ttl: everyone sees it, and the author's mark has expired
  EXPECT_NE(list(*b_, other, video).find("hello from A"), std::string::npos);
  EXPECT_NE(list(*b_, author, video).find("hello from A"), std::string::npos);
}

TEST_F(TwoNodesTest, TheUserReadsTheirReactionOnTheOtherNodeBeforeItIsApplied) {
  Actor author{test_ids_.next(), false}, fan{test_ids_.next(), false};
  Uuid video = test_ids_.next();
  auto created = run(a_->svc->create_comment(author, video, "react to me", std::nullopt, Deadline::never()));
  ASSERT_TRUE(created.ok());
  Uuid cid = *Uuid::parse(created->substr(7, 36));
  ASSERT_TRUE(run(a_->svc->react(fan, cid, ReactionType::like, Deadline::never())).ok());  // no applier runs here
  auto on_b = run(b_->svc->get_comment(fan, cid, Deadline::never()));
  ASSERT_TRUE(on_b.ok());
  EXPECT_NE(on_b->find("\"reaction_type\":\"like\""), std::string::npos) << *on_b;
  ASSERT_TRUE(run(a_->svc->react(fan, cid, ReactionType::none, Deadline::never())).ok());
  on_b = run(b_->svc->get_comment(fan, cid, Deadline::never()));
  ASSERT_TRUE(on_b.ok());
  EXPECT_NE(on_b->find("\"user_reacted\":false"), std::string::npos) << *on_b;
}

TEST_F(TwoNodesTest, AnEditOnOneNodeReachesTheOtherNodesCacheThroughTheBus) {
  events::LocalBus bus(*store_, {.producer_name = "node-1"});
  workers::OutboxRelay relay(*store_, bus, {});
  auto inval_a = workers::make_cache_invalidation(bus, *a_->cache, "comments", 1);
  auto inval_b = workers::make_cache_invalidation(bus, *b_->cache, "comments", 2);
  ASSERT_TRUE(inval_a->start().ok());
  ASSERT_TRUE(inval_b->start().ok());
  ASSERT_TRUE(relay.start().ok());

  Actor author{test_ids_.next(), false}, reader{test_ids_.next(), false};
  Uuid video = test_ids_.next();
  auto created = run(a_->svc->create_comment(author, video, "first draft", std::nullopt, Deadline::never()));
  ASSERT_TRUE(created.ok());
  Uuid cid = *Uuid::parse(created->substr(7, 36));
  clock_.advance_ms(1001);
  EXPECT_NE(list(*b_, reader, video).find("first draft"), std::string::npos);  // now cached on B
  EXPECT_NE(list(*a_, reader, video).find("first draft"), std::string::npos);  // and on A

  ASSERT_TRUE(run(a_->svc->edit_comment(author, cid, "final text", Deadline::never())).ok());
  EXPECT_NE(list(*a_, reader, video).find("final text"), std::string::npos) << "the writing node bumps inline";
  // The relay publishes the edit's event; B's subscriber bumps B's cache (A's skips its own).
  while (inval_b->stats().handled.load() < 2) std::this_thread::yield();  // created, updated
  EXPECT_NE(list(*b_, reader, video).find("final text"), std::string::npos)
      << "B still serves the page cached before the edit";

  relay.stop();
  inval_a->stop();
  inval_b->stop();
  bus.close();
}

TEST_F(TwoNodesTest, EveryAcknowledgedWriteAppendsExactlyItsEventInOrder) {
  Actor author{test_ids_.next(), false}, mod{test_ids_.next(), true}, fan{test_ids_.next(), false};
  Uuid video = test_ids_.next();
  auto top = run(a_->svc->create_comment(author, video, "top", std::nullopt, Deadline::never()));
  ASSERT_TRUE(top.ok());
  Uuid top_id = *Uuid::parse(top->substr(7, 36));
  auto reply = run(b_->svc->create_comment(fan, video, "reply", top_id, Deadline::never()));
  ASSERT_TRUE(reply.ok());
  Uuid reply_id = *Uuid::parse(reply->substr(7, 36));
  ASSERT_TRUE(run(a_->svc->edit_comment(author, top_id, "top, edited", Deadline::never())).ok());
  ASSERT_TRUE(run(b_->svc->set_status(mod, reply_id, CommentStatus::hidden, Deadline::never())).ok());
  ASSERT_TRUE(run(a_->svc->react(fan, top_id, ReactionType::like, Deadline::never())).ok());
  ASSERT_TRUE(run(a_->svc->react(fan, top_id, ReactionType::none, Deadline::never())).ok());
  ASSERT_TRUE(run(b_->svc->delete_comment(fan, reply_id, Deadline::never())).ok());
  // Refused writes add nothing: an edit by someone else, a reaction to a missing comment.
  EXPECT_FALSE(run(a_->svc->edit_comment(fan, top_id, "not yours", Deadline::never())).ok());
  EXPECT_FALSE(run(a_->svc->react(fan, test_ids_.next(), ReactionType::like, Deadline::never())).ok());

  // The comment events in the outbox; the reaction events are the op log's ops, read as the
  // relay reads them.
  auto out = store_->read_outbox_entries(0, 100);
  ASSERT_TRUE(out.ok());
  auto reactions = workers::op_log_source(*store_, "reactions", 0).read(0, 100);
  ASSERT_TRUE(reactions.ok());
  out->insert(out->end(), reactions->begin(), reactions->end());
  struct Want { const char* topic; std::string key; const char* type; uint32_t node; };
  std::vector<Want> want = {
      {"comments", video.str(), "created", 1},       {"comments", video.str(), "created", 2},
      {"comments", video.str(), "updated", 1},       {"comments", video.str(), "status_changed", 2},
      {"comments", video.str(), "deleted", 2},       {"reactions", top_id.str(), "added", 1},
      {"reactions", top_id.str(), "removed", 1}};
  ASSERT_EQ(out->size(), want.size());
  std::set<std::string> event_ids;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& e = (*out)[i];
    EXPECT_EQ(e.topic, want[i].topic) << i;
    EXPECT_EQ(e.key, want[i].key) << i;
    auto h = events::parse_event_header(e.payload);
    ASSERT_TRUE(h) << e.payload;
    EXPECT_EQ(h->event_type, want[i].type) << i;
    EXPECT_EQ(h->node_id, want[i].node) << i;
    EXPECT_TRUE(event_ids.insert(h->event_id).second) << "event ids are unique";
  }
}

}  // namespace
}  // namespace commentd::service

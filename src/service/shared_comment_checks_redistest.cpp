// Reactions' comment checks shared by the nodes in a real Redis (single node and 3-master
// cluster): three services on one store, as three cluster nodes on one Cassandra. A comment
// one node read is served to the others from Redis; the node that deletes it drops the shared
// copy before its answer, so a node without a copy of its own refuses at once; a node's own
// copy stays its bound until the comment's event; an absent comment is never kept; and with
// Redis unreachable, reactions and deletes are still answered from storage.
#include <gtest/gtest.h>

#include "cache/page_cache.h"
#include "limit/rate_limiter.h"
#include "redis/comment_checks.h"
#include "redis/test_env.h"
#include "service/comment_service.h"
#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"
#include "testing/test_servers.h"

namespace commentd::service {
namespace {

using namespace std::chrono_literals;
using redis::testenv::kCluster;
using redis::testenv::kSingle;

const Deadline kNoDeadline = Deadline::never();

class SharedCommentChecksTest : public ::testing::TestWithParam<const char*> {
 protected:
  struct Node {
    std::unique_ptr<CommentChecks> local;  // null: a node that just started (no copy of its own)
    std::unique_ptr<redis::RedisCommentChecks> shared;
    std::unique_ptr<CommentService> svc;
  };

  void SetUp() override {
    const char* env = GetParam();
    COMMENTD_REDIS_NODES(nodes, env);
    client_ = std::make_unique<redis::Client>(loop_.ex(), redis::ClientOptions{.nodes = nodes, .cluster = env == kCluster});
    store_ = *testing::open_temp_store(dir_, /*sync_writes=*/false);
    cache_ = cache::make_memory_cache({1000, 1000}, clock_);
    limiter_ = limit::make_memory_limiter({0, 60000}, {0, 60000}, clock_);
  }
  void TearDown() override {
    nodes_.clear();
    store_.reset();
  }

  Node& node(bool with_local, redis::Client* client = nullptr) {
    auto& n = nodes_.emplace_back(std::make_unique<Node>());
    if (with_local) n->local = std::make_unique<CommentChecks>(std::chrono::hours(1));
    n->shared = std::make_unique<redis::RedisCommentChecks>(client ? *client : *client_,
                                                            redis::CommentChecksOptions{.prefix = prefix_});
    n->svc = std::make_unique<CommentService>(*store_, *cache_, *limiter_, clock_, ids_, overlay_, ServiceOptions{});
    n->svc->set_applied_seq_source([] { return ~uint64_t{0}; });  // no backlog: nothing is applied here
    if (n->local) n->svc->set_comment_checks(n->local.get());
    n->svc->set_shared_comment_checks(n->shared.get());
    return *n;
  }
  Uuid post(Node& n) {
    auto created = loop_.run(n.svc->create_comment(author_, video_, "hello", std::nullopt, kNoDeadline));
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? *Uuid::parse(created->substr(7, 36)) : Uuid{};
  }
  Result<std::string> react(Node& n, const Uuid& cid) {
    return loop_.run(n.svc->react(fan_, cid, ReactionType::like, kNoDeadline));
  }

  redis::testenv::Loop loop_{1};
  const std::string prefix_ = redis::testenv::unique_prefix();
  std::unique_ptr<redis::Client> client_;
  testing::TempDir dir_{"shared-checks"};
  ManualClock clock_{1'700'000'000'000};
  UuidGenerator ids_{clock_, 1};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<cache::PageCache> cache_;
  std::unique_ptr<limit::RateLimiter> limiter_;
  ReactionOverlay overlay_;
  std::vector<std::unique_ptr<Node>> nodes_;
  Actor author_{ids_.next(), false};
  Actor fan_{ids_.next(), false};
  Uuid video_ = ids_.next();
};

TEST_P(SharedCommentChecksTest, OneReadServesEveryNodeAndTheDeletingNodeDropsItForAll) {
  Node& a = node(true);
  Node& b = node(true);
  const Uuid cid = post(a);
  ASSERT_TRUE(react(a, cid).ok());
  EXPECT_EQ(a.shared->stats().misses.load(), 1u);
  EXPECT_EQ(a.shared->stats().fills.load(), 1u);
  ASSERT_TRUE(react(b, cid).ok());
  EXPECT_EQ(b.shared->stats().hits.load(), 1u) << "b's miss came from Redis, not storage";
  EXPECT_EQ(b.shared->stats().misses.load(), 0u);
  ASSERT_TRUE(react(b, cid).ok());
  EXPECT_EQ(b.local->stats().hits.load(), 1u) << "then from b's own copy";
  EXPECT_EQ(b.shared->stats().hits.load(), 1u);

  ASSERT_TRUE(loop_.run(a.svc->delete_comment(author_, cid, kNoDeadline)).ok());
  EXPECT_EQ(a.shared->stats().forgotten.load(), 1u) << "before the delete's answer";
  Node& c = node(false);  // a node with no copy of its own: refused at once
  auto refused = react(c, cid);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::not_found);
  EXPECT_EQ(c.shared->stats().misses.load(), 1u);
  EXPECT_EQ(c.shared->stats().fills.load(), 1u) << "the deleted state is shared";
  auto from_copy = react(node(false), cid);
  ASSERT_FALSE(from_copy.ok()) << "the next node is refused by the shared copy of the deleted state";
  EXPECT_EQ(from_copy.error().code, Errc::not_found);

  // b's own copy is its bound (storage.cql.comment_check_ttl) until the deleted event.
  EXPECT_TRUE(react(b, cid).ok());
  ASSERT_TRUE(loop_.run(b.svc->forget_comment_check(cid, Deadline::after(5s))).ok());
  auto after_event = react(b, cid);
  ASSERT_FALSE(after_event.ok());
  EXPECT_EQ(after_event.error().code, Errc::not_found);
}

TEST_P(SharedCommentChecksTest, AnAbsentCommentIsNeverKept) {
  Node& a = node(true);
  const Uuid later = ids_.next();
  auto r = react(a, later);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_EQ(a.shared->stats().fills.load(), 0u);
  EXPECT_FALSE(loop_.run(a.shared->lookup(later, Deadline::after(5s))).copy);
}

TEST_P(SharedCommentChecksTest, AnUnreachableRedisLeavesReactionsAndDeletesToStorage) {
  redis::Client dead(loop_.ex(), redis::ClientOptions{.nodes = {{"127.0.0.1", redis::testenv::closed_port()}},
                                                      .connect_timeout = 100ms, .command_timeout = 100ms});
  Node& a = node(false, &dead);
  const Uuid cid = post(a);
  EXPECT_TRUE(react(a, cid).ok());
  EXPECT_TRUE(loop_.run(a.svc->delete_comment(author_, cid, kNoDeadline)).ok()) << "a failed forget is no failure";
  auto refused = react(a, cid);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::not_found);
  EXPECT_GE(a.shared->stats().errors.load(), 3u);
  EXPECT_EQ(a.shared->stats().fills.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Redis, SharedCommentChecksTest, ::testing::Values(kSingle, kCluster),
                         [](const auto& info) { return std::string(info.param == kSingle ? "Single" : "Cluster"); });

}  // namespace
}  // namespace commentd::service

// Page fills across nodes through the service against a real Redis: two CommentService
// instances on one store, each with its own Redis page cache (as two cluster nodes on one
// Cassandra), 1,000 concurrent cold reads of one page split between them. Storage is read at
// most once per node (one holds the fill lease and puts the page; the other's readers wait
// for it together, never each on their own), and every reader gets the page.
#include <gtest/gtest.h>

#include <future>

#include "cache/redis_cache.h"
#include "limit/rate_limiter.h"
#include "redis/test_env.h"
#include "service/comment_service.h"
#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"

namespace commentd::service {
namespace {

using namespace std::chrono_literals;

struct Node {
  Node(store::Store& store, redis::Client& client, const std::string& prefix, const Clock& clock, uint16_t id)
      : ids(clock, id, id), limiter(limit::make_memory_limiter({0, 60000}, {0, 60000}, clock)) {
    cache::RedisCacheOptions o;
    o.prefix = prefix;
    o.ttl_ms = 60'000;
    o.lease_ms = 5'000;
    o.local_ms = 0;  // every lookup decodes the page from Redis
    cache = std::make_unique<cache::RedisPageCache>(client, o, clock);
    ServiceOptions so;
    so.node_id = id;
    so.page_ttl_ms = 60'000;
    svc = std::make_unique<CommentService>(store, *cache, *limiter, clock, ids, overlay, so);
  }
  UuidGenerator ids;
  std::unique_ptr<cache::RedisPageCache> cache;
  std::unique_ptr<limit::RateLimiter> limiter;
  ReactionOverlay overlay;
  std::unique_ptr<CommentService> svc;
};

asio::awaitable<Result<std::string>> read(CommentService& svc, Uuid video, Actor who = {}) {
  ListRequest req{video, SortOrder::newest, 20, std::nullopt};  // a named local (g++ 12)
  co_return co_await svc.list_comments(who, req, Deadline::after(10s));
}

TEST(PageFill, ThousandColdReadsThroughTwoNodesReadStorageAtMostOncePerNode) {
  COMMENTD_REDIS_NODES(nodes, redis::testenv::kSingle);
  redis::testenv::Loop loop;
  redis::Client c1(loop.ex(), {.nodes = nodes}), c2(loop.ex(), {.nodes = nodes});
  testing::TempDir dir{"page-fill"};
  auto store = *testing::open_temp_store(dir, /*sync_writes=*/false);
  SystemClock clock;  // the lease expires in real time
  const std::string prefix = redis::testenv::unique_prefix();
  Node a(*store, c1, prefix, clock, 1), b(*store, c2, prefix, clock, 2);
  UuidGenerator ids(clock, 9, 9);
  const Uuid video = ids.next();
  ASSERT_TRUE(loop.run(a.svc->create_comment(Actor{ids.next(), false}, video, "the only comment", std::nullopt,
                                             Deadline::after(10s)))
                  .ok());

  constexpr int kReaders = 1000;
  std::vector<std::promise<Result<std::string>>> got(kReaders);
  for (int i = 0; i < kReaders; ++i) loop.spawn(read(i % 2 ? *a.svc : *b.svc, video), &got[i]);
  for (auto& p : got) {
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_NE(r->find("the only comment"), std::string::npos) << *r;
  }
  const auto built = a.svc->stats().public_pages.load() + b.svc->stats().public_pages.load();
  EXPECT_GE(built, 1u);
  EXPECT_LE(built, 2u) << "storage read at most once per node";
  EXPECT_EQ(a.cache->stats().puts.load() + b.cache->stats().puts.load(), 1u) << "only the lease holder fills";
  // Each node's readers missed once each at most, and waited together: a node's looks again
  // are its flight's (4 at most per flight), not its readers'.
  EXPECT_LE(a.svc->stats().lease_waits.load() + b.svc->stats().lease_waits.load(), 2u * 4u);
  EXPECT_LE(a.cache->stats().lease_waits.load() + b.cache->stats().lease_waits.load(), uint64_t(kReaders) + 8u);
}

// An author inside their recent-write mark reads the shared page from Redis when their node
// built it after their write (the page's build epoch comes back to the process that built
// it), instead of a page built for them alone; a page built before the write does not serve
// them.
TEST(PageFill, AnAuthorReadsTheSharedPageTheirNodeBuiltAfterTheirWrite) {
  COMMENTD_REDIS_NODES(nodes, redis::testenv::kSingle);
  redis::testenv::Loop loop;
  redis::Client c(loop.ex(), {.nodes = nodes});
  testing::TempDir dir{"page-fill-author"};
  auto store = *testing::open_temp_store(dir, /*sync_writes=*/false);
  SystemClock clock;
  Node n(*store, c, redis::testenv::unique_prefix(), clock, 1);
  UuidGenerator ids(clock, 9, 9);
  const Uuid video = ids.next();
  const Actor author{ids.next(), false}, later{ids.next(), false};
  ASSERT_TRUE(loop.run(n.svc->create_comment(author, video, "mine", std::nullopt, Deadline::after(10s))).ok());
  ASSERT_TRUE(loop.run(read(*n.svc, video)).ok());  // built after the write, put in Redis
  ASSERT_EQ(n.svc->stats().public_pages.load(), 1u);
  auto mine = loop.run(read(*n.svc, video, author));
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  EXPECT_NE(mine->find("mine"), std::string::npos) << *mine;
  EXPECT_EQ(n.svc->stats().private_pages.load(), 0u) << "the shared page holds the author's write";
  EXPECT_EQ(n.cache->stats().hits.load(), 1u);

  // Another author writes after the page was built: that page does not serve them.
  ASSERT_TRUE(loop.run(n.svc->create_comment(later, video, "theirs", std::nullopt, Deadline::after(10s))).ok());
  auto theirs = loop.run(read(*n.svc, video, later));
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  EXPECT_NE(theirs->find("theirs"), std::string::npos) << *theirs;
  EXPECT_EQ(n.svc->stats().private_pages.load(), 1u);
}

}  // namespace
}  // namespace commentd::service

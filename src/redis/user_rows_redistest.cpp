// The per-user rows cache against a real Redis, single node and 3-master cluster: a miss
// hands out a token and the fill under it is served; an invalidation between the lookup and
// the fill (a write that raced the storage read) refuses the fill; an invalidation drops the
// copy; an unreachable Redis is a miss without a token (the store reads storage, fills nothing).
#include "redis/user_rows.h"

#include <gtest/gtest.h>

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
    cache_ = std::make_unique<RedisUserRows>(*client_, UserRowsOptions{.prefix = testenv::unique_prefix(),
                                                                        .max_reactions = 3});
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
  void invalidate(std::vector<std::pair<Uuid, Uuid>> keys) {
    loop_.run([&]() -> asio::awaitable<int> {
      co_await cache_->invalidate(std::move(keys), Deadline::after(5s));
      co_return 0;
    }());
  }

  testenv::Loop loop_{1};
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
  rows.reactions = {{ids_.next(), ReactionType::like}};
  fill(video_, user_, *l.token, rows);
  auto hit = lookup(video_, user_);
  ASSERT_TRUE(hit.rows);
  EXPECT_EQ(hit.rows->view.recent_until, 42);
  EXPECT_EQ(hit.rows->reactions, rows.reactions);
  EXPECT_EQ(cache_->stats().fills.load(), 1u);
  EXPECT_FALSE(lookup(video_, other_).rows) << "per user";

  invalidate({{video_, user_}, {video_, other_}});
  EXPECT_EQ(cache_->stats().invalidations.load(), 2u);
  auto again = lookup(video_, user_);
  EXPECT_FALSE(again.rows);
  EXPECT_TRUE(again.token);
}

TEST_P(UserRowsTest, AWriteBetweenTheLookupAndTheFillRefusesTheFill) {
  auto l = lookup(video_, user_);
  ASSERT_TRUE(l.token);
  store::UserRows before;  // what the storage read saw
  invalidate({{video_, user_}});  // a write landed after that read, before the fill
  fill(video_, user_, *l.token, before);
  EXPECT_EQ(cache_->stats().fills_refused.load(), 1u);
  auto next = lookup(video_, user_);
  EXPECT_FALSE(next.rows) << "the old rows must not be served";
  // A second reader's fill under the fresh token is stored.
  store::UserRows after;
  after.reactions = {{ids_.next(), ReactionType::dislike}};
  fill(video_, user_, *next.token, after);
  auto hit = lookup(video_, user_);
  ASSERT_TRUE(hit.rows);
  EXPECT_EQ(hit.rows->reactions, after.reactions);
}

TEST_P(UserRowsTest, TooManyReactionsAreNotCached) {
  auto l = lookup(video_, user_);
  store::UserRows rows;
  for (int i = 0; i < 4; ++i) rows.reactions.emplace_back(ids_.next(), ReactionType::like);
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

INSTANTIATE_TEST_SUITE_P(Redis, UserRowsTest, ::testing::Values(kSingle, kCluster),
                         [](const auto& info) { return std::string(info.param == kSingle ? "Single" : "Cluster"); });

}  // namespace
}  // namespace commentd::redis

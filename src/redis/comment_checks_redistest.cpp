// The comment checks' shared layer against a real Redis, single node and 3-master cluster: a
// miss hands out a token and the fill under it is served to every node (content left out); a
// forget drops the copy and refuses a fill whose read came before it; an unreachable Redis is
// a miss without a token and a failed forget.
#include "redis/comment_checks.h"

#include <gtest/gtest.h>

#include "core/clock.h"
#include "redis/test_env.h"
#include "testing/test_servers.h"

namespace commentd::redis {
namespace {

using namespace std::chrono_literals;
using testenv::kCluster;
using testenv::kSingle;

class SharedChecksTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const char* env = GetParam();
    COMMENTD_REDIS_NODES(nodes, env);
    client_ = std::make_unique<Client>(loop_.ex(), ClientOptions{.nodes = nodes, .cluster = env == kCluster});
    a_ = std::make_unique<RedisCommentChecks>(*client_, CommentChecksOptions{.prefix = prefix_});
    b_ = std::make_unique<RedisCommentChecks>(*client_, CommentChecksOptions{.prefix = prefix_});
    comment_.id = ids_.next();
    comment_.video_id = ids_.next();
    comment_.user_id = ids_.next();
    comment_.content = "hello";
  }
  service::SharedCommentChecks::Lookup lookup(RedisCommentChecks& n) {
    return loop_.run(n.lookup(comment_.id, Deadline::after(5s)));
  }
  void fill(RedisCommentChecks& n, const Comment& c, std::string token) {
    loop_.run([&]() -> asio::awaitable<int> {
      co_await n.fill(c, std::move(token), Deadline::after(5s));
      co_return 0;
    }());
  }
  bool forget(RedisCommentChecks& n) { return loop_.run(n.forget(comment_.id, Deadline::after(5s))).ok(); }

  testenv::Loop loop_{1};
  const std::string prefix_ = testenv::unique_prefix();
  std::unique_ptr<Client> client_;
  std::unique_ptr<RedisCommentChecks> a_, b_;  // two nodes
  ManualClock clock_{1'700'000'000'000};
  UuidGenerator ids_{clock_, 11};
  Comment comment_;
};

TEST_P(SharedChecksTest, OneNodesFillServesEveryNodeUntilAForget) {
  auto l = lookup(*a_);
  ASSERT_FALSE(l.copy);
  ASSERT_TRUE(l.token);
  fill(*a_, comment_, *l.token);
  EXPECT_EQ(a_->stats().fills.load(), 1u);
  auto hit = lookup(*b_);
  ASSERT_TRUE(hit.copy) << "the other node's miss is served";
  EXPECT_EQ(hit.copy->video_id, comment_.video_id);
  EXPECT_EQ(hit.copy->user_id, comment_.user_id);
  EXPECT_TRUE(hit.copy->content.empty());
  EXPECT_EQ(b_->stats().hits.load(), 1u);

  ASSERT_TRUE(forget(*b_));  // b changed the comment
  EXPECT_EQ(b_->stats().forgotten.load(), 1u);
  auto gone = lookup(*a_);
  EXPECT_FALSE(gone.copy);
  EXPECT_TRUE(gone.token);
}

TEST_P(SharedChecksTest, AChangeBetweenTheLookupAndTheFillRefusesTheFill) {
  auto l = lookup(*a_);
  ASSERT_TRUE(l.token);
  Comment before = comment_;  // what a's storage read saw
  ASSERT_TRUE(forget(*b_));   // b deleted it after that read, before a's fill
  fill(*a_, before, *l.token);
  EXPECT_EQ(a_->stats().fills_refused.load(), 1u);
  auto next = lookup(*a_);
  EXPECT_FALSE(next.copy) << "the old state must not be served";
  Comment after = comment_;
  after.status = CommentStatus::deleted;
  after.version = 2;
  fill(*a_, after, *next.token);
  auto hit = lookup(*b_);
  ASSERT_TRUE(hit.copy);
  EXPECT_EQ(hit.copy->status, CommentStatus::deleted);
  EXPECT_EQ(hit.copy->version, 2u);
}

TEST_P(SharedChecksTest, AnUnreachableRedisIsAMissWithoutATokenAndAFailedForget) {
  Client dead(loop_.ex(), ClientOptions{.nodes = {{"127.0.0.1", testenv::closed_port()}},
                                        .connect_timeout = 100ms, .command_timeout = 100ms});
  RedisCommentChecks down(dead, CommentChecksOptions{});
  auto l = lookup(down);
  EXPECT_FALSE(l.copy);
  EXPECT_FALSE(l.token) << "no token: the caller must not fill";
  EXPECT_FALSE(forget(down));
  EXPECT_EQ(down.stats().errors.load(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Redis, SharedChecksTest, ::testing::Values(kSingle, kCluster),
                         [](const auto& info) { return std::string(info.param == kSingle ? "Single" : "Cluster"); });

}  // namespace
}  // namespace commentd::redis

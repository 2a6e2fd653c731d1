// How CommentService uses its PageCache and RateLimiter seams when they fail or hold back:
// a cache error is a miss (never a failed read or write), a limiter error follows
// limits.on_error, limited is 429 with Retry-After, and a miss whose fill lease is held
// elsewhere still answers from storage. The failing seams are fakes: the memory
// implementations cannot fail.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "service/comment_service.h"
#include "store/rocks/rocks_store.h"
#include "testing/run_sync.h"
#include "testing/temp_store.h"

namespace commentd::service {
namespace {

// Every call fails, as a Redis cache does when Redis is down.
class FailingCache final : public cache::PageCache {
 public:
  asio::awaitable<Result<cache::Lookup>> lookup(Uuid, std::string, Deadline) override {
    ++lookups;
    co_return Error(Errc::unavailable, "cache down");
  }
  asio::awaitable<Status> put(Uuid, std::string, uint64_t, cache::PagePtr, Deadline) override {
    ++puts;
    co_return Error(Errc::unavailable, "cache down");
  }
  asio::awaitable<Status> bump_video(Uuid, Deadline) override {
    ++bumps;
    co_return Error(Errc::unavailable, "cache down");
  }
  int lookups = 0, puts = 0, bumps = 0;
};

// Always a miss whose fill lease another node holds.
class LeasedElsewhereCache final : public cache::PageCache {
 public:
  asio::awaitable<Result<cache::Lookup>> lookup(Uuid, std::string, Deadline) override {
    ++lookups;
    co_return cache::Lookup{.page = nullptr, .version = 7, .stale = false, .fill = false};
  }
  asio::awaitable<Status> put(Uuid, std::string, uint64_t, cache::PagePtr, Deadline) override {
    ++puts;
    co_return ok_status();
  }
  asio::awaitable<Status> bump_video(Uuid, Deadline) override { co_return ok_status(); }
  int lookups = 0, puts = 0;
};

// A miss whose fill lease another node holds, until that node's page is in after `fill_after`
// lookups.
class FilledElsewhereCache final : public cache::PageCache {
 public:
  explicit FilledElsewhereCache(int fill_after) : fill_after_(fill_after) {}
  asio::awaitable<Result<cache::Lookup>> lookup(Uuid, std::string, Deadline) override {
    if (++lookups <= fill_after_) co_return cache::Lookup{.page = nullptr, .version = 7, .stale = false, .fill = false};
    auto page = std::make_shared<cache::CachedPage>();
    page->items.push_back(cache::PageItem{.json = R"({"content":"the other node's fill")"});
    co_return cache::Lookup{.page = std::move(page), .version = 7, .stale = false, .fill = false};
  }
  asio::awaitable<Status> put(Uuid, std::string, uint64_t, cache::PagePtr, Deadline) override {
    ++puts;
    co_return ok_status();
  }
  asio::awaitable<Status> bump_video(Uuid, Deadline) override { co_return ok_status(); }
  int lookups = 0, puts = 0;

 private:
  const int fill_after_;
};

// The first lookup misses with the lease elsewhere; the second gets the lease (version 8),
// which it then holds: every lookup after it misses without.
class LeaseFreedCache final : public cache::PageCache {
 public:
  asio::awaitable<Result<cache::Lookup>> lookup(Uuid, std::string, Deadline) override {
    ++lookups;
    co_return cache::Lookup{.page = nullptr, .version = lookups == 1 ? 7u : 8u, .stale = false, .fill = lookups == 2};
  }
  asio::awaitable<Status> put(Uuid, std::string, uint64_t version, cache::PagePtr, Deadline) override {
    put_versions.push_back(version);
    co_return ok_status();
  }
  asio::awaitable<Status> bump_video(Uuid, Deadline) override { co_return ok_status(); }
  int lookups = 0;
  std::vector<uint64_t> put_versions;
};

// A fresh page near its TTL, with the lease to refresh it (redis.refresh_ahead); then the
// page put back.
class RefreshAheadCache final : public cache::PageCache {
 public:
  asio::awaitable<Result<cache::Lookup>> lookup(Uuid, std::string, Deadline) override {
    ++lookups;
    if (current) co_return cache::Lookup{.page = current, .version = 3, .stale = false, .fill = false};
    auto page = std::make_shared<cache::CachedPage>();
    page->items.push_back(cache::PageItem{.json = R"({"content":"the cached page")"});
    co_return cache::Lookup{.page = std::move(page), .version = 3, .stale = false, .fill = true};
  }
  asio::awaitable<Status> put(Uuid, std::string, uint64_t version, cache::PagePtr page, Deadline) override {
    put_versions.push_back(version);
    current = std::move(page);
    co_return ok_status();
  }
  asio::awaitable<Status> bump_video(Uuid, Deadline) override { co_return ok_status(); }
  int lookups = 0;
  std::vector<uint64_t> put_versions;
  cache::PagePtr current;
};

class FailingLimiter final : public limit::RateLimiter {
 public:
  asio::awaitable<limit::Decision> check(std::string subject, limit::Action, Deadline) override {
    last_subject = subject;
    co_return limit::Decision{limit::Outcome::error, 0, "redis timeout"};
  }
  std::string last_subject;
};

class SeamErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = *testing::open_temp_store(dir_, /*sync_writes=*/false); }
  void TearDown() override {
    svc_.reset();
    store_.reset();
  }
  void make(cache::PageCache& c, limit::RateLimiter& l, ServiceOptions so = {}) {
    svc_ = std::make_unique<CommentService>(*store_, c, l, clock_, ids_, overlay_, so);
  }
  Result<std::string> create(const Actor& a, const Uuid& video, std::string text) {
    return testing::run_sync(svc_->create_comment(a, video, std::move(text), std::nullopt, kNever));
  }
  // The service over `c` with no rate limits.
  void make_unlimited(cache::PageCache& c) {
    unlimited_ = limit::make_memory_limiter({0, 60'000}, {0, 60'000}, clock_);
    make(c, *unlimited_);
  }
  // A new video with one comment, `text`.
  Uuid video_with(std::string text) {
    const Uuid video = ids_.next();
    EXPECT_TRUE(create(Actor{ids_.next(), false}, video, std::move(text)).ok());
    return video;
  }
  Result<std::string> list(const Uuid& video) {
    return testing::run_sync(
        svc_->list_comments(Actor{}, ListRequest{video, SortOrder::newest, 20, std::nullopt}, kNever));
  }
  // `n` anonymous reads of the video's first page at once, on one thread, in start order.
  std::vector<Result<std::string>> concurrent_lists(const Uuid& video, int n) {
    asio::io_context ioc;
    std::vector<Result<std::string>> got;
    for (int i = 0; i < n; ++i) {
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            Actor anyone;  // named locals, not temporaries inside co_await (g++ 12)
            ListRequest req{video, SortOrder::newest, 20, std::nullopt};
            auto r = co_await svc_->list_comments(anyone, req, kNever);
            got.push_back(std::move(r));
          },
          asio::detached);
    }
    ioc.run();
    return got;
  }

  const Deadline kNever = Deadline::never();
  testing::TempDir dir_{"seams"};
  ManualClock clock_;
  UuidGenerator ids_{clock_, 1};
  std::unique_ptr<store::rocks::RocksStore> store_;
  ReactionOverlay overlay_;
  std::unique_ptr<limit::RateLimiter> unlimited_;
  std::unique_ptr<CommentService> svc_;
};

TEST_F(SeamErrorsTest, CacheErrorIsAMissNeverAFailure) {
  FailingCache cache;
  make_unlimited(cache);
  Actor author{ids_.next(), false};
  Actor mod{ids_.next(), true};
  Uuid video = ids_.next();
  auto created = create(author, video, "hello");
  ASSERT_TRUE(created.ok()) << created.error().message;
  Uuid cid = *Uuid::parse(created->substr(7, 36));

  for (int i = 0; i < 2; ++i) {
    auto page = list(video);
    ASSERT_TRUE(page.ok()) << page.error().message;
    EXPECT_NE(page->find("hello"), std::string::npos) << *page;
  }
  EXPECT_EQ(svc_->stats().cache_misses.load(), 2u);
  EXPECT_EQ(svc_->stats().cache_hits.load(), 0u);
  EXPECT_EQ(cache.puts, 0) << "no version was seen, so nothing may be filled";

  // A write whose invalidation fails still succeeds: it is durable already.
  auto hidden = testing::run_sync(svc_->set_status(mod, cid, CommentStatus::hidden, kNever));
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  EXPECT_EQ(cache.bumps, 1);
  auto page = list(video);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->find("hello"), std::string::npos) << *page;
  EXPECT_EQ(svc_->stats().cache_errors.load(), 4u);  // 3 lookups + 1 bump
}

TEST_F(SeamErrorsTest, MissWithTheLeaseElsewhereStillAnswersAndDoesNotFill) {
  LeasedElsewhereCache cache;
  make_unlimited(cache);
  const Uuid video = video_with("first");
  auto page = list(video);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_NE(page->find("first"), std::string::npos);
  EXPECT_GT(cache.lookups, 1) << "looked again before reading storage";
  EXPECT_EQ(cache.puts, 0) << "only the lease holder fills";
}

// Concurrent misses of one key whose lease is another node's: this node looks again once for
// all of them (not once per reader), and they all get the other node's page.
TEST_F(SeamErrorsTest, ConcurrentMissesWithTheLeaseElsewhereLookAgainOncePerNode) {
  constexpr int kReaders = 50;
  FilledElsewhereCache cache(kReaders + 1);  // the second look again finds the page
  make_unlimited(cache);
  const Uuid video = ids_.next();
  auto got = concurrent_lists(video, kReaders);
  ASSERT_EQ(got.size(), size_t(kReaders));
  for (auto& r : got) {
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_NE(r->find("the other node's fill"), std::string::npos) << *r;
  }
  EXPECT_EQ(cache.lookups, kReaders + 2) << "one lookup per reader, then two looks again in all";
  EXPECT_EQ(svc_->stats().lease_waits.load(), 2u);
  EXPECT_EQ(svc_->stats().coalesced_reads.load(), uint64_t(kReaders - 1));
  EXPECT_EQ(svc_->stats().public_pages.load(), 0u) << "no storage read";
  EXPECT_EQ(cache.puts, 0);
}

// A reader that gets the lease while this node already waits for another holder's fill joins
// the wait and hands its lease over: the node reads once and fills under it, instead of
// leaving the lease unused to hold every reader off the key until it expires.
TEST_F(SeamErrorsTest, AReaderJoiningAWaitHandsItsLeaseToIt) {
  LeaseFreedCache cache;
  make_unlimited(cache);
  const Uuid video = video_with("only");
  auto got = concurrent_lists(video, 2);
  ASSERT_EQ(got.size(), 2u);
  for (auto& r : got) {
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_NE(r->find("only"), std::string::npos) << *r;
  }
  EXPECT_EQ(cache.lookups, 2) << "the handed lease ends the wait: no look again";
  EXPECT_EQ(cache.put_versions, std::vector<uint64_t>{8}) << "filled under the handed lease";
  EXPECT_EQ(svc_->stats().public_pages.load(), 1u);
  EXPECT_EQ(svc_->stats().coalesced_reads.load(), 1u);
}

// A fresh hit that comes with the lease is served at once and refreshed behind the read,
// under the version it was read at.
TEST_F(SeamErrorsTest, AFreshPageWithTheLeaseIsServedAndRefreshedBehind) {
  RefreshAheadCache cache;
  make_unlimited(cache);
  const Uuid video = video_with("from storage");
  auto served = list(video);
  ASSERT_TRUE(served.ok()) << served.error().message;
  EXPECT_NE(served->find("the cached page"), std::string::npos) << *served;
  EXPECT_EQ(svc_->stats().cache_hits.load(), 1u);
  EXPECT_EQ(cache.put_versions, std::vector<uint64_t>{3}) << "refreshed under the version read";
  EXPECT_EQ(svc_->stats().public_pages.load(), 1u);
  auto next = list(video);
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->find("from storage"), std::string::npos) << "the refreshed page: " << *next;
}

TEST_F(SeamErrorsTest, LimiterErrorFailsOpenByDefault) {
  auto cache = cache::make_memory_cache({}, clock_);
  FailingLimiter limiter;
  make(*cache, limiter);
  Actor a{ids_.next(), false};
  auto r = create(a, ids_.next(), "through");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(limiter.last_subject, "u:" + a.user_id->str());
  EXPECT_EQ(svc_->stats().limiter_errors.load(), 1u);
  EXPECT_EQ(svc_->stats().rate_limited.load(), 0u);
}

TEST_F(SeamErrorsTest, LimiterErrorFailsClosedWhenConfigured) {
  auto cache = cache::make_memory_cache({}, clock_);
  FailingLimiter limiter;
  ServiceOptions so;
  so.on_limiter_error = LimiterErrorPolicy::closed;
  make(*cache, limiter, so);
  Uuid video = ids_.next();
  auto r = create(Actor{ids_.next(), false}, video, "refused");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_EQ(r.error().client_code(), "rate_limiter_unavailable");
  EXPECT_GE(r.error().retry_after_s, 1);
  auto page = list(video);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->find("refused"), std::string::npos) << "nothing was written";
  // Reactions are checked the same way.
  auto react = testing::run_sync(
      svc_->react(Actor{ids_.next(), false}, ids_.next(), ReactionType::like, kNever));
  ASSERT_FALSE(react.ok());
  EXPECT_EQ(react.error().code, Errc::unavailable);
}

TEST_F(SeamErrorsTest, LimitedIs429WithRetryAfter) {
  auto cache = cache::make_memory_cache({}, clock_);
  auto limiter = limit::make_memory_limiter({1, 60'000}, {0, 60'000}, clock_);
  make(*cache, *limiter);
  Actor a{ids_.next(), false};
  ASSERT_TRUE(create(a, ids_.next(), "one").ok());
  auto r = create(a, ids_.next(), "two");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::rate_limited);
  EXPECT_EQ(r.error().retry_after_s, 60);
  EXPECT_EQ(svc_->stats().rate_limited.load(), 1u);
  // Another user has their own budget.
  EXPECT_TRUE(create(Actor{ids_.next(), false}, ids_.next(), "three").ok());
}

TEST_F(SeamErrorsTest, AnAddressHasItsOwnBudgetAcrossUsers) {
  auto cache = cache::make_memory_cache({}, clock_);
  auto users = limit::make_memory_limiter({5, 60'000}, {0, 60'000}, clock_);
  auto addresses = limit::make_memory_limiter({2, 60'000}, {0, 60'000}, clock_);
  make(*cache, *users);
  svc_->set_address_limiter(addresses.get());
  auto from = [&](const char* subject) {
    Actor a{ids_.next(), false};
    a.address_subject = subject;
    return a;
  };
  // Three users, one address: the third is refused by the address's budget of 2.
  ASSERT_TRUE(create(from("ip:198.51.100.7"), ids_.next(), "one").ok());
  ASSERT_TRUE(create(from("ip:198.51.100.7"), ids_.next(), "two").ok());
  auto r = create(from("ip:198.51.100.7"), ids_.next(), "three");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::rate_limited);
  EXPECT_EQ(r.error().retry_after_s, 30);
  // Another address, and a caller with no known address, are not held by it.
  EXPECT_TRUE(create(from("ip:203.0.113.9"), ids_.next(), "four").ok());
  EXPECT_TRUE(create(from(""), ids_.next(), "five").ok());
  // A user over their own budget is refused whatever the address's budget.
  Actor u = from("");  // no known address: only the user's own budget applies
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(create(u, ids_.next(), "mine").ok()) << i;
  EXPECT_EQ(create(u, ids_.next(), "sixth").error().code, Errc::rate_limited);
  EXPECT_EQ(svc_->stats().rate_limited.load(), 2u);
}

TEST_F(SeamErrorsTest, AFailingAddressLimiterFollowsTheErrorPolicy) {
  auto cache = cache::make_memory_cache({}, clock_);
  auto users = limit::make_memory_limiter({0, 60'000}, {0, 60'000}, clock_);
  FailingLimiter addresses;
  ServiceOptions so;
  so.on_limiter_error = LimiterErrorPolicy::closed;
  make(*cache, *users, so);
  svc_->set_address_limiter(&addresses);
  Actor a{ids_.next(), false};
  a.address_subject = "ip:2001:db8::/64";
  auto r = create(a, ids_.next(), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().client_code(), "rate_limiter_unavailable");
  EXPECT_EQ(addresses.last_subject, "ip:2001:db8::/64");
}

}  // namespace
}  // namespace commentd::service

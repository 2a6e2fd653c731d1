#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cache/page_cache.h"
#include "cache/page_cache_conformance.h"
#include "testing/run_sync.h"

namespace commentd::cache {
namespace {

// The conformance suite on the memory cache: one ManualClock per test.
struct MemoryCacheHarness {
  static constexpr bool kFillLease = false;
  ManualClock clock;
  std::unique_ptr<PageCache> make(conformance::CacheSpec spec) {
    return make_memory_cache({.max_entries = 100000, .ttl_ms = spec.ttl_ms, .stale_ms = spec.stale_ms},
                             clock);
  }
  void advance_ms(TimeMs ms) { clock.advance_ms(ms); }
};
using MemoryImpls = ::testing::Types<MemoryCacheHarness>;
}  // namespace
namespace conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Memory, PageCacheConformance, MemoryImpls);
}  // namespace conformance
namespace {

// The memory cache's own rules (capacity, LRU, forgotten versions), through the seam.
const Uuid kVideo = conformance::cvideo(424242);

std::shared_ptr<const CachedPage> get(PageCache& c, const std::string& key,
                                      const Uuid& v = kVideo) {
  auto r = testing::run_sync(c.lookup(v, key, Deadline::never()));
  EXPECT_TRUE(r.ok());
  return r.ok() ? r->page : nullptr;
}
uint64_t video_version(PageCache& c, const Uuid& v) {
  auto r = testing::run_sync(c.lookup(v, "", Deadline::never()));
  return r.ok() ? r->version : 0;
}
void put(PageCache& c, const std::string& key, uint64_t version, PagePtr p,
         const Uuid& v = kVideo) {
  EXPECT_TRUE(testing::run_sync(c.put(v, key, version, std::move(p), Deadline::never())).ok());
}
void bump(PageCache& c, const Uuid& v) {
  EXPECT_TRUE(testing::run_sync(c.bump_video(v, Deadline::never())).ok());
}

Uuid video(uint32_t n) { return conformance::cvideo(n); }
PagePtr page(std::string marker) { return conformance::cpage(std::move(marker)); }
std::string marker(const PagePtr& p) { return conformance::cmarker(p); }

TEST(MemoryCacheTest, AnswersWithoutSuspending) {
  // The memory cache completes inline: the awaiting coroutine never leaves its thread.
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 100, .ttl_ms = 1000}, clock);
  boost::asio::io_context ioc;
  bool done = false;
  boost::asio::co_spawn(ioc, [&]() -> boost::asio::awaitable<void> {
    auto l = co_await cache->lookup(kVideo, "k", Deadline::never());
    (void)co_await cache->put(kVideo, "k", l->version, page("A"), Deadline::never());
    (void)co_await cache->bump_video(kVideo, Deadline::never());
    done = true;
  }, boost::asio::detached);
  ioc.run_one();  // the first handler runs the coroutine; a hop would leave `done` false
  EXPECT_TRUE(done);
}

// try_lookup (the service's synchronous fast path) answers every lookup, and answers exactly
// what lookup() does: miss, hit, stale hit, after a bump, after the stale window.
TEST(MemoryCacheTest, TryLookupAlwaysAnswersAsLookupDoes) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 100, .ttl_ms = 1000, .stale_ms = 500}, clock);
  auto same = [&](const char* when) {
    auto t = cache->try_lookup(kVideo, "k");
    ASSERT_TRUE(t.has_value()) << when;
    auto l = testing::run_sync(cache->lookup(kVideo, "k", Deadline::never()));
    ASSERT_TRUE(l.ok()) << when;
    EXPECT_EQ(marker(t->page), marker(l->page)) << when;
    EXPECT_EQ(t->version, l->version) << when;
    EXPECT_EQ(t->stale, l->stale) << when;
    EXPECT_EQ(t->fill, l->fill) << when;
  };
  same("empty");
  put(*cache, "k", video_version(*cache, kVideo), page("A"));
  same("fresh");
  EXPECT_EQ(marker(cache->try_lookup(kVideo, "k")->page), "A");
  clock.advance_ms(1200);
  same("stale");
  EXPECT_TRUE(cache->try_lookup(kVideo, "k")->stale);
  clock.advance_ms(400);
  same("expired");
  EXPECT_EQ(marker(cache->try_lookup(kVideo, "k")->page), "<miss>");
  put(*cache, "k", video_version(*cache, kVideo), page("B"));
  bump(*cache, kVideo);
  same("bumped");
  EXPECT_EQ(marker(cache->try_lookup(kVideo, "k")->page), "<miss>");
}

TEST(MemoryCacheTest, MaxEntriesZeroDisables) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 0, .ttl_ms = 1000}, clock);
  const uint64_t cur = video_version(*cache, kVideo);
  put(*cache, "k", cur, page("A"));
  EXPECT_EQ(marker(get(*cache, "k")), "<miss>");
  // Versions still work: the service bumps them regardless.
  uint64_t v0 = video_version(*cache, video(1));
  bump(*cache, video(1));
  EXPECT_NE(video_version(*cache, video(1)), v0);
}

TEST(MemoryCacheTest, NeverHoldsMoreThanMaxEntries) {
  ManualClock clock;
  constexpr size_t kMax = 64;
  auto cache = make_memory_cache({.max_entries = kMax, .ttl_ms = 60'000}, clock);
  const uint64_t cur = video_version(*cache, kVideo);
  for (int i = 0; i < 2000; ++i) put(*cache, "key" + std::to_string(i), cur, page(std::to_string(i)));
  size_t hits = 0;
  for (int i = 0; i < 2000; ++i)
    if (get(*cache, "key" + std::to_string(i))) ++hits;
  EXPECT_LE(hits, kMax);
  EXPECT_GT(hits, 0u);
  EXPECT_EQ(marker(get(*cache, "key1999")), "1999");  // the newest is always kept
}

// The LRU is per shard (32 shards, by std::hash of the key; see memory_cache.cpp). Keys whose
// hashes agree modulo 1024 share a shard for any power-of-two shard count up to 1024.
std::vector<std::string> same_shard_keys(size_t n) {
  std::vector<std::string> out;
  const size_t target = std::hash<std::string>{}("lru-0") % 1024;
  for (int i = 0; out.size() < n; ++i) {
    std::string k = "lru-" + std::to_string(i);
    if (std::hash<std::string>{}(k) % 1024 == target) out.push_back(k);
  }
  return out;
}

TEST(MemoryCacheTest, LruEvictionAtCapacity) {
  ManualClock clock;
  // 64 entries over 32 shards: two per shard.
  auto cache = make_memory_cache({.max_entries = 64, .ttl_ms = 60'000}, clock);
  const uint64_t cur = video_version(*cache, kVideo);
  auto k = same_shard_keys(4);
  put(*cache, k[0], cur, page("0"));
  put(*cache, k[1], cur, page("1"));
  ASSERT_EQ(marker(get(*cache, k[0])), "0");  // k0 is now the most recently used
  put(*cache, k[2], cur, page("2"));               // evicts the least recently used: k1
  EXPECT_EQ(marker(get(*cache, k[1])), "<miss>");
  EXPECT_EQ(marker(get(*cache, k[0])), "0");
  EXPECT_EQ(marker(get(*cache, k[2])), "2");
  // Replacing an entry refreshes it too.
  put(*cache, k[2], cur, page("2b"));  // order: k2, k0
  put(*cache, k[3], cur, page("3"));   // evicts k0
  EXPECT_EQ(marker(get(*cache, k[0])), "<miss>");
  EXPECT_EQ(marker(get(*cache, k[2])), "2b");
  EXPECT_EQ(marker(get(*cache, k[3])), "3");
}

TEST(MemoryCacheTest, ForgottenVideoVersionNeverServesAStalePage) {
  ManualClock clock;
  constexpr size_t kMax = 32;  // versions are kept for kMax * 4 videos
  auto cache = make_memory_cache({.max_entries = kMax, .ttl_ms = 1'000'000}, clock);
  // Simple case: a page stored, then many other videos written, then this one written.
  const Uuid v = video(1);
  bump(*cache, v);
  uint64_t ver = video_version(*cache, v);
  put(*cache, "page/v", ver, page("before"), v);
  for (uint32_t i = 100; i < 100 + kMax * 4 * 10; ++i) bump(*cache, video(i));
  bump(*cache, v);
  EXPECT_EQ(marker(get(*cache, "page/v", v)), "<miss>");
  // A never-written video reads a raised floor once versions were forgotten in its shard.
  EXPECT_GT(video_version(*cache, video(999'999)), 0u);
}

TEST(MemoryCacheTest, ForgottenVersionsRandomizedModel) {
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    ManualClock clock;
    auto cache = make_memory_cache({.max_entries = 256, .ttl_ms = 1'000'000}, clock);
    std::mt19937_64 rng(seed);
    constexpr uint32_t kVideos = 3000;  // far more than the 1024 versions kept
    std::vector<uint64_t> writes(kVideos, 0);  // the truth: how many writes each video had
    size_t hits = 0, checks = 0;
    for (int step = 0; step < 60'000; ++step) {
      uint32_t v = static_cast<uint32_t>(rng() % kVideos);
      // Some videos are hot so their pages survive in the LRU.
      if (rng() % 2) v %= 40;
      std::string key = "page/" + std::to_string(v);
      switch (rng() % 3) {
        case 0:
          bump(*cache, video(v));
          ++writes[v];
          break;
        case 1: {
          uint64_t ver = video_version(*cache, video(v));
          put(*cache, key, ver, page(std::to_string(writes[v])), video(v));
          break;
        }
        default: {
          auto p = get(*cache, key, video(v));
          ++checks;
          if (p) {
            ++hits;
            ASSERT_EQ(marker(p), std::to_string(writes[v]))
                << "stale page for video " << v << " at step " << step << " seed " << seed;
          }
        }
      }
    }
    EXPECT_GT(hits, checks / 100) << "the model check would be vacuous";
  }
}

}  // namespace
}  // namespace commentd::cache

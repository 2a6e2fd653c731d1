#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cache/page_cache.h"

namespace commentd::cache {
namespace {

Uuid video(uint32_t n) {
  Uuid u;
  u.bytes[0] = 0xF0;
  u.bytes[12] = static_cast<uint8_t>(n >> 24);
  u.bytes[13] = static_cast<uint8_t>(n >> 16);
  u.bytes[14] = static_cast<uint8_t>(n >> 8);
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

std::shared_ptr<const CachedPage> page(std::string marker) {
  auto p = std::make_shared<CachedPage>();
  p->items.push_back(PageItem{video(0), video(1), std::move(marker)});
  return p;
}

std::string marker(const std::shared_ptr<const CachedPage>& p) {
  return p && !p->items.empty() ? p->items[0].json : "<miss>";
}

TEST(MemoryCacheTest, HitWithSameVersionMissWithOther) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 1000, .ttl_ms = 1000}, clock);
  const Uuid v = video(1);
  uint64_t ver = cache->video_version(v);
  cache->put("v1/newest/20", ver, page("A"));
  EXPECT_EQ(marker(cache->get("v1/newest/20", ver)), "A");
  EXPECT_EQ(marker(cache->get("v1/newest/20", ver + 1)), "<miss>");
  EXPECT_EQ(marker(cache->get("v1/oldest/20", ver)), "<miss>");
  // The same pointer is shared, not copied.
  auto p = page("B");
  cache->put("k", ver, p);
  EXPECT_EQ(cache->get("k", ver).get(), p.get());
}

TEST(MemoryCacheTest, MissAfterBumpVideo) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 1000, .ttl_ms = 60'000}, clock);
  const Uuid v = video(1), other = video(2);
  uint64_t before = cache->video_version(v);
  uint64_t other_before = cache->video_version(other);
  cache->put("v1", before, page("A"));
  cache->put("v2", other_before, page("B"));
  cache->bump_video(v);
  uint64_t after = cache->video_version(v);
  EXPECT_NE(after, before);
  EXPECT_EQ(marker(cache->get("v1", after)), "<miss>");
  // Another video's pages are untouched.
  EXPECT_EQ(cache->video_version(other), other_before);
  EXPECT_EQ(marker(cache->get("v2", cache->video_version(other))), "B");
  // Versions never repeat across bumps.
  cache->bump_video(v);
  EXPECT_NE(cache->video_version(v), after);
  EXPECT_NE(cache->video_version(v), before);
}

TEST(MemoryCacheTest, OlderVersionNeverReplacesNewer) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 1000, .ttl_ms = 60'000}, clock);
  cache->put("k", 5, page("new"));
  cache->put("k", 4, page("old"));  // a slow reader finishing late
  EXPECT_EQ(marker(cache->get("k", 5)), "new");
  EXPECT_EQ(marker(cache->get("k", 4)), "<miss>");
  cache->put("k", 6, page("newer"));
  EXPECT_EQ(marker(cache->get("k", 6)), "newer");
}

TEST(MemoryCacheTest, MissAfterTtl) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 1000, .ttl_ms = 1000}, clock);
  cache->put("k", 1, page("A"));
  clock.advance_ms(999);
  EXPECT_EQ(marker(cache->get("k", 1)), "A");
  clock.advance_ms(1);
  EXPECT_EQ(marker(cache->get("k", 1)), "<miss>");
  // A fresh put restarts the clock.
  cache->put("k", 1, page("B"));
  clock.advance_ms(500);
  EXPECT_EQ(marker(cache->get("k", 1)), "B");
  // A hit does not extend the TTL.
  clock.advance_ms(500);
  EXPECT_EQ(marker(cache->get("k", 1)), "<miss>");
}

TEST(MemoryCacheTest, MaxEntriesZeroDisables) {
  ManualClock clock;
  auto cache = make_memory_cache({.max_entries = 0, .ttl_ms = 1000}, clock);
  cache->put("k", 1, page("A"));
  EXPECT_EQ(marker(cache->get("k", 1)), "<miss>");
  // Versions still work: the service bumps them regardless.
  uint64_t v0 = cache->video_version(video(1));
  cache->bump_video(video(1));
  EXPECT_NE(cache->video_version(video(1)), v0);
}

TEST(MemoryCacheTest, NeverHoldsMoreThanMaxEntries) {
  ManualClock clock;
  constexpr size_t kMax = 64;
  auto cache = make_memory_cache({.max_entries = kMax, .ttl_ms = 60'000}, clock);
  for (int i = 0; i < 2000; ++i) cache->put("key" + std::to_string(i), 1, page(std::to_string(i)));
  size_t hits = 0;
  for (int i = 0; i < 2000; ++i)
    if (cache->get("key" + std::to_string(i), 1)) ++hits;
  EXPECT_LE(hits, kMax);
  EXPECT_GT(hits, 0u);
  EXPECT_EQ(marker(cache->get("key1999", 1)), "1999");  // the newest is always kept
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
  auto k = same_shard_keys(4);
  cache->put(k[0], 1, page("0"));
  cache->put(k[1], 1, page("1"));
  ASSERT_EQ(marker(cache->get(k[0], 1)), "0");  // k0 is now the most recently used
  cache->put(k[2], 1, page("2"));               // evicts the least recently used: k1
  EXPECT_EQ(marker(cache->get(k[1], 1)), "<miss>");
  EXPECT_EQ(marker(cache->get(k[0], 1)), "0");
  EXPECT_EQ(marker(cache->get(k[2], 1)), "2");
  // Replacing an entry refreshes it too.
  cache->put(k[2], 1, page("2b"));  // order: k2, k0
  cache->put(k[3], 1, page("3"));   // evicts k0
  EXPECT_EQ(marker(cache->get(k[0], 1)), "<miss>");
  EXPECT_EQ(marker(cache->get(k[2], 1)), "2b");
  EXPECT_EQ(marker(cache->get(k[3], 1)), "3");
}

TEST(MemoryCacheTest, ForgottenVideoVersionNeverServesAStalePage) {
  ManualClock clock;
  constexpr size_t kMax = 32;  // versions are kept for kMax * 4 videos
  auto cache = make_memory_cache({.max_entries = kMax, .ttl_ms = 1'000'000}, clock);
  // Simple case: a page stored, then many other videos written, then this one written.
  const Uuid v = video(1);
  cache->bump_video(v);
  uint64_t ver = cache->video_version(v);
  cache->put("page/v", ver, page("before"));
  for (uint32_t i = 100; i < 100 + kMax * 4 * 10; ++i) cache->bump_video(video(i));
  cache->bump_video(v);
  EXPECT_EQ(marker(cache->get("page/v", cache->video_version(v))), "<miss>");
  // A never-written video reads a raised floor once versions were forgotten in its shard.
  EXPECT_GT(cache->video_version(video(999'999)), 0u);
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
          cache->bump_video(video(v));
          ++writes[v];
          break;
        case 1: {
          uint64_t ver = cache->video_version(video(v));
          cache->put(key, ver, page(std::to_string(writes[v])));
          break;
        }
        default: {
          auto p = cache->get(key, cache->video_version(video(v)));
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

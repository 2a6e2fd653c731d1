// The PageCache conformance suite: the contract of cache/page_cache.h, as a typed gtest suite
// that every implementation instantiates (memory in memory_cache_test.cpp; Redis in a
// *_redistest.cpp). No test sleeps: time passes only through the harness.
//
// A harness H (one per test, default-constructible) provides:
//   std::unique_ptr<PageCache> make(CacheSpec spec);  // a fresh, empty cache
//   void advance_ms(TimeMs ms);   // time passes by `ms` for every cache it made
//   static constexpr bool kFillLease;  // true: one fill lease per (video, key) at a time
//                                      // (several nodes); false: every miss may fill
//
// Instantiate inside the suite's namespace (gtest names it unqualified):
//   using Impls = ::testing::Types<MyHarness>;
//   namespace commentd::cache::conformance {
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, PageCacheConformance, Impls);
//   }
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "cache/page_cache.h"
#include "testing/run_sync.h"

namespace commentd::cache::conformance {

struct CacheSpec {
  TimeMs ttl_ms = 60'000;
  TimeMs stale_ms = 0;  // stale-while-revalidate window after the TTL
};

inline Uuid cvideo(uint32_t n) {
  Uuid u;
  u.bytes[0] = 0xF0;
  u.bytes[6] = 0x70;
  u.bytes[12] = static_cast<uint8_t>(n >> 24);
  u.bytes[13] = static_cast<uint8_t>(n >> 16);
  u.bytes[14] = static_cast<uint8_t>(n >> 8);
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

inline PagePtr cpage(std::string marker, std::optional<std::string> cursor = std::nullopt) {
  auto p = std::make_shared<CachedPage>();
  p->items.push_back(PageItem{cvideo(7), cvideo(8), std::move(marker)});
  p->next_cursor = std::move(cursor);
  return p;
}

inline std::string cmarker(const PagePtr& p) {
  return p && !p->items.empty() ? p->items[0].json : "<miss>";
}

template <class H>
class PageCacheConformance : public ::testing::Test {
 protected:
  std::unique_ptr<PageCache> make(CacheSpec spec = {}) { return h_.make(spec); }
  void advance_ms(TimeMs ms) { h_.advance_ms(ms); }

  static Deadline dl() { return Deadline::after(std::chrono::seconds(10)); }
  static Lookup lookup(PageCache& c, const Uuid& v, const std::string& key) {
    auto r = testing::run_sync(c.lookup(v, key, dl()));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : Lookup{};
  }
  static void put(PageCache& c, const Uuid& v, const std::string& key, uint64_t version,
                  PagePtr p) {
    auto r = testing::run_sync(c.put(v, key, version, std::move(p), dl()));
    EXPECT_TRUE(r.ok()) << r.error().message;
  }
  static void bump(PageCache& c, const Uuid& v) {
    auto r = testing::run_sync(c.bump_video(v, dl()));
    EXPECT_TRUE(r.ok()) << r.error().message;
  }
  // The page under `key` of video `v` as the next reader sees it ("<miss>" if none).
  static std::string seen(PageCache& c, const Uuid& v, const std::string& key) {
    return cmarker(lookup(c, v, key).page);
  }

  H h_;
};

TYPED_TEST_SUITE_P(PageCacheConformance);

TYPED_TEST_P(PageCacheConformance, MissThenHitAfterPut) {
  auto c = this->make();
  const Uuid v = cvideo(1);
  Lookup first = this->lookup(*c, v, "v1/n/20");
  EXPECT_EQ(first.page, nullptr);
  EXPECT_FALSE(first.stale);
  EXPECT_TRUE(first.fill) << "the first miss of a key must get the fill lease";
  this->put(*c, v, "v1/n/20", first.version, cpage("A"));
  Lookup hit = this->lookup(*c, v, "v1/n/20");
  EXPECT_EQ(cmarker(hit.page), "A");
  EXPECT_FALSE(hit.stale);
  EXPECT_EQ(hit.version, first.version);
}

TYPED_TEST_P(PageCacheConformance, PageRoundTripsExactly) {
  auto c = this->make();
  const Uuid v = cvideo(2);
  auto p = std::make_shared<CachedPage>();
  for (uint32_t i = 0; i < 50; ++i) {
    std::string json = "{\"id\":\"" + cvideo(i).str() + "\",\"content\":\"q\\\"uote \xE2\x9C\x93 ";
    json.push_back('\0');
    json += std::string(i * 37, 'x');
    p->items.push_back(PageItem{cvideo(i), cvideo(1000 + i), json});
  }
  p->next_cursor = std::string("cur\x01sor", 7);
  Lookup l = this->lookup(*c, v, "k");
  this->put(*c, v, "k", l.version, p);
  Lookup hit = this->lookup(*c, v, "k");
  ASSERT_NE(hit.page, nullptr);
  ASSERT_EQ(hit.page->items.size(), p->items.size());
  for (size_t i = 0; i < p->items.size(); ++i) {
    EXPECT_EQ(hit.page->items[i].id, p->items[i].id) << i;
    EXPECT_EQ(hit.page->items[i].user_id, p->items[i].user_id) << i;
    EXPECT_EQ(hit.page->items[i].json, p->items[i].json) << i;
  }
  EXPECT_EQ(hit.page->next_cursor, p->next_cursor);

  // An empty last page (no items, no cursor) is a hit too, not a miss.
  this->put(*c, v, "empty", l.version, std::make_shared<CachedPage>());
  Lookup e = this->lookup(*c, v, "empty");
  ASSERT_NE(e.page, nullptr);
  EXPECT_TRUE(e.page->items.empty());
  EXPECT_FALSE(e.page->next_cursor.has_value());
}

TYPED_TEST_P(PageCacheConformance, KeysAndVideosAreIndependent) {
  auto c = this->make();
  const Uuid v1 = cvideo(1), v2 = cvideo(2);
  Lookup l1 = this->lookup(*c, v1, "a");
  Lookup l2 = this->lookup(*c, v2, "b");
  this->put(*c, v1, "a", l1.version, cpage("A"));
  this->put(*c, v2, "b", l2.version, cpage("B"));
  EXPECT_EQ(this->seen(*c, v1, "a"), "A");
  EXPECT_EQ(this->seen(*c, v1, "a2"), "<miss>");
  EXPECT_EQ(this->seen(*c, v2, "b"), "B");
  this->bump(*c, v1);
  EXPECT_EQ(this->seen(*c, v1, "a"), "<miss>");
  EXPECT_EQ(this->seen(*c, v2, "b"), "B") << "a bump of one video touched another";
  EXPECT_EQ(this->lookup(*c, v2, "b").version, l2.version);
}

TYPED_TEST_P(PageCacheConformance, BumpInvalidatesAndVersionsNeverRepeat) {
  auto c = this->make();
  const Uuid v = cvideo(3);
  std::set<uint64_t> versions;
  for (int i = 0; i < 20; ++i) {
    Lookup l = this->lookup(*c, v, "k");
    EXPECT_TRUE(versions.insert(l.version).second) << "version repeated after bump " << i;
    EXPECT_EQ(l.page, nullptr) << "a page survived bump " << i;
    this->put(*c, v, "k", l.version, cpage("p" + std::to_string(i)));
    EXPECT_EQ(this->seen(*c, v, "k"), "p" + std::to_string(i));
    this->bump(*c, v);
  }
}

TYPED_TEST_P(PageCacheConformance, PutUnderSupersededVersionIsNeverServed) {
  auto c = this->make();
  const Uuid v = cvideo(4);
  Lookup before = this->lookup(*c, v, "k");  // a slow reader starts
  this->bump(*c, v);                           // a write lands
  this->put(*c, v, "k", before.version, cpage("old"));  // the slow reader finishes late
  Lookup after = this->lookup(*c, v, "k");
  EXPECT_EQ(after.page, nullptr) << "a page read before a write was served after it";
  EXPECT_NE(after.version, before.version);
}

TYPED_TEST_P(PageCacheConformance, OlderVersionNeverReplacesNewer) {
  auto c = this->make();
  const Uuid v = cvideo(5);
  Lookup old_l = this->lookup(*c, v, "k");
  this->bump(*c, v);
  Lookup new_l = this->lookup(*c, v, "k");
  this->put(*c, v, "k", new_l.version, cpage("new"));
  this->put(*c, v, "k", old_l.version, cpage("old"));
  EXPECT_EQ(this->seen(*c, v, "k"), "new");
  // A newer put replaces the page under the same version.
  this->put(*c, v, "k", new_l.version, cpage("new2"));
  EXPECT_EQ(this->seen(*c, v, "k"), "new2");
}

TYPED_TEST_P(PageCacheConformance, MissAfterTtl) {
  auto c = this->make({.ttl_ms = 1000, .stale_ms = 0});
  const Uuid v = cvideo(6);
  Lookup l = this->lookup(*c, v, "k");
  this->put(*c, v, "k", l.version, cpage("A"));
  this->advance_ms(999);
  EXPECT_EQ(this->seen(*c, v, "k"), "A");
  this->advance_ms(1);
  Lookup gone = this->lookup(*c, v, "k");
  EXPECT_EQ(gone.page, nullptr);
  EXPECT_TRUE(gone.fill);
  // A fresh put restarts the TTL; a hit does not extend it.
  this->put(*c, v, "k", gone.version, cpage("B"));
  this->advance_ms(500);
  EXPECT_EQ(this->seen(*c, v, "k"), "B");
  this->advance_ms(500);
  EXPECT_EQ(this->seen(*c, v, "k"), "<miss>");
}

TYPED_TEST_P(PageCacheConformance, StaleWhileRevalidateWindow) {
  auto c = this->make({.ttl_ms = 1000, .stale_ms = 500});
  const Uuid v = cvideo(7);
  Lookup l = this->lookup(*c, v, "k");
  this->put(*c, v, "k", l.version, cpage("A"));
  this->advance_ms(999);
  Lookup fresh = this->lookup(*c, v, "k");
  EXPECT_EQ(cmarker(fresh.page), "A");
  EXPECT_FALSE(fresh.stale);
  this->advance_ms(1);
  Lookup stale = this->lookup(*c, v, "k");
  EXPECT_EQ(cmarker(stale.page), "A");
  EXPECT_TRUE(stale.stale);
  EXPECT_TRUE(stale.fill) << "the first stale hit must get the refresh lease";
  // A refresh restarts the TTL.
  this->put(*c, v, "k", stale.version, cpage("A2"));
  Lookup refreshed = this->lookup(*c, v, "k");
  EXPECT_EQ(cmarker(refreshed.page), "A2");
  EXPECT_FALSE(refreshed.stale);
  // Past TTL + window: a miss.
  this->advance_ms(1500);
  EXPECT_EQ(this->seen(*c, v, "k"), "<miss>");
  // A bump ends the window too: a stale page is never served across a write.
  Lookup l2 = this->lookup(*c, v, "k");
  this->put(*c, v, "k", l2.version, cpage("B"));
  this->advance_ms(1200);
  this->bump(*c, v);
  EXPECT_EQ(this->seen(*c, v, "k"), "<miss>");
}

TYPED_TEST_P(PageCacheConformance, FillLease) {
  auto c = this->make();
  const Uuid v = cvideo(8);
  Lookup a = this->lookup(*c, v, "k");
  Lookup b = this->lookup(*c, v, "k");
  EXPECT_TRUE(a.fill);
  if constexpr (TypeParam::kFillLease) {
    EXPECT_FALSE(b.fill) << "two callers hold the fill lease of one key at once";
    Lookup other = this->lookup(*c, v, "other-key");
    EXPECT_TRUE(other.fill) << "the lease is per key";
  } else {
    EXPECT_TRUE(b.fill);
  }
  this->put(*c, v, "k", a.version, cpage("A"));
  Lookup hit = this->lookup(*c, v, "k");
  EXPECT_EQ(cmarker(hit.page), "A");
  // After a bump the next miss can fill again.
  this->bump(*c, v);
  EXPECT_TRUE(this->lookup(*c, v, "k").fill);
}

// A random mix of writes (bumps), fills and reads against a model: a hit is always the page
// filled after the video's latest write.
TYPED_TEST_P(PageCacheConformance, RandomizedModelNeverServesAStalePage) {
  auto c = this->make();
  std::mt19937_64 rng(11);
  constexpr uint32_t kVideos = 50;
  std::vector<uint64_t> writes(kVideos, 0);
  size_t hits = 0, checks = 0;
  for (int step = 0; step < 3000; ++step) {
    const uint32_t vi = static_cast<uint32_t>(rng() % kVideos);
    const Uuid v = cvideo(100 + vi);
    const std::string key = "page/" + std::to_string(vi) + "/" + std::to_string(rng() % 3);
    const uint64_t op = rng() % 10;  // 1 write, 4 fills, 5 reads in 10
    if (op == 0) {
      this->bump(*c, v);
      ++writes[vi];
    } else if (op < 5) {
      Lookup l = this->lookup(*c, v, key);
      this->put(*c, v, key, l.version, cpage(std::to_string(writes[vi])));
    } else {
      Lookup l = this->lookup(*c, v, key);
      ++checks;
      if (l.page) {
        ++hits;
        ASSERT_EQ(cmarker(l.page), std::to_string(writes[vi]))
            << "stale page for video " << vi << " at step " << step;
      }
    }
  }
  EXPECT_GT(hits, checks / 10) << "the model check would be vacuous";
}

REGISTER_TYPED_TEST_SUITE_P(PageCacheConformance, MissThenHitAfterPut, PageRoundTripsExactly,
                            KeysAndVideosAreIndependent, BumpInvalidatesAndVersionsNeverRepeat,
                            PutUnderSupersededVersionIsNeverServed, OlderVersionNeverReplacesNewer,
                            MissAfterTtl, StaleWhileRevalidateWindow, FillLease,
                            RandomizedModelNeverServesAStalePage);

}  // namespace commentd::cache::conformance

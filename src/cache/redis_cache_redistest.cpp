// The Redis PageCache against a real Redis (single node and cluster): the PageCache
// conformance suite, and 1,000 concurrent cold reads of one key through two cache instances
// (two nodes) reaching storage at most twice.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <thread>

#include "cache/page_cache_conformance.h"
#include "cache/redis_cache.h"
#include "redis/test_env.h"

namespace commentd::cache {
namespace {

using namespace std::chrono_literals;

// The shared harness (testenv::Harness: client, loop, clock) making RedisPageCaches.
// LocalMs > 0: with the local layer (redis.local_cache_ttl), which must keep the contract.
template <const char* Env, bool Cluster, TimeMs LocalMs = 0>
struct RedisHarness : redis::testenv::Harness<Env, Cluster> {
  static constexpr bool kFillLease = true;
  std::unique_ptr<PageCache> make(conformance::CacheSpec spec) {
    RedisCacheOptions o;
    o.prefix = redis::testenv::unique_prefix();
    o.ttl_ms = spec.ttl_ms;
    o.stale_ms = spec.stale_ms;
    o.lease_ms = 60'000;  // real time: longer than any test, so only put() frees it
    o.local_ms = LocalMs;
    return std::make_unique<RedisPageCache>(*this->client, o, this->clock);
  }
};

using SingleHarness = RedisHarness<redis::testenv::kSingle, false>;
using ClusterHarness = RedisHarness<redis::testenv::kCluster, true>;
using SingleLocalHarness = RedisHarness<redis::testenv::kSingle, false, 400>;

}  // namespace
}  // namespace commentd::cache

namespace commentd::cache {
namespace {

using RedisImpls = ::testing::Types<SingleHarness, ClusterHarness, SingleLocalHarness>;

// Two nodes, each with its own cache instance and its own per-node coalescing (as the
// service does: one storage read per key per node at a time), sharing one Redis. 1,000
// readers of one cold key, split between them.
TEST(RedisPageCache, ThousandColdReadsAcrossTwoNodesReadStorageAtMostTwice) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  redis::testenv::Loop loop;
  redis::Client c1(loop.ex(), {.nodes = nodes}), c2(loop.ex(), {.nodes = nodes});
  SystemClock clock;
  RedisCacheOptions o;
  o.prefix = redis::testenv::unique_prefix();
  o.ttl_ms = 60'000;
  o.lease_ms = 5'000;
  RedisPageCache node1(c1, o, clock), node2(c2, o, clock);
  std::atomic<int> storage_reads{0}, served{0}, errors{0};
  Uuid video;
  video.bytes[0] = 0x42;

  // Per node: the first miss of the key reads storage; the others wait for it (coalescing).
  struct Node {
    RedisPageCache* cache;
    std::mutex mu;
    std::shared_ptr<std::promise<void>> inflight;  // GUARDED_BY(mu)
  };
  Node n1{&node1, {}, nullptr}, n2{&node2, {}, nullptr};
  auto read = [&](Node& n) -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int attempt = 0; attempt < 400; ++attempt) {
      auto l = co_await n.cache->lookup(video, "newest/20", Deadline::after(5s));
      if (!l) {
        errors++;
        co_return;
      }
      if (l->page) {
        served++;
        co_return;
      }
      if (l->fill) {
        storage_reads++;
        auto page = std::make_shared<CachedPage>();
        page->items.push_back(PageItem{video, video, std::string("{\"id\":1")});
        auto s = co_await n.cache->put(video, "newest/20", l->version, page, Deadline::after(5s));
        if (!s) errors++;
        served++;
        co_return;
      }
      // Another node holds the lease: look again shortly.
      asio::steady_timer t(ex, 5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    errors++;
  };
  std::vector<std::future<void>> fs;
  for (int i = 0; i < 1000; ++i) fs.push_back(asio::co_spawn(loop.ioc(), read(i % 2 ? n1 : n2), asio::use_future));
  for (auto& f : fs) f.get();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(served.load(), 1000);
  EXPECT_LE(storage_reads.load(), 2);
  EXPECT_GE(node1.stats().lease_waits.load() + node2.stats().lease_waits.load(), 1u);
}

// The local layer: a hot page is served from memory (no Redis call) until local_ms or its TTL
// passes; this node's bump drops it at once; another node's bump is seen within local_ms.
TEST(RedisPageCache, LocalLayerServesHotPagesAndSeesOtherNodesBumpsWithinItsHold) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  redis::testenv::Loop loop;
  redis::Client c1(loop.ex(), {.nodes = nodes}), c2(loop.ex(), {.nodes = nodes});
  ManualClock clock{1'700'000'000'000};
  RedisCacheOptions o;
  o.prefix = redis::testenv::unique_prefix();
  o.ttl_ms = 1000;
  o.local_ms = 100;
  RedisPageCache a(c1, o, clock), b(c2, o, clock);
  Uuid video;
  video.bytes[0] = 0x43;
  auto page = [](const char* m) {
    auto p = std::make_shared<CachedPage>();
    p->next_cursor = m;
    return PagePtr(p);
  };
  auto seen = [&](RedisPageCache& c) {
    auto l = loop.run(c.lookup(video, "k", Deadline::after(5s)));
    EXPECT_TRUE(l.ok());
    return l.ok() && l->page ? *l->page->next_cursor : std::string("<miss>");
  };
  auto calls = [](const redis::Client& c) {
    uint64_t n = 0;
    for (auto& [name, cs] : c.stats().commands()) n += cs->calls.load();
    return n;
  };
  auto l = loop.run(a.lookup(video, "k", Deadline::after(5s)));
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE(loop.run(a.put(video, "k", l->version, page("A"), Deadline::after(5s))).ok());
  // a put it: served locally, without a Redis call.
  uint64_t before = calls(c1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(seen(a), "A");
  EXPECT_EQ(calls(c1), before);
  EXPECT_EQ(a.stats().local_hits.load(), 10u);
  // try_lookup (the service's synchronous path) answers the local layer's hits, no call; a
  // cache without the layer never answers.
  auto held = a.try_lookup(video, "k");
  ASSERT_TRUE(held && held->page);
  EXPECT_EQ(*held->page->next_cursor, "A");
  EXPECT_FALSE(held->stale);
  EXPECT_EQ(calls(c1), before);
  EXPECT_FALSE(a.try_lookup(video, "other"));
  RedisCacheOptions no_layer = o;
  no_layer.local_ms = 0;
  EXPECT_FALSE(RedisPageCache(c1, no_layer, clock).try_lookup(video, "k"));
  // b gets it from Redis once, then locally.
  EXPECT_EQ(seen(b), "A");
  before = calls(c2);
  EXPECT_EQ(seen(b), "A");
  EXPECT_EQ(calls(c2), before);
  // a bumps (an edit on a): a's readers see the bump at once; b's within local_ms.
  ASSERT_TRUE(loop.run(a.bump_video(video, Deadline::after(5s))).ok());
  EXPECT_EQ(seen(a), "<miss>");
  EXPECT_FALSE(a.try_lookup(video, "k"));
  EXPECT_EQ(seen(b), "A") << "b's local copy is within its hold";
  EXPECT_TRUE(b.try_lookup(video, "k"));
  clock.advance_ms(100);
  EXPECT_FALSE(b.try_lookup(video, "k")) << "past its hold";
  EXPECT_EQ(seen(b), "<miss>");
  // Never past the page's TTL: put at t, held locally until t + ttl at most.
  l = loop.run(b.lookup(video, "k2", Deadline::after(5s)));
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE(loop.run(b.put(video, "k2", l->version, page("B"), Deadline::after(5s))).ok());
  clock.advance_ms(950);
  auto l2 = loop.run(a.lookup(video, "k2", Deadline::after(5s)));  // a fills its local copy at t + 950
  ASSERT_TRUE(l2.ok() && l2->page);
  clock.advance_ms(50);
  l2 = loop.run(a.lookup(video, "k2", Deadline::after(5s)));
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2->page, nullptr) << "served past its TTL";
  // Keys read once (readers' next-page cursors) do not pile up: expired entries are dropped as
  // new ones arrive.
  for (int i = 0; i < 50; ++i) {
    const std::string k = "cursor" + std::to_string(i);
    auto m = loop.run(a.lookup(video, k, Deadline::after(5s)));
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(loop.run(a.put(video, k, m->version, page("C"), Deadline::after(5s))).ok());
  }
  EXPECT_GE(a.local_size(), 50u);
  clock.advance_ms(100);
  auto m = loop.run(a.lookup(video, "last", Deadline::after(5s)));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(loop.run(a.put(video, "last", m->version, page("D"), Deadline::after(5s))).ok());
  EXPECT_EQ(a.local_size(), 1u);
}

// Refresh ahead (redis.refresh_ahead): a fresh page read within refresh_ahead_ms of its TTL
// comes with the lease to one caller (who refreshes it behind its read); the others, and
// reads before the window, get it without; a page is never served past its TTL.
TEST(RedisPageCache, AFreshPageNearItsTtlGoesWithTheLeaseToOneReader) {
  COMMENTD_REDIS_NODES(nodes, "COMMENTD_TEST_REDIS");
  redis::testenv::Loop loop;
  redis::Client c(loop.ex(), {.nodes = nodes});
  ManualClock clock{1'700'000'000'000};
  RedisCacheOptions o;
  o.prefix = redis::testenv::unique_prefix();
  o.ttl_ms = 1000;
  o.lease_ms = 60'000;  // real time: only a put frees it here
  o.refresh_ahead_ms = 200;
  RedisPageCache cache(c, o, clock);
  Uuid video;
  video.bytes[0] = 0x44;
  auto look = [&] {
    auto l = loop.run(cache.lookup(video, "k", Deadline::after(5s)));
    EXPECT_TRUE(l.ok());
    return l.ok() ? *l : Lookup{};
  };
  auto put = [&](uint64_t version, const char* mark) {
    auto p = std::make_shared<CachedPage>();
    p->next_cursor = mark;
    ASSERT_TRUE(loop.run(cache.put(video, "k", version, p, Deadline::after(5s))).ok());
  };
  auto first = look();
  ASSERT_TRUE(first.fill);
  put(first.version, "A");
  clock.advance_ms(799);
  auto before = look();
  ASSERT_TRUE(before.page);
  EXPECT_FALSE(before.fill) << "before the window";
  clock.advance_ms(1);
  auto in = look();
  ASSERT_TRUE(in.page);
  EXPECT_FALSE(in.stale);
  EXPECT_TRUE(in.fill) << "the first read in the window refreshes";
  auto other = look();
  ASSERT_TRUE(other.page);
  EXPECT_FALSE(other.fill) << "one refresh at a time";
  EXPECT_EQ(cache.stats().refreshes_ahead.load(), 1u);
  put(in.version, "B");  // the refresh: fresh again, for a whole TTL
  clock.advance_ms(700);
  auto after = look();
  ASSERT_TRUE(after.page);
  EXPECT_EQ(*after.page->next_cursor, "B");
  EXPECT_FALSE(after.fill);
  clock.advance_ms(300);
  EXPECT_EQ(look().page, nullptr) << "never past the TTL";
  // At most half the TTL ahead.
  RedisCacheOptions wide = o;
  wide.refresh_ahead_ms = 5'000;
  wide.prefix = redis::testenv::unique_prefix();
  RedisPageCache w(c, wide, clock);
  auto m = loop.run(w.lookup(video, "k", Deadline::after(5s)));
  ASSERT_TRUE(m.ok() && m->fill);
  auto p = std::make_shared<CachedPage>();
  ASSERT_TRUE(loop.run(w.put(video, "k", m->version, p, Deadline::after(5s))).ok());
  clock.advance_ms(499);
  auto early = loop.run(w.lookup(video, "k", Deadline::after(5s)));
  ASSERT_TRUE(early.ok() && early->page);
  EXPECT_FALSE(early->fill);
  clock.advance_ms(1);
  auto half = loop.run(w.lookup(video, "k", Deadline::after(5s)));
  ASSERT_TRUE(half.ok() && half->page);
  EXPECT_TRUE(half->fill);
}

TEST(RedisPageCache, PageCodecRejectsTruncatedBytes) {
  CachedPage p;
  p.items.push_back(PageItem{Uuid{}, Uuid{}, "{\"a\":1"});
  p.next_cursor = "c";
  p.built_at_ms = 1'800'000'000'123;
  p.built_epoch = 77;
  std::string bytes = encode_page(p);
  ASSERT_TRUE(decode_page(bytes));
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode_page(std::string_view(bytes).substr(0, n))) << n;
  EXPECT_FALSE(decode_page(bytes + "x"));
}

// The build time goes with the page, with or without a cursor; a page in the previous
// release's format (no build time) is read with the time unknown (0).
TEST(RedisPageCache, PageCodecCarriesTheBuildTimeAndReadsThePreviousFormat) {
  CachedPage p;
  p.items.push_back(PageItem{Uuid::parse("00000000-0000-0000-0000-000000000001").value(), Uuid{}, "{\"a\":1"});
  p.built_at_ms = 1'800'000'000'123;
  for (bool cursor : {false, true}) {
    p.next_cursor = cursor ? std::optional<std::string>("c1") : std::nullopt;
    auto back = decode_page(encode_page(p));
    ASSERT_TRUE(back) << cursor;
    EXPECT_EQ(back->built_at_ms, p.built_at_ms);
    EXPECT_EQ(back->next_cursor, p.next_cursor);
    ASSERT_EQ(back->items.size(), 1u);
    EXPECT_EQ(back->items[0].id, p.items[0].id);
    EXPECT_EQ(back->items[0].json, p.items[0].json);
  }
  // The previous release's bytes: items, then a cursor flag of 0 or 1 and nothing after it.
  CachedPage old = p;
  old.built_at_ms = 0;
  old.next_cursor = "c1";
  const std::string old_bytes = encode_page(old);
  ASSERT_EQ(old_bytes[old_bytes.size() - 7], 1);  // the flag, before the cursor's length and bytes
  auto back = decode_page(old_bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->built_at_ms, 0);
  EXPECT_EQ(back->next_cursor, old.next_cursor);
}

// The build epoch goes with the builder's incarnation: the process that built the page reads
// it back; another one (another node, the builder restarted) reads it unknown (0). A page
// without an epoch is the previous format (a45b726), read with the epoch unknown.
TEST(RedisPageCache, PageCodecCarriesTheBuildEpochToItsBuilderAlone) {
  CachedPage p;
  p.items.push_back(PageItem{Uuid::parse("00000000-0000-0000-0000-000000000002").value(), Uuid{}, "{\"b\":2"});
  p.built_at_ms = 1'800'000'000'456;
  p.built_epoch = 123'456'789'012ULL;
  for (bool cursor : {false, true}) {
    p.next_cursor = cursor ? std::optional<std::string>("c2") : std::nullopt;
    const std::string bytes = encode_page(p, 41);
    auto mine = decode_page(bytes, 41);
    ASSERT_TRUE(mine) << cursor;
    EXPECT_EQ(mine->built_epoch, p.built_epoch);
    EXPECT_EQ(mine->built_at_ms, p.built_at_ms);
    EXPECT_EQ(mine->next_cursor, p.next_cursor);
    auto theirs = decode_page(bytes, 42);
    ASSERT_TRUE(theirs) << cursor;
    EXPECT_EQ(theirs->built_epoch, 0u);
    EXPECT_EQ(theirs->built_at_ms, p.built_at_ms);
    EXPECT_EQ(theirs->next_cursor, p.next_cursor);
  }
  CachedPage previous = p;
  previous.built_epoch = 0;
  const std::string bytes = encode_page(previous, 41);
  EXPECT_EQ(bytes[bytes.size() - 15], 3) << "flags: cursor and build time, no epoch (a45b726's format)";
  auto back = decode_page(bytes, 41);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->built_epoch, 0u);
  EXPECT_NE(process_incarnation(), 0u);
  EXPECT_EQ(process_incarnation(), process_incarnation());
}

}  // namespace
}  // namespace commentd::cache

namespace commentd::cache::conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, PageCacheConformance, commentd::cache::RedisImpls);
}  // namespace commentd::cache::conformance

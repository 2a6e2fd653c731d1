// The plan's BenchmarkCommentCreation (the storage side of POST /comments) and the page
// cache's hit path (the first step of every cached GET).
#include <benchmark/benchmark.h>

#include "testing/run_sync.h"
#include "testing/temp_store.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unistd.h>
#include <vector>

#include "cache/page_cache.h"
#include "core/clock.h"
#include "core/model.h"
#include "core/uuid.h"
#include "events/schemas.h"
#include "service/comment_service.h"
#include "service/read_model.h"
#include "store/rocks/rocks_store.h"

using namespace commentd;
namespace fs = std::filesystem;

namespace {

using commentd::testing::TempDir;

const std::string kContent =
    "Great explanation of the group-commit path \xe2\x80\x94 the part about one fsync per batch "
    "finally made it click. Could you do a follow-up on compaction tuning? Thanks!";

// The WriteSet CommentService::create_comment builds for a new top-level comment (see
// src/service/comment_service.cpp): the row, the video index entry, the hourly bucket
// entry, its zeroed metrics, the video's comments_count +1, the "created" outbox event and
// the author's read-your-writes mark.
store::WriteSet create_comment_write_set(const Comment& c, const std::string& topic) {
  store::WriteSet ws;
  ws.preconditions.push_back(store::CommentAt{c.id, 0});
  ws.mutations.push_back(store::PutComment{c});
  ws.mutations.push_back(store::IndexPut{store::Index::video, c.video_id, c.created_at, c.id});
  ws.mutations.push_back(store::BucketPut{c.video_id, time_bucket(c.created_at), c.created_at, c.id});
  ws.mutations.push_back(store::MetricsDelta{c.id, 0, 0, 0, c.created_at});
  ws.mutations.push_back(store::StatsDelta{c.video_id, 1, 0, c.created_at});
  ws.mutations.push_back(store::AppendOutbox{topic, c.video_id.str(),
                                             events::comment_event_json(c.id, 1, "created", c, c.created_at)});
  ws.mutations.push_back(store::RecentWrite{c.video_id, c.user_id, c.created_at + 1000});
  return ws;
}

}  // namespace

// Comment creation through RocksStore::commit with `in_flight` commits outstanding (one
// submitting thread; completions arrive on the store's writer thread). With 64 in flight
// the writer groups them into one WriteBatch and, with sync=1, one WAL fsync per group; with
// 1 in flight every comment pays its own write (and fsync): the difference is what group
// commit buys. Each iteration creates in_flight*32 comments and waits for all of them, so
// no commit is counted before it is durable. Includes building the WriteSet (ids, time
// bucket, event JSON) as the service does. Real time; items/s = comments/s.
void BM_comment_commit(benchmark::State& state) {
  const int in_flight = static_cast<int>(state.range(0));
  const bool sync = state.range(1) != 0;
  const int per_iteration = in_flight * 32;

  TempDir dir("comments");
  auto opened = commentd::testing::open_temp_store(dir, sync);
  if (!opened) {
    state.SkipWithError(opened.error().message.c_str());
    return;
  }
  std::unique_ptr<store::rocks::RocksStore> st = std::move(*opened);

  SystemClock clock;
  UuidGenerator ids(clock, 42);
  const std::string topic = service::ServiceOptions{}.comments_topic;
  const Uuid video = ids.next();
  const Uuid user = ids.next();

  std::mutex mu;
  std::condition_variable cv;
  int outstanding = 0;  // GUARDED_BY(mu)
  std::atomic<uint64_t> failed{0};
  auto on_done = [&](Result<store::CommitResult> r) {
    if (!r) failed.fetch_add(1);
    std::lock_guard lk(mu);  // notify under the lock: the waiter may return and destroy cv
    --outstanding;
    cv.notify_all();
  };

  uint64_t created = 0;
  for (auto _ : state) {
    for (int i = 0; i < per_iteration; ++i) {
      Comment c;
      c.id = ids.next();
      c.video_id = video;
      c.user_id = user;
      c.content = kContent;
      c.created_at = c.updated_at = c.id.v7_time_ms();
      store::WriteSet ws = create_comment_write_set(c, topic);
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return outstanding < in_flight; });
        ++outstanding;
      }
      st->commit(std::move(ws), on_done);
    }
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return outstanding == 0; });
    created += static_cast<uint64_t>(per_iteration);
  }
  state.SetItemsProcessed(static_cast<int64_t>(created));

  // Exactness: every commit succeeded and the video's counter saw each comment once.
  auto stats = commentd::testing::run_sync(st->get_video_stats(video, {}));
  if (failed.load() != 0) {
    state.SkipWithError("some commits failed");
  } else if (!stats || stats->comments_count != static_cast<int64_t>(created)) {
    state.SkipWithError("comments_count differs from the number of comments created");
  }
}
BENCHMARK(BM_comment_commit)
    ->ArgNames({"in_flight", "sync"})
    ->Args({64, 0})
    ->Args({1, 0})
    ->Args({64, 1})
    ->Args({1, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

namespace {

// A memory page cache holding one 20-comment page under a hot key, shared by all threads of
// a run. TTL of an hour so the entry cannot expire mid-run. With SystemClock, as in the
// server, so get()'s clock read is included.
struct HotCache {
  SystemClock clock;
  std::unique_ptr<cache::PageCache> cache;
  std::vector<std::string> keys;  // keys[0]: the hot key; keys[1]: a key in another shard
  uint64_t version = 0;
  Uuid video;

  HotCache() {
    cache = cache::make_memory_cache({.max_entries = 100000, .ttl_ms = 3'600'000}, clock);
    UuidGenerator ids(clock, 7);
    Uuid video = ids.next();
    auto page = std::make_shared<cache::CachedPage>();
    for (int i = 0; i < 20; ++i) {
      Comment c;
      c.id = ids.next();
      c.video_id = video;
      c.user_id = ids.next();
      c.content = kContent;
      c.created_at = c.updated_at = c.id.v7_time_ms();
      page->items.push_back({c.id, c.user_id, service::comment_json_open(c, CommentMetrics{})});
    }
    this->video = video;
    (void)commentd::testing::run_sync(cache->bump_video(video, Deadline::never()));
    version = commentd::testing::run_sync(cache->lookup(video, "", Deadline::never()))->version;
    // Keys shaped like CommentService's cache_key: index, list key, sort, limit, '|', cursor.
    // The second key (a later page's) is picked to fall in another shard than the first
    // (MemoryPageCache shards by std::hash % 32), so shared=0 measures no lock sharing.
    // (Built with append: g++ 12 gives a false -Wrestrict on "v" + std::string.)
    std::string first_page("v");
    first_page.append(video.str()).append("n20|");
    keys.push_back(first_page);
    for (int n = 0; keys.size() < 2; ++n) {
      std::string k = first_page;
      k.append("cursor").append(std::to_string(n));
      if (std::hash<std::string>{}(k) % 32 != std::hash<std::string>{}(keys[0]) % 32) keys.push_back(k);
    }
    // Each key its own page object, so shared=0 shares no refcount either.
    for (auto& k : keys)
      (void)commentd::testing::run_sync(
          cache->put(video, k, version, std::make_shared<cache::CachedPage>(*page), Deadline::never()));
  }
};

HotCache& hot_cache() {
  static HotCache h;
  return h;
}

}  // namespace

// A hit of the page cache on the service's path: PageCache::try_lookup, synchronous, no
// coroutine frame (what a fresh memory hit takes; the same operation 819b0ea's benchmark of
// this name timed, its synchronous get()). Arg shared=1: every thread reads the same hot key
// (one shard mutex, one shared_ptr refcount contended), as a viral video's first page does;
// shared=0: each thread its own key. Run from 1 and 2 threads; real time, so items/s is the
// aggregate hit rate of all threads.
void BM_page_cache_get_hit(benchmark::State& state) {
  HotCache& h = hot_cache();
  const bool shared = state.range(0) != 0;
  const std::string& key = h.keys[shared ? 0 : static_cast<size_t>(state.thread_index()) % h.keys.size()];
  for (auto _ : state) {
    auto l = h.cache->try_lookup(h.video, key);
    if (!l || !l->page) {
      state.SkipWithError("cache miss on the hot key");
      break;
    }
    benchmark::DoNotOptimize(l->page);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_page_cache_get_hit)->ArgName("shared")->Arg(1)->Arg(0)->Threads(1)->Threads(2)->UseRealTime();

// The same hits through PageCache::lookup, awaited from a coroutine (it completes inline):
// what a caller pays that may have to wait (a remote cache), the coroutine frame included.
void BM_page_cache_lookup_hit(benchmark::State& state) {
  HotCache& h = hot_cache();
  const bool shared = state.range(0) != 0;
  const std::string& key = h.keys[shared ? 0 : static_cast<size_t>(state.thread_index()) % h.keys.size()];
  boost::asio::io_context ioc;
  boost::asio::co_spawn(ioc, [&]() -> boost::asio::awaitable<void> {
    for (auto _ : state) {
      auto l = co_await h.cache->lookup(h.video, key, Deadline::never());
      if (!l || !l->page) {
        state.SkipWithError("cache miss on the hot key");
        break;
      }
      benchmark::DoNotOptimize(l->page);
    }
  }, boost::asio::detached);
  ioc.run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_page_cache_lookup_hit)->ArgName("shared")->Arg(1)->Arg(0)->Threads(1)->Threads(2)->UseRealTime();

// The per-request storage reads of a logged-in read (the user's view of the video and their
// reactions on the page), awaited from a coroutine on an event loop as the service does.
// row_cache=1: the store's exact row cache answers inline (warmed by one pass over the users
// before the timing starts); row_cache=0: every read goes to RocksDB, either on the calling
// thread (inline=1: the rows are in the memtable, so the read gate keeps them there) or
// handed to the read pool and back (inline=0: storage.inline_reads off; what every read paid
// before the read gate). 10 000 users with one reaction each, visited round-robin.
// Items/s = requests' read pairs/s.
void BM_store_user_reads(benchmark::State& state) {
  const bool row_cache = state.range(0) != 0;
  TempDir dir("user_reads");
  store::rocks::RocksOptions o;
  o.data_dir = dir.str();
  o.sync_writes = false;
  o.row_cache_bytes = row_cache ? store::rocks::RocksOptions{}.row_cache_bytes : 0;
  o.inline_reads = state.range(1) != 0;
  auto opened = store::rocks::RocksStore::open(o);
  if (!opened) {
    state.SkipWithError(opened.error().message.c_str());
    return;
  }
  std::unique_ptr<store::rocks::RocksStore> st = std::move(*opened);
  SystemClock clock;
  UuidGenerator ids(clock, 9);
  const Uuid video = ids.next();
  std::vector<Uuid> page;
  for (int i = 0; i < 20; ++i) page.push_back(ids.next());
  std::vector<Uuid> users;
  store::WriteSet ws;
  for (int u = 0; u < 10000; ++u) {
    users.push_back(ids.next());
    ws.mutations.push_back(store::UserReactionPut{video, users.back(), page[u % 20], ReactionType::like});
  }
  if (!commentd::testing::commit_sync(*st, std::move(ws))) {
    state.SkipWithError("seeding failed");
    return;
  }
  boost::asio::io_context ioc;
  boost::asio::co_spawn(ioc, [&]() -> boost::asio::awaitable<void> {
    auto read_pair = [&](const Uuid& user) -> boost::asio::awaitable<bool> {
      auto v = co_await st->get_user_view(video, user, Deadline::never());
      auto r = co_await st->get_reactions(video, user, page, Deadline::never());
      benchmark::DoNotOptimize(r);
      co_return v.ok() && r.ok();
    };
    if (row_cache)
      for (const Uuid& user : users)
        if (!co_await read_pair(user)) {
          state.SkipWithError("read failed");
          co_return;
        }
    size_t u = 0;
    for (auto _ : state) {
      if (!co_await read_pair(users[u++ % users.size()])) {
        state.SkipWithError("read failed");
        break;
      }
    }
  }, boost::asio::detached);
  ioc.run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_store_user_reads)->ArgNames({"row_cache", "inline"})->Args({0, 0})->Args({0, 1})->Args({1, 1})->UseRealTime();

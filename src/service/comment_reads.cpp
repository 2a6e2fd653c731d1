// The read path: single comments, the cached and coalesced pages of a video or thread, and
// video stats.
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/cursor.h"
#include "service/comment_service.h"
#include "service/read_model.h"
#include "service/service_internal.h"
#include "store/async.h"

namespace commentd::service {

using store::Index;
using PagePtr = std::shared_ptr<const cache::CachedPage>;
using detail::not_found;

namespace {

// How long a miss waits for another node's fill before reading storage itself.
constexpr int kLeaseWaits = 4;
constexpr auto kLeaseWaitStep = std::chrono::milliseconds(10);
// A stale page's background refresh gets this long.
constexpr auto kRefreshTimeout = std::chrono::seconds(5);

std::string cache_key(Index index, const ListRequest& r) {
  std::string k;
  k.reserve(80);
  k.push_back(index == Index::video ? 'v' : 'r');
  k.append(r.key.str());
  k.push_back(r.sort == SortOrder::newest ? 'n' : 'o');
  k.append(std::to_string(r.limit));
  k.push_back('|');
  if (r.cursor) k.append(*r.cursor);
  return k;
}

CursorScope cursor_scope(Index index, const ListRequest& r) {
  return CursorScope{index == Index::video ? CursorList::video : CursorList::replies, r.key, r.sort};
}

}  // namespace

struct CommentService::Flight {
  bool done = false;
  std::optional<Result<PagePtr>> result;
  std::vector<std::function<void(Result<PagePtr>)>> waiters;
  // The leader waits for another holder's fill and has not begun its read; a reader that
  // joins holding the lease then hands it over (`handed`), as its read would begin later.
  bool awaiting_lease = false;
  std::optional<uint64_t> handed;
};

asio::awaitable<Result<std::string>> CommentService::get_comment(Actor actor, Uuid id, Deadline d) {
  co_return co_await store::within(d, get_comment_at(std::move(actor), id, d));
}

asio::awaitable<Result<std::string>> CommentService::get_comment_at(Actor actor, Uuid id, Deadline d) {
  auto cur = co_await load(id, d);
  if (!cur) co_return cur.take_error();
  if (!*cur || !can_see(actor, **cur)) co_return not_found("comment");
  if ((*cur)->status == CommentStatus::deleted) {
    // A deleted comment survives only as the placeholder of a thread that has replies.
    auto has = co_await store_.has_entries(Index::replies, id, d);
    if (!has) co_return has.take_error();
    if (!*has) co_return not_found("comment");
  }
  co_return co_await render(actor, **cur, d);
}

asio::awaitable<Result<std::string>> CommentService::list_comments(Actor actor, ListRequest req,
                                                                   Deadline d) {
  Uuid video = req.key;
  if (auto bad = check_cursor(Index::video, req); !bad) co_return bad.take_error();
  std::optional<cache::Lookup> fresh;
  if (auto held = list_from_memory(actor, Index::video, video, req, fresh)) co_return std::move(*held);
  co_return co_await store::within(d, list(std::move(actor), Index::video, video, std::move(req), d, std::move(fresh)));
}

asio::awaitable<Result<std::string>> CommentService::list_replies(Actor actor, ListRequest req,
                                                                  Deadline d) {
  co_return co_await store::within(d, list_replies_at(std::move(actor), std::move(req), d));
}

asio::awaitable<Result<std::string>> CommentService::list_replies_at(Actor actor, ListRequest req,
                                                                     Deadline d) {
  auto parent = co_await load(req.key, d);
  if (!parent) co_return parent.take_error();
  if (!*parent || !can_see(actor, **parent)) co_return not_found("comment");
  if ((*parent)->status == CommentStatus::deleted) {
    // As get_comment: a deleted comment without replies is gone.
    Uuid id = req.key;
    auto has = co_await store_.has_entries(Index::replies, id, d);
    if (!has) co_return has.take_error();
    if (!*has) co_return not_found("comment");
  }
  Uuid video = (*parent)->video_id;
  if (auto bad = check_cursor(Index::replies, req); !bad) co_return bad.take_error();
  co_return co_await list(std::move(actor), Index::replies, video, std::move(req), d);
}

Status CommentService::check_cursor(Index index, const ListRequest& req) const {
  if (req.cursor) {
    if (auto c = decode_cursor(opts_.cursor_key, *req.cursor, cursor_scope(index, req)); !c)
      return c.take_error();
  }
  return ok_status();
}

std::optional<std::string> CommentService::list_from_memory(const Actor& actor, Index index,
                                                            const Uuid& video_id, const ListRequest& req,
                                                            std::optional<cache::Lookup>& fresh) {
  if (actor.moderator) return std::nullopt;
  auto found = cache_.try_lookup(video_id, cache_key(index, req));
  if (!found || !found->page || found->stale) return std::nullopt;
  const cache::CachedPage& page = *found->page;
  std::vector<ReactionType> my;
  if (actor.user_id) {
    auto held = store_.try_view_and_reactions(video_id, *actor.user_id);
    if (!held || held->view.hidden || !page_serves_user(video_id, *actor.user_id, held->view, &page, false)) {
      fresh = std::move(found);
      return std::nullopt;
    }
    std::vector<Uuid> ids;
    ids.reserve(page.items.size());
    for (auto& it : page.items) ids.push_back(it.id);
    my = mine_known(*actor.user_id, ids, *held->reactions);
  } else {
    my.assign(page.items.size(), ReactionType::none);
  }
  stats_.cache_hits.fetch_add(1, std::memory_order_relaxed);
  return page_json(page.items, my, page.next_cursor);
}

asio::awaitable<Result<std::string>> CommentService::list(Actor actor, Index index, Uuid video_id,
                                                          ListRequest req, Deadline d,
                                                          std::optional<cache::Lookup> fresh) {
  // The public view is shared and cached. Moderators, authors with non-public comments in
  // this video, and authors who just commented on it see more or newer: their pages are
  // built for them alone.
  // The user's view comes from storage, not from this node's memory, so it holds on
  // whichever node the request lands (docs/cluster.md "Read-your-writes across nodes").
  bool public_view = !actor.moderator;
  // (Not a ?: of two co_awaits: g++ 12 miscompiles that.)
  Result<PagePtr> page = PagePtr{};
  if (public_view) {
    // A fresh hit the cache answers from memory needs no lookup coroutine; anything else
    // (a miss, a stale hit, a cache that must ask its server) takes public_page's path.
    if (!fresh) fresh = cache_.try_lookup(video_id, cache_key(index, req));
    if (fresh && (!fresh->page || fresh->stale)) fresh.reset();
  } else {
    fresh.reset();
  }
  bool have_public = false;  // `page` holds the public page
  bool stale = false;        // ... and it was served stale (past its TTL)
  KnownReactions known;       // every reaction of the user in the video, when read with the view
  if (public_view && actor.user_id) {
    Uuid user = *actor.user_id;
    // The user's reactions come with the view where the store reads them in the same round
    // trip: then the page's are known without another read after the page.
    Result<store::Store::ViewAndReactions> v = store::Store::ViewAndReactions{};
    if (fresh) {
      v = co_await store_.get_view_and_reactions(video_id, user, d);
    } else {
      // The view and the public page at once, as almost every view is the public one: a
      // page the cache does not hold in memory costs one round trip less. A personal view
      // drops the public page (built for the others all the same).
      auto ex = co_await asio::this_coro::executor;
      store::Started<store::Store::ViewAndReactions> view(ex, store_.get_view_and_reactions(video_id, user, d));
      page = co_await public_page(index, video_id, req, d, &stale);
      have_public = true;
      v = co_await view.join();
    }
    if (!v) co_return v.take_error();
    const cache::CachedPage* shared = fresh ? fresh->page.get() : (page && *page ? page->get() : nullptr);
    public_view = !v->view.hidden && page_serves_user(video_id, user, v->view, shared, stale);
    known = std::move(v->reactions);
  }

  if (!public_view) {
    stats_.private_pages.fetch_add(1, std::memory_order_relaxed);
    page = co_await build_page(actor, index, req, false, d);
  } else if (fresh) {
    stats_.cache_hits.fetch_add(1, std::memory_order_relaxed);
    page = std::move(fresh->page);
  } else if (!have_public) {
    page = co_await public_page(index, video_id, req, d);
  }
  if (!page) co_return page.take_error();

  std::vector<Uuid> ids;
  ids.reserve((*page)->items.size());
  for (auto& it : (*page)->items) ids.push_back(it.id);
  auto my = co_await mine(actor, video_id, ids, d, known);
  if (!my) co_return my.take_error();
  co_return page_json((*page)->items, *my, (*page)->next_cursor);
}

asio::awaitable<Result<PagePtr>> CommentService::wait_for(std::shared_ptr<Flight> flight) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<PagePtr>)>(
      [this](auto handler, std::shared_ptr<Flight> f) {
        std::function<void(Result<PagePtr>)> deliver = posting(std::move(handler));
        std::unique_lock lk(flights_mu_);
        if (f->done) {
          auto r = *f->result;
          lk.unlock();
          deliver(std::move(r));
        } else {
          f->waiters.push_back(std::move(deliver));
        }
      },
      asio::use_awaitable, std::move(flight));
}

asio::awaitable<Result<PagePtr>> CommentService::public_page(Index index, Uuid video_id,
                                                             ListRequest req, Deadline d, bool* stale) {
  std::string key = cache_key(index, req);
  auto l = co_await cache_.lookup(video_id, key, d);
  if (!l) {
    stats_.cache_errors.fetch_add(1, std::memory_order_relaxed);
    stats_.cache_misses.fetch_add(1, std::memory_order_relaxed);
    const Fill none;  // named locals, not temporaries inside co_await (g++ 12)
    co_return co_await coalesced_page(std::move(key), video_id, none, index, req, d);
  }
  if (l->page) {
    stats_.cache_hits.fetch_add(1, std::memory_order_relaxed);
    if (stale) *stale = l->stale;
    if (l->fill) {
      // Served stale, or fresh near its TTL (redis.refresh_ahead); refreshed behind this
      // request, under the version this lookup saw.
      asio::co_spawn(co_await asio::this_coro::executor,
                     refresh(std::move(key), video_id, l->version, index, req),
                     asio::detached);
    }
    co_return l->page;
  }
  stats_.cache_misses.fetch_add(1, std::memory_order_relaxed);
  // A miss without the fill lease: another node's fill, or this node's own read in flight
  // (which the flight below joins at once, with no look again).
  Fill fill;
  if (l->fill) fill.version = l->version;
  else fill.await_lease = true;
  co_return co_await coalesced_page(std::move(key), video_id, fill, index, req, d);
}

asio::awaitable<void> CommentService::refresh(std::string key, Uuid video_id, uint64_t version,
                                              Index index, ListRequest req) {
  auto d = Deadline::after(kRefreshTimeout);
  const Fill fill{.version = version};
  (void)co_await coalesced_page(std::move(key), video_id, fill, index, std::move(req), d);
}

asio::awaitable<Result<PagePtr>> CommentService::coalesced_page(std::string key, Uuid video_id,
                                                                Fill fill, Index index, ListRequest req,
                                                                Deadline d) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lk(flights_mu_);
    auto& f = flights_[key];
    if (!f) {
      f = std::make_shared<Flight>();
      f->awaiting_lease = fill.await_lease;
      leader = true;
    } else if (fill.version && f->awaiting_lease && !f->handed) {
      // This reader's lease, unused, would hold every node's readers off the key until it
      // expires (redis.lease_ttl): the leader fills under it.
      f->handed = fill.version;
    }
    flight = f;
  }
  if (!leader) {
    stats_.coalesced_reads.fetch_add(1, std::memory_order_relaxed);
    // The wait is built outside this coroutine (wait_for is a plain function): g++ 12
    // destroyed a frame local twice when the initiation lambda was written inline here.
    Result<PagePtr> shared = co_await wait_for(std::move(flight));
    co_return shared;
  }

  // The lease is another node's: this node alone looks again, a few times (bounded by the
  // deadline), for all its readers of the key; then it reads storage without filling.
  Result<PagePtr> built = PagePtr{};
  bool found = false;
  // A lease handed over by a joining reader, taken before this read begins (so its version
  // is as good as that reader's own lookup); none is handed once this returns.
  auto take_handed = [&] {
    std::lock_guard lk(flights_mu_);
    if (flight->handed) {
      fill.version = flight->handed;
      flight->awaiting_lease = false;
    }
    return fill.version.has_value();
  };
  for (int i = 0; fill.await_lease && i < kLeaseWaits && !d.expired() && !take_handed(); ++i) {
    stats_.lease_waits.fetch_add(1, std::memory_order_relaxed);
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_at(std::min(d.at, Deadline::clock::now() + kLeaseWaitStep));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (take_handed()) break;
    auto l = co_await cache_.lookup(video_id, key, d);
    if (!l) break;
    if (l->page && !l->stale) {  // the holder's fill (a stale page is another build's to refresh)
      built = l->page;
      found = true;
      break;
    }
    if (l->fill) {
      fill.version = l->version;
      break;
    }
  }
  if (fill.await_lease) {
    std::lock_guard lk(flights_mu_);
    if (!fill.version && flight->handed) fill.version = flight->handed;
    flight->awaiting_lease = false;
  }
  if (!found) {
    Actor anonymous;  // a named local: g++ 12 destroys a temporary inside co_await wrongly
    // A reader past the first page tends to page on: the pages after this one come from the
    // same scans and are put beside it (src/cache/README.md "Read-ahead").
    const size_t ahead = req.cursor && fill.version ? opts_.read_ahead_pages : 0;
    stats_.public_pages.fetch_add(1, std::memory_order_relaxed);
    auto pages = co_await build_pages(anonymous, index, req, true, ahead, d, fill.version);
    if (pages) built = pages->front();
    else built = pages.take_error();
    if (built && fill.version) {
      auto st = co_await cache_.put(video_id, key, *fill.version, *built, d);
      if (!st) stats_.cache_errors.fetch_add(1, std::memory_order_relaxed);
      if (pages->size() > 1) {
        pages->erase(pages->begin());
        asio::co_spawn(co_await asio::this_coro::executor,
                       put_ahead(video_id, *fill.version, index, req, std::move(*pages), (*built)->next_cursor),
                       asio::detached);
      }
    }
  }
  std::vector<std::function<void(Result<PagePtr>)>> waiters;
  {
    std::lock_guard lk(flights_mu_);
    flight->done = true;
    flight->result = built;
    waiters.swap(flight->waiters);
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second == flight) flights_.erase(it);
  }
  for (auto& w : waiters) w(built);
  co_return built;
}

asio::awaitable<void> CommentService::put_ahead(Uuid video_id, uint64_t version, Index index,
                                                ListRequest req, std::vector<PagePtr> pages,
                                                std::optional<std::string> cursor) {
  auto d = Deadline::after(kRefreshTimeout);
  for (auto& page : pages) {
    if (!cursor) break;
    req.cursor = std::move(cursor);
    cursor = page->next_cursor;
    stats_.pages_read_ahead.fetch_add(1, std::memory_order_relaxed);
    auto st = co_await cache_.put(video_id, cache_key(index, req), version, std::move(page), d);
    if (!st) {
      stats_.cache_errors.fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
}

asio::awaitable<Result<PagePtr>> CommentService::build_page(Actor actor, Index index,
                                                            ListRequest req, bool public_view,
                                                            Deadline d) {
  auto pages = co_await build_pages(std::move(actor), index, std::move(req), public_view, 0, d);
  if (!pages) co_return pages.take_error();
  co_return std::move(pages->front());
}

asio::awaitable<Result<std::vector<PagePtr>>> CommentService::build_pages(Actor actor, Index index,
                                                                         ListRequest req,
                                                                         bool public_view,
                                                                         size_t ahead, Deadline d,
                                                                         std::optional<uint64_t> version) {
  std::optional<CursorPos> after;
  if (req.cursor) {
    auto c = decode_cursor(opts_.cursor_key, *req.cursor, cursor_scope(index, req));
    if (!c) co_return c.take_error();
    after = *c;
  }
  // Rows the viewer may not see are skipped; the scan is bounded so a page of mostly
  // hidden rows ends early with a cursor rather than reading without limit.
  const size_t want = req.limit * (1 + ahead);
  const size_t scan_budget = want * 10 + 100;
  const uint64_t built_epoch = write_epoch().load();  // before any storage read
  const TimeMs built_at = clock_.now_ms();
  // The rows read here are what a reaction's check reads (service/comment_checks.h): kept,
  // a reader's reaction to a comment of the page it just read needs no read of its own.
  const uint64_t check_generation = checks_ ? checks_->begin_fill() : 0;
  const auto read_at = CommentChecks::Clock::now();
  size_t scanned = 0;
  std::vector<Comment> rows;
  std::vector<CommentMetrics> counts;  // one per row while every scan answered them
  bool scans_counted = true;
  std::optional<CursorPos> last;
  bool exhausted = false;
  while (rows.size() < want && scanned < scan_budget && !exhausted) {
    store::ScanRequest sr{index, req.key, req.sort, after, want - rows.size() + 1};
    sr.with_counts = true;
    if (public_view) sr.reuse_generation = version;
    auto res = co_await store_.scan(sr, d);
    if (!res) co_return res.take_error();
    scanned += sr.max_rows;
    exhausted = res->exhausted;
    scans_counted = scans_counted && res->counts.size() == res->rows.size();
    for (size_t i = 0; i < res->rows.size(); ++i) {
      Comment& c = res->rows[i];
      if (rows.size() == want) { exhausted = false; break; }
      if (checks_) checks_->put(c, check_generation, read_at);
      last = CursorPos{c.created_at, c.id};
      bool visible = public_view ? is_public(c.status) : can_see(actor, c);
      if (!visible) continue;
      rows.push_back(std::move(c));
      if (scans_counted) counts.push_back(res->counts[i]);
    }
    if (rows.size() < want && res->last) last = res->last;  // skip past unjoined entries
    after = last;
    if (res->rows.empty() && !res->last) exhausted = true;
  }

  Result<std::vector<CommentMetrics>> metrics = std::move(counts);
  if (!scans_counted) {
    std::vector<Uuid> ids;
    ids.reserve(rows.size());
    for (auto& c : rows) ids.push_back(c.id);
    metrics = co_await store_.get_counts(ids, d);
    if (!metrics) co_return metrics.take_error();
  }

  // Page j holds rows [j*limit, (j+1)*limit). A full page followed by another one ends at its
  // last row, exactly where a read from its own cursor would end it; the last page ends as
  // the scan did (at its last row or past hidden ones, or not at all when the list ended).
  std::vector<PagePtr> pages;
  const CursorScope scope = cursor_scope(index, req);
  for (size_t begin = 0; begin == 0 || begin < rows.size(); begin += req.limit) {
    const size_t end = std::min(rows.size(), begin + req.limit);
    auto page = std::make_shared<cache::CachedPage>();
    page->built_epoch = built_epoch;
    page->built_at_ms = built_at;
    page->items.reserve(end - begin);
    for (size_t i = begin; i < end; ++i)
      page->items.push_back({rows[i].id, rows[i].user_id, comment_json_open(rows[i], (*metrics)[i])});
    if (end < rows.size())
      page->next_cursor = encode_cursor(opts_.cursor_key, scope, CursorPos{rows[end - 1].created_at, rows[end - 1].id});
    else if (!exhausted && last)
      page->next_cursor = encode_cursor(opts_.cursor_key, scope, *last);
    pages.push_back(std::move(page));
  }
  co_return pages;
}

std::atomic<uint64_t>& write_epoch() {
  static std::atomic<uint64_t> epoch{1};  // 0 is CachedPage's "not known"
  return epoch;
}

void CommentService::note_authored(const Uuid& video, const Uuid& user, TimeMs recent_until) {
  // After the commit: a page whose reads begin after this increment sees the write.
  const uint64_t epoch = write_epoch().fetch_add(1) + 1;
  std::lock_guard lk(authored_mu_);
  authored_.put({video, user}, Authored{epoch, recent_until});
}

bool CommentService::page_has_authors_writes(const Uuid& video, const Uuid& user,
                                             const store::Store::UserView& view,
                                             const cache::CachedPage& page) {
  if (page.built_epoch == 0) return false;
  std::lock_guard lk(authored_mu_);
  const Authored* a = authored_.peek({video, user});
  // The stored mark still ours: no later write of theirs (through another node, or one whose
  // answer was lost) is marked. Equal, not at most: a store keeping the last mark written
  // rather than the largest (clocks apart) may hold a smaller one from a later write.
  return a && view.recent_until == a->recent_until && page.built_epoch >= a->epoch;
}

bool CommentService::page_serves_user(const Uuid& video, const Uuid& user, const store::Store::UserView& view,
                                      const cache::CachedPage* page, bool stale) {
  const TimeMs now = clock_.now_ms();
  const TimeMs until = view.recent_until;  // the write's time + page_ttl (RecentWrite)
  bool after_mark = false;
  if (now >= until) {
    if (page && page->built_at_ms != 0) {
      // The page says when its reads began. Begun once the mark was over, it holds every write
      // marked that was durable within page_ttl of its time, as a fresh page after the mark is
      // meant to. One begun earlier serves the user only once no page begun before the mark's
      // end can still be served (kept page_ttl from its put, then the stale window; the
      // build's own time aside).
      after_mark = page->built_at_ms >= until || now >= until + opts_.page_ttl_ms + opts_.stale_window_ms;
    } else {
      // Not known (a page in the previous release's Redis format): a fresh page was put within
      // page_ttl, so after the mark it holds the write; a stale one may be older, so for it
      // the mark lasts the stale window longer.
      after_mark = !stale || now >= until + opts_.stale_window_ms;
    }
  }
  return after_mark || (page && page_has_authors_writes(video, user, view, *page));
}

asio::awaitable<Result<std::string>> CommentService::video_stats(Uuid video_id, Deadline d) {
  co_return co_await store::within(d, video_stats_at(video_id, d));
}

asio::awaitable<Result<std::string>> CommentService::video_stats_at(Uuid video_id, Deadline d) {
  auto s = co_await store_.get_video_stats(video_id, d);
  if (!s) co_return s.take_error();
  auto [trending, tier] = video_tier_ ? video_tier_(video_id) : std::pair{false, Tier::low};
  co_return video_stats_json(video_id, *s, trending, tier);
}

}  // namespace commentd::service

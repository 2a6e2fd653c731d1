// CommentService: the business rules of comments and reactions, behind the HTTP handlers and
// in front of the seams (Store, PageCache, RateLimiter). The write rules are in
// comment_writes.cpp, the read path (cache, coalescing) in comment_reads.cpp. Writes go to storage as one atomic
// WriteSet each, with the counter deltas and the outbox event they imply; reads are served
// from the read-model cache where the caller's view is the public one.
//
// Thread-safe. Every coroutine runs on the caller's executor and never blocks it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "cache/page_cache.h"
#include "core/lru_map.h"
#include "core/cursor.h"
#include "core/deadline.h"
#include "core/error.h"
#include "core/model.h"
#include "limit/rate_limiter.h"
#include "service/comment_checks.h"
#include "service/reaction_overlay.h"
#include "store/store.h"

namespace commentd::service {

namespace asio = boost::asio;

// What a rate-limiter error means (limits.on_error): open lets the request through (the
// plan's default), closed refuses it with 503.
enum class LimiterErrorPolicy : uint8_t { open, closed };

struct ServiceOptions {
  size_t max_content_bytes = 10000;
  uint32_t max_reply_depth = 1;
  uint32_t node_id = 1;
  uint64_t max_pending_ops = 100000;  // reaction ops appended but not applied; beyond it 503
  std::string comments_topic = "persistent://pavilion/comments/events";    // key: video id
  TimeMs page_ttl_ms = 1000;  // new comments reach others' cached pages within this
  // The page cache's stale-while-revalidate window (redis.stale_while_revalidate): a page
  // past its TTL may be served this much longer, so an author's mark keeps them off pages
  // begun before its end for as long past it (docs/cluster.md "Read-your-writes across nodes").
  TimeMs stale_window_ms = 0;
  // A public page read from a cursor (its cache missed) also caches the next this many pages
  // from the same scans (cache.read_ahead_pages; src/cache/README.md "Read-ahead").
  size_t read_ahead_pages = 3;
  CursorKey cursor_key;       // signs page cursors; the same on every node
  LimiterErrorPolicy on_limiter_error = LimiterErrorPolicy::open;
  // The reaction op's WriteSet also writes the user's user_reactions row, so the user's next
  // read sees the reaction on whichever node serves it: needed where several nodes share the
  // store (CQL). The embedded engine is one process, whose overlay answers the user until
  // the applier writes that row (and is refilled from the op log at start, so a kill -9 loses
  // nothing of it): there the row would be a third of the writer's work per reaction, for
  // nobody (`make bench`, reactions closed loop: the writer's CPU per reaction 16.9 -> 11.6 us).
  bool reaction_row_at_request = true;
};

struct ListRequest {
  Uuid key;  // video_id, or the parent comment for replies
  SortOrder sort = SortOrder::newest;
  size_t limit = 20;
  std::optional<std::string> cursor;
};

// Counters the metrics module reads (each component owns its numbers; STYLE.md #11).
struct ServiceStats {
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> cache_misses{0};
  std::atomic<uint64_t> coalesced_reads{0};
  std::atomic<uint64_t> pages_read_ahead{0};  // pages put beside a cursor page's fill
  // Public pages built from storage (one per coalesced read), and the looks again of a
  // node's read for another node's fill (one per node and wait, whatever its readers).
  std::atomic<uint64_t> public_pages{0};
  std::atomic<uint64_t> lease_waits{0};
  // Pages built from storage for one reader, never cached: moderators, authors with hidden
  // comments in the video, authors inside a recent write's mark who met no page holding it.
  std::atomic<uint64_t> private_pages{0};
  std::atomic<uint64_t> write_conflicts{0};
  std::atomic<uint64_t> rate_limited{0};
  std::atomic<uint64_t> cache_errors{0};    // lookups/puts/bumps that failed (served as misses)
  std::atomic<uint64_t> limiter_errors{0};  // limiter checks that failed (then on_limiter_error)
  // Cluster mode: reactions the bus took (202), and those whose read-your-writes row failed.
  std::atomic<uint64_t> reactions_published{0};
  std::atomic<uint64_t> reaction_view_errors{0};
};

class CommentService {
 public:
  CommentService(store::Store& store, cache::PageCache& cache, limit::RateLimiter& limiter,
                 const Clock& clock, UuidGenerator& ids, ReactionOverlay& overlay,
                 ServiceOptions opts);

  // Each returns the JSON body of the success response. `d` is the request's deadline,
  // passed to every seam call. Past it a read answers Errc::deadline_exceeded at once (its
  // storage reads are abandoned); a write answers it only before its commit is queued:
  // once queued, the write completes and is answered.
  asio::awaitable<Result<std::string>> create_comment(Actor actor, Uuid video_id,
                                                      std::string content,
                                                      std::optional<Uuid> parent_id, Deadline d);
  asio::awaitable<Result<std::string>> get_comment(Actor actor, Uuid id, Deadline d);
  asio::awaitable<Result<std::string>> list_comments(Actor actor, ListRequest req, Deadline d);
  asio::awaitable<Result<std::string>> list_replies(Actor actor, ListRequest req, Deadline d);
  asio::awaitable<Result<std::string>> edit_comment(Actor actor, Uuid id, std::string content,
                                                    Deadline d);
  asio::awaitable<Status> delete_comment(Actor actor, Uuid id, Deadline d);
  asio::awaitable<Result<std::string>> set_status(Actor actor, Uuid id, CommentStatus status,
                                                  Deadline d);
  asio::awaitable<Result<std::string>> react(Actor actor, Uuid comment_id, ReactionType type,
                                             Deadline d);
  asio::awaitable<Result<std::string>> video_stats(Uuid video_id, Deadline d);

  // Called after each reaction op is durable in the log (the wiring wakes the applier).
  void set_on_op_appended(std::function<void()> fn) { on_op_appended_ = std::move(fn); }
  // Cluster mode (docs/cluster.md "Reaction op", CQL): each reaction op goes to the event
  // bus instead of the node's op log. `publish(op, event)` completes once the bus holds the
  // reaction event `event` (key: the comment id), with its position on the bus (the answer's
  // seq); the 202 waits for it. Unset (the default): the op log. REQUIRES: set before serving.
  using ReactionPublisher = std::function<asio::awaitable<Result<uint64_t>>(ReactionOp op, std::string event)>;
  void set_reaction_publisher(ReactionPublisher p) { publish_reaction_ = std::move(p); }
  // Applied position of the reaction log, for backpressure; set by the applier.
  void set_applied_seq_source(std::function<uint64_t()> fn) { applied_seq_ = std::move(fn); }
  // Trending/tier of a video, from the activity tracker (defaults to low/false).
  void set_video_tier_source(std::function<std::pair<bool, Tier>(const Uuid&)> fn) {
    video_tier_ = std::move(fn);
  }

  // Told of each comment write (video, and the parent whose reply count moved) for the
  // activity tiers.
  void set_on_activity(std::function<void(const Uuid& video, const std::optional<Uuid>& comment)> fn) {
    on_activity_ = std::move(fn);
  }

  // Also limits each write by the caller's address (Actor::address_subject) with `l`, a
  // limiter holding the per-address rules; null (the default) = no per-address limit.
  // REQUIRES: called before serving; `l` outlives the service.
  void set_address_limiter(limit::RateLimiter* l) { address_limiter_ = l; }

  // A read-through cache of the stored counters (redis/counter_cache.h), used where one
  // comment is rendered; told after a write commits a change to a comment's reply count.
  // Unset (the default) = counts from storage. REQUIRES: set before serving.
  struct CountsCache {
    std::function<asio::awaitable<Result<CommentMetrics>>(Uuid, Deadline)> get;
    std::function<asio::awaitable<Status>(Uuid, Deadline)> invalidate;
  };
  void set_counts_cache(CountsCache c) { counts_ = std::move(c); }

  // What this node read of comments, trusted by reactions for a few seconds (for a store
  // without rows in memory: CQL); this service forgets a comment's copy after each change it
  // commits to it. Unset (the default) = every reaction reads its comment.
  // REQUIRES: set before serving; `checks` outlives the service.
  void set_comment_checks(CommentChecks* checks) { checks_ = checks; }
  // The layer every node shares under it (Redis): asked on a miss of `checks` before storage,
  // and told of every change this service commits. Unset (the default) = none.
  // REQUIRES: set before serving; `shared` outlives the service.
  void set_shared_comment_checks(SharedCommentChecks* shared) { shared_checks_ = shared; }
  // A comment changed on another node (its event): drops its kept copies, this node's and the
  // shared one. The shared layer's failure is returned (the event is handled again).
  asio::awaitable<Status> forget_comment_check(Uuid id, Deadline d);

  ServiceStats& stats() { return stats_; }

 private:
  struct Built;
  // react() in cluster mode: `op` to the bus, then the user's read-your-writes row.
  asio::awaitable<Result<std::string>> react_on_bus(ReactionOp op, Deadline d);
  asio::awaitable<Result<std::optional<Comment>>> load(const Uuid& id, Deadline d);
  // load() bounded by `d` (the write path's reads, before the commit).
  asio::awaitable<Result<std::optional<Comment>>> load_within(const Uuid& id, Deadline d);
  // load_within() for a reaction: answered from checks_ when it holds a fresh copy.
  asio::awaitable<Result<std::optional<Comment>>> load_for_reaction(const Uuid& id, Deadline d);
  asio::awaitable<Result<std::string>> render(const Actor& actor, const Comment& c, Deadline d);
  // The bodies of the public reads, raced against the deadline by their callers.
  asio::awaitable<Result<std::string>> get_comment_at(Actor actor, Uuid id, Deadline d);
  asio::awaitable<Result<std::string>> list_replies_at(Actor actor, ListRequest req, Deadline d);
  asio::awaitable<Result<std::string>> video_stats_at(Uuid video_id, Deadline d);
  // The cursor's check comes first, in the callers of list() and list_from_memory().
  Status check_cursor(store::Index index, const ListRequest& req) const;
  // `fresh`: the fresh public page list_from_memory() found (so it is not looked up twice).
  asio::awaitable<Result<std::string>> list(Actor actor, store::Index index, Uuid video_id,
                                            ListRequest req, Deadline d,
                                            std::optional<cache::Lookup> fresh = std::nullopt);
  // list()'s answer when memory alone holds it: a fresh public page the cache answers without
  // a lookup, and, for a signed-in user, their view (public: no hidden comments, no recent
  // write) and every reaction of theirs in the video, held by the store. Synchronous: no
  // coroutine and no deadline race, as a hot video's reads are almost all this. nullopt:
  // something must be read or built; ask list(), with `fresh` (set when the page was found
  // fresh and the user's rows were not in memory).
  std::optional<std::string> list_from_memory(const Actor& actor, store::Index index, const Uuid& video_id,
                                              const ListRequest& req, std::optional<cache::Lookup>& fresh);
  asio::awaitable<Result<cache::PagePtr>> build_page(Actor actor, store::Index index,
                                                     ListRequest req, bool public_view, Deadline d);
  // The page req asks for, then up to `ahead` pages after it, each as a read from the
  // previous one's cursor would build it; from the same scans. Never empty. `version`: the
  // page cache's version of the video the pages are built under (a public build that will be
  // put); the store may then reuse rows it read under it (ScanRequest::reuse_generation).
  asio::awaitable<Result<std::vector<cache::PagePtr>>> build_pages(Actor actor, store::Index index,
                                                                   ListRequest req, bool public_view,
                                                                   size_t ahead, Deadline d,
                                                                   std::optional<uint64_t> version = std::nullopt);
  // Puts read-ahead pages: the first under `cursor` (the page before it's next cursor), each
  // next under the one before it's next cursor; under `version`, behind the request.
  asio::awaitable<void> put_ahead(Uuid video_id, uint64_t version, store::Index index,
                                  ListRequest req, std::vector<cache::PagePtr> pages,
                                  std::optional<std::string> cursor);
  // The public page: from the cache, or read (coalesced) and put back when this caller holds
  // the fill lease. A cache error counts as a miss. `stale`, when given, is set when the page
  // was served stale (past its TTL, inside the stale-while-revalidate window).
  asio::awaitable<Result<cache::PagePtr>> public_page(store::Index index, Uuid video_id,
                                                      ListRequest req, Deadline d, bool* stale = nullptr);
  // Refreshes a stale page behind the request that served it.
  asio::awaitable<void> refresh(std::string key, Uuid video_id, uint64_t version,
                                store::Index index, ListRequest req);
  struct Flight;
  // Waits for another request's read of the same page (not a coroutine).
  asio::awaitable<Result<cache::PagePtr>> wait_for(std::shared_ptr<Flight> f);
  // What a page read does with the cache: put the page under `version` (this caller holds
  // the fill lease), or first wait for another holder's fill (`await_lease`), or neither.
  struct Fill {
    std::optional<uint64_t> version;
    bool await_lease = false;
  };
  // Reads the page once for all concurrent callers of `key` on this node (what the first
  // caller's `fill` says is done once for all of them).
  asio::awaitable<Result<cache::PagePtr>> coalesced_page(std::string key, Uuid video_id, Fill fill,
                                                         store::Index index, ListRequest req,
                                                         Deadline d);
  // The actor's reaction to each of `ids`: looked up in `known` (every reaction of the actor
  // in the video) when given, else read; this node's ops not yet applied over either.
  using KnownReactions = std::optional<std::vector<std::pair<Uuid, ReactionType>>>;
  asio::awaitable<Result<std::vector<ReactionType>>> mine(const Actor& actor, const Uuid& video_id,
                                                          const std::vector<Uuid>& ids, Deadline d,
                                                          const KnownReactions& known = std::nullopt);
  // mine() with `known` given: no read.
  std::vector<ReactionType> mine_known(const Uuid& user, const std::vector<Uuid>& ids,
                                       const std::vector<std::pair<Uuid, ReactionType>>& known) const;
  // This node's reaction ops not yet applied, over `rows` (the user's reactions to `ids`).
  void with_pending(const Uuid& user, const std::vector<Uuid>& ids, std::vector<ReactionType>& rows) const;
  // The one place that decides what a limiter answer means (limits.on_error included): the
  // user's bucket, then the address's. A refusal by the second leaves the first consumed.
  asio::awaitable<Status> check_rate(const Actor& actor, limit::Action a, Deadline d);
  Status decide(const limit::Decision& dec);
  // Every cached page of the video is invalid; a cache error is counted, never returned.
  asio::awaitable<void> invalidate(Uuid video_id, Deadline d);
  // The tail every comment write shares: `c` (the new row) and its `event` join `ws`, which
  // is committed unless `d` has passed (then nothing is written). conflict: a precondition
  // failed and nothing was written; re-read and retry. After a commit, an edit, delete or
  // moderation (`bump`) invalidates the video's cached pages.
  enum class Committed { yes, conflict };
  asio::awaitable<Result<Committed>> commit_comment(store::WriteSet ws, Comment c, const char* event,
                                                    TimeMs now, bool bump, Deadline d);
  // The counters of `id` (a reply's parent) changed in a committed write; the same policy.
  asio::awaitable<void> invalidate_counts(std::optional<Uuid> id, Deadline d);

  store::Store& store_;
  cache::PageCache& cache_;
  limit::RateLimiter& limiter_;
  limit::RateLimiter* address_limiter_ = nullptr;
  CommentChecks* checks_ = nullptr;
  SharedCommentChecks* shared_checks_ = nullptr;
  const Clock& clock_;
  UuidGenerator& ids_;
  ReactionOverlay& overlay_;
  const ServiceOptions opts_;
  ServiceStats stats_;
  std::function<void()> on_op_appended_;
  ReactionPublisher publish_reaction_;
  std::function<uint64_t()> applied_seq_;
  std::function<std::pair<bool, Tier>(const Uuid&)> video_tier_;
  std::function<void(const Uuid&, const std::optional<Uuid>&)> on_activity_;
  CountsCache counts_;

  // Request coalescing: concurrent misses on one cache key wait for the first one's read.
  std::mutex flights_mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;  // GUARDED_BY(flights_mu_)

  // Authors' recent writes made through this process (docs/cluster.md "Read-your-writes
  // across nodes"): (video, user) -> the write epoch after the write committed, and the
  // recent-write mark it set. An author inside their mark reads the shared page when it was
  // built after their write (built_epoch >= epoch) and no later write of theirs is marked
  // (the stored mark is still this one); otherwise their own page, as before.
  struct Authored {
    uint64_t epoch = 0;
    TimeMs recent_until = 0;
  };
  void note_authored(const Uuid& video, const Uuid& user, TimeMs recent_until);
  // True when the author may read `page`: see Authored.
  bool page_has_authors_writes(const Uuid& video, const Uuid& user, const store::Store::UserView& view,
                               const cache::CachedPage& page);
  // True when the shared `page` (null: none; `stale`: served past its TTL) may be served to
  // `user`, whose view is `view`: no recent write of theirs is marked, or the page holds it
  // (built after it: CachedPage::built_at_ms, or this process's epoch: page_has_authors_writes).
  bool page_serves_user(const Uuid& video, const Uuid& user, const store::Store::UserView& view,
                        const cache::CachedPage* page, bool stale);
  std::mutex authored_mu_;
  LruMap<std::pair<Uuid, Uuid>, Authored, UuidPairHash> authored_{100000};  // GUARDED_BY(authored_mu_)
};

// This process's write epoch: a counter every committed comment write of a CommentService
// moves after its commit; a page records it before its storage reads (CachedPage::built_epoch).
// One per process, so services sharing an in-process cache compare the same counter.
std::atomic<uint64_t>& write_epoch();

}  // namespace commentd::service

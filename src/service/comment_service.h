// CommentService: the business rules of comments and reactions, behind the HTTP handlers and
// in front of the seams (Store, PageCache, RateLimiter). The write rules are in
// comment_writes.cpp, the read path (cache, coalescing) in comment_reads.cpp. Writes go to storage as one atomic
// WriteSet each, with the counter deltas and the outbox event they imply; reads are served
// from the read-model cache where the caller's view is the public one.
//
// Thread-safe. Every coroutine runs on the caller's executor and never blocks it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "cache/page_cache.h"
#include "core/error.h"
#include "core/model.h"
#include "limit/rate_limiter.h"
#include "service/reaction_overlay.h"
#include "store/store.h"

namespace commentd::service {

namespace asio = boost::asio;

struct ServiceOptions {
  size_t max_content_bytes = 10000;
  uint32_t max_reply_depth = 1;
  uint32_t node_id = 1;
  uint64_t max_pending_ops = 100000;  // reaction ops appended but not applied; beyond it 503
  std::string comments_topic = "persistent://pavilion/comments/events";    // key: video id
  std::string reactions_topic = "persistent://pavilion/reactions/events";  // key: comment id
  TimeMs page_ttl_ms = 1000;  // new comments reach others' cached pages within this
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
  std::atomic<uint64_t> write_conflicts{0};
  std::atomic<uint64_t> rate_limited{0};
};

class CommentService {
 public:
  CommentService(store::Store& store, asio::thread_pool& read_pool, cache::PageCache& cache,
                 limit::RateLimiter& limiter, const Clock& clock, UuidGenerator& ids,
                 ReactionOverlay& overlay, ServiceOptions opts);

  // Each returns the JSON body of the success response.
  asio::awaitable<Result<std::string>> create_comment(Actor actor, Uuid video_id,
                                                      std::string content,
                                                      std::optional<Uuid> parent_id);
  asio::awaitable<Result<std::string>> get_comment(Actor actor, Uuid id);
  asio::awaitable<Result<std::string>> list_comments(Actor actor, ListRequest req);
  asio::awaitable<Result<std::string>> list_replies(Actor actor, ListRequest req);
  asio::awaitable<Result<std::string>> edit_comment(Actor actor, Uuid id, std::string content);
  asio::awaitable<Status> delete_comment(Actor actor, Uuid id);
  asio::awaitable<Result<std::string>> set_status(Actor actor, Uuid id, CommentStatus status);
  asio::awaitable<Result<std::string>> react(Actor actor, Uuid comment_id, ReactionType type);
  asio::awaitable<Result<std::string>> video_stats(Uuid video_id);

  // Called after each reaction op is durable in the log (the wiring wakes the applier).
  void set_on_op_appended(std::function<void()> fn) { on_op_appended_ = std::move(fn); }
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

  ServiceStats& stats() { return stats_; }

 private:
  struct Built;
  asio::awaitable<Result<std::optional<Comment>>> load(const Uuid& id);
  asio::awaitable<Result<std::string>> render(const Actor& actor, const Comment& c);
  asio::awaitable<Result<std::string>> list(Actor actor, store::Index index, Uuid video_id,
                                            ListRequest req);
  asio::awaitable<Result<std::shared_ptr<const cache::CachedPage>>> build_page(
      Actor actor, store::Index index, ListRequest req, bool public_view);
  struct Flight;
  // Waits for another request's read of the same page (not a coroutine).
  asio::awaitable<Result<std::shared_ptr<const cache::CachedPage>>> wait_for(std::shared_ptr<Flight> f);
  asio::awaitable<Result<std::shared_ptr<const cache::CachedPage>>> coalesced_page(
      const std::string& key, uint64_t version, store::Index index, ListRequest req);
  asio::awaitable<Result<std::vector<ReactionType>>> mine(const Actor& actor, const Uuid& video_id,
                                                          const std::vector<Uuid>& ids);
  Status check_rate(const Actor& actor, limit::Action a);

  store::Store& store_;
  asio::thread_pool& read_pool_;
  cache::PageCache& cache_;
  limit::RateLimiter& limiter_;
  const Clock& clock_;
  UuidGenerator& ids_;
  ReactionOverlay& overlay_;
  const ServiceOptions opts_;
  ServiceStats stats_;
  std::function<void()> on_op_appended_;
  std::function<uint64_t()> applied_seq_;
  std::function<std::pair<bool, Tier>(const Uuid&)> video_tier_;
  std::function<void(const Uuid&, const std::optional<Uuid>&)> on_activity_;

  // Request coalescing: concurrent misses on one cache key wait for the first one's read.
  std::mutex flights_mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;  // GUARDED_BY(flights_mu_)
};

}  // namespace commentd::service

#include "service/comment_service.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/cursor.h"
#include "core/validate.h"
#include "events/schemas.h"
#include "service/read_model.h"
#include "store/async.h"

namespace commentd::service {

using store::Index;
using store::WriteSet;
using PagePtr = std::shared_ptr<const cache::CachedPage>;

namespace {

constexpr int kMaxConflictRetries = 8;

Error not_found(std::string_view what) {
  return Error(Errc::not_found, std::string(what) + " not found", "not_found");
}
Error need_auth() {
  return Error(Errc::unauthenticated, "this request needs an authenticated user", "unauthenticated");
}

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

// Counter deltas implied by a comment moving from `before` to `after` visibility.
void count_transition(WriteSet& ws, const Comment& c, bool before, bool after, TimeMs now) {
  if (before == after) return;
  int64_t d = after ? 1 : -1;
  ws.mutations.push_back(store::StatsDelta{c.video_id, d, 0, now});
  if (c.parent_id) ws.mutations.push_back(store::MetricsDelta{*c.parent_id, 0, 0, d, now});
}

}  // namespace

struct CommentService::Flight {
  bool done = false;
  std::optional<Result<PagePtr>> result;
  std::vector<std::function<void(Result<PagePtr>)>> waiters;
};

CommentService::CommentService(store::Store& store, asio::thread_pool& read_pool,
                               cache::PageCache& cache, limit::RateLimiter& limiter,
                               const Clock& clock, UuidGenerator& ids, ReactionOverlay& overlay,
                               ServiceOptions opts)
    : store_(store),
      read_pool_(read_pool),
      cache_(cache),
      limiter_(limiter),
      clock_(clock),
      ids_(ids),
      overlay_(overlay),
      opts_(std::move(opts)),
      recent_writers_(clock, opts_.page_ttl_ms) {}

Status CommentService::check_rate(const Actor& actor, limit::Action a) {
  auto d = limiter_.check(*actor.user_id, a);
  if (d.allowed) return ok_status();
  stats_.rate_limited.fetch_add(1, std::memory_order_relaxed);
  int secs = static_cast<int>((d.retry_after_ms + 999) / 1000);
  return Error(Errc::rate_limited, "rate limit exceeded; retry in " + std::to_string(secs) + " s",
               "rate_limited", std::max(secs, 1));
}

asio::awaitable<Result<std::optional<Comment>>> CommentService::load(const Uuid& id) {
  co_return co_await store::read(read_pool_, [this, id](store::ReadMode m) {
    return store_.get_comment(id, m);
  });
}

asio::awaitable<Result<std::vector<ReactionType>>> CommentService::mine(
    const Actor& actor, const Uuid& video_id, const std::vector<Uuid>& ids) {
  if (!actor.user_id || ids.empty()) co_return std::vector<ReactionType>(ids.size(), ReactionType::none);
  Uuid user = *actor.user_id;
  auto rows = co_await store::read(read_pool_, [&](store::ReadMode m) {
    return store_.get_reactions(video_id, user, ids, m);
  });
  if (!rows) co_return rows.take_error();
  for (size_t i = 0; i < ids.size(); ++i)
    if (auto pending = overlay_.find(ids[i], user)) (*rows)[i] = *pending;
  co_return std::move(*rows);
}

asio::awaitable<Result<std::string>> CommentService::render(const Actor& actor, const Comment& c) {
  std::vector<Uuid> ids{c.id};
  auto m = co_await store::read(read_pool_, [&](store::ReadMode mode) {
    return store_.get_metrics(ids, mode);
  });
  if (!m) co_return m.take_error();
  auto my = co_await mine(actor, c.video_id, ids);
  if (!my) co_return my.take_error();
  co_return comment_json(c, (*m)[0], (*my)[0]);
}

// ------------------------------------------------------------------------------- writes

asio::awaitable<Result<std::string>> CommentService::create_comment(Actor actor, Uuid video_id,
                                                                    std::string content,
                                                                    std::optional<Uuid> parent_id) {
  if (!actor.authenticated()) co_return need_auth();
  if (auto v = validate_content(content, opts_.max_content_bytes); !v) co_return v.take_error();
  if (auto r = check_rate(actor, limit::Action::create_comment); !r) co_return r.take_error();

  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    Comment c;
    c.id = ids_.next();
    c.video_id = video_id;
    c.user_id = *actor.user_id;
    c.content = content;
    c.created_at = c.updated_at = c.id.v7_time_ms();
    WriteSet ws;

    if (parent_id) {
      auto p = co_await load(*parent_id);
      if (!p) co_return p.take_error();
      if (!*p || !can_see(actor, **p))
        co_return Error(Errc::unprocessable, "parent comment not found", "parent_not_found");
      const Comment& parent = **p;
      if (parent.video_id != video_id)
        co_return Error(Errc::unprocessable, "parent comment belongs to another video", "parent_other_video");
      if (parent.status == CommentStatus::deleted)
        co_return Error(Errc::unprocessable, "parent comment is deleted", "parent_deleted");
      c.reply_to = parent.id;
      if (parent.depth + 1 > opts_.max_reply_depth) {
        // Past the depth limit a reply joins its parent's thread (YouTube style at depth 1).
        c.parent_id = parent.parent_id;
        c.depth = parent.depth;
      } else {
        c.parent_id = parent.id;
        c.depth = parent.depth + 1;
      }
      // The parent must not change (e.g. be deleted) between our read and the write.
      ws.preconditions.push_back(store::CommentAt{parent.id, parent.version});
      if (*c.parent_id != parent.id) {
        auto root = co_await load(*c.parent_id);
        if (!root) co_return root.take_error();
        if (!*root) co_return Error(Errc::unprocessable, "thread not found", "parent_not_found");
        ws.preconditions.push_back(store::CommentAt{(*root)->id, (*root)->version});
      }
    }
    ws.preconditions.push_back(store::CommentAt{c.id, 0});
    ws.mutations.push_back(store::PutComment{c});
    if (c.parent_id)
      ws.mutations.push_back(store::IndexPut{Index::replies, *c.parent_id, c.created_at, c.id});
    else
      ws.mutations.push_back(store::IndexPut{Index::video, video_id, c.created_at, c.id});
    ws.mutations.push_back(store::BucketPut{video_id, time_bucket(c.created_at), c.created_at, c.id});
    ws.mutations.push_back(store::MetricsDelta{c.id, 0, 0, 0, c.created_at});
    count_transition(ws, c, false, true, c.created_at);
    ws.mutations.push_back(store::AppendOutbox{opts_.comments_topic, c.id.str(),
                                               events::comment_event_json("created", c, c.created_at)});

    auto r = co_await store::commit(store_, std::move(ws));
    if (!r) {
      if (r.error().code == Errc::conflict) {
        stats_.write_conflicts.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      co_return r.take_error();
    }
    // No version bump: see service/recent_writers.h.
    recent_writers_.wrote(video_id, c.user_id);
    if (on_activity_) on_activity_(video_id, c.parent_id);
    co_return comment_json(c, CommentMetrics{}, ReactionType::none);
  }
  co_return Error(Errc::conflict, "the parent comment kept changing; retry", "conflict");
}

asio::awaitable<Result<std::string>> CommentService::edit_comment(Actor actor, Uuid id,
                                                                  std::string content) {
  if (!actor.authenticated()) co_return need_auth();
  if (auto v = validate_content(content, opts_.max_content_bytes); !v) co_return v.take_error();
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto cur = co_await load(id);
    if (!cur) co_return cur.take_error();
    if (!*cur || !can_see(actor, **cur)) co_return not_found("comment");
    Comment c = **cur;
    if (c.status == CommentStatus::deleted)
      co_return Error(Errc::conflict, "a deleted comment cannot be edited", "comment_deleted");
    if (c.user_id != *actor.user_id)
      co_return Error(Errc::forbidden, "only the author may edit a comment", "forbidden");
    TimeMs now = clock_.now_ms();
    c.content = content;
    c.edited = true;
    c.updated_at = std::max(now, c.created_at);
    ++c.version;
    WriteSet ws;
    ws.preconditions.push_back(store::CommentAt{id, c.version - 1});
    ws.mutations.push_back(store::PutComment{c});
    ws.mutations.push_back(store::AppendOutbox{opts_.comments_topic, c.id.str(),
                                               events::comment_event_json("updated", c, now)});
    auto r = co_await store::commit(store_, std::move(ws));
    if (!r) {
      if (r.error().code == Errc::conflict) { stats_.write_conflicts.fetch_add(1); continue; }
      co_return r.take_error();
    }
    cache_.bump_video(c.video_id);
    co_return co_await render(actor, c);
  }
  co_return Error(Errc::conflict, "the comment kept changing; retry", "conflict");
}

asio::awaitable<Status> CommentService::delete_comment(Actor actor, Uuid id) {
  if (!actor.authenticated()) co_return need_auth();
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto cur = co_await load(id);
    if (!cur) co_return cur.take_error();
    if (!*cur || !can_see(actor, **cur)) co_return not_found("comment");
    Comment c = **cur;
    if (c.user_id != *actor.user_id && !actor.moderator)
      co_return Error(Errc::forbidden, "only the author or a moderator may delete a comment", "forbidden");
    if (c.status == CommentStatus::deleted) co_return ok_status();  // idempotent

    auto has_replies = co_await store::read(read_pool_, [&](store::ReadMode m) {
      return store_.has_entries(Index::replies, id, m);
    });
    if (!has_replies) co_return has_replies.take_error();

    TimeMs now = std::max(clock_.now_ms(), c.created_at);
    WriteSet ws;
    ws.preconditions.push_back(store::CommentAt{id, c.version});
    bool was_counted = is_counted(c.status);
    if (!is_public(c.status))
      ws.mutations.push_back(store::HiddenMark{c.video_id, c.user_id, c.id, false});
    count_transition(ws, c, was_counted, false, now);
    if (!*has_replies) {
      // Leaves every list; the row stays as the soft-deleted record, and the entry in the
      // video's bucketed history stays too (the recount of its reactions reads it).
      if (c.parent_id)
        ws.mutations.push_back(store::IndexDelete{Index::replies, *c.parent_id, c.created_at, c.id});
      else
        ws.mutations.push_back(store::IndexDelete{Index::video, c.video_id, c.created_at, c.id});
    }
    c.status = CommentStatus::deleted;
    c.deleted_at = now;
    c.updated_at = now;
    c.content.clear();
    ++c.version;
    ws.mutations.push_back(store::PutComment{c});
    ws.mutations.push_back(store::AppendOutbox{opts_.comments_topic, c.id.str(),
                                               events::comment_event_json("deleted", c, now)});
    auto r = co_await store::commit(store_, std::move(ws));
    if (!r) {
      if (r.error().code == Errc::conflict) { stats_.write_conflicts.fetch_add(1); continue; }
      co_return r.take_error();
    }
    cache_.bump_video(c.video_id);
    if (on_activity_) on_activity_(c.video_id, c.parent_id);
    co_return ok_status();
  }
  co_return Error(Errc::conflict, "the comment kept changing; retry", "conflict");
}

asio::awaitable<Result<std::string>> CommentService::set_status(Actor actor, Uuid id,
                                                                CommentStatus status) {
  if (!actor.authenticated()) co_return need_auth();
  if (!actor.moderator)
    co_return Error(Errc::forbidden, "only moderators may change a comment's status", "forbidden");
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto cur = co_await load(id);
    if (!cur) co_return cur.take_error();
    if (!*cur) co_return not_found("comment");
    Comment c = **cur;
    if (c.status == CommentStatus::deleted)
      co_return Error(Errc::conflict, "a deleted comment cannot be moderated", "comment_deleted");
    if (c.status == status) co_return co_await render(actor, c);
    TimeMs now = std::max(clock_.now_ms(), c.created_at);
    WriteSet ws;
    ws.preconditions.push_back(store::CommentAt{id, c.version});
    count_transition(ws, c, is_counted(c.status), is_counted(status), now);
    if (is_public(c.status) != is_public(status))
      ws.mutations.push_back(store::HiddenMark{c.video_id, c.user_id, c.id, !is_public(status)});
    c.status = status;
    c.updated_at = now;
    ++c.version;
    ws.mutations.push_back(store::PutComment{c});
    ws.mutations.push_back(store::AppendOutbox{opts_.comments_topic, c.id.str(),
                                               events::comment_event_json("status_changed", c, now)});
    auto r = co_await store::commit(store_, std::move(ws));
    if (!r) {
      if (r.error().code == Errc::conflict) { stats_.write_conflicts.fetch_add(1); continue; }
      co_return r.take_error();
    }
    cache_.bump_video(c.video_id);
    co_return co_await render(actor, c);
  }
  co_return Error(Errc::conflict, "the comment kept changing; retry", "conflict");
}

asio::awaitable<Result<std::string>> CommentService::react(Actor actor, Uuid comment_id,
                                                           ReactionType type) {
  if (!actor.authenticated()) co_return need_auth();
  if (auto r = check_rate(actor, limit::Action::add_reaction); !r) co_return r.take_error();
  if (applied_seq_ && store_.last_op_seq() - applied_seq_() >= opts_.max_pending_ops)
    co_return Error(Errc::overloaded, "too many reactions waiting to be applied", "reaction_backlog", 1);
  auto cur = co_await load(comment_id);
  if (!cur) co_return cur.take_error();
  if (!*cur || !can_see(actor, **cur) || (*cur)->status == CommentStatus::deleted)
    co_return not_found("comment");

  ReactionOp op;
  op.op_id = ids_.next();
  op.comment_id = comment_id;
  op.video_id = (*cur)->video_id;
  op.user_id = *actor.user_id;
  op.type = type;
  op.timestamp = op.op_id.v7_time_ms();
  op.node_id = opts_.node_id;
  WriteSet ws;
  ws.mutations.push_back(store::AppendReactionOp{op});
  auto r = co_await store::commit(store_, std::move(ws));
  if (!r) co_return r.take_error();
  op.seq = r->op_seqs.at(0);
  overlay_.put(op);  // durable now: the user reads it back at once
  if (on_op_appended_) on_op_appended_();
  co_return reaction_op_json(op);
}

// -------------------------------------------------------------------------------- reads

asio::awaitable<Result<std::string>> CommentService::get_comment(Actor actor, Uuid id) {
  auto cur = co_await load(id);
  if (!cur) co_return cur.take_error();
  if (!*cur || !can_see(actor, **cur)) co_return not_found("comment");
  if ((*cur)->status == CommentStatus::deleted) {
    // A deleted comment survives only as the placeholder of a thread that has replies.
    auto has = co_await store::read(read_pool_, [&](store::ReadMode m) {
      return store_.has_entries(Index::replies, id, m);
    });
    if (!has) co_return has.take_error();
    if (!*has) co_return not_found("comment");
  }
  co_return co_await render(actor, **cur);
}

asio::awaitable<Result<std::string>> CommentService::list_comments(Actor actor, ListRequest req) {
  Uuid video = req.key;
  co_return co_await list(std::move(actor), Index::video, video, std::move(req));
}

asio::awaitable<Result<std::string>> CommentService::list_replies(Actor actor, ListRequest req) {
  auto parent = co_await load(req.key);
  if (!parent) co_return parent.take_error();
  if (!*parent || !can_see(actor, **parent)) co_return not_found("comment");
  Uuid video = (*parent)->video_id;
  co_return co_await list(std::move(actor), Index::replies, video, std::move(req));
}

asio::awaitable<Result<std::string>> CommentService::list(Actor actor, Index index, Uuid video_id,
                                                          ListRequest req) {
  if (req.cursor) {
    if (auto c = decode_cursor(*req.cursor, req.sort); !c) co_return c.take_error();
  }
  // The public view is shared and cached. Moderators, authors with non-public comments in
  // this video, and authors who just commented on it see more or newer: their pages are
  // built for them alone.
  bool public_view = !actor.moderator && !(actor.user_id && recent_writers_.recent(video_id, *actor.user_id));
  if (public_view && actor.user_id) {
    Uuid user = *actor.user_id;
    auto h = co_await store::read(read_pool_, [&](store::ReadMode m) {
      return store_.has_hidden(video_id, user, m);
    });
    if (!h) co_return h.take_error();
    public_view = !*h;
  }

  Result<PagePtr> page = PagePtr{};
  if (public_view) {
    std::string key = cache_key(index, req);
    uint64_t version = cache_.video_version(video_id);
    if (auto hit = cache_.get(key, version)) {
      stats_.cache_hits.fetch_add(1, std::memory_order_relaxed);
      page = hit;
    } else {
      stats_.cache_misses.fetch_add(1, std::memory_order_relaxed);
      page = co_await coalesced_page(key, version, index, req);
    }
  } else {
    page = co_await build_page(actor, index, req, false);
  }
  if (!page) co_return page.take_error();

  std::vector<Uuid> ids;
  ids.reserve((*page)->items.size());
  for (auto& it : (*page)->items) ids.push_back(it.id);
  auto my = co_await mine(actor, video_id, ids);
  if (!my) co_return my.take_error();
  co_return page_json((*page)->items, *my, (*page)->next_cursor);
}

asio::awaitable<Result<PagePtr>> CommentService::wait_for(std::shared_ptr<Flight> flight) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result<PagePtr>)>(
      [this](auto handler, std::shared_ptr<Flight> f) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto deliver = [h](Result<PagePtr> r) {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h, r = std::move(r)]() mutable { std::move(*h)(std::move(r)); });
        };
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

asio::awaitable<Result<PagePtr>> CommentService::coalesced_page(const std::string& key,
                                                                uint64_t version, Index index,
                                                                ListRequest req) {
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lk(flights_mu_);
    auto& f = flights_[key];
    if (!f) {
      f = std::make_shared<Flight>();
      leader = true;
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

  auto built = co_await build_page(Actor{}, index, req, true);
  if (built) cache_.put(key, version, *built);
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

asio::awaitable<Result<PagePtr>> CommentService::build_page(Actor actor, Index index,
                                                            ListRequest req, bool public_view) {
  std::optional<CursorPos> after;
  if (req.cursor) {
    auto c = decode_cursor(*req.cursor, req.sort);
    if (!c) co_return c.take_error();
    after = *c;
  }
  // Rows the viewer may not see are skipped; the scan is bounded so a page of mostly
  // hidden rows ends early with a cursor rather than reading without limit.
  const size_t scan_budget = req.limit * 10 + 100;
  size_t scanned = 0;
  std::vector<Comment> rows;
  std::optional<CursorPos> last;
  bool exhausted = false;
  while (rows.size() < req.limit && scanned < scan_budget && !exhausted) {
    store::ScanRequest sr{index, req.key, req.sort, after, req.limit - rows.size() + 1};
    auto res = co_await store::read(read_pool_, [&](store::ReadMode m) { return store_.scan(sr, m); });
    if (!res) co_return res.take_error();
    scanned += sr.max_rows;
    exhausted = res->exhausted;
    for (auto& c : res->rows) {
      if (rows.size() == req.limit) { exhausted = false; break; }
      last = CursorPos{c.created_at, c.id};
      bool visible = public_view ? is_public(c.status) : can_see(actor, c);
      if (visible) rows.push_back(std::move(c));
    }
    if (rows.size() < req.limit && res->last) last = res->last;  // skip past unjoined entries
    after = last;
    if (res->rows.empty() && !res->last) exhausted = true;
  }

  std::vector<Uuid> ids;
  ids.reserve(rows.size());
  for (auto& c : rows) ids.push_back(c.id);
  auto metrics = co_await store::read(read_pool_, [&](store::ReadMode m) {
    return store_.get_metrics(ids, m);
  });
  if (!metrics) co_return metrics.take_error();

  auto page = std::make_shared<cache::CachedPage>();
  page->items.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    page->items.push_back({rows[i].id, rows[i].user_id, comment_json_open(rows[i], (*metrics)[i])});
  if (!exhausted && last) page->next_cursor = encode_cursor(req.sort, *last);
  co_return PagePtr(std::move(page));
}

asio::awaitable<Result<std::string>> CommentService::video_stats(Uuid video_id) {
  auto s = co_await store::read(read_pool_, [&](store::ReadMode m) {
    return store_.get_video_stats(video_id, m);
  });
  if (!s) co_return s.take_error();
  auto [trending, tier] = video_tier_ ? video_tier_(video_id) : std::pair{false, Tier::low};
  co_return video_stats_json(video_id, *s, trending, tier);
}

}  // namespace commentd::service

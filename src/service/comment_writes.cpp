// The write rules: create, reply, edit, delete, moderation and the reaction op. Each write
// is one atomic WriteSet with its preconditions, counter deltas and outbox event.
#include "core/validate.h"
#include "events/schemas.h"
#include "service/comment_service.h"
#include "service/read_model.h"
#include "service/service_internal.h"
#include "store/async.h"

namespace commentd::service {

using store::Index;
using store::WriteSet;
using detail::kMaxConflictRetries;
using detail::need_auth;
using detail::not_found;

namespace {

// After a commit the request's deadline no longer applies (the write is answered); the
// cache invalidation still gets a bound of its own.
constexpr auto kInvalidateBudget = std::chrono::seconds(1);

// Counter deltas implied by a comment moving from `before` to `after` visibility.
void count_transition(WriteSet& ws, const Comment& c, bool before, bool after, TimeMs now) {
  if (before == after) return;
  int64_t d = after ? 1 : -1;
  ws.mutations.push_back(store::StatsDelta{c.video_id, d, 0, now});
  if (c.parent_id) ws.mutations.push_back(store::MetricsDelta{*c.parent_id, 0, 0, d, now});
}

Error parent_not_visible() {
  return Error(Errc::unprocessable, "the parent comment or its thread is not visible",
               "parent_not_visible");
}

}  // namespace

asio::awaitable<Result<std::string>> CommentService::create_comment(Actor actor, Uuid video_id,
                                                                    std::string content,
                                                                    std::optional<Uuid> parent_id,
                                                                    Deadline d) {
  if (!actor.authenticated()) co_return need_auth();
  if (auto v = validate_content(content, opts_.max_content_bytes); !v) co_return v.take_error();
  if (auto r = co_await check_rate(actor, limit::Action::create_comment, d); !r)
    co_return r.take_error();

  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    Comment c;
    c.id = ids_.next();
    c.video_id = video_id;
    c.user_id = *actor.user_id;
    c.content = content;
    c.created_at = c.updated_at = c.id.v7_time_ms();
    WriteSet ws;

    if (parent_id) {
      auto p = co_await load_within(*parent_id, d);
      if (!p) co_return p.take_error();
      if (!*p || !can_see(actor, **p))
        co_return Error(Errc::unprocessable, "parent comment not found", "parent_not_found");
      const Comment& parent = **p;
      if (parent.video_id != video_id)
        co_return Error(Errc::unprocessable, "parent comment belongs to another video", "parent_other_video");
      if (parent.status == CommentStatus::deleted)
        co_return Error(Errc::unprocessable, "parent comment is deleted", "parent_deleted");
      // A reply is public, so its parent must be: no one (author or moderator) replies under
      // a hidden, pending or spam comment.
      if (parent.status != CommentStatus::visible) co_return parent_not_visible();
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
        auto root = co_await load_within(*c.parent_id, d);
        if (!root) co_return root.take_error();
        if (!*root) co_return Error(Errc::unprocessable, "thread not found", "parent_not_found");
        if (!is_public((*root)->status)) co_return parent_not_visible();
        ws.preconditions.push_back(store::CommentAt{(*root)->id, (*root)->version});
      }
    }
    ws.preconditions.push_back(store::CommentAt{c.id, 0});
    if (c.parent_id)
      ws.mutations.push_back(store::IndexPut{Index::replies, *c.parent_id, c.created_at, c.id});
    else
      ws.mutations.push_back(store::IndexPut{Index::video, video_id, c.created_at, c.id});
    // The bucket rule (docs/cluster.md "Time buckets"): hourly while the video trends on
    // this node's activity tracker, daily otherwise; the reader merges the two granularities.
    const bool trending = video_tier_ && video_tier_(video_id).first;
    ws.mutations.push_back(store::BucketPut{video_id, comment_bucket(c.created_at, trending), c.created_at, c.id});
    ws.mutations.push_back(store::MetricsDelta{c.id, 0, 0, 0, c.created_at});
    count_transition(ws, c, false, true, c.created_at);
    ws.mutations.push_back(store::RecentWrite{video_id, c.user_id, c.created_at + opts_.page_ttl_ms});
    auto r = co_await commit_comment(std::move(ws), c, "created", c.created_at, false, d);
    if (!r) co_return r.take_error();
    if (*r == Committed::conflict) continue;
    // No version bump: a new comment reaches others' cached pages within page_ttl, and its
    // author reads fresh pages of the video until then, on any node (the RecentWrite mark).
    if (on_activity_) on_activity_(video_id, c.parent_id);
    co_return comment_json(c, CommentMetrics{}, ReactionType::none);
  }
  co_return Error(Errc::conflict, "the parent comment kept changing; retry", "conflict");
}

asio::awaitable<Result<std::string>> CommentService::edit_comment(Actor actor, Uuid id,
                                                                  std::string content,
                                                                  Deadline d) {
  if (!actor.authenticated()) co_return need_auth();
  if (auto v = validate_content(content, opts_.max_content_bytes); !v) co_return v.take_error();
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto cur = co_await load_within(id, d);
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
    // Other nodes' caches are bumped by their cache-invalidation subscribers; until then the
    // author reads this video fresh wherever the request lands.
    ws.mutations.push_back(store::RecentWrite{c.video_id, c.user_id, now + opts_.page_ttl_ms});
    auto r = co_await commit_comment(std::move(ws), c, "updated", now, true, d);
    if (!r) co_return r.take_error();
    if (*r == Committed::conflict) continue;
    co_return co_await render(actor, c, Deadline::never());  // committed: always answered
  }
  co_return Error(Errc::conflict, "the comment kept changing; retry", "conflict");
}

asio::awaitable<Status> CommentService::delete_comment(Actor actor, Uuid id, Deadline d) {
  if (!actor.authenticated()) co_return need_auth();
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto cur = co_await load_within(id, d);
    if (!cur) co_return cur.take_error();
    if (!*cur || !can_see(actor, **cur)) co_return not_found("comment");
    Comment c = **cur;
    if (c.user_id != *actor.user_id && !actor.moderator)
      co_return Error(Errc::forbidden, "only the author or a moderator may delete a comment", "forbidden");
    if (c.status == CommentStatus::deleted) co_return ok_status();  // idempotent

    auto has_replies = co_await store::within(d, store_.has_entries(Index::replies, id, d));
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
    if (!actor.moderator)
      ws.mutations.push_back(store::RecentWrite{c.video_id, *actor.user_id, now + opts_.page_ttl_ms});
    auto r = co_await commit_comment(std::move(ws), c, "deleted", now, true, d);
    if (!r) co_return r.take_error();
    if (*r == Committed::conflict) continue;
    if (on_activity_) on_activity_(c.video_id, c.parent_id);
    co_return ok_status();
  }
  co_return Error(Errc::conflict, "the comment kept changing; retry", "conflict");
}

asio::awaitable<Result<std::string>> CommentService::set_status(Actor actor, Uuid id,
                                                                CommentStatus status,
                                                                Deadline d) {
  if (!actor.authenticated()) co_return need_auth();
  if (!actor.moderator)
    co_return Error(Errc::forbidden, "only moderators may change a comment's status", "forbidden");
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    auto cur = co_await load_within(id, d);
    if (!cur) co_return cur.take_error();
    if (!*cur) co_return not_found("comment");
    Comment c = **cur;
    if (c.status == CommentStatus::deleted)
      co_return Error(Errc::conflict, "a deleted comment cannot be moderated", "comment_deleted");
    if (c.status == status) co_return co_await render(actor, c, d);
    TimeMs now = std::max(clock_.now_ms(), c.created_at);
    WriteSet ws;
    ws.preconditions.push_back(store::CommentAt{id, c.version});
    count_transition(ws, c, is_counted(c.status), is_counted(status), now);
    if (is_public(c.status) != is_public(status))
      ws.mutations.push_back(store::HiddenMark{c.video_id, c.user_id, c.id, !is_public(status)});
    c.status = status;
    c.updated_at = now;
    ++c.version;
    auto r = co_await commit_comment(std::move(ws), c, "status_changed", now, true, d);
    if (!r) co_return r.take_error();
    if (*r == Committed::conflict) continue;
    co_return co_await render(actor, c, Deadline::never());  // committed: always answered
  }
  co_return Error(Errc::conflict, "the comment kept changing; retry", "conflict");
}

asio::awaitable<Result<CommentService::Committed>> CommentService::commit_comment(
    WriteSet ws, Comment c, const char* event, TimeMs now, bool bump, Deadline d) {
  ws.mutations.push_back(store::PutComment{c});
  ws.mutations.push_back(store::AppendOutbox{opts_.comments_topic, c.video_id.str(),
                                             events::comment_event_json(ids_.next(), opts_.node_id, event, c, now)});
  std::optional<store::RecentWrite> mark;
  for (auto& m : ws.mutations)
    if (auto* rw = std::get_if<store::RecentWrite>(&m)) mark = *rw;
  if (d.expired()) co_return store::deadline_error();  // not queued: nothing written
  auto r = co_await store::commit(store_, std::move(ws));
  // Before the answer, whatever it is (a write that timed out may still land): this node's
  // next reaction to the comment reads it again, and so does any node without a copy of its
  // own (the shared one is gone too). A new comment has no copy: absences are not kept.
  if (std::string_view(event) != "created") (void)co_await forget_comment_check(c.id, Deadline::after(kInvalidateBudget));
  if (!r) {
    if (r.error().code != Errc::conflict) co_return r.take_error();
    stats_.write_conflicts.fetch_add(1, std::memory_order_relaxed);
    co_return Committed::conflict;
  }
  if (mark) note_authored(mark->video_id, mark->user_id, mark->until);
  if (bump) co_await invalidate(c.video_id, Deadline::after(kInvalidateBudget));
  // A reply's create, delete or moderation moves its parent's reply count.
  co_await invalidate_counts(c.parent_id, Deadline::after(kInvalidateBudget));
  co_return Committed::yes;
}

asio::awaitable<Result<std::string>> CommentService::react(Actor actor, Uuid comment_id,
                                                           ReactionType type, Deadline d) {
  if (!actor.authenticated()) co_return need_auth();
  if (auto r = co_await check_rate(actor, limit::Action::add_reaction, d); !r)
    co_return r.take_error();
  // The applier can read an op before the writer publishes last_op_seq (the op is in the
  // memtable first), so `applied` may briefly pass `last`: no backlog then, not a wrap-around.
  uint64_t applied = applied_seq_ ? applied_seq_() : 0, last = store_.last_op_seq();
  if (applied_seq_ && last > applied && last - applied >= opts_.max_pending_ops)
    co_return Error(Errc::overloaded, "too many reactions waiting to be applied", "reaction_backlog", 1);
  auto cur = co_await load_for_reaction(comment_id, d);
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
  if (publish_reaction_) co_return co_await react_on_bus(op, d);
  // The op is its event too: the op log is the reactions topic's outbox, read by the relay
  // (workers/outbox_relay.h op_log_source), so nothing else is written for it.
  WriteSet ws;
  ws.mutations.push_back(store::AppendReactionOp{op});
  if (opts_.reaction_row_at_request)
    ws.mutations.push_back(store::UserReactionPut{op.video_id, op.user_id, op.comment_id, op.type, op.timestamp, op.node_id});
  if (d.expired()) co_return store::deadline_error();  // not queued: nothing written
  auto r = co_await store::commit(store_, std::move(ws));
  if (!r) co_return r.take_error();
  op.seq = r->op_seqs.at(0);
  overlay_.put(op);  // durable now: the user reads it back at once
  if (on_op_appended_) on_op_appended_();
  co_return reaction_op_json(op);
}

asio::awaitable<Result<std::string>> CommentService::react_on_bus(ReactionOp op, Deadline d) {
  // The 202 means the bus holds the op. Bus away, or no receipt before the deadline: 503 with
  // Retry-After and nothing written here. (After a timeout the broker may still store the op;
  // then it is applied like any other: a PUT of a reaction is safe to retry.)
  auto refused = [](const std::string& why) {
    return Error(Errc::unavailable, "the reaction could not be queued; retry: " + why, "reaction_bus_unavailable", 1);
  };
  if (d.expired()) co_return refused("the request's deadline passed");
  auto p = co_await store::within(d, publish_reaction_(op, events::reaction_event_json(op.op_id, op)));
  if (!p) co_return refused(p.error().message);
  op.seq = *p;
  stats_.reactions_published.fetch_add(1, std::memory_order_relaxed);
  // Read-your-writes on any node: the user's entry in user_reactions (the owner writes it
  // again when it applies the op). The op is accepted whatever this write answers.
  WriteSet ws;
  ws.mutations.push_back(store::UserReactionPut{op.video_id, op.user_id, op.comment_id, op.type, op.timestamp, op.node_id});
  if (auto r = co_await store::commit(store_, std::move(ws)); !r)
    stats_.reaction_view_errors.fetch_add(1, std::memory_order_relaxed);
  co_return reaction_op_json(op);
}

}  // namespace commentd::service

// CqlStore: what the owner of a comment key reads for its recount, and the leases that fence
// it (docs/cluster.md "Reaction apply", "Owner leases").
#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

Result<std::optional<Store::CommentRecount>> CqlStore::owner_recount(const Uuid& comment, const Uuid& video) {
  CommentRecount out;
  out.video_id = video;
  auto m = exec_blocking(*st_->metrics_get, args(V(comment)), read_opts({}));
  if (!m) return m.take_error();
  if (m->size() > 0) {
    auto l = m->i64(0, 1), d = m->i64(0, 2), r = m->i64(0, 3);
    if (!l || !d || !r) return Error(Errc::internal, "cql: corrupt comment_metrics row");
    out.stored.likes = l->value_or(0);
    out.stored.dislikes = d->value_or(0);
    out.stored.replies_count = r->value_or(0);
  }
  out.truth.replies_count = out.stored.replies_count;  // not the reaction owner's to count
  // Every register of the comment, page by page (a hot comment has many).
  std::string paging;
  for (;;) {
    auto o = read_opts({});
    o.page_size = 5000;
    o.paging_state = paging;
    auto rows = exec_blocking(*st_->register_types, args(V(comment)), std::move(o));
    if (!rows) return rows.take_error();
    for (size_t i = 0; i < rows->size(); ++i) {
      auto t = rows->bytes(i, 0);
      if (!t) return Error(Errc::internal, "cql: corrupt reactions row");
      auto type = *t ? reaction_from_text(**t) : ReactionType::none;
      if (type == ReactionType::like) ++out.truth.likes;
      if (type == ReactionType::dislike) ++out.truth.dislikes;
    }
    auto next = rows->paging_state();
    if (!next || next->empty()) break;
    paging = std::move(*next);
  }
  return std::optional<CommentRecount>(std::move(out));
}

Result<std::vector<bool>> CqlStore::hold_owner_leases(const std::vector<LeaseAsk>& asks, const std::string& owner,
                                                      std::chrono::seconds ttl) {
  const auto ttl_value = bridge::Value::int32(static_cast<int32_t>(std::max<int64_t>(1, ttl.count())));
  auto renew = [&](const Uuid& c) {
    return Call{st_->owner_renew.get(), args(ttl_value, txt(owner), V(c), txt(owner)), write_opts(false)};
  };
  std::vector<Call> calls;
  calls.reserve(asks.size());
  for (const LeaseAsk& a : asks)
    calls.push_back(a.renew ? renew(a.comment)
                            : Call{st_->owner_take.get(), args(V(a.comment), txt(owner), ttl_value), write_opts(false)});
  auto r = exec_all_blocking(std::move(calls));
  if (!r) return r.take_error();
  std::vector<bool> held(asks.size(), false);
  std::vector<size_t> again;  // takes that found the lease already ours
  for (size_t i = 0; i < asks.size(); ++i) {
    const bridge::Rows& rows = (*r)[i];
    held[i] = rows.applied().value_or(false);
    if (held[i] || asks[i].renew || rows.size() == 0) continue;
    auto col = column_of(rows, "owner");
    if (!col) continue;
    auto o = rows.bytes(0, *col);
    if (o && *o && **o == owner) again.push_back(i);
  }
  if (again.empty()) return held;
  calls.clear();
  for (size_t i : again) calls.push_back(renew(asks[i].comment));
  auto r2 = exec_all_blocking(std::move(calls));
  if (!r2) return r2.take_error();
  for (size_t k = 0; k < again.size(); ++k) held[again[k]] = (*r2)[k].applied().value_or(false);
  return held;
}

Status CqlStore::release_owner_leases(const std::vector<Uuid>& comments, const std::string& owner) {
  std::vector<Call> calls;
  calls.reserve(comments.size());
  for (const Uuid& c : comments) calls.push_back(Call{st_->owner_release.get(), args(V(c), txt(owner)), write_opts(false)});
  auto r = exec_all_blocking(std::move(calls));
  if (!r) return r.take_error();
  return ok_status();
}

}  // namespace commentd::store::cql

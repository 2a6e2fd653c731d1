// CqlStore: what the owner of a comment key reads for its recount (docs/cluster.md
// "Reaction apply").
#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

Result<std::optional<Store::CommentRecount>> CqlStore::owner_recount(const Uuid& comment, const Uuid& video) {
  CommentRecount out;
  out.video_id = video;
  auto m = exec_blocking(*st_->metrics_get, args(V(comment)), read_opts({}));
  if (!m) return m.take_error();
  if (m->size() > 0) {
    auto l = m->i64(0, 0), d = m->i64(0, 1), r = m->i64(0, 2);
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

}  // namespace commentd::store::cql

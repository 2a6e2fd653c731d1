#include "service/read_model.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace commentd::service {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key(Writer& w, const char* k) { w.Key(k); }
void str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void uuid_or_null(Writer& w, const std::optional<Uuid>& u) {
  if (u) str(w, u->str());
  else w.Null();
}

}  // namespace

std::string comment_json_open(const Comment& c, const CommentMetrics& m) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  key(w, "id"); str(w, c.id.str());
  key(w, "video_id"); str(w, c.video_id.str());
  key(w, "user_id"); str(w, c.user_id.str());
  key(w, "parent_id"); uuid_or_null(w, c.parent_id);
  key(w, "reply_to"); uuid_or_null(w, c.reply_to);
  key(w, "content"); str(w, c.status == CommentStatus::deleted ? std::string_view() : c.content);
  key(w, "status"); str(w, to_string(c.status));
  key(w, "created_at"); str(w, format_rfc3339_ms(c.created_at));
  key(w, "updated_at"); str(w, format_rfc3339_ms(c.updated_at));
  key(w, "edited"); w.Bool(c.edited);
  key(w, "likes"); w.Int64(m.likes);
  key(w, "dislikes"); w.Int64(m.dislikes);
  key(w, "reply_count"); w.Int64(m.replies_count);
  w.EndObject();
  std::string s(sb.GetString(), sb.GetSize());
  s.pop_back();  // the closing brace
  return s;
}

void close_comment_json(std::string& out, std::string_view open, ReactionType mine) {
  out.append(open);
  switch (mine) {
    case ReactionType::like: out.append(",\"user_reacted\":true,\"reaction_type\":\"like\"}"); break;
    case ReactionType::dislike: out.append(",\"user_reacted\":true,\"reaction_type\":\"dislike\"}"); break;
    case ReactionType::none: out.append(",\"user_reacted\":false,\"reaction_type\":null}"); break;
  }
}

std::string comment_json(const Comment& c, const CommentMetrics& m, ReactionType mine) {
  std::string out;
  close_comment_json(out, comment_json_open(c, m), mine);
  return out;
}

std::string page_json(const std::vector<cache::PageItem>& items,
                      const std::vector<ReactionType>& mine,
                      const std::optional<std::string>& next_cursor) {
  size_t n = 64;
  for (auto& it : items) n += it.json.size() + 48;
  std::string out;
  out.reserve(n);
  out.append("{\"comments\":[");
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    close_comment_json(out, items[i].json, i < mine.size() ? mine[i] : ReactionType::none);
  }
  out.append("],\"next_cursor\":");
  if (next_cursor) {
    out.push_back('"');
    out.append(*next_cursor);  // base64url: no escaping needed
    out.push_back('"');
  } else {
    out.append("null");
  }
  out.push_back('}');
  return out;
}

std::string reaction_op_json(const ReactionOp& op) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  key(w, "op_id"); str(w, op.op_id.str());
  key(w, "comment_id"); str(w, op.comment_id.str());
  key(w, "user_id"); str(w, op.user_id.str());
  key(w, "type"); str(w, to_string(op.type));
  key(w, "timestamp"); str(w, format_rfc3339_ms(op.timestamp));
  key(w, "seq"); w.Uint64(op.seq);
  key(w, "status"); str(w, "accepted");
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

std::string video_stats_json(const Uuid& video_id, const VideoStats& s, bool trending, Tier tier) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  key(w, "video_id"); str(w, video_id.str());
  key(w, "comments_count"); w.Int64(s.comments_count);
  key(w, "reactions_count"); w.Int64(s.reactions_count);
  key(w, "last_updated");
  if (s.last_updated) str(w, format_rfc3339_ms(s.last_updated));
  else w.Null();
  key(w, "is_trending"); w.Bool(trending);
  key(w, "update_frequency"); str(w, to_string(tier));
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

}  // namespace commentd::service

#include "events/schemas.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace commentd::events {

std::string comment_event_json(std::string_view event_type, const Comment& c, TimeMs at) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  w.Key("event_type"); str(event_type);
  w.Key("comment_id"); str(c.id.str());
  w.Key("video_id"); str(c.video_id.str());
  w.Key("user_id"); str(c.user_id.str());
  if (event_type == "created" || event_type == "updated") { w.Key("content"); str(c.content); }
  if (c.parent_id) { w.Key("parent_id"); str(c.parent_id->str()); }
  w.Key("created_at"); str(format_rfc3339_ms(c.created_at));
  w.Key("properties");
  w.StartObject();
  w.Key("status"); str(to_string(c.status));
  w.Key("version"); w.Uint64(c.version);
  w.Key("at"); str(format_rfc3339_ms(at));
  w.EndObject();
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

}  // namespace commentd::events

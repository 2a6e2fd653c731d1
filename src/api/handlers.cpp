#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <charconv>

#include "api/api.h"

namespace commentd::api {

namespace bhttp = boost::beast::http;
using http::Params;
using http::RequestContext;
using http::Request;
using http::Response;
using boost::asio::awaitable;

namespace {

Error bad(std::string msg, std::string code) { return Error(Errc::bad_request, std::move(msg), std::move(code)); }

Result<Uuid> path_uuid(const Params& p, std::string_view name) {
  auto id = Uuid::parse(p.get(name));
  if (!id) return bad(std::string(name) + " is not a UUID", "invalid_uuid");
  return *id;
}

// Percent-decodes a query value ('+' is a space).
std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') { out.push_back(' '); continue; }
    if (s[i] != '%') { out.push_back(s[i]); continue; }
    if (i + 2 >= s.size()) return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return out;
}

// The query parameters of the list routes.
Result<service::ListRequest> parse_list_query(const Request& req, Uuid key, SortOrder default_sort) {
  service::ListRequest lr;
  lr.key = key;
  lr.sort = default_sort;
  std::string_view target(req.target().data(), req.target().size());
  auto q = target.find('?');
  if (q == std::string_view::npos) return lr;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    auto value = url_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return bad("query parameter '" + std::string(name) + "' is not URL-encoded correctly", "bad_query");
    if (name == "sort") {
      if (*value == "newest") lr.sort = SortOrder::newest;
      else if (*value == "oldest") lr.sort = SortOrder::oldest;
      else return bad("sort must be 'newest' or 'oldest'", "invalid_sort");
    } else if (name == "limit") {
      int n = 0;
      auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
      if (ec != std::errc() || p != value->data() + value->size() || n < 1 || n > 100)
        return bad("limit must be an integer from 1 to 100", "invalid_limit");
      lr.limit = static_cast<size_t>(n);
    } else if (name == "cursor") {
      if (!value->empty()) lr.cursor = *value;
    }
    // Other parameters are ignored, as HTTP caches and proxies may add their own.
  }
  return lr;
}

Result<rapidjson::Document> parse_json_object(const Request& req) {
  rapidjson::Document d;
  const auto& body = req.body();
  // Encoding is not validated here: content is checked by validate_content (422, as the
  // API promises for invalid UTF-8); every other string field is parsed strictly anyway.
  d.Parse(body.data(), body.size());
  if (d.HasParseError())
    return bad(std::string("body is not valid JSON: ") + rapidjson::GetParseError_En(d.GetParseError()) +
                   " at offset " + std::to_string(d.GetErrorOffset()),
               "invalid_json");
  if (!d.IsObject()) return bad("body must be a JSON object", "invalid_json");
  return d;
}

Result<std::string> string_field(const rapidjson::Document& d, const char* name) {
  auto it = d.FindMember(name);
  if (it == d.MemberEnd() || !it->value.IsString())
    return bad(std::string("'") + name + "' is required and must be a string", "invalid_field");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

Response ok(const Request& req, bhttp::status s, std::string body) {
  return http::json_response(req, s, std::move(body));
}

template <class T>
Response reply(const Request& req, Result<T>& r, bhttp::status s) {
  if (!r) return error_to_response(req, r.error());
  return ok(req, s, std::move(*r));
}

}  // namespace

void register_routes(http::Router& router, ApiDeps deps) {
  auto d = std::make_shared<ApiDeps>(std::move(deps));
  using V = bhttp::verb;

  // Every route below is in api/openapi.yaml; tests/e2e/test_openapi_routes.py keeps both true.
  auto create = [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto video = path_uuid(p, "video_id");
    if (!video) co_return error_to_response(req, video.error());
    auto body = parse_json_object(req);
    if (!body) co_return error_to_response(req, body.error());
    auto content = string_field(*body, "content");
    if (!content) co_return error_to_response(req, content.error());
    std::optional<Uuid> parent;
    auto it = body->FindMember("parent_id");
    if (it != body->MemberEnd() && !it->value.IsNull()) {
      if (!it->value.IsString()) co_return error_to_response(req, bad("parent_id must be a UUID string", "invalid_uuid"));
      parent = Uuid::parse(std::string_view(it->value.GetString(), it->value.GetStringLength()));
      if (!parent) co_return error_to_response(req, bad("parent_id is not a UUID", "invalid_uuid"));
    }
    auto r = co_await d->comments->create_comment(*actor, *video, std::move(*content), parent, cx.deadline);
    co_return reply(req, r, bhttp::status::created);
  };
  router.add(V::post, "/v1/videos/{video_id}/comments", create);
  router.add(V::post, "/video/{video_id}/comment", create);  // the plan's route

  router.add(V::get, "/v1/videos/{video_id}/comments", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto video = path_uuid(p, "video_id");
    if (!video) co_return error_to_response(req, video.error());
    auto lr = parse_list_query(req, *video, SortOrder::newest);
    if (!lr) co_return error_to_response(req, lr.error());
    auto r = co_await d->comments->list_comments(*actor, std::move(*lr), cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::get, "/v1/videos/{video_id}/stats", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto video = path_uuid(p, "video_id");
    if (!video) co_return error_to_response(req, video.error());
    auto r = co_await d->comments->video_stats(*video, cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::get, "/v1/comments/{id}", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto id = path_uuid(p, "id");
    if (!id) co_return error_to_response(req, id.error());
    auto r = co_await d->comments->get_comment(*actor, *id, cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::patch, "/v1/comments/{id}", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto id = path_uuid(p, "id");
    if (!id) co_return error_to_response(req, id.error());
    auto body = parse_json_object(req);
    if (!body) co_return error_to_response(req, body.error());
    auto content = string_field(*body, "content");
    if (!content) co_return error_to_response(req, content.error());
    auto r = co_await d->comments->edit_comment(*actor, *id, std::move(*content), cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::delete_, "/v1/comments/{id}", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto id = path_uuid(p, "id");
    if (!id) co_return error_to_response(req, id.error());
    auto r = co_await d->comments->delete_comment(*actor, *id, cx.deadline);
    if (!r) co_return error_to_response(req, r.error());
    http::Response res{bhttp::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    co_return res;
  });

  router.add(V::get, "/v1/comments/{id}/replies", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto id = path_uuid(p, "id");
    if (!id) co_return error_to_response(req, id.error());
    auto lr = parse_list_query(req, *id, SortOrder::oldest);
    if (!lr) co_return error_to_response(req, lr.error());
    auto r = co_await d->comments->list_replies(*actor, std::move(*lr), cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::patch, "/v1/comments/{id}/status", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto id = path_uuid(p, "id");
    if (!id) co_return error_to_response(req, id.error());
    auto body = parse_json_object(req);
    if (!body) co_return error_to_response(req, body.error());
    auto s = string_field(*body, "status");
    if (!s) co_return error_to_response(req, s.error());
    auto status = parse_status(*s);
    if (!status)
      co_return error_to_response(req, bad("status must be visible, hidden, pending or spam", "invalid_status"));
    auto r = co_await d->comments->set_status(*actor, *id, *status, cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  // Reactions: PUT sets, DELETE removes, the plan's POST takes like|dislike|none.
  auto react = [d](Request& req, const Params& p, const RequestContext& cx, std::optional<ReactionType> fixed) -> awaitable<Response> {
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
    auto id = path_uuid(p, "id");
    if (!id) co_return error_to_response(req, id.error());
    ReactionType type = ReactionType::none;
    if (fixed) {
      type = *fixed;
    } else {
      auto body = parse_json_object(req);
      if (!body) co_return error_to_response(req, body.error());
      auto t = string_field(*body, "type");
      if (!t) co_return error_to_response(req, t.error());
      auto parsed = parse_reaction(*t);
      bool put = req.method() == bhttp::verb::put;
      if (!parsed || (put && *parsed == ReactionType::none))
        co_return error_to_response(req, bad(put ? "type must be 'like' or 'dislike'"
                                                 : "type must be 'like', 'dislike' or 'none'",
                                             "invalid_reaction_type"));
      type = *parsed;
    }
    auto r = co_await d->comments->react(*actor, *id, type, cx.deadline);
    co_return reply(req, r, bhttp::status::accepted);
  };
  router.add(V::put, "/v1/comments/{id}/reaction",
             [react](Request& req, const Params& p, const RequestContext& cx) { return react(req, p, cx, std::nullopt); });
  router.add(V::delete_, "/v1/comments/{id}/reaction",
             [react](Request& req, const Params& p, const RequestContext& cx) { return react(req, p, cx, ReactionType::none); });
  router.add(V::post, "/comment/{id}/reaction",
             [react](Request& req, const Params& p, const RequestContext& cx) { return react(req, p, cx, std::nullopt); });

  router.add(V::get, "/healthz", [](Request& req, const Params&, const RequestContext&) -> awaitable<Response> {
    co_return ok(req, bhttp::status::ok, "{\"status\":\"ok\"}");
  });
  router.add(V::get, "/readyz", [d](Request& req, const Params&, const RequestContext&) -> awaitable<Response> {
    if (d->ready && d->ready()) co_return ok(req, bhttp::status::ok, "{\"status\":\"ready\"}");
    co_return http::error_response(req, bhttp::status::service_unavailable, "unavailable", "storage is not serving");
  });
  router.add(V::get, "/metrics", [d](Request& req, const Params&, const RequestContext&) -> awaitable<Response> {
    http::Response res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(req.keep_alive());
    res.body() = d->metrics_text ? d->metrics_text() : std::string();
    co_return res;
  });
}

}  // namespace commentd::api

#include <rapidjson/document.h>

#include "api/api.h"
#include "api/json_body.h"
#include "api/query.h"

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

Result<service::ListRequest> list_request(const Request& req, Uuid key, SortOrder default_sort) {
  auto q = parse_list_query(std::string_view(req.target().data(), req.target().size()), default_sort);
  if (!q) return q.take_error();
  service::ListRequest lr;
  lr.key = key;
  lr.sort = q->sort;
  lr.limit = q->limit;
  lr.cursor = std::move(q->cursor);
  return lr;
}

// Who may send a body: the routes that take one all need a user, and a body is never parsed
// for a caller who will get 401 anyway.
// The writes' callers also carry their address, for the per-address rate limits.
Result<Actor> authenticate_user(const Request& req, const RequestContext& cx, const ApiDeps& d) {
  auto actor = authenticate(req, *d.jwt, d.dev_mode);
  if (actor && !actor->authenticated())
    return Error(Errc::unauthenticated, "this request needs an authenticated user", "unauthenticated");
  if (actor) actor->address_subject = http::address_subject(http::client_address(req, cx, d.trusted_proxies));
  return actor;
}

// REQUIRES: the caller was authenticated (authenticate_user).
Result<rapidjson::Document> parse_json_object(const Request& req) {
  const auto& body = req.body();
  return parse_json_body(std::string_view(body.data(), body.size()));
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
    auto actor = authenticate_user(req, cx, *d);
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
    auto lr = list_request(req, *video, SortOrder::newest);
    if (!lr) co_return error_to_response(req, lr.error());
    auto r = co_await d->comments->list_comments(*actor, std::move(*lr), cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::get, "/v1/videos/{video_id}/stats", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    // Stats are public, but a token that is sent must be valid, as on every other route.
    auto actor = authenticate(req, *d->jwt, d->dev_mode);
    if (!actor) co_return error_to_response(req, actor.error());
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
    auto actor = authenticate_user(req, cx, *d);
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
    auto lr = list_request(req, *id, SortOrder::oldest);
    if (!lr) co_return error_to_response(req, lr.error());
    auto r = co_await d->comments->list_replies(*actor, std::move(*lr), cx.deadline);
    co_return reply(req, r, bhttp::status::ok);
  });

  router.add(V::patch, "/v1/comments/{id}/status", [d](Request& req, const Params& p, const RequestContext& cx) -> awaitable<Response> {
    auto actor = authenticate_user(req, cx, *d);
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
    auto actor = authenticate_user(req, cx, *d);
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

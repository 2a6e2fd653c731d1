#include "api/api.h"

namespace commentd::api {

namespace bhttp = boost::beast::http;

http::Response error_to_response(const http::Request& req, const Error& e) {
  bhttp::status s = bhttp::status::internal_server_error;
  switch (e.code) {
    case Errc::bad_request: s = bhttp::status::bad_request; break;
    case Errc::unauthenticated: s = bhttp::status::unauthorized; break;
    case Errc::forbidden: s = bhttp::status::forbidden; break;
    case Errc::not_found: s = bhttp::status::not_found; break;
    case Errc::conflict: s = bhttp::status::conflict; break;
    case Errc::payload_too_large: s = bhttp::status::payload_too_large; break;
    case Errc::unprocessable: s = bhttp::status::unprocessable_entity; break;
    case Errc::rate_limited: s = bhttp::status::too_many_requests; break;
    case Errc::overloaded:
    case Errc::unavailable:
    case Errc::deadline_exceeded: s = bhttp::status::service_unavailable; break;
    case Errc::insufficient_storage: s = bhttp::status::insufficient_storage; break;
    case Errc::internal: s = bhttp::status::internal_server_error; break;
  }
  // Internal details stay in the log, not in the response.
  std::string_view msg = e.message;
  if (s == bhttp::status::internal_server_error) msg = "internal error";
  auto res = http::error_response(req, s, e.client_code(), msg);
  if (e.code == Errc::unauthenticated) res.set(bhttp::field::www_authenticate, "Bearer");
  if (e.retry_after_s > 0) res.set(bhttp::field::retry_after, std::to_string(e.retry_after_s));
  else if (s == bhttp::status::service_unavailable) res.set(bhttp::field::retry_after, "1");
  return res;
}

Result<Actor> authenticate(const http::Request& req, const auth::JwtVerifier& jwt, bool dev_mode) {
  auto h = req.find(bhttp::field::authorization);
  if (h != req.end()) {
    std::string_view v(h->value().data(), h->value().size());
    constexpr std::string_view kBearer = "Bearer ";
    if (v.size() <= kBearer.size() || v.substr(0, kBearer.size()) != kBearer)
      return Error(Errc::unauthenticated, "Authorization must be 'Bearer <token>'", "unauthenticated");
    auto claims = jwt.verify(v.substr(kBearer.size()));
    if (!claims) return claims.take_error();
    return Actor{claims->user_id, claims->moderator};
  }
  if (dev_mode) {
    auto u = req.find("X-User-Id");
    if (u != req.end()) {
      auto id = Uuid::parse(std::string_view(u->value().data(), u->value().size()));
      if (!id) return Error(Errc::unauthenticated, "X-User-Id must be a UUID", "unauthenticated");
      auto r = req.find("X-User-Role");
      bool mod = r != req.end() && r->value() == "moderator";
      return Actor{*id, mod};
    }
  }
  return Actor{};
}

}  // namespace commentd::api

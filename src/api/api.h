// The HTTP API: each handler parses the request, calls the service, serializes the result.
// Errors become responses in exactly one place (error_to_response).
#pragma once

#include <functional>
#include <string>

#include "auth/jwt.h"
#include "http/client_address.h"
#include "http/router.h"
#include "service/comment_service.h"

namespace commentd::api {

// Pointers so that the route table can be built without a running service
// (commentd --print-routes); in serving they are never null.
struct ApiDeps {
  service::CommentService* comments = nullptr;
  const auth::JwtVerifier* jwt = nullptr;
  bool dev_mode = false;                        // accept X-User-Id / X-User-Role
  std::function<bool()> ready;                  // storage open and serving
  std::function<std::string()> metrics_text;    // Prometheus exposition
  http::TrustedProxies trusted_proxies;         // whose X-Forwarded-For names the client
};

void register_routes(http::Router& router, ApiDeps deps);

// The only mapping from domain errors to HTTP.
http::Response error_to_response(const http::Request& req, const Error& e);

// Who is calling: anonymous (no Authorization), a verified JWT user, or (dev mode only) the
// X-User-Id header. A present but invalid token is an error, never anonymous.
Result<Actor> authenticate(const http::Request& req, const auth::JwtVerifier& jwt, bool dev_mode);

}  // namespace commentd::api

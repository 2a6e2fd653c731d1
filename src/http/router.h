// Routes (method, path pattern) to handlers. Patterns are literal segments and {name}
// parameters: "/v1/comments/{id}/replies". No match: 404; path matches but not the method:
// 405 with Allow. A handler that throws gives 500 and is logged (it is a bug).
//
// Admission (admission.h), when enabled: each matched route has a class, from its method and
// pattern (classify()); a request over its class's limits is answered at once with 503,
// Retry-After and {"error":{"code":"overloaded",...}}, before its handler runs.
//
// Thread-safe once built: add() and enable_admission() only before serving.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/admission.h"
#include "http/server.h"

namespace commentd::http {

struct Params {
  std::vector<std::pair<std::string_view, std::string_view>> items;
  std::string_view get(std::string_view name) const {
    for (auto& [k, v] : items)
      if (k == name) return v;
    return {};
  }
};

using RouteHandler =
    std::function<asio::awaitable<Response>(Request&, const Params&, const RequestContext&)>;

// Called once per request with the matched pattern ("" if none), status and seconds taken.
using Observer = std::function<void(std::string_view method, std::string_view pattern,
                                    unsigned status, double seconds)>;

class Router {
 public:
  void add(beast::http::verb method, std::string pattern, RouteHandler h);
  void set_observer(Observer o) { observer_ = std::move(o); }
  void enable_admission(AdmissionOptions o) { admission_ = std::make_unique<Admission>(o); }
  // Null until enable_admission().
  Admission* admission() const { return admission_.get(); }
  // Probes and metrics (/healthz, /readyz, /metrics) are exempt; reactions are the routes
  // whose last segment is "reaction"; other GET/HEAD are reads; the rest are writes.
  static RequestClass classify(beast::http::verb method, std::string_view pattern);
  asio::awaitable<Response> handle(Request& req, const RequestContext& ctx);
  // "METHOD /pattern" per route, in registration order.
  std::vector<std::string> describe() const;

 private:
  struct Route {
    beast::http::verb method;
    std::string pattern;
    std::vector<std::string> segments;
    RouteHandler handler;
  };
  static bool match(const Route& r, std::string_view path, Params& out);
  // Waits for a slot of `cls` if the controller says so. true: admitted (release() after).
  asio::awaitable<bool> admit(RequestClass cls);
  std::vector<Route> routes_;
  Observer observer_;
  std::unique_ptr<Admission> admission_;
};

// {"error":{"code":...,"message":...}} with that status.
Response error_response(const Request& req, beast::http::status status, std::string_view code,
                        std::string_view message);

}  // namespace commentd::http

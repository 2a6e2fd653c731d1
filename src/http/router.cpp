#include "http/router.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace commentd::http {

namespace bhttp = beast::http;

namespace {
std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') { ++i; continue; }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace

void Router::add(bhttp::verb method, std::string pattern, RouteHandler h) {
  Route r{method, pattern, split(pattern), std::move(h)};
  routes_.push_back(std::move(r));
}

std::vector<std::string> Router::describe() const {
  std::vector<std::string> out;
  for (auto& r : routes_) out.push_back(std::string(bhttp::to_string(r.method)) + " " + r.pattern);
  return out;
}

bool Router::match(const Route& r, std::string_view path, Params& out) {
  out.items.clear();
  size_t i = 0, seg = 0;
  while (i < path.size()) {
    if (path[i] == '/') { ++i; continue; }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (seg >= r.segments.size()) return false;
    std::string_view part = path.substr(i, j - i);
    const std::string& want = r.segments[seg];
    if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
      out.items.emplace_back(std::string_view(want).substr(1, want.size() - 2), part);
    } else if (want != part) {
      return false;
    }
    ++seg;
    i = j;
  }
  return seg == r.segments.size();
}

asio::awaitable<Response> Router::handle(Request& req, const RequestContext& ctx) {
  auto t0 = std::chrono::steady_clock::now();
  std::string_view target(req.target().data(), req.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  Params params;
  const Route* found = nullptr;
  std::string allow;
  for (auto& r : routes_) {
    if (!match(r, path, params)) continue;
    if (r.method == req.method() || (req.method() == bhttp::verb::head && r.method == bhttp::verb::get)) {
      found = &r;
      break;
    }
    if (!allow.empty()) allow += ", ";
    allow += std::string(bhttp::to_string(r.method));
  }
  Response res;
  std::string_view pattern;
  if (!found) {
    if (!allow.empty()) {
      res = error_response(req, bhttp::status::method_not_allowed, "method_not_allowed",
                           "this path does not take " + std::string(req.method_string()));
      res.set(bhttp::field::allow, allow);
    } else {
      res = error_response(req, bhttp::status::not_found, "not_found", "no such route");
    }
  } else {
    pattern = found->pattern;
    match(*found, path, params);
    bool failed = false;
    try {
      res = co_await found->handler(req, params, ctx);
    } catch (const std::exception& e) {
      spdlog::error("handler {} {} threw: {}", req.method_string(), found->pattern, e.what());
      failed = true;
    }
    if (failed) res = error_response(req, bhttp::status::internal_server_error, "internal", "internal error");
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (observer_) observer_(req.method_string(), pattern, res.result_int(), secs);
  spdlog::debug("{} {} -> {} in {:.3f} ms", req.method_string(), target, res.result_int(), secs * 1e3);
  co_return res;
}

Response error_response(const Request& req, bhttp::status status, std::string_view code,
                        std::string_view message) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.String(code.data(), static_cast<rapidjson::SizeType>(code.size()));
  w.Key("message");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  w.EndObject();
  w.EndObject();
  return json_response(req, status, std::string(sb.GetString(), sb.GetSize()));
}

}  // namespace commentd::http

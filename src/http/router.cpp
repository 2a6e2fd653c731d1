#include "http/router.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
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

RequestClass Router::classify(bhttp::verb method, std::string_view pattern) {
  if (pattern == "/healthz" || pattern == "/readyz" || pattern == "/metrics") return RequestClass::exempt;
  if (pattern.ends_with("/reaction")) return RequestClass::reaction;
  if (method == bhttp::verb::get || method == bhttp::verb::head) return RequestClass::read;
  return RequestClass::write;
}

asio::awaitable<bool> Router::admit(RequestClass cls) {
  // Almost every request is admitted (or shed) at once: no waiter, timer or allocation.
  switch (admission_->try_arrive(cls, Admission::clock::now())) {
    case Admission::Decision::admit: co_return true;
    case Admission::Decision::shed: co_return false;
    case Admission::Decision::wait: break;
  }
  struct State {
    explicit State(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    std::atomic<int> result{-1};  // -1 not yet, 0 shed, 1 admitted
  };
  auto st = std::make_shared<State>(co_await asio::this_coro::executor);
  Admission::Waiter w;
  // Runs on the releasing thread; the cancel is posted to this request's strand, where it
  // runs only after this coroutine has started its wait (it does not yield before).
  w.wake = [st](bool admitted) {
    st->result.store(admitted ? 1 : 0);
    asio::post(st->timer.get_executor(), [st] { st->timer.cancel(); });
  };
  switch (admission_->arrive(cls, w, Admission::clock::now())) {
    case Admission::Decision::admit: co_return true;
    case Admission::Decision::shed: co_return false;
    case Admission::Decision::wait: break;
  }
  st->timer.expires_after(admission_->max_wait());
  beast::error_code ec;
  co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  int r = st->result.load();
  if (r < 0 && admission_->cancel(w, Admission::clock::now())) co_return false;
  // Not queued any more: wake() has been taken out under the controller's lock and is
  // about to store its answer.
  while ((r = st->result.load()) < 0) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  co_return r == 1;
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
    RequestClass cls = admission_ ? classify(found->method, pattern) : RequestClass::exempt;
    if (cls != RequestClass::exempt && !co_await admit(cls)) {
      res = error_response(req, bhttp::status::service_unavailable, "overloaded",
                           std::string("too many ") + to_string(cls) + " requests; retry later");
      res.set(bhttp::field::retry_after, "1");
    } else {
      bool failed = false;
      try {
        res = co_await found->handler(req, params, ctx);
      } catch (const std::exception& e) {
        spdlog::error("handler {} {} threw: {}", req.method_string(), found->pattern, e.what());
        failed = true;
      }
      if (cls != RequestClass::exempt) admission_->release(cls, Admission::clock::now());
      if (failed) res = error_response(req, bhttp::status::internal_server_error, "internal", "internal error");
    }
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

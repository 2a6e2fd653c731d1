// Request targets over arbitrary bytes: the router's path matching with the API's route
// patterns, path UUIDs, and the list query string. Never crashes; every matched parameter is
// a slice of the path.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/query.h"
#include "core/uuid.h"
#include "http/router.h"

using namespace commentd;
namespace bhttp = boost::beast::http;

namespace {

http::Router& router() {
  static http::Router r = [] {
    http::Router r;
    auto h = [](http::Request& req, const http::Params& p, const http::RequestContext&)
        -> boost::asio::awaitable<http::Response> {
      std::string_view target(req.target().data(), req.target().size());
      for (auto& [name, value] : p.items) {
        if (value.data() < target.data() || value.data() + value.size() > target.data() + target.size())
          std::abort();
        (void)Uuid::parse(value);
      }
      auto q = api::parse_list_query(target, SortOrder::newest);
      if (q.ok() && (q->limit < 1 || q->limit > 100)) std::abort();
      co_return http::json_response(req, bhttp::status::ok, "{}");
    };
    using V = bhttp::verb;
    for (auto [m, pattern] : std::initializer_list<std::pair<V, const char*>>{
             {V::post, "/v1/videos/{video_id}/comments"}, {V::get, "/v1/videos/{video_id}/comments"},
             {V::get, "/v1/videos/{video_id}/stats"}, {V::get, "/v1/comments/{id}"},
             {V::patch, "/v1/comments/{id}"}, {V::delete_, "/v1/comments/{id}"},
             {V::get, "/v1/comments/{id}/replies"}, {V::patch, "/v1/comments/{id}/status"},
             {V::put, "/v1/comments/{id}/reaction"}, {V::delete_, "/v1/comments/{id}/reaction"},
             {V::post, "/video/{video_id}/comment"}, {V::post, "/comment/{id}/reaction"},
             {V::get, "/healthz"}, {V::get, "/readyz"}, {V::get, "/metrics"}})
      r.add(m, pattern, h);
    return r;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const bhttp::verb kVerbs[] = {bhttp::verb::get, bhttp::verb::post, bhttp::verb::put,
                                       bhttp::verb::patch, bhttp::verb::delete_, bhttp::verb::head};
  http::Request req;
  req.method(kVerbs[data[0] % 6]);
  req.target(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  req.version(11);
  boost::asio::io_context ioc;
  unsigned status = 0;
  http::RequestContext ctx;
  boost::asio::co_spawn(ioc, router().handle(req, ctx),
                        [&](std::exception_ptr e, http::Response res) {
                          if (e) std::abort();
                          status = res.result_int();
                        });
  ioc.run();
  if (status != 200 && status != 404 && status != 405) std::abort();
  return 0;
}

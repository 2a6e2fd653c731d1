#include "http/router.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <optional>

namespace commentd::http {
namespace {

namespace bhttp = beast::http;
using namespace std::chrono_literals;

// Admission through the router on a real io_context: the first read holds the only slot
// until the test opens the gate; the second waits for it; the third is shed at once.
TEST(RouterAdmission, OverTheLimitIsAFast503AndAWaiterGetsTheFreedSlot) {
  asio::io_context ioc;
  asio::steady_timer gate(ioc, asio::steady_timer::time_point::max());
  int calls = 0;
  Router router;
  router.add(bhttp::verb::get, "/v1/comments/{id}",
             [&](Request& req, const Params&, const RequestContext&) -> asio::awaitable<Response> {
               if (calls++ == 0) {
                 beast::error_code ec;
                 co_await gate.async_wait(asio::redirect_error(asio::use_awaitable, ec));
               }
               co_return json_response(req, bhttp::status::ok, "{}");
             });
  router.add(bhttp::verb::get, "/healthz",
             [](Request& req, const Params&, const RequestContext&) -> asio::awaitable<Response> {
               co_return json_response(req, bhttp::status::ok, "{}");
             });
  AdmissionOptions o;
  o.max_in_flight = {1, 1, 1};
  o.target = 1s;  // long: nothing here is shed for delay
  o.interval = 10s;
  router.enable_admission(o);

  std::vector<Request> reqs(4);
  std::vector<std::optional<Response>> res(4);
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i] = Request{bhttp::verb::get, i == 3 ? "/healthz" : "/v1/comments/x", 11};
    asio::co_spawn(ioc, [&, i]() -> asio::awaitable<void> {
      res[i] = co_await router.handle(reqs[i], RequestContext{});
    }, asio::detached);
  }
  ioc.poll();
  ASSERT_FALSE(res[0].has_value());  // holds the slot
  ASSERT_FALSE(res[1].has_value());  // waits
  ASSERT_TRUE(res[2].has_value());   // shed: the queue holds max_in_flight waiters
  EXPECT_EQ(res[2]->result(), bhttp::status::service_unavailable);
  EXPECT_EQ(res[2]->at(bhttp::field::retry_after), "1");
  EXPECT_NE(res[2]->body().find(R"("code":"overloaded")"), std::string::npos) << res[2]->body();
  ASSERT_TRUE(res[3].has_value());  // /healthz is exempt
  EXPECT_EQ(res[3]->result(), bhttp::status::ok);
  EXPECT_EQ(router.admission()->in_flight(RequestClass::read), 1u);

  gate.cancel();
  ioc.poll();
  ASSERT_TRUE(res[0].has_value());
  EXPECT_EQ(res[0]->result(), bhttp::status::ok);
  ASSERT_TRUE(res[1].has_value());
  EXPECT_EQ(res[1]->result(), bhttp::status::ok);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(router.admission()->in_flight(RequestClass::read), 0u);
  EXPECT_EQ(router.admission()->stats().shed[0].load(), 1u);
}

}  // namespace
}  // namespace commentd::http

// Glue from one bridge call (a C function taking cb_done + user) to an Asio completion.
// The C callback runs on a bridge thread: it only converts the result (copying anything
// borrowed) and POSTS the completion to the handler's associated executor, so the caller
// resumes on its own executor and no bridge thread ever runs commentd code.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <string_view>
#include <utility>

#include "bridge/bridge_error.h"
#include "bridge/commentd_bridge.h"
#include "core/error.h"

namespace commentd::bridge {

namespace detail {

template <class T, class Handler, class Convert, class Observe>
struct Op {
  Handler handler;
  Convert convert;  // T(void* result), runs on the bridge thread
  Observe observe;  // void(int32_t code), runs on the bridge thread first

  static void done(void* user, int32_t code, const char* msg, size_t len, void* result) {
    std::unique_ptr<Op> op(static_cast<Op*>(user));
    op->observe(code);
    auto r = code == CB_OK ? Result<T>(op->convert(result)) : Result<T>(to_error(code, std::string_view(msg, len)));
    auto ex = boost::asio::get_associated_executor(op->handler);
    boost::asio::post(ex, [h = std::move(op->handler), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
  }
};

}  // namespace detail

// start: void(cb_done, void* user) issues the C call (synchronously, inside the initiation,
// so everything it borrows is alive). convert: T(void* result) for a CB_OK result.
// observe: void(int32_t code), told of the outcome on the bridge thread before the
// completion is posted (metrics; it must be cheap and thread-safe).
// Completion signature: void(Result<T>).
template <class T, class Token, class Start, class Convert, class Observe>
auto call(Token&& token, Start start, Convert convert, Observe observe) {
  return boost::asio::async_initiate<Token, void(Result<T>)>(
      [](auto handler, Start start, Convert convert, Observe observe) {
        using OpT = detail::Op<T, decltype(handler), Convert, Observe>;
        auto* op = new OpT{std::move(handler), std::move(convert), std::move(observe)};
        start(&OpT::done, op);
      },
      token, std::move(start), std::move(convert), std::move(observe));
}

template <class T, class Token, class Start, class Convert>
auto call(Token&& token, Start start, Convert convert) {
  return call<T>(std::forward<Token>(token), std::move(start), std::move(convert), [](int32_t) {});
}

}  // namespace commentd::bridge

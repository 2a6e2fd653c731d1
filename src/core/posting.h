// The completion an asynchronous initiation hands to code that finishes elsewhere (another
// thread, a callback, a queue): called once with the result, it posts the awaiting handler
// onto the handler's own executor, never running it inline on the finishing thread. It is
// copyable (the handler is shared), so it fits a std::function.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <utility>

namespace commentd {

template <class Handler>
auto posting(Handler handler) {
  auto h = std::make_shared<Handler>(std::move(handler));
  return [h](auto result) {
    auto ex = boost::asio::get_associated_executor(*h);
    boost::asio::post(ex, [h, r = std::move(result)]() mutable { std::move(*h)(std::move(r)); });
  };
}

}  // namespace commentd

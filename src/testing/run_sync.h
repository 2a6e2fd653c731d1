// Test support: runs one awaitable to completion on a private io_context and returns its
// value. Works for implementations that complete inline and for those that do real I/O on
// the caller's executor (the io_context runs until the awaitable is done).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <utility>

namespace commentd::testing {

template <class T>
T run_sync(boost::asio::awaitable<T> a) {
  boost::asio::io_context ioc;
  std::optional<T> out;
  boost::asio::co_spawn(
      ioc, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(a)); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // out of ioc.run(), into the test
      });
  ioc.run();
  return std::move(*out);
}

}  // namespace commentd::testing

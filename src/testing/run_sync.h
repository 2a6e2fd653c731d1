// Test support: runs one awaitable to completion on an io_context of the calling thread and
// returns its value. Works for implementations that complete inline and for those that do
// real I/O or hop to a pool of their own (the io_context runs until the awaitable is done).
//
// The io_context is kept until the process exits, never destroyed when run() returns: a
// thread that posted the awaitable's completion to it (the store's read pool, the writer)
// may still be inside Asio's post(), which signals the io_context's condition variable after
// queueing the handler, when run() has already returned here. Destroying the io_context then
// races with that signal (TSan reported it in every store test that used a local io_context).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace commentd::testing {

// The calling thread's io_context for run_sync, alive until the process exits.
inline boost::asio::io_context& run_sync_context() {
  static std::mutex mu;
  static std::vector<std::unique_ptr<boost::asio::io_context>> all;  // reachable: no leak report
  thread_local boost::asio::io_context* mine = nullptr;
  if (!mine) {
    std::lock_guard lk(mu);
    all.push_back(std::make_unique<boost::asio::io_context>());
    mine = all.back().get();
  }
  return *mine;
}

template <class T>
T run_sync(boost::asio::awaitable<T> a) {
  boost::asio::io_context& ioc = run_sync_context();
  ioc.restart();
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

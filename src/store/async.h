// Bridges the Store to coroutines on event-loop threads without blocking them.
//  - read(): tries the read from memory first (ReadMode{may_block=false}); only when it needs
//    I/O is it handed to the read pool, and the coroutine resumes on its own executor.
//  - commit(): queues the WriteSet for the writer and resumes when it is durable.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <type_traits>

#include "store/store.h"

namespace commentd::store {

namespace asio = boost::asio;

template <class F>
using ReadResultOf = std::invoke_result_t<F&, ReadMode>;

// F: Result<T>(ReadMode). REQUIRES: `pool` outlives the call.
template <class F>
asio::awaitable<ReadResultOf<F>> read(asio::thread_pool& pool, F fn) {
  using R = ReadResultOf<F>;
  R first = fn(ReadMode{.may_block = false});
  if (first.ok() || first.error().code != Errc::would_block) co_return first;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      [&pool, fn = std::move(fn)](auto handler) mutable {
        asio::post(pool, [fn = std::move(fn), handler = std::move(handler)]() mutable {
          R r = fn(ReadMode{.may_block = true});
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, [handler = std::move(handler), r = std::move(r)]() mutable {
            std::move(handler)(std::move(r));
          });
        });
      },
      asio::use_awaitable);
}

// Not a coroutine on purpose: the WriteSet moves straight into the initiation, with no
// coroutine-frame copy of a by-value parameter in between.
inline asio::awaitable<Result<CommitResult>> commit(Store& store, WriteSet ws) {
  using R = Result<CommitResult>;
  auto init = [&store](auto handler, WriteSet w) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    store.commit(std::move(w), [h](R r) {
      auto ex = asio::get_associated_executor(*h);
      asio::post(ex, [h, r = std::move(r)]() mutable { std::move(*h)(std::move(r)); });
    });
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(init), asio::use_awaitable,
                                                                      std::move(ws));
}

}  // namespace commentd::store

// Bridges the Store to coroutines on event-loop threads without blocking them.
//  - within(): awaits an operation, but answers Errc::deadline_exceeded once the deadline
//    passes even if the operation never completes (it is left to finish; its result is
//    dropped). Used for reads: cancelling a read is always safe.
//  - commit(): queues the WriteSet for the writer and resumes when it is durable. Never
//    bounded by a deadline: a queued write completes and is answered.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "core/posting.h"
#include "store/store.h"

namespace commentd::store {

namespace asio = boost::asio;

inline Error deadline_error() {
  return Error(Errc::deadline_exceeded, "the request took longer than its deadline",
               "deadline_exceeded");
}

namespace detail {

// Whichever of the operation and the timer ends first delivers, exactly once.
template <class T>
struct Race {
  using Handler = std::function<void(Result<T>)>;
  explicit Race(asio::any_io_executor ex) : timer(std::move(ex)) {}
  asio::steady_timer timer;
  std::atomic<bool> done{false};
  Handler deliver;
  void finish(Result<T> r) {
    if (done.exchange(true)) return;
    timer.cancel();
    deliver(std::move(r));
  }
};

}  // namespace detail

// Runs `op` on the caller's executor and completes with its result, or with
// deadline_exceeded at `d` if that comes first. An operation that is already past its
// deadline is not started. With Deadline::never() it is a plain co_await.
template <class T>
asio::awaitable<Result<T>> within(Deadline d, asio::awaitable<Result<T>> op) {
  if (d.at == Deadline::clock::time_point::max()) co_return co_await std::move(op);
  if (d.expired()) co_return deadline_error();
  auto ex = co_await asio::this_coro::executor;
  auto race = std::make_shared<detail::Race<T>>(ex);
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(
      [&](auto handler) {
        race->deliver = posting(std::move(handler));
        // The timer is armed before the operation starts: after that only the winner of
        // `done` touches it.
        race->timer.expires_at(d.at);
        race->timer.async_wait([race](boost::system::error_code ec) {
          if (!ec) race->finish(deadline_error());
        });
        asio::co_spawn(
            ex,
            [race, op = std::move(op)]() mutable -> asio::awaitable<void> {
              race->finish(co_await std::move(op));
            },
            [race](std::exception_ptr e) {
              if (e) race->finish(Error(Errc::internal, "a storage read threw"));
            });
      },
      asio::use_awaitable);
}

// An operation started now and awaited later (join()): a read that does not depend on what
// the caller awaits in between runs beside it, one round trip instead of two in a row. The
// result waits for join(); a Started never joined lets its operation finish and drops it.
template <class T>
class Started {
 public:
  Started(asio::any_io_executor ex, asio::awaitable<Result<T>> op) : s_(std::make_shared<State>()) {
    asio::co_spawn(
        std::move(ex),
        [s = s_, op = std::move(op)]() mutable -> asio::awaitable<void> { s->complete(co_await std::move(op)); },
        [s = s_](std::exception_ptr e) {
          if (e) s->complete(Error(Errc::internal, "a started operation threw"));
        });
  }
  // Once.
  asio::awaitable<Result<T>> join() {
    return asio::async_initiate<decltype(asio::use_awaitable), void(Result<T>)>(
        [s = s_](auto handler) {
          std::function<void(Result<T>)> deliver = posting(std::move(handler));
          std::unique_lock lk(s->mu);
          if (s->result) {
            Result<T> r = std::move(*s->result);
            lk.unlock();
            deliver(std::move(r));
          } else {
            s->waiter = std::move(deliver);
          }
        },
        asio::use_awaitable);
  }

 private:
  struct State {
    std::mutex mu;
    std::optional<Result<T>> result;
    std::function<void(Result<T>)> waiter;
    void complete(Result<T> r) {
      std::unique_lock lk(mu);
      if (result || !waiter) {  // not joined yet (or completed twice: the first stands)
        if (!result) result.emplace(std::move(r));
        return;
      }
      auto w = std::move(waiter);
      waiter = nullptr;
      lk.unlock();
      w(std::move(r));
    }
  };
  std::shared_ptr<State> s_;
};

// Not a coroutine on purpose: the WriteSet moves straight into the initiation, with no
// coroutine-frame copy of a by-value parameter in between.
inline asio::awaitable<Result<CommitResult>> commit(Store& store, WriteSet ws) {
  using R = Result<CommitResult>;
  auto init = [&store](auto handler, WriteSet w) {
    store.commit(std::move(w), posting(std::move(handler)));
  };
  return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(std::move(init), asio::use_awaitable,
                                                                      std::move(ws));
}

}  // namespace commentd::store

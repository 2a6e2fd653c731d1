// Waits (yielding) until pred() holds. False after `limit`, so a broken component fails its
// test instead of hanging it; the limit is a bound for a loaded machine, not a timing claim.
#pragma once

#include <chrono>
#include <thread>

namespace commentd::testing {

template <class P>
bool eventually(P pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace commentd::testing

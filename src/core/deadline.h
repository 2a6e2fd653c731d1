// A request's deadline: the point in monotonic time after which its work is pointless.
// Created once per request by the HTTP server (server.request_timeout after the request was
// read) and passed down through every seam call, so a slow dependency cannot hold a request
// past it. Value type; thread-safe.
#pragma once

#include <algorithm>
#include <chrono>

namespace commentd {

struct Deadline {
  using clock = std::chrono::steady_clock;
  clock::time_point at = clock::time_point::max();

  static Deadline never() { return {}; }
  static Deadline after(std::chrono::milliseconds d) { return {clock::now() + d}; }

  bool expired() const { return clock::now() >= at; }
  // Time left, 0 when expired; a large value for never().
  std::chrono::milliseconds remaining() const {
    if (at == clock::time_point::max()) return std::chrono::hours(24 * 365);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at - clock::now());
    return std::max(left, std::chrono::milliseconds(0));
  }
  // The earlier of this deadline and `d` from now (e.g. a per-call timeout under the request's).
  Deadline capped(std::chrono::milliseconds d) const { return {std::min(at, clock::now() + d)}; }
};

}  // namespace commentd

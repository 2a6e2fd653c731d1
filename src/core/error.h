// Domain errors and the Result type that crosses every seam (DESIGN.md "Errors").
// Thread-safe: value types only.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace commentd {

// Each code maps to exactly one HTTP status, in api/errors.cpp (the only place).
enum class Errc {
  bad_request,         // 400: malformed JSON, bad UUID, bad cursor, bad query parameter
  unauthenticated,     // 401
  forbidden,           // 403
  not_found,           // 404
  conflict,            // 409
  payload_too_large,   // 413
  unprocessable,       // 422: well-formed but invalid content
  rate_limited,        // 429
  overloaded,          // 503: a bounded queue is full; retry later
  unavailable,         // 503: storage not open / shutting down
  insufficient_storage,  // 507: the data volume is full; writes resume when space returns
  internal,            // 500
  deadline_exceeded,   // 503: the request's deadline (server.request_timeout) passed
};

std::string_view errc_name(Errc c);

struct Error {
  Errc code;
  std::string message;
  // Stable machine-readable code for the client ("content_empty", ...); defaults to the Errc name.
  std::string detail_code;
  // For rate_limited / overloaded: seconds after which a retry may succeed (Retry-After).
  int retry_after_s = 0;

  Error(Errc c, std::string msg, std::string detail = {}, int retry_after = 0)
      : code(c), message(std::move(msg)), detail_code(std::move(detail)), retry_after_s(retry_after) {}
  std::string_view client_code() const {
    return detail_code.empty() ? errc_name(code) : std::string_view(detail_code);
  }
};

// A minimal std::expected stand-in (g++ 12 has no C++20 <expected>).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }
  Error&& take_error() { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace commentd

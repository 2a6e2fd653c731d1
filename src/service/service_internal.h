// Pieces shared by the service's write rules (comment_writes.cpp) and its read path
// (comment_reads.cpp). Internal to src/service.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace commentd::service::detail {

inline constexpr int kMaxConflictRetries = 8;

inline Error not_found(std::string_view what) {
  return Error(Errc::not_found, std::string(what) + " not found", "not_found");
}
inline Error need_auth() {
  return Error(Errc::unauthenticated, "this request needs an authenticated user", "unauthenticated");
}

}  // namespace commentd::service::detail

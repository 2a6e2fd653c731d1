#include "core/error.h"

namespace commentd {

std::string_view errc_name(Errc c) {
  switch (c) {
    case Errc::bad_request: return "bad_request";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::forbidden: return "forbidden";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::payload_too_large: return "payload_too_large";
    case Errc::unprocessable: return "unprocessable";
    case Errc::rate_limited: return "rate_limited";
    case Errc::overloaded: return "overloaded";
    case Errc::unavailable: return "unavailable";
    case Errc::insufficient_storage: return "insufficient_storage";
    case Errc::internal: return "internal";
    case Errc::deadline_exceeded: return "deadline_exceeded";
  }
  return "internal";
}

}  // namespace commentd

#include "bridge/bridge_error.h"

#include <string>

#include "bridge/commentd_bridge.h"

namespace commentd::bridge {

std::string_view code_name(int32_t code) {
  switch (code) {
    case CB_OK: return "ok";
    case CB_CANCELLED: return "cancelled";
    case CB_TIMEOUT: return "timeout";
    case CB_WRITE_TIMEOUT: return "write_timeout";
    case CB_UNAVAILABLE: return "unavailable";
    case CB_OVERLOADED: return "overloaded";
    case CB_SYNTAX: return "syntax";
    case CB_INVALID: return "invalid";
    case CB_ALREADY_EXISTS: return "already_exists";
    case CB_SERVER: return "server";
    case CB_CONNECTION: return "connection";
    case CB_BAD_ARGUMENT: return "bad_argument";
    case CB_AUTH: return "auth";
    case CB_CLOSED: return "closed";
    case CB_INTERNAL: return "internal";
  }
  return "unknown";
}

Error to_error(int32_t code, std::string_view message) {
  Errc e = Errc::internal;
  switch (code) {
    case CB_CANCELLED:
    case CB_TIMEOUT:
    case CB_WRITE_TIMEOUT:
    case CB_UNAVAILABLE:
    case CB_CONNECTION:
    case CB_CLOSED:
      e = Errc::unavailable;
      break;
    case CB_OVERLOADED:
      e = Errc::overloaded;
      break;
    case CB_ALREADY_EXISTS:
      e = Errc::conflict;
      break;
    default:
      e = Errc::internal;
  }
  std::string msg(code_name(code));
  msg += ": ";
  msg += message;
  return Error(e, std::move(msg), "bridge_" + std::string(code_name(code)), e == Errc::overloaded ? 1 : 0);
}

bool is_transient(int32_t code) {
  switch (code) {
    case CB_TIMEOUT:
    case CB_WRITE_TIMEOUT:
    case CB_UNAVAILABLE:
    case CB_OVERLOADED:
    case CB_CONNECTION:
      return true;
    default:
      return false;
  }
}

}  // namespace commentd::bridge

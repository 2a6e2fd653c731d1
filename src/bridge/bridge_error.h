// The one mapping from bridge status codes (CB_* in commentd_bridge.h) to commentd's Errc.
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/error.h"

namespace commentd::bridge {

// Stable name of a CB_* code ("timeout", "write_timeout", ...); "unknown" otherwise.
std::string_view code_name(int32_t code);

// REQUIRES: code != CB_OK. The Error's detail_code is "bridge_<code_name>", so callers that
// must tell a write timeout (outcome unknown) from a plain failure can.
//  cancelled, timeout, write_timeout, unavailable, connection, closed -> unavailable (503)
//  overloaded -> overloaded (503, retry later)
//  syntax, invalid, bad_argument, auth, server, internal -> internal (our bug or setup, 500)
//  already_exists -> conflict
Error to_error(int32_t code, std::string_view message);

// True for codes where retrying the same request later may succeed.
bool is_transient(int32_t code);

}  // namespace commentd::bridge

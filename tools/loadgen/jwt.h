// Tokens for the load generator's simulated users, signed by the server's own HS256 code
// (src/auth): one implementation of JWT in the project.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace commentd::loadgen {

// A token for user `sub` (a uuid string) with payload {"sub":sub,"exp":exp_unix_seconds}.
std::string make_user_jwt(std::string_view sub, int64_t exp_unix_seconds, std::string_view secret);

}  // namespace commentd::loadgen

#include "jwt.h"

#include "auth/jwt.h"

namespace commentd::loadgen {

std::string make_user_jwt(std::string_view sub, int64_t exp_unix_seconds, std::string_view secret) {
  std::string payload = R"({"sub":")";
  payload += sub;
  payload += R"(","exp":)";
  payload += std::to_string(exp_unix_seconds);
  payload += '}';
  return auth::sign_hs256(secret, payload);
}

}  // namespace commentd::loadgen

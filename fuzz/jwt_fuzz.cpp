// JWT verification over arbitrary tokens: never crashes, fails only as unauthenticated, and
// anything it accepts is canonical base64url signed with the secret.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/jwt.h"

using namespace commentd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ManualClock clock;  // 2023-11-14; the seeds expire in 2100
  static const auth::JwtVerifier verifier("fuzz-secret", clock, 0);
  std::string_view token(reinterpret_cast<const char*>(data), size);
  auto claims = verifier.verify(token);
  if (!claims.ok()) {
    if (claims.error().code != Errc::unauthenticated) std::abort();
    return 0;
  }
  if (claims->user_id.is_nil()) std::abort();
  for (char c : token)
    if (c == '=' || c == '+' || c == '/') std::abort();
  return 0;
}

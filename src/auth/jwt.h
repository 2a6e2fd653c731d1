// HS256 JSON Web Tokens (RFC 7519) as the only user authentication: the verifier checks the
// signature and the time claims and yields who is calling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "core/uuid.h"

namespace commentd::auth {

struct Claims {
  Uuid user_id;            // "sub"
  bool moderator = false;  // "role" == "moderator"
  int64_t exp = 0;         // seconds since the Unix epoch
};

// Tokens longer than this are rejected unread.
inline constexpr size_t kMaxTokenBytes = 8192;

// Thread-safe; immutable after construction. `clock` must outlive the verifier.
class JwtVerifier {
 public:
  JwtVerifier(std::string secret, const Clock& clock);

  // `token` is the compact form without "Bearer ". Accepts only alg HS256 signed with the
  // secret, whose payload has "sub" (a canonical UUID) and a numeric "exp" later than now;
  // "nbf", if present, must not be later than now; "role" is optional. Every failure, an
  // empty secret included, is Errc::unauthenticated with a message saying what was wrong.
  Result<Claims> verify(std::string_view token) const;

 private:
  std::string secret_;
  const Clock& clock_;
};

// For tests, tools and the load generator: header {"alg":"HS256","typ":"JWT"}, the payload
// verbatim.
std::string sign_hs256(std::string_view secret, std::string_view payload_json);

// RFC 4648 section 5 alphabet, no padding.
std::string base64url_encode(std::string_view bytes);
// Padding optional; nullopt on characters outside the alphabet, an impossible length, or
// non-zero unused trailing bits.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace commentd::auth

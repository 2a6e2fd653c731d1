// HS256 JSON Web Tokens (RFC 7519) as the only user authentication: the verifier checks the
// signature and the time claims and yields who is calling.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>

#include "core/base64url.h"
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

// Thread-safe. `clock` must outlive the verifier.
// Verified tokens are remembered (by their exact text) until they expire, so a client that
// sends the same token on every request pays the HMAC and JSON parse once; the cache holds
// at most `cache_capacity` tokens (0 = no cache).
class JwtVerifier {
 public:
  JwtVerifier(std::string secret, const Clock& clock, size_t cache_capacity = 65536);

  // `token` is the compact form without "Bearer ". Accepts only alg HS256 signed with the
  // secret, whose payload has "sub" (a canonical UUID) and a numeric "exp" later than now;
  // "nbf", if present, must not be later than now; "role" is optional. Every failure, an
  // empty secret included, is Errc::unauthenticated with a message saying what was wrong.
  Result<Claims> verify(std::string_view token) const;

 private:
  Result<Claims> verify_uncached(std::string_view token) const;

  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Claims, TokenHash, std::equal_to<>> tokens;  // GUARDED_BY(mu)
  };
  static constexpr size_t kShards = 16;

  std::string secret_;
  const Clock& clock_;
  const size_t per_shard_;
  mutable std::array<Shard, kShards> cache_;
};

// For tests, tools and the load generator: header {"alg":"HS256","typ":"JWT"}, the payload
// verbatim.
std::string sign_hs256(std::string_view secret, std::string_view payload_json);

using commentd::base64url_decode;
using commentd::base64url_encode;

}  // namespace commentd::auth

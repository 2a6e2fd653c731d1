#include "auth/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>

#include <array>
#include <climits>
#include <cmath>
#include <utility>

namespace commentd::auth {
namespace {

constexpr size_t kSignatureBytes = 32;
constexpr std::string_view kHeaderJson = R"({"alg":"HS256","typ":"JWT"})";

using Mac = std::array<unsigned char, kSignatureBytes>;

// nullopt if OpenSSL fails or the key is too long for it.
std::optional<Mac> hmac_sha256(std::string_view key, std::string_view data) {
  if (key.size() > static_cast<size_t>(INT_MAX)) return std::nullopt;
  static const unsigned char kNoKey = 0;
  Mac mac{};
  unsigned int len = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kNoKey) : key.data();
  if (!HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len) ||
      len != mac.size())
    return std::nullopt;
  return mac;
}

Error fail(std::string message) { return Error{Errc::unauthenticated, std::move(message)}; }

// Parses without recursion, so nesting depth cannot exhaust the stack.
bool parse_object(std::string_view json, rapidjson::Document& doc) {
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(json.data(),
                                                                                    json.size());
  return !doc.HasParseError() && doc.IsObject();
}

// An attacker-chosen string made safe to echo in an error message.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 20;
  std::string out;
  for (char c : s.substr(0, kMaxShown)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > kMaxShown) out += "...";
  return out;
}

// A NumericDate: seconds, possibly fractional; floored and clamped to int64.
std::optional<int64_t> numeric_date(const rapidjson::Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsUint64()) return INT64_MAX;
  if (!v.IsNumber()) return std::nullopt;
  double d = std::floor(v.GetDouble());
  if (!std::isfinite(d)) return std::nullopt;
  if (d >= 9.2e18) return INT64_MAX;
  if (d <= -9.2e18) return INT64_MIN;
  return static_cast<int64_t>(d);
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Result<int64_t> optional_date(const rapidjson::Value& obj, const char* name, int64_t absent) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) return absent;
  std::optional<int64_t> t = numeric_date(it->value);
  if (!t) return fail(std::string("token ") + name + " is not a number");
  return *t;
}

}  // namespace

JwtVerifier::JwtVerifier(std::string secret, const Clock& clock, size_t cache_capacity)
    : secret_(std::move(secret)), clock_(clock), per_shard_((cache_capacity + kShards - 1) / kShards) {}

Result<Claims> JwtVerifier::verify(std::string_view token) const {
  if (per_shard_ == 0) return verify_uncached(token);
  const int64_t now_s = clock_.now_ms() / 1000;
  auto& shard = cache_[std::hash<std::string_view>{}(token) % kShards];
  {
    std::lock_guard lk(shard.mu);
    auto it = shard.tokens.find(token);
    if (it != shard.tokens.end()) {
      if (it->second.exp > now_s) return it->second;
      shard.tokens.erase(it);  // expired: verify again, which says so
    }
  }
  auto r = verify_uncached(token);
  if (r.ok()) {
    std::lock_guard lk(shard.mu);
    // Full: start over rather than track recency; a miss only costs one verification.
    if (shard.tokens.size() >= per_shard_) shard.tokens.clear();
    shard.tokens.emplace(std::string(token), *r);
  }
  return r;
}

Result<Claims> JwtVerifier::verify_uncached(std::string_view token) const {
  if (secret_.empty()) return fail("JWT auth is not configured");
  if (token.size() > kMaxTokenBytes) return fail("token too large");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail("malformed token: expected three dot-separated parts");

  std::optional<std::string> header = base64url_decode(token.substr(0, dot1));
  if (!header) return fail("malformed token: header is not base64url");
  rapidjson::Document h;
  if (!parse_object(*header, h)) return fail("malformed token: header is not a JSON object");
  auto alg = h.FindMember("alg");
  if (alg == h.MemberEnd() || !alg->value.IsString()) return fail("token header has no alg");
  std::string_view alg_name(alg->value.GetString(), alg->value.GetStringLength());
  if (alg_name != "HS256")
    return fail("unsupported token alg '" + printable(alg_name) + "' (only HS256)");
  if (h.HasMember("crit")) return fail("unsupported token header 'crit'");

  std::optional<std::string> signature = base64url_decode(token.substr(dot2 + 1));
  std::optional<Mac> expected = hmac_sha256(secret_, token.substr(0, dot2));
  if (!signature || signature->size() != kSignatureBytes || !expected ||
      CRYPTO_memcmp(signature->data(), expected->data(), kSignatureBytes) != 0)
    return fail("bad token signature");

  std::optional<std::string> payload = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload) return fail("malformed token: payload is not base64url");
  rapidjson::Document p;
  if (!parse_object(*payload, p)) return fail("malformed token: payload is not a JSON object");

  Claims claims;
  auto sub = p.FindMember("sub");
  if (sub == p.MemberEnd() || !sub->value.IsString()) return fail("token has no sub");
  std::optional<Uuid> user =
      Uuid::parse(std::string_view(sub->value.GetString(), sub->value.GetStringLength()));
  if (!user || user->is_nil()) return fail("token sub is not a user id (UUID)");
  claims.user_id = *user;

  auto role = p.FindMember("role");
  if (role != p.MemberEnd()) {
    if (!role->value.IsString()) return fail("token role is not a string");
    claims.moderator = std::string_view(role->value.GetString(),
                                        role->value.GetStringLength()) == "moderator";
  }

  const int64_t now_s = floor_div(clock_.now_ms(), 1000);
  if (!p.HasMember("exp")) return fail("token has no exp");
  Result<int64_t> exp = optional_date(p, "exp", 0);
  if (!exp) return exp.take_error();
  if (*exp <= now_s) return fail("token expired");
  claims.exp = *exp;
  Result<int64_t> nbf = optional_date(p, "nbf", INT64_MIN);
  if (!nbf) return nbf.take_error();
  if (*nbf > now_s) return fail("token not yet valid");
  return claims;
}

std::string sign_hs256(std::string_view secret, std::string_view payload_json) {
  std::string signing_input = base64url_encode(kHeaderJson) + "." + base64url_encode(payload_json);
  std::optional<Mac> mac = hmac_sha256(secret, signing_input);
  std::string signature;  // empty if OpenSSL failed: such a token never verifies
  if (mac) signature = base64url_encode(std::string_view(reinterpret_cast<const char*>(mac->data()),
                                                         mac->size()));
  return signing_input + "." + signature;
}

}  // namespace commentd::auth

#include "core/cursor.h"

// The one-shot HMAC() of OpenSSL 3 fetches the MAC and digest implementations and hashes the
// key block on every call (about 1 us). The low-level SHA256_CTX is the only OpenSSL hash
// state that is a plain struct, so the keyed states can be computed once and copied per
// cursor. Its functions are marked deprecated in OpenSSL 3 (still shipped in every 3.x).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "core/base64url.h"

namespace commentd {

struct CursorKey::Midstates {
  SHA256_CTX inner;  // after SHA-256 of (key ^ ipad)
  SHA256_CTX outer;  // after SHA-256 of (key ^ opad)
};

namespace {

constexpr uint8_t kVersion = 2;
constexpr size_t kMacBytes = 12;
constexpr size_t kPosBytes = 1 + 1 + 8 + 16;  // version, sort, created_at, id
constexpr size_t kRawSize = kPosBytes + kMacBytes;
constexpr std::string_view kKeyLabel = "commentd cursor key v2";
constexpr size_t kBlock = 64;  // SHA-256 block size

using Digest = std::array<uint8_t, 32>;

// HMAC-SHA256 (RFC 2104) from the keyed states.
Digest hmac(const CursorKey::Midstates& m, const void* data, size_t len) {
  Digest inner{};
  SHA256_CTX c = m.inner;
  SHA256_Update(&c, data, len);
  SHA256_Final(inner.data(), &c);
  Digest out{};
  c = m.outer;
  SHA256_Update(&c, inner.data(), inner.size());
  SHA256_Final(out.data(), &c);
  return out;
}

Digest hmac_oneshot(const uint8_t* key, size_t key_len, const void* data, size_t len) {
  static const uint8_t kNoKey = 0;
  Digest out{};
  unsigned int n = 0;
  // SHA-256 cannot fail on these inputs; a failure leaves a zero digest, which only makes
  // every cursor invalid.
  HMAC(EVP_sha256(), key_len ? key : &kNoKey, static_cast<int>(key_len),
       static_cast<const unsigned char*>(data), len, out.data(), &n);
  return out;
}

Digest mac_of(const CursorKey& key, const CursorScope& scope, std::string_view pos_bytes) {
  uint8_t in[kPosBytes + 1 + 16];
  size_t n = 0;
  in[n++] = static_cast<uint8_t>(pos_bytes[0]);  // version
  in[n++] = static_cast<uint8_t>(scope.kind);
  in[n++] = static_cast<uint8_t>(scope.sort);  // the list's, not the cursor's byte
  for (uint8_t b : scope.list.bytes) in[n++] = b;
  for (size_t i = 2; i < kPosBytes; ++i) in[n++] = static_cast<uint8_t>(pos_bytes[i]);
  return hmac(key.midstates(), in, n);
}

}  // namespace

CursorKey::CursorKey() : CursorKey(Bytes{}) {}

CursorKey::CursorKey(const Bytes& bytes) : bytes_(bytes) {
  auto m = std::make_shared<Midstates>();
  uint8_t pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<uint8_t>((i < bytes.size() ? bytes[i] : 0) ^ 0x36);
  SHA256_Init(&m->inner);
  SHA256_Update(&m->inner, pad, kBlock);
  for (size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<uint8_t>((i < bytes.size() ? bytes[i] : 0) ^ 0x5c);
  SHA256_Init(&m->outer);
  SHA256_Update(&m->outer, pad, kBlock);
  OPENSSL_cleanse(pad, sizeof pad);
  mid_ = std::move(m);
}

CursorKey derive_cursor_key(std::string_view cursor_secret, std::string_view jwt_secret) {
  std::string_view secret = cursor_secret.empty() ? jwt_secret : cursor_secret;
  return CursorKey(hmac_oneshot(reinterpret_cast<const uint8_t*>(secret.data()), secret.size(),
                                kKeyLabel.data(), kKeyLabel.size()));
}
std::string encode_cursor(const CursorKey& key, const CursorScope& scope, const CursorPos& pos) {
  std::string raw(kRawSize, '\0');
  raw[0] = static_cast<char>(kVersion);
  raw[1] = static_cast<char>(scope.sort);
  uint64_t t = static_cast<uint64_t>(pos.created_at);
  for (int i = 0; i < 8; ++i) raw[2 + i] = static_cast<char>(t >> (56 - 8 * i));
  for (int i = 0; i < 16; ++i) raw[10 + i] = static_cast<char>(pos.id.bytes[i]);
  Digest mac = mac_of(key, scope, std::string_view(raw).substr(0, kPosBytes));
  for (size_t i = 0; i < kMacBytes; ++i) raw[kPosBytes + i] = static_cast<char>(mac[i]);
  return base64url_encode(raw);
}

Result<CursorPos> decode_cursor(const CursorKey& key, std::string_view text, const CursorScope& scope) {
  auto bad = [](std::string why) {
    return Error(Errc::bad_request, "invalid cursor: " + why, "invalid_cursor");
  };
  if (text.size() != kCursorChars) return bad("not a cursor");
  auto raw = base64url_decode(text);  // canonical only: one cursor, one text
  if (!raw || raw->size() != kRawSize) return bad("not a cursor");
  if (static_cast<uint8_t>((*raw)[0]) != kVersion) return bad("unknown version");
  Digest mac = mac_of(key, scope, std::string_view(*raw).substr(0, kPosBytes));
  if (static_cast<uint8_t>((*raw)[1]) != static_cast<uint8_t>(scope.sort))
    return bad("made for another sort order");
  if (CRYPTO_memcmp(mac.data(), raw->data() + kPosBytes, kMacBytes) != 0)
    return bad("not made for this list");
  CursorPos p;
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = t << 8 | static_cast<uint8_t>((*raw)[2 + i]);
  p.created_at = static_cast<TimeMs>(t);
  for (int i = 0; i < 16; ++i) p.id.bytes[i] = static_cast<uint8_t>((*raw)[10 + i]);
  return p;
}

}  // namespace commentd

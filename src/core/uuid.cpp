#include "core/uuid.h"

#include <cstring>

namespace commentd {
namespace {
int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<Uuid> Uuid::parse(std::string_view s) {
  if (s.size() != 36) return std::nullopt;
  Uuid u;
  size_t bi = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = hexval(s[i]), lo = hexval(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    u.bytes[bi++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return u;
}

char* Uuid::write(char* out) const {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
    *out++ = kHex[bytes[i] >> 4];
    *out++ = kHex[bytes[i] & 15];
  }
  return out;
}

std::string Uuid::str() const {
  std::string out(36, '\0');
  write(out.data());
  return out;
}

bool Uuid::is_nil() const {
  for (auto b : bytes)
    if (b) return false;
  return true;
}

TimeMs Uuid::v7_time_ms() const {
  TimeMs t = 0;
  for (int i = 0; i < 6; ++i) t = t << 8 | bytes[i];
  return t;
}

size_t UuidHash::operator()(const Uuid& u) const noexcept {
  uint64_t a, b;
  std::memcpy(&a, u.bytes.data(), 8);
  std::memcpy(&b, u.bytes.data() + 8, 8);
  return static_cast<size_t>(a * 0x9E3779B97F4A7C15ULL ^ b);
}

UuidGenerator::UuidGenerator(const Clock& clock, uint64_t seed, uint16_t node_id)
    : clock_(clock), node_id_(static_cast<uint16_t>(node_id & 0x3FF)), rng_(seed) {}

uint16_t UuidGenerator::node_of(const Uuid& u) {
  return static_cast<uint16_t>((u.bytes[8] & 0x3F) << 4 | u.bytes[9] >> 4);
}

Uuid UuidGenerator::next() {
  std::lock_guard lk(mu_);
  TimeMs now = clock_.now_ms();
  if (now > last_ms_) {
    last_ms_ = now;
    counter_ = static_cast<uint16_t>(rng_() & 0x3FF);  // leave headroom for increments
  } else if (++counter_ > 0xFFF) {
    // 4096 ids in one ms (or a clock step back): borrow the next millisecond.
    ++last_ms_;
    counter_ = 0;
  }
  Uuid u;
  uint64_t ts = static_cast<uint64_t>(last_ms_);
  for (int i = 0; i < 6; ++i) u.bytes[i] = static_cast<uint8_t>(ts >> (40 - 8 * i));
  u.bytes[6] = static_cast<uint8_t>(0x70 | (counter_ >> 8));
  u.bytes[7] = static_cast<uint8_t>(counter_ & 0xFF);
  uint64_t r = rng_();
  for (int i = 8; i < 16; ++i) u.bytes[i] = static_cast<uint8_t>(r >> (8 * (i - 8)));
  u.bytes[8] = static_cast<uint8_t>(0x80 | (u.bytes[8] & 0x3F));
  if (node_id_) {
    u.bytes[8] = static_cast<uint8_t>(0x80 | (node_id_ >> 4));
    u.bytes[9] = static_cast<uint8_t>((node_id_ & 0xF) << 4 | (u.bytes[9] & 0x0F));
  }
  return u;
}

}  // namespace commentd

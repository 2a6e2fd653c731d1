// 128-bit ids. New ids are UUIDv7 (RFC 9562): 48-bit Unix-ms timestamp first, so byte order
// is creation order, then a per-process counter for ids made in the same millisecond.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "core/clock.h"

namespace commentd {

struct Uuid {
  std::array<uint8_t, 16> bytes{};

  static std::optional<Uuid> parse(std::string_view text);  // canonical 8-4-4-4-12 hex only
  std::string str() const;                                  // lowercase canonical form
  // The 36 characters of str() written at `out` (no terminator); returns out + 36.
  char* write(char* out) const;
  bool is_nil() const;
  // The embedded timestamp of a UUIDv7, in ms.
  TimeMs v7_time_ms() const;

  auto operator<=>(const Uuid&) const = default;
};

struct UuidHash {
  size_t operator()(const Uuid& u) const noexcept;
};

// A pair of ids as one key: (video, user), (comment, user).
struct UuidPairHash {
  size_t operator()(const std::pair<Uuid, Uuid>& p) const noexcept {
    return UuidHash{}(p.first) * 31 + UuidHash{}(p.second);
  }
};

// Thread-safe. Ids from one generator are strictly increasing, even when the clock stalls or
// steps back. With a node id (1..1023), the first 10 bits of rand_b carry it, so generators
// on distinct nodes never mint the same id; node 0 leaves rand_b wholly random.
class UuidGenerator {
 public:
  UuidGenerator(const Clock& clock, uint64_t seed, uint16_t node_id = 0);
  Uuid next();
  uint16_t node_id() const { return node_id_; }
  // The node id carried by an id minted with a node id (0 when none).
  static uint16_t node_of(const Uuid& u);

 private:
  const Clock& clock_;
  const uint16_t node_id_;
  std::mutex mu_;
  std::mt19937_64 rng_;   // GUARDED_BY(mu_)
  TimeMs last_ms_ = 0;    // GUARDED_BY(mu_)
  uint16_t counter_ = 0;  // GUARDED_BY(mu_): the 12-bit rand_a field
};

}  // namespace commentd

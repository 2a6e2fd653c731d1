// Deterministic randomness for workloads: every draw derives from --seed, so two runs with
// the same seed send the same requests in the same order (per request index).
// Rng and ZipfSampler::sample are thread-compatible; ZipfSampler is immutable after build.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace commentd::loadgen {

// SplitMix64 finaliser: a bijective 64-bit mix.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A small fast generator (SplitMix64 sequence).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t below(uint64_t n) { return static_cast<uint64_t>(uniform() * static_cast<double>(n)); }

 private:
  uint64_t state_;
};

// A random (version 4 layout) uuid in canonical text form, a pure function of `key`.
std::string uuid_from_key(uint64_t key);

// Ranks 0..n-1 with P(rank k) proportional to 1/(k+1)^s. Rank 0 is the hottest.
class ZipfSampler {
 public:
  // REQUIRES: n >= 1, s >= 0 (s = 0 is uniform).
  ZipfSampler(uint64_t n, double s);
  uint64_t sample(Rng& rng) const;
  uint64_t size() const { return cdf_.size(); }
  // P(rank k), for tests and reports.
  double probability(uint64_t k) const;

 private:
  std::vector<double> cdf_;  // cumulative, last = 1
};

}  // namespace commentd::loadgen

// An HDR-style log-linear latency histogram. Values are non-negative integers (the load
// generator records microseconds). Values below 2^sub_bits land in exact unit buckets; each
// power-of-two range above is split into 2^(sub_bits-1) equal buckets, so every bucket is at
// most 2^-(sub_bits-1) of its values wide: sub_bits = 8 gives <= 0.78 % relative error.
// Values above max_value are counted in the top bucket (the exact max is kept apart).
//
// Thread-compatible: one writer at a time; merge() combines histograms from many writers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace commentd::loadgen {

class Histogram {
 public:
  static constexpr int default_sub_bits = 8;
  static constexpr uint64_t default_max_value = 60ULL * 1000 * 1000;  // 60 s in us

  // REQUIRES: 2 <= sub_bits <= 20, max_value >= 2^sub_bits.
  explicit Histogram(int sub_bits = default_sub_bits, uint64_t max_value = default_max_value);

  void record(uint64_t value, uint64_t times = 1);
  // REQUIRES: other has the same sub_bits and max_value (else std::invalid_argument).
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }

  // The value at percentile p (0..100] of the recorded values: the highest value that is
  // equivalent (same bucket) to the sample at rank ceil(p/100 * count), clamped to
  // [min(), max()]. So it is never below the true sample quantile and at most one bucket
  // width above it. 0 when empty.
  uint64_t percentile(double p) const;
  // How many recorded values are >= value's bucket's lower bound (an upper bound on the
  // number of values >= value, exact at bucket boundaries).
  uint64_t count_at_or_above(uint64_t value) const;

  int sub_bits() const { return sub_bits_; }
  uint64_t max_value() const { return max_value_; }
  size_t bucket_count() const { return counts_.size(); }

  // Bucket geometry, exposed for tests.
  size_t index_of(uint64_t value) const;
  uint64_t lowest_equivalent(size_t index) const;
  uint64_t highest_equivalent(size_t index) const;

 private:
  int sub_bits_;
  uint64_t max_value_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace commentd::loadgen

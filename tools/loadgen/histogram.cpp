#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

namespace commentd::loadgen {

Histogram::Histogram(int sub_bits, uint64_t max_value)
    : sub_bits_(sub_bits), max_value_(max_value) {
  if (sub_bits < 2 || sub_bits > 20)
    throw std::invalid_argument("histogram: sub_bits out of range");
  if (max_value < (uint64_t{1} << sub_bits))
    throw std::invalid_argument("histogram: max_value too small");
  counts_.assign(index_of(max_value) + 1, 0);
}

size_t Histogram::index_of(uint64_t value) const {
  const uint64_t sub_count = uint64_t{1} << sub_bits_;
  if (value < sub_count) return static_cast<size_t>(value);
  const uint64_t half = sub_count / 2;
  const int msb = 63 - std::countl_zero(value);  // >= sub_bits_
  const int shift = msb - (sub_bits_ - 1);       // value >> shift lies in [half, sub_count)
  return static_cast<size_t>(sub_count + static_cast<uint64_t>(shift - 1) * half +
                             ((value >> shift) - half));
}

uint64_t Histogram::lowest_equivalent(size_t index) const {
  const uint64_t sub_count = uint64_t{1} << sub_bits_;
  if (index < sub_count) return index;
  const uint64_t half = sub_count / 2;
  const uint64_t j = index - sub_count;
  const uint64_t shift = j / half + 1;
  return (j % half + half) << shift;
}

uint64_t Histogram::highest_equivalent(size_t index) const {
  const uint64_t sub_count = uint64_t{1} << sub_bits_;
  if (index < sub_count) return index;
  const uint64_t half = sub_count / 2;
  const uint64_t shift = (index - sub_count) / half + 1;
  return lowest_equivalent(index) + (uint64_t{1} << shift) - 1;
}

void Histogram::record(uint64_t value, uint64_t times) {
  if (times == 0) return;
  counts_[index_of(std::min(value, max_value_))] += times;
  count_ += times;
  sum_ += value * times;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  if (other.sub_bits_ != sub_bits_ || other.max_value_ != max_value_) {
    throw std::invalid_argument("histogram: merging histograms of different geometry");
  }
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(highest_equivalent(i), min_, max_);
  }
  return max_;
}

uint64_t Histogram::count_at_or_above(uint64_t value) const {
  uint64_t n = 0;
  for (size_t i = index_of(std::min(value, max_value_)); i < counts_.size(); ++i) n += counts_[i];
  return n;
}

}  // namespace commentd::loadgen

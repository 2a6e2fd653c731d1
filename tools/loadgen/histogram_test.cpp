#include "histogram.h"

#include <gtest/gtest.h>

#include <cmath>

namespace commentd::loadgen {
namespace {

// percentile() is within one bucket (<= 2^-(sub_bits-1) relative) of the true quantile.
void expect_within_precision(const Histogram& h, double p, double truth) {
  const double got = static_cast<double>(h.percentile(p));
  const double precision = 1.0 / static_cast<double>(1 << (h.sub_bits() - 1));
  EXPECT_GE(got, truth * (1 - precision) - 1) << "p" << p;
  EXPECT_LE(got, truth * (1 + precision) + 1) << "p" << p;
}

TEST(HistogramTest, BucketsAreContiguousAndNarrow) {
  Histogram h;
  size_t prev = 0;
  for (uint64_t v = 1; v < 5'000'000; v = v * 17 / 16 + 1) {
    const size_t i = h.index_of(v);
    EXPECT_GE(i, prev);
    prev = i;
    EXPECT_LE(h.lowest_equivalent(i), v);
    EXPECT_GE(h.highest_equivalent(i), v);
    const double width = static_cast<double>(h.highest_equivalent(i) - h.lowest_equivalent(i) + 1);
    if (v >= 256) {
      EXPECT_LE(width / static_cast<double>(v), 1.0 / 128 + 1e-12) << v;
    } else {
      EXPECT_EQ(width, 1.0) << v;
    }
    EXPECT_EQ(h.index_of(h.highest_equivalent(i) + 1), i + 1);
  }
  EXPECT_EQ(h.bucket_count(), h.index_of(Histogram::default_max_value) + 1);
}

TEST(HistogramTest, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(HistogramTest, UniformOneToTenThousand) {
  Histogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 10000u);
  EXPECT_GE(h.percentile(50), 5000u);  // never below the sample quantile
  expect_within_precision(h, 50, 5000);
  expect_within_precision(h, 90, 9000);
  expect_within_precision(h, 99, 9900);
  expect_within_precision(h, 99.9, 9990);
  EXPECT_EQ(h.percentile(100), 10000u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 10000u);
  EXPECT_DOUBLE_EQ(h.mean(), 5000.5);
  EXPECT_NEAR(static_cast<double>(h.percentile(50)), 5000, 5000 * 0.01);
}

TEST(HistogramTest, ConstantIsExact) {
  Histogram h;
  h.record(123456, 1000);
  for (double p : {0.1, 50.0, 99.0, 99.9, 100.0}) EXPECT_EQ(h.percentile(p), 123456u) << p;
}

TEST(HistogramTest, ExponentialQuantiles) {
  // Deterministic exponential sample with mean 1000: x_i = -1000 ln(1 - (i + 0.5)/n).
  Histogram h;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    h.record(static_cast<uint64_t>(-1000.0 * std::log(1.0 - (i + 0.5) / n)));
  }
  expect_within_precision(h, 50, 1000.0 * std::log(2.0));       // 693
  expect_within_precision(h, 90, 1000.0 * std::log(10.0));      // 2303
  expect_within_precision(h, 99, 1000.0 * std::log(100.0));     // 4605
  expect_within_precision(h, 99.9, 1000.0 * std::log(1000.0));  // 6908
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  for (uint64_t v = 0; v < 50000; v += 7) {
    (v % 2 ? a : b).record(v * 13);
    all.record(v * 13);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {1.0, 50.0, 95.0, 99.0, 99.99}) EXPECT_EQ(a.percentile(p), all.percentile(p));
  EXPECT_THROW(a.merge(Histogram(5)), std::invalid_argument);
}

TEST(HistogramTest, ValuesAboveMaxClampToTopBucketButKeepExactMax) {
  Histogram h(8, 1'000'000);
  h.record(5'000'000);
  EXPECT_EQ(h.max(), 5'000'000u);
  EXPECT_EQ(h.percentile(50), 5'000'000u);  // clamped to [min, max]
  EXPECT_EQ(h.count_at_or_above(999'000), 1u);
}

TEST(HistogramTest, CountAtOrAbove) {
  Histogram h;
  for (uint64_t v = 1; v <= 1000; ++v) h.record(v * 1000);
  EXPECT_EQ(h.count_at_or_above(500'000), 501u);
  EXPECT_EQ(h.count_at_or_above(0), 1000u);
}

}  // namespace
}  // namespace commentd::loadgen

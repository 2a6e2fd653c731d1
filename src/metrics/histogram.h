// A fixed-bucket histogram for hot paths: observe() is a bucket search and three relaxed
// atomic adds, no lock, no allocation. Components own theirs (in their stats struct) and
// the metrics module renders them at scrape time. Thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace commentd::metrics {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds)
      : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
    for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
  }

  void observe(double v) {
    size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket, not cumulative; one more than bounds (+Inf)
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const {
    Snapshot s{bounds_, std::vector<uint64_t>(bounds_.size() + 1), count_.load(), sum_.load()};
    for (size_t i = 0; i <= bounds_.size(); ++i) s.counts[i] = buckets_[i].load(std::memory_order_relaxed);
    return s;
  }

  // Bounds for latencies in seconds: 50 µs to 5 s.
  static std::vector<double> latency_bounds() {
    return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  }
  // Bounds for background delays (event delivery, reaction apply lag): 1 ms to the plan's 5
  // minutes, finer around the 1 s goal for the event path (issue 11) so a p99 near it shows.
  static std::vector<double> delay_bounds() {
    return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3.5, 5, 10, 30, 60, 120, 300};
  }
  // Bounds for sizes (ops per batch, writes per group): 1 to 4096.
  static std::vector<double> size_bounds() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

}  // namespace commentd::metrics

// Prometheus metrics, served at GET /metrics by our own HTTP server. Components keep cheap
// atomics in their own stats struct (service::ServiceStats, workers::ApplierStats, ...);
// this module reads them at scrape time through registered sources, and owns the request
// histograms the router feeds. Thread-safe.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/circuit_breaker.h"
#include <vector>

namespace commentd::metrics {

// Appends families to `out` at scrape time.
using Source = std::function<void(std::vector<prometheus::MetricFamily>& out)>;

class Metrics {
 public:
  Metrics();
  void observe_request(std::string_view method, std::string_view route, unsigned status,
                       double seconds);
  void add_source(Source s);
  // The text exposition format (version 0.0.4).
  std::string render() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  class Sources;
  const uint64_t instance_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Sources> sources_;
  prometheus::Family<prometheus::Histogram>* requests_;
};

// Helpers for sources.
prometheus::MetricFamily counter_family(std::string name, std::string help, double value);
prometheus::MetricFamily gauge_family(std::string name, std::string help, double value);
// A counter family of one series per value of one label, e.g.
// counter_family("x_total", "...", "outcome", {{"hit", hits}, {"miss", misses}}).
prometheus::MetricFamily counter_family(std::string name, std::string help, const std::string& label,
                                        const std::vector<std::pair<std::string, double>>& series);
// <prefix>_breaker_state (0 closed, 1 open, 2 half-open), <prefix>_breaker_opens_total and
// <prefix>_breaker_rejected_total of the circuit breaker in front of `dependency`.
void append_breaker_metrics(const std::string& prefix, const std::string& dependency,
                            const CircuitBreaker::Stats& s, std::vector<prometheus::MetricFamily>& out);
class Histogram;
// A Prometheus histogram family with one series from `h`.
prometheus::MetricFamily histogram_family(std::string name, std::string help, const Histogram& h);
void add_sample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                double value);
// One more labelled series of a histogram family.
void add_histogram_sample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                          const Histogram& h);

}  // namespace commentd::metrics

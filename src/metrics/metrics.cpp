#include "metrics/metrics.h"

#include <limits>

#include "metrics/histogram.h"

#include <prometheus/text_serializer.h>

#include <atomic>
#include <sstream>
#include <unordered_map>

namespace commentd::metrics {

class Metrics::Sources final : public prometheus::Collectable {
 public:
  void add(Source s) {
    std::lock_guard lk(mu_);
    sources_.push_back(std::move(s));
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    std::lock_guard lk(mu_);
    for (auto& s : sources_) s(out);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Source> sources_;  // GUARDED_BY(mu_)
};

namespace {
std::atomic<uint64_t> next_instance{1};
}

Metrics::Metrics()
    : instance_(next_instance.fetch_add(1)),
      registry_(std::make_shared<prometheus::Registry>()), sources_(std::make_shared<Sources>()) {
  requests_ = &prometheus::BuildHistogram()
                   .Name("commentd_http_request_duration_seconds")
                   .Help("HTTP request duration by route, method and status")
                   .Register(*registry_);
  auto& info = prometheus::BuildGauge()
                   .Name("commentd_build_info")
                   .Help("Build information; the value is always 1")
                   .Register(*registry_);
  info.Add({{"version", COMMENTD_VERSION}, {"mode", "embedded"}}).Set(1);
}

void Metrics::observe_request(std::string_view method, std::string_view route, unsigned status,
                              double seconds) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5};
  // Family::Add builds a label map and takes the family's lock: do it once per series per
  // thread. Route patterns are the router's own strings (stable for the process), so their
  // address and the method's text identify a series together with the status; the instance
  // number keeps a later Metrics from finding an earlier one's series.
  struct Key {
    uint64_t instance;
    const char* route;
    std::string method;
    unsigned status;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<const void*>{}(k.route) ^ std::hash<std::string>{}(k.method) * 31 ^ k.status * 1000003u ^
             std::hash<uint64_t>{}(k.instance);
    }
  };
  thread_local std::unordered_map<Key, prometheus::Histogram*, KeyHash> series;
  Key key{instance_, route.empty() ? nullptr : route.data(), std::string(method), status};
  auto it = series.find(key);
  if (it == series.end()) {
    auto& h = requests_->Add({{"method", std::string(method)},
                              {"route", route.empty() ? std::string("unmatched") : std::string(route)},
                              {"status", std::to_string(status)}},
                             kBuckets);
    it = series.emplace(std::move(key), &h).first;
  }
  it->second->Observe(seconds);
}

void Metrics::add_source(Source s) { sources_->add(std::move(s)); }

std::string Metrics::render() const {
  auto families = registry_->Collect();
  auto extra = sources_->Collect();
  families.insert(families.end(), std::make_move_iterator(extra.begin()),
                  std::make_move_iterator(extra.end()));
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, families);
  return os.str();
}

namespace {
prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType t) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = t;
  return f;
}
}  // namespace

void add_sample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (f.type == prometheus::MetricType::Counter) m.counter.value = value;
  else m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

prometheus::MetricFamily histogram_family(std::string name, std::string help, const Histogram& h) {
  auto f = family(std::move(name), std::move(help), prometheus::MetricType::Histogram);
  add_histogram_sample(f, {}, h);
  return f;
}

void add_histogram_sample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                          const Histogram& h) {
  auto snap = h.snapshot();
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.histogram.sample_count = snap.count;
  m.histogram.sample_sum = snap.sum;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < snap.counts.size(); ++i) {
    cumulative += snap.counts[i];
    prometheus::ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < snap.bounds.size() ? snap.bounds[i] : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(b);
  }
  f.metric.push_back(std::move(m));
}

prometheus::MetricFamily counter_family(std::string name, std::string help, double value) {
  auto f = family(std::move(name), std::move(help), prometheus::MetricType::Counter);
  add_sample(f, {}, value);
  return f;
}

prometheus::MetricFamily counter_family(std::string name, std::string help, const std::string& label,
                                        const std::vector<std::pair<std::string, double>>& series) {
  auto f = family(std::move(name), std::move(help), prometheus::MetricType::Counter);
  for (const auto& [value, count] : series) add_sample(f, {{label, value}}, count);
  return f;
}

prometheus::MetricFamily gauge_family(std::string name, std::string help, double value) {
  auto f = family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
  add_sample(f, {}, value);
  return f;
}

void append_breaker_metrics(const std::string& prefix, const std::string& dependency,
                            const CircuitBreaker::Stats& s, std::vector<prometheus::MetricFamily>& out) {
  out.push_back(gauge_family(prefix + "_breaker_state", dependency + " circuit breaker: 0 closed, 1 open, 2 half-open",
                             double(s.state.load())));
  out.push_back(counter_family(prefix + "_breaker_opens_total", "Times the " + dependency + " circuit breaker opened",
                               double(s.opens.load())));
  out.push_back(counter_family(prefix + "_breaker_rejected_total",
                               dependency + " calls failed at once by the open breaker", double(s.rejected.load())));
  out.push_back(counter_family(prefix + "_breaker_stalls_total",
                               "Times the " + dependency + " circuit breaker opened because calls waited with no answer",
                               double(s.stalls.load())));
}

}  // namespace commentd::metrics

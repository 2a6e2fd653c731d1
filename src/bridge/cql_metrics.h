// What a CqlSession's calls cost, by statement: latency, outcome (ok or the bridge's error
// kind, bridge_error.h code_name) and calls in flight, observed on the bridge thread that completes each call (a few
// relaxed atomic adds). A statement is named by what it does, from its CQL text when it is
// prepared: "SELECT comments", "UPDATE comment_metrics", "INSERT reaction_owners IF"; a batch
// by its type ("BATCH unlogged"). Several statements of one kind on one table share a name,
// which keeps the label's values few (about forty for the whole schema).
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <vector>

#include <prometheus/metric_family.h>

#include "bridge/commentd_bridge.h"
#include "metrics/histogram.h"

namespace commentd::bridge {

// "SELECT a, b FROM ks.comments WHERE ..." -> "SELECT comments"; "... IF ..." adds " IF".
std::string statement_label(std::string_view cql);

class CqlMetrics {
 public:
  static constexpr int32_t kOutcomes = CB_INTERNAL + 1;  // CB_OK .. CB_INTERNAL
  struct Statement {
    metrics::Histogram seconds{metrics::Histogram::latency_bounds()};
    std::array<std::atomic<uint64_t>, kOutcomes> outcomes{};
  };

  // The stats of `label`, created on first use; the reference stays valid.
  Statement& of(const std::string& label);
  void started() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void finished(Statement& s, int32_t code, double seconds) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    s.seconds.observe(seconds);
    s.outcomes[code >= 0 && code < kOutcomes ? code : CB_INTERNAL].fetch_add(1, std::memory_order_relaxed);
  }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // Every statement seen so far, in label order.
  void each(const std::function<void(const std::string&, const Statement&)>& f) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Statement>> by_label_;  // GUARDED_BY(mu_)
  std::atomic<int64_t> in_flight_{0};
};

// commentd_cql_request_duration_seconds{statement}, commentd_cql_requests_total{statement,
// outcome}, commentd_cql_in_flight_requests, and the driver's commentd_cql_driver_* counters.
void append_metrics(const CqlMetrics& m, const cb_cql_driver_metrics& driver,
                    std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::bridge

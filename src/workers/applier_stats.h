// The figures both reaction appliers keep -- the embedded one (workers/reaction_applier.h,
// on the node's op log) and the cluster one (workers/bus_reaction_applier.h, on the bus) --
// and their Prometheus families, exported once for whichever runs.
// Thread-safe: atomics and histograms only.
#pragma once

#include <prometheus/metric_family.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "metrics/histogram.h"

namespace commentd::workers {

struct ApplierStats {
  std::atomic<uint64_t> ops_applied{0};
  std::atomic<uint64_t> ops_ignored{0};     // lost the LWW race or changed nothing
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> counter_writes{0};  // net deltas written (one per hot comment per batch)
  std::atomic<uint64_t> errors{0};          // batches that failed (retried or given back)
  metrics::Histogram batch_size{metrics::Histogram::size_bounds()};        // ops per flush
  metrics::Histogram flush_seconds{metrics::Histogram::latency_bounds()};  // read, merge, durable write
};

// commentd_event_log_{appended,applied,ignored}_total and commentd_accumulator_{batches,
// counter_writes}_total, _batch_size, _flush_seconds. `appended`: the ops this node accepted
// (embedded: appended to its durable log; cluster: published to the reactions topic).
void append_applier_metrics(const ApplierStats& s, uint64_t appended, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::workers

#include "workers/applier_stats.h"

#include "metrics/metrics.h"

namespace commentd::workers {

void append_applier_metrics(const ApplierStats& s, uint64_t appended, std::vector<prometheus::MetricFamily>& out) {
  using metrics::counter_family;
  out.push_back(counter_family("commentd_event_log_appended_total",
                               "Reaction ops this node accepted (embedded: appended to its durable log; cluster: "
                               "published to the reactions topic, 202)",
                               double(appended)));
  out.push_back(counter_family("commentd_event_log_applied_total", "Reaction ops applied (changed a register)",
                               double(s.ops_applied.load())));
  out.push_back(counter_family("commentd_event_log_ignored_total",
                               "Reaction ops that changed no count (repeat or LWW loser)", double(s.ops_ignored.load())));
  out.push_back(counter_family("commentd_accumulator_batches_total", "Reaction batches flushed", double(s.batches.load())));
  out.push_back(counter_family("commentd_accumulator_counter_writes_total", "Net counter deltas written by the applier",
                               double(s.counter_writes.load())));
  out.push_back(metrics::histogram_family("commentd_accumulator_batch_size", "Reaction ops per flushed batch", s.batch_size));
  out.push_back(metrics::histogram_family("commentd_accumulator_flush_seconds",
                                          "Flush of one batch: read registers, merge, write registers, then counters",
                                          s.flush_seconds));
}

}  // namespace commentd::workers

// Metrics aggregation on the BatchConsumer (the plan's 6.2 processBatchedMetrics): metric
// update events (counter deltas for a comment) are netted per comment and metric over a
// batch, and the netted deltas are applied once per batch through a sink. A batch whose sink
// fails is nacked whole and comes back; events already applied are skipped by event id
// (a bounded in-memory window), so a redelivered event is not counted twice.
//
// Event (JSON, key: the comment id): {"event_id":"...","comment_id":"...","video_id":"...",
// "metric":"likes","delta":-1}. A message that is not such an event is counted and dropped.
//
// Thread-safe: the handler runs on the consumer's thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "events/event_bus.h"
#include "workers/batch_consumer.h"
#include "workers/event_subscriber.h"

namespace commentd::workers {

struct MetricUpdate {
  std::string event_id;
  std::string comment_id;
  std::string video_id;
  std::string metric;
  int64_t delta = 0;
};

std::string metric_update_json(const MetricUpdate& u);
std::optional<MetricUpdate> parse_metric_update(std::string_view payload);

// (comment id, metric) -> netted delta; zero nets are left out.
using NettedMetrics = std::map<std::pair<std::string, std::string>, int64_t>;

struct NetResult {
  NettedMetrics deltas;
  std::vector<std::string> event_ids;  // the events netted (new ones only)
  size_t duplicates = 0;
  size_t malformed = 0;
};

// Nets one batch; events whose id is in `seen` are skipped (not added to it: see apply).
NetResult net_metric_updates(const std::vector<events::Message>& batch, const RecentIds& seen);

struct MetricsAggregatorStats {
  std::atomic<uint64_t> events{0};      // netted and applied
  std::atomic<uint64_t> applies{0};     // sink calls (one per batch with a non-empty net)
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> malformed{0};
};

using MetricsSink = std::function<boost::asio::awaitable<Status>(const NettedMetrics&)>;

// A BatchConsumer on `opts.topic` whose handler nets each batch and calls `sink` once.
// REQUIRES: `bus` and `stats` outlive the consumer.
std::unique_ptr<BatchConsumer> make_metrics_aggregator(events::EventBus& bus, BatchConsumerOptions opts,
                                                       MetricsSink sink, MetricsAggregatorStats& stats,
                                                       size_t dedup_window = 100000);

}  // namespace commentd::workers

#include "workers/metrics_aggregator.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unordered_set>

namespace commentd::workers {

std::string metric_update_json(const MetricUpdate& u) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("event_id");
  w.String(u.event_id.c_str(), static_cast<rapidjson::SizeType>(u.event_id.size()));
  w.Key("comment_id");
  w.String(u.comment_id.c_str(), static_cast<rapidjson::SizeType>(u.comment_id.size()));
  w.Key("video_id");
  w.String(u.video_id.c_str(), static_cast<rapidjson::SizeType>(u.video_id.size()));
  w.Key("metric");
  w.String(u.metric.c_str(), static_cast<rapidjson::SizeType>(u.metric.size()));
  w.Key("delta");
  w.Int64(u.delta);
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

std::optional<MetricUpdate> parse_metric_update(std::string_view payload) {
  rapidjson::Document d;
  d.Parse(payload.data(), payload.size());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  auto str = [&](const char* k) -> std::optional<std::string> {
    auto it = d.FindMember(k);
    if (it == d.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return std::string(it->value.GetString(), it->value.GetStringLength());
  };
  MetricUpdate u;
  auto id = str("event_id"), comment = str("comment_id"), metric = str("metric");
  if (!id || !comment || !metric || id->empty() || comment->empty() || metric->empty()) return std::nullopt;
  auto delta = d.FindMember("delta");
  if (delta == d.MemberEnd() || !delta->value.IsInt64()) return std::nullopt;
  u.event_id = std::move(*id);
  u.comment_id = std::move(*comment);
  u.metric = std::move(*metric);
  u.video_id = str("video_id").value_or("");
  u.delta = delta->value.GetInt64();
  return u;
}

NetResult net_metric_updates(const std::vector<events::Message>& batch, const RecentIds& seen) {
  NetResult out;
  std::unordered_set<std::string> in_batch;
  for (const auto& m : batch) {
    auto u = parse_metric_update(m.payload);
    if (!u) {
      out.malformed++;
      continue;
    }
    if (seen.contains(u->event_id) || !in_batch.insert(u->event_id).second) {
      out.duplicates++;
      continue;
    }
    out.deltas[{u->comment_id, u->metric}] += u->delta;
    out.event_ids.push_back(std::move(u->event_id));
  }
  std::erase_if(out.deltas, [](const auto& kv) { return kv.second == 0; });
  return out;
}

std::unique_ptr<BatchConsumer> make_metrics_aggregator(events::EventBus& bus, BatchConsumerOptions opts,
                                                       MetricsSink sink, MetricsAggregatorStats& stats,
                                                       size_t dedup_window) {
  auto seen = std::make_shared<RecentIds>(dedup_window);
  auto handler = [sink = std::move(sink), &stats, seen](const std::vector<events::Message>& batch)
      -> boost::asio::awaitable<Status> {
    auto net = net_metric_updates(batch, *seen);
    stats.duplicates.fetch_add(net.duplicates);
    stats.malformed.fetch_add(net.malformed);
    if (!net.deltas.empty()) {
      Status s = co_await sink(net.deltas);
      if (!s) co_return s;  // nothing remembered: the whole batch comes back
      stats.applies.fetch_add(1);
    }
    for (auto& id : net.event_ids) seen->insert(id);
    stats.events.fetch_add(net.event_ids.size());
    co_return ok_status();
  };
  return std::make_unique<BatchConsumer>(bus, "metrics-aggregator", std::move(opts), std::move(handler));
}

}  // namespace commentd::workers

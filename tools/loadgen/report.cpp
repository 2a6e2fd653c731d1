#include "report.h"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>

namespace commentd::loadgen {

namespace {

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

double ms(uint64_t us) { return static_cast<double>(us) / 1000.0; }

void write_double(Writer& w, double v) {
  // Three decimals are plenty for ms and keep the file readable.
  w.Double(static_cast<double>(static_cast<int64_t>(v * 1000.0 + (v >= 0 ? 0.5 : -0.5))) / 1000.0);
}

void write_stats(Writer& w, const OpStats& s, double elapsed_s) {
  w.StartObject();
  w.Key("count");
  w.Uint64(s.count);
  w.Key("ok");
  w.Uint64(s.ok);
  w.Key("errors");
  w.StartObject();
  for (const auto& [status, n] : s.statuses) {
    w.Key(std::to_string(status).c_str());
    w.Uint64(n);
  }
  for (int f = 0; f < 3; ++f) {
    if (s.failures[f] == 0) continue;
    w.Key(to_string(static_cast<Failure>(f)));
    w.Uint64(s.failures[f]);
  }
  w.EndObject();
  w.Key("error_rate");
  write_double(w, s.count ? static_cast<double>(s.errors()) / static_cast<double>(s.count) : 0.0);
  w.Key("achieved_rate");
  const uint64_t answered = s.count - s.failures[0] - s.failures[1] - s.failures[2];
  write_double(w, elapsed_s > 0 ? static_cast<double>(answered) / elapsed_s : 0.0);
  w.Key("latency_ms");
  w.StartObject();
  const Histogram& h = s.latency;
  w.Key("min");
  write_double(w, ms(h.min()));
  w.Key("mean");
  write_double(w, h.mean() / 1000.0);
  static constexpr std::pair<const char*, double> points[] = {
      {"p50", 50}, {"p90", 90}, {"p95", 95}, {"p99", 99}, {"p99.9", 99.9}};
  for (const auto& [name, p] : points) {
    w.Key(name);
    write_double(w, ms(h.percentile(p)));
  }
  w.Key("max");
  write_double(w, ms(h.max()));
  w.EndObject();
  // The same for successful (admitted) responses only: under load shedding the 503s are fast
  // and would hide the admitted requests' latency.
  w.Key("ok_latency_ms");
  w.StartObject();
  for (const auto& [name, p] : points) {
    w.Key(name);
    write_double(w, ms(s.ok_latency.percentile(p)));
  }
  w.EndObject();
  w.EndObject();
}

void write_series(Writer& w, const OpStats& s) {
  w.StartArray();
  for (size_t t = 0; t < s.series.size(); ++t) {
    const SecondStats& sec = s.series[t];
    w.StartObject();
    w.Key("t");
    w.Uint64(t);
    w.Key("count");
    w.Uint64(sec.count);
    w.Key("errors");
    w.Uint64(sec.errors);
    w.Key("completed");
    w.Uint64(sec.completed);
    w.Key("p50_ms");
    write_double(w, ms(sec.latency.percentile(50)));
    w.Key("p99_ms");
    write_double(w, ms(sec.latency.percentile(99)));
    w.Key("max_ms");
    write_double(w, ms(sec.latency.max()));
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::optional<MetricsDelta> metrics_delta(const std::optional<ServerMetrics>& before,
                                          const std::optional<ServerMetrics>& after) {
  if (!after) return std::nullopt;
  MetricsDelta d;
  auto delta = [](const std::optional<double>& b,
                  const std::optional<double>& a) -> std::optional<double> {
    if (!a) return std::nullopt;
    return *a - b.value_or(0);
  };
  d.cache_hits = delta(before ? before->cache_hits : std::nullopt, after->cache_hits);
  d.cache_misses = delta(before ? before->cache_misses : std::nullopt, after->cache_misses);
  d.event_lag = after->event_lag;
  return d;
}

OpStats group_stats(const EngineResult& result, bool reads) {
  OpStats all;
  for (size_t op = 0; op < result.stats.op_count(); ++op) {
    const std::string& name = result.op_names[op];
    if (name == "get_root" || name == "seed_comment") continue;
    if (is_read_op(op) == reads) all.merge(result.stats.op(op));
  }
  return all;
}

std::string report_json(const Options& o, const ScenarioConfig& sc, const EngineResult& result,
                        const std::optional<MetricsDelta>& metrics) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.SetMaxDecimalPlaces(3);
  w.StartObject();
  w.Key("tool");
  w.String("commentd-loadgen");
  w.Key("parameters");
  w.StartObject();
  w.Key("target");
  w.String(o.target_url.c_str());
  w.Key("scenario");
  w.String(to_string(o.scenario));
  w.Key("closed_loop");
  w.Bool(o.closed_loop);
  w.Key("rate");
  write_double(w, sc.rates[cat_read] + sc.rates[cat_comment] + sc.rates[cat_reaction]);
  w.Key("read_rate");
  write_double(w, sc.rates[cat_read]);
  w.Key("comment_rate");
  write_double(w, sc.rates[cat_comment]);
  w.Key("reaction_rate");
  write_double(w, sc.rates[cat_reaction]);
  w.Key("duration_s");
  write_double(w, o.duration_s);
  w.Key("connections");
  w.Uint64(o.connections);
  w.Key("threads");
  w.Uint64(o.threads);
  w.Key("users");
  w.Uint64(sc.users);
  w.Key("seed");
  w.Uint64(o.seed);
  w.Key("seed_comments");
  w.Uint64(o.scenario == Scenario::baseline ? 0 : o.seed_comments);
  w.Key("videos");
  w.Uint64(sc.videos);
  w.Key("video");
  w.String(sc.videos == 1 && !sc.video.empty() ? sc.video.c_str() : "");
  w.Key("comment_zipf");
  write_double(w, sc.comment_zipf);
  w.Key("video_zipf");
  write_double(w, sc.video_zipf);
  w.Key("next_page_fraction");
  write_double(w, sc.next_page_fraction);
  w.Key("page_limit");
  w.Uint(sc.page_limit);
  w.Key("auth");
  w.Bool(!sc.jwt_secret.empty());
  w.Key("timeout_ms");
  w.Uint(o.timeout_ms);
  w.EndObject();
  w.Key("mode");
  w.String(o.closed_loop ? "closed" : "open");
  w.Key("duration_s");
  write_double(w, o.duration_s);
  w.Key("elapsed_s");
  write_double(w, result.elapsed_s);
  w.Key("scheduled");
  w.Uint64(result.scheduled);
  w.Key("unsent");
  w.Uint64(result.unsent);
  w.Key("operations");
  w.StartObject();
  for (size_t op = 0; op < result.stats.op_count(); ++op) {
    if (result.stats.op(op).count == 0) continue;
    w.Key(result.op_names[op].c_str());
    write_stats(w, result.stats.op(op), result.elapsed_s);
  }
  w.EndObject();
  w.Key("groups");
  w.StartObject();
  w.Key("reads");
  write_stats(w, group_stats(result, true), result.elapsed_s);
  w.Key("writes");
  write_stats(w, group_stats(result, false), result.elapsed_s);
  w.EndObject();
  w.Key("overall");
  write_stats(w, result.stats.overall(), result.elapsed_s);
  w.Key("server_metrics");
  if (!metrics) {
    w.Null();
  } else {
    w.StartObject();
    auto opt = [&](const char* key, const std::optional<double>& v) {
      w.Key(key);
      if (v)
        write_double(w, *v);
      else
        w.Null();
    };
    opt("cache_hits", metrics->cache_hits);
    opt("cache_misses", metrics->cache_misses);
    std::optional<double> rate;
    if (metrics->cache_hits && metrics->cache_misses &&
        *metrics->cache_hits + *metrics->cache_misses > 0) {
      rate = *metrics->cache_hits / (*metrics->cache_hits + *metrics->cache_misses);
    }
    opt("cache_hit_rate", rate);
    opt("event_lag", metrics->event_lag);
    w.EndObject();
  }
  w.Key("series");
  w.StartObject();
  for (size_t op = 0; op < result.stats.op_count(); ++op) {
    if (result.stats.op(op).count == 0) continue;
    w.Key(result.op_names[op].c_str());
    write_series(w, result.stats.op(op));
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string summary_text(const EngineResult& result, const std::optional<MetricsDelta>& metrics) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %9s %7s %9s %8s %8s %8s %8s %9s\n", "operation", "count",
                "errors", "rate/s", "p50 ms", "p95 ms", "p99 ms", "p99.9", "max ms");
  out += line;
  auto row = [&](const std::string& name, const OpStats& s) {
    if (s.count == 0) return;
    const Histogram& h = s.latency;
    std::snprintf(line, sizeof line, "%-16s %9llu %7llu %9.1f %8.2f %8.2f %8.2f %8.2f %9.2f\n",
                  name.c_str(), static_cast<unsigned long long>(s.count),
                  static_cast<unsigned long long>(s.errors()),
                  result.elapsed_s > 0 ? static_cast<double>(s.count) / result.elapsed_s : 0.0,
                  ms(h.percentile(50)), ms(h.percentile(95)), ms(h.percentile(99)),
                  ms(h.percentile(99.9)), ms(h.max()));
    out += line;
  };
  for (size_t op = 0; op < result.stats.op_count(); ++op)
    row(result.op_names[op], result.stats.op(op));
  row("[reads]", group_stats(result, true));
  row("[writes]", group_stats(result, false));
  row("[overall]", result.stats.overall());
  if (result.unsent > 0) {
    std::snprintf(line, sizeof line, "unsent at the drain deadline: %llu\n",
                  static_cast<unsigned long long>(result.unsent));
    out += line;
  }
  if (metrics && metrics->cache_hits && metrics->cache_misses) {
    const double total = *metrics->cache_hits + *metrics->cache_misses;
    if (total > 0) {
      std::snprintf(line, sizeof line, "cache: %.0f hits, %.0f misses, hit rate %.1f %%\n",
                    *metrics->cache_hits, *metrics->cache_misses,
                    100.0 * *metrics->cache_hits / total);
    } else {
      std::snprintf(line, sizeof line, "cache: no lookups during the run\n");
    }
    out += line;
  }
  return out;
}

}  // namespace commentd::loadgen

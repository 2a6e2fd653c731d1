// loadgen: drives commentd (or the baseline server) with the plan's SLO scenarios and writes
// what it measured as JSON. See README.md.
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>

#include "engine.h"
#include "metrics.h"
#include "options.h"
#include "plot.h"
#include "report.h"
#include "workloads.h"

namespace commentd::loadgen {
namespace {

std::function<void(const Progress&)> progress_printer(const char* label, bool quiet,
                                                      uint64_t total = 0) {
  if (quiet) return {};
  auto last = std::make_shared<uint64_t>(0);
  return [label, total, last](const Progress& p) {
    const uint64_t delta = p.completed - *last;
    *last = p.completed;
    if (total > 0) {
      std::fprintf(stderr, "[%s %4.0fs] %llu/%llu done  %llu/s  errors %llu\n", label, p.elapsed_s,
                   static_cast<unsigned long long>(p.completed),
                   static_cast<unsigned long long>(total), static_cast<unsigned long long>(delta),
                   static_cast<unsigned long long>(p.errors));
      return;
    }
    std::fprintf(
        stderr, "[%s %4.0fs] %7llu/s  done %llu  errors %llu  backlog %llu  p99 %.2f ms\n", label,
        p.elapsed_s, static_cast<unsigned long long>(delta),
        static_cast<unsigned long long>(p.completed), static_cast<unsigned long long>(p.errors),
        static_cast<unsigned long long>(p.backlog), static_cast<double>(p.p99_us) / 1000.0);
  };
}

// Creates the scenario's comments; returns false (after saying why) if seeding failed.
bool seed(const Options& o, ScenarioData& data) {
  if (o.scenario == Scenario::baseline || o.seed_comments == 0) return true;
  auto shared = std::shared_ptr<const ScenarioData>(&data, [](const ScenarioData*) {});
  SeedWorkload workload(shared);
  EngineConfig cfg;
  cfg.target = o.target;
  cfg.closed_loop = true;
  cfg.duration_s = 0;
  cfg.max_requests = o.seed_comments;
  cfg.connections = std::min<size_t>(o.seed_connections, o.seed_comments);
  cfg.threads = std::min(o.threads, cfg.connections);
  cfg.request_timeout = std::chrono::milliseconds(o.timeout_ms);
  cfg.on_progress = progress_printer("seed", o.quiet, o.seed_comments);
  if (!o.quiet)
    std::fprintf(stderr, "seeding %llu comments...\n",
                 static_cast<unsigned long long>(o.seed_comments));
  EngineResult r = run_engine(cfg, workload);
  const OpStats& s = r.stats.op(0);
  auto ids = workload.collected();
  size_t got = 0;
  for (const auto& v : ids) got += v.size();
  if (!o.quiet || s.errors() > 0) {
    std::fprintf(stderr, "seeded %zu comments in %.1f s (%llu errors)\n", got, r.elapsed_s,
                 static_cast<unsigned long long>(s.errors()));
  }
  if (s.errors() * 2 > s.count || got == 0) {
    std::fprintf(stderr, "loadgen: seeding failed:");
    for (const auto& [status, n] : s.statuses)
      std::fprintf(stderr, " %u x%llu", status, static_cast<unsigned long long>(n));
    for (int f = 0; f < 3; ++f) {
      if (s.failures[f])
        std::fprintf(stderr, " %s x%llu", to_string(static_cast<Failure>(f)),
                     static_cast<unsigned long long>(s.failures[f]));
    }
    if (s.ok > 0 && got == 0) std::fprintf(stderr, " (responses carried no \"id\")");
    std::fprintf(stderr, "\n");
    return false;
  }
  add_comments(data, ids);
  return true;
}

int run(int argc, char** argv) {
  auto parsed = parse_options(argc, argv);
  if (auto* err = std::get_if<std::string>(&parsed)) {
    if (*err == "help") {
      std::fputs(usage_text, stdout);
      return 0;
    }
    std::fprintf(stderr, "loadgen: %s\n%s", err->c_str(), usage_text);
    return 2;
  }
  const Options& o = std::get<Options>(parsed);

  ScenarioConfig sc;
  sc.scenario = o.scenario;
  try {
    sc.rates = resolve_rates(o.scenario, o.op_rates, o.rate);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 2;
  }
  sc.seed = o.seed;
  sc.users = o.users;
  sc.videos = o.videos;
  sc.video = o.video;
  sc.comment_zipf = o.comment_zipf;
  sc.video_zipf = o.video_zipf;
  sc.next_page_fraction = o.next_page_fraction;
  sc.page_limit = o.page_limit;
  sc.jwt_secret = o.jwt_secret;
  sc.host_header = o.target.host_header;
  auto data = make_scenario_data(sc);
  sc = data->cfg;
  if (sc.videos == 1) sc.video = data->video_ids[0];
  data->cfg.video = sc.video;

  if (!seed(o, *data)) return 1;

  const auto before = scrape_metrics(o.target);
  EngineConfig cfg;
  cfg.target = o.target;
  cfg.closed_loop = o.closed_loop;
  cfg.rate = sc.rates[cat_read] + sc.rates[cat_comment] + sc.rates[cat_reaction];
  cfg.duration_s = o.duration_s;
  cfg.connections = o.connections;
  cfg.threads = o.threads;
  cfg.request_timeout = std::chrono::milliseconds(o.timeout_ms);
  cfg.drain_timeout = std::chrono::milliseconds(o.drain_ms);
  cfg.on_progress = progress_printer(to_string(o.scenario), o.quiet);
  auto workload = make_scenario_workload(data);
  EngineResult result = run_engine(cfg, *workload);
  const auto after = scrape_metrics(o.target);
  const auto delta = metrics_delta(before, after);

  {
    std::ofstream out(o.out);
    out << report_json(o, sc, result, delta);
    if (!out) {
      std::fprintf(stderr, "loadgen: cannot write %s\n", o.out.c_str());
      return 1;
    }
  }
  std::fputs(summary_text(result, delta).c_str(), stdout);
  if (!o.plot.empty()) {
    const std::string title =
        o.title.empty()
            ? std::string(to_string(o.scenario)) +
                  (o.closed_loop
                       ? " closed loop"
                       : " open loop at " + std::to_string(static_cast<long long>(cfg.rate)) + "/s")
            : o.title;
    if (const std::string err = write_plot(result, o.plot, title); !err.empty()) {
      std::fprintf(stderr, "loadgen: warning: no plot: %s\n", err.c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace commentd::loadgen

int main(int argc, char** argv) {
  try {
    return commentd::loadgen::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
}

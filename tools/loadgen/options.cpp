#include "options.h"

#include <charconv>
#include <cstdlib>
#include <functional>
#include <map>
#include <string_view>

namespace commentd::loadgen {

const char* const usage_text =
    R"(usage: loadgen --target http://HOST:PORT --scenario NAME --duration SECONDS --out FILE.json
               [--rate R] [--read-rate R] [--comment-rate R] [--reaction-rate R]
               [--connections N] [--closed-loop] [--threads N] [--timeout-ms MS] [--drain-ms MS]
               [--jwt-secret S] [--users N] [--seed N] [--seed-comments N] [--seed-connections N]
               [--video UUID] [--videos N] [--comment-zipf S] [--video-zipf S]
               [--next-page-fraction F] [--page-limit N] [--plot FILE.png] [--title T] [--quiet]
scenarios: viral (one video; read 1000/s, comment 100/s, reaction 1000/s), mixed (--videos
  videos (100) of Zipf popularity; 90/2/8 % of 1000/s), read-hot (first page of one video,
  1000/s), write-heavy (10/30/60 % of 1000/s), baseline (GET /, 1000/s).
--rate is the total; per-op rates not given share what is left in the scenario's proportions.
Open loop by default (latency from each request's due time); --closed-loop sends back to back.
Defaults: --duration 10, --connections 64, --threads 1, --users 10000, --seed-comments 1000,
--timeout-ms 10000, --drain-ms 10000.
)";

namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    const std::string s(text);
    char* end = nullptr;
    out = static_cast<T>(std::strtod(s.c_str(), &end));
    return !s.empty() && end == s.c_str() + s.size();
  } else {
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && p == text.data() + text.size();
  }
}

}  // namespace

std::variant<Options, std::string> parse_options(int argc, const char* const* argv) {
  Options o;
  std::string scenario = "viral";
  using Setter = std::function<bool(std::string_view)>;
  auto num = [](auto& field) {
    return Setter([&field](std::string_view v) { return parse_number(v, field); });
  };
  auto str = [](std::string& field) {
    return Setter([&field](std::string_view v) {
      field = v;
      return true;
    });
  };
  const std::map<std::string_view, Setter> with_value = {
      {"--target", str(o.target_url)},
      {"--scenario", str(scenario)},
      {"--rate", num(o.rate)},
      {"--read-rate", num(o.op_rates[cat_read])},
      {"--comment-rate", num(o.op_rates[cat_comment])},
      {"--reaction-rate", num(o.op_rates[cat_reaction])},
      {"--duration", num(o.duration_s)},
      {"--out", str(o.out)},
      {"--connections", num(o.connections)},
      {"--threads", num(o.threads)},
      {"--timeout-ms", num(o.timeout_ms)},
      {"--drain-ms", num(o.drain_ms)},
      {"--jwt-secret", str(o.jwt_secret)},
      {"--users", num(o.users)},
      {"--seed", num(o.seed)},
      {"--seed-comments", num(o.seed_comments)},
      {"--seed-connections", num(o.seed_connections)},
      {"--video", str(o.video)},
      {"--videos", num(o.videos)},
      {"--comment-zipf", num(o.comment_zipf)},
      {"--video-zipf", num(o.video_zipf)},
      {"--next-page-fraction", num(o.next_page_fraction)},
      {"--page-limit", num(o.page_limit)},
      {"--plot", str(o.plot)},
      {"--title", str(o.title)},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::string("help");
    if (arg == "--closed-loop") {
      o.closed_loop = true;
      continue;
    }
    if (arg == "--quiet") {
      o.quiet = true;
      continue;
    }
    std::string_view name = arg, value;
    bool inline_value = false;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    auto it = with_value.find(name);
    if (it == with_value.end()) return "unknown option " + std::string(arg);
    if (!inline_value) {
      if (i + 1 >= argc) return std::string(name) + " needs a value";
      value = argv[++i];
    }
    if (!it->second(value)) return "bad value for " + std::string(name) + ": " + std::string(value);
  }
  if (o.target_url.empty()) return std::string("--target is required");
  auto target = parse_target(o.target_url);
  if (!target) return "--target must look like http://HOST:PORT, got " + o.target_url;
  o.target = *target;
  auto sc = parse_scenario(scenario);
  if (!sc)
    return "unknown scenario " + scenario + " (viral, mixed, read-hot, write-heavy, baseline)";
  o.scenario = *sc;
  if (o.out.empty()) return std::string("--out is required");
  if (!(o.duration_s > 0)) return std::string("--duration must be > 0");
  if (o.connections == 0 || o.connections > 100000)
    return std::string("--connections must be 1..100000");
  if (o.threads == 0 || o.threads > 256) return std::string("--threads must be 1..256");
  if (o.threads > o.connections) o.threads = o.connections;
  if (o.users == 0 || o.users > 10'000'000) return std::string("--users must be 1..10000000");
  if (o.seed_connections == 0) return std::string("--seed-connections must be >= 1");
  if (o.next_page_fraction < 0 || o.next_page_fraction > 1)
    return std::string("--next-page-fraction must be 0..1");
  if (o.comment_zipf < 0 || o.video_zipf < 0) return std::string("zipf exponents must be >= 0");
  if (o.page_limit == 0) return std::string("--page-limit must be >= 1");
  if (o.videos == 0) return std::string("--videos must be >= 1");
  if (o.timeout_ms == 0) return std::string("--timeout-ms must be >= 1");
  return o;
}

}  // namespace commentd::loadgen

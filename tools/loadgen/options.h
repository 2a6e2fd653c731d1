// The load generator's command line.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>

#include "http_util.h"
#include "workloads.h"

namespace commentd::loadgen {

struct Options {
  std::string target_url;
  Target target;
  Scenario scenario = Scenario::viral;
  double rate = -1;                                    // --rate; < 0 = the scenario's default total
  std::array<double, cat_count> op_rates{-1, -1, -1};  // --read-rate --comment-rate --reaction-rate
  double duration_s = 10;
  std::string out;
  size_t connections = 64;
  bool closed_loop = false;
  size_t threads = 1;
  std::string jwt_secret;
  uint64_t users = 10000;
  uint64_t seed = 1;
  uint64_t seed_comments = 1000;
  size_t seed_connections = 64;
  std::string video;
  uint64_t videos = 100;
  double comment_zipf = 1.0;
  double video_zipf = 1.0;
  double next_page_fraction = 0.2;
  uint32_t page_limit = 20;
  std::string plot;
  std::string title;
  bool quiet = false;
  uint32_t timeout_ms = 10000;
  uint32_t drain_ms = 10000;
};

extern const char* const usage_text;

// Options, or an error message (the text "help" for --help).
std::variant<Options, std::string> parse_options(int argc, const char* const* argv);

}  // namespace commentd::loadgen

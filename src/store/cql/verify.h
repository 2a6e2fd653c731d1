// `commentd --verify` on CQL (storage.backend: cql): recounts every comment's counters
// (likes, dislikes from its registers; replies_count from its counted replies) and every
// video's (comments_count, reactions_count over its bucketed comments) from their sources of
// truth, as the embedded --verify does, and reports each difference. Scans `comments` and
// `video_buckets` by token ranges; nothing is written unless `repair` (then each counter is
// moved by recount - stored, as the backfill does). No snapshot on CQL: a write landing
// during the scan can show as a difference; run it with writers idle, or run it twice.
// Blocking: the CLI.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "bridge/runtime.h"
#include "config/config.h"
#include "core/error.h"

namespace commentd::store::cql {

struct VerifyOptions {
  bool repair = false;
  int ranges = 64;
  int concurrency = 8;
  FILE* out = stdout;         // one line per difference, then the summary
  FILE* progress = nullptr;   // progress lines; nullptr = silent
};

struct VerifyOutcome {
  uint64_t comments = 0, videos = 0;  // checked
  uint64_t differences = 0;
  uint64_t repaired = 0;
};

Result<VerifyOutcome> run_verify(const bridge::Runtime& rt, const config::CqlConfig& cfg, const VerifyOptions& opts);

// `commentd --verify --config F [--repair] [--concurrency N]`: 0 when nothing differs (or
// everything that did was repaired), 1 when something differs, 2 on an error.
int run_verify_command(const config::Config& config, const std::vector<std::string>& args);

}  // namespace commentd::store::cql

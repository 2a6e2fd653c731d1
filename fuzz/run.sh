#!/usr/bin/env bash
# Runs every harness in build-fuzz for SECONDS each (default 20) from its committed seed
# corpus (fuzz/corpus/<h>, read only) plus what earlier runs found (build-fuzz/found/<h>).
# Exits non-zero, with the log tail, on the first crash, leak, timeout or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-20}"
for h in json_body cursor jwt query_path http_request; do
  mkdir -p "build-fuzz/found/$h"
  log="build-fuzz/$h.log"
  start=$(date +%s)
  if ! (cd build-fuzz && "./fuzz_$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
          -max_len=65536 -print_final_stats=1 "found/$h" "../fuzz/corpus/$h") >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz: fuzz_$h FAILED (reproducer: the crash-* file named above, in build-fuzz)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: fuzz_$h ok: ${runs:-?} runs in $(( $(date +%s) - start )) s, $cov"
done

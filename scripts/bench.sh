#!/usr/bin/env bash
# scripts/bench.sh: the whole performance story in one go (behind `make bench`), < 15 min.
#
#  1. baseline_server (the physical limit: fixed 200 answers, commentd's threading model):
#     closed-loop max rate, and open-loop p99 at fixed rates.
#  2. commentd on a fresh temp data dir (limits off, a JWT secret), then the plan's SLO
#     scenarios: viral at the plan's rates (100 comments/s, 1000 reactions/s, 1000 reads/s for
#     the 1000 concurrent readers) and at 10x, mixed and read-hot; then a search (doubling,
#     then bisecting, short runs) for the highest multiple of the viral plan load at which every
#     SLO holds: read p95 < 100 ms, write p99 < 200 ms, cache hit rate > 80 %, no errors.
#  3. build/micro_bench, if it exists.
# Prints one table and the highest multiple as the headline; writes JSON, PNGs and
# summary.txt under bench/results/ (overwritten each run).
#
#  2b. overload: commentd's closed-loop capacity on the mixed scenario, then 2x that offered
#     open-loop (twice, with a rest after each): shed fraction, admitted p99 (ratio to the
#     baseline server at the same rate) and VmRSS every second (rss.txt).
# Environment: BUILD_DIR (default build, relative to the repo), RESULTS_DIR, BENCH_DURATION
# (s per SLO run, default 30), BENCH_SEARCH_DURATION (default 10), BENCH_QUICK=1 (3 s runs,
# for trying the script), BENCH_SEED_COMMENTS (default 1000), BENCH_CONNECTIONS (default 256),
# BENCH_THREADS (loadgen threads, default 1), BENCH_MAX_MULTIPLE (default 256),
# BENCH_OVERLOAD_DURATION (s per overload run, default 20), BENCH_OVERLOAD_CONNECTIONS
# (default 1024), BENCH_OVERLOAD_RUNS (default 2), BENCH_SKIP_OVERLOAD=1, BENCH_ONLY=overload
# (only 2b: capacity, the 2x runs, the baseline at the same rate; about 2 minutes).
# BENCH_ONLY=cluster (`make bench-cluster`): 1, then uncached pages (read-hot with the page
# cache off, on a node of its own: BENCH_UNCACHED_RATE, default 200/s), cached pages (read-hot
# at BENCH_CACHED_RATE, default 1,000/s, by 1,000 signed-in users, the same users again with
# their rows cached, then anonymous, and on the cluster anonymous again straight at node 1,
# past the front door: cluster_cached_pages_node), viral,
# mixed, read-hot and closed-loop creates against the embedded binary and against the front door of deploy/cluster.sh (NODES
# nodes, default 2, on Redis, Cassandra and Pulsar: CLUSTER_SERVERS_DIR's, or started here),
# each BENCH_CLUSTER_DURATION s (default 20), and the highest viral multiple at which every SLO
# holds on the cluster (below 1x: a half, then three quarters or a quarter). Results: cluster_summary.json, and
# cluster_events.txt (the event path around the cluster's viral 1x run: relay and reaction
# rates, apply and event latency, from the nodes' metrics), and {embedded,cluster}_viral_1x_cpu.json
# (the CPU each process took in the middle of viral 1x: scripts/cpu_by_process.py; the summary
# prints the split and commentd's CPU per request on either side). About 10 minutes.
# BENCH_ONLY=compare (`make bench-compare BEFORE=REV`): the SLO scenarios, the viral search and
# the reaction runs against REV's commentd and this one, alternating rounds, with the noise
# (see the compare section below; results in bench/results/compare/).
# BENCH_ONLY=redis_viral (issue 10: the viral
# scenario at 10x then 1x through the in-process cache, through Redis (with, then without
# the local layer, redis.local_cache_ttl), then baseline_server,
# each in that order; Redis from COMMENTD_TEST_REDIS=host:port or started and stopped here;
# BENCH_DURATION s per run; about 5 minutes at the default 20 s; redis_viral.json).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
RESULTS=${RESULTS_DIR:-$ROOT/bench/results}
# A comparison keeps its own folder: it must not wipe the last `make bench` results.
[ "${BENCH_ONLY:-}" = compare ] && [ -z "${RESULTS_DIR:-}" ] && RESULTS=$ROOT/bench/results/compare
LOADGEN=$BUILD/loadgen
BASELINE=$BUILD/baseline_server
COMMENTD=$BUILD/commentd
MICRO=$BUILD/micro_bench
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3

DURATION=${BENCH_DURATION:-30}
SEARCH_DURATION=${BENCH_SEARCH_DURATION:-10}
BASELINE_DURATION=10
if [ "${BENCH_QUICK:-0}" = 1 ]; then DURATION=3; SEARCH_DURATION=3; BASELINE_DURATION=3; fi
SEED_COMMENTS=${BENCH_SEED_COMMENTS:-1000}
CONNECTIONS=${BENCH_CONNECTIONS:-256}
LG_THREADS=${BENCH_THREADS:-1}
MAX_MULTIPLE=${BENCH_MAX_MULTIPLE:-256}
OVERLOAD_DURATION=${BENCH_OVERLOAD_DURATION:-20}
OVERLOAD_CAP_DURATION=10
OVERLOAD_REST=15
OVERLOAD_CONNECTIONS=${BENCH_OVERLOAD_CONNECTIONS:-1024}
OVERLOAD_RUNS=${BENCH_OVERLOAD_RUNS:-2}
SECRET="bench-secret-$$-$RANDOM"
# The plan's viral load per video: reads/s, comments/s, reactions/s.
PLAN_READ=1000 PLAN_COMMENT=100 PLAN_REACTION=1000
BASELINE_OPEN_RATE=20000
MIXED_RATE=10000
READHOT_RATE=20000

die() { echo "bench: $*" >&2; exit 1; }
for bin in "$LOADGEN" "$BASELINE"; do
  [ -x "$bin" ] || die "$bin not found: build it first (cmake --build $BUILD_DIR --target loadgen baseline_server)"
done
command -v "$PYTHON" >/dev/null || die "python3 is needed to read the results"

TMP=$(mktemp -d /tmp/commentd-bench.XXXXXX)
SERVER_PID=""
# Where the commentd of start_commentd keeps its config, data, port file and log (the compare
# mode runs two at once, one folder each).
SERVER_DIR=$TMP
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
CLUSTER_RUN="" SERVERS_STARTED=""
COMPARE_PIDS=""  # the compare mode's two servers, while both run
cleanup() {
  stop_server
  for pid in $COMPARE_PIDS; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -n "$CLUSTER_RUN" ]; then COMMENTD_CLUSTER_DIR="$CLUSTER_RUN" "$ROOT/deploy/cluster.sh" down >/dev/null 2>&1 || true; fi
  if [ -n "$SERVERS_STARTED" ]; then
    COMMENTD_TEST_SERVERS_DIR="$SERVERS_STARTED" "$ROOT/deploy/test-servers.sh" stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.json "$RESULTS"/*.png "$RESULTS"/summary.txt "$RESULTS"/*_search.txt
START=$(date +%s)
log() { printf '[bench %4ds] %s\n' $(($(date +%s) - START)) "$*" >&2; }

# Starts the baseline server on a free port; sets PORT.
start_baseline() {
  "$BASELINE" --listen 127.0.0.1:0 >"$TMP/baseline.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    PORT=$(awk '/^listening on/ {print $3}' "$TMP/baseline.out" 2>/dev/null || true)
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$TMP/baseline.out" >&2
  die "baseline_server did not start"
}

# Starts commentd with a bench config on a free port, in SERVER_DIR; sets SERVER_PID and PORT.
start_commentd() {
  mkdir -p "$SERVER_DIR/data"
  cat >"$SERVER_DIR/commentd.yaml" <<EOF
server:
  listen: "127.0.0.1:0"
log:
  level: "warn"
storage:
  data_dir: "$SERVER_DIR/data"
auth:
  jwt_secret: "$SECRET"
limits:
  create_comment: { limit: 0, window: "1m" }
  add_reaction: { limit: 0, window: "1m" }
${EXTRA_CONFIG:-}
EOF
  launch_commentd "$SERVER_DIR/commentd.yaml"
}

# launch_commentd CONFIG: commentd on a free port with CONFIG (port file and log in
# SERVER_DIR); sets SERVER_PID and PORT.
launch_commentd() {
  rm -f "$SERVER_DIR/port"
  COMMENTD_JWT_SECRET="$SECRET" "$COMMENTD" --config "$1" --listen 127.0.0.1:0 --port-file "$SERVER_DIR/port" \
    >"$SERVER_DIR/commentd.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    if [ -s "$SERVER_DIR/port" ]; then PORT=$(cat "$SERVER_DIR/port"); return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "--- commentd log (last 30 lines) ---" >&2
  tail -n 30 "$SERVER_DIR/commentd.log" >&2 || true
  die "commentd did not start (no port in $SERVER_DIR/port within 30 s)"
}

# lg NAME ARGS...: one loadgen run against $PORT, results in $RESULTS/NAME.{json,png}.
# Returns 1 (after saying why) if loadgen failed or the server died during the run.
lg() {
  local name=$1; shift
  log "run $name: $*"
  if ! "$LOADGEN" --target "http://127.0.0.1:$PORT" --out "$RESULTS/$name.json" --plot "$RESULTS/$name.png" \
      --title "$name" --threads "$LG_THREADS" --quiet "$@" >"$TMP/$name.txt" 2>&1; then
    cat "$TMP/$name.txt" >&2
    echo "bench: loadgen run $name failed" >&2
    return 1
  fi
  if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "bench: the server died during $name" >&2
    return 1
  fi
}

# run_micro BIN OUT: one run of a micro_bench binary, its JSON in OUT; dies if it fails.
run_micro() {
  "$1" --benchmark_min_time=0.05 --benchmark_format=console --benchmark_out="$2" \
    --benchmark_out_format=json >"$TMP/micro.txt" 2>&1 || { cat "$TMP/micro.txt" >&2; die "$1 failed"; }
}

# The first commentd run that failed; the rest of the commentd runs are then skipped.
FAILED_RUN=""
lg_commentd() {
  [ -z "$FAILED_RUN" ] || return 1
  if ! lg "$@"; then
    FAILED_RUN=$1
    echo "--- commentd log (last 30 lines) ---" >&2
    tail -n 30 "$SERVER_DIR/commentd.log" >&2 || true
    tail -n 5 "$SERVER_DIR/commentd.log" >"$TMP/failure" 2>/dev/null || true
    return 1
  fi
}

# viral_args MULTIPLE: the viral plan load times MULTIPLE.
# MULTIPLE may be a fraction (0.5: half the plan's rates).
viral_args() {
  local m=$1
  scaled() { awk -v a="$1" -v m="$m" 'BEGIN { printf "%d", a * m }'; }
  echo --scenario viral --read-rate "$(scaled "$PLAN_READ")" --comment-rate "$(scaled "$PLAN_COMMENT")" \
    --reaction-rate "$(scaled "$PLAN_REACTION")" --jwt-secret "$SECRET" --connections "$CONNECTIONS"
}

# slo_run NAME PREFIX VIDEO: one of the plan's SLO scenarios against $PORT, DURATION s, result
# PREFIXNAME: viral_1x and viral_10x (the plan's rates times 1 and 10, on VIDEO; each run seeds
# its own comments on it: reactions need ids to target), mixed (over 100 videos), read_hot.
SLO_RUNS="viral_1x viral_10x mixed read_hot"
slo_run() {
  local name=$1 p=$2 video=$3
  case "$name" in
    # shellcheck disable=SC2046
    viral_1x) lg_commentd "${p}viral_1x" $(viral_args 1) --video "$video" --seed-comments "$SEED_COMMENTS" \
      --duration "$DURATION" || true ;;
    # shellcheck disable=SC2046
    viral_10x) lg_commentd "${p}viral_10x" $(viral_args 10) --video "$video" --seed-comments "$SEED_COMMENTS" \
      --seed 2 --duration "$DURATION" || true ;;
    mixed) lg_commentd "${p}mixed" --scenario mixed --rate "$MIXED_RATE" --jwt-secret "$SECRET" \
      --connections "$CONNECTIONS" --videos 100 --seed-comments "$SEED_COMMENTS" --duration "$DURATION" || true ;;
    read_hot) lg_commentd "${p}read_hot" --scenario read-hot --rate "$READHOT_RATE" --jwt-secret "$SECRET" \
      --connections "$CONNECTIONS" --seed-comments 100 --duration "$DURATION" || true ;;
    *) die "slo_run: no scenario $name" ;;
  esac
}
# slo_runs PREFIX VIDEO: all of them, in that order, on one server.
slo_runs() {
  local name
  for name in $SLO_RUNS; do slo_run "$name" "$1" "$2"; done
}

# reaction_run NAME PREFIX: reactions through HTTP (the 202 path: validated, durable in the op
# log, then applied in batches), result PREFIXNAME: reactions_hot_comment and
# reactions_hot_video (one hot comment, one hot video; closed-loop, against the baseline's
# closed-loop max) and reactions_open (open-loop at the baseline's open rate, for the p99 ratio).
REACTION_RUNS="reactions_hot_comment reactions_hot_video reactions_open"
reaction_run() {
  local name=$1 p=$2
  local react="--scenario viral --read-rate 0 --comment-rate 0 --reaction-rate 1000 --jwt-secret $SECRET --users 100000"
  case "$name" in
    # shellcheck disable=SC2086
    reactions_hot_comment) lg_commentd "${p}reactions_hot_comment" $react --closed-loop --connections 64 \
      --seed-comments 1 --seed 7 --duration "$DURATION" || true ;;
    # shellcheck disable=SC2086
    reactions_hot_video) lg_commentd "${p}reactions_hot_video" $react --closed-loop --connections 64 \
      --seed-comments 1000 --seed 8 --duration "$DURATION" || true ;;
    reactions_open) lg_commentd "${p}reactions_open" --scenario viral --read-rate 0 --comment-rate 0 \
      --reaction-rate "$BASELINE_OPEN_RATE" --jwt-secret "$SECRET" --users 100000 --connections "$CONNECTIONS" \
      --seed-comments 1000 --seed 9 --duration "$DURATION" || true ;;
    *) die "reaction_run: no scenario $name" ;;
  esac
}
# reaction_runs PREFIX: all of them, in that order, on one server.
reaction_runs() {
  local name
  for name in $REACTION_RUNS; do reaction_run "$name" "$1"; done
}

# slo_ok FILE: exit 0 if every SLO holds in the run's JSON (a missing cache metric is n/a).
slo_ok() {
  "$PYTHON" - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
g = r["groups"]
ok = g["reads"]["count"] == 0 or g["reads"]["latency_ms"]["p95"] < 100
ok = ok and (g["writes"]["count"] == 0 or g["writes"]["latency_ms"]["p99"] < 200)
ok = ok and r["overall"]["count"] > 0 and r["overall"]["count"] == r["overall"]["ok"]
m = r.get("server_metrics") or {}
if m.get("cache_hit_rate") is not None:
    ok = ok and m["cache_hit_rate"] > 0.8
sys.exit(0 if ok else 1)
EOF
}

# viral_search PREFIX VIDEO: the highest multiple of the viral plan load at which every SLO
# holds, on VIDEO, SEARCH_DURATION s per run: double until an SLO fails, then bisect between the
# last pass and the first fail. Sets LO (the highest pass, 0 if none) and HI (the first fail,
# 0 if none). Results PREFIXsearch_Nx.
viral_search() {
  local p=$1 video=$2 m=1
  search_run() {  # MULTIPLE -> exit status of slo_ok
    # shellcheck disable=SC2046
    lg_commentd "${p}search_${1}x" $(viral_args "$1") --video "$video" --seed-comments 100 --seed "$((100 + $1))" \
      --duration "$SEARCH_DURATION" --drain-ms 2000 || return 1
    slo_ok "$RESULTS/${p}search_${1}x.json"
  }
  LO=0 HI=0
  while [ -z "$FAILED_RUN" ] && [ "$m" -le "$MAX_MULTIPLE" ]; do
    if search_run "$m"; then LO=$m; m=$((m * 2)); else HI=$m; break; fi
  done
  if [ "$HI" -gt 0 ] && [ "$LO" -gt 0 ]; then
    while [ -z "$FAILED_RUN" ] && [ $((HI - LO)) -gt 1 ] && [ $((HI - LO)) -gt $((LO / 8)) ]; do
      m=$(((LO + HI) / 2))
      if search_run "$m"; then LO=$m; else HI=$m; fi
    done
  fi
}

ONLY=${BENCH_ONLY:-}
case "$ONLY" in "" | overload | cluster | redis_viral | compare) ;;
  *) die "BENCH_ONLY: only 'overload', 'cluster', 'redis_viral' and 'compare' are known" ;; esac

# ------------------------------------------------- redis_viral (BENCH_ONLY=redis_viral only)
# Issue 10's performance item: the viral scenario on one hot video through the in-process
# cache, through Redis (a single node on loopback; defaults, with the page cache's local
# layer), through Redis alone (redis.local_cache_ttl 0s), and against baseline_server at the same
# total rate, for each multiple of the plan's rates; hit rate, read p99 and throughput as
# ratios. Redis's own view (commentd_redis_*) is kept beside each Redis run (*.metrics.txt).
if [ "$ONLY" = redis_viral ]; then
  [ -x "$COMMENTD" ] || die "$COMMENTD not found"
  DURATION=${BENCH_DURATION:-20}
  [ "${BENCH_QUICK:-0}" = 1 ] && DURATION=3
  REDIS_ADDR=${COMMENTD_TEST_REDIS:-}
  REDIS_RUN=""
  if [ -z "$REDIS_ADDR" ]; then
    REDIS_RUN=$TMP/servers
    COMMENTD_TEST_SERVERS_DIR=$REDIS_RUN "$ROOT/deploy/test-servers.sh" start redis >&2 || die "redis did not start"
    REDIS_ADDR=$(sed -n 's/^COMMENTD_TEST_REDIS=//p' "$REDIS_RUN/env")
    trap 'stop_server; COMMENTD_TEST_SERVERS_DIR=$REDIS_RUN "$ROOT/deploy/test-servers.sh" stop redis >&2 || true; rm -rf "$TMP"' EXIT
  fi
  REDIS_YAML="redis:
  enabled: true
  host: \"${REDIS_ADDR%:*}\"
  port: ${REDIS_ADDR##*:}
  key_prefix: \"bench$$-$RANDOM:\""
  MULTIPLES=${BENCH_REDIS_MULTIPLES:-10 1}
  for m in $MULTIPLES; do
    VIDEO=$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')
    for kind in ${BENCH_REDIS_KINDS:-inproc redis redis_shared}; do
      stop_server
      rm -rf "$TMP/data"
      case $kind in
        inproc) EXTRA_CONFIG="" ;;
        redis) EXTRA_CONFIG=$REDIS_YAML ;;
        redis_shared) EXTRA_CONFIG="$REDIS_YAML
  local_cache_ttl: \"0s\"" ;;
      esac
      start_commentd
      # shellcheck disable=SC2046
      lg "${kind}_viral_${m}x" $(viral_args "$m") --video "$VIDEO" --seed-comments "$SEED_COMMENTS" \
        --duration "$DURATION" || die "the $kind run at ${m}x failed"
      "$PYTHON" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
        "http://127.0.0.1:$PORT/metrics" >"$RESULTS/${kind}_viral_${m}x.metrics.txt" 2>/dev/null || true
    done
    stop_server
    start_baseline
    lg "baseline_viral_${m}x" --scenario baseline --rate $(((PLAN_READ + PLAN_COMMENT + PLAN_REACTION) * m)) \
      --connections "$CONNECTIONS" --duration "$DURATION" || die "the baseline run at ${m}x failed"
    stop_server
  done
  "$PYTHON" - "$RESULTS" $MULTIPLES <<'EOF' | tee "$RESULTS/summary.txt"
import json, os, re, sys
res, multiples = sys.argv[1], sys.argv[2:]
def load(n):
    p = os.path.join(res, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
def redis_figures(n):
    p = os.path.join(res, n + ".metrics.txt")
    out = {}
    if not os.path.exists(p):
        return out
    for line in open(p):
        m = re.match(r'commentd_redis_(cache_\w+_total|counter_cache_\w+_total|timeouts_total|breaker_\w+_total)(\{[^}]*\})? ([0-9.e+]+)', line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
        m = re.match(r'commentd_redis_commands_total\{command="([^"]+)"\} ([0-9.e+]+)', line)
        if m:
            out["calls:" + m.group(1)] = float(m.group(2))
    return out
summary = {}
print(f"{'multiple':8}  {'run':11}  {'hit %':>6}  {'read p99 ms':>11}  {'achieved/s':>10}  {'errors':>6}")
for m in multiples:
    runs = {k: load(f"{k}_viral_{m}x") for k in ("inproc", "redis", "redis_shared", "baseline")}
    row = {}
    for k, r in runs.items():
        if not r:
            continue
        o, g = r["overall"], r["groups"]
        lat = g["reads"]["latency_ms"] if k != "baseline" else o["latency_ms"]
        hr = (r.get("server_metrics") or {}).get("cache_hit_rate")
        row[k] = {"hit_rate": hr, "read_p99_ms": lat["p99"], "achieved_rps": o["achieved_rate"],
                  "errors": o["count"] - o["ok"]}
        print(f"{m + 'x':8}  {k:11}  {'' if hr is None else f'{100 * hr:6.2f}':>6}  {lat['p99']:11.2f}  "
              f"{o['achieved_rate']:10.0f}  {o['count'] - o['ok']:6}")
    def ratio(a, b, f):
        if a in row and b in row and row[a][f] and row[b][f]:
            return row[a][f] / row[b][f]
        return None
    row["ratios"] = {"inproc/baseline read p99": ratio("inproc", "baseline", "read_p99_ms")}
    for r in ("redis", "redis_shared"):
        row["ratios"].update({
            f"{r}/inproc hit rate": ratio(r, "inproc", "hit_rate"),
            f"{r}/inproc read p99": ratio(r, "inproc", "read_p99_ms"),
            f"{r}/baseline read p99": ratio(r, "baseline", "read_p99_ms"),
            f"{r}/inproc throughput": ratio(r, "inproc", "achieved_rps"),
            f"{r}/baseline throughput": ratio(r, "baseline", "achieved_rps"),
        })
    for k, v in row["ratios"].items():
        print(f"{m + 'x':8}  {k:32}  {'n/a' if v is None else f'{v:.2f}'}")
    for r in ("redis", "redis_shared"):
        rm = row[r + "_metrics"] = redis_figures(f"{r}_viral_{m}x")
        print(f"{m + 'x':8}  {r}: " + ", ".join(f"{k.replace('_total', '')}={v:.0f}" for k, v in sorted(rm.items())))
    summary[m + "x"] = row
json.dump(summary, open(os.path.join(res, "redis_viral.json"), "w"), indent=2)
EOF
  log "done in $(($(date +%s) - START)) s (redis_viral: $RESULTS/redis_viral.json)"
  exit 0
fi

# ------------------------------------------------- compare (BENCH_ONLY=compare)
# Before/after (`make bench-compare BEFORE=REV`): the SLO scenarios, the viral search and the
# reaction runs against a "before" commentd and this one, in the same run. Both servers run at
# once, each on its own fresh data dir every round; each scenario runs on one, then on the
# other, the order alternating from one scenario to the next and from round to round, so a
# noisy spell of this shared machine falls on both alike (run one binary's whole suite, then
# the other's, and a spell of minutes lands on one side: session 19's rounds). The idle
# server's background work (compactions, workers) overlaps the other's runs, both ways.
# BENCH_COMPARE_ROUNDS rounds (default 2), BENCH_DURATION s per run (default 20). The noise is the spread of one binary's
# own rounds; a figure is WORSE only beyond it (scripts/bench_compare.py). The "before" binary:
# BENCH_BEFORE_BIN, or BENCH_BEFORE_REV (a git revision, built Release in a worktree under
# build-before/, kept for the next run). Both are driven by this loadgen and this script; each
# tree's micro_bench runs beside its binary, and the benchmarks both trees have are compared.
# Results: compare_summary.{txt,json}. About 16 minutes at the defaults.
if [ "$ONLY" = compare ]; then
  [ -x "$COMMENTD" ] || die "$COMMENTD not found"
  BEFORE_BIN=${BENCH_BEFORE_BIN:-}
  if [ -z "$BEFORE_BIN" ]; then
    [ -n "${BENCH_BEFORE_REV:-}" ] || die "BENCH_ONLY=compare needs BENCH_BEFORE_REV (a git revision) or BENCH_BEFORE_BIN"
    REV=$(git -C "$ROOT" rev-parse --short "${BENCH_BEFORE_REV}^{commit}") || die "no revision $BENCH_BEFORE_REV"
    WT=$ROOT/build-before/$REV
    [ -d "$WT" ] || git -C "$ROOT" worktree add --detach "$WT" "$REV" >&2 || die "git worktree add $WT failed"
    log "building $REV (Release: commentd, micro_bench) in $WT"
    { make -C "$WT" --no-print-directory configure BUILD_TYPE=Release BUILD_DIR=build-release \
        && cmake --build "$WT/build-release" --target commentd micro_bench; } >&2 \
      || die "the build of $REV failed"
    BEFORE_BIN=$WT/build-release/commentd
  fi
  [ -x "$BEFORE_BIN" ] || die "$BEFORE_BIN not found"
  AFTER_BIN=$COMMENTD
  DURATION=${BENCH_DURATION:-20}
  [ "${BENCH_QUICK:-0}" = 1 ] && DURATION=3
  ROUNDS=${BENCH_COMPARE_ROUNDS:-2}
  declare -A SIDE_BIN=([before]=$BEFORE_BIN [after]=$AFTER_BIN) SIDE_PID SIDE_PORT SIDE_VIDEO
  use_side() {  # SIDE: start_commentd, lg_commentd and stop_server act on that side's server
    SERVER_DIR=$TMP/$1 COMMENTD=${SIDE_BIN[$1]} SERVER_PID=${SIDE_PID[$1]:-} PORT=${SIDE_PORT[$1]:-}
  }
  RUNS="$(for n in $SLO_RUNS; do printf 'slo:%s ' "$n"; done)search $(for n in $REACTION_RUNS; do printf 'reaction:%s ' "$n"; done)"
  step=0
  for r in $(seq "$ROUNDS"); do
    for side in before after; do
      use_side "$side"
      rm -rf "$SERVER_DIR"
      log "round $r of $ROUNDS: $side ($COMMENTD)"
      start_commentd
      SIDE_PID[$side]=$SERVER_PID SIDE_PORT[$side]=$PORT
      SIDE_VIDEO[$side]=$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')
      COMPARE_PIDS="$COMPARE_PIDS $SERVER_PID"
    done
    for run in $RUNS; do
      ORDER="before after"
      [ $(((step + r) % 2)) = 1 ] && ORDER="after before"
      step=$((step + 1))
      for side in $ORDER; do
        use_side "$side"
        case "$run" in
          slo:*) slo_run "${run#slo:}" "${side}_${r}_" "${SIDE_VIDEO[$side]}" ;;
          search)
            viral_search "${side}_${r}_" "${SIDE_VIDEO[$side]}"
            echo "$LO $HI" >"$RESULTS/${side}_${r}_search.txt" ;;
          reaction:*) reaction_run "${run#reaction:}" "${side}_${r}_" ;;
        esac
        [ -z "$FAILED_RUN" ] || die "the $side run $FAILED_RUN failed: $(cat "$TMP/failure" 2>/dev/null)"
      done
    done
    for side in before after; do
      use_side "$side"
      stop_server
      SIDE_PID[$side]=""
    done
    COMPARE_PIDS="" SERVER_DIR=$TMP
    # The micro-benchmarks of each tree, when it has them (the benchmarks both trees name are
    # compared), in the last scenario's order.
    for side in $ORDER; do
      micro=$(dirname "${SIDE_BIN[$side]}")/micro_bench
      if [ -x "$micro" ]; then
        log "round $r of $ROUNDS: $side micro_bench"
        run_micro "$micro" "$RESULTS/${side}_${r}_micro.json"
      fi
    done
  done
  "$PYTHON" "$ROOT/scripts/bench_compare.py" "$RESULTS" "$ROUNDS" "$BEFORE_BIN" "$AFTER_BIN" \
    | tee "$RESULTS/compare_summary.txt"
  log "done in $(($(date +%s) - START)) s (compare: $RESULTS/compare_summary.json)"
  exit 0
fi

# ---------------------------------------------------------------- 1. baseline
if [ "$ONLY" != overload ]; then
log "baseline_server"
start_baseline
PLAN_TOTAL=$((PLAN_READ + PLAN_COMMENT + PLAN_REACTION))
lg baseline_closed --scenario baseline --closed-loop --connections 64 --duration "$BASELINE_DURATION" \
  || die "the baseline run failed"
for spec in "baseline_open $BASELINE_OPEN_RATE" "baseline_open_1x $PLAN_TOTAL" \
    "baseline_open_10x $((PLAN_TOTAL * 10))"; do
  read -r name rate <<<"$spec"
  lg "$name" --scenario baseline --rate "$rate" --connections "$CONNECTIONS" --duration "$BASELINE_DURATION" \
    || die "the baseline run failed"
done
stop_server

fi  # ONLY

# ---------------------------------------------------------------- cluster (BENCH_ONLY=cluster)
if [ "$ONLY" = cluster ]; then
  [ -x "$COMMENTD" ] || die "$COMMENTD not found"
  CL_DURATION=${BENCH_CLUSTER_DURATION:-20}
  [ "${BENCH_QUICK:-0}" = 1 ] && CL_DURATION=3
  scenario_runs() {  # PREFIX: the scenarios against $PORT (uncached pages on a node of their own)
    local p=$1 video cached_video
    video=$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')
    cached_video=$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')
    # First, while Cassandra has no other scenario's backlog to work off.
    uncached_run "${p}_uncached_pages"
    # Cached pages at a rate both sides serve (issue 9's cached reads): the first page of one
    # video read by 1,000 signed-in users (their own reactions merged in), then anonymously.
    lg_commentd "${p}_cached_pages_users" --scenario read-hot --rate "$CACHED_RATE" --jwt-secret "$SECRET" \
      --users 1000 --video "$cached_video" --seed-comments 100 --connections 32 --duration "$CL_DURATION" \
      --drain-ms 2000 || true
    # The same users again (the same seed), right after: each one's rows are cached now (on the
    # cluster, copies near the end of redis.user_rows_ttl are refilled behind the read), so
    # this is a cached read of the page and of the user's rows; the run before pays each
    # user's first read of the video.
    lg_commentd "${p}_cached_pages_users_warm" --scenario read-hot --rate "$CACHED_RATE" --jwt-secret "$SECRET" \
      --users 1000 --video "$cached_video" --seed-comments 0 --connections 32 --duration "$CL_DURATION" \
      --drain-ms 2000 || true
    lg_commentd "${p}_cached_pages" --scenario read-hot --rate "$CACHED_RATE" --video "$cached_video" --seed-comments 0 \
      --connections 32 --duration "$CL_DURATION" --drain-ms 2000 || true
    # The same reads straight at node 1, not through the front door (HAProxy, on the same two
    # cores): what of the cluster's cached read is the node and what is the extra hop.
    if [ "$p" = cluster ]; then
      local front=$PORT ports
      read -ra ports <"$CLUSTER_RUN/ports" || true  # one line, no newline at its end
      PORT=${ports[2]}
      lg_commentd cluster_cached_pages_node --scenario read-hot --rate "$CACHED_RATE" --video "$cached_video" \
        --seed-comments 0 --connections 32 --duration "$CL_DURATION" --drain-ms 2000 || true
      PORT=$front
      # The cluster's event path (relay, reaction owners, subscribers) from the nodes' metrics.
      "$PYTHON" "$ROOT/scripts/bench_cluster_events.py" snapshot "$CLUSTER_RUN" "$TMP/events_before.json"
    fi
    # The CPU each process took in the middle of the run (after the seeding and the first
    # seconds, before the end): the summary's split, and the nodes' CPU per request.
    "$PYTHON" "$ROOT/scripts/cpu_by_process.py" --delay "$((CL_DURATION / 4 + 2))" \
      --seconds "$((CL_DURATION / 2))" --out "$RESULTS/${p}_viral_1x_cpu.json" 2>/dev/null &
    local cpu_pid=$!
    # shellcheck disable=SC2046
    lg_commentd "${p}_viral_1x" $(viral_args 1) --video "$video" --seed-comments "$SEED_COMMENTS" \
      --duration "$CL_DURATION" --drain-ms 2000 || true
    wait "$cpu_pid" || true
    if [ "$p" = cluster ]; then
      "$PYTHON" "$ROOT/scripts/bench_cluster_events.py" snapshot "$CLUSTER_RUN" "$TMP/events_after.json"
      "$PYTHON" "$ROOT/scripts/bench_cluster_events.py" report "$TMP/events_before.json" "$TMP/events_after.json" \
        | tee "$RESULTS/cluster_events.txt" >&2
    fi
    lg_commentd "${p}_mixed" --scenario mixed --rate "$MIXED_RATE" --jwt-secret "$SECRET" \
      --connections "$CONNECTIONS" --videos 100 --seed-comments 200 --duration "$CL_DURATION" --drain-ms 2000 || true
    lg_commentd "${p}_read_hot" --scenario read-hot --rate "$READHOT_RATE" --jwt-secret "$SECRET" \
      --connections "$CONNECTIONS" --seed-comments 100 --duration "$CL_DURATION" --drain-ms 2000 || true
    # Create throughput: comments only, back to back on 64 connections over 100 videos.
    lg_commentd "${p}_create" --scenario write-heavy --closed-loop --read-rate 0 --reaction-rate 0 \
      --comment-rate 1000 --jwt-secret "$SECRET" --connections 64 --videos 100 --seed-comments 0 \
      --duration "$CL_DURATION" --drain-ms 2000 || true
  }
  # uncached_run NAME: read-hot with no page cache (issue 9's uncached first page), 32
  # connections at UNCACHED_RATE; against the embedded binary and one more node on the
  # cluster's Cassandra, each started for it with cache.max_entries 0 (and the node without
  # Redis, so without its page and user-row copies).
  UNCACHED_RATE=${BENCH_UNCACHED_RATE:-200}
  CACHED_RATE=${BENCH_CACHED_RATE:-1000}
  uncached_run() {
    local saved=$PORT pid=$SERVER_PID p=${1%%_*}
    SERVER_PID=""
    if [ "$p" = embedded ]; then
      mkdir -p "$TMP/uncached-data"
      printf 'log: { level: "warn" }\nstorage: { data_dir: "%s" }\ncache: { max_entries: 0 }\nlimits:\n  create_comment: { limit: 0, window: "1m" }\n' \
        "$TMP/uncached-data" >"$TMP/uncached.yaml"
    else
      "$PYTHON" - "$CLUSTER_RUN/node-1/commentd.yaml" "$TMP/uncached.yaml" "$TMP/uncached-node" <<'EOF'
import os, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["node"] = {"id": 999}
c["server"].pop("threads", None)  # alone under load, as the embedded run: one thread per core
c["storage"]["data_dir"] = sys.argv[3]
os.makedirs(sys.argv[3], exist_ok=True)
c.setdefault("cache", {})["max_entries"] = 0
c["redis"] = {"enabled": False}
c["pulsar"] = {"enabled": False}
yaml.safe_dump(c, open(sys.argv[2], "w"), sort_keys=False)
EOF
    fi
    launch_commentd "$TMP/uncached.yaml"
    lg_commentd "$1" --scenario read-hot --rate "$UNCACHED_RATE" --jwt-secret "$SECRET" \
      --connections 32 --seed-comments 100 --duration "$CL_DURATION" --drain-ms 2000 || true
    stop_server
    PORT=$saved SERVER_PID=$pid
  }
  log "embedded ($COMMENTD)"
  start_commentd
  scenario_runs embedded
  stop_server

  log "cluster"
  SERVERS=${CLUSTER_SERVERS_DIR:-}
  if [ -z "$SERVERS" ]; then
    SERVERS="$TMP/servers"
    mkdir -p "$SERVERS"
    SERVERS_STARTED="$SERVERS"
    COMMENTD_TEST_SERVERS_DIR="$SERVERS" "$ROOT/deploy/test-servers.sh" start redis cassandra pulsar >&2 \
      || die "the test servers did not start"
  fi
  # The counter repair's pass every 5 s (default 30 s), so the repairs are in before the summary.
  printf 'log:\n  level: "warn"\nlimits:\n  create_comment: { limit: 0, window: "1m" }\n  add_reaction: { limit: 0, window: "1m" }\nworkers:\n  metrics_reconciliation: { realtime_interval: "1s", high_frequency_interval: "5s" }\n' \
    >"$TMP/cluster.yaml"
  # Reactions an earlier run left unapplied on kept servers (CLUSTER_SERVERS_DIR) are applied by
  # this cluster's owners while it is measured, and its figures carry that work: the backlog
  # the reactions topic holds now goes into the summary (cluster_backlog.txt).
  # shellcheck disable=SC1091
  "$PYTHON" - "$(. "$SERVERS/env" && echo "${COMMENTD_TEST_PULSAR_ADMIN:-}")" >"$RESULTS/cluster_backlog.txt" <<'EOF'
import json, sys, urllib.error, urllib.request
url = sys.argv[1] + "/admin/v2/persistent/pavilion/reactions/events/stats"
try:
    stats = json.load(urllib.request.urlopen(url, timeout=5))
    print(stats.get("subscriptions", {}).get("reaction-applier", {}).get("msgBacklog", 0))
except urllib.error.HTTPError as e:
    print(0 if e.code == 404 else "unknown")  # 404: no such topic yet, so nothing left on it
except Exception:
    print("unknown")
EOF
  CLUSTER_RUN="$TMP/cluster"
  COMMENTD_CLUSTER_DIR="$CLUSTER_RUN" CLUSTER_SERVERS_DIR="$SERVERS" COMMENTD_BIN="$COMMENTD" \
    COMMENTD_JWT_SECRET="$SECRET" CLUSTER_CONFIG="$TMP/cluster.yaml" NODES="${NODES:-2}" \
    "$ROOT/deploy/cluster.sh" up >"$TMP/cluster-up.log" 2>&1 || { cat "$TMP/cluster-up.log" >&2; die "cluster up failed"; }
  PORT=$(sed 's|.*:||' "$CLUSTER_RUN/url")
  cat "$CLUSTER_RUN"/node-*/commentd.log >"$TMP/commentd.log" 2>/dev/null || true
  scenario_runs cluster
  # The highest multiple of the viral plan load at which every SLO holds through the front door.
  CL_LO=0 M=1
  while [ -z "$FAILED_RUN" ] && [ "$M" -le "$MAX_MULTIPLE" ]; do
    # shellcheck disable=SC2046
    lg_commentd "cluster_search_${M}x" $(viral_args "$M") --seed-comments 100 --seed "$((200 + M))" \
      --duration "$SEARCH_DURATION" --drain-ms 2000 || break
    slo_ok "$RESULTS/cluster_search_${M}x.json" || break
    CL_LO=$M
    M=$((M * 2))
  done
  # Below the plan's load when 1x fails: a half, then three quarters if the half held or a
  # quarter if not, so the summary says how much of it the cluster carries on this machine
  # within every SLO (CL_LO: the highest that held; M: the lowest that failed).
  if [ "$CL_LO" = 0 ] && [ -z "$FAILED_RUN" ]; then
    F=0.5
    while [ -n "$F" ]; do
      # shellcheck disable=SC2046
      lg_commentd "cluster_search_${F}x" $(viral_args "$F") --seed-comments 100 --seed 300 \
        --duration "$SEARCH_DURATION" --drain-ms 2000 || break
      if slo_ok "$RESULTS/cluster_search_${F}x.json"; then
        CL_LO=$F
        [ "$F" = 0.5 ] && F=0.75 || F=
      else
        M=$F
        [ "$F" = 0.5 ] && [ "$CL_LO" = 0 ] && F=0.25 || F=
      fi
    done
  fi
  # What the cluster repaired by itself, once the counter repair's settle (2 x 5 s + 2 s) and a
  # pass have gone by after the load, and the drift `commentd --verify` still finds.
  sleep 20
  "$PYTHON" "$ROOT/scripts/bench_cluster_events.py" repairs "$CLUSTER_RUN" "$RESULTS/cluster_repairs.json"
  "$COMMENTD" --verify --config "$CLUSTER_RUN/node-1/commentd.yaml" 2>/dev/null | tail -n 1 \
    >"$RESULTS/cluster_verify.txt" || true
  "$PYTHON" "$ROOT/scripts/bench_cluster_summary.py" "$RESULTS" "$CL_LO" "$M" "${NODES:-2}" \
    | tee "$RESULTS/cluster_summary.txt"
  log "done in $(($(date +%s) - START)) s ($RESULTS/cluster_summary.json)"
  exit 0
fi

# ---------------------------------------------------------------- 2. commentd
HAVE_COMMENTD=0
if [ "$ONLY" = overload ]; then
  [ -x "$COMMENTD" ] && HAVE_COMMENTD=1
elif [ -x "$COMMENTD" ]; then
  HAVE_COMMENTD=1
  log "commentd ($COMMENTD)"
  start_commentd
  VIDEO=$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')
  slo_runs "" "$VIDEO"

  viral_search "" "$VIDEO"
  echo "$LO $HI" >"$TMP/search"

  reaction_runs ""
  stop_server
  # Exact counts: the offline verifier recounts every counter from the reaction rows.
  if "$COMMENTD" --config "$TMP/commentd.yaml" --verify >"$TMP/verify.txt" 2>&1; then
    echo "exact" >"$TMP/verify"
  else
    echo "DRIFT" >"$TMP/verify"
  fi
  tail -n 1 "$TMP/verify.txt" >&2
else
  log "no $COMMENTD: only the baseline is measured"
  echo "0 0" >"$TMP/search"
  echo "n/a" >"$TMP/verify"
fi

# ---------------------------------------------------------------- 2b. overload
# Capacity = closed-loop max of the mixed scenario over OVERLOAD_CONNECTIONS connections; then
# BENCH_OVERLOAD_RUNS (2) open-loop runs at 2x it over as many connections, a rest after each;
# VmRSS and the server's own view (event-loop lag, PIE shed probability, requests in flight,
# from /metrics) sampled every second from the start to the end; then baseline_server at the
# same offered rate for the p99 ratio.
# The server's own latency of what it admitted comes from its request histogram around each run
# (scripts/bench_server_latency.py): the load generator's latency counts from each request's
# due time, and on a 2-core box it saturates first, so its backlog is in its own figure.
# Results: overload_*.json, rss.txt, server.txt, overload_phases.txt, overload_summary.json.
if [ "$HAVE_COMMENTD" = 1 ] && [ "${BENCH_SKIP_OVERLOAD:-0}" != 1 ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  log "overload"
  stop_server
  rm -rf "$TMP/data"
  start_commentd
  : >"$RESULTS/rss.txt"
  : >"$RESULTS/server.txt"
  : >"$RESULTS/overload_phases.txt"
  ( while kill -0 "$SERVER_PID" 2>/dev/null; do
      echo "$(date +%s) $(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null)" >>"$RESULTS/rss.txt"
      # time lag_seconds shed_probability in_flight (what the server itself saw)
      echo "$(date +%s) $(curl -s -m 1 "http://127.0.0.1:$PORT/metrics" 2>/dev/null | awk '
        /^commentd_event_loop_lag_seconds / {l = $2} /^commentd_http_shed_probability / {p = $2}
        /^commentd_http_in_flight_requests / {f = $2} END {print l + 0, p + 0, f + 0}')" >>"$RESULTS/server.txt"
      sleep 1
    done ) &
  SAMPLER=$!
  phase() { echo "$1 $(date +%s)" >>"$RESULTS/overload_phases.txt"; }
  phase start
  OVER_RATE=""
  # Closed loop on as many connections as the overload runs: the capacity of this setup.
  if lg_commentd overload_capacity --scenario mixed --closed-loop --connections "$OVERLOAD_CONNECTIONS" --jwt-secret "$SECRET" \
      --videos 100 --seed-comments 200 --duration "$OVERLOAD_CAP_DURATION"; then
    CAPACITY=$("$PYTHON" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["overall"]["achieved_rate"]))' \
      "$RESULTS/overload_capacity.json")
    OVER_RATE=$((CAPACITY * 2))
    phase capacity_done
    sleep "$OVERLOAD_REST"
    for i in $(seq "$OVERLOAD_RUNS"); do
      phase "overload${i}_start"
      "$PYTHON" "$ROOT/scripts/bench_server_latency.py" snapshot "$PORT" "$TMP/lat_before.json" || true
      lg_commentd "overload_$i" --scenario mixed --rate "$OVER_RATE" --connections "$OVERLOAD_CONNECTIONS" \
        --jwt-secret "$SECRET" --videos 100 --seed-comments 100 --seed "$((20 + i))" \
        --duration "$OVERLOAD_DURATION" --drain-ms 2000 || break
      "$PYTHON" "$ROOT/scripts/bench_server_latency.py" snapshot "$PORT" "$TMP/lat_after.json" &&
        "$PYTHON" "$ROOT/scripts/bench_server_latency.py" report "$TMP/lat_before.json" "$TMP/lat_after.json" \
          >"$RESULTS/overload_${i}_server_latency.json" || true
      phase "overload${i}_end"
      sleep "$OVERLOAD_REST"
      phase "rest${i}_end"
    done
  fi
  stop_server
  wait "$SAMPLER" 2>/dev/null || true
  if [ -n "$OVER_RATE" ]; then
    start_baseline
    lg baseline_overload --scenario baseline --rate "$OVER_RATE" --connections "$OVERLOAD_CONNECTIONS" \
      --duration "$OVERLOAD_DURATION" --drain-ms 2000 || true
    stop_server
  fi
  "$PYTHON" - "$RESULTS" "$OVERLOAD_RUNS" <<'EOF' || true
import json, os, sys
res, runs = sys.argv[1], int(sys.argv[2])
def load(n):
    p = os.path.join(res, n + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
phases = {k: int(v) for k, v in (l.split() for l in open(os.path.join(res, "overload_phases.txt")) if l.strip())}
rss = [(int(t), int(v)) for t, v in (l.split() for l in open(os.path.join(res, "rss.txt")) if len(l.split()) == 2)]
def mb(lo, hi):
    return [v / 1024 for t, v in rss if lo <= t < hi]
cap, base = load("overload_capacity"), load("baseline_overload")
out = {"capacity_rps": cap["overall"]["achieved_rate"] if cap else None, "runs": []}
before = mb(phases.get("capacity_done", 0) - 3, phases.get("capacity_done", 0) + 1)
out["rss_mb_before"] = max(before) if before else None
server = [tuple(float(x) for x in l.split()) for l in open(os.path.join(res, "server.txt")) if len(l.split()) == 4]
for i in range(1, runs + 1):
    r = load(f"overload_{i}")
    if not r or f"overload{i}_end" not in phases:
        continue
    o = r["overall"]
    shed = o["errors"].get("503", 0)
    during = mb(phases[f"overload{i}_start"], phases[f"overload{i}_end"])
    half = len(during) // 2
    after = mb(phases.get(f"rest{i}_end", 0) - 2, phases.get(f"rest{i}_end", 0) + 1)
    run = {
        "offered_rps": r["parameters"]["rate"], "requests": o["count"], "ok": o["ok"],
        "shed_503": shed, "shed_fraction": shed / o["count"] if o["count"] else None,
        "other_errors": o["count"] - o["ok"] - shed, "errors": o["errors"],
        "admitted_p99_ms": o["ok_latency_ms"]["p99"], "all_p99_ms": o["latency_ms"]["p99"],
        "baseline_p99_ms": base["overall"]["latency_ms"]["p99"] if base else None,
        "rss_mb_peak": max(during) if during else None,
        "rss_mb_first_half_max": max(during[:half]) if half else None,
        "rss_mb_second_half_max": max(during[half:]) if during[half:] else None,
        "rss_mb_after_rest": after[-1] if after else None,
    }
    sl = load(f"overload_{i}_server_latency")
    if sl and sl.get("p99_s") is not None:
        # The server's own p99 of what it admitted (handler start to response; histogram bucket bound).
        run["server_admitted_p99_ms_at_most"] = sl["p99_s"] * 1e3
        run["server_admitted_p50_ms_at_most"] = sl["p50_s"] * 1e3
    seen = [x for x in server if phases[f"overload{i}_start"] <= x[0] < phases[f"overload{i}_end"]]
    if seen:
        run["server_loop_lag_ms_max"] = max(x[1] for x in seen) * 1e3
        run["server_loop_lag_ms_mean"] = sum(x[1] for x in seen) / len(seen) * 1e3
        run["server_shed_probability_max"] = max(x[2] for x in seen)
        run["server_in_flight_max"] = max(x[3] for x in seen)
    if run["baseline_p99_ms"]:
        run["admitted_p99_ratio"] = run["admitted_p99_ms"] / run["baseline_p99_ms"]
    out["runs"].append(run)
json.dump(out, open(os.path.join(res, "overload_summary.json"), "w"), indent=2)
print(json.dumps(out, indent=2), file=sys.stderr)
EOF
fi
if [ "$ONLY" = overload ]; then
  log "done in $(($(date +%s) - START)) s (overload only: $RESULTS/overload_summary.json)"
  exit 0
fi

# ---------------------------------------------------------------- 3. micro benchmarks
if [ -x "$MICRO" ]; then
  log "micro_bench"
  run_micro "$MICRO" "$RESULTS/micro_bench.json"
fi

# ---------------------------------------------------------------- the table
# shellcheck disable=SC2046
"$PYTHON" - "$RESULTS" "$HAVE_COMMENTD" $(cat "$TMP/search") "$PLAN_TOTAL" "$FAILED_RUN" "$TMP/failure" "$(cat "$TMP/verify")" <<'EOF' \
  | tee "$RESULTS/summary.txt"
import json, os, sys
results, have_commentd, lo, hi, plan_total = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
failed_run, failure_file = sys.argv[6], sys.argv[7]
verify = sys.argv[8] if len(sys.argv) > 8 else "n/a"
def load(name):
    p = os.path.join(results, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None
rows = []
def row(scenario, metric, target, measured, base=None, ok=None):
    ratio = f"{measured / base:.1f}x" if base and measured is not None else ""
    fmt = lambda v: "n/a" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
    res = "" if ok is None else ("PASS" if ok else "FAIL")
    rows.append((scenario, metric, target, fmt(measured), fmt(base) if base else "", ratio, res))
bc = load("baseline_closed")
base_max = bc["overall"]["achieved_rate"] if bc else None
row("baseline closed-loop", "max req/s", "", base_max)
bo = load("baseline_open")
if bo:
    row(f"baseline open {bo['parameters']['rate']:.0f}/s", "p99 ms", "", bo["overall"]["latency_ms"]["p99"])
def slo_rows(name, label, base_name):
    r = load(name)
    if not r:
        return
    b = load(base_name) if base_name else None
    bl = b["overall"]["latency_ms"] if b else {}
    g = r["groups"]
    if g["reads"]["count"]:
        v = g["reads"]["latency_ms"]["p95"]
        row(label, "read p95 ms", "< 100", v, bl.get("p95"), v < 100)
    if g["writes"]["count"]:
        v = g["writes"]["latency_ms"]["p99"]
        row(label, "write p99 ms", "< 200", v, bl.get("p99"), v < 200)
    m = r.get("server_metrics") or {}
    hr = m.get("cache_hit_rate")
    row(label, "cache hit %", "> 80", None if hr is None else 100.0 * hr, None, None if hr is None else hr > 0.8)
    o = r["overall"]
    errs = o["count"] - o["ok"]
    detail = ",".join(f"{k}:{v}" for k, v in o["errors"].items())
    row(label, "errors" + (f" ({detail})" if detail else ""), "0", errs, None, errs == 0)
    row(label, "achieved req/s", f"{r['parameters']['rate']:.0f}", o["achieved_rate"], None, None)
if have_commentd:
    slo_rows("viral_1x", f"viral 1x ({plan_total}/s)", "baseline_open_1x")
    slo_rows("viral_10x", f"viral 10x ({plan_total * 10}/s)", "baseline_open_10x")
    slo_rows("mixed", "mixed", None)
    slo_rows("read_hot", "read-hot", "baseline_open")
    bcl = bc["overall"]["latency_ms"] if bc else {}
    for name, label in (("reactions_hot_comment", "reactions, 1 hot comment (closed)"),
                        ("reactions_hot_video", "reactions, 1 hot video (closed)")):
        r = load(name)
        if not r:
            continue
        o = r["overall"]
        row(label, "accepted 202/s", ">= 0.5x baseline", o["achieved_rate"], base_max,
            bool(base_max) and o["achieved_rate"] >= 0.5 * base_max and o["count"] == o["ok"])
        row(label, "p99 ms", "", o["latency_ms"]["p99"], bcl.get("p99"), None)
    r = load("reactions_open")
    if r and bo:
        v, b = r["overall"]["latency_ms"]["p99"], bo["overall"]["latency_ms"]["p99"]
        row(f"reactions open {r['parameters']['rate']:.0f}/s", "p99 ms", "<= 3x baseline", v, b,
            v <= 3 * b and r["overall"]["count"] == r["overall"]["ok"])
    row("reactions", "final counts (commentd --verify)", "exact", verify, None, verify == "exact")
    ov = load("overload_summary")
    if ov and ov["runs"]:
        row("overload: mixed closed-loop", "capacity req/s (same connections)", "", ov["capacity_rps"])
        row("overload: before", "RSS MiB", "", ov.get("rss_mb_before"))
        for i, run in enumerate(ov["runs"], 1):
            label = f"overload {i}: 2x = {run['offered_rps']:.0f}/s"
            row(label, "shed fraction (503)", "", run["shed_fraction"])
            row(label, "other errors", "", run["other_errors"])
            row(label, "admitted p99 ms", "", run["admitted_p99_ms"], run.get("baseline_p99_ms"))
            row(label, "RSS MiB peak", "", run["rss_mb_peak"])
            row(label, "RSS MiB max 1st / 2nd half", "plateau",
                f"{run['rss_mb_first_half_max'] or 0:.0f} / {run['rss_mb_second_half_max'] or 0:.0f}")
            row(label, f"RSS MiB after {15} s rest", "", run["rss_mb_after_rest"])
w = [max(len(r[i]) for r in rows + [("scenario", "metric", "target", "measured", "baseline", "ratio", "result")]) for i in range(7)]
hdr = ("scenario", "metric", "target", "measured", "baseline", "ratio", "result")
print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
for r in rows:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
print()
if failed_run:
    why = open(failure_file).read().strip() if os.path.exists(failure_file) else ""
    print(f"commentd FAILED during {failed_run}; later runs skipped. Its log ended with:\n{why}\n")
if not have_commentd:
    print("HEADLINE: commentd not built; baseline only")
elif failed_run and lo == 0:
    print("HEADLINE: none: commentd failed before the search finished")
elif lo == 0 and not failed_run:
    print(f"HEADLINE: the SLOs do not hold even at 1x the viral plan load ({plan_total} req/s)")
else:
    share = f", {100.0 * lo * plan_total / base_max:.0f} % of the baseline's closed-loop max" if base_max else ""
    bound = f" (fails at {hi}x)" if hi else (" (then commentd failed)" if failed_run else " (the search cap)")
    print(f"HEADLINE: every SLO holds up to {lo}x the viral plan load = {lo * plan_total} req/s{share}{bound}")
print(f"results: {results}")
EOF
log "done in $(($(date +%s) - START)) s"
[ -z "$FAILED_RUN" ] || exit 1

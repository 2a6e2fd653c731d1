#!/usr/bin/env bash
# scripts/bench_relay.sh: issue 11's event-path figures on the embedded store with Pulsar
# (`make bench-relay [BEFORE_BIN=path/to/commentd]`), about 4 minutes per round.
#
#  drain: an outbox filled with the relay off (closed-loop comments and reactions on one video
#         for BENCH_RELAY_FILL_S s, default 20), then each binary starts on a copy of it with the
#         relay on and fresh topics: events/s through the relays until the outbox is empty
#         (start-up included), and the broker's duplicates (0 on a first publish).
#  live:  the viral scenario at the plan's rates (BENCH_RELAY_MULTIPLE x 1000 reads, 100
#         comments and 1000 reactions per second, default 1) for 20 s on a fresh node: events/s
#         through the relays, and the end-to-end event latency (a comment's write to its event
#         handled by the node's cache-invalidation subscriber through Pulsar), p50 and p99 as the
#         bounds of the histogram buckets that hold them.
# Binaries: BUILD_DIR's commentd ("current"), and BENCH_BEFORE_BIN's ("before") when set, in
# alternating rounds (BENCH_RELAY_ROUNDS, default 2), since the machine is shared and noisy.
# BENCH_RELAY_TLS=1 instead runs BUILD_DIR's commentd twice per round, "plain" (pulsar://) and
# "tls" (pulsar+ssl:// to the test broker's TLS port, its CA trusted): what TLS costs the
# relays (their sequenced producers) and the event path.
# Pulsar: COMMENTD_TEST_PULSAR's, or one started (deploy/test-servers.sh) and stopped here.
# Prints one line per run and writes RESULTS_DIR/relay.json (default bench/results).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) BUILD=$BUILD_DIR ;; *) BUILD=$ROOT/$BUILD_DIR ;; esac
RESULTS=${RESULTS_DIR:-$ROOT/bench/results}
PYTHON=${PYTHON:-python3}
SECRET=bench-relay-secret-bench-relay-secret
FILL_S=${BENCH_RELAY_FILL_S:-20}
MULT=${BENCH_RELAY_MULTIPLE:-1}
ROUNDS=${BENCH_RELAY_ROUNDS:-2}
die() { echo "bench_relay: $*" >&2; exit 1; }
[ -x "$BUILD/commentd" ] && [ -x "$BUILD/loadgen" ] || die "$BUILD/commentd and loadgen are needed (build first)"
# name=binary=transport
BINS=("current=$BUILD/commentd=plain")
[ -n "${BENCH_BEFORE_BIN:-}" ] && BINS=("before=$BENCH_BEFORE_BIN=plain" "${BINS[@]}")
[ "${BENCH_RELAY_TLS:-0}" = 1 ] && BINS=("plain=$BUILD/commentd=plain" "tls=$BUILD/commentd=tls")

TMP=$(mktemp -d /tmp/bench-relay.XXXXXX)
PIDS=()
SERVERS=""
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$SERVERS" ]; then COMMENTD_TEST_SERVERS_DIR="$SERVERS" "$ROOT/deploy/test-servers.sh" stop pulsar >&2 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
if [ -z "${COMMENTD_TEST_PULSAR:-}" ]; then
  SERVERS=$TMP/servers
  COMMENTD_TEST_SERVERS_DIR="$SERVERS" "$ROOT/deploy/test-servers.sh" start pulsar >&2
  # shellcheck disable=SC1091
  set -a; . "$SERVERS/env"; set +a
fi

config() {  # DATA_DIR RELAY_ENABLED TOPIC_SUFFIX [TRANSPORT: plain|tls]
  local url=$COMMENTD_TEST_PULSAR tls=""
  if [ "${4:-plain}" = tls ]; then
    [ -n "${COMMENTD_TEST_PULSAR_TLS:-}" ] || die "the test broker has no TLS port (COMMENTD_TEST_PULSAR_TLS)"
    url=$COMMENTD_TEST_PULSAR_TLS tls="  tls: { ca_file: \"$COMMENTD_TEST_PULSAR_TLS_DIR/ca.pem\" }"
  fi
  cat <<EOF
server: { listen: "127.0.0.1:0" }
log: { level: "warn" }
storage: { data_dir: "$1" }
auth: { jwt_secret: "$SECRET" }
limits:
  create_comment: { limit: 0, window: "1m" }
  add_reaction: { limit: 0, window: "1m" }
workers: { outbox_relay: { enabled: $2 } }
pulsar:
  enabled: true
  url: "$url"
$tls
  topics:
    comments: "persistent://pavilion/comments/bench-$3"
    reactions: "persistent://pavilion/reactions/bench-$3"
    metrics: "persistent://pavilion/metrics/bench-$3"
EOF
}
start() {  # BIN RUN_DIR: starts commentd on RUN_DIR/c.yaml, sets PID and PORT
  rm -f "$2/port"
  "$1" --config "$2/c.yaml" --port-file "$2/port" >"$2/log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 300); do [ -s "$2/port" ] && break; sleep 0.1; done
  [ -s "$2/port" ] || die "commentd did not start: $(tail -3 "$2/log")"
  PORT=$(cat "$2/port")
}
stop() { kill "$PID"; wait "$PID" || true; }
# The event path's counters and event-latency buckets, as JSON.
scrape() {
  PYTHONPATH="$ROOT/scripts" "$PYTHON" -c '
import json, sys
from prom_text import samples, bucket_bound
out = {"published": 0.0, "duplicates": 0.0, "depth": None, "buckets": {}}
for n, labels, v in samples(int(sys.argv[1])):
    if n == "commentd_relay_published_total": out["published"] += v
    elif n == "commentd_relay_duplicates_total": out["duplicates"] += v
    elif n == "commentd_outbox_depth": out["depth"] = v
    elif n == "commentd_event_latency_seconds_bucket":
        le = bucket_bound(labels)
        out["buckets"][le] = out["buckets"].get(le, 0.0) + v
print(json.dumps(out))' "$PORT"
}
viral() {  # SECONDS MULTIPLE CLOSED(0|1) OUT
  local closed=() rates=(--read-rate $((1000 * $2)) --comment-rate $((100 * $2)) --reaction-rate $((1000 * $2)))
  [ "$3" = 1 ] && closed=(--closed-loop) && rates=(--read-rate 0 --comment-rate 300 --reaction-rate 3000)
  "$BUILD/loadgen" --target "http://127.0.0.1:$PORT" --jwt-secret "$SECRET" --quiet --out "$4" \
    --scenario viral "${closed[@]}" "${rates[@]}" --connections 256 \
    --video "$("$PYTHON" -c 'import uuid; print(uuid.uuid4())')" --seed-comments 1000 --duration "$1" >/dev/null
}
now() { date +%s.%N; }

# The outbox every drain run starts from.
mkdir -p "$TMP/fill"
config "$TMP/fill/data" false fill >"$TMP/fill/c.yaml"
start "$BUILD/commentd" "$TMP/fill"
viral "$FILL_S" 1 1 "$TMP/fill/lg.json"
stop

: >"$TMP/runs.jsonl"
for round in $(seq "$ROUNDS"); do
  for b in "${BINS[@]}"; do
    name=${b%%=*} rest=${b#*=}
    bin=${rest%=*} transport=${rest##*=}
    # drain
    R=$TMP/drain-$name-$round; mkdir -p "$R"; cp -a "$TMP/fill/data" "$R/data"
    config "$R/data" true "drain-$name-$round-$$" "$transport" >"$R/c.yaml"
    t0=$(now)
    start "$bin" "$R"
    while :; do
      s=$(scrape)
      "$PYTHON" -c 'import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s["depth"] == 0 and s["published"] > 0 else 1)' "$s" && break
      sleep 0.1
    done
    t1=$(now)
    stop
    "$PYTHON" -c 'import json,sys; s=json.loads(sys.argv[1]); t=float(sys.argv[3])-float(sys.argv[2])
print(json.dumps({"kind": "drain", "bin": sys.argv[4], "round": int(sys.argv[5]), "events": s["published"],
                  "duplicates": s["duplicates"], "seconds": round(t, 2), "events_per_s": round(s["published"] / t)}))' \
      "$s" "$t0" "$t1" "$name" "$round" | tee -a "$TMP/runs.jsonl"
    rm -rf "$R"
    # live
    R=$TMP/live-$name-$round; mkdir -p "$R"
    config "$R/data" true "live-$name-$round-$$" "$transport" >"$R/c.yaml"
    start "$bin" "$R"
    sleep 2
    before=$(scrape)
    t0=$(now)
    viral 20 "$MULT" 0 "$R/lg.json"
    t1=$(now)
    sleep 2  # the last events' handling
    after=$(scrape)
    stop
    PYTHONPATH="$ROOT/scripts" "$PYTHON" -c '
import json, sys
from prom_text import quantile
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
d = {k: v - b["buckets"].get(k, 0.0) for k, v in a["buckets"].items()}
lg = json.load(open(sys.argv[5]))["overall"]
t = float(sys.argv[4]) - float(sys.argv[3])
print(json.dumps({"kind": "live", "bin": sys.argv[6], "round": int(sys.argv[7]), "multiple": int(sys.argv[8]),
                  "events_per_s": round((a["published"] - b["published"]) / t),
                  "event_latency_p50_le_s": quantile(d, 0.5), "event_latency_p99_le_s": quantile(d, 0.99),
                  "events_timed": int(max(d.values(), default=0)), "achieved_rate": round(lg["achieved_rate"]),
                  "errors": lg["count"] - lg["ok"]}))' \
      "$before" "$after" "$t0" "$t1" "$R/lg.json" "$name" "$round" "$MULT" | tee -a "$TMP/runs.jsonl"
    rm -rf "$R"
  done
done
mkdir -p "$RESULTS"
"$PYTHON" -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' \
  "$TMP/runs.jsonl" >"$RESULTS/relay.json"
echo "bench_relay: $RESULTS/relay.json" >&2

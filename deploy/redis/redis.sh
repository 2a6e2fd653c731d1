#!/usr/bin/env bash
# Test Redis on free loopback ports, no persistence.
#   redis.sh single STATE    one node; writes COMMENTD_TEST_REDIS to STATE/env
#   redis.sh cluster STATE   3 masters (cluster-enabled, joined by redis-cli --cluster
#                            create); writes COMMENTD_TEST_REDIS_CLUSTER to STATE/env
# Ready means: PING answers (single), or every node reports cluster_state:ok (cluster).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
LOG_TAG=redis

ensure_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  log "installing redis-server (apt)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
}

# start_node DIR PORT [extra redis args...]
start_node() {
  local dir="$1" port="$2"
  shift 2
  mkdir -p "$dir"
  launch "$dir" "$dir/redis.log" redis-server --port "$port" --bind 127.0.0.1 \
    --save '' --appendonly no --daemonize no --dir "$dir" "$@"
}

ping_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = "PONG" ]; }

cluster_ok() {
  local p
  for p in "$@"; do
    redis-cli -h 127.0.0.1 -p "$p" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

single() {
  local state="$1" port
  fresh_state "$state"
  port=$(free_ports 1)
  start_node "$state" "$port"
  wait_until 20 "$state" "$state/redis.log" ping_ok "$port"
  echo "COMMENTD_TEST_REDIS=127.0.0.1:$port" >"$state/env"
}

cluster() {
  local state="$1" ports i addrs=() data=() bus=()
  fresh_state "$state"
  read -r -a ports <<<"$(free_ports 6)"
  data=("${ports[@]:0:3}")
  bus=("${ports[@]:3:3}")
  for i in 0 1 2; do
    start_node "$state/node$i" "${data[$i]}" --cluster-enabled yes --cluster-port "${bus[$i]}" \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000
    addrs+=("127.0.0.1:${data[$i]}")
  done
  for i in 0 1 2; do
    wait_until 20 "$state/node$i" "$state/node$i/redis.log" ping_ok "${data[$i]}"
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$state/create.log" 2>&1 ||
    { cat "$state/create.log" >&2; die "redis-cli --cluster create failed"; }
  wait_until 30 "$state/node0" "$state/create.log" cluster_ok "${data[@]}"
  local IFS=,
  echo "COMMENTD_TEST_REDIS_CLUSTER=${addrs[*]}" >"$state/env"
}

case "${1:-}" in
  single | cluster)
    [ $# -eq 2 ] || die "usage: $0 single|cluster STATE_DIR"
    ensure_redis
    "$1" "$2"
    ;;
  *) die "usage: $0 single|cluster STATE_DIR" ;;
esac

#!/usr/bin/env bash
# Real servers for the *_redistest, *_cqltest and *_pulsartest tiers, on free loopback ports.
#
#   deploy/test-servers.sh start [redis] [redis-cluster] [redis-cluster-tls] [cassandra] [pulsar]   (default: all)
#   deploy/test-servers.sh stop [NAME...]                                       (default: all)
#   deploy/test-servers.sh status
#   deploy/test-servers.sh restart NAME...   SIGTERM, then start again on the same ports and data
#   deploy/test-servers.sh kill NAME...      SIGKILL (a crash); `restart` brings it back
#
# start launches the requested servers in parallel, each in RUN/<name>/, waits until each
# answers a real request, prints how long each took, and (re)writes RUN/env with the
# addresses of every running server (COMMENTD_TEST_REDIS and its TLS port and files,
# COMMENTD_TEST_REDIS_CLUSTER, COMMENTD_TEST_REDIS_CLUSTER_TLS and its files,
# COMMENTD_TEST_CQL and its TLS files, COMMENTD_TEST_PULSAR, COMMENTD_TEST_PULSAR_ADMIN,
# COMMENTD_TEST_PULSAR_TLS and its files; deploy/README.md). A server already
# running in RUN is left as it is. Exit status 1 if any requested server failed to come up
# (the failed one is stopped, its log tail printed; the others keep running).
# stop sends SIGTERM to each recorded pid (SIGKILL after COMMENTD_STOP_TIMEOUT s, default 30)
# and never signals any other process. The env file also names this script and RUN
# (COMMENTD_TEST_SERVERS_CTL, COMMENTD_TEST_SERVERS_DIR) for fault-injection tests; a test
# that kills or restarts a server shared by other tests running at the same time makes them
# flaky: such a test should start its own instance (see deploy/README.md).
# RUN is $COMMENTD_TEST_SERVERS_DIR, default build/test-servers in the repository.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
LOG_TAG=test-servers
ROOT="$(cd "$DEPLOY_DIR/.." && pwd)"
RUN="${COMMENTD_TEST_SERVERS_DIR:-$ROOT/build/test-servers}"
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
ALL=(redis redis-cluster redis-cluster-tls cassandra pulsar)

# The state dirs holding a pid file for NAME.
state_dirs() {
  case "$1" in
    redis-cluster*) echo "$RUN/$1/node0 $RUN/$1/node1 $RUN/$1/node2" ;;
    *) echo "$RUN/$1" ;;
  esac
}

is_running() {
  local d
  for d in $(state_dirs "$1"); do recorded_alive "$d" || return 1; done
}

start_cmd() {
  case "$1" in
    redis) echo "$DEPLOY_DIR/redis/redis.sh single $RUN/redis" ;;
    redis-cluster) echo "$DEPLOY_DIR/redis/redis.sh cluster $RUN/redis-cluster" ;;
    redis-cluster-tls) echo "$DEPLOY_DIR/redis/redis.sh cluster-tls $RUN/redis-cluster-tls" ;;
    cassandra) echo "$DEPLOY_DIR/cassandra/cassandra.sh start $RUN/cassandra" ;;
    pulsar) echo "$DEPLOY_DIR/pulsar/pulsar.sh start $RUN/pulsar" ;;
    *) die "unknown server '$1' (known: ${ALL[*]})" ;;
  esac
}

restart_cmd() {
  case "$1" in
    redis | redis-cluster*) echo "$DEPLOY_DIR/redis/redis.sh restart $RUN/$1" ;;
    cassandra) echo "$DEPLOY_DIR/cassandra/cassandra.sh restart $RUN/cassandra" ;;
    pulsar) echo "$DEPLOY_DIR/pulsar/pulsar.sh restart $RUN/pulsar" ;;
    *) die "unknown server '$1' (known: ${ALL[*]})" ;;
  esac
}

stop_one() {
  local d p=()
  for d in $(state_dirs "$1"); do
    stop_recorded "$d" "${COMMENTD_STOP_TIMEOUT:-30}" &
    p+=($!)
  done
  wait "${p[@]}"
}

write_env() {
  local name tmp="$RUN/env.tmp"
  : >"$tmp"
  for name in "${ALL[@]}"; do
    if is_running "$name" && [ -f "$RUN/$name/env" ]; then cat "$RUN/$name/env" >>"$tmp"; fi
  done
  if [ -s "$tmp" ]; then
    printf 'COMMENTD_TEST_SERVERS_DIR=%s\nCOMMENTD_TEST_SERVERS_CTL=%s\n' "$RUN" "$DEPLOY_DIR/test-servers.sh" >>"$tmp"
  fi
  mv "$tmp" "$RUN/env"
}

cmd_start() {
  local names=("$@") name failed=0 pid ms
  [ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
  declare -A by_pid=() t0=()
  for name in "${names[@]}"; do
    start_cmd "$name" >/dev/null # validates the name
    if is_running "$name"; then
      log "$name already running in $RUN/$name"
      # A broker a test killed and restarted may answer health before its bookie takes
      # new ledgers: wait for that too (deploy/pulsar/pulsar.sh probe).
      if [ "$name" = pulsar ]; then "$DEPLOY_DIR/pulsar/pulsar.sh" probe "$RUN/pulsar" || failed=1; fi
      continue
    fi
    stop_one "$name" # leftovers of a half-started earlier run, if any
    rm -rf "${RUN:?}/$name"
    t0[$name]=$(now_ms)
    $(start_cmd "$name") >"$RUN/$name.start.log" 2>&1 &
    by_pid[$!]=$name
  done
  # Report in the order the servers come up.
  while [ ${#by_pid[@]} -gt 0 ]; do
    if wait -n -p pid "${!by_pid[@]}"; then
      name=${by_pid[$pid]}
      ms=$(($(now_ms) - t0[$name]))
      log "$name ready in $((ms / 1000)).$((ms % 1000 / 100)) s: $(tr '\n' ' ' <"$RUN/$name/env")"
    else
      name=${by_pid[$pid]}
      failed=1
      log "$name FAILED to start; $RUN/$name.start.log:"
      tail -n 60 "$RUN/$name.start.log" >&2 || true
      stop_one "$name"
    fi
    unset "by_pid[$pid]"
  done
  write_env
  log "env file: $RUN/env"
  return $failed
}

cmd_stop() {
  local names=("$@") name
  [ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
  local p=()
  for name in "${names[@]}"; do
    start_cmd "$name" >/dev/null
    stop_one "$name" &
    p+=($!)
  done
  wait "${p[@]}"
  write_env
}

cmd_restart() {
  local name pid ms t0 failed=0
  [ $# -gt 0 ] || die "usage: $0 restart NAME..."
  declare -A by_pid=()
  t0=$(now_ms)
  for name in "$@"; do
    $(restart_cmd "$name") >>"$RUN/$name.start.log" 2>&1 &
    by_pid[$!]=$name
  done
  while [ ${#by_pid[@]} -gt 0 ]; do
    if wait -n -p pid "${!by_pid[@]}"; then
      ms=$(($(now_ms) - t0))
      log "${by_pid[$pid]} restarted in $((ms / 1000)).$((ms % 1000 / 100)) s"
    else
      failed=1
      log "${by_pid[$pid]} FAILED to restart; $RUN/${by_pid[$pid]}.start.log:"
      tail -n 60 "$RUN/${by_pid[$pid]}.start.log" >&2 || true
    fi
    unset "by_pid[$pid]"
  done
  return $failed
}

cmd_kill() {
  local name d pid st i
  [ $# -gt 0 ] || die "usage: $0 kill NAME..."
  for name in "$@"; do
    start_cmd "$name" >/dev/null
    for d in $(state_dirs "$name"); do
      recorded_alive "$d" || continue
      read -r pid st <"$d/pid"
      kill -KILL "$pid"
      for ((i = 0; i < 100; i++)); do recorded_alive "$d" || break; sleep 0.05; done
    done
  done
}

cmd_status() {
  local name d pid st
  for name in "${ALL[@]}"; do
    for d in $(state_dirs "$name"); do
      [ -f "$d/pid" ] || continue
      read -r pid st <"$d/pid"
      if recorded_alive "$d"; then echo "$name: running, pid $pid ($d)"; else echo "$name: dead (pid $pid)"; fi
    done
  done
  [ -s "$RUN/env" ] && { echo "--- $RUN/env"; cat "$RUN/env"; }
  return 0
}

case "${1:-}" in
  start | stop | status | restart | kill)
    c="$1"
    shift
    "cmd_$c" "$@"
    ;;
  *) die "usage: $0 start|stop|status|restart|kill [redis] [redis-cluster] [redis-cluster-tls] [cassandra] [pulsar]" ;;
esac

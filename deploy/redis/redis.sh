#!/usr/bin/env bash
# Test Redis on free loopback ports, no persistence of data.
#   redis.sh single STATE    one node; writes COMMENTD_TEST_REDIS to STATE/env, and
#                            COMMENTD_TEST_REDIS_TLS (its TLS port, host:port) and
#                            COMMENTD_TEST_REDIS_TLS_DIR (make_test_tls's files: ca.pem,
#                            client.pem, client.key, other-ca.pem); client certificates are
#                            optional there, and verified when sent
#   redis.sh cluster STATE   3 masters (cluster-enabled, joined by redis-cli --cluster
#                            create); writes COMMENTD_TEST_REDIS_CLUSTER to STATE/env
#   redis.sh cluster-tls STATE  the same, each node with a TLS port beside its plain one and
#                            its cluster bus over TLS (tls-cluster yes), client certificates
#                            required on the TLS ports (tls-auth-clients yes); writes
#                            COMMENTD_TEST_REDIS_CLUSTER_TLS (the TLS ports) and
#                            COMMENTD_TEST_REDIS_CLUSTER_TLS_DIR (one test CA for the three).
#                            Each node answers CLUSTER SLOTS, MOVED and ASK with the port of
#                            the asking client's kind (Redis >= 7.0, redis/redis#8587), so TLS
#                            clients are sent to TLS ports. A cluster of its own: with
#                            tls-cluster a node's MIGRATE speaks TLS, so a slot move asked for
#                            by a plain client (as the plain cluster's tests do) would hang.
#   redis.sh restart STATE   stops (SIGTERM) and relaunches what STATE holds on the same ports
#                            (a cluster keeps its nodes.conf, so its slots), then waits again
# Ready means: PING answers (single), or every node reports cluster_state:ok (cluster).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
LOG_TAG=redis

ensure_redis() {
  command -v redis-cli >/dev/null || ensure_pkg redis-cli redis-server
  ensure_pkg redis-server redis-server
}

ping_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = "PONG" ]; }

cluster_ok() {
  local p
  for p in "$@"; do
    redis-cli -h 127.0.0.1 -p "$p" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

# run_node DIR: launches the node described by DIR/ports ("PORT" or "PORT BUS_PORT"), with a
# TLS port beside its plain one when DIR/tls_port names one (certificates in DIR/tls; a
# cluster node then speaks TLS on its bus too), and waits for PING.
run_node() {
  local dir="$1" port bus extra=()
  read -r port bus <"$dir/ports"
  [ -n "${bus:-}" ] && extra=(--cluster-enabled yes --cluster-port "$bus"
    --cluster-config-file nodes.conf --cluster-node-timeout 5000)
  [ -f "$dir/tls_port" ] && extra+=(--tls-port "$(cat "$dir/tls_port")" --tls-cert-file "$dir/tls/node.pem"
    --tls-key-file "$dir/tls/node.key" --tls-ca-cert-file "$dir/tls/ca.pem" --tls-auth-clients optional)
  # A TLS cluster also requires client certificates (the later --tls-auth-clients wins): the
  # single node's TLS port takes clients with or without one, this one only with one.
  [ -n "${bus:-}" ] && [ -f "$dir/tls_port" ] && extra+=(--tls-cluster yes --tls-auth-clients yes)
  launch "$dir" "$dir/redis.log" redis-server --port "$port" --bind 127.0.0.1 \
    --save '' --appendonly no --daemonize no --dir "$dir" "${extra[@]}"
  wait_until 20 "$dir" "$dir/redis.log" ping_ok "$port"
}

single() {
  local state="$1" port tls_port
  fresh_state "$state"
  read -r port tls_port <<<"$(free_ports 2)"
  echo "$port" >"$state/ports"
  echo "$tls_port" >"$state/tls_port"
  make_test_tls "$state/tls"
  run_node "$state"
  printf 'COMMENTD_TEST_REDIS=127.0.0.1:%s\nCOMMENTD_TEST_REDIS_TLS=127.0.0.1:%s\nCOMMENTD_TEST_REDIS_TLS_DIR=%s\n' \
    "$port" "$tls_port" "$state/tls" >"$state/env"
}

# cluster STATE [tls]
cluster() {
  local state="$1" tls="${2:-}" ports i addrs=() tls_addrs=()
  fresh_state "$state"
  read -r -a ports <<<"$(free_ports "$([ -n "$tls" ] && echo 9 || echo 6)")"
  [ -n "$tls" ] && make_test_tls "$state/tls"
  for i in 0 1 2; do
    mkdir -p "$state/node$i"
    echo "${ports[$i]} ${ports[$((i + 3))]}" >"$state/node$i/ports"
    if [ -n "$tls" ]; then
      echo "${ports[$((i + 6))]}" >"$state/node$i/tls_port"
      ln -s ../tls "$state/node$i/tls"
      tls_addrs+=("127.0.0.1:${ports[$((i + 6))]}")
    fi
    run_node "$state/node$i"
    addrs+=("127.0.0.1:${ports[$i]}")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$state/create.log" 2>&1 ||
    { cat "$state/create.log" >&2; die "redis-cli --cluster create failed"; }
  wait_until 30 "$state/node0" "$state/create.log" cluster_ok "${ports[@]:0:3}"
  local IFS=,
  if [ -n "$tls" ]; then
    printf 'COMMENTD_TEST_REDIS_CLUSTER_TLS=%s\nCOMMENTD_TEST_REDIS_CLUSTER_TLS_DIR=%s\n' \
      "${tls_addrs[*]}" "$state/tls" >"$state/env"
  else
    echo "COMMENTD_TEST_REDIS_CLUSTER=${addrs[*]}" >"$state/env"
  fi
}

cluster-tls() { cluster "$1" tls
}

restart() {
  local state="$1" d data=()
  if [ -f "$state/ports" ]; then
    stop_recorded "$state"
    run_node "$state"
    return
  fi
  [ -f "$state/node0/ports" ] || die "$state holds no redis started by this script"
  for d in "$state"/node{0,1,2}; do stop_recorded "$d" & done
  wait
  for d in "$state"/node{0,1,2}; do
    run_node "$d"
    data+=("$(cut -d' ' -f1 "$d/ports")")
  done
  wait_until 30 "$state/node0" "$state/node0/redis.log" cluster_ok "${data[@]}"
}

case "${1:-}" in
  single | cluster | cluster-tls | restart)
    [ $# -eq 2 ] || die "usage: $0 single|cluster|cluster-tls|restart STATE_DIR"
    ensure_redis
    "$1" "$2"
    ;;
  *) die "usage: $0 single|cluster|cluster-tls|restart STATE_DIR" ;;
esac

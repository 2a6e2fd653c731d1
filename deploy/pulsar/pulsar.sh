#!/usr/bin/env bash
# Test Pulsar 4.0 standalone on loopback (functions worker and stream storage off).
#   pulsar.sh fetch         the distribution into $COMMENTD_CACHE/apache-pulsar-$VERSION (cached;
#                           the tarball comes from Maven Central through ~/.m2)
#   pulsar.sh start STATE   fresh broker in STATE on free ports; returns once
#                           /admin/v2/brokers/health answers and the pavilion tenant and its
#                           namespaces (deduplication on) exist and a new topic can be created
#                           (the bookie takes ledgers); writes COMMENTD_TEST_PULSAR,
#                           COMMENTD_TEST_PULSAR_ADMIN, COMMENTD_TEST_PULSAR_TLS (the broker's
#                           TLS port, pulsar+ssl://, beside the plain one),
#                           COMMENTD_TEST_PULSAR_ADMIN_TLS (the admin API over https://) and
#                           COMMENTD_TEST_PULSAR_TLS_DIR (make_test_tls's files) to STATE/env
#   pulsar.sh restart STATE stops (SIGTERM) the broker in STATE and starts it again on the
#                           same ports and data; returns once healthy (as start)
#   pulsar.sh probe STATE   waits until the broker in STATE takes new topics
# Env: COMMENTD_PULSAR_TIMEOUT (s, default 120) bounds the wait for the health check.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
LOG_TAG=pulsar
HERE="$DEPLOY_DIR/pulsar"
VERSION=4.0.8
HOME_DIR="$COMMENTD_CACHE/apache-pulsar-$VERSION"
NAMESPACES=(comments reactions metrics)

do_fetch() {
  [ -f "$HOME_DIR/.complete" ] && return 0
  local repo="${COMMENTD_MAVEN_REPO:-$HOME/.m2/repository}"
  local tgz="$repo/org/apache/pulsar/pulsar-server-distribution/$VERSION/pulsar-server-distribution-$VERSION-bin.tar.gz"
  if [ ! -f "$tgz" ]; then
    log "fetching pulsar-server-distribution $VERSION (~245 MB) from Maven Central"
    maven dependency:get \
      -Dartifact="org.apache.pulsar:pulsar-server-distribution:$VERSION:tar.gz:bin" \
      -Dtransitive=false
  fi
  log "unpacking $tgz"
  rm -rf "$HOME_DIR" "$HOME_DIR.tmp"
  mkdir -p "$HOME_DIR.tmp"
  tar xzf "$tgz" -C "$HOME_DIR.tmp" --strip-components=1
  mv "$HOME_DIR.tmp" "$HOME_DIR"
  touch "$HOME_DIR/.complete"
}
fetch() { in_cache "pulsar-$VERSION" do_fetch; }

# write_conf STATE BROKER_PORT WEB_PORT TLS_PORT WEB_TLS_PORT: the shipped standalone.conf with our keys
# replacing its own (the shipped file has no final newline: appending to it would glue the
# first key onto its last line, so the keys are filtered out and the file rewritten line by
# line). The broker also serves TLS on TLS_PORT, and its admin API https on WEB_TLS_PORT, with
# the certificates in STATE/tls (its key is PKCS#8, as the broker requires: OpenSSL 3 writes
# that by default); a client certificate is not required, and lookups answer pulsar+ssl://
# clients with TLS_PORT.
write_conf() {
  local state="$1" broker="$2" web="$3" tls="$4" web_tls="$5"
  local overrides="bindAddress=127.0.0.1
advertisedAddress=127.0.0.1
brokerServicePort=$broker
brokerServicePortTls=$tls
tlsCertificateFilePath=$state/tls/node.pem
tlsKeyFilePath=$state/tls/node.key
tlsTrustCertsFilePath=$state/tls/ca.pem
tlsRequireTrustedClientCertOnConnect=false
webServicePort=$web
webServicePortTls=$web_tls
webSocketServiceEnabled=true
numIOThreads=2
numOrderedExecutorThreads=2
numHttpServerThreads=8
numExecutorThreadPoolSize=2
numCacheExecutorThreadPoolSize=2
numWorkerThreadsForNonPersistentTopic=2
managedLedgerNumSchedulerThreads=2
bookkeeperClientNumWorkerThreads=2
bookkeeperClientNumIoThreads=2
managedLedgerCacheSizeMB=32
dbStorage_writeCacheMaxSizeMb=16
dbStorage_readAheadCacheMaxSizeMb=16
brokerShutdownTimeoutMs=5000"
  awk -v ov="$overrides" '
    BEGIN { n = split(ov, lines, "\n"); for (i = 1; i <= n; i++) { split(lines[i], kv, "="); skip[kv[1]] = 1 } }
    { k = $0; sub(/=.*/, "", k); if (!(k in skip)) print }
    END { print ov }' "$HOME_DIR/conf/standalone.conf" >"$state/standalone.conf"
}

http_ok() { curl -fsS --max-time 3 -o /dev/null "$1"; }

# admin METHOD PATH [JSON]: 2xx, or 409 (exists), else fails with the answer.
admin() {
  local code
  code=$(curl -sS --max-time 10 -o "$STATE/admin.out" -w '%{http_code}' -X "$1" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$ADMIN$2")
  case "$code" in
    2?? | 409) return 0 ;;
    *) die "$1 $2 answered $code: $(cat "$STATE/admin.out")" ;;
  esac
}

# ledger_ok: a new topic can be created, which opens a managed ledger on the bookie. The
# broker's health check can pass while the bookie cannot take a new ledger ("Not enough
# non-faulty bookies available": seen right after a kill -9 and restart, when the new
# bookie's registration lags); a node subscribing to a new topic then fails.
ledger_ok() {
  local topic="/admin/v2/persistent/pavilion/metrics/readiness-$$-$(now_ms)" code
  code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X PUT "$ADMIN$topic") || return 1
  case "$code" in 2?? | 409) ;; *) return 1 ;; esac
  curl -sS --max-time 10 -o /dev/null -X DELETE "$ADMIN$topic?force=true" || true
}

# probe STATE: waits until the running broker of STATE takes new topics (see ledger_ok).
probe() {
  STATE="$1"
  local broker web t0
  read -r broker web _ <"$STATE/ports"
  ADMIN="http://127.0.0.1:$web"
  t0=$(now_ms)
  wait_until "${COMMENTD_PULSAR_TIMEOUT:-120}" "$STATE" "$STATE/pulsar.log" ledger_ok
  log "broker takes new topics on $ADMIN after $(($(now_ms) - t0)) ms"
}

start() {
  local state="$1" broker web tls web_tls
  command -v java >/dev/null || die "java not found (scripts/install-deps.sh --test installs openjdk-17-jre-headless)"
  fetch
  fresh_state "$state"
  read -r broker web tls web_tls <<<"$(free_ports 4)"
  echo "$broker $web $tls $web_tls" >"$state/ports"
  make_test_tls "$state/tls"
  write_conf "$state" "$broker" "$web" "$tls" "$web_tls"
  mkdir -p "$state/data" "$state/logs"
  run "$state"
  printf 'COMMENTD_TEST_PULSAR=pulsar://127.0.0.1:%s\nCOMMENTD_TEST_PULSAR_ADMIN=%s\n' \
    "$broker" "$ADMIN" >"$state/env"
  printf 'COMMENTD_TEST_PULSAR_TLS=pulsar+ssl://127.0.0.1:%s\nCOMMENTD_TEST_PULSAR_ADMIN_TLS=https://127.0.0.1:%s\n' \
    "$tls" "$web_tls" >>"$state/env"
  printf 'COMMENTD_TEST_PULSAR_TLS_DIR=%s\n' "$state/tls" >>"$state/env"
}

# run STATE: launches the broker configured in STATE (its data kept), waits for health, and
# makes sure the tenant and namespaces exist with deduplication on.
run() {
  STATE="$1"
  local broker web ns t0
  read -r broker web _ <"$STATE/ports"
  ADMIN="http://127.0.0.1:$web"
  t0=$(now_ms)
  # bin/pulsar execs java, so the recorded pid is the broker's. The in-process bookie picks
  # its own free port (RocksDB metadata mode ignores --bookkeeper-port).
  PULSAR_STANDALONE_CONF="$STATE/standalone.conf" PULSAR_LOG_DIR="$STATE/logs" \
    PULSAR_MEM="-Xms64m -Xmx512m -XX:MaxDirectMemorySize=256m" \
    PULSAR_GC="-XX:+UseG1GC -XX:+PerfDisableSharedMem -XX:TieredStopAtLevel=1" \
    PULSAR_EXTRA_OPTS="-XX:+ExitOnOutOfMemoryError" \
    launch "$STATE" "$STATE/pulsar.log" "$HOME_DIR/bin/pulsar" standalone -nfw -nss \
    -a 127.0.0.1 -c "$STATE/standalone.conf" --metadata-dir "$STATE/data/metadata" \
    --bookkeeper-dir "$STATE/data/bookkeeper"
  wait_until "${COMMENTD_PULSAR_TIMEOUT:-120}" "$STATE" "$STATE/pulsar.log" \
    http_ok "$ADMIN/admin/v2/brokers/health"
  log "broker healthy on $ADMIN after $(($(now_ms) - t0)) ms"
  admin PUT /admin/v2/tenants/pavilion '{"allowedClusters":["standalone"]}'
  for ns in "${NAMESPACES[@]}"; do
    admin PUT "/admin/v2/namespaces/pavilion/$ns"
    admin POST "/admin/v2/namespaces/pavilion/$ns/deduplication" true
  done
  probe "$STATE"
}

# flapping STATE: the in-process bookie's registration flaps, created and deleted about a
# thousand times a second for as long as the broker runs, so about half of all new ledgers
# (new topics, subscriptions) fail with "Not enough non-faulty bookies available". Seen on
# every start after a kill -9 (the RocksDB metadata store still holds the killed session's
# registration of the same bookie), never after a clean stop; the readiness probe can pass
# in the middle of it.
flapping() {
  local before after
  before=$(grep -c 'PulsarRegistrationClient - Bookie .* deleted' "$1/pulsar.log" || true)
  sleep 2
  after=$(grep -c 'PulsarRegistrationClient - Bookie .* deleted' "$1/pulsar.log" || true)
  [ $((after - before)) -gt 10 ]
}

restart() {
  [ -f "$1/ports" ] || die "$1 holds no pulsar started by this script"
  stop_recorded "$1" "${COMMENTD_STOP_TIMEOUT:-30}"
  run "$1"
  # After a kill -9: a clean stop and start clears the stale registration (measured: from
  # ~1,000 deletions a second to none).
  if flapping "$1"; then
    log "the bookie's registration flaps (a start after a kill -9): a clean restart"
    stop_recorded "$1" "${COMMENTD_STOP_TIMEOUT:-30}"
    run "$1"
    if flapping "$1"; then die "the bookie's registration still flaps after a clean restart"; fi
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start | restart | probe)
    [ $# -eq 2 ] || die "usage: $0 start|restart|probe STATE_DIR"
    "$1" "$2"
    ;;
  *) die "usage: $0 fetch | start|restart|probe STATE_DIR" ;;
esac

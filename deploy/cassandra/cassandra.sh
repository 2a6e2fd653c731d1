#!/usr/bin/env bash
# Test Cassandra (stands in for ScyllaDB: same CQL protocol), one node on loopback.
#   cassandra.sh fetch         jars into $COMMENTD_CACHE/cassandra-$VERSION/lib (cached)
#   cassandra.sh start STATE   fresh node in STATE on free ports; returns once a real CQL
#                              query answers; writes COMMENTD_TEST_CQL to STATE/env
#   cassandra.sh restart STATE stops (SIGTERM) the node in STATE and starts it again on the
#                              same ports and data; returns once a query answers
# The native port takes plain and TLS connections alike (client_encryption_options, optional):
# STATE/tls holds a test CA (ca.pem), the node's certificate (IP 127.0.0.1 in subjectAltName,
# signed by it), a client certificate and key signed by it (client.pem, client.key) and an
# unrelated CA (other-ca.pem); COMMENTD_TEST_CQL_TLS in STATE/env names the directory.
# Env: COMMENTD_CASSANDRA_TIMEOUT (s, default 120) bounds the wait for the first query;
#      COMMENTD_CASSANDRA_JAVA_OPTS adds JVM flags (a class-data-sharing archive was tried:
#      no measurable gain on this machine).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
LOG_TAG=cassandra
HERE="$DEPLOY_DIR/cassandra"
VERSION=$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$HERE/pom.xml")
HOME_DIR="$COMMENTD_CACHE/cassandra-$VERSION"

do_fetch() {
  [ -f "$HOME_DIR/lib/.complete" ] && return 0
  log "fetching cassandra-all $VERSION and its dependencies from Maven Central (~67 MB)"
  rm -rf "$HOME_DIR/lib.tmp"
  maven -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$HOME_DIR/lib.tmp"
  rm -rf "$HOME_DIR/lib"
  mv "$HOME_DIR/lib.tmp" "$HOME_DIR/lib"
  touch "$HOME_DIR/lib/.complete"
}
fetch() { in_cache "cassandra-$VERSION" do_fetch; }

# The JPMS flags of Cassandra's conf/jvm17-server.options.
JPMS=(-Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11)

# The node's keystore (PKCS12) from make_test_tls's files.
TLS_PASS=commentd-test
make_keystore() {
  openssl pkcs12 -export -in "$1/node.pem" -inkey "$1/node.key" -certfile "$1/ca.pem" -name node \
    -out "$1/keystore.p12" -passout "pass:$TLS_PASS" 2>>"$1/openssl.log" || die "openssl pkcs12 failed (see $1/openssl.log)"
  # The roots client certificates must chain to. keytool, not openssl: Java trusts a PKCS12
  # certificate only with its trusted-key-usage attribute, which OpenSSL 3.0 cannot write.
  keytool -importcert -noprompt -alias ca -file "$1/ca.pem" -keystore "$1/truststore.p12" -storetype PKCS12 \
    -storepass "$TLS_PASS" >>"$1/openssl.log" 2>&1 || die "keytool -importcert failed (see $1/openssl.log)"
}

start() {
  local state="$1" native storage
  command -v java >/dev/null || die "java not found (scripts/install-deps.sh --test installs openjdk-17-jre-headless)"
  fetch
  fresh_state "$state"
  read -r native storage <<<"$(free_ports 2)"
  echo "$native $storage" >"$state/ports"
  mkdir -p "$state/conf" "$state/data"
  make_test_tls "$state/tls"
  make_keystore "$state/tls"
  sed -e "s|@STATE@|$state|g" -e "s|@NATIVE_PORT@|$native|g" -e "s|@STORAGE_PORT@|$storage|g" \
    -e "s|@TLS_PASS@|$TLS_PASS|g" "$HERE/cassandra.yaml.in" >"$state/conf/cassandra.yaml"
  cp "$HERE/logback.xml" "$state/conf/logback.xml"
  run "$state"
  printf 'COMMENTD_TEST_CQL=127.0.0.1:%s\nCOMMENTD_TEST_CQL_TLS=%s\n' "$native" "$state/tls" >"$state/env"
}

# run STATE: launches the node configured in STATE (its data kept) and waits for a query.
run() {
  local state="$1" native storage jamm t0
  read -r native storage <"$state/ports"
  jamm=$(ls "$HOME_DIR"/lib/jamm-*.jar | head -n1)
  # As root, Cassandra mlocks all its memory (RSS ~1 GB): drop CAP_IPC_LOCK first.
  local prefix=()
  [ "$(id -u)" -eq 0 ] && prefix=(setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock)
  t0=$(now_ms)
  launch "$state" "$state/cassandra.log" "${prefix[@]}" java \
    -Xms128M -Xmx512M -XX:MaxDirectMemorySize=256M -Xss256k \
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1 \
    -XX:TieredStopAtLevel=1 -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError \
    "${JPMS[@]}" -javaagent:"$jamm" \
    -Dcassandra.config="file://$state/conf/cassandra.yaml" \
    -Dcassandra.storagedir="$state/data" -Dcassandra.logdir="$state" \
    -Dlogback.configurationFile="$state/conf/logback.xml" \
    -Dcassandra-foreground=yes -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=100 -Dcassandra.superuser_setup_delay_ms=0 \
    ${COMMENTD_CASSANDRA_JAVA_OPTS:-} -cp "$HOME_DIR/lib/*" org.apache.cassandra.service.CassandraDaemon
  wait_until "${COMMENTD_CASSANDRA_TIMEOUT:-120}" "$state" "$state/cassandra.log" \
    python3 "$HERE/cql_ready.py" 127.0.0.1 "$native"
  log "CQL answers on 127.0.0.1:$native after $(($(now_ms) - t0)) ms (release $(python3 "$HERE/cql_ready.py" 127.0.0.1 "$native"))"
}

restart() {
  [ -f "$1/ports" ] || die "$1 holds no cassandra started by this script"
  stop_recorded "$1" "${COMMENTD_STOP_TIMEOUT:-30}"
  run "$1"
}

case "${1:-}" in
  fetch) fetch ;;
  start | restart)
    [ $# -eq 2 ] || die "usage: $0 start|restart STATE_DIR"
    "$1" "$2"
    ;;
  *) die "usage: $0 fetch | start|restart STATE_DIR" ;;
esac

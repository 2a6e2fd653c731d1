# Shared helpers for the test-server scripts (sourced, not run).
# Every server runs from its own state dir, records "PID STARTTIME" in <state>/pid and
# writes its addresses as KEY=VALUE lines to <state>/env.

COMMENTD_CACHE="${COMMENTD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/commentd}"
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "${LOG_TAG:-servers}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

now_ms() { date +%s%3N; }

# ensure_pkg COMMAND PACKAGE: installs PACKAGE (apt) unless COMMAND is on the PATH. Waits for
# a package manager already at work (this project's other scripts, started in parallel, and
# any other apt) instead of failing on its lock.
ensure_pkg() {
  command -v "$1" >/dev/null && return 0
  log "installing $2 (apt)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive flock -w 900 /tmp/commentd-apt.lock sh -c \
    'apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$1" >/dev/null' \
    sh "$2"
}

# free_ports N: prints N distinct loopback TCP ports that are free now, outside the
# kernel's ephemeral range (so outgoing connections cannot take them first). Each port is
# reserved for 10 minutes by an atomic mkdir under /tmp, so parallel starts (this run's
# or another worktree's) never receive the same port.
free_ports() {
  python3 - "$1" <<'EOF'
import os, random, socket, sys, time
n = int(sys.argv[1])
lo, hi = 20000, 32000
with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    eph_lo = int(f.read().split()[0])
hi = min(hi, eph_lo - 1)
rdir = "/tmp/commentd-test-ports"
os.makedirs(rdir, exist_ok=True)
now = time.time()
for name in os.listdir(rdir):
    try:
        if now - os.stat(os.path.join(rdir, name)).st_mtime > 600:
            os.rmdir(os.path.join(rdir, name))
    except OSError:
        pass
got = []
rng = random.SystemRandom()
for _ in range(20000):
    if len(got) == n:
        break
    p = rng.randrange(lo, hi)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    try:
        os.mkdir(os.path.join(rdir, str(p)))
    except FileExistsError:
        continue
    got.append(p)
if len(got) != n:
    sys.exit("free_ports: could not find %d free ports" % n)
print(" ".join(map(str, got)))
EOF
}

# proc_start_time PID: the process start time (clock ticks since boot), identifying PID.
proc_start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

# record_pid STATE PID
record_pid() { echo "$2 $(proc_start_time "$2")" >"$1/pid"; }

# recorded_alive STATE: succeeds if the process recorded in STATE/pid is the same process
# and still alive (a recycled pid has another start time).
recorded_alive() {
  local pid st
  [ -f "$1/pid" ] || return 1
  read -r pid st <"$1/pid" || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(proc_start_time "$pid")" = "$st" ] &&
    ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# stop_recorded STATE [TIMEOUT_S]: SIGTERM the recorded process, SIGKILL after TIMEOUT_S.
# Only ever signals the exact process recorded in STATE/pid.
stop_recorded() {
  local state="$1" timeout="${2:-20}" pid st i
  [ -f "$state/pid" ] || return 0
  read -r pid st <"$state/pid" || true
  if recorded_alive "$state"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      recorded_alive "$state" || break
      sleep 0.1
    done
    if recorded_alive "$state"; then
      log "pid $pid ($state) ignored SIGTERM for ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do recorded_alive "$state" || break; sleep 0.1; done
    fi
  fi
  rm -f "$state/pid"
}

# launch STATE LOGFILE CMD...: starts CMD detached (own session, stdin closed), records its
# pid. The command must exec the server itself so the recorded pid is the server's. A log
# left by an earlier run is kept as LOGFILE.1 (one generation): a server restarted after it
# died keeps the dead one's last words.
launch() {
  local state="$1" logf="$2"
  shift 2
  if [ -s "$logf" ]; then mv -f "$logf" "$logf.1"; fi
  setsid "$@" >"$logf" 2>&1 </dev/null &
  record_pid "$state" "$!"
}

# wait_until TIMEOUT_S STATE LOGFILE CMD...: polls CMD every 0.2 s until it succeeds.
# Fails (with the log tail) if the server died or the timeout passed.
wait_until() {
  local timeout="$1" state="$2" logf="$3"
  shift 3
  local deadline=$(($(now_ms) + timeout * 1000))
  while :; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! recorded_alive "$state"; then
      log "server in $state exited before it was ready; last log lines ($logf):"
      tail -n 40 "$logf" >&2 || true
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      log "server in $state not ready after ${timeout}s; last log lines ($logf):"
      tail -n 40 "$logf" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# fresh_state STATE: refuses if a server recorded there still runs, else empties the dir.
fresh_state() {
  if recorded_alive "$1"; then
    die "a server recorded in $1 is still running (stop it first)"
  fi
  rm -rf "$1"
  mkdir -p "$1"
}

# in_cache LOCKNAME CMD...: runs CMD holding an exclusive lock on the shared cache, so two
# runs fetching at once do not corrupt it.
in_cache() {
  local name="$1"
  shift
  mkdir -p "$COMMENTD_CACHE"
  (
    flock -w 1200 9 || die "timed out waiting for the cache lock $COMMENTD_CACHE/$name.lock"
    "$@"
  ) 9>"$COMMENTD_CACHE/$name.lock"
}

# maven ARGS...: runs mvn -B -q holding a machine-wide lock, so two fetches never write to
# the same local repository at once. COMMENTD_MAVEN_REPO overrides ~/.m2/repository.
maven() {
  command -v mvn >/dev/null || die "mvn not found (scripts/install-deps.sh --test installs maven)"
  mkdir -p "$COMMENTD_CACHE"
  (
    flock -w 1200 8 || die "timed out waiting for $COMMENTD_CACHE/maven.lock"
    mvn -B -q ${COMMENTD_MAVEN_REPO:+-Dmaven.repo.local="$COMMENTD_MAVEN_REPO"} "$@" \
      >"$COMMENTD_CACHE/maven.log" 2>&1 ||
      { tail -n 30 "$COMMENTD_CACHE/maven.log" >&2; die "mvn $* failed (log: $COMMENTD_CACHE/maven.log)"; }
  ) 8>"$COMMENTD_CACHE/maven.lock"
}

# make_test_tls DIR: certificates for a test server's TLS port, made afresh: a test CA
# (ca.pem), the server's key and certificate signed by it with IP 127.0.0.1 in subjectAltName
# (node.key, node.pem), a client key and certificate signed by it (client.key, client.pem), and
# an unrelated CA (other-ca.pem) for the tests that must see verification fail.
make_test_tls() {
  local d="$1"
  mkdir -p "$d"
  command -v openssl >/dev/null || die "openssl not found (scripts/install-deps.sh --test installs it)"
  (
    cd "$d"
    ossl() { openssl "$@" 2>>openssl.log || die "openssl $1 failed (see $d/openssl.log)"; }
    ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=commentd test CA"
    ossl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 3650 -subj "/CN=another CA"
    printf 'subjectAltName=IP:127.0.0.1\n' >node.ext
    for who in node client; do
      ossl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" -subj "/CN=commentd test $who"
      ossl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$who.pem" -days 3650 \
        $([ "$who" = node ] && echo "-extfile node.ext")
    done
  )
}

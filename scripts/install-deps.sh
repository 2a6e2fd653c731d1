#!/usr/bin/env bash
# Installs every Debian package commentd needs to build, run and test, if missing.
# Idempotent: a machine that has them all runs no apt-get at all.
set -euo pipefail

build_pkgs=(g++ cmake ninja-build make pkg-config ccache
  libboost1.81-dev librocksdb-dev rapidjson-dev libspdlog-dev libyaml-cpp-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev libjemalloc-dev libhiredis-dev
  protobuf-compiler)  # protoc: the bridge's pulsar crate compiles Pulsar's .proto at build time
# redis-server, maven and a Java 17 runtime: the real test servers (deploy/test-servers.sh).
# clang + its runtime: the libFuzzer harnesses (fuzz/); python3-venv: schemathesis's venv.
# haproxy, python3-yaml: `make cluster` (the load balancer; merging CLUSTER_CONFIG).
# openssl: the test Cassandra's TLS certificates (deploy/cassandra/cassandra.sh).
test_pkgs=(python3 python3-pytest python3-venv python3-yaml curl gnuplot-nox prometheus haproxy
  redis-server redis-tools maven openjdk-17-jre-headless clang libclang-rt-14-dev openssl)

# The bridge (src/bridge) needs cargo and rustc >= 1.88 (crate `scylla` 1.x). Debian's are
# older, so they come from the machine's rustup toolchain; CMake also looks in ~/.cargo/bin,
# where rustup puts them even when a non-login shell's PATH lacks it.
cargo_bin=$(command -v cargo || true)
[ -z "$cargo_bin" ] && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ] && cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin/cargo"
if [ -z "$cargo_bin" ]; then
  echo "install-deps: cargo not found (PATH, ${CARGO_HOME:-$HOME/.cargo}/bin); install Rust >= 1.88 with rustup" >&2
  exit 1
fi
rustc_bin="$(dirname "$cargo_bin")/rustc"
[ -x "$rustc_bin" ] || rustc_bin=rustc
rust_minor=$("$rustc_bin" --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${rust_minor:-0}" -lt 88 ]; then
  echo "install-deps: $("$rustc_bin" --version) is too old; the bridge needs rustc >= 1.88" >&2
  exit 1
fi

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# One package manager at a time: wait for another apt (or this project's test-server scripts,
# deploy/lib/common.sh ensure_pkg) instead of failing on its lock.
$SUDO env DEBIAN_FRONTEND=noninteractive flock -w 900 /tmp/commentd-apt.lock sh -c \
  'apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@"' \
  sh "${missing[@]}"

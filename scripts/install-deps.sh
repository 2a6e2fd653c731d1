#!/usr/bin/env bash
# Installs every Debian package commentd needs to build, run and test, if missing.
# Idempotent: a machine that has them all runs no apt-get at all.
set -euo pipefail

build_pkgs=(g++ cmake ninja-build make pkg-config ccache
  libboost1.81-dev librocksdb-dev rapidjson-dev libspdlog-dev libyaml-cpp-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev libjemalloc-dev)
# redis-server, maven and a Java 17 runtime: the real test servers (deploy/test-servers.sh).
test_pkgs=(python3 python3-pytest curl gnuplot-nox prometheus
  redis-server maven openjdk-17-jre-headless)

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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

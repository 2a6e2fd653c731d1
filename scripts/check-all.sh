#!/usr/bin/env bash
# The sanitizer runs (README "Tests"): ASan + UBSan unit tests and the e2e suite against the
# ASan binary, then the unit tests under TSan (the applier, the writer, the caches, the
# coalescing and the limiters are the concurrent parts they cover). Prints each step's time.
# Any sanitizer report fails the step (halt_on_error).
# usage: check-all.sh [asan|tsan]   (one sanitizer's steps alone; `make tsan` runs the TSan ones)
set -euo pipefail
ONLY="${1:-all}"
case "$ONLY" in all | asan | tsan) ;; *) echo "usage: $0 [asan|tsan]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
JOBS="${JOBS:-$(nproc)}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# scripts/tsan.supp names the uninstrumented code (RocksDB, the Rust bridge) whose own
# synchronization TSan cannot see; commentd's C++ is never suppressed.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

step() {  # step NAME CMD...
  local name=$1; shift
  local t0=$(date +%s)
  echo "check-all: $name ..."
  "$@"
  echo "check-all: $name passed in $(( $(date +%s) - t0 )) s"
}

if [ "$ONLY" != tsan ]; then
step "asan+ubsan build" bash -c "cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCOMMENTD_SANITIZE=ON >/dev/null && cmake --build build-asan -j $JOBS"
step "asan+ubsan unit" bash -c "cd build-asan && ctest --output-on-failure -j $JOBS --timeout 900"
step "asan+ubsan e2e" env COMMENTD_E2E_REQUIRE=1 COMMENTD_E2E_SANITIZED=1 \
  COMMENTD_BIN="$PWD/build-asan/commentd" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e
fi
[ "$ONLY" != asan ] || exit 0
step "tsan build" bash -c "cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCOMMENTD_TSAN=ON >/dev/null && cmake --build build-tsan -j $JOBS --target unit_tests"
# Only unit_tests is built under TSan: -L unit, or the other executables' placeholder tests
# (gtest_discover_tests adds <target>_NOT_BUILT) would fail the step.
# One test is left out: in BridgeCompletion.RuntimeShutdownCancelsPendingCallsExactlyOnce the
# Rust runtime shuts down with a connect in flight, and TSan reports mio deregistering a socket
# that socket2 created on another runtime thread: both sides are uninstrumented Rust, and TSan
# does not match suppressions by function name for races on a file descriptor (only by module,
# which is the whole test binary). Every other bridge test runs.
step "tsan unit" bash -c "cd build-tsan && ctest --output-on-failure -j $JOBS --timeout 900 -L unit \
  -E '^BridgeCompletion.RuntimeShutdownCancelsPendingCallsExactlyOnce$'"

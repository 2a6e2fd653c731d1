# The two fresh-machine commands are `make run` and `make test` (see README.md).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3
# ccache hits across clones and build dirs (CI builds a fresh clone each time).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: deps test-deps configure build run test unit e2e bench bench-compare asan tsan clean test-servers test-servers-down fuzz-build \
  fuzz-smoke fuzz check-all cluster cluster-down bench-cluster bench-relay

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Serves the API on the embedded default (RocksDB in ./data) at 127.0.0.1:8080, dev auth on.
run: build
	$(BUILD_DIR)/commentd --config config/dev.yaml

# Every test: unit (ctest, while the test servers start), the real-server tiers (redis, cql,
# pulsar), then end-to-end against the real binary (pytest). The servers are always stopped.
test: test-deps build
	@BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) PYTHON=$(PYTHON) deploy/run-tests.sh
	@$(MAKE) --no-print-directory fuzz-smoke

# Redis, Redis Cluster, Cassandra and Pulsar on free loopback ports, for running the server
# tiers by hand: addresses in $(BUILD_DIR)/test-servers/env (see deploy/README.md).
test-servers: test-deps
	@mkdir -p $(BUILD_DIR)/test-servers
	@COMMENTD_TEST_SERVERS_DIR=$(abspath $(BUILD_DIR))/test-servers deploy/test-servers.sh start
	@echo "load with: set -a; . $(BUILD_DIR)/test-servers/env; set +a"

test-servers-down:
	@mkdir -p $(BUILD_DIR)/test-servers
	@COMMENTD_TEST_SERVERS_DIR=$(abspath $(BUILD_DIR))/test-servers deploy/test-servers.sh stop

# The whole cluster on loopback (deploy/cluster.sh): Redis, Cassandra, Pulsar, migrate, NODES
# (2) commentd nodes, HAProxy, Prometheus. The last line printed is the front door's URL (also
# in $(BUILD_DIR)/cluster/url). CLUSTER_CONFIG=FILE overlays every node's config; CLUSTER_TLS=1
# makes every node speak TLS to Cassandra, Redis and Pulsar.
cluster: test-deps build
	@COMMENTD_BIN=$(abspath $(BUILD_DIR))/commentd COMMENTD_CLUSTER_DIR=$(abspath $(BUILD_DIR))/cluster deploy/cluster.sh up

cluster-down:
	@COMMENTD_CLUSTER_DIR=$(abspath $(BUILD_DIR))/cluster deploy/cluster.sh down

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -LE '^(redis|cql|pulsar)$$'

e2e: build
	@COMMENTD_E2E_REQUIRE=1 COMMENTD_BIN=$(abspath $(BUILD_DIR))/commentd $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

bench: test-deps
	@$(MAKE) --no-print-directory build BUILD_TYPE=Release BUILD_DIR=build-release
	@BUILD_DIR=build-release scripts/bench.sh

# Before/after: this tree against BEFORE=REV (a git revision, built Release in a worktree under
# build-before/), same scenarios, same run: both servers up at once, each scenario on one then the
# other, the order alternating (scripts/bench.sh, BENCH_ONLY=compare).
bench-compare: test-deps
	@$(MAKE) --no-print-directory build BUILD_TYPE=Release BUILD_DIR=build-release
	@BUILD_DIR=build-release BENCH_ONLY=compare BENCH_BEFORE_REV=$(BEFORE) scripts/bench.sh

# The cluster's figures (issue 12): viral, mixed, read-hot through the cluster's front door
# against the embedded binary and the baseline server, same run (scripts/bench.sh).
bench-cluster: test-deps
	@$(MAKE) --no-print-directory build BUILD_TYPE=Release BUILD_DIR=build-release
	@BUILD_DIR=build-release BENCH_ONLY=cluster scripts/bench.sh

# The event path on Pulsar (issue 11): events/s through the relays draining a full outbox and at
# the viral scenario's rates, and the end-to-end event latency (scripts/bench_relay.sh);
# BEFORE_BIN=path/to/commentd alternates rounds with another binary; BENCH_RELAY_TLS=1 alternates
# pulsar:// with pulsar+ssl:// instead.
bench-relay: test-deps
	@$(MAKE) --no-print-directory build BUILD_TYPE=Release BUILD_DIR=build-release
	@BUILD_DIR=build-release BENCH_BEFORE_BIN=$(BEFORE_BIN) scripts/bench_relay.sh

# The safe builds: ASan + UBSan, and TSan for the concurrent parts.
asan: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCOMMENTD_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS) && cd build-asan && ctest --output-on-failure -j $(JOBS)

tsan: deps
	@scripts/check-all.sh tsan

# libFuzzer harnesses (fuzz/): clang, ASan + UBSan, only the sources they reach.
FUZZ_SECONDS ?= 20
fuzz-build: test-deps
	@cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

# Each harness for FUZZ_SECONDS (20 s in `make test`; `make fuzz` runs 10 min each).
fuzz-smoke: fuzz-build
	@fuzz/run.sh $(FUZZ_SECONDS)

fuzz:
	@$(MAKE) --no-print-directory fuzz-smoke FUZZ_SECONDS=600

# Every sanitizer run: ASan + UBSan unit and e2e, TSan unit (the concurrent parts), timed.
check-all: test-deps
	@scripts/check-all.sh

clean:
	rm -rf $(BUILD_DIR) build-release build-asan build-tsan build-fuzz

# The two fresh-machine commands are `make run` and `make test` (see README.md).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3
# ccache hits across clones and build dirs (CI builds a fresh clone each time).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: deps test-deps configure build run test unit e2e bench asan tsan clean

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

# Every test: unit (ctest) and end-to-end against the real binary (pytest).
test: test-deps build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300
	@COMMENTD_E2E_REQUIRE=1 COMMENTD_BIN=$(abspath $(BUILD_DIR))/commentd $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

e2e: build
	@COMMENTD_E2E_REQUIRE=1 COMMENTD_BIN=$(abspath $(BUILD_DIR))/commentd $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e

bench: test-deps
	@$(MAKE) --no-print-directory build BUILD_TYPE=Release BUILD_DIR=build-release
	@BUILD_DIR=build-release scripts/bench.sh

# The safe builds: ASan + UBSan, and TSan for the concurrent parts.
asan: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCOMMENTD_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS) && cd build-asan && ctest --output-on-failure -j $(JOBS)

tsan: deps
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOMMENTD_TSAN=ON >/dev/null
	@cmake --build build-tsan -j $(JOBS) && cd build-tsan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD_DIR) build-release build-asan build-tsan

# The two commands: `make run` and `make test`. Both install what is missing (tools/deps.sh),
# configure and build. Everything else here serves them.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= config/rabta.yaml

.PHONY: all deps build build-asan run test test-fast test-asan valgrind bench fuzz clean

all: build

deps:
	@tools/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DRB_SANITIZE=ON

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

# Starts rabtad on the sample config with its embedded PostgreSQL under var/.
run: build
	$(BUILD)/rabtad -c $(CONFIG)

# All tests: the normal build, the sanitizer build, and the unit tests under valgrind. After
# each ctest run, tools/test-summary.sh prints how many tests were skipped, and which (a skip
# is a failure unless tests/integration/allowed_skips.txt lists it).
test: build build-asan
	rc=0; (cd $(BUILD) && ctest --output-on-failure -j 2) || rc=$$?; \
	  tools/test-summary.sh $(BUILD); exit $$rc
	rc=0; (cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2) || rc=$$?; \
	  tools/test-summary.sh $(BUILD_ASAN); exit $$rc
	tools/valgrind-unit.sh $(BUILD)
	@tools/deps.sh --fuzz
	FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) tools/fuzz.sh

# The libFuzzer targets of tests/fuzz (clang), each for FUZZ_SECONDS; `make test` runs each
# for FUZZ_SMOKE_SECONDS.
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 5
fuzz:
	@tools/deps.sh --fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh

test-fast: build
	rc=0; (cd $(BUILD) && ctest --output-on-failure -j 2) || rc=$$?; \
	  tools/test-summary.sh $(BUILD); exit $$rc

bench: build
	tests/bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz

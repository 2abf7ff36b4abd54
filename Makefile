# The two commands: `make demo` and `make test`. Both install what they need.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
WBS := $(BUILD_DIR)/wbs
export OPENBLAS_CORETYPE ?= SkylakeX
export OPENBLAS_NUM_THREADS ?= 1
# Tests: OpenMP threads sleep instead of spinning between parallel regions
# (ctest runs two tests at once on 2 cores, where spinning threads starve
# each other). Everything else lets each wbs process choose from the load
# (core/omp_wait.h: spin briefly when idle, sleep when busy).
test test-asan: export OMP_WAIT_POLICY ?= passive

.PHONY: all setup configure build test test-asan demo bench fuzz asan clean experiments sim-zoo

all: build

setup:
	@bash scripts/setup.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt CMakePresets.json | setup
	cmake --preset $(PRESET) >/dev/null

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# All test tiers on the release build, then the unit and conformance tiers
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 2400
	@bash scripts/test_summary.sh $(BUILD_DIR)
	$(MAKE) --no-print-directory test-asan

test-asan: setup
	@test -f build/asan/build.ninja || cmake --preset asan >/dev/null
	cmake --build build/asan -j $(JOBS) --target wbs_unit_tests wbs_conformance
	ctest --test-dir build/asan --output-on-failure -j $(JOBS) -L 'unit|conformance' --timeout 2400

demo: build
	bash scripts/demo.sh $(WBS)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

# Block-sparsity accuracy table (docs/ACCURACY.md): dense fmnist_resnet, then
# fine-tuning per sparsity x method x block; long (see scripts/accuracy.sh).
experiments: build
	bash scripts/accuracy.sh $(WBS)

# The AIE2 simulator bit-exact on every zoo model, paper-2x2/4x4, dense and
# 50% (long: ~40 min on 2 cores; docs/SIMULATOR.md).
sim-zoo: build
	bash tests/sim/zoo_bitexact.sh $(WBS) out/sim_zoo

fuzz: setup
	cmake --preset fuzz >/dev/null && cmake --build build/fuzz -j $(JOBS) --target onnx_import_fuzzer tensor_proto_fuzzer
	bash scripts/fuzz_smoke.sh build/fuzz

asan: test-asan

clean:
	rm -rf build out

# The two commands: `make demo` and `make test`. Both install what they need.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
WBS := $(BUILD_DIR)/wbs
export OPENBLAS_CORETYPE ?= SkylakeX
export OPENBLAS_NUM_THREADS ?= 1
# OpenMP threads sleep instead of spinning between parallel regions: on a
# shared 2-core machine spinning threads starve each other (see docs/BENCHMARKS.md).
export OMP_WAIT_POLICY ?= passive

.PHONY: all setup configure build test demo bench fuzz asan clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt CMakePresets.json | setup
	cmake --preset $(PRESET) >/dev/null

configure: setup $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 2400

demo: build
	bash scripts/demo.sh $(WBS)

bench: build
	bash scripts/bench.sh $(BUILD_DIR)

fuzz: setup
	cmake --preset fuzz >/dev/null && cmake --build build/fuzz -j $(JOBS)
	bash scripts/fuzz_smoke.sh build/fuzz

asan:
	$(MAKE) test PRESET=asan

clean:
	rm -rf build out

#!/usr/bin/env bash
# Installs what wbs needs on Debian 12 (run as root). Idempotent and quick
# when everything is present: it only calls apt/npm for what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
  libdnnl-dev libtorch-dev libgloo-dev dataset-fashion-mnist
  ocl-icd-opencl-dev  # dnnl-config.cmake finds OpenCL; only a Recommends of libdnnl-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  python3-torch python3-torchvision python3-onnx python3-numpy
  nodejs
  chromium  # headless, for the report test (tests/report/)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing apt packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "[setup] error: need root to install packages (run as root or install them manually)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js may come from Debian (then npm is a separate package) or elsewhere
# with npm bundled: only ask apt for npm when there is none.
if ! command -v npm >/dev/null 2>&1; then
  echo "[setup] installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# ONNX Runtime (CPU binary bundled in the npm package) for the cross-check.
if [ ! -d tools/ort/node_modules/onnxruntime-node ]; then
  echo "[setup] installing onnxruntime-node (npm)"
  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent)
fi

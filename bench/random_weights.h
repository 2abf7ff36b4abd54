// Random tensors and random block masks for the benchmarks. Header-only, so
// the paired A/B bench (scripts/bench_sparse_ab.sh), which links only
// libwbs_kernels and libwbs_core, shares them with the CMake-built ones.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace wbs::bench {

// Standard-normal values times `scale`, reproducible from `seed`.
inline Tensor RandomTensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Tensor t(DType::kF32, shape);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  float* d = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = scale * dist(rng);
  return t;
}

// Zeroes exactly round(sparsity * blocks) random br x bc blocks of
// w [M, C, ...] (ragged edge blocks included), reproducible from `seed`.
inline void ZeroRandomBlocks(Tensor& w, double sparsity, int br, int bc, uint64_t seed) {
  const int64_t m = w.dim(0), c = w.dim(1), taps = w.numel() / (m * c);
  const int64_t rows = (m + br - 1) / br, cols = (c + bc - 1) / bc;
  std::vector<int64_t> order(static_cast<size_t>(rows * cols));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::shuffle(order.begin(), order.end(), rng);
  const auto zeros = static_cast<int64_t>(sparsity * double(rows * cols) + 0.5);
  float* p = w.data<float>();
  for (int64_t z = 0; z < zeros; ++z) {
    const int64_t bi = order[z] / cols, bj = order[z] % cols;
    for (int64_t i = bi * br; i < std::min(m, (bi + 1) * br); ++i)
      for (int64_t j = bj * bc; j < std::min(c, (bj + 1) * bc); ++j)
        std::fill(p + (i * c + j) * taps, p + (i * c + j + 1) * taps, 0.0f);
  }
}

}  // namespace wbs::bench

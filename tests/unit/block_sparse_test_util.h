// Helpers for the block-sparse tests: random weights with an exact fraction
// of zero blocks, and a reproducible seed (printed; WBS_TEST_SEED=<n> replays).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "core/block_mask.h"
#include "core/tensor.h"

namespace wbs::sparse_test {

using Rng = std::mt19937;

inline uint32_t TestSeed() {
  static const uint32_t seed = [] {
    const char* env = std::getenv("WBS_TEST_SEED");
    const uint32_t s =
        env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("block-sparse tests: seed %u (WBS_TEST_SEED=%u replays)\n", s, s);
    return s;
  }();
  return seed;
}

inline Tensor RandomTensor(const Shape& shape, Rng& rng) {
  Tensor t(DType::kF32, shape);
  std::normal_distribution<float> d(0.0f, 1.0f);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng);
  return t;
}

// A mask with exactly round(sparsity * blocks) zero blocks, chosen at random.
inline BlockMask RandomMask(int64_t m, int64_t c, int br, int bc, double sparsity, Rng& rng) {
  BlockMask mask;
  mask.block_rows = br;
  mask.block_cols = bc;
  mask.rows = (m + br - 1) / br;
  mask.cols = (c + bc - 1) / bc;
  const int64_t n = mask.rows * mask.cols;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const auto zeros = static_cast<int64_t>(sparsity * static_cast<double>(n) + 0.5);
  mask.keep.assign(static_cast<size_t>(n), 1);
  for (int64_t i = 0; i < zeros; ++i) mask.keep[static_cast<size_t>(order[i])] = 0;
  return mask;
}

// Zeroes every block of w [M, C, ...] that `mask` drops.
inline void ApplyMask(Tensor& w, const BlockMask& mask) {
  const int64_t m = w.dim(0), c = w.dim(1), taps = w.numel() / (m * c);
  float* p = w.data<float>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < c; ++j)
      if (!mask.Get(i / mask.block_rows, j / mask.block_cols))
        std::fill(p + (i * c + j) * taps, p + (i * c + j + 1) * taps, 0.0f);
}

}  // namespace wbs::sparse_test

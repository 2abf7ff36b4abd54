// Shared pieces of the int8 operator tests (quant fast paths, int8 layouts):
// a seeded uniform integer, a guard that restores the sparse mode, and a
// random s8 weight with 8x8 block sparsity.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/tensor.h"
#include "runtime/ops_sparse.h"

namespace wbs {

inline int Uniform(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// A random activation type: u8 or i8.
inline DType RandomType(std::mt19937_64& rng) {
  return Uniform(rng, 0, 1) ? DType::kU8 : DType::kI8;
}

// Restores the environment's sparse mode when a test ends.
struct ModeGuard {
  ~ModeGuard() { runtime::SetSparseMode(runtime::SparseMode::kAuto); }
};

// A random s8 weight [m, cg, taps...] whose 8x8 blocks (8 output x 8 input
// channels, the whole kernel) are zeroed with probability `sparsity`;
// `keep_first` keeps block (0, 0) so the weight is never all zero.
inline Tensor BlockSparseWeight(Shape shape, double sparsity, std::mt19937_64& rng,
                                bool keep_first = false) {
  Tensor w(DType::kI8, shape);
  const int64_t m = shape[0], c = shape[1], taps = w.numel() / (m * c);
  std::bernoulli_distribution drop(sparsity);
  std::vector<char> keep(static_cast<size_t>(((m + 7) / 8) * ((c + 7) / 8)));
  for (auto& k : keep) k = !drop(rng);
  if (keep_first) keep[0] = 1;
  for (int64_t o = 0; o < m; ++o)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t t = 0; t < taps; ++t)
        w.data<int8_t>()[(o * c + i) * taps + t] =
            keep[static_cast<size_t>((o / 8) * ((c + 7) / 8) + i / 8)]
                ? static_cast<int8_t>(Uniform(rng, -127, 127))
                : 0;
  return w;
}

}  // namespace wbs

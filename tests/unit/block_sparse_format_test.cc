// core/block_sparse: exact round trip, masks, statistics, errors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>

#include "core/block_sparse.h"
#include "tests/unit/block_sparse_test_util.h"

namespace wbs {
namespace {

using sparse_test::ApplyMask;
using sparse_test::RandomMask;
using sparse_test::RandomTensor;
using sparse_test::Rng;
using sparse_test::TestSeed;

struct Case {
  Shape shape;
  int br, bc;
};

TEST(BlockSparseFormat, RoundTripEveryBlockShapeAndSparsity) {
  const Case cases[] = {
      {{64, 64, 3, 3}, 8, 8},   {{70, 35, 3, 3}, 8, 8},  {{5, 3, 7, 7}, 8, 8},
      {{64, 32, 1, 1}, 4, 8},   {{33, 17}, 16, 4},       {{20, 20, 1, 7}, 3, 5},
      {{16, 16, 2, 2}, 16, 16}, {{9, 11, 3, 1}, 1, 1},   {{1, 1, 1, 1}, 8, 8},
      {{40, 24}, 16, 16},       {{24, 40, 3, 3}, 8, 16}, {{8, 8, 1, 1}, 8, 8},
  };
  Rng rng(TestSeed());
  for (const Case& c : cases) {
    for (double sparsity : {0.0, 0.25, 0.5, 0.75, 0.9, 1.0}) {
      SCOPED_TRACE(fmt::format("seed {}: {} block {}x{} sparsity {}", TestSeed(),
                               ShapeToString(c.shape), c.br, c.bc, sparsity));
      Tensor w = RandomTensor(c.shape, rng);
      BlockMask mask = RandomMask(c.shape[0], c.shape[1], c.br, c.bc, sparsity, rng);
      ApplyMask(w, mask);
      auto s = BlockSparseWeight::FromDense(w, c.br, c.bc);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      EXPECT_TRUE(s->ToDense().Identical(w));
      EXPECT_EQ(s->Mask(), mask);  // random normals are never exactly 0
      auto sm = BlockSparseWeight::FromDenseMasked(w, mask);
      ASSERT_TRUE(sm.ok()) << sm.status().ToString();
      EXPECT_TRUE(sm->ToDense().Identical(w));
      EXPECT_EQ(sm->row_ptr(), s->row_ptr());
      EXPECT_EQ(sm->col_idx(), s->col_idx());
      const BlockSparseStats st = s->Stats();
      const int64_t kept = std::count(mask.keep.begin(), mask.keep.end(), uint8_t{1});
      EXPECT_EQ(st.blocks, mask.rows * mask.cols);
      EXPECT_EQ(st.zero_blocks, st.blocks - kept);
      EXPECT_EQ(s->nnz_blocks(), kept);
      EXPECT_EQ(st.weights, w.numel());
      int64_t zeros = 0;
      for (float v : w.ToVector<float>()) zeros += v == 0.0f;
      EXPECT_EQ(st.zero_weights, zeros);
      EXPECT_EQ(st.compressed_bytes, 4 * (kept * s->block_size() + mask.rows + 1 + kept));
    }
  }
}

TEST(BlockSparseFormat, CkrLayout) {
  // W[m, c, t] = 100 m + 10 c + t, one 2x3 block of a 2x3x1x2 weight.
  std::vector<float> v;
  for (int m = 0; m < 2; ++m)
    for (int c = 0; c < 3; ++c)
      for (int t = 0; t < 2; ++t) v.push_back(float(100 * m + 10 * c + t + 1));
  auto s = BlockSparseWeight::FromDense(Tensor::FromVector<float>({2, 3, 1, 2}, v), 2, 3);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->nnz_blocks(), 1);
  const float* b = s->values();
  // [ci][t][r]
  EXPECT_EQ(b[0], 1.0f);    // c0 t0 r0
  EXPECT_EQ(b[1], 101.0f);  // c0 t0 r1
  EXPECT_EQ(b[2], 2.0f);    // c0 t1 r0
  EXPECT_EQ(b[4], 11.0f);   // c1 t0 r0
}

TEST(BlockSparseFormat, MaskedDropsValuesAndKeepsZeroBlocks) {
  Rng rng(TestSeed());
  Tensor w = RandomTensor({16, 16, 3, 3}, rng);
  BlockMask mask = RandomMask(16, 16, 8, 8, 0.5, rng);
  auto s = BlockSparseWeight::FromDenseMasked(w, mask);
  ASSERT_TRUE(s.ok());
  Tensor expect = w.Clone();
  ApplyMask(expect, mask);
  EXPECT_TRUE(s->ToDense().Identical(expect));
  // A kept all-zero block stays stored.
  Tensor z(DType::kF32, {8, 8, 1, 1});
  BlockMask all;
  all.rows = all.cols = 1;
  all.keep = {1};
  auto sz = BlockSparseWeight::FromDenseMasked(z, all);
  ASSERT_TRUE(sz.ok());
  EXPECT_EQ(sz->nnz_blocks(), 1);
  EXPECT_EQ(sz->Stats().zero_weights, 64);
}

TEST(BlockSparseFormat, Errors) {
  Tensor w(DType::kF32, {8, 8, 3, 3});
  EXPECT_FALSE(BlockSparseWeight::FromDense(w, 0, 8).ok());
  EXPECT_FALSE(BlockSparseWeight::FromDense(w, 8, 17).ok());
  EXPECT_FALSE(BlockSparseWeight::FromDense(Tensor(DType::kF32, {8, 8, 3}), 8, 8).ok());
  EXPECT_FALSE(BlockSparseWeight::FromDense(Tensor(DType::kI8, {8, 8}), 8, 8).ok());
  BlockMask bad;
  bad.rows = 2;
  bad.cols = 1;
  bad.keep = {1, 1};
  EXPECT_FALSE(BlockSparseWeight::FromDenseMasked(w, bad).ok());
}

}  // namespace
}  // namespace wbs

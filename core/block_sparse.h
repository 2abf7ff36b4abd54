// BlockSparseWeight: a conv/Gemm weight compressed to its non-zero blocks
// (block compressed sparse rows, "BSR"), the format the block-sparse kernels
// (kernels/sparse/) read.
//
// A weight W [M, C, kh, kw] (Gemm: kh = kw = 1) is a M x C matrix of kh x kw
// kernels cut into br x bc blocks (1 <= br, bc <= 16, rectangular allowed);
// the last block-row / block-column is ragged when M % br or C % bc != 0.
// Block-row i holds the non-zero blocks row_ptr[i] .. row_ptr[i+1]-1, in
// increasing block-column order col_idx[j]. Block j's values are packed
// contiguously at values[j * block_size()] in "CKR" order:
//
//   values[j*bs + ((ci * kh + ky) * kw + kx) * br + r] = W[i*br + r, col*bc + ci, ky, kx]
//
// i.e. for every (input channel, tap) the br output-channel weights are
// adjacent, which is what a kernel that broadcasts one weight per output
// channel against a vector of output pixels wants. Positions of a ragged
// block outside W are stored as 0, so every block has the same size.
// ToDense() reproduces W exactly (bitwise, including -0.0 inside kept blocks).
#pragma once

#include <cstdint>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "core/tensor.h"

namespace wbs {

inline constexpr int kMaxBlockDim = 16;

struct BlockSparseStats {
  int64_t blocks = 0;        // block_rows * block_cols
  int64_t zero_blocks = 0;   // blocks not stored
  int64_t weights = 0;       // M * C * kh * kw
  int64_t zero_weights = 0;  // weights equal to 0 (inside stored blocks too)
  int64_t dense_bytes = 0;   // f32 dense
  // Stored values (padded ragged blocks included) + row_ptr + col_idx.
  int64_t compressed_bytes = 0;
  double block_sparsity() const { return blocks ? double(zero_blocks) / double(blocks) : 0.0; }
  double weight_sparsity() const { return weights ? double(zero_weights) / double(weights) : 0.0; }
};

class BlockSparseWeight {
 public:
  // Keeps every block with at least one non-zero value (a -0.0 counts as zero).
  // `w` is f32 of rank 2 (Gemm [M, C]) or 4 (Conv [M, C, kh, kw]).
  static Result<BlockSparseWeight> FromDense(const Tensor& w, int br, int bc);
  // Keeps exactly the blocks mask.Get(i, j) == 1 (values outside them are
  // dropped, i.e. read as zero); the mask's block shape and dims must match.
  static Result<BlockSparseWeight> FromDenseMasked(const Tensor& w, const BlockMask& mask);

  // The dense weight (same shape as the source: rank 2 for Gemm).
  Tensor ToDense() const;
  BlockMask Mask() const;
  BlockSparseStats Stats() const;

  int br() const { return br_; }
  int bc() const { return bc_; }
  int64_t out_channels() const { return m_; }
  int64_t in_channels() const { return c_; }
  int64_t kh() const { return kh_; }
  int64_t kw() const { return kw_; }
  int64_t block_rows() const { return (m_ + br_ - 1) / br_; }
  int64_t block_cols() const { return (c_ + bc_ - 1) / bc_; }
  int64_t block_size() const { return int64_t{br_} * bc_ * kh_ * kw_; }
  int64_t nnz_blocks() const { return static_cast<int64_t>(col_idx_.size()); }
  const std::vector<int32_t>& row_ptr() const { return row_ptr_; }
  const std::vector<int32_t>& col_idx() const { return col_idx_; }
  const float* values() const { return values_.data(); }

 private:
  static Result<BlockSparseWeight> Build(const Tensor& w, int br, int bc, const BlockMask* mask);

  int br_ = 8, bc_ = 8;
  int64_t m_ = 0, c_ = 0, kh_ = 1, kw_ = 1;
  int rank_ = 4;
  std::vector<int32_t> row_ptr_;  // block_rows() + 1
  std::vector<int32_t> col_idx_;  // nnz_blocks()
  std::vector<float> values_;     // nnz_blocks() * block_size()
};

}  // namespace wbs

// S8BlockSparseWeight: an int8 conv/Gemm weight compressed to its non-zero
// br x bc blocks (BSR, like core/block_sparse.h's f32 BlockSparseWeight) in
// the layout AVX-512 VNNI wants.
//
// W is s8 [M, C, kh, kw] (Gemm: [M, K], kh = kw = 1), symmetric per output
// channel (docs/int8.md: values in [-127, 127], zero point 0). bc must be a
// multiple of 4: vpdpbusd multiplies 4 adjacent u8 activations by 4 adjacent
// s8 weights and adds the 4 products to one int32 lane, so the input channels
// of a block are stored as "quads" of 4 consecutive channels:
//
//   values[j*bs + ((qq * taps + t) * br + r) * 4 + l] = W[i*br + r, col*bc + qq*4 + l, t]
//
// for block j = (i, col) (row_ptr / col_idx as in BSR), quad qq in
// [0, bc/4), tap t = ky*kw + kx, row r in [0, br), lane l in [0, 4). One
// (quad, tap) of a block is br*4 bytes: the br 32-bit words a kernel
// broadcasts one per output channel. Positions outside W (ragged last block
// row/column, C not a multiple of 4) are stored as 0, so they contribute 0
// whatever the activation there is.
//
// row_sums()[m] = sum of W[m, :, :] over the stored blocks (int32): the
// kernels compute sum W*(x - z_x) as sum W*x - z_x * row_sum (docs/int8.md).
#pragma once

#include <cstdint>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"

namespace wbs::kernels::sparse {

class S8BlockSparseWeight {
 public:
  // w: row-major s8 [m, c, kh, kw]. Without `mask` every block holding a
  // non-zero value is kept; with it exactly the blocks mask.Get(i, j) == 1
  // (values outside them are dropped); its block shape must be br x bc.
  static Result<S8BlockSparseWeight> FromDense(const int8_t* w, int64_t m, int64_t c, int64_t kh,
                                               int64_t kw, int br, int bc,
                                               const BlockMask* mask = nullptr);

  // The dense weight [m, c, kh, kw] (dropped blocks are 0).
  std::vector<int8_t> ToDense() const;

  int br() const { return br_; }
  int bc() const { return bc_; }
  int64_t out_channels() const { return m_; }
  int64_t in_channels() const { return c_; }
  int64_t kh() const { return kh_; }
  int64_t kw() const { return kw_; }
  int64_t taps() const { return kh_ * kw_; }
  int64_t block_rows() const { return (m_ + br_ - 1) / br_; }
  int64_t block_cols() const { return (c_ + bc_ - 1) / bc_; }
  int64_t block_size() const { return int64_t{br_} * bc_ * kh_ * kw_; }  // bytes
  int64_t nnz_blocks() const { return static_cast<int64_t>(col_idx_.size()); }
  double block_sparsity() const {
    const int64_t n = block_rows() * block_cols();
    return n ? 1.0 - double(nnz_blocks()) / double(n) : 0.0;
  }
  const std::vector<int32_t>& row_ptr() const { return row_ptr_; }
  const std::vector<int32_t>& col_idx() const { return col_idx_; }
  const int8_t* values() const { return values_.data(); }
  const std::vector<int32_t>& row_sums() const { return row_sums_; }

 private:
  int br_ = 8, bc_ = 8;
  int64_t m_ = 0, c_ = 0, kh_ = 1, kw_ = 1;
  std::vector<int32_t> row_ptr_;   // block_rows() + 1
  std::vector<int32_t> col_idx_;   // nnz_blocks()
  std::vector<int8_t> values_;     // nnz_blocks() * block_size(), 64-byte multiple padding
  std::vector<int32_t> row_sums_;  // [m]
};

}  // namespace wbs::kernels::sparse

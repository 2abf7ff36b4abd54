#include "core/block_sparse.h"

#include <cstring>
#include <limits>

namespace wbs {

Result<BlockSparseWeight> BlockSparseWeight::FromDense(const Tensor& w, int br, int bc) {
  return Build(w, br, bc, nullptr);
}

Result<BlockSparseWeight> BlockSparseWeight::FromDenseMasked(const Tensor& w,
                                                             const BlockMask& mask) {
  return Build(w, mask.block_rows, mask.block_cols, &mask);
}

Result<BlockSparseWeight> BlockSparseWeight::Build(const Tensor& w, int br, int bc,
                                                   const BlockMask* mask) {
  if (w.dtype() != DType::kF32 || (w.rank() != 2 && w.rank() != 4))
    return InvalidArgument("block-sparse weight: want f32 of rank 2 or 4, got {}", w.Describe());
  if (br < 1 || br > kMaxBlockDim || bc < 1 || bc > kMaxBlockDim)
    return InvalidArgument("block-sparse weight: block {}x{} outside 1..{}", br, bc, kMaxBlockDim);
  BlockSparseWeight s;
  s.br_ = br;
  s.bc_ = bc;
  s.rank_ = w.rank();
  s.m_ = w.dim(0);
  s.c_ = w.dim(1);
  s.kh_ = w.rank() == 4 ? w.dim(2) : 1;
  s.kw_ = w.rank() == 4 ? w.dim(3) : 1;
  if (s.m_ < 1 || s.c_ < 1 || s.kh_ < 1 || s.kw_ < 1)
    return InvalidArgument("block-sparse weight: empty weight {}", w.Describe());
  const int64_t rows = s.block_rows(), cols = s.block_cols();
  if (rows * cols > std::numeric_limits<int32_t>::max())
    return InvalidArgument("block-sparse weight: too many blocks in {}", w.Describe());
  if (mask && (mask->rows != rows || mask->cols != cols ||
               static_cast<int64_t>(mask->keep.size()) != rows * cols))
    return InvalidArgument("block-sparse weight: mask {}x{} of {}x{} blocks does not fit {}",
                           mask->rows, mask->cols, br, bc, w.Describe());
  const int64_t taps = s.kh_ * s.kw_;
  const float* src = w.data<float>();
  auto at = [&](int64_t m, int64_t c, int64_t t) { return src[(m * s.c_ + c) * taps + t]; };
  s.row_ptr_.assign(static_cast<size_t>(rows) + 1, 0);
  const int64_t bs = s.block_size();
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t m0 = i * br, m1 = std::min(s.m_, m0 + br);
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t c0 = j * bc, c1 = std::min(s.c_, c0 + bc);
      bool keep;
      if (mask) {
        keep = mask->Get(i, j);
      } else {
        keep = false;
        for (int64_t m = m0; m < m1 && !keep; ++m)
          for (int64_t c = c0; c < c1 && !keep; ++c)
            for (int64_t t = 0; t < taps && !keep; ++t) keep = at(m, c, t) != 0.0f;
      }
      if (!keep) continue;
      s.col_idx_.push_back(static_cast<int32_t>(j));
      const size_t base = s.values_.size();
      s.values_.resize(base + static_cast<size_t>(bs), 0.0f);
      float* blk = s.values_.data() + base;
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t m = m0; m < m1; ++m)
            blk[((c - c0) * taps + t) * br + (m - m0)] = at(m, c, t);
    }
    s.row_ptr_[static_cast<size_t>(i) + 1] = static_cast<int32_t>(s.col_idx_.size());
  }
  return s;
}

Tensor BlockSparseWeight::ToDense() const {
  Shape shape = rank_ == 4 ? Shape{m_, c_, kh_, kw_} : Shape{m_, c_};
  Tensor out(DType::kF32, shape);
  float* dst = out.data<float>();
  const int64_t taps = kh_ * kw_, bs = block_size();
  for (int64_t i = 0; i < block_rows(); ++i) {
    const int64_t m0 = i * br_, m1 = std::min(m_, m0 + br_);
    for (int32_t j = row_ptr_[i]; j < row_ptr_[i + 1]; ++j) {
      const int64_t c0 = int64_t{col_idx_[j]} * bc_, c1 = std::min(c_, c0 + bc_);
      const float* blk = values_.data() + j * bs;
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t m = m0; m < m1; ++m)
            dst[(m * c_ + c) * taps + t] = blk[((c - c0) * taps + t) * br_ + (m - m0)];
    }
  }
  return out;
}

BlockMask BlockSparseWeight::Mask() const {
  BlockMask mask;
  mask.block_rows = br_;
  mask.block_cols = bc_;
  mask.rows = block_rows();
  mask.cols = block_cols();
  mask.keep.assign(static_cast<size_t>(mask.rows * mask.cols), 0);
  for (int64_t i = 0; i < mask.rows; ++i)
    for (int32_t j = row_ptr_[i]; j < row_ptr_[i + 1]; ++j)
      mask.keep[static_cast<size_t>(i * mask.cols + col_idx_[j])] = 1;
  return mask;
}

BlockSparseStats BlockSparseWeight::Stats() const {
  BlockSparseStats st;
  st.blocks = block_rows() * block_cols();
  st.zero_blocks = st.blocks - nnz_blocks();
  st.weights = m_ * c_ * kh_ * kw_;
  st.dense_bytes = st.weights * static_cast<int64_t>(sizeof(float));
  // Non-zeros are counted inside the real (unpadded) part of stored blocks.
  int64_t nonzero = 0;
  const int64_t taps = kh_ * kw_, bs = block_size();
  for (int64_t i = 0; i < block_rows(); ++i) {
    const int64_t rows = std::min<int64_t>(br_, m_ - i * br_);
    for (int32_t j = row_ptr_[i]; j < row_ptr_[i + 1]; ++j) {
      const int64_t cols = std::min<int64_t>(bc_, c_ - int64_t{col_idx_[j]} * bc_);
      const float* blk = values_.data() + j * bs;
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t r = 0; r < rows; ++r) nonzero += blk[(c * taps + t) * br_ + r] != 0.0f;
    }
  }
  st.zero_weights = st.weights - nonzero;
  st.compressed_bytes =
      static_cast<int64_t>(values_.size() * sizeof(float) + row_ptr_.size() * sizeof(int32_t) +
                           col_idx_.size() * sizeof(int32_t));
  return st;
}

}  // namespace wbs

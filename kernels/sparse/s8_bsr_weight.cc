#include "kernels/sparse/s8_bsr_weight.h"

#include <algorithm>
#include <limits>

namespace wbs::kernels::sparse {

Result<S8BlockSparseWeight> S8BlockSparseWeight::FromDense(const int8_t* w, int64_t m, int64_t c,
                                                           int64_t kh, int64_t kw, int br, int bc,
                                                           const BlockMask* mask) {
  if (m <= 0 || c <= 0 || kh <= 0 || kw <= 0)
    return InvalidArgument("s8 block-sparse weight: bad shape [{},{},{},{}]", m, c, kh, kw);
  if (br < 1 || br > 16 || bc < 4 || bc > 16 || bc % 4 != 0)
    return InvalidArgument(
        "s8 block-sparse weight: block {}x{} (rows 1..16, cols 4, 8, 12 or 16: input channels "
        "are grouped in 4s for VNNI)",
        br, bc);
  S8BlockSparseWeight s;
  s.br_ = br;
  s.bc_ = bc;
  s.m_ = m;
  s.c_ = c;
  s.kh_ = kh;
  s.kw_ = kw;
  const int64_t rows = s.block_rows(), cols = s.block_cols(), taps = kh * kw;
  if (mask && (mask->block_rows != br || mask->block_cols != bc || mask->rows != rows ||
               mask->cols != cols || mask->layout != MaskLayout::kOutIn))
    return InvalidArgument(
        "s8 block-sparse weight: mask {}x{} blocks of {}x{} does not fit [{},{}]", mask->rows,
        mask->cols, mask->block_rows, mask->block_cols, m, c);
  if (rows * cols > std::numeric_limits<int32_t>::max())
    return InvalidArgument("s8 block-sparse weight: too many blocks ({})", rows * cols);
  auto at = [&](int64_t o, int64_t i, int64_t t) -> int8_t {
    return o < m && i < c ? w[(o * c + i) * taps + t] : int8_t{0};
  };
  const int64_t bs = s.block_size();
  s.row_ptr_.push_back(0);
  s.row_sums_.assign(static_cast<size_t>(m), 0);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      bool keep;
      if (mask) {
        keep = mask->Get(i, j);
      } else {
        keep = false;
        for (int64_t r = 0; r < br && !keep; ++r)
          for (int64_t ci = 0; ci < bc && !keep; ++ci)
            for (int64_t t = 0; t < taps && !keep; ++t) keep = at(i * br + r, j * bc + ci, t) != 0;
      }
      if (!keep) continue;
      s.col_idx_.push_back(static_cast<int32_t>(j));
      const size_t base = s.values_.size();
      s.values_.resize(base + static_cast<size_t>(bs));
      int8_t* blk = s.values_.data() + base;
      for (int64_t qq = 0; qq < bc / 4; ++qq)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t r = 0; r < br; ++r)
            for (int64_t l = 0; l < 4; ++l) {
              const int8_t v = at(i * br + r, j * bc + qq * 4 + l, t);
              blk[((qq * taps + t) * br + r) * 4 + l] = v;
              if (i * br + r < m) s.row_sums_[static_cast<size_t>(i * br + r)] += v;
            }
    }
    s.row_ptr_.push_back(static_cast<int32_t>(s.col_idx_.size()));
  }
  // Kernels may read a full vector past the last (quad, tap) of the last block.
  s.values_.resize(s.values_.size() + 64, 0);
  return s;
}

std::vector<int8_t> S8BlockSparseWeight::ToDense() const {
  const int64_t taps = kh_ * kw_, bs = block_size();
  std::vector<int8_t> w(static_cast<size_t>(m_ * c_ * taps), 0);
  for (int64_t i = 0; i < block_rows(); ++i)
    for (int32_t j = row_ptr_[i]; j < row_ptr_[i + 1]; ++j) {
      const int8_t* blk = values_.data() + j * bs;
      for (int64_t qq = 0; qq < bc_ / 4; ++qq)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t r = 0; r < br_; ++r)
            for (int64_t l = 0; l < 4; ++l) {
              const int64_t o = i * br_ + r, ci = int64_t{col_idx_[j]} * bc_ + qq * 4 + l;
              if (o < m_ && ci < c_)
                w[static_cast<size_t>((o * c_ + ci) * taps + t)] =
                    blk[((qq * taps + t) * br_ + r) * 4 + l];
            }
    }
  return w;
}

}  // namespace wbs::kernels::sparse

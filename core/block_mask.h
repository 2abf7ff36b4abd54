// BlockMask: the block mask Γ of one weight (the paper's notation).
//
// A weight W of shape COUT x CIN x kh x kw (Gemm: kh = kw = 1) is viewed as a
// COUT x CIN matrix of kh x kw kernels; Γ has ceil(COUT/block_rows) x
// ceil(CIN/block_cols) entries and Γ(i,j) = 0 means the whole block is zero.
// The full format (compressed weights, statistics) arrives with the block
// sparsity issue; the IR already carries this so every stage can see it.
#pragma once

#include <cstdint>
#include <vector>

namespace wbs {

struct BlockMask {
  int block_rows = 8;   // output channels per block
  int block_cols = 8;   // input channels per block
  int64_t rows = 0;     // ceil(COUT / block_rows)
  int64_t cols = 0;     // ceil(CIN / block_cols)
  std::vector<uint8_t> keep;  // rows*cols entries, row-major, 1 = keep

  bool Get(int64_t r, int64_t c) const { return keep[static_cast<size_t>(r * cols + c)] != 0; }
  bool operator==(const BlockMask&) const = default;
};

// Quantization parameters of a value (filled by the quantization issue).
struct QuantParams {
  int32_t dtype = 0;            // wbs::DType of the quantized tensor
  std::vector<float> scale;     // one per tensor, or one per channel along `axis`
  std::vector<int32_t> zero_point;
  int axis = -1;                // -1 = per tensor
  bool power_of_two = false;    // scales are 2^-k (AIE "fix position" mode)
  bool operator==(const QuantParams&) const = default;
};

}  // namespace wbs

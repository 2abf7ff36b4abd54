// BsrWinoPlan: a block-sparse 3x3 stride-1 convolution as Winograd
// F(2x2, 3x3), the alternative to BsrConvPlan for those layers (issue 3).
//
// Algorithm. Per 2x2 output tile, Y = A^T [U (.) V] A with V = B^T d B the
// transformed 4x4 input window and U = G g G^T the transformed 3x3 kernel
// (wino_transform.h): 16 multiplies per output channel, input channel and
// tile instead of 36 (2.25x fewer MACs). Summed over input channels, entry
// xi of the 4x4 product is a GEMM
//
//   M_xi[COUT, T] = U_xi[COUT, CIN] * V_xi[CIN, T]     (T tiles, xi = 0..15)
//
// and U_xi is zero wherever the 3x3 weight is: a zero 8x8 block of channel
// pairs stays a zero block of every U_xi. So the 16 GEMMs share the weight's
// BSR structure (row_ptr, col_idx) and each has its own block values,
// transformed once at Create() (16/9 of the direct weight's floats). Each
// GEMM runs on the direct conv's microkernel (bsr_conv.h) as a 1x1 conv
// over a T-wide plane (taps = 1), so the sparse inner loop is the
// dispatcher's kernel (AVX-512: 8x48 zmm tile; AVX2: 4x16 ymm, two passes).
// Per multiply it moves more data than the direct conv does (an input value
// is read once per (xi, block) instead of once for 9 taps), so the 2.25x
// fewer multiplies do not turn into 2.25x less time (docs/KERNELS.md).
//
// Blocking. Run() walks the tiles in chunks of one GEMM register tile (16
// tiles on AVX2): the input transform writes V[16][C][chunk], then per
// block-row of output channels the 16 GEMMs write M[16][br][chunk] and the
// output transform turns it into that block-row's 2x2 outputs with bias,
// residual and clamp fused. Each GEMM's operand V_xi[C][chunk] stays in L1
// while the block-rows pass over it, and M never exists for all output
// channels at once.
//
// Threads. Every thread has its own V and M scratch and no thread waits for
// another (no barrier, no shared scratch): with many tiles (>=
// kMinTilesPerThread each) thread t takes ~1/T of the tiles over all
// block-rows (each reads all of the transformed weights); with fewer (the
// 14x14 and 7x7 planes) thread t takes a run of block-rows holding ~1/T of
// the kept blocks over all tiles, and every thread transforms the whole
// input for itself (like BsrConvPlan's private copies: twice the transform
// work, no waiting for the other core's half).
//
// Numerics. fp32 F(2x2, 3x3): the transforms add and subtract inputs and
// products that the direct sum never forms (entries of V are sums of up to
// 4 inputs, Y sums 9 entries of M), so rounding errors grow by a small
// factor over the direct plan's; tests/unit/bsr_wino_test.cc holds it to 4x
// the direct plan's test bound against a double reference, and
// docs/KERNELS.md "Winograd" has the whole-model numbers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/block_sparse.h"
#include "core/status.h"
#include "kernels/ref/conv.h"
#include "kernels/sparse/dispatch.h"

namespace wbs::kernels::sparse {

class BsrWinoPlan {
 public:
  // True when the conv is one BsrWinoPlan takes: 2-D, 3x3, stride 1,
  // dilation 1, group 1, any padding.
  static bool Eligible(const ref::ConvParams& p);
  // p must be Eligible, activation none/Relu/Clip (a clamp); w the weight
  // of p's shape. The plan copies what it needs of w (it may be destroyed).
  // `kernel` / `transform` override the dispatcher (tests, benchmarks).
  static Result<BsrWinoPlan> Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                    const BsrConvKernel* kernel = nullptr,
                                    const WinoTransformKernel* transform = nullptr);

  // How Run() divides one image over threads (see "Threads" above).
  enum class Split { kAuto, kTiles, kRows };
  // Forces the split for every thread count > 1 (tests, benchmarks).
  void ForceSplit(Split s) { forced_split_ = s; }
  Split SplitFor(int threads) const;

  // Scratch floats Run(..., threads) needs.
  int64_t scratch_floats(int threads) const { return PerThreadFloats() * std::max(1, threads); }

  // y [N, M, OH, OW] = clamp(conv(x [N, C, H, W]) + bias + residual); the
  // same contract as BsrConvPlan::Run.
  void Run(const float* x, const float* bias, float* y, float* scratch, int threads,
           const float* residual = nullptr) const;

  const BsrConvKernel& kernel() const { return *kernel_; }
  const WinoTransformKernel& transform() const { return *transform_; }
  int64_t tiles() const { return tiles_h_ * tiles_w_; }
  // Tiles per chunk at most (V[16][C][chunk] within kVBudgetFloats).
  int64_t max_chunk() const { return max_chunk_; }
  // Another chunk size (any >= 1: chunks then start anywhere in a tile row)
  // for tests and benchmarks; call before scratch_floats().
  void SetChunk(int64_t tiles) { max_chunk_ = std::max<int64_t>(tiles, 1); }

  // V chunk budget: 128K floats (512 KB); chunks are one GEMM register
  // tile (16 or 48 tiles, bsr_wino_plan.cc), so only convs with more than
  // 512 (AVX-512: 170) input channels get smaller ones.
  static constexpr int64_t kVBudgetFloats = int64_t{1} << 17;
  static constexpr int64_t kMinTilesPerThread = 64;

 private:
  int64_t PerThreadFloats() const;

  const BsrConvKernel* kernel_ = nullptr;
  const WinoTransformKernel* transform_ = nullptr;
  int br_ = 8, bc_ = 8;
  int64_t m_ = 0, c_ = 0;
  std::vector<int32_t> row_ptr_, col_idx_;
  std::vector<float> u_;  // [16][nnz blocks][bc][br]: U_xi's blocks, CKR with one tap
  int64_t batch_ = 1, in_h_ = 0, in_w_ = 0, out_h_ = 0, out_w_ = 0, pad_top_ = 0, pad_left_ = 0;
  int64_t tiles_h_ = 0, tiles_w_ = 0, max_chunk_ = 0;
  float lo_ = -__builtin_inff(), hi_ = __builtin_inff();
  Split forced_split_ = Split::kAuto;
};

}  // namespace wbs::kernels::sparse

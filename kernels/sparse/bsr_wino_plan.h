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
// dispatcher's kernel (AVX-512: 8x48 zmm tile; AVX2: 4x24 ymm, two passes).
// Per multiply it moves more data than the direct conv does (an input value
// is read once per (xi, block) instead of once for 9 taps), so the 2.25x
// fewer multiplies do not turn into 2.25x less time (docs/KERNELS.md).
//
// Blocking (h_wino2). Run() walks the tiles in chunks (by default whole
// 24-tile blocks within kChunkBudgetFloats) and per chunk: (A) the input
// transform writes V[16][C][chunk], (B) each of the 16 GEMMs runs as one
// 1x1 conv of C -> M channels over the chunk's tiles (calls of about
// kGemmGroupBytes of U_xi's blocks, tiles outer inside a call, as
// BsrConvPlan's tiled 1x1 plans), writing M[16][M][chunk], (C) the output
// transform turns M into the outputs with bias, residual and clamp fused.
// With a kernel that takes the tiled 1x1 layout (AVX2) V is stored tiled:
// per 24-tile block, each channel's 24 values contiguous, so a block's
// input for one tile is 768 contiguous bytes (bsr_conv.h x_tile_stride).
// The GEMMs thus read V_xi (C x chunk, 50-200 KB on ResNet-50's planes)
// from L2 while U_xi streams once per chunk. (Before h_wino2 the chunk was
// one 16-tile register tile and every block-row ran its 16 GEMMs on it: one
// kernel call per 16 x 8 x 8 x kept-blocks MACs, and U read once per chunk:
// slower than the direct plan at 50%; docs/KERNELS.md "Winograd".)
//
// Threads. kTiles where there are at least T chunks, else kXi (SplitFor).
// kXi: thread t of P = min(T, 4)
// owns rows a of the 4x4 xi grid (T = 2: a = 0-1 and 2-3) and runs the
// input transform of those rows (3 of the window's 4 input rows each) and
// their 8 GEMMs, so V is written and read by one core and nobody copies
// the input twice; one barrier, then every thread runs the output
// transform of ~1/T of the output channels. M is double-buffered across
// chunks, so that barrier is the only one per chunk. kRows: each thread
// transforms the whole input into its own V and runs all 16 GEMMs and the
// output transform for a run of block-rows holding ~1/T of the kept
// blocks: no barrier, twice the input transform. kTiles: each thread runs
// whole chunks (~1/T of them) on its own V and M: no barrier, nothing
// transformed twice, every thread streams all of U.
//
// F(4x4, 3x3) (Create's tile = 4; h_w4). The same plan with 4 x 4 output
// tiles and 6 x 6 windows (stride 4): 36 GEMMs over the shared BSR
// structure (36/9 = 4x the direct weight's floats), 36 floats of V and of
// M per 16 outputs (F(2x2): 64), 2.25 multiplies per output and channel
// pair (F(2x2): 4). kXi splits the 6 rows of the 6 x 6 grid. Only worth it
// where a chunk fills the GEMM kernel's tile (AVX-512: 48 tiles = 768
// outputs): ResNet-50's 56x56 and 28x28 planes (docs/KERNELS.md).
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
  // `kernel` / `transform` override the dispatcher (tests, benchmarks);
  // `tile` is the output tile edge m of F(m x m, 3x3), 2 or 4 (a given
  // transform must be of that tile).
  static Result<BsrWinoPlan> Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                    const BsrConvKernel* kernel = nullptr,
                                    const WinoTransformKernel* transform = nullptr, int tile = 2);

  // How Run() divides one image over threads (see "Threads" above).
  enum class Split { kAuto, kXi, kRows, kTiles };
  // Forces the split for every thread count > 1 (tests, benchmarks).
  void ForceSplit(Split s) { forced_split_ = s; }
  Split SplitFor(int threads) const;

  // Scratch floats Run(..., threads) needs.
  int64_t scratch_floats(int threads) const;

  // y [N, M, OH, OW] = clamp(conv(x [N, C, H, W]) + bias + residual); the
  // same contract as BsrConvPlan::Run.
  void Run(const float* x, const float* bias, float* y, float* scratch, int threads,
           const float* residual = nullptr) const;

  const BsrConvKernel& kernel() const { return *kernel_; }
  const WinoTransformKernel& transform() const { return *transform_; }
  int64_t tiles() const { return tiles_h_ * tiles_w_; }
  int tile() const { return tile_; }  // output tile edge: 2 or 4
  // Tiles per chunk at most.
  int64_t max_chunk() const { return max_chunk_; }
  // Another chunk size (any >= 1: chunks then start anywhere in a tile row)
  // for tests and benchmarks; call before scratch_floats().
  void SetChunk(int64_t tiles) { max_chunk_ = std::max<int64_t>(tiles, 1); }

  // The default chunk: the most whole 24-tile blocks (at least one) whose
  // V and M take at most this many floats (512 KB, this AVX2 VM's L2):
  // ResNet-50 56x56 48 tiles, 28x28 and 14x14 24 (the 14x14 plane's 49 as
  // 24 + 25, kMergeTiles), 7x7 all 16. Measured at 1 thread, 50%, before
  // the transform rewrite, speed-up over the direct plan: chunks of 24 / 48
  // / 96 / the whole plane 1.22-1.28 / 1.26-1.27 / 1.26-1.32 / 0.50-0.60x on
  // 56x56, 1.46-1.61 / 1.46-1.63 / 1.12-1.42 / 1.02-1.32x on 28x28
  // (docs/KERNELS.md "Winograd").
  static constexpr int64_t kChunkBudgetFloats = int64_t{1} << 17;
  // A last chunk of at most this many tiles joins the one before.
  static constexpr int64_t kMergeTiles = 12;
  // Bytes of U_xi's blocks per GEMM call (BsrConvPlan's kTiledGroupBytes).
  static constexpr int64_t kGemmGroupBytes = int64_t{128} << 10;

 private:
  struct Strides;
  Strides StridesOf() const;

  const BsrConvKernel* kernel_ = nullptr;
  const WinoTransformKernel* transform_ = nullptr;
  int br_ = 8, bc_ = 8;
  int tile_ = 2, win_ = 4, nxi_ = 16;  // output tile edge, window edge, win_^2 GEMMs
  int64_t m_ = 0, c_ = 0;
  std::vector<int32_t> row_ptr_, col_idx_;
  std::vector<float> u_;  // [nxi_][nnz blocks][bc][br]: U_xi's blocks, CKR with one tap
  int64_t batch_ = 1, in_h_ = 0, in_w_ = 0, out_h_ = 0, out_w_ = 0, pad_top_ = 0, pad_left_ = 0;
  int64_t tiles_h_ = 0, tiles_w_ = 0, max_chunk_ = 0;
  bool tiled_ = false;
  float lo_ = -__builtin_inff(), hi_ = __builtin_inff();
  Split forced_split_ = Split::kAuto;
};

}  // namespace wbs::kernels::sparse

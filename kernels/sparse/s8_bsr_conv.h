// Block-sparse (BSR) int8 convolution and Gemm microkernels, bit-exact with
// the int8 contract (docs/int8.md, core/quant_math.h).
//
// Integer semantics (what every kernel here computes, exactly):
//   activations  u8 per tensor, zero point z_x. An s8 input is handled by the
//                plan: x + 128 (flip the top bit) is u8 with zero point
//                z_x + 128, and sum W*(x - z_x) is unchanged.
//   weights      s8 per output channel, zero point 0, in S8BlockSparseWeight
//                quads (kernels/sparse/s8_bsr_weight.h).
//   accumulator  acc[m, q] = bias[m] + sum_{stored blocks, quads, taps, lanes} W * x   (int32,
//                            wrapping) where the plan passes bias[m] = B_q[m] - z_x * row_sum[m]
//                so acc = B_q + sum W*(x - z_x); padding holds z_x (contributes 0).
//   output       Y = clamp(((int64)acc * M[m] + 2^(S[m]-1)) >> S[m] + z_y, lo, hi)
//                (Requantize of core/quant_math.h; S = 0: no rounding term), stored as one
//                byte (u8 when lo >= 0, s8 two's complement otherwise).
//
// Conv. One call computes output block-rows [row_begin, row_end) (br output
// channels each) at flat output positions [q_begin, q_end) of one image,
// over a flat-grid input (S8BsrConvPlan builds it: zero-point-padded stride
// phase planes, as the f32 BsrConvPlan did first): a
// position q is output pixel (q / pitch, q % pitch), valid iff
// q % pitch < out_w, and tap t reads position q + tap_offset[t]. The input
// is in "quad" layout (oneDNN's nChw4c): channel c of position p is byte
//   x[((c / 4) * x_quad_stride + p) * 4 + c % 4]
// so one 32-bit word holds the 4 channels vpdpbusd consumes.
// Valid outputs are stored compactly (index (q/pitch)*out_w + q%pitch within
// the y_plane-sized plane), in y_layout:
//   kNchw    y[m * y_plane + idx]
//   kNchw4c  y[((m / 4) * y_plane + idx) * 4 + m % 4]  (channels >= M of the
//            last quad are written as 0)
//
// Gemm (ONNX Gemm with transB = 1 / MatMul by a constant): Y[n, m] =
// requant(bias[m] + sum_k W[m, k] * X[n, k]) for rows n in [n_begin, n_end),
// block-rows [row_begin, row_end); X row n at x + n * x_stride (K bytes,
// padded with zeros to whole blocks), Y row n at y + n * y_stride.
//
// The AVX-512 and AVX2 kernels read weights repacked by the plan into the
// layout they want (`packed`, see S8WeightFormat).
#pragma once

#include <cstdint>

namespace wbs::kernels::sparse {

enum class S8Layout : uint8_t {
  kNchw,    // plain
  kNchw4c,  // channel quads interleaved (the layout VNNI reads)
};

// Which weight layout a kernel reads (the plan repacks S8BlockSparseWeight).
enum class S8WeightFormat : uint8_t {
  kQuads,     // S8BlockSparseWeight::values() as is (int8)
  kQuadsS16,  // int16 [(qq*taps + t)*br + r][4] = {w0, w2, w1, w3} (AVX2 vpmaddwd pairs)
  kRows,      // int8  [r][bc] per block, taps = 1 (a row-major block: Gemm, VNNI)
  kPairsS16,  // int16 [bc/2][br][2] per block, taps = 1 (Gemm, AVX2)
};

struct S8LaneGroup {  // validity of 16 consecutive flat positions
  uint16_t mask = 0;
  int64_t y_index = 0;  // compact index of the first valid one
};

// Per-output-channel epilogue; arrays hold block_rows * br entries (rows past
// M: bias 0, multiplier 0, shift 0) so kernels read whole blocks unchecked.
struct S8Epilogue {
  const int32_t* bias = nullptr;  // B_q - z_x * row_sum
  const int32_t* multiplier = nullptr;
  const int32_t* shift = nullptr;
  int32_t zero_point = 0, lo = 0, hi = 255;
  // The fast form, valid when `fast` (every channel has S in [32, 53], so its
  // multiplier is < 1): with acc clamped to [acc_lo, acc_hi] — the widest
  // range outside which the output is saturated anyway — the result
  // (acc * M + round_zp) >> S, round_zp = 2^(S-1) + z_y * 2^S, is already
  // inside [lo, hi] and needs no 64-bit clamp nor + z_y.
  bool fast = false;
  // The power-of-two form (the AIE "fix position" mode), valid when
  // `shift_only` (every channel has M = 1, S <= 24): Y = (clamp(acc, acc_lo,
  // acc_hi) + round_zp) >> S in 32 bits, round_zp = 2^(S-1) + z_y * 2^S
  // (S = 0: z_y).
  bool shift_only = false;
  const int32_t* acc_lo = nullptr;
  const int32_t* acc_hi = nullptr;
  const int64_t* round_zp = nullptr;
};

struct S8BsrConvArgs {
  const int32_t* row_ptr = nullptr;
  const int32_t* col_idx = nullptr;
  const void* packed = nullptr;  // weights in the kernel's S8WeightFormat
  int64_t block_bytes = 0;       // bytes per block in `packed`
  int br = 8, bc = 8;
  int64_t out_channels = 0, in_channels = 0;
  int taps = 1;
  const int64_t* tap_offset = nullptr;  // [taps], in positions
  const uint8_t* x = nullptr;
  int64_t x_quad_stride = 0;  // positions per channel-quad plane
  uint8_t* y = nullptr;
  S8Layout y_layout = S8Layout::kNchw;
  int64_t y_plane = 0;  // out_h * out_w
  int64_t pitch = 0, out_w = 0, out_h = 0;
  const S8LaneGroup* lanes = nullptr;  // nullptr iff pitch == out_w
  S8Epilogue ep;
  int64_t row_begin = 0, row_end = 0, q_begin = 0, q_end = 0;
};

struct S8BsrGemmArgs {
  const int32_t* row_ptr = nullptr;
  const int32_t* col_idx = nullptr;
  const void* packed = nullptr;
  int64_t block_bytes = 0;
  int br = 8, bc = 8;
  int64_t out_channels = 0, in_channels = 0;
  const void* x = nullptr;  // u8 rows (int16 rows for kPairsS16 kernels)
  int64_t x_stride = 0;     // elements
  uint8_t* y = nullptr;
  int64_t y_stride = 0;
  S8Epilogue ep;
  int64_t row_begin = 0, row_end = 0, n_begin = 0, n_end = 0;
};

using S8BsrConvFn = void (*)(const S8BsrConvArgs&);
using S8BsrGemmFn = void (*)(const S8BsrGemmArgs&);

// Any br x bc (bc % 4 == 0), kQuads. The source of truth.
void s8_bsrnxn_conv__ref(const S8BsrConvArgs& a);
// br == 8: 8 output channels x 48 positions in 24 zmm int32 accumulators, vpdpbusd; kQuads.
void s8_bsr8xn_conv__avx512vnni(const S8BsrConvArgs& a);
// br == 8: 8 output channels x 8 positions, u8 widened to 16 bit + vpmaddwd
// (exact; vpmaddubsw would saturate); kQuadsS16.
void s8_bsr8xn_conv__avx2(const S8BsrConvArgs& a);

// Input-copy rows of S8BsrConvPlan (AVX-512BW; the plan calls them only with
// the VNNI kernel): dst[k] for k in [0, n) = the word at source position
// k * sx, sx 1 or 2, XOR flip (0x80808080 turns s8 into u8). They read no
// source byte past the last position used.
//   pack4c: nChw4c source, src[p] is position p's word.
//   pack:   four plain channel rows, byte p of s[l] is channel l.
void s8_pack_row4c__avx512(const uint32_t* src, int64_t sx, int64_t n, uint32_t flip,
                           uint32_t* dst);
void s8_pack_row__avx512(const uint8_t* const (&s)[4], int64_t sx, int64_t n, uint32_t flip,
                         uint32_t* dst);

// Any block, kQuads; x u8.
void s8_bsrnxn_gemm__ref(const S8BsrGemmArgs& a);
// 8x8 blocks, kRows; x u8: one vpdpbusd per block and row of X.
void s8_bsr8x8_gemm__avx512vnni(const S8BsrGemmArgs& a);
// 8x8 blocks, kPairsS16; x int16 (the plan widens it).
void s8_bsr8x8_gemm__avx2(const S8BsrGemmArgs& a);

}  // namespace wbs::kernels::sparse

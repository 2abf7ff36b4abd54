// Block-sparse (BSR) f32 convolution microkernels over the flat output grid.
//
// One call computes output block-rows [row_begin, row_end) (br output
// channels each) at flat output positions [q_begin, q_end) of one image:
//
//   y[m, q] = clamp(bias[m] + sum_{stored blocks (i, col)} sum_{ci, t}
//                    W[m, col*bc + ci, t] * x[(col*bc + ci) * x_channel_stride + q + tap_offset[t]]
//                   + residual[m, q], lo, hi)
//
// The flat grid has `pitch` positions per output row; position q is output
// pixel (q / pitch, q % pitch) and is valid iff q % pitch < out_w (columns
// out_w..pitch-1 are computed over padding and dropped). The caller lays the
// input out so that every tap is a constant offset from q (for a padded,
// stride-phase-split copy see bsr_conv_plan.h); then the same kernel serves
// any kernel size, stride, dilation and padding, and rows narrower than a
// vector (7x7, 14x14) still fill whole vectors.
//
// Valid outputs are stored compactly: y[m * y_channel_stride + (q/pitch)*out_w
// + q%pitch]. `lanes` describes validity per group of 16 positions (nullptr
// iff pitch == out_w): lanes[g].mask bit l says q = 16g + l is valid and
// lanes[g].y_index is the compact index of its first valid position.
//
// Preconditions (asserted): q_begin % 16 == 0, q_end <= out_h * pitch; for a
// valid q every input position read is inside x; for any q < q_end and any
// tap, x + ci*x_channel_stride + q + tap_offset[t] may be read (invalid lanes
// are computed on whatever is there: the caller provides slack). Weights are
// a BlockSparseWeight's arrays (core/block_sparse.h, CKR block layout).
#pragma once

#include <cstdint>

namespace wbs::kernels::sparse {

struct LaneGroup {
  uint16_t mask = 0;
  int64_t y_index = 0;
};

// Positions per tile of the tiled 1x1 input copy (BsrConvArgs::x_tile_stride):
// the AVX2 kernel's register tile.
constexpr int64_t kBsrTileQ = 24;

struct BsrS2Vec;  // below

struct BsrConvArgs {
  // Weights (core/block_sparse.h).
  const int32_t* row_ptr = nullptr;
  const int32_t* col_idx = nullptr;
  const float* blocks = nullptr;
  int br = 8, bc = 8;
  int64_t out_channels = 0;  // M: rows of a ragged last block-row past M are not stored
  int64_t in_channels = 0;   // C: channels of a ragged last block-column past C are not read
  int taps = 1;              // kh * kw
  const int64_t* tap_offset = nullptr;  // [taps], in floats
  // Input and output.
  const float* x = nullptr;
  int64_t x_channel_stride = 0;
  // 0: position q of input channel c is x[c * x_channel_stride + q]. Else
  // (the tiled 1x1 copy, taps == 1, only for kernels that say so:
  // BsrConvPlan) x[(q / kBsrTileQ) * x_tile_stride + c * x_channel_stride +
  // q % kBsrTileQ]: a tile's kBsrTileQ positions of consecutive channels are
  // contiguous. Then q_begin % kBsrTileQ == 0 (the plan's chunks and
  // position splits are multiples of 48).
  int64_t x_tile_stride = 0;
  float* y = nullptr;
  int64_t y_channel_stride = 0;
  int64_t pitch = 0, out_w = 0, out_h = 0;
  const LaneGroup* lanes = nullptr;
  const float* bias = nullptr;  // [M] or nullptr
  // nullptr, or a tensor laid out like y (compact), added before the clamp
  // (ResNet's fused Conv + Add + Relu). May alias y.
  const float* residual = nullptr;
  float lo = -__builtin_inff(), hi = __builtin_inff();  // fused clamp (Relu: lo = 0)
  // The piece of work.
  int64_t row_begin = 0, row_end = 0, q_begin = 0, q_end = 0;
  // Optional software prefetch into L2, spread over the call (a hint: a
  // kernel may ignore it; the plan uses it to pipeline the next block-row's
  // weights and the next position chunk's input, bsr_conv_plan.h): first
  // the prefetch_w_bytes at prefetch_w, then prefetch_x_ranges ranges of
  // prefetch_x_bytes each, range k at prefetch_x + k * prefetch_x_stride
  // floats.
  const float* prefetch_w = nullptr;
  int64_t prefetch_w_bytes = 0;
  const float* prefetch_x = nullptr;
  int64_t prefetch_x_ranges = 0, prefetch_x_stride = 0, prefetch_x_bytes = 0;
  // Stride-2 direct input (f32_bsr8xn_conv_s2__avx512 only; nullptr:
  // unused): x is the conv's own input, channel c at x + c *
  // x_channel_stride (no copy, no padding stored); s2_vecs[g] describes
  // the input of the 16-position group g (BsrS2Vec). tap_offset is not read.
  const BsrS2Vec* s2_vecs = nullptr;
};

// Taps (kh * kw) up to which the stride-2 direct kernel takes a conv.
constexpr int kBsrS2MaxTaps = 9;

// One 16-position group of a stride-2 direct call (the pitch is a multiple
// of 16, so the group is one output row's run of columns): for tap t,
// lane l reads float 2 * l of the 32 at off[t] from the channel's start,
// loaded under the 32-bit mask lo[t] | hi[t] << 16 (the floats inside the
// input plane that a valid lane reads; the padding reads as zero, and no
// load passes the plane's edge). Built once by the plan (BsrConvPlan).
struct BsrS2Vec {
  int64_t off[kBsrS2MaxTaps] = {};
  uint16_t lo[kBsrS2MaxTaps] = {}, hi[kBsrS2MaxTaps] = {};
};

using BsrConvFn = void (*)(const BsrConvArgs&);

// Any br x bc. The source of truth.
void f32_bsrnxn_conv__ref(const BsrConvArgs& a);
// br == 8, any bc: 4 output channels x 16 positions in ymm accumulators.
void f32_bsr8xn_conv__avx2(const BsrConvArgs& a);
// br == 8, any bc: 8 output channels x 48 positions in zmm accumulators; a
// tail of at most 4 valid positions (a 7x7 plane's 49th, a Gemm's single
// row) is vectorized over the 8 output channels instead.
void f32_bsr8xn_conv__avx512(const BsrConvArgs& a);
// Any br x bc: the same, a block-row in groups of up to 8 output channels.
void f32_bsrnxn_conv__avx512(const BsrConvArgs& a);
// br == 8, any bc, stride 2 read in place (BsrConvArgs::s2_vecs): the same
// 8 x 48 register tile, each 16-position input vector de-interleaved
// (vpermt2ps) from two masked loads of 32 consecutive floats of one input
// row; the load masks zero the padding (no copy, no stored pad).
void f32_bsr8xn_conv_s2__avx512(const BsrConvArgs& a);

// One input plane of the plan's scratch layout (bsr_conv_plan.h), for input
// channels [c_begin, c_end):
//
//   dst[c * dst_channel_stride + r * cols + col] = x[c, iy, ix] (0 outside x),
//   iy = r * sy + row_off, ix = col * sx + col_off,  0 <= r < rows, 0 <= col < cols
//
// i.e. a zero-padded, strided, shifted window of every channel.
struct PackPlaneArgs {
  const float* x = nullptr;  // [C, in_h, in_w]
  int64_t in_h = 0, in_w = 0;
  float* dst = nullptr;  // this plane of channel 0
  int64_t dst_channel_stride = 0;
  int64_t rows = 0, cols = 0, sy = 1, sx = 1, row_off = 0, col_off = 0;
  int64_t c_begin = 0, c_end = 0;
  // Optional: also write the plane of col_off + 1 (dst_odd) and of
  // col_off - 1 (dst_prev) here, from the same loads. Stride 2: the next
  // column phase, and the odd phase one column to the right; stride 1: this
  // plane one column to the left / right. So the shifted planes of a 3x3
  // conv (kernel columns 0, 1, 2 = col_off - 1, col_off, col_off + 1) come
  // from one pass over the input.
  float* dst_odd = nullptr;
  float* dst_prev = nullptr;
};
using PackPlaneFn = void (*)(const PackPlaneArgs&);
void f32_pack_plane__ref(const PackPlaneArgs& a);
// Masked loads for the padding, vpermt2ps de-interleaves stride 2.
void f32_pack_plane__avx512(const PackPlaneArgs& a);
// Masked loads for the padding (unmasked inside the row), shufps + vpermpd
// de-interleave stride 2; other strides go to the reference.
void f32_pack_plane__avx2(const PackPlaneArgs& a);

}  // namespace wbs::kernels::sparse

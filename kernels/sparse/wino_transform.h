// Winograd F(2x2, 3x3) input and output transforms, the microkernels around
// the 16 block-sparse GEMMs of BsrWinoPlan (bsr_wino_plan.h).
//
// Tiles. The output plane OH x OW is cut into TH x TW tiles of 2 x 2 outputs
// (TH = ceil(OH / 2), TW = ceil(OW / 2); odd sizes get edge tiles whose
// extra row/column is computed and dropped). Tile t = ty * TW + tx reads the
// 4 x 4 input window d at rows 2*ty - pad_top + 0..3, columns 2*tx - pad_left
// + 0..3 (0 outside the input). A transform call covers the linear tile range
// [t_begin, t_end), which may span tile rows; tile t is column t - t_begin
// of the scratch matrices.
//
// Input transform (per channel c and tile): V = B^T d B, 16 values, xi = 4a + b
// for entry (a, b), only the rows a_begin <= a < a_end of it (BsrWinoPlan
// gives each thread whole rows of the 16 GEMMs; a row a needs only 3 of the
// window's 4 input rows, 2 for a = 0 and 3):
//
//   v[xi * v_xi_stride + c * v_channel_stride + (t - t_begin)] = V[a][b]
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//
// Output transform (per channel c of the call and tile): Y = A^T M A, 2 x 2,
// with the same fusions as BsrConvArgs (bias, residual laid out like y,
// clamp), outputs outside OH x OW dropped:
//
//   y[c * y_channel_stride + (2ty + u) * OW + 2tx + v] =
//       clamp(Y[u][v] + bias[c] + residual[same index], lo, hi)
//   M[a][b] = m[(4a + b) * m_xi_stride + c * m_channel_stride + (t - t_begin)]
//   A^T = [1 1 1 0; 0 1 -1 -1]
//
// Callers pass y, bias and residual already offset to the call's first
// channel. Preconditions (asserted): t_begin <= t_end <= TH * TW. Slack: a
// kernel may write (input transform) or read (output transform) up to
// kWinoSlack floats past the last tile of each (xi, channel) row of v / m
// (whole-vector stores and loads for partial groups). The input transform
// writes the channels in ascending order, so a channel's slack may lie in
// the next channel's row (BsrWinoPlan's tiled V: rows t_end - t_begin <= 24
// apart); the last channel's row needs kWinoSlack floats after it. y and x
// are touched only inside the planes.
#pragma once

#include <cstdint>

namespace wbs::kernels::sparse {

inline constexpr int64_t kWinoSlack = 15;

struct WinoInputArgs {
  const float* x = nullptr;  // [C, in_h, in_w]
  int64_t in_h = 0, in_w = 0, pad_top = 0, pad_left = 0;
  int64_t tiles_w = 0;  // TW
  int64_t t_begin = 0, t_end = 0;
  int64_t c_begin = 0, c_end = 0;  // channels to transform
  int a_begin = 0, a_end = 4;      // rows a of V (xi = 4a + b) to write
  float* v = nullptr;
  int64_t v_xi_stride = 0, v_channel_stride = 0;
};

struct WinoOutputArgs {
  const float* m = nullptr;
  int64_t m_xi_stride = 0, m_channel_stride = 0;
  int64_t channels = 0;
  float* y = nullptr;  // channel 0 of the call
  int64_t y_channel_stride = 0, out_h = 0, out_w = 0;
  int64_t tiles_w = 0;
  int64_t t_begin = 0, t_end = 0;
  const float* bias = nullptr;      // [channels] or nullptr
  const float* residual = nullptr;  // like y or nullptr; may alias y
  float lo = -__builtin_inff(), hi = __builtin_inff();
};

using WinoInputFn = void (*)(const WinoInputArgs&);
using WinoOutputFn = void (*)(const WinoOutputArgs&);

// The source of truth: scalar loops over tiles.
void f32_wino2x3_input__ref(const WinoInputArgs& a);
void f32_wino2x3_output__ref(const WinoOutputArgs& a);
// 8 tiles of a tile row per ymm: even/odd input columns de-interleaved
// with vshufps + vpermpd, outputs re-interleaved with vunpck + vperm2f128;
// masked loads and stores for padding, edges and partial groups.
void f32_wino2x3_input__avx2(const WinoInputArgs& a);
void f32_wino2x3_output__avx2(const WinoOutputArgs& a);
// The same on 16 tiles per zmm: even/odd columns split and outputs
// re-interleaved by vpermt2ps; masked loads and stores.
void f32_wino2x3_input__avx512(const WinoInputArgs& a);
void f32_wino2x3_output__avx512(const WinoOutputArgs& a);

// Winograd F(4x4, 3x3) (Lavin-Gray, points 0, 1, -1, 2, -2, inf): the same
// contracts with 4 x 4 output tiles (TH = ceil(OH / 4), TW = ceil(OW / 4)),
// 6 x 6 input windows at rows 4*ty - pad_top + 0..5, columns 4*tx -
// pad_left + 0..5, and 36 entries xi = 6a + b (a_begin..a_end are rows of
// the 6 x 6 grid, 0 <= a_begin <= a_end <= 6):
//
//   B^T = [4  0 -5  0 1 0;   A^T = [1 1  1 1  1 0;
//          0 -4 -4  1 1 0;          0 1 -1 2 -2 0;
//          0  4 -4 -1 1 0;          0 1  1 4  4 0;
//          0 -2 -1  2 1 0;          0 1 -1 8 -8 1]
//          0  2 -1 -2 1 0;
//          0  4  0 -5 0 1]
//
// Every kernel forms B^T d B and A^T M A by the combinations of
// wino4_combine.h (rows first, then columns), whose only multiplies are by
// powers of two: exact, so the kernels agree bit for bit whether or not
// the compiler contracts them into FMAs. Nothing is written or read past
// a row's last tile (kWinoSlack is not used).
void f32_wino4x3_input__ref(const WinoInputArgs& a);
void f32_wino4x3_output__ref(const WinoOutputArgs& a);
// 16 tiles of a tile row per zmm: the window's 6 columns of 16 tiles split
// out of 66 raw columns by two levels of vpermt2ps (stride 4) and one more
// for columns 4 and 5; outputs re-interleaved likewise; masked loads and
// stores. Planes of <= 7 tiles per row: two whole tile rows per zmm.
void f32_wino4x3_input__avx512(const WinoInputArgs& a);
void f32_wino4x3_output__avx512(const WinoOutputArgs& a);

// The 36 transformed 3x3 kernels of one channel pair, u[6a + b] = (G g
// G^T)[a][b], G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6;
// 1/24 -1/12 1/6; 0 0 1], computed in double and rounded once.
void Wino4WeightTransform(const float g[9], float u[36]);

// The 16 transformed 3x3 kernels of one (output, input) channel pair:
// u[4a + b] = (G g G^T)[a][b], g[ky * 3 + kx] (row-major 3x3),
// G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. Done once per plan.
void WinoWeightTransform(const float g[9], float u[16]);

}  // namespace wbs::kernels::sparse

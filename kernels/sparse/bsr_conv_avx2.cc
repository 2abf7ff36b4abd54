// f32_bsr8xn_conv__avx2: compiled with -mavx2 -mfma (CMakeLists.txt); only
// called after the dispatcher saw avx2 and fma.
//
// Register tile: 4 of the block's 8 output channels x 2 ymm of 8 positions =
// 8 accumulators (two passes per block-row); per (input channel, tap): 2
// loads, 4 broadcasts, 8 FMAs. Partial tiles
// and grids with dropped columns go through a small stack buffer (this is
// the fallback path; AVX2 has no cheap lane compression).
#include <immintrin.h>

#include <algorithm>
#include <cassert>

#include "kernels/sparse/bsr_conv.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int kRows = 8;
constexpr int kLanes = 8;
constexpr int kTile = 16;  // positions per tile; one LaneGroup

inline __m256i LoadMask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(n, 0, 8))), idx);
}

// Computes rows h0 .. h0+3 of block-row i (AVX2 has 16 ymm registers: 4
// rows x 2 vectors = 8 named accumulators + 2 inputs + 1 broadcast fit; all
// 8 rows would spill every step).
template <bool kFull>
inline void Tile(const BsrConvArgs& a, int64_t i, int h0, int64_t q, int64_t n) {
#define WBS_ROWS4(X) X(0) X(1) X(2) X(3)
#define WBS_INIT(r)                                                                         \
  const int64_t ch##r = i * kRows + h0 + r;                                                 \
  __m256 a##r##0 = _mm256_set1_ps(a.bias && ch##r < a.out_channels ? a.bias[ch##r] : 0.0f); \
  __m256 a##r##1 = a##r##0;
  WBS_ROWS4(WBS_INIT)
#undef WBS_INIT
  const __m256i m0 = LoadMask(n), m1 = LoadMask(n - kLanes);
  const int64_t bs = int64_t{kRows} * a.bc * a.taps;
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs + h0;
    const float* xc = a.x + c0 * a.x_channel_stride + q;
    for (int64_t ci = 0; ci < nci; ++ci, xc += a.x_channel_stride) {
      for (int t = 0; t < a.taps; ++t, w += kRows) {
        const float* xp = xc + a.tap_offset[t];
        __m256 v0, v1;
        if (kFull) {
          v0 = _mm256_loadu_ps(xp);
          v1 = _mm256_loadu_ps(xp + kLanes);
        } else {
          v0 = _mm256_maskload_ps(xp, m0);
          v1 = _mm256_maskload_ps(xp + kLanes, m1);
        }
#define WBS_FMA(r)                                \
  {                                               \
    const __m256 wr = _mm256_broadcast_ss(w + r); \
    a##r##0 = _mm256_fmadd_ps(wr, v0, a##r##0);   \
    a##r##1 = _mm256_fmadd_ps(wr, v1, a##r##1);   \
  }
        WBS_ROWS4(WBS_FMA)
#undef WBS_FMA
      }
    }
  }
#undef WBS_ROWS4
  const __m256 acc[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
  const __m256 lo = _mm256_set1_ps(a.lo), hi = _mm256_set1_ps(a.hi);
  const int rows = static_cast<int>(std::clamp<int64_t>(a.out_channels - i * kRows - h0, 0, 4));
  const uint32_t valid =
      (a.lanes ? a.lanes[q / kTile].mask : 0xFFFFu) & (n >= kTile ? 0xFFFFu : (1u << n) - 1);
  const int64_t ybase = a.lanes ? a.lanes[q / kTile].y_index : q;
  for (int r = 0; r < rows; ++r) {
    const int64_t off = (i * kRows + h0 + r) * a.y_channel_stride + ybase;
    float* yrow = a.y + off;
    const float* rrow = a.residual ? a.residual + off : nullptr;
    if (valid == 0xFFFFu) {
      __m256 r0 = acc[r][0], r1 = acc[r][1];
      if (rrow) {
        r0 = _mm256_add_ps(r0, _mm256_loadu_ps(rrow));
        r1 = _mm256_add_ps(r1, _mm256_loadu_ps(rrow + kLanes));
      }
      _mm256_storeu_ps(yrow, _mm256_min_ps(_mm256_max_ps(r0, lo), hi));
      _mm256_storeu_ps(yrow + kLanes, _mm256_min_ps(_mm256_max_ps(r1, lo), hi));
      continue;
    }
    alignas(32) float buf[kTile];
    _mm256_store_ps(buf, acc[r][0]);
    _mm256_store_ps(buf + kLanes, acc[r][1]);
    int k = 0;
    for (int l = 0; l < kTile; ++l) {
      if (!(valid >> l & 1u)) continue;
      const float v = rrow ? buf[l] + rrow[k] : buf[l];
      yrow[k++] = std::min(std::max(v, a.lo), a.hi);
    }
  }
}

}  // namespace

void f32_bsr8xn_conv__avx2(const BsrConvArgs& a) {
  assert(a.br == kRows && a.q_begin % kTile == 0 && a.q_end <= a.out_h * a.pitch);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    int64_t q = a.q_begin;
    for (; q + kTile <= a.q_end; q += kTile)
      for (int h0 = 0; h0 < kRows; h0 += 4) Tile<true>(a, i, h0, q, kTile);
    if (q < a.q_end)
      for (int h0 = 0; h0 < kRows; h0 += 4) Tile<false>(a, i, h0, q, a.q_end - q);
  }
}

}  // namespace wbs::kernels::sparse

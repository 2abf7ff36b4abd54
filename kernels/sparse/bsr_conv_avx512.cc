// f32_bsr8xn_conv__avx512: compiled with -mavx512f (CMakeLists.txt); only
// called after the dispatcher saw avx512f.
//
// Register tile: 8 output channels x kVecs vectors of 16 positions = 16 zmm
// accumulators. Per (input channel, tap) the kernel loads kVecs input vectors
// and issues 8 x kVecs FMAs whose weight operand is a broadcast from the
// packed block (CKR layout puts the 8 weights of one (ci, tap) side by side),
// so the FMA:load ratio is 16:10 and the loop runs at the FMA ports' rate.
#include <immintrin.h>

#include <algorithm>
#include <cassert>

#include "kernels/sparse/bsr_conv.h"

// GCC 12 reports the accumulator array as maybe-uninitialized inside the
// min/max intrinsics (it is fully written before use); a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::sparse {
namespace {

constexpr int kRows = 8;
constexpr int kLanes = 16;
constexpr int kVecs = 2;

inline __mmask16 TailMask(int64_t n) {
  return n >= kLanes ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

inline void StoreVec(const BsrConvArgs& a, float* yrow, int64_t q, __mmask16 tail, __m512 v) {
  if (!a.lanes) {
    _mm512_mask_storeu_ps(yrow + q, tail, v);
    return;
  }
  const LaneGroup& g = a.lanes[q / kLanes];
  const __mmask16 m = __mmask16(g.mask & tail);
  if (m == 0xFFFF) {
    _mm512_storeu_ps(yrow + g.y_index, v);
    return;
  }
  // Register-form compress (memory-form vcompressps is microcoded on some
  // cores), then a prefix-masked store.
  const __m512 packed = _mm512_maskz_compress_ps(m, v);
  const int n = __builtin_popcount(m);
  _mm512_mask_storeu_ps(yrow + g.y_index, TailMask(n), packed);
}

template <int V>
inline void Tile(const BsrConvArgs& a, int64_t i, int64_t q, const __mmask16 (&lm)[kVecs]) {
  __m512 acc[kRows][V];
  for (int r = 0; r < kRows; ++r) {
    const int64_t m = i * kRows + r;
    const __m512 b = _mm512_set1_ps(a.bias && m < a.out_channels ? a.bias[m] : 0.0f);
    for (int u = 0; u < V; ++u) acc[r][u] = b;
  }
  const int64_t bs = int64_t{kRows} * a.bc * a.taps;
  const int taps = a.taps;
  const int64_t* off = a.tap_offset;
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs;
    const float* xc = a.x + c0 * a.x_channel_stride + q;
    for (int64_t ci = 0; ci < nci; ++ci, xc += a.x_channel_stride) {
      for (int t = 0; t < taps; ++t, w += kRows) {
        const float* xp = xc + off[t];
        __m512 v[V];
        for (int u = 0; u < V; ++u) v[u] = _mm512_maskz_loadu_ps(lm[u], xp + u * kLanes);
        for (int r = 0; r < kRows; ++r) {
          const __m512 wr = _mm512_set1_ps(w[r]);
          for (int u = 0; u < V; ++u) acc[r][u] = _mm512_fmadd_ps(wr, v[u], acc[r][u]);
        }
      }
    }
  }
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  const int rows = static_cast<int>(std::min<int64_t>(kRows, a.out_channels - i * kRows));
  for (int r = 0; r < rows; ++r) {
    float* yrow = a.y + (i * kRows + r) * a.y_channel_stride;
    for (int u = 0; u < V; ++u)
      StoreVec(a, yrow, q + u * kLanes, lm[u],
               _mm512_min_ps(_mm512_max_ps(acc[r][u], lo), hi));
  }
}

}  // namespace

void f32_bsr8xn_conv__avx512(const BsrConvArgs& a) {
  assert(a.br == kRows && a.q_begin % kLanes == 0 && a.q_end <= a.out_h * a.pitch);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    int64_t q = a.q_begin;
    for (; q + kVecs * kLanes <= a.q_end; q += kVecs * kLanes) {
      const __mmask16 lm[kVecs] = {0xFFFF, 0xFFFF};
      Tile<kVecs>(a, i, q, lm);
    }
    if (q < a.q_end) {
      const int64_t n = a.q_end - q;
      const __mmask16 lm[kVecs] = {TailMask(n), TailMask(n - kLanes)};
      if (n <= kLanes)
        Tile<1>(a, i, q, lm);
      else
        Tile<kVecs>(a, i, q, lm);
    }
  }
}

}  // namespace wbs::kernels::sparse

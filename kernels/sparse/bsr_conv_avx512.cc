// f32_bsr8xn_conv__avx512: compiled with -mavx512f (CMakeLists.txt); only
// called after the dispatcher saw avx512f.
//
// Register tile: 8 output channels x kVecs (3) vectors of 16 positions = 24 zmm
// accumulators. Per (input channel, tap) the kernel loads kVecs input vectors
// and issues 8 x kVecs FMAs whose weight operand is a broadcast from the
// packed block (CKR layout puts the 8 weights of one (ci, tap) side by side),
// so the FMA:load ratio is 24:11 and the loop runs at the FMA ports' rate.
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
constexpr int kVecs = 3;

inline __mmask16 TailMask(int64_t n) {
  return n >= kLanes ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Adds the residual (if any), clamps and stores the valid lanes of v.
inline void StoreVec(const BsrConvArgs& a, float* yrow, const float* rrow, int64_t q,
                     __mmask16 tail, __m512 v, __m512 lo, __m512 hi) {
  if (!a.lanes) {
    if (rrow) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, rrow + q));
    _mm512_mask_storeu_ps(yrow + q, tail, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
    return;
  }
  const LaneGroup& g = a.lanes[q / kLanes];
  const __mmask16 m = __mmask16(g.mask & tail);
  if (m == 0xFFFF) {
    if (rrow) v = _mm512_add_ps(v, _mm512_loadu_ps(rrow + g.y_index));
    _mm512_storeu_ps(yrow + g.y_index, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
    return;
  }
  // Register-form compress (memory-form vcompressps is microcoded on some
  // cores), then a prefix-masked store; the valid lanes are contiguous in y.
  __m512 packed = _mm512_maskz_compress_ps(m, v);
  const __mmask16 prefix = TailMask(__builtin_popcount(m));
  if (rrow) packed = _mm512_add_ps(packed, _mm512_maskz_loadu_ps(prefix, rrow + g.y_index));
  _mm512_mask_storeu_ps(yrow + g.y_index, prefix, _mm512_min_ps(_mm512_max_ps(packed, lo), hi));
}

// The accumulators are named variables, not an array: GCC 12 keeps an
// array of __m512 in memory and spills all 16 every (ci, tap) step.
#define WBS_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

template <int V>
inline void Tile(const BsrConvArgs& a, int64_t i, int64_t q, const __mmask16 (&lm)[kVecs]) {
  static_assert(V >= 1 && V <= kVecs);
#define WBS_INIT(r)                                                                       \
  const int64_t m##r = i * kRows + r;                                                     \
  __m512 a##r##0 = _mm512_set1_ps(a.bias && m##r < a.out_channels ? a.bias[m##r] : 0.0f); \
  __m512 a##r##1 = a##r##0;                                                               \
  __m512 a##r##2 = a##r##0;
  WBS_ROWS(WBS_INIT)
#undef WBS_INIT
  const int64_t bs = int64_t{kRows} * a.bc * a.taps;
  const int taps = a.taps;
  const int64_t* off = a.tap_offset;
  const __mmask16 l0 = lm[0], l1 = lm[1], l2 = lm[2];
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs;
    const float* xc = a.x + c0 * a.x_channel_stride + q;
    for (int64_t ci = 0; ci < nci; ++ci, xc += a.x_channel_stride) {
      for (int t = 0; t < taps; ++t, w += kRows) {
        const float* xp = xc + off[t];
        const __m512 v0 = _mm512_maskz_loadu_ps(l0, xp);
        if constexpr (V == 3) {
          const __m512 v1 = _mm512_maskz_loadu_ps(l1, xp + kLanes);
          const __m512 v2 = _mm512_maskz_loadu_ps(l2, xp + 2 * kLanes);
#define WBS_FMA3(r)                             \
  {                                             \
    const __m512 wr = _mm512_set1_ps(w[r]);     \
    a##r##0 = _mm512_fmadd_ps(wr, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(wr, v1, a##r##1); \
    a##r##2 = _mm512_fmadd_ps(wr, v2, a##r##2); \
  }
          WBS_ROWS(WBS_FMA3)
#undef WBS_FMA3
        } else if constexpr (V == 2) {
          const __m512 v1 = _mm512_maskz_loadu_ps(l1, xp + kLanes);
#define WBS_FMA2(r)                             \
  {                                             \
    const __m512 wr = _mm512_set1_ps(w[r]);     \
    a##r##0 = _mm512_fmadd_ps(wr, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(wr, v1, a##r##1); \
  }
          WBS_ROWS(WBS_FMA2)
#undef WBS_FMA2
        } else {
#define WBS_FMA1(r) a##r##0 = _mm512_fmadd_ps(_mm512_set1_ps(w[r]), v0, a##r##0);
          WBS_ROWS(WBS_FMA1)
#undef WBS_FMA1
        }
      }
    }
  }
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  const int64_t rows = std::min<int64_t>(kRows, a.out_channels - i * kRows);
#define WBS_STORE(r)                                                          \
  if (r < rows) {                                                             \
    const int64_t off = (i * kRows + r) * a.y_channel_stride;                 \
    float* yrow = a.y + off;                                                  \
    const float* rrow = a.residual ? a.residual + off : nullptr;              \
    StoreVec(a, yrow, rrow, q, l0, a##r##0, lo, hi);                          \
    if (V >= 2) StoreVec(a, yrow, rrow, q + kLanes, l1, a##r##1, lo, hi);     \
    if (V >= 3) StoreVec(a, yrow, rrow, q + 2 * kLanes, l2, a##r##2, lo, hi); \
  }
  WBS_ROWS(WBS_STORE)
#undef WBS_STORE
}
#undef WBS_ROWS

}  // namespace

void f32_bsr8xn_conv__avx512(const BsrConvArgs& a) {
  assert(a.br == kRows && a.q_begin % kLanes == 0 && a.q_end <= a.out_h * a.pitch);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    int64_t q = a.q_begin;
    for (; q + kVecs * kLanes <= a.q_end; q += kVecs * kLanes) {
      const __mmask16 lm[kVecs] = {0xFFFF, 0xFFFF, 0xFFFF};
      Tile<kVecs>(a, i, q, lm);
    }
    if (q < a.q_end) {
      const int64_t n = a.q_end - q;
      const __mmask16 lm[kVecs] = {TailMask(n), TailMask(n - kLanes), TailMask(n - 2 * kLanes)};
      if (n <= kLanes)
        Tile<1>(a, i, q, lm);
      else if (n <= 2 * kLanes)
        Tile<2>(a, i, q, lm);
      else
        Tile<3>(a, i, q, lm);
    }
  }
}

}  // namespace wbs::kernels::sparse

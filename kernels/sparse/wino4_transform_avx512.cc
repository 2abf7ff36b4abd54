// f32_wino4x3_{input,output}__avx512: compiled with -mavx512f/dq (CMakeLists.txt);
// only called after the dispatcher saw avx512f.
//
// Lane k of a zmm is tile tx0 + k of a tile row (16 tiles per group). The
// input transform combines the window's rows on the raw input columns (66
// per row and group: 5 zmm, the last with 2 live lanes), then splits each
// combined row into the window's 6 columns (column j of tile k is raw
// column 4k + j): two levels of vpermt2ps (even/odd, twice) give columns
// 0..3 of the 64 raw columns, and one more each shifts columns 0 and 1 by
// a tile, with raw columns 64 and 65, into columns 4 and 5. The output
// transform re-interleaves its 4 columns per tile the other way (pairs,
// then pairs of pairs). Padding, plane edges and partial groups by masked
// loads and stores: nothing is touched outside the planes or past a row's
// last tile. Planes of at most 7 tiles per row take two tile rows per zmm
// (kPairMaxTiles). The combinations are wino4_combine.h's, so the results are
// the reference's bit for bit (tests/unit/bsr_wino_test.cc).
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "kernels/sparse/wino4_combine.h"
#include "kernels/sparse/wino_transform.h"

// GCC 12 reports the maskz intrinsics' internal operand as
// maybe-uninitialized (as in bsr_conv_avx512.cc); a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kLanes = 16;
constexpr int kRaw = 5;  // zmm of raw columns per row and group (66 of 80 used)

// Lanes l of 16 with lo <= base + l < hi.
inline __mmask16 RangeMask(int64_t base, int64_t lo, int64_t hi) {
  const int64_t l0 = std::clamp<int64_t>(lo - base, 0, kLanes);
  const int64_t l1 = std::clamp<int64_t>(hi - base, 0, kLanes);
  return __mmask16(((1u << l1) - 1) & ~((1u << l0) - 1));
}

inline __mmask16 TailMask(int64_t n) { return RangeMask(0, 0, n); }

// Columns j = 0..5 of the 16 tiles from one combined raw row r[0..4]
// (column j of tile k = raw column 4k + j).
inline void SplitColumns(const __m512* r, __m512* col) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i i4 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
  const __m512i i5 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
  const __m512 e01 = _mm512_permutex2var_ps(r[0], ie, r[1]);  // raw 0, 2, .., 30
  const __m512 o01 = _mm512_permutex2var_ps(r[0], io, r[1]);  // raw 1, 3, .., 31
  const __m512 e23 = _mm512_permutex2var_ps(r[2], ie, r[3]);  // raw 32, .., 62
  const __m512 o23 = _mm512_permutex2var_ps(r[2], io, r[3]);
  col[0] = _mm512_permutex2var_ps(e01, ie, e23);      // raw 0, 4, 8, ..
  col[2] = _mm512_permutex2var_ps(e01, io, e23);      // raw 2, 6, ..
  col[1] = _mm512_permutex2var_ps(o01, ie, o23);      // raw 1, 5, ..
  col[3] = _mm512_permutex2var_ps(o01, io, o23);      // raw 3, 7, ..
  col[4] = _mm512_permutex2var_ps(col[0], i4, r[4]);  // raw 4, 8, .., 64
  col[5] = _mm512_permutex2var_ps(col[1], i5, r[4]);  // raw 5, 9, .., 65
}

template <int A>
inline void CombineRows(const __m512 (*raw)[kRaw], __m512* e) {
  for (int i = 0; i < kRaw; ++i) {
    const __m512 d[6] = {raw[0][i], raw[1][i], raw[2][i], raw[3][i], raw[4][i], raw[5][i]};
    e[i] = wino4::InRow<A>(d);
  }
}

// Row A of V for the group (when a0 <= A < a1): combined raw row, its 6
// columns, their 6 combinations, stored to the first lanes of `sm`. With
// kPair the lanes are first packed by `pack` (two tile rows, below).
template <int A, bool kPair>
inline void VRow(int a0, int a1, const __m512 (*raw)[kRaw], float* v, int64_t xi_stride,
                 __mmask16 sm, __m512i pack) {
  if (A < a0 || A >= a1) return;
  __m512 e[kRaw], col[6], vr[6];
  CombineRows<A>(raw, e);
  SplitColumns(e, col);
  wino4::In(col, vr);
  float* va = v + 6 * A * xi_stride;
  for (int k = 0; k < 6; ++k) {
    if (kPair) vr[k] = _mm512_permutexvar_ps(pack, vr[k]);
    _mm512_mask_storeu_ps(va + k * xi_stride, sm, vr[k]);
  }
}

template <bool kPair>
inline void VRows(int a0, int a1, const __m512 (*raw)[kRaw], float* v, int64_t xi_stride,
                  __mmask16 sm, __m512i pack) {
  VRow<0, kPair>(a0, a1, raw, v, xi_stride, sm, pack);
  VRow<1, kPair>(a0, a1, raw, v, xi_stride, sm, pack);
  VRow<2, kPair>(a0, a1, raw, v, xi_stride, sm, pack);
  VRow<3, kPair>(a0, a1, raw, v, xi_stride, sm, pack);
  VRow<4, kPair>(a0, a1, raw, v, xi_stride, sm, pack);
  VRow<5, kPair>(a0, a1, raw, v, xi_stride, sm, pack);
}

// Narrow planes (at most kPairMaxTiles tiles per row: ResNet-50's 28x28
// has 7) would fill 7 of 16 lanes; there a group is two whole tile rows,
// lanes 0..TW-1 tile row ty and lanes 8..8+TW-1 tile row ty + 1 (raw
// columns 0..31 of each: 4 TW + 2 <= 30). The column split's shift for
// columns 4 and 5 then reads lane k + 1, which stays inside each half as
// lanes 7 and 15 are unused. V's lanes are packed to TW + TW consecutive
// tiles before the stores; M is read with an expanding load.
constexpr int64_t kPairMaxTiles = 7;
inline __m512i PackIndex(int64_t tw) {
  alignas(64) int32_t idx[16];
  for (int l = 0; l < 16; ++l) idx[l] = l < tw ? l : l < 2 * tw ? l - tw + 8 : 0;
  return _mm512_load_si512(idx);
}

}  // namespace

void f32_wino4x3_input__avx512(const WinoInputArgs& a) {
  assert(a.t_begin <= a.t_end && 0 <= a.a_begin && a.a_begin <= a.a_end && a.a_end <= 6);
  // Locals, so that the stores through v do not make GCC reload them.
  const int a0 = a.a_begin, a1 = a.a_end;
  const int64_t xi_stride = a.v_xi_stride, in_h = a.in_h, in_w = a.in_w, tiles_w = a.tiles_w;
  // Input rows the rows a0..a1-1 of V read: row 0 only for a = 0, row 5
  // only for a = 5 (rows 1..4 for all).
  const bool need0 = a0 == 0, need5 = a1 == 6;
  const bool narrow = tiles_w <= kPairMaxTiles;
  const __m512i pack = narrow ? PackIndex(tiles_w) : _mm512_setzero_si512();
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* xc = a.x + c * in_h * in_w;
    float* vc = a.v + c * a.v_channel_stride;
    int64_t ty = a.t_begin / tiles_w, tx = a.t_begin % tiles_w;
    for (int64_t t = a.t_begin; t < a.t_end;) {
      if (narrow && tx == 0 && t + 2 * tiles_w <= a.t_end) {
        // Two whole tile rows (kPairMaxTiles).
        const int64_t iy0 = 4 * ty - a.pad_top, b = -a.pad_left;
        const int64_t lo = std::max<int64_t>(0, b), hi = std::min(in_w, b + 4 * tiles_w + 2);
        const __mmask16 m0 = RangeMask(b, lo, hi), m1 = RangeMask(b + kLanes, lo, hi);
        __m512 raw[6][kRaw];
        for (int r = 0; r < 6; ++r) {
          const bool want = (r != 0 || need0) && (r != 5 || need5);
          for (int h = 0; h < 2; ++h) {
            const int64_t iy = iy0 + 4 * h + r;
            const bool load = want && iy >= 0 && iy < in_h;
            const float* row = load ? xc + iy * in_w + b : nullptr;
            raw[r][2 * h] = load ? _mm512_maskz_loadu_ps(m0, row) : _mm512_setzero_ps();
            raw[r][2 * h + 1] =
                load ? _mm512_maskz_loadu_ps(m1, row + kLanes) : _mm512_setzero_ps();
          }
          raw[r][4] = _mm512_setzero_ps();
        }
        VRows<true>(a0, a1, raw, vc + (t - a.t_begin), xi_stride, TailMask(2 * tiles_w), pack);
        t += 2 * tiles_w;
        ty += 2;
        continue;
      }
      const int64_t nv = std::min({kLanes, tiles_w - tx, a.t_end - t});
      const int64_t iy0 = 4 * ty - a.pad_top, b = 4 * tx - a.pad_left;
      const int64_t lo = std::max<int64_t>(0, b), hi = std::min(in_w, b + 4 * nv + 2);
      __mmask16 cm[kRaw];
      for (int i = 0; i < kRaw; ++i) cm[i] = RangeMask(b + kLanes * i, lo, hi);
      __m512 raw[6][kRaw];
      for (int r = 0; r < 6; ++r) {
        const int64_t iy = iy0 + r;
        const bool load = iy >= 0 && iy < in_h && (r != 0 || need0) && (r != 5 || need5);
        const float* row = load ? xc + iy * in_w + b : nullptr;
        for (int i = 0; i < kRaw; ++i)
          raw[r][i] = load ? _mm512_maskz_loadu_ps(cm[i], row + kLanes * i) : _mm512_setzero_ps();
      }
      VRows<false>(a0, a1, raw, vc + (t - a.t_begin), xi_stride, TailMask(nv), pack);
      t += nv;
      tx += nv;
      if (tx == tiles_w) {
        tx = 0;
        ++ty;
      }
    }
  }
}

void f32_wino4x3_output__avx512(const WinoOutputArgs& a) {
  assert(a.t_begin <= a.t_end);
  const __m512 vlo = _mm512_set1_ps(a.lo), vhi = _mm512_set1_ps(a.hi);
  // (y0[k], y1[k]) pairs for k = 0..7 (lo) and 8..15 (hi); then qword
  // pairs of pairs: tile k's 4 columns.
  const __m512i plo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i phi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i qlo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  const __m512i qhi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  const int64_t xs = a.m_xi_stride, out_h = a.out_h, out_w = a.out_w, tiles_w = a.tiles_w;
  // Narrow planes: two tile rows per group as in the input transform.
  const bool narrow = tiles_w <= kPairMaxTiles;
  const __mmask16 half = TailMask(tiles_w), pair_lanes = __mmask16(half | (half << 8));
  for (int64_t c = 0; c < a.channels; ++c) {
    const float* mc = a.m + c * a.m_channel_stride;
    float* yc = a.y + c * a.y_channel_stride;
    const float* rc = a.residual ? a.residual + c * a.y_channel_stride : nullptr;
    const __m512 bias = _mm512_set1_ps(a.bias ? a.bias[c] : 0.0f);
    int64_t ty = a.t_begin / tiles_w, tx = a.t_begin % tiles_w;
    for (int64_t t = a.t_begin; t < a.t_end;) {
      const bool pair = narrow && tx == 0 && t + 2 * tiles_w <= a.t_end;
      const int64_t nv = pair ? 2 * tiles_w : std::min({kLanes, tiles_w - tx, a.t_end - t});
      const float* m = mc + (t - a.t_begin);
      const __mmask16 lm = TailMask(nv);
      // s = A^T M column by column: s[k][u].
      __m512 s[6][4];
      for (int k = 0; k < 6; ++k) {
        __m512 col[6];
        for (int r = 0; r < 6; ++r)
          col[r] = pair ? _mm512_maskz_expandloadu_ps(pair_lanes, m + (6 * r + k) * xs)
                        : _mm512_maskz_loadu_ps(lm, m + (6 * r + k) * xs);
        wino4::Out(col, s[k]);
      }
      const int64_t ox0 = 4 * tx;
      const int64_t ncol = std::min(4 * (pair ? tiles_w : nv), out_w - ox0);
      __mmask16 sk[4];
      for (int i = 0; i < 4; ++i) sk[i] = TailMask(ncol - kLanes * i);
      // Pairs: o[0..1] are tile row ty's columns, o[2..3] tile row ty + 1's.
      if (pair) sk[2] = sk[0], sk[3] = sk[1];
      for (int u = 0; u < 4; ++u) {
        const int64_t oy = 4 * ty + u;
        if (oy >= out_h) break;
        const __m512 row[6] = {s[0][u], s[1][u], s[2][u], s[3][u], s[4][u], s[5][u]};
        __m512 y[4];
        wino4::Out(row, y);
        for (int v = 0; v < 4; ++v) y[v] = _mm512_add_ps(y[v], bias);
        const __m512d p01l = _mm512_castps_pd(_mm512_permutex2var_ps(y[0], plo, y[1]));
        const __m512d p01h = _mm512_castps_pd(_mm512_permutex2var_ps(y[0], phi, y[1]));
        const __m512d p23l = _mm512_castps_pd(_mm512_permutex2var_ps(y[2], plo, y[3]));
        const __m512d p23h = _mm512_castps_pd(_mm512_permutex2var_ps(y[2], phi, y[3]));
        __m512 o[4] = {_mm512_castpd_ps(_mm512_permutex2var_pd(p01l, qlo, p23l)),
                       _mm512_castpd_ps(_mm512_permutex2var_pd(p01l, qhi, p23l)),
                       _mm512_castpd_ps(_mm512_permutex2var_pd(p01h, qlo, p23h)),
                       _mm512_castpd_ps(_mm512_permutex2var_pd(p01h, qhi, p23h))};
        for (int i = 0; i < 4; ++i) {
          if (!sk[i]) continue;
          // Pairs: the second tile row's output row is 4 rows down.
          const int64_t row = pair && i >= 2 ? oy + 4 : oy;
          if (row >= out_h) break;
          const int64_t off = row * out_w + ox0 + kLanes * (pair ? i % 2 : i);
          if (rc) o[i] = _mm512_add_ps(o[i], _mm512_maskz_loadu_ps(sk[i], rc + off));
          _mm512_mask_storeu_ps(yc + off, sk[i], _mm512_min_ps(_mm512_max_ps(o[i], vlo), vhi));
        }
      }
      if (pair) {
        t += nv;
        ty += 2;
        continue;
      }
      t += nv;
      tx += nv;
      if (tx == tiles_w) {
        tx = 0;
        ++ty;
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

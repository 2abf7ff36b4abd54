// f32_wino2x3_{input,output}__avx512: compiled with -mavx512f/dq (CMakeLists.txt);
// only called after the dispatcher saw avx512f.
//
// The AVX2 kernels' scheme (wino_transform_avx2.cc) on 16 lanes: lane k is
// tile tx0 + k of a tile row, so a group of 16 tiles reads 34 consecutive
// input columns per input row and writes 32 consecutive output columns per
// output row. Even and odd columns are split with one vpermt2ps per vector
// (no 128-bit lane split to undo), and the outputs re-interleaved with one
// more per vector. Padding, edges and partial groups use masked loads and
// stores (cheap on AVX-512 cores, unlike vmaskmovps on Zen 3), so nothing
// is written past a row's last tile. Same operations in the same order as
// the reference kernels, so the same bits (tests/unit/bsr_wino_test.cc).
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "kernels/sparse/wino_transform.h"

// GCC 12 reports the min/max and maskz intrinsics' internal operand as
// maybe-uninitialized (as in bsr_conv_avx512.cc); a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kLanes = 16;

// Lanes l of 16 with lo <= base + l < hi.
inline __mmask16 RangeMask(int64_t base, int64_t lo, int64_t hi) {
  const int64_t l0 = std::clamp<int64_t>(lo - base, 0, kLanes);
  const int64_t l1 = std::clamp<int64_t>(hi - base, 0, kLanes);
  return __mmask16(((1u << l1) - 1) & ~((1u << l0) - 1));
}

inline __mmask16 TailMask(int64_t n) { return RangeMask(0, 0, n); }

// The 32 raw columns b..b+31 (lo, hi) and b+2..b+33 (lo2, hi2) of a row
// (zeros outside the row's [lo, hi) when !kFull: the masks).
struct RawCols {
  __m512 lo, hi, lo2, hi2;
};
struct ColMasks {
  __mmask16 m0 = 0, m1 = 0, m2 = 0, m3 = 0;
};
template <bool kFull>
inline RawCols LoadRaw(const float* row, int64_t b, const ColMasks& m) {
  if (row == nullptr) {
    const __m512 z = _mm512_setzero_ps();
    return {z, z, z, z};
  }
  if (kFull)
    return {_mm512_loadu_ps(row + b), _mm512_loadu_ps(row + b + kLanes),
            _mm512_loadu_ps(row + b + 2), _mm512_loadu_ps(row + b + 2 + kLanes)};
  return {_mm512_maskz_loadu_ps(m.m0, row + b), _mm512_maskz_loadu_ps(m.m1, row + b + kLanes),
          _mm512_maskz_loadu_ps(m.m2, row + b + 2),
          _mm512_maskz_loadu_ps(m.m3, row + b + 2 + kLanes)};
}

// Even and odd columns of the 32 in (x0, x1).
inline void Deinterleave(__m512 x0, __m512 x1, __m512* even, __m512* odd) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  *even = _mm512_permutex2var_ps(x0, ie, x1);
  *odd = _mm512_permutex2var_ps(x0, io, x1);
}

// Row A of V for the group from the raw columns of its two input rows p, q
// (e = B^T d on the raw columns, then the 4 columns of e B), the first
// lanes of `sm` stored.
template <int A>
inline void VRow(const RawCols& rp, const RawCols& rq, float* v, int64_t xi_stride, __mmask16 sm) {
  auto comb = [](__m512 x, __m512 y) { return A == 1 ? _mm512_add_ps(x, y) : _mm512_sub_ps(x, y); };
  __m512 c0, c1, c2, c3;
  Deinterleave(comb(rp.lo, rq.lo), comb(rp.hi, rq.hi), &c0, &c1);
  Deinterleave(comb(rp.lo2, rq.lo2), comb(rp.hi2, rq.hi2), &c2, &c3);
  float* va = v + 4 * A * xi_stride;
  _mm512_mask_storeu_ps(va, sm, _mm512_sub_ps(c0, c2));
  _mm512_mask_storeu_ps(va + xi_stride, sm, _mm512_add_ps(c1, c2));
  _mm512_mask_storeu_ps(va + 2 * xi_stride, sm, _mm512_sub_ps(c2, c1));
  _mm512_mask_storeu_ps(va + 3 * xi_stride, sm, _mm512_sub_ps(c1, c3));
}

// Rows a0..a1-1 of V; each input row is loaded once.
template <bool kFull>
inline void VRows(int a0, int a1, const float* const rows[4], int64_t b, const ColMasks& m,
                  float* v, int64_t xi_stride, __mmask16 sm) {
  const bool w0 = a0 == 0, w12 = a0 <= 2 && a1 > 1, w3 = a1 == 4;
  RawCols r1{}, r2{};
  if (w0 || w12) r2 = LoadRaw<kFull>(rows[2], b, m);
  if (w0) VRow<0>(LoadRaw<kFull>(rows[0], b, m), r2, v, xi_stride, sm);
  if (w12 || w3) r1 = LoadRaw<kFull>(rows[1], b, m);
  if (a0 <= 1 && a1 > 1) VRow<1>(r1, r2, v, xi_stride, sm);
  if (a0 <= 2 && a1 > 2) VRow<2>(r2, r1, v, xi_stride, sm);
  if (w3) VRow<3>(r1, LoadRaw<kFull>(rows[3], b, m), v, xi_stride, sm);
}

}  // namespace

void f32_wino2x3_input__avx512(const WinoInputArgs& a) {
  assert(a.t_begin <= a.t_end && 0 <= a.a_begin && a.a_begin <= a.a_end && a.a_end <= 4);
  // Locals, so that the stores through v do not make GCC reload them.
  const int a0 = a.a_begin, a1 = a.a_end;
  const int64_t xi_stride = a.v_xi_stride, in_h = a.in_h, in_w = a.in_w, tiles_w = a.tiles_w;
  ColMasks masks{};
  int64_t mask_b = INT64_MIN, mask_hi = 0;
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* xc = a.x + c * in_h * in_w;
    float* vc = a.v + c * a.v_channel_stride;
    int64_t ty = a.t_begin / tiles_w, tx = a.t_begin % tiles_w;
    for (int64_t t = a.t_begin; t < a.t_end;) {
      const int64_t nv = std::min({kLanes, tiles_w - tx, a.t_end - t});
      const int64_t iy0 = 2 * ty - a.pad_top, b = 2 * tx - a.pad_left;
      const float* rows[4];
      for (int r = 0; r < 4; ++r) {
        const int64_t iy = iy0 + r;
        rows[r] = iy >= 0 && iy < in_h ? xc + iy * in_w : nullptr;
      }
      float* v = vc + (t - a.t_begin);
      const __mmask16 sm = TailMask(nv);
      if (b >= 0 && b + 2 * kLanes + 2 <= in_w) {
        VRows<true>(a0, a1, rows, b, ColMasks{}, v, xi_stride, sm);
      } else {
        // The masks repeat from tile row to tile row.
        const int64_t lo = std::max<int64_t>(0, b), hi = std::min(in_w, b + 2 * nv + 2);
        if (b != mask_b || hi != mask_hi) {
          masks = ColMasks{RangeMask(b, lo, hi), RangeMask(b + kLanes, lo, hi),
                           RangeMask(b + 2, lo, hi), RangeMask(b + 2 + kLanes, lo, hi)};
          mask_b = b;
          mask_hi = hi;
        }
        VRows<false>(a0, a1, rows, b, masks, v, xi_stride, sm);
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

void f32_wino2x3_output__avx512(const WinoOutputArgs& a) {
  assert(a.t_begin <= a.t_end);
  const __m512 vlo = _mm512_set1_ps(a.lo), vhi = _mm512_set1_ps(a.hi);
  // Tile k's columns 2k, 2k + 1 from y0 (lane k) and y1 (lane k).
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const int64_t xs = a.m_xi_stride, out_h = a.out_h, out_w = a.out_w, tiles_w = a.tiles_w;
  for (int64_t c = 0; c < a.channels; ++c) {
    const float* mc = a.m + c * a.m_channel_stride;
    float* yc = a.y + c * a.y_channel_stride;
    const float* rc = a.residual ? a.residual + c * a.y_channel_stride : nullptr;
    const __m512 bias = _mm512_set1_ps(a.bias ? a.bias[c] : 0.0f);
    int64_t ty = a.t_begin / tiles_w, tx = a.t_begin % tiles_w;
    for (int64_t t = a.t_begin; t < a.t_end;) {
      const int64_t nv = std::min({kLanes, tiles_w - tx, a.t_end - t});
      const float* m = mc + (t - a.t_begin);
      const __mmask16 lm = TailMask(nv);
      // s = A^T M: per column k, {m0 + m1 + m2, m1 - m2 - m3} over rows.
      __m512 s[2][4];
      for (int k = 0; k < 4; ++k) {
        const __m512 m0 = _mm512_maskz_loadu_ps(lm, m + k * xs);
        const __m512 m1 = _mm512_maskz_loadu_ps(lm, m + (4 + k) * xs);
        const __m512 m2 = _mm512_maskz_loadu_ps(lm, m + (8 + k) * xs);
        const __m512 m3 = _mm512_maskz_loadu_ps(lm, m + (12 + k) * xs);
        s[0][k] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s[1][k] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      const int64_t ox0 = 2 * tx;
      const int64_t ncol = std::min(2 * nv, out_w - ox0);
      const __mmask16 s0 = TailMask(ncol), s1 = TailMask(ncol - kLanes);
      for (int u = 0; u < 2; ++u) {
        const int64_t oy = 2 * ty + u;
        if (oy >= out_h) break;
        const __m512 y0 =
            _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[u][0], s[u][1]), s[u][2]), bias);
        const __m512 y1 =
            _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[u][1], s[u][2]), s[u][3]), bias);
        __m512 lo = _mm512_permutex2var_ps(y0, ilo, y1);
        __m512 hi = _mm512_permutex2var_ps(y0, ihi, y1);
        const int64_t off = oy * out_w + ox0;
        if (rc) {
          lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(s0, rc + off));
          hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(s1, rc + off + kLanes));
        }
        _mm512_mask_storeu_ps(yc + off, s0, _mm512_min_ps(_mm512_max_ps(lo, vlo), vhi));
        if (s1)
          _mm512_mask_storeu_ps(yc + off + kLanes, s1, _mm512_min_ps(_mm512_max_ps(hi, vlo), vhi));
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

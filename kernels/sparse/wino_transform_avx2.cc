// f32_wino2x3_{input,output}__avx2: compiled with -mavx2 -mfma
// (CMakeLists.txt); only called after the dispatcher saw avx2 and fma.
//
// Vectors run along a tile row: lane k is tile tx0 + k, so a group of 8
// tiles reads 18 consecutive input columns per input row (tile k starts at
// column 2k) and writes 16 consecutive output columns per output row. The
// window's columns 0 and 1 are the even and odd columns of two 8-column
// loads (vshufps, then vpermpd to undo the 128-bit lane split); columns 2
// and 3 the same from two loads 2 columns further. On the way out
// vunpck{l,h}ps + vperm2f128 interleave each tile's two output columns
// again. Every load and store is masked (vmaskmovps) to the input row, the
// output plane and the call's tiles, so padding and edge tiles need no
// copies. AVX-512 CPUs run these too (dispatch.cc): this machine has no
// AVX-512 to test a 16-lane version on.
#include <immintrin.h>

#include <algorithm>
#include <cassert>

#include "kernels/sparse/wino_transform.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kLanes = 8;

// Lanes l of 8 with lo <= base + l < hi.
inline __m256i RangeMask(int64_t base, int64_t lo, int64_t hi) {
  const int64_t l0 = std::clamp<int64_t>(lo - base, 0, kLanes);
  const int64_t l1 = std::clamp<int64_t>(hi - base, 0, kLanes);
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(static_cast<int>(l0) - 1));
  const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(l1)), idx);
  return _mm256_and_si256(ge, lt);
}

// Columns base + 2k (even) and base + 2k + 1 (odd), k = 0..7, of a row
// (zeros outside [lo, hi)).
// kFull: all 16 columns are inside the row (plain loads).
template <bool kFull>
inline void EvenOdd(const float* row, int64_t base, int64_t lo, int64_t hi, __m256* even,
                    __m256* odd) {
  __m256 x0, x1;
  if (kFull) {
    x0 = _mm256_loadu_ps(row + base);
    x1 = _mm256_loadu_ps(row + base + kLanes);
  } else {
    x0 = _mm256_maskload_ps(row + base, RangeMask(base, lo, hi));
    x1 = _mm256_maskload_ps(row + base + kLanes, RangeMask(base + kLanes, lo, hi));
  }
  // [x0_0 x0_2 x1_0 x1_2 | x0_4 x0_6 x1_4 x1_6] -> 64-bit pairs in order 0, 2, 1, 3.
  const __m256 e = _mm256_shuffle_ps(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));
  const __m256 o = _mm256_shuffle_ps(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// The four B^T combinations of x0..x3: {x0 - x2, x1 + x2, x2 - x1, x1 - x3}.
inline void BT(const __m256 x[4], __m256 out[4]) {
  out[0] = _mm256_sub_ps(x[0], x[2]);
  out[1] = _mm256_add_ps(x[1], x[2]);
  out[2] = _mm256_sub_ps(x[2], x[1]);
  out[3] = _mm256_sub_ps(x[1], x[3]);
}

inline __m256i TailMask(int64_t n) { return RangeMask(0, 0, n); }

}  // namespace

void f32_wino2x3_input__avx2(const WinoInputArgs& a) {
  assert(a.t_begin <= a.t_end);
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* xc = a.x + c * a.in_h * a.in_w;
    float* vc = a.v + c * a.v_channel_stride;
    for (int64_t t = a.t_begin; t < a.t_end;) {
      const int64_t ty = t / a.tiles_w, tx = t % a.tiles_w;
      const int64_t nv = std::min({kLanes, a.tiles_w - tx, a.t_end - t});
      const int64_t iy0 = 2 * ty - a.pad_top, b = 2 * tx - a.pad_left;
      // Columns of the input row the group's windows cover.
      const int64_t lo = std::max<int64_t>(0, b), hi = std::min(a.in_w, b + 2 * nv + 2);
      // Plain loads when the 18 columns they touch are all inside the row
      // (a full group away from the edges): masked ones cost more (most of
      // ResNet-50's 56x56 groups are full).
      const bool full = b >= 0 && b + 2 * kLanes + 2 <= a.in_w;
      __m256 d[4][4];
      for (int r = 0; r < 4; ++r) {
        const int64_t iy = iy0 + r;
        if (iy < 0 || iy >= a.in_h) {
          for (int k = 0; k < 4; ++k) d[r][k] = _mm256_setzero_ps();
        } else {
          const float* row = xc + iy * a.in_w;
          if (full) {
            EvenOdd<true>(row, b, lo, hi, &d[r][0], &d[r][1]);
            EvenOdd<true>(row, b + 2, lo, hi, &d[r][2], &d[r][3]);
          } else {
            EvenOdd<false>(row, b, lo, hi, &d[r][0], &d[r][1]);
            EvenOdd<false>(row, b + 2, lo, hi, &d[r][2], &d[r][3]);
          }
        }
      }
      // e = B^T d (over rows, per column k), then V = e B (over columns).
      __m256 e[4][4];
      for (int k = 0; k < 4; ++k) {
        const __m256 col[4] = {d[0][k], d[1][k], d[2][k], d[3][k]};
        __m256 ek[4];
        BT(col, ek);
        for (int r = 0; r < 4; ++r) e[r][k] = ek[r];
      }
      // Whole vectors even for a partial group (the rows' slack,
      // wino_transform.h): vmaskmovps stores are slow on AMD Zen 3, and on
      // ResNet-50's 14x14 and 7x7 planes (7 and 4 tiles per row) every
      // group is partial.
      float* v = vc + (t - a.t_begin);
      for (int r = 0; r < 4; ++r) {
        __m256 vr[4];
        BT(e[r], vr);
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(v + (4 * r + k) * a.v_xi_stride, vr[k]);
      }
      t += nv;
    }
  }
}

void f32_wino2x3_output__avx2(const WinoOutputArgs& a) {
  assert(a.t_begin <= a.t_end);
  const __m256 vlo = _mm256_set1_ps(a.lo), vhi = _mm256_set1_ps(a.hi);
  for (int64_t c = 0; c < a.channels; ++c) {
    const float* mc = a.m + c * a.m_channel_stride;
    float* yc = a.y + c * a.y_channel_stride;
    const float* rc = a.residual ? a.residual + c * a.y_channel_stride : nullptr;
    const __m256 bias = _mm256_set1_ps(a.bias ? a.bias[c] : 0.0f);
    for (int64_t t = a.t_begin; t < a.t_end;) {
      const int64_t ty = t / a.tiles_w, tx = t % a.tiles_w;
      const int64_t nv = std::min({kLanes, a.tiles_w - tx, a.t_end - t});
      // Whole vectors: m's rows have slack (wino_transform.h), lanes past
      // the group are not used.
      const float* m = mc + (t - a.t_begin);
      auto ld = [&](int xi) { return _mm256_loadu_ps(m + xi * a.m_xi_stride); };
      // s = A^T M: per column k, {m0 + m1 + m2, m1 - m2 - m3} over rows.
      __m256 s[2][4];
      for (int k = 0; k < 4; ++k) {
        const __m256 m0 = ld(k), m1 = ld(4 + k), m2 = ld(8 + k), m3 = ld(12 + k);
        s[0][k] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[1][k] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      const int64_t ox0 = 2 * tx;
      const int64_t ncol = std::min(2 * nv, a.out_w - ox0);
      const __m256i st0 = TailMask(ncol), st1 = TailMask(ncol - kLanes);
      for (int u = 0; u < 2; ++u) {
        const int64_t oy = 2 * ty + u;
        if (oy >= a.out_h) break;
        const __m256 y0 =
            _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[u][0], s[u][1]), s[u][2]), bias);
        const __m256 y1 =
            _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[u][1], s[u][2]), s[u][3]), bias);
        // Tile k's columns 2k, 2k + 1: unpack within 128-bit lanes, then
        // put the lanes in order.
        const __m256 ul = _mm256_unpacklo_ps(y0, y1), uh = _mm256_unpackhi_ps(y0, y1);
        __m256 lo = _mm256_permute2f128_ps(ul, uh, 0x20);
        __m256 hi = _mm256_permute2f128_ps(ul, uh, 0x31);
        const int64_t off = oy * a.out_w + ox0;
        if (rc) {
          lo = _mm256_add_ps(lo, _mm256_maskload_ps(rc + off, st0));
          hi = _mm256_add_ps(hi, _mm256_maskload_ps(rc + off + kLanes, st1));
        }
        lo = _mm256_min_ps(_mm256_max_ps(lo, vlo), vhi);
        hi = _mm256_min_ps(_mm256_max_ps(hi, vlo), vhi);
        if (ncol == 2 * kLanes) {
          _mm256_storeu_ps(yc + off, lo);
          _mm256_storeu_ps(yc + off + kLanes, hi);
        } else {
          _mm256_maskstore_ps(yc + off, st0, lo);
          if (ncol > kLanes) _mm256_maskstore_ps(yc + off + kLanes, st1, hi);
        }
      }
      t += nv;
    }
  }
}

}  // namespace wbs::kernels::sparse

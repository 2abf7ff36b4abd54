// f32_wino2x3_{input,output}__avx2: compiled with -mavx2 -mfma
// (CMakeLists.txt); only called after the dispatcher saw avx2 and fma.
//
// Vectors run along a tile row: lane k is tile tx0 + k, so a group of 8
// tiles reads 18 consecutive input columns per input row (tile k starts at
// column 2k) and writes 16 consecutive output columns per output row. The
// input transform works one row a of V at a time: its two input rows are
// combined (e = B^T d) on the raw columns, then the window's columns 0 and
// 1 are the even and odd columns of two 8-column vectors (vshufps, then
// vpermpd to undo the 128-bit lane split), columns 2 and 3 the same 2
// columns further, and V's 4 entries their combinations; rows 1 and 2 are
// loaded once for the three rows of V that use them, and only rows
// a_begin..a_end-1 are formed. (Holding the whole 4x4 window and e in two
// arrays of 16 vectors made GCC spill them: 3x slower on 56x56 planes.) On
// the way out vunpck{l,h}ps + vperm2f128 interleave each tile's two output
// columns again. Loads at the padding are masked (vmaskmovps) to the input
// row; partial output groups are stored by 128/64/32-bit stores (vmaskmovps
// stores are slow on Zen 3), so padding and edge tiles need no copies.
// AVX-512 CPUs run these too (dispatch.cc): this machine has no AVX-512 to
// test a 16-lane version on. docs/KERNELS.md "Winograd" has the numbers.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

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

inline __m256i TailMask(int64_t n) { return RangeMask(0, 0, n); }

// The first n (1..8) lanes of v, by 128/64/32-bit stores.
inline void StoreN(float* p, __m256 v, int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  __m128 x = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(p, x);
    x = _mm256_extractf128_ps(v, 1);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), x);
    x = _mm_movehl_ps(x, x);
    p += 2;
    n -= 2;
  }
  if (n >= 1) _mm_store_ss(p, x);
}

// The 16 raw columns b..b+15 (lo, hi) and b+2..b+17 (lo2, hi2) of a row
// (zeros outside the row's [lo, hi) when !kFull: the masks).
struct RawCols {
  __m256 lo, hi, lo2, hi2;
};
struct ColMasks {
  __m256i m0, m1, m2, m3;
};
template <bool kFull>
inline RawCols LoadRaw(const float* row, int64_t b, const ColMasks& m) {
  if (row == nullptr) {
    const __m256 z = _mm256_setzero_ps();
    return {z, z, z, z};
  }
  if (kFull)
    return {_mm256_loadu_ps(row + b), _mm256_loadu_ps(row + b + kLanes),
            _mm256_loadu_ps(row + b + 2), _mm256_loadu_ps(row + b + 2 + kLanes)};
  return {_mm256_maskload_ps(row + b, m.m0), _mm256_maskload_ps(row + b + kLanes, m.m1),
          _mm256_maskload_ps(row + b + 2, m.m2), _mm256_maskload_ps(row + b + 2 + kLanes, m.m3)};
}

// Even and odd columns of the 16 in (x0, x1): [x0_0 x0_2 x1_0 x1_2 | x0_4
// x0_6 x1_4 x1_6] after vshufps, the 64-bit pairs put in order 0, 2, 1, 3.
inline void Deinterleave(__m256 x0, __m256 x1, __m256* even, __m256* odd) {
  const __m256 e = _mm256_shuffle_ps(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));
  const __m256 o = _mm256_shuffle_ps(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// Row A of V for the group from the raw columns of its two input rows p, q
// (e = B^T d: e0 = d0 - d2, e1 = d1 + d2, e2 = d2 - d1, e3 = d1 - d3, on the
// raw columns, elementwise), then the 4 columns of e B. Same operations as
// the reference (f32_wino2x3_input__ref): e's entries, then V's, so the
// same bits.
template <int A>
inline void VRow(const RawCols& rp, const RawCols& rq, float* v, int64_t xi_stride) {
  auto comb = [](__m256 x, __m256 y) { return A == 1 ? _mm256_add_ps(x, y) : _mm256_sub_ps(x, y); };
  __m256 c0, c1, c2, c3;
  Deinterleave(comb(rp.lo, rq.lo), comb(rp.hi, rq.hi), &c0, &c1);
  Deinterleave(comb(rp.lo2, rq.lo2), comb(rp.hi2, rq.hi2), &c2, &c3);
  float* va = v + 4 * A * xi_stride;
  _mm256_storeu_ps(va, _mm256_sub_ps(c0, c2));
  _mm256_storeu_ps(va + xi_stride, _mm256_add_ps(c1, c2));
  _mm256_storeu_ps(va + 2 * xi_stride, _mm256_sub_ps(c2, c1));
  _mm256_storeu_ps(va + 3 * xi_stride, _mm256_sub_ps(c1, c3));
}

// Rows a0..a1-1 of V; each input row is loaded once (rows 1 and 2 serve
// three rows of V each).
template <bool kFull>
inline void VRows(int a0, int a1, const float* const rows[4], int64_t b, const ColMasks& m,
                  float* v, int64_t xi_stride) {
  const bool w0 = a0 == 0, w12 = a0 <= 2 && a1 > 1, w3 = a1 == 4;
  RawCols r1{}, r2{};
  if (w0 || w12) r2 = LoadRaw<kFull>(rows[2], b, m);
  if (w0) VRow<0>(LoadRaw<kFull>(rows[0], b, m), r2, v, xi_stride);
  if (w12 || w3) r1 = LoadRaw<kFull>(rows[1], b, m);
  if (a0 <= 1 && a1 > 1) VRow<1>(r1, r2, v, xi_stride);
  if (a0 <= 2 && a1 > 2) VRow<2>(r2, r1, v, xi_stride);
  if (w3) VRow<3>(r1, LoadRaw<kFull>(rows[3], b, m), v, xi_stride);
}

}  // namespace

void f32_wino2x3_input__avx2(const WinoInputArgs& a) {
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
      // The window's 4 input rows (nullptr: padding).
      const float* rows[4];
      for (int r = 0; r < 4; ++r) {
        const int64_t iy = iy0 + r;
        rows[r] = iy >= 0 && iy < in_h ? xc + iy * in_w : nullptr;
      }
      // Whole vectors even for a partial group (the rows' slack,
      // wino_transform.h): vmaskmovps stores are slow on AMD Zen 3, and on
      // ResNet-50's 14x14 and 7x7 planes (7 and 4 tiles per row) every
      // group is partial. Plain loads when the 18 columns the group's
      // windows touch are all inside the row (most of ResNet-50's 56x56
      // groups); else masked to the row's columns [lo, hi).
      float* v = vc + (t - a.t_begin);
      if (b >= 0 && b + 2 * kLanes + 2 <= in_w) {
        VRows<true>(a0, a1, rows, b, ColMasks{}, v, xi_stride);
      } else {
        // The masks repeat from tile row to tile row: kept from the last
        // group that had the same columns.
        const int64_t lo = std::max<int64_t>(0, b), hi = std::min(in_w, b + 2 * nv + 2);
        if (b != mask_b || hi != mask_hi) {
          masks = ColMasks{RangeMask(b, lo, hi), RangeMask(b + kLanes, lo, hi),
                           RangeMask(b + 2, lo, hi), RangeMask(b + 2 + kLanes, lo, hi)};
          mask_b = b;
          mask_hi = hi;
        }
        VRows<false>(a0, a1, rows, b, masks, v, xi_stride);
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

void f32_wino2x3_output__avx2(const WinoOutputArgs& a) {
  assert(a.t_begin <= a.t_end);
  const __m256 vlo = _mm256_set1_ps(a.lo), vhi = _mm256_set1_ps(a.hi);
  // Locals, so that the stores through y do not make GCC reload them.
  const int64_t xs = a.m_xi_stride, out_h = a.out_h, out_w = a.out_w, tiles_w = a.tiles_w;
  __m256i st0 = _mm256_setzero_si256(), st1 = st0;
  int64_t st_ncol = -1;
  for (int64_t c = 0; c < a.channels; ++c) {
    const float* mc = a.m + c * a.m_channel_stride;
    float* yc = a.y + c * a.y_channel_stride;
    const float* rc = a.residual ? a.residual + c * a.y_channel_stride : nullptr;
    const __m256 bias = _mm256_set1_ps(a.bias ? a.bias[c] : 0.0f);
    int64_t ty = a.t_begin / tiles_w, tx = a.t_begin % tiles_w;
    for (int64_t t = a.t_begin; t < a.t_end;) {
      const int64_t nv = std::min({kLanes, tiles_w - tx, a.t_end - t});
      // Whole vectors: m's rows have slack (wino_transform.h), lanes past
      // the group are not used.
      const float* m = mc + (t - a.t_begin);
      // s = A^T M: per column k, {m0 + m1 + m2, m1 - m2 - m3} over rows.
      __m256 s[2][4];
      for (int k = 0; k < 4; ++k) {
        const __m256 m0 = _mm256_loadu_ps(m + k * xs), m1 = _mm256_loadu_ps(m + (4 + k) * xs);
        const __m256 m2 = _mm256_loadu_ps(m + (8 + k) * xs),
                     m3 = _mm256_loadu_ps(m + (12 + k) * xs);
        s[0][k] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[1][k] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
      }
      const int64_t ox0 = 2 * tx;
      const int64_t ncol = std::min(2 * nv, out_w - ox0);
      if (ncol != 2 * kLanes && ncol != st_ncol) {
        st0 = TailMask(ncol);
        st1 = TailMask(ncol - kLanes);
        st_ncol = ncol;
      }
      for (int u = 0; u < 2; ++u) {
        const int64_t oy = 2 * ty + u;
        if (oy >= out_h) break;
        const __m256 y0 =
            _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[u][0], s[u][1]), s[u][2]), bias);
        const __m256 y1 =
            _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[u][1], s[u][2]), s[u][3]), bias);
        // Tile k's columns 2k, 2k + 1: unpack within 128-bit lanes, then
        // put the lanes in order.
        const __m256 ul = _mm256_unpacklo_ps(y0, y1), uh = _mm256_unpackhi_ps(y0, y1);
        __m256 lo = _mm256_permute2f128_ps(ul, uh, 0x20);
        __m256 hi = _mm256_permute2f128_ps(ul, uh, 0x31);
        const int64_t off = oy * out_w + ox0;
        if (ncol == 2 * kLanes) {
          if (rc) {
            lo = _mm256_add_ps(lo, _mm256_loadu_ps(rc + off));
            hi = _mm256_add_ps(hi, _mm256_loadu_ps(rc + off + kLanes));
          }
          _mm256_storeu_ps(yc + off, _mm256_min_ps(_mm256_max_ps(lo, vlo), vhi));
          _mm256_storeu_ps(yc + off + kLanes, _mm256_min_ps(_mm256_max_ps(hi, vlo), vhi));
        } else {
          // A partial group (every group of ResNet-50's 14x14 and 7x7
          // planes): the residual by masked loads, the outputs by plain
          // 128/64/32-bit stores (vmaskmovps stores are slow on Zen 3).
          if (rc) {
            lo = _mm256_add_ps(lo, _mm256_maskload_ps(rc + off, st0));
            hi = _mm256_add_ps(hi, _mm256_maskload_ps(rc + off + kLanes, st1));
          }
          StoreN(yc + off, _mm256_min_ps(_mm256_max_ps(lo, vlo), vhi), std::min(ncol, kLanes));
          if (ncol > kLanes)
            StoreN(yc + off + kLanes, _mm256_min_ps(_mm256_max_ps(hi, vlo), vhi), ncol - kLanes);
        }
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

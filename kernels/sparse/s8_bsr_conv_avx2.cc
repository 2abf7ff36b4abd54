// s8_bsr8xn_conv__avx2, s8_bsr8x8_gemm__avx2: compiled with -mavx2
// (CMakeLists.txt); only called after the int8 dispatcher saw AVX2.
//
// Exact without VNNI: activations are widened to 16 bits (u8 -> int16,
// zero-extended) and multiplied by int16 weights with vpmaddwd, which adds
// two 32-bit products per lane without saturation. (vpmaddubsw, the 8-bit
// form, saturates its pair sums to int16 and is wrong on full-range inputs:
// 255*127 + 255*127 > 32767.)
//
// Conv: one 32-byte load is 8 positions x one channel quad (x0 x1 x2 x3 per
// lane); `& 0x00FF00FF` gives the int16 pairs (x0, x2) and `>> 8` per 16 bits
// gives (x1, x3), so the plan stores each (row, quad, tap) as the int16
// words {w0, w2, w1, w3} and a lane gets sum of 4 products from two
// vpmaddwd. Tile: 8 output channels x 8 positions (8 ymm accumulators).
// Gemm: lanes are the 8 rows of a block; the block is 4 pairs x 8 rows x 2
// int16 (4 ymm), each multiplied by a broadcast pair of X.
// Requantization as in the VNNI file, with AVX2's missing 64-bit arithmetic
// shift and min/max built from logical shifts, compares and blends.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "kernels/sparse/s8_bsr_conv.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int kRows = 8;
constexpr int kLanes = 8;

inline __m256i Bcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

struct Req256 {
  __m256i m_e, m_o, s_e, s_o, rnd_e, rnd_o, lo, hi, zp;
  Req256(__m256i m, __m256i s, const S8Epilogue& ep) {
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i low = _mm256_set1_epi64x(0xFFFFFFFFll);
    m_e = m;
    m_o = _mm256_srli_epi64(m, 32);
    s_e = _mm256_and_si256(s, low);
    s_o = _mm256_srli_epi64(s, 32);
    // 2^(S-1); S = 0 shifts by 2^64-1 (> 63), which gives 0.
    rnd_e = _mm256_sllv_epi64(one, _mm256_sub_epi64(s_e, one));
    rnd_o = _mm256_sllv_epi64(one, _mm256_sub_epi64(s_o, one));
    lo = _mm256_set1_epi64x(int64_t{ep.lo} - ep.zero_point);
    hi = _mm256_set1_epi64x(int64_t{ep.hi} - ep.zero_point);
    zp = _mm256_set1_epi32(ep.zero_point);
  }
  // Arithmetic shift right by per-lane counts: ~(~v >> s) for negative v.
  static __m256i Sra64(__m256i v, __m256i s) {
    const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), s), sign);
  }
  __m256i Clamp(__m256i v) const {
    v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    return _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
  }
  __m256i operator()(__m256i acc) const {
    __m256i e = _mm256_mul_epi32(acc, m_e);
    __m256i o = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), m_o);
    e = Clamp(Sra64(_mm256_add_epi64(e, rnd_e), s_e));
    o = Clamp(Sra64(_mm256_add_epi64(o, rnd_o), s_o));
    return _mm256_add_epi32(_mm256_blend_epi32(e, _mm256_slli_epi64(o, 32), 0xAA), zp);
  }
};

#define WBS_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

void ConvTile(const S8BsrConvArgs& a, int64_t i, int64_t q, int64_t n) {
#define WBS_INIT(r) __m256i a##r = _mm256_set1_epi32(a.ep.bias[i * kRows + r]);
  WBS_ROWS(WBS_INIT)
#undef WBS_INIT
  const int taps = a.taps;
  const int64_t* off = a.tap_offset;
  const int64_t block_quads = a.bc / 4, in_quads = (a.in_channels + 3) / 4;
  const int64_t xqs = a.x_quad_stride * 4;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i low_bytes = _mm256_set1_epi32(0x00FF00FF);
  const char* blocks = static_cast<const char*>(a.packed);
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t q0 = int64_t{a.col_idx[j]} * block_quads;
    const int64_t nq = std::min(block_quads, in_quads - q0);
    const int16_t* w = reinterpret_cast<const int16_t*>(blocks + j * a.block_bytes);
    const uint8_t* xc = a.x + q0 * xqs + q * 4;
    for (int64_t qq = 0; qq < nq; ++qq, xc += xqs) {
      for (int t = 0; t < taps; ++t, w += kRows * 4) {
        const uint8_t* xp = xc + off[t] * 4;
        const __m256i xv = n == kLanes
                               ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp))
                               : _mm256_maskload_epi32(reinterpret_cast<const int*>(xp), tail);
        const __m256i even = _mm256_and_si256(xv, low_bytes);  // (x0, x2)
        const __m256i odd = _mm256_srli_epi16(xv, 8);          // (x1, x3)
#define WBS_MADD(r)                                                                           \
  a##r = _mm256_add_epi32(a##r, _mm256_add_epi32(_mm256_madd_epi16(even, Bcast32(w + r * 4)), \
                                                 _mm256_madd_epi16(odd, Bcast32(w + r * 4 + 2))));
        WBS_ROWS(WBS_MADD)
#undef WBS_MADD
      }
    }
  }
  alignas(32) int32_t out[kRows][kLanes];
  const int64_t rows = std::min<int64_t>(kRows, a.out_channels - i * kRows);
#define WBS_REQ(r)                                                       \
  if (r < rows) {                                                        \
    const Req256 rq(_mm256_set1_epi32(a.ep.multiplier[i * kRows + r]),   \
                    _mm256_set1_epi32(a.ep.shift[i * kRows + r]), a.ep); \
    _mm256_store_si256(reinterpret_cast<__m256i*>(out[r]), rq(a##r));    \
  }
  WBS_ROWS(WBS_REQ)
#undef WBS_REQ
  // Scalar stores: the compact index of each valid position.
  const int64_t m_end =
      a.y_layout == S8Layout::kNchw ? a.out_channels : (a.out_channels + 3) / 4 * 4;
  const int64_t rows_out = std::min<int64_t>(kRows, m_end - i * kRows);
  for (int64_t l = 0; l < n; ++l) {
    const int64_t pos = q + l;
    int64_t idx = pos;
    if (a.lanes) {
      const S8LaneGroup& g = a.lanes[pos / 16];
      const int bit = static_cast<int>(pos % 16);
      if (!(g.mask >> bit & 1)) continue;
      idx = g.y_index + __builtin_popcount(g.mask & ((1u << bit) - 1));
    }
    for (int64_t r = 0; r < rows_out; ++r) {
      const int64_t m = i * kRows + r;
      const uint8_t v = r < rows ? static_cast<uint8_t>(out[r][l]) : 0;
      if (a.y_layout == S8Layout::kNchw)
        a.y[m * a.y_plane + idx] = v;
      else
        a.y[((m / 4) * a.y_plane + idx) * 4 + m % 4] = v;
    }
  }
}
#undef WBS_ROWS

}  // namespace

void s8_bsr8xn_conv__avx2(const S8BsrConvArgs& a) {
  assert(a.br == kRows && a.bc % 4 == 0 && a.q_begin % 16 == 0 && a.q_end <= a.out_h * a.pitch);
  for (int64_t i = a.row_begin; i < a.row_end; ++i)
    for (int64_t q = a.q_begin; q < a.q_end; q += kLanes)
      ConvTile(a, i, q, std::min<int64_t>(kLanes, a.q_end - q));
}

void s8_bsr8x8_gemm__avx2(const S8BsrGemmArgs& a) {
  assert(a.br == 8 && a.bc == 8);
  const char* blocks = static_cast<const char*>(a.packed);
  const int16_t* x = static_cast<const int16_t*>(a.x);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    const int64_t m0 = i * 8;
    const Req256 rq(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.multiplier + m0)),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.shift + m0)), a.ep);
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.bias + m0));
    const int64_t rows = std::min<int64_t>(8, a.out_channels - m0);
    for (int64_t n = a.n_begin; n < a.n_end; ++n) {
      const int16_t* xr = x + n * a.x_stride;
      __m256i acc0 = bias, acc1 = _mm256_setzero_si256();
      for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
        const __m256i* w = reinterpret_cast<const __m256i*>(blocks + j * a.block_bytes);
        const int16_t* xc = xr + int64_t{a.col_idx[j]} * 8;
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_loadu_si256(w), Bcast32(xc)));
        acc1 =
            _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_loadu_si256(w + 1), Bcast32(xc + 2)));
        acc0 =
            _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_loadu_si256(w + 2), Bcast32(xc + 4)));
        acc1 =
            _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_loadu_si256(w + 3), Bcast32(xc + 6)));
      }
      alignas(32) int32_t out[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(out), rq(_mm256_add_epi32(acc0, acc1)));
      uint8_t* yr = a.y + n * a.y_stride + m0;
      for (int64_t r = 0; r < rows; ++r) yr[r] = static_cast<uint8_t>(out[r]);
    }
  }
}

}  // namespace wbs::kernels::sparse

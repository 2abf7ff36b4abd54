// s8_bsr8xn_conv__avx512vnni, s8_bsr8x8_gemm__avx512vnni: compiled with
// -mavx512f/bw/vl/dq -mavx512vnni (CMakeLists.txt); only called after the
// int8 dispatcher (s8_dispatch.cc) saw those features.
//
// Conv register tile: 8 output channels x 3 vectors of 16 positions = 24 zmm
// int32 accumulators. One input vector is 16 positions x one channel quad (64
// bytes of the nChw4c plane); per (quad, tap) the kernel loads 3 of them and
// issues 24 vpdpbusd whose weight operand is the 4 weights of (row, quad,
// tap) broadcast to every lane: 8 x 48 x 4 = 1536 MACs per 11 loads.
//
// Gemm: a block's 64 weights (row-major 8x8) are one zmm; the 8 inputs of
// its block-column, broadcast as one 64-bit word, line up with every row's 8
// weights, so one vpdpbusd per (block, row of X) does the block's 64 MACs;
// lanes 2r and 2r+1 hold row r's two half-sums.
//
// Requantization is exact (core/quant_math.h): 32x32->64-bit products of the
// even and odd lanes (vpmuldq), + 2^(S-1), arithmetic shift (vpsravq), clamp
// in 64 bits to [lo - z_y, hi - z_y], then + z_y; the fast forms of
// S8Epilogue (FastReq512, FastSatReq512, ShiftReq512) are cheaper rewrites of
// the same function, and FastSatReq512 leaves the clamp to the stores'
// saturating narrowing (Pack4, Narrow).
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "kernels/sparse/s8_bsr_conv.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::sparse {
namespace {

constexpr int kRows = 8;
constexpr int kLanes = 16;
constexpr int kVecs = 3;
constexpr int kPrefetchBlocks = 2;  // 1x1 input prefetch distance, in blocks (Tile)

inline __mmask16 TailMask(int64_t n) {
  return n >= kLanes ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

inline __m512i Bcast32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Per-lane requantization constants from per-lane (M, S) int32 vectors.
struct Req512 {
  __m512i m_e, m_o, s_e, s_o, rnd_e, rnd_o, lo, hi, zp;
  Req512(__m512i m, __m512i s, const S8Epilogue& ep) {
    const __m512i one = _mm512_set1_epi64(1);
    const __m512i low = _mm512_set1_epi64(0xFFFFFFFFll);
    m_e = m;
    m_o = _mm512_srli_epi64(m, 32);
    s_e = _mm512_and_si512(s, low);
    s_o = _mm512_srli_epi64(s, 32);
    // 2^(S-1); S = 0 shifts by 2^64-1 (> 63), which gives 0.
    rnd_e = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_e, one));
    rnd_o = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_o, one));
    lo = _mm512_set1_epi64(int64_t{ep.lo} - ep.zero_point);
    hi = _mm512_set1_epi64(int64_t{ep.hi} - ep.zero_point);
    zp = _mm512_set1_epi32(ep.zero_point);
  }
  __m512i operator()(__m512i acc) const {
    __m512i e = _mm512_mul_epi32(acc, m_e);
    __m512i o = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), m_o);
    e = _mm512_srav_epi64(_mm512_add_epi64(e, rnd_e), s_e);
    o = _mm512_srav_epi64(_mm512_add_epi64(o, rnd_o), s_o);
    e = _mm512_min_epi64(_mm512_max_epi64(e, lo), hi);
    o = _mm512_min_epi64(_mm512_max_epi64(o, lo), hi);
    return _mm512_add_epi32(_mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32)), zp);
  }
};

// The same on 8 lanes (ymm, AVX-512VL forms).
struct Req256 {
  __m256i m_e, m_o, s_e, s_o, rnd_e, rnd_o, lo, hi, zp;
  Req256(__m256i m, __m256i s, const S8Epilogue& ep) {
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i low = _mm256_set1_epi64x(0xFFFFFFFFll);
    m_e = m;
    m_o = _mm256_srli_epi64(m, 32);
    s_e = _mm256_and_si256(s, low);
    s_o = _mm256_srli_epi64(s, 32);
    rnd_e = _mm256_sllv_epi64(one, _mm256_sub_epi64(s_e, one));
    rnd_o = _mm256_sllv_epi64(one, _mm256_sub_epi64(s_o, one));
    lo = _mm256_set1_epi64x(int64_t{ep.lo} - ep.zero_point);
    hi = _mm256_set1_epi64x(int64_t{ep.hi} - ep.zero_point);
    zp = _mm256_set1_epi32(ep.zero_point);
  }
  __m256i operator()(__m256i acc) const {
    __m256i e = _mm256_mul_epi32(acc, m_e);
    __m256i o = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), m_o);
    e = _mm256_srav_epi64(_mm256_add_epi64(e, rnd_e), s_e);
    o = _mm256_srav_epi64(_mm256_add_epi64(o, rnd_o), s_o);
    e = _mm256_min_epi64(_mm256_max_epi64(e, lo), hi);
    o = _mm256_min_epi64(_mm256_max_epi64(o, lo), hi);
    return _mm256_add_epi32(_mm256_mask_blend_epi32(0xAA, e, _mm256_slli_epi64(o, 32)), zp);
  }
};

// S8Epilogue::fast for one channel: clamp acc, 64-bit products, one rounding
// shift that also adds z_y; the odd lanes shift by S - 32 so their result
// lands in the high dword, and one blend merges the halves.
struct FastReq512 {
  __m512i lo, hi, m, rnd;
  __m128i s, s32;
  FastReq512(const S8Epilogue& ep, int64_t c)
      : lo(_mm512_set1_epi32(ep.acc_lo[c])),
        hi(_mm512_set1_epi32(ep.acc_hi[c])),
        m(_mm512_set1_epi32(ep.multiplier[c])),
        rnd(_mm512_set1_epi64(ep.round_zp[c])),
        s(_mm_cvtsi32_si128(ep.shift[c])),
        s32(_mm_cvtsi32_si128(ep.shift[c] - 32)) {}
  __m512i operator()(__m512i acc) const {
    const __m512i a = _mm512_min_epi32(_mm512_max_epi32(acc, lo), hi);
    const __m512i e = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, m), rnd), s);
    const __m512i o =
        _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), m), rnd), s32);
    return _mm512_mask_blend_epi32(0xAAAA, e, o);
  }
};

// The fast form without the accumulator clamp, 8 ops per 16 outputs, for an
// output clamp that is the whole u8 or s8 range (FullRange): the unclamped
// result fits int32 (|acc * M| < 2^62 and S >= 32) and is exact, so the
// saturating narrowing of the store (Pack4, Narrow) is the clamp.
struct FastSatReq512 {
  __m512i m, rnd;
  __m128i s, s32;
  FastSatReq512(const S8Epilogue& ep, int64_t c)
      : m(_mm512_set1_epi32(ep.multiplier[c])),
        rnd(_mm512_set1_epi64(ep.round_zp[c])),
        s(_mm_cvtsi32_si128(ep.shift[c])),
        s32(_mm_cvtsi32_si128(ep.shift[c] - 32)) {}
  __m512i operator()(__m512i a) const {
    const __m512i e = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, m), rnd), s);
    const __m512i o =
        _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), m), rnd), s32);
    return _mm512_mask_blend_epi32(0xAAAA, e, o);
  }
};

// Whether [lo, hi] is the whole range of the output type (u8 when lo >= 0),
// i.e. no fused Relu/Clip narrows it: then saturation alone is the clamp.
inline bool FullRange(const S8Epilogue& ep) {
  return ep.lo >= 0 ? ep.lo == 0 && ep.hi == 255 : ep.lo == -128 && ep.hi == 127;
}

// S8Epilogue::shift_only for one channel: 4 ops per 16 outputs.
struct ShiftReq512 {
  __m512i lo, hi, rnd;
  __m128i s;
  ShiftReq512(const S8Epilogue& ep, int64_t c)
      : lo(_mm512_set1_epi32(ep.acc_lo[c])),
        hi(_mm512_set1_epi32(ep.acc_hi[c])),
        rnd(_mm512_set1_epi32(static_cast<int32_t>(ep.round_zp[c]))),
        s(_mm_cvtsi32_si128(ep.shift[c])) {}
  __m512i operator()(__m512i acc) const {
    return _mm512_sra_epi32(_mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(acc, lo), hi), rnd),
                            s);
  }
};

// How the plain-layout store narrows int32 lanes to bytes: truncation (the
// values are already inside [lo, hi]) or saturation to u8 / s8 (FastSatReq512).
enum class Narrowing { kTruncate, kSatU8, kSatS8 };

__attribute__((always_inline)) inline __m128i Narrow(Narrowing n, __m512i v) {
  switch (n) {
    case Narrowing::kSatU8:  // vpmovusdb reads unsigned lanes: negatives first to 0
      return _mm512_cvtusepi32_epi8(_mm512_max_epi32(v, _mm512_setzero_si512()));
    case Narrowing::kSatS8:
      return _mm512_cvtsepi32_epi8(v);
    default:
      return _mm512_cvtepi32_epi8(v);
  }
}

// Stores the valid lanes of v as bytes (plain layout, one channel).
__attribute__((always_inline)) inline void StoreBytes(const S8BsrConvArgs& a, Narrowing n,
                                                      uint8_t* yrow, int64_t q, __mmask16 tail,
                                                      __m512i v) {
  if (!a.lanes) {  // (plain stores where possible: masked ones are slower on some cores)
    if (tail == 0xFFFF)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(yrow + q), Narrow(n, v));
    else
      _mm_mask_storeu_epi8(yrow + q, tail, Narrow(n, v));
    return;
  }
  const S8LaneGroup& g = a.lanes[q / kLanes];
  const __mmask16 m = __mmask16(g.mask & tail);
  if (m == 0xFFFF) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(yrow + g.y_index), Narrow(n, v));
    return;
  }
  _mm_mask_storeu_epi8(yrow + g.y_index, TailMask(__builtin_popcount(m)),
                       Narrow(n, _mm512_maskz_compress_epi32(m, v)));
}

// Stores the valid 32-bit lanes of v (nChw4c: 4 channels per lane).
inline void StoreWords(const S8BsrConvArgs& a, uint8_t* yquad, int64_t q, __mmask16 tail,
                       __m512i v) {
  if (!a.lanes) {
    if (tail == 0xFFFF)
      _mm512_storeu_si512(yquad + q * 4, v);
    else
      _mm512_mask_storeu_epi32(yquad + q * 4, tail, v);
    return;
  }
  const S8LaneGroup& g = a.lanes[q / kLanes];
  const __mmask16 m = __mmask16(g.mask & tail);
  if (m == 0xFFFF) {
    _mm512_storeu_si512(yquad + g.y_index * 4, v);
    return;
  }
  _mm512_mask_storeu_epi32(yquad + g.y_index * 4, TailMask(__builtin_popcount(m)),
                           _mm512_maskz_compress_epi32(m, v));
}

// Four rows' int32 values -> bytes 0..3 of every lane, saturated to u8 or s8
// (exact for values already inside the type; the clamp for FastSatReq512):
// two vpackssdw (int16, order kept) and one vpackuswb / vpacksswb give, in
// each 128-bit lane k, the bytes of rows 0..3 at positions 4k..4k+3 row by
// row; one in-lane vpshufb transposes that 4x4 to position by position.
// 4 ops per 64 bytes (a shift + vpternlogd interleave took 6).
template <bool kU8>
inline __m512i Pack4(__m512i r0, __m512i r1, __m512i r2, __m512i r3) {
  const __m512i lo = _mm512_packs_epi32(r0, r1), hi = _mm512_packs_epi32(r2, r3);
  const __m512i b = kU8 ? _mm512_packus_epi16(lo, hi) : _mm512_packs_epi16(lo, hi);
  const __m512i transpose =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  return _mm512_shuffle_epi8(b, transpose);
}

// At most this many valid positions after the last full tile are fused into
// the full tiles (FusedTail) instead of a 16-lane tile of their own.
constexpr int kMaxFusedTail = 4;

// One tail position computed inside a full tile, vectorized over the block's
// 8 output channels: dq = its flat position - the tile's first, y = its
// compact output index.
struct FusedTail {
  int64_t dq = 0, y = 0;
};

// Requantizes the 8 channels of one fused tail position (bias already in
// acc; the general exact form, equal to the fast and shift-only forms) and
// stores them.
inline void StoreFused(const S8BsrConvArgs& a, int64_t i, __m256i acc, int64_t y) {
  const int64_t m0 = i * kRows;
  const Req256 rq(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.multiplier + m0)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.shift + m0)), a.ep);
  alignas(32) int32_t v[kRows];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), rq(acc));
  const int64_t rows = std::min<int64_t>(kRows, a.out_channels - m0);
  if (a.y_layout == S8Layout::kNchw) {
    for (int64_t r = 0; r < rows; ++r) a.y[(m0 + r) * a.y_plane + y] = static_cast<uint8_t>(v[r]);
    return;
  }
  // nChw4c: channels past M of the last quad are 0, quads past M not stored.
  const int64_t quads = (a.out_channels + 3) / 4;
  for (int64_t h = 0; h < 2 && i * 2 + h < quads; ++h) {
    uint8_t* yq = a.y + ((i * 2 + h) * a.y_plane + y) * 4;
    for (int64_t l = 0; l < 4; ++l)
      yq[l] = 4 * h + l < rows ? static_cast<uint8_t>(v[4 * h + l]) : 0;
  }
}

#define WBS_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

// With F (1 or 2), the tile also computes F tail positions (ft) vectorized
// over the output channels: the block's 8 weight words of a (quad, tap) are
// one ymm load, the position's input word a broadcast; so the last few
// positions of a 7x7 (48 + 1) or 14x14 (4 x 48 + 4) plane cost one extra
// vpdpbusd per step instead of a 16-lane tile of 8 (and a second pass over
// the weights).
template <int V, bool kFull = false, int F = 0>
inline void Tile(const S8BsrConvArgs& a, int64_t i, int64_t q, const __mmask16 (&lm)[kVecs],
                 const FusedTail* ft = nullptr) {
  static_assert(V >= 1 && V <= kVecs);
  static_assert(F >= 0 && F <= 2 && (F == 0 || (V == kVecs && kFull)));
  __m256i fa0 = _mm256_setzero_si256(), fa1 = fa0;
  int64_t fdq0 = 0, fdq1 = 0;
  if constexpr (F >= 1) {
    fa0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.bias + i * kRows));
    fa1 = fa0;
    fdq0 = ft[0].dq * 4;
    if constexpr (F >= 2) fdq1 = ft[1].dq * 4;
  }
  // Named accumulators (an array of __m512i is kept in memory by GCC 12).
#define WBS_INIT(r)                                              \
  __m512i a##r##0 = _mm512_set1_epi32(a.ep.bias[i * kRows + r]); \
  __m512i a##r##1 = a##r##0;                                     \
  __m512i a##r##2 = a##r##0;
  WBS_ROWS(WBS_INIT)
#undef WBS_INIT
  const int taps = a.taps;
  const int64_t* off = a.tap_offset;
  const int64_t block_quads = a.bc / 4, in_quads = (a.in_channels + 3) / 4;
  const int64_t xqs = a.x_quad_stride * 4;
  const __mmask16 l0 = lm[0], l1 = lm[1], l2 = lm[2];
  const int8_t* blocks = static_cast<const int8_t*>(a.packed);
  // One (quad, tap) step: V input vectors x 8 broadcast weight words.
  auto step = [&](const uint8_t* xp, const int8_t* w) __attribute__((always_inline)) {
    // Full tiles load unmasked (a masked load costs more on some cores).
    const __m512i v0 = kFull ? _mm512_loadu_si512(xp) : _mm512_maskz_loadu_epi32(l0, xp);
    if constexpr (V == 3) {
      const __m512i v1 =
          kFull ? _mm512_loadu_si512(xp + 64) : _mm512_maskz_loadu_epi32(l1, xp + 64);
      const __m512i v2 =
          kFull ? _mm512_loadu_si512(xp + 128) : _mm512_maskz_loadu_epi32(l2, xp + 128);
#define WBS_DP3(r)                                  \
  {                                                 \
    const __m512i wr = Bcast32(w + r * 4);          \
    a##r##0 = _mm512_dpbusd_epi32(a##r##0, v0, wr); \
    a##r##1 = _mm512_dpbusd_epi32(a##r##1, v1, wr); \
    a##r##2 = _mm512_dpbusd_epi32(a##r##2, v2, wr); \
  }
      WBS_ROWS(WBS_DP3)
#undef WBS_DP3
      if constexpr (F >= 1) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        int32_t x0;
        std::memcpy(&x0, xp + fdq0, 4);
        fa0 = _mm256_dpbusd_epi32(fa0, _mm256_set1_epi32(x0), wv);
        if constexpr (F >= 2) {
          int32_t x1;
          std::memcpy(&x1, xp + fdq1, 4);
          fa1 = _mm256_dpbusd_epi32(fa1, _mm256_set1_epi32(x1), wv);
        }
      }
    } else if constexpr (V == 2) {
      const __m512i v1 = _mm512_maskz_loadu_epi32(l1, xp + 64);
#define WBS_DP2(r)                                  \
  {                                                 \
    const __m512i wr = Bcast32(w + r * 4);          \
    a##r##0 = _mm512_dpbusd_epi32(a##r##0, v0, wr); \
    a##r##1 = _mm512_dpbusd_epi32(a##r##1, v1, wr); \
  }
      WBS_ROWS(WBS_DP2)
#undef WBS_DP2
    } else {
#define WBS_DP1(r) a##r##0 = _mm512_dpbusd_epi32(a##r##0, v0, Bcast32(w + r * 4));
      WBS_ROWS(WBS_DP1)
#undef WBS_DP1
    }
  };
  // 1x1 full tiles with whole 8-channel blocks prefetch the 2 x 3 input
  // lines of the block kPrefetchBlocks ahead. A block-row pass streams the
  // position chunk from L2 as one stream per kept channel quad (tens of
  // them), more than the core's prefetchers follow. Measured at 75% (1
  // thread): +3-8% on ResNet-50's 1x1 layers with K >= 512; prefetching the
  // next tile's lines instead lost 5-15% on the 14x14 and 7x7 planes (their
  // first tile is never covered, their last prefetches past the plane); 3x3
  // layers reuse lines across taps and gain nothing.
  auto prefetch = [&](const uint8_t* xp, int64_t quad_stride) __attribute__((always_inline)) {
    if constexpr (kFull && V == kVecs) {
      const char* p = reinterpret_cast<const char*>(xp);
      for (int h = 0; h < 2; ++h, p += quad_stride)
        for (int l = 0; l < kVecs; ++l) _mm_prefetch(p + l * 64, _MM_HINT_T0);
    }
  };
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t q0 = int64_t{a.col_idx[j]} * block_quads;
    const int64_t nq = std::min(block_quads, in_quads - q0);
    const int8_t* w = blocks + j * a.block_bytes;
    const uint8_t* xc = a.x + q0 * xqs + q * 4;
    if (taps == 1 && nq == 2) {
      // 1x1, a full 8-channel block: straight-line (the generic loops below
      // are one- and two-iteration loops here).
      if (j + kPrefetchBlocks < a.row_ptr[i + 1])
        prefetch(a.x + int64_t{a.col_idx[j + kPrefetchBlocks]} * block_quads * xqs + q * 4, xqs);
      step(xc, w);
      step(xc + xqs, w + kRows * 4);
    } else if (taps == 1) {
      for (int64_t qq = 0; qq < nq; ++qq) step(xc + qq * xqs, w + qq * kRows * 4);
    } else {
      for (int64_t qq = 0; qq < nq; ++qq, xc += xqs)
        for (int t = 0; t < taps; ++t, w += kRows * 4) step(xc + off[t] * 4, w);
    }
  }
  // Requantize in place, one row's constants live at a time (rows past M
  // become zeros: nChw4c stores them), then store straight from the named
  // registers (a stack array costs a store and a load per vector).
  const int64_t rows = std::min<int64_t>(kRows, a.out_channels - i * kRows);
  // The fast form with a whole-range output clamp skips the accumulator
  // clamp; the stores saturate instead (Pack4 always does: exact otherwise).
  const bool u8 = a.ep.lo >= 0, sat = a.ep.fast && !a.ep.shift_only && FullRange(a.ep);
  const Narrowing narrow = !sat ? Narrowing::kTruncate : u8 ? Narrowing::kSatU8 : Narrowing::kSatS8;
#define WBS_APPLY(r)                 \
  a##r##0 = rq(a##r##0);             \
  if (V >= 2) a##r##1 = rq(a##r##1); \
  if (V >= 3) a##r##2 = rq(a##r##2);
#define WBS_REQ(r)                                                       \
  if (r >= rows) {                                                       \
    a##r##0 = a##r##1 = a##r##2 = _mm512_setzero_si512();                \
  } else if (sat) {                                                      \
    const FastSatReq512 rq(a.ep, i* kRows + r);                          \
    WBS_APPLY(r)                                                         \
  } else if (a.ep.shift_only) {                                          \
    const ShiftReq512 rq(a.ep, i* kRows + r);                            \
    WBS_APPLY(r)                                                         \
  } else if (a.ep.fast) {                                                \
    const FastReq512 rq(a.ep, i* kRows + r);                             \
    WBS_APPLY(r)                                                         \
  } else {                                                               \
    const Req512 rq(_mm512_set1_epi32(a.ep.multiplier[i * kRows + r]),   \
                    _mm512_set1_epi32(a.ep.shift[i * kRows + r]), a.ep); \
    WBS_APPLY(r)                                                         \
  }
  WBS_ROWS(WBS_REQ)
#undef WBS_REQ
#undef WBS_APPLY
  if (a.y_layout == S8Layout::kNchw) {
#define WBS_STB(r)                                                           \
  if (r < rows) {                                                            \
    uint8_t* yrow = a.y + (i * kRows + r) * a.y_plane;                       \
    StoreBytes(a, narrow, yrow, q, lm[0], a##r##0);                          \
    if (V >= 2) StoreBytes(a, narrow, yrow, q + kLanes, lm[1], a##r##1);     \
    if (V >= 3) StoreBytes(a, narrow, yrow, q + 2 * kLanes, lm[2], a##r##2); \
  }
    WBS_ROWS(WBS_STB)
#undef WBS_STB
  } else {
    const int64_t quads = (a.out_channels + 3) / 4;
#define WBS_PACK(r0, r1, r2, r3, v)                         \
  (u8 ? Pack4<true>(a##r0##v, a##r1##v, a##r2##v, a##r3##v) \
      : Pack4<false>(a##r0##v, a##r1##v, a##r2##v, a##r3##v))
#define WBS_STW(h, r0, r1, r2, r3)                                                     \
  if (i * 2 + h < quads) {                                                             \
    uint8_t* yq = a.y + (i * 2 + h) * a.y_plane * 4;                                   \
    StoreWords(a, yq, q, lm[0], WBS_PACK(r0, r1, r2, r3, 0));                          \
    if (V >= 2) StoreWords(a, yq, q + kLanes, lm[1], WBS_PACK(r0, r1, r2, r3, 1));     \
    if (V >= 3) StoreWords(a, yq, q + 2 * kLanes, lm[2], WBS_PACK(r0, r1, r2, r3, 2)); \
  }
    WBS_STW(0, 0, 1, 2, 3)
    WBS_STW(1, 4, 5, 6, 7)
#undef WBS_STW
#undef WBS_PACK
  }
  if constexpr (F >= 1) StoreFused(a, i, fa0, ft[0].y);
  if constexpr (F >= 2) StoreFused(a, i, fa1, ft[1].y);
}
#undef WBS_ROWS

}  // namespace

void s8_bsr8xn_conv__avx512vnni(const S8BsrConvArgs& a) {
  assert(a.br == kRows && a.bc % 4 == 0 && a.q_begin % kLanes == 0 && a.q_end <= a.out_h * a.pitch);
  constexpr int64_t kTileQ = kVecs * kLanes;
  // The valid positions after the last full tile: fused into the full tiles
  // (one per tile, two when there are fewer tiles than positions) when there
  // are at most kMaxFusedTail of them and enough tiles.
  const int64_t tiles = (a.q_end - a.q_begin) / kTileQ;
  const int64_t tail_q = a.q_begin + tiles * kTileQ;
  int count = 0;
  struct {
    int64_t q, y;
  } tail[kMaxFusedTail + 1];
  for (int64_t q = tail_q; q < a.q_end && count <= kMaxFusedTail; ++q) {
    int64_t y = q;
    if (a.lanes) {
      const S8LaneGroup& g = a.lanes[q / kLanes];
      const int l = static_cast<int>(q % kLanes);
      if (!(g.mask >> l & 1u)) continue;
      y = g.y_index + __builtin_popcount(g.mask & ((1u << l) - 1));
    }
    tail[count++] = {q, y};
  }
  if (count > 0 && count <= kMaxFusedTail && 2 * tiles >= count) {
    const int per = tiles >= count ? 1 : 2;
    const int64_t fused = (count + per - 1) / per;
    const __mmask16 full[kVecs] = {0xFFFF, 0xFFFF, 0xFFFF};
    for (int64_t i = a.row_begin; i < a.row_end; ++i) {
      int64_t q = a.q_begin;
      for (int64_t k = 0; k < tiles - fused; ++k, q += kTileQ) Tile<kVecs, true>(a, i, q, full);
      for (int p = 0; p < count; q += kTileQ) {
        const int n = std::min(per, count - p);
        const FusedTail ft[2] = {{tail[p].q - q, tail[p].y},
                                 {n == 2 ? tail[p + 1].q - q : 0, n == 2 ? tail[p + 1].y : 0}};
        if (n == 2)
          Tile<kVecs, true, 2>(a, i, q, full, ft);
        else
          Tile<kVecs, true, 1>(a, i, q, full, ft);
        p += n;
      }
    }
    return;
  }
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    int64_t q = a.q_begin;
    for (; q + kVecs * kLanes <= a.q_end; q += kVecs * kLanes) {
      const __mmask16 lm[kVecs] = {0xFFFF, 0xFFFF, 0xFFFF};
      Tile<kVecs, true>(a, i, q, lm);
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

// The plan's input copy was a quarter of a stride-2 3x3 layer's time at 75%
// (plain input: 40%) with the compiler's 16-byte loops; these write 16 words
// per iteration. Stride 2 takes every other word (vpermt2d) or byte (the low
// byte of each zero-extended 16-bit pair); the main loops stop while the
// last pair's odd half is still a used position, the masked tail reads
// exactly up to the last one.
void s8_pack_row4c__avx512(const uint32_t* src, int64_t sx, int64_t n, uint32_t flip,
                           uint32_t* dst) {
  const __m512i f = _mm512_set1_epi32(static_cast<int32_t>(flip));
  int64_t k = 0;
  if (sx == 1) {
    for (; k + kLanes <= n; k += kLanes)
      _mm512_storeu_si512(dst + k, _mm512_xor_si512(_mm512_loadu_si512(src + k), f));
    const __mmask16 m = TailMask(n - k);
    _mm512_mask_storeu_epi32(dst + k, m, _mm512_xor_si512(_mm512_maskz_loadu_epi32(m, src + k), f));
    return;
  }
  assert(sx == 2);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (; k + kLanes < n; k += kLanes) {
    const __m512i a = _mm512_loadu_si512(src + 2 * k), b = _mm512_loadu_si512(src + 2 * k + 16);
    _mm512_storeu_si512(dst + k, _mm512_xor_si512(_mm512_permutex2var_epi32(a, even, b), f));
  }
  const int64_t used = 2 * (n - k) - 1;  // source words of the <= 16 left
  if (used <= 0) return;
  const __m512i a = _mm512_maskz_loadu_epi32(TailMask(used), src + 2 * k);
  const __m512i b = _mm512_maskz_loadu_epi32(TailMask(used - kLanes), src + 2 * k + 16);
  _mm512_mask_storeu_epi32(dst + k, TailMask(n - k),
                           _mm512_xor_si512(_mm512_permutex2var_epi32(a, even, b), f));
}

void s8_pack_row__avx512(const uint8_t* const (&s)[4], int64_t sx, int64_t n, uint32_t flip,
                         uint32_t* dst) {
  const __m512i f = _mm512_set1_epi32(static_cast<int32_t>(flip));
  // ternarylogic 0xCA = a ? b : c, bitwise: the low bytes from the first.
  const __m512i m1 = _mm512_set1_epi32(0xFF), m2 = _mm512_set1_epi32(0xFFFF),
                m3 = _mm512_set1_epi32(0xFFFFFF);
  auto merge = [&](__m512i c0, __m512i c1, __m512i c2, __m512i c3) {
    __m512i t = _mm512_ternarylogic_epi32(m1, c0, _mm512_slli_epi32(c1, 8), 0xCA);
    t = _mm512_ternarylogic_epi32(m2, t, _mm512_slli_epi32(c2, 16), 0xCA);
    t = _mm512_ternarylogic_epi32(m3, t, _mm512_slli_epi32(c3, 24), 0xCA);
    return _mm512_xor_si512(t, f);
  };
  int64_t k = 0;
  if (sx == 1) {
    auto ld = [](const uint8_t* p) {
      return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    };
    for (; k + kLanes <= n; k += kLanes)
      _mm512_storeu_si512(dst + k, merge(ld(s[0] + k), ld(s[1] + k), ld(s[2] + k), ld(s[3] + k)));
    const __mmask16 m = TailMask(n - k);
    auto ldm = [&](const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); };
    _mm512_mask_storeu_epi32(dst + k, m,
                             merge(ldm(s[0] + k), ldm(s[1] + k), ldm(s[2] + k), ldm(s[3] + k)));
    return;
  }
  assert(sx == 2);
  // 32 bytes zero-extended as 16-bit pairs: the even byte in bits 0..7 of
  // each lane; merge's selects drop the odd ones.
  auto ld = [](const uint8_t* p) {
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  };
  for (; k + kLanes < n; k += kLanes)
    _mm512_storeu_si512(
        dst + k, merge(ld(s[0] + 2 * k), ld(s[1] + 2 * k), ld(s[2] + 2 * k), ld(s[3] + 2 * k)));
  const int64_t used = 2 * (n - k) - 1;
  if (used <= 0) return;
  const __mmask32 m = used >= 32 ? ~__mmask32(0) : (__mmask32(1) << used) - 1;
  auto ldm = [&](const uint8_t* p) { return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi8(m, p)); };
  _mm512_mask_storeu_epi32(
      dst + k, TailMask(n - k),
      merge(ldm(s[0] + 2 * k), ldm(s[1] + 2 * k), ldm(s[2] + 2 * k), ldm(s[3] + 2 * k)));
}

void s8_bsr8x8_gemm__avx512vnni(const S8BsrGemmArgs& a) {
  assert(a.br == 8 && a.bc == 8);
  // One row of X at a time with 4 accumulators over alternating blocks: a
  // single accumulator would serialize on vpdpbusd's latency (batch-1 FC
  // layers are exactly that case). A block-row's weights stay in L1 across
  // the rows of X.
  const int8_t* blocks = static_cast<const int8_t*>(a.packed);
  const uint8_t* x = static_cast<const uint8_t*>(a.x);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    const int64_t m0 = i * 8;
    const Req256 rq(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.multiplier + m0)),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.shift + m0)), a.ep);
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.ep.bias + m0));
    const __mmask8 store =
        static_cast<__mmask8>(a.out_channels - m0 >= 8 ? 0xFF : (1u << (a.out_channels - m0)) - 1);
    const int32_t j0 = a.row_ptr[i], j1 = a.row_ptr[i + 1];
    for (int64_t n = a.n_begin; n < a.n_end; ++n) {
      const uint8_t* xr = x + n * a.x_stride;
      auto step = [&](__m512i acc, int32_t j) {
        int64_t xv;
        std::memcpy(&xv, xr + int64_t{a.col_idx[j]} * 8, 8);
        return _mm512_dpbusd_epi32(acc, _mm512_set1_epi64(xv),
                                   _mm512_loadu_si512(blocks + j * a.block_bytes));
      };
      __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
      int32_t j = j0;
      for (; j + 4 <= j1; j += 4) {
        acc0 = step(acc0, j);
        acc1 = step(acc1, j + 1);
        acc2 = step(acc2, j + 2);
        acc3 = step(acc3, j + 3);
      }
      for (; j < j1; ++j) acc0 = step(acc0, j);
      const __m512i acc =
          _mm512_add_epi32(_mm512_add_epi32(acc0, acc1), _mm512_add_epi32(acc2, acc3));
      // Lanes 2r and 2r+1 hold row r's two quads.
      const __m512i pair = _mm512_add_epi32(acc, _mm512_srli_epi64(acc, 32));
      const __m256i sum = _mm256_add_epi32(_mm512_cvtepi64_epi32(pair), bias);
      _mm_mask_storeu_epi8(a.y + n * a.y_stride + m0, store, _mm256_cvtepi32_epi8(rq(sum)));
    }
  }
}

}  // namespace wbs::kernels::sparse

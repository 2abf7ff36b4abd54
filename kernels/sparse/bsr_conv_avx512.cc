// f32_bsr{8,n}xn_conv__avx512 and f32_pack_plane__avx512: compiled with
// -mavx512f/vl/dq/bw (CMakeLists.txt); only called after the dispatcher saw
// avx512f.
//
// Register tile: 8 output channels x kVecs (3) vectors of 16 positions = 24 zmm
// accumulators. Per (input channel, tap) the kernel loads kVecs input vectors
// and issues 8 x kVecs FMAs whose weight operand is a broadcast from the
// packed block (CKR layout puts the 8 weights of one (ci, tap) side by side),
// so the FMA:load ratio is 24:11 and the loop runs at the FMA ports' rate.
//
// Tails. The position range ends in a partial tile. When at most
// kMaxChannelTail positions of it are valid (a 7x7 plane is 48 + 1, a
// batch-1 Gemm is 1) a 16-lane tile would run 8 FMAs per (ci, tap) for one
// or two useful lanes, so those positions are computed the other way round:
// one ymm holds the block's 8 output channels (one contiguous load from the
// CKR block) and the input value is broadcast. A batch-1 Gemm whose input is
// contiguous goes one step further (Gemv8): one zmm FMA covers two input
// channels, its input pair permuted out of one 8-channel load.
//
// Block rows other than 8 (f32_bsrnxn_conv__avx512) run in groups of up to
// 8 output channels; the weight pointer advances by br per (ci, tap).
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <type_traits>

#include "kernels/sparse/bsr_conv.h"
#include "kernels/sparse/bsr_conv_tail.h"

// GCC 12 reports the accumulator array as maybe-uninitialized inside the
// min/max intrinsics (it is fully written before use); a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace wbs::kernels::sparse {
namespace {

constexpr int kRows = 8;
constexpr int kLanes = 16;
constexpr int kVecs = 3;
constexpr int64_t kTileQ = kVecs * kLanes;
// Valid tail positions up to which the channel-vectorized path is cheaper
// than a 16-lane tile (per (ci, tap): 1 + P loads and P ymm FMAs vs 9 loads
// and 8 zmm FMAs).
constexpr int kMaxChannelTail = 4;
// No non-temporal output stores: they made ResNet-50's 64 -> 256 1x1 at
// 56x56 (3.2 MB output) +1-12% faster alone, but the whole model at 50%,
// 2 threads, 2.6% slower (10.92 vs 10.64 ms, 90 paired runs each, lead
// 21:26 UTC): the consumer reads the output next, from DRAM instead of L3.

inline __mmask16 TailMask(int64_t n) {
  return n >= kLanes ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Lanes [lo, hi) of 16 (both clamped to 0..16).
inline __mmask16 RangeMask(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, kLanes);
  hi = std::clamp<int64_t>(hi, 0, kLanes);
  if (hi <= lo) return 0;
  return __mmask16(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Walks the call's prefetch request (BsrConvArgs::prefetch_*) a few cache
// lines per block visit, so the requests overlap the FMAs: issued in one
// burst, hundreds of prefetches wait for free miss buffers and stall the
// core instead.
class Prefetcher {
 public:
  static constexpr int64_t kLine = 64;
  // At most this many lines per 8 FMA steps (a visit of an 8 x 8 block is
  // 8 x taps steps): the rest of the request is dropped. Enough for the
  // input and weight streams at 50% (ResNet-50's 56x56 1x1 layers read ~2.7
  // bytes of input per cycle; a 3x3 block-row's weights are 36 lines per
  // block) while the extra load-port work stays small when the data is
  // already cached and few blocks are stored (90%: ~3 blocks per block-row).
  static constexpr int64_t kMaxLinesPer8Steps = 6;
  // visits: the Step() calls of the kernel call; steps_per_visit: the FMA
  // steps between two of them.
  Prefetcher(const BsrConvArgs& a, int64_t visits, int64_t steps_per_visit) {
    w_ = reinterpret_cast<const char*>(a.prefetch_w);
    w_lines_ = a.prefetch_w ? (a.prefetch_w_bytes + kLine - 1) / kLine : 0;
    x_ = reinterpret_cast<const char*>(a.prefetch_x);
    x_ranges_ = a.prefetch_x ? a.prefetch_x_ranges : 0;
    // + 1: a range need not start on a line boundary.
    x_range_lines_ = a.prefetch_x_bytes / kLine + 1;
    x_stride_ = a.prefetch_x_stride * static_cast<int64_t>(sizeof(float));
    const int64_t total = w_lines_ + x_ranges_ * x_range_lines_;
    const int64_t cap = std::max<int64_t>(1, kMaxLinesPer8Steps * steps_per_visit / 8);
    per_visit_ = std::min(cap, (total + visits - 1) / std::max<int64_t>(visits, 1));
  }
  // The next lines of the request (none once it is done).
  __attribute__((always_inline)) inline void Step() {
    for (int64_t k = 0; k < per_visit_; ++k) {
      if (w_next_ < w_lines_) {
        _mm_prefetch(w_ + w_next_++ * kLine, _MM_HINT_T1);
        continue;
      }
      if (range_ >= x_ranges_) {
        per_visit_ = 0;
        return;
      }
      _mm_prefetch(x_ + range_ * x_stride_ + line_ * kLine, _MM_HINT_T1);
      if (++line_ == x_range_lines_) {
        line_ = 0;
        ++range_;
      }
    }
  }

 private:
  const char* w_ = nullptr;
  const char* x_ = nullptr;
  int64_t w_lines_ = 0, w_next_ = 0;
  int64_t x_ranges_ = 0, x_range_lines_ = 0, x_stride_ = 0, range_ = 0, line_ = 0;
  int64_t per_visit_ = 0;
};

// Adds the residual (if any), clamps and stores the valid lanes of v.
__attribute__((always_inline)) inline void StoreVec(const BsrConvArgs& a, float* yrow,
                                                    const float* rrow, int64_t q, __mmask16 tail,
                                                    __m512 v, __m512 lo, __m512 hi) {
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

// Stores v's first `rows` lanes (+ residual, clamped) at output channel mb..
// and compact index y.
inline void StoreChannels(const BsrConvArgs& a, int64_t mb, int rows, __m256 v, int64_t y) {
  alignas(32) float buf[kRows];
  _mm256_store_ps(buf, v);
  for (int r = 0; r < rows; ++r) {
    const int64_t idx = (mb + r) * a.y_channel_stride + y;
    float s = buf[r];
    if (a.residual) s += a.residual[idx];
    a.y[idx] = std::min(std::max(s, a.lo), a.hi);
  }
}

inline __m256 BiasChannels(const BsrConvArgs& a, int64_t mb, __mmask8 rm) {
  return a.bias ? _mm256_maskz_loadu_ps(rm, a.bias + mb) : _mm256_setzero_ps();
}

// One tail position fused into a full tile (see Tile): flat position q
// (an offset from the tile's first position) and compact output index y.
struct FusedTail {
  int64_t dq = 0, y = 0;
};

// Output channels mb .. mb+R-1 (rows h0.. of block-row i) x V vectors at q.
// With F, the tile also computes one tail position vectorized over the
// output channels (one ymm: the step's R weights are contiguous in CKR, the
// input broadcast): the range's last few positions then ride along with the
// full tiles' pass over the weights instead of streaming the block-row's
// weights once more (a 7x7 plane is 48 + 1 positions; its 1x1 layers'
// weights, 2-4 MB, come from L3 on each pass).
// T1: the call is a 1x1 conv (a.taps == 1), so the tap loop compiles out.
// Z (F == 2, R == 8, all 8 rows present): the two tail positions share one
// zmm, lanes 0-7 the first, 8-15 the second: the step's 8 weights broadcast
// to both halves (vbroadcastf32x8, a load) times the two inputs broadcast
// into the halves (the second merge-masked), one FMA where two ymm FMAs took
// two of the FMA pipes' slots. L1-resident microbenchmark of a 48 + 2
// tile: 8.3% slower than 48 positions alone with two ymm, 4.9% with one
// zmm (the extra work is 4.2%).
// Z with F == 1 (1x1, 8-row blocks, all rows present): the one tail
// position's zmm holds two consecutive steps (input channels), lanes 0-7
// channel c, 8-15 channel c + 1: their 16 weights are adjacent in CKR (one
// load), the two inputs broadcast into the halves, one FMA per two steps
// (L1-resident 48 + 1 tile: 4.0% slower than 48 alone with a ymm per step,
// 2.3% with this; the extra work is 2.1%). Blocks of fewer than 8 channels
// use the low half alone. Not for 3x3 blocks: pairing their 72 steps (two
// channels per 18-step iteration) left GCC one zmm short, it shuffled the
// accumulators and spilled (ResNet-50 layer4.0.conv2 -1..-6%).
template <int R, int V, int F = 0, bool T1 = false, bool Z = false>
inline void Tile(const BsrConvArgs& a, Prefetcher& pf, int64_t i, int h0, int64_t q,
                 const __mmask16 (&lm)[kVecs], const FusedTail* ft = nullptr) {
  static_assert(V >= 1 && V <= kVecs && R >= 1 && R <= kRows);
  static_assert(F >= 0 && F <= 2 && (F == 0 || V == kVecs));
  static_assert(!Z || (R == kRows && (F == 2 || (F == 1 && T1))));
  const int64_t mb = i * a.br + h0;
  const int frows = static_cast<int>(std::min<int64_t>(R, a.out_channels - mb));
  const __mmask8 rm = __mmask8((1u << std::max(frows, 0)) - 1);
  __m256 fa0 = _mm256_setzero_ps(), fa1 = fa0;
  __m512 fz = _mm512_setzero_ps(), fx = fz;
  const int64_t fdq0 = F >= 1 ? ft[0].dq : 0, fdq1 = F >= 2 ? ft[1].dq : 0;
#define WBS_INIT(r)                                                                       \
  __m512 a##r##0 =                                                                        \
      _mm512_set1_ps(r < R && a.bias && mb + r < a.out_channels ? a.bias[mb + r] : 0.0f); \
  __m512 a##r##1 = a##r##0;                                                               \
  __m512 a##r##2 = a##r##0;
  WBS_ROWS(WBS_INIT)
#undef WBS_INIT
  const int64_t bs = int64_t{a.br} * a.bc * a.taps;
  const int64_t wstep = a.br;
  const int taps = T1 ? 1 : a.taps;
  const int64_t* off = a.tap_offset;
  const __mmask16 l0 = lm[0], l1 = lm[1], l2 = lm[2];
  // One (input channel, tap) step: V input vectors at xp, R weights at w.
  // ph (Z, F == 1): 1 the first channel of a pair, 2 the second, 3 alone.
  auto step = [&](const float* xp, const float* w, auto ph) __attribute__((always_inline)) {
    const __m512 v0 = _mm512_maskz_loadu_ps(l0, xp);
    if constexpr (V == 3) {
      const __m512 v1 = _mm512_maskz_loadu_ps(l1, xp + kLanes);
      const __m512 v2 = _mm512_maskz_loadu_ps(l2, xp + 2 * kLanes);
#define WBS_FMA3(r)                             \
  if constexpr (r < R) {                        \
    const __m512 wr = _mm512_set1_ps(w[r]);     \
    a##r##0 = _mm512_fmadd_ps(wr, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(wr, v1, a##r##1); \
    a##r##2 = _mm512_fmadd_ps(wr, v2, a##r##2); \
  }
      WBS_ROWS(WBS_FMA3)
#undef WBS_FMA3
      if constexpr (Z && F == 1) {
        if constexpr (decltype(ph)::value == 1) {
          fx = _mm512_set1_ps(xp[fdq0]);
        } else if constexpr (decltype(ph)::value == 2) {
          fx = _mm512_mask_broadcastss_ps(fx, 0xFF00, _mm_load_ss(xp + fdq0));
          fz = _mm512_fmadd_ps(_mm512_loadu_ps(w - wstep), fx, fz);
        } else {
          fz = _mm512_mask3_fmadd_ps(_mm512_castps256_ps512(_mm256_loadu_ps(w)),
                                     _mm512_set1_ps(xp[fdq0]), fz, 0x00FF);
        }
      } else if constexpr (Z) {
        const __m512 wv = _mm512_broadcast_f32x8(_mm256_loadu_ps(w));
        const __m512 xv =
            _mm512_mask_broadcastss_ps(_mm512_set1_ps(xp[fdq0]), 0xFF00, _mm_load_ss(xp + fdq1));
        fz = _mm512_fmadd_ps(wv, xv, fz);
      } else if constexpr (F >= 1) {
        const __m256 wv = _mm256_maskz_loadu_ps(rm, w);
        fa0 = _mm256_fmadd_ps(wv, _mm256_set1_ps(xp[fdq0]), fa0);
        if constexpr (F >= 2) fa1 = _mm256_fmadd_ps(wv, _mm256_set1_ps(xp[fdq1]), fa1);
      }
    } else if constexpr (V == 2) {
      const __m512 v1 = _mm512_maskz_loadu_ps(l1, xp + kLanes);
#define WBS_FMA2(r)                             \
  if constexpr (r < R) {                        \
    const __m512 wr = _mm512_set1_ps(w[r]);     \
    a##r##0 = _mm512_fmadd_ps(wr, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(wr, v1, a##r##1); \
  }
      WBS_ROWS(WBS_FMA2)
#undef WBS_FMA2
    } else {
#define WBS_FMA1(r) \
  if constexpr (r < R) a##r##0 = _mm512_fmadd_ps(_mm512_set1_ps(w[r]), v0, a##r##0);
      WBS_ROWS(WBS_FMA1)
#undef WBS_FMA1
    }
  };
  const int32_t j0 = a.row_ptr[i], j1 = a.row_ptr[i + 1];
  // 1x1 with 8-channel blocks: each step also pulls one channel of the tile's
  // input for the block two ahead into L1 (after the row's last blocks: the
  // next tile's first ones). The block-columns are random, so the hardware
  // prefetchers lose the stream at every block and the first steps of a
  // block waited for L2 (-1..+4% at 50% and 90% on ResNet-50's 1x1 layers,
  // most of them gaining 1-4%; on 3x3 planes the same request for every tap's rows measured
  // nothing). A channel's V vectors are V lines, V + 1 when the plane's
  // rows are not line-aligned.
  const int64_t xstride_bytes = a.x_channel_stride * int64_t{sizeof(float)};
  const bool x_lines =
      ((reinterpret_cast<uintptr_t>(a.x) | static_cast<uintptr_t>(xstride_bytes)) & 63) == 0;
  for (int32_t j = j0; j < j1; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs + h0;
    const float* xc = a.x + c0 * a.x_channel_stride + q;
    if (taps == 1) {
      pf.Step();
      if (nci == 8) {
        const bool wrap = j + 2 >= j1;
        const int32_t jn = wrap ? j0 + std::min(j + 2 - j1, j1 - j0 - 1) : j + 2;
        const char* nx = reinterpret_cast<const char*>(
            a.x + int64_t{a.col_idx[jn]} * 8 * a.x_channel_stride + q + (wrap ? kTileQ : 0));
#pragma GCC unroll 8
        for (int ci = 0; ci < 8; ++ci, xc += a.x_channel_stride, w += wstep, nx += xstride_bytes) {
          if constexpr (Z && F == 1) {
            if (ci % 2 == 0)
              step(xc, w, std::integral_constant<int, 1>());
            else
              step(xc, w, std::integral_constant<int, 2>());
          } else {
            step(xc, w, std::integral_constant<int, 0>());
          }
          _mm_prefetch(nx, _MM_HINT_T0);
          if (V >= 2) _mm_prefetch(nx + 64, _MM_HINT_T0);
          if (V >= 3) _mm_prefetch(nx + 128, _MM_HINT_T0);
          if (!x_lines) _mm_prefetch(nx + V * 64 - 1, _MM_HINT_T0);
        }
        continue;
      }
      // 1x1: a plain loop over the block's channels (the generic tap loop
      // below costs ~20% here: one-iteration inner loops).
#pragma GCC unroll 8
      for (int64_t ci = 0; ci < nci; ++ci, xc += a.x_channel_stride, w += wstep)
        step(xc, w, std::integral_constant<int, 3>());
    } else {
      // More taps: the prefetch request goes out a few lines per input
      // channel, not per block (a 3x3 block is 72 steps; in a burst at its
      // start, the next block-row's weights cost ResNet-50's 7x7 3x3 layer
      // ~10% when they were cached already).
      for (int64_t ci = 0; ci < nci; ++ci, xc += a.x_channel_stride) {
        pf.Step();
#pragma GCC unroll 9
        for (int t = 0; t < taps; ++t, w += wstep)
          step(xc + off[t], w, std::integral_constant<int, 3>());
      }
    }
  }
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  const int64_t rows = std::min<int64_t>(R, a.out_channels - mb);
  if (!a.lanes && rows == R) {
    // Every lane is an output at q (no dropped columns) and all R rows
    // exist: straight-line stores without the per-vector checks of
    // StoreVec (the per-tile epilogue was ~110 cycles, as much as a block's
    // FMAs; ResNet-50's 1x1 layers with K = 64..512 run +2-5% at 50% and
    // +2-11% at 90%). Masked stores even for full tiles: plain ones measured 2-4%
    // slower at 50%.
    const int64_t ys = a.y_channel_stride;
    // Row pointers advanced row by row, each passed through an empty asm:
    // otherwise GCC computes all 24 store addresses before the block loop
    // and spills them (24 more stores and loads per tile).
    float* yr = a.y + mb * ys + q;
    const float* rr = a.residual ? a.residual + mb * ys + q : nullptr;
    auto store = [&](auto res) __attribute__((always_inline)) {
#define WBS_ST(r, k, lk)                                                \
  if constexpr (r < R && k < V) {                                       \
    __m512 v = a##r##k;                                                 \
    if constexpr (decltype(res)::value)                                 \
      v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lk, rr + k * kLanes)); \
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);                        \
    _mm512_mask_storeu_ps(yr + k * kLanes, lk, v);                      \
  }
#define WBS_ST3(r)                                             \
  asm("" : "+r"(yr));                                          \
  if constexpr (decltype(res)::value) asm("" : "+r"(rr));      \
  WBS_ST(r, 0, l0) WBS_ST(r, 1, l1) WBS_ST(r, 2, l2) yr += ys; \
  if constexpr (decltype(res)::value) rr += ys;
      WBS_ROWS(WBS_ST3)
#undef WBS_ST3
#undef WBS_ST
    };
    if (rr)
      store(std::true_type());
    else
      store(std::false_type());
  } else if (rows == R) {
    // (Kept apart from the branch above on purpose: one store path for both,
    // with offsets and masks from per-tile arrays and the permute compiled
    // out, measured 1-thread medians 3.55x / 7.28x at 75 / 90% against
    // 3.69x / 7.65x, two paired rounds, lead 22:11 UTC.)
    // Dropped columns (phase planes, pitch > out_w): the valid lanes of a
    // vector go to consecutive outputs. The lane groups are the same for
    // all R rows, so the packing (a permute by the compress of 0..15 under
    // the group's mask) and the store mask are worked out once per tile
    // instead of per vector with a full-or-not branch, which mispredicts on
    // grids whose pitch is no multiple of 16.
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 lk[kVecs] = {l0, l1, l2};
    __m512i perm[kVecs];
    __mmask16 put[kVecs];
    int64_t yk[kVecs];
    for (int k = 0; k < V; ++k) {
      const LaneGroup& g = a.lanes[q / kLanes + k];
      const __mmask16 m = __mmask16(g.mask & lk[k]);
      perm[k] = _mm512_maskz_compress_epi32(m, iota);
      put[k] = TailMask(__builtin_popcount(m));
      yk[k] = g.y_index;
    }
    const int64_t ys = a.y_channel_stride;
    // Row pointers as in the branch above (no precomputed, spilled addresses).
    float* yr = a.y + mb * ys;
    const float* rr = a.residual ? a.residual + mb * ys : nullptr;
    auto store = [&](auto res) __attribute__((always_inline)) {
#define WBS_SL(r, k)                                                                    \
  if constexpr (r < R && k < V) {                                                       \
    __m512 v = _mm512_permutexvar_ps(perm[k], a##r##k);                                 \
    if constexpr (decltype(res)::value)                                                 \
      v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(put[k], rr + yk[k]));                  \
    _mm512_mask_storeu_ps(yr + yk[k], put[k], _mm512_min_ps(_mm512_max_ps(v, lo), hi)); \
  }
#define WBS_SL3(r)                                        \
  asm("" : "+r"(yr));                                     \
  if constexpr (decltype(res)::value) asm("" : "+r"(rr)); \
  WBS_SL(r, 0) WBS_SL(r, 1) WBS_SL(r, 2) yr += ys;        \
  if constexpr (decltype(res)::value) rr += ys;
      WBS_ROWS(WBS_SL3)
#undef WBS_SL3
#undef WBS_SL
    };
    if (rr)
      store(std::true_type());
    else
      store(std::false_type());
  } else {
#define WBS_STORE(r)                                                          \
  if (r < rows) {                                                             \
    const int64_t off = (mb + r) * a.y_channel_stride;                        \
    float* yrow = a.y + off;                                                  \
    const float* rrow = a.residual ? a.residual + off : nullptr;              \
    StoreVec(a, yrow, rrow, q, l0, a##r##0, lo, hi);                          \
    if (V >= 2) StoreVec(a, yrow, rrow, q + kLanes, l1, a##r##1, lo, hi);     \
    if (V >= 3) StoreVec(a, yrow, rrow, q + 2 * kLanes, l2, a##r##2, lo, hi); \
  }
    WBS_ROWS(WBS_STORE)
#undef WBS_STORE
  }
  if constexpr (Z && F == 1) {
    fa0 = _mm256_add_ps(_mm512_castps512_ps256(fz), _mm512_extractf32x8_ps(fz, 1));
  } else if constexpr (Z) {
    fa0 = _mm512_castps512_ps256(fz);
    fa1 = _mm512_extractf32x8_ps(fz, 1);
  }
  if constexpr (F >= 1) {
    if (frows > 0) {
      const __m256 b = BiasChannels(a, mb, rm);
      StoreChannels(a, mb, frows, _mm256_add_ps(fa0, b), ft[0].y);
      if constexpr (F >= 2) StoreChannels(a, mb, frows, _mm256_add_ps(fa1, b), ft[1].y);
    }
  }
}
#undef WBS_ROWS

using Tail = BsrTail<kMaxChannelTail>;
inline Tail FindTail(const BsrConvArgs& a) { return FindBsrTail<kTileQ, kMaxChannelTail>(a); }

// P tail positions, output channels mb.. (the rows of rm), vectorized over
// the channels. A partial sums per position break the FMA latency chain.
template <int P>
void ChannelTail(const BsrConvArgs& a, int64_t i, int h0, int rows, const Tail& tail) {
  constexpr int A = P == 1 ? 4 : 2;
  const int64_t mb = i * a.br + h0;
  const __mmask8 rm = __mmask8((1u << rows) - 1);
  const int64_t bs = int64_t{a.br} * a.bc * a.taps;
  const int64_t wstep = a.br;
  const int taps = a.taps;
  const int64_t* off = a.tap_offset;
  __m256 acc[P][A];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int u = 0; u < A; ++u) acc[p][u] = _mm256_setzero_ps();
  int64_t qs[P];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) qs[p] = tail.qs[p];
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t steps = std::min<int64_t>(a.bc, a.in_channels - c0) * taps;
    const float* w = a.blocks + j * bs + h0;
    const float* xc = a.x + c0 * a.x_channel_stride;
    int t = 0;
    auto step = [&](auto u) {
      const __m256 wv = _mm256_maskz_loadu_ps(rm, w);
      const float* xp = xc + off[t];
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p)
        acc[p][u] = _mm256_fmadd_ps(wv, _mm256_set1_ps(xp[qs[p]]), acc[p][u]);
      w += wstep;
      if (++t == taps) {
        t = 0;
        xc += a.x_channel_stride;
      }
    };
    int64_t s = 0;
    for (; s + A <= steps; s += A) {
      step(std::integral_constant<int, 0>());
      step(std::integral_constant<int, 1>());
      if constexpr (A == 4) {
        step(std::integral_constant<int, 2>());
        step(std::integral_constant<int, 3>());
      }
    }
    for (; s < steps; ++s) step(std::integral_constant<int, 0>());
  }
  const __m256 bias = BiasChannels(a, mb, rm);
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) {
    __m256 v = acc[p][0];
#pragma GCC unroll 4
    for (int u = 1; u < A; ++u) v = _mm256_add_ps(v, acc[p][u]);
    StoreChannels(a, mb, rows, _mm256_add_ps(v, bias), tail.ys[p]);
  }
}

// One position of a 1x1 problem whose input channels are adjacent (x
// channel stride 1: a batch-1 Gemm), 8-row blocks: zmm lanes 0..7 hold the
// weights of input channel 2k, lanes 8..15 of channel 2k+1 (adjacent in
// CKR), multiplied by the pair (x[2k] x8, x[2k+1] x8) permuted out of one
// load; the two halves are added at the end.
void Gemv8(const BsrConvArgs& a, int64_t i, int rows, int64_t q, int64_t y) {
  const int64_t mb = i * kRows;
  const int64_t bs = int64_t{kRows} * a.bc;
  const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i two = _mm512_set1_epi32(2);
  const __m512i idx1 = _mm512_add_epi32(idx0, two), idx2 = _mm512_add_epi32(idx1, two),
                idx3 = _mm512_add_epi32(idx2, two);
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int32_t j = a.row_ptr[i];
  const int32_t j_end = a.row_ptr[i + 1];
  if (a.bc == 8) {
    // 8x8 blocks: two blocks per iteration on 8 accumulators (one FMA chain
    // per block would be latency-bound), no masks except at a ragged C.
    __m512 acc4 = acc0, acc5 = acc0, acc6 = acc0, acc7 = acc0;
    auto x8 = [&](int32_t jj) {
      const int64_t c0 = int64_t{a.col_idx[jj]} * 8;
      return c0 + 8 <= a.in_channels
                 ? _mm512_castps256_ps512(_mm256_loadu_ps(a.x + c0 + q))
                 : _mm512_maskz_loadu_ps(TailMask(a.in_channels - c0), a.x + c0 + q);
    };
    for (; j + 2 <= j_end; j += 2) {
      const float* w = a.blocks + int64_t{j} * 64;
      const __m512 xa = x8(j), xb = x8(j + 1);
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w), _mm512_permutexvar_ps(idx0, xa), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 16), _mm512_permutexvar_ps(idx1, xa), acc1);
      acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 32), _mm512_permutexvar_ps(idx2, xa), acc2);
      acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 48), _mm512_permutexvar_ps(idx3, xa), acc3);
      acc4 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 64), _mm512_permutexvar_ps(idx0, xb), acc4);
      acc5 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 80), _mm512_permutexvar_ps(idx1, xb), acc5);
      acc6 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 96), _mm512_permutexvar_ps(idx2, xb), acc6);
      acc7 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 112), _mm512_permutexvar_ps(idx3, xb), acc7);
    }
    acc0 = _mm512_add_ps(acc0, acc4);
    acc1 = _mm512_add_ps(acc1, acc5);
    acc2 = _mm512_add_ps(acc2, acc6);
    acc3 = _mm512_add_ps(acc3, acc7);
  }
  for (; j < j_end; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs;
    const float* xc = a.x + c0 + q;
    for (int64_t ci = 0; ci < nci; ci += 8, w += 64) {
      // Channels past nci read as 0; weights past the block's bc are not read.
      const __m512 x8 = _mm512_maskz_loadu_ps(TailMask(std::min<int64_t>(8, nci - ci)), xc + ci);
      const int64_t wn = std::min<int64_t>(8, a.bc - ci) * kRows;  // weights in this group
      acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(TailMask(wn), w),
                             _mm512_permutexvar_ps(idx0, x8), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(TailMask(wn - 16), w + 16),
                             _mm512_permutexvar_ps(idx1, x8), acc1);
      acc2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(TailMask(wn - 32), w + 32),
                             _mm512_permutexvar_ps(idx2, x8), acc2);
      acc3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(TailMask(wn - 48), w + 48),
                             _mm512_permutexvar_ps(idx3, x8), acc3);
    }
  }
  const __m512 s = _mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3));
  const __m256 v = _mm256_add_ps(_mm512_extractf32x8_ps(s, 0), _mm512_extractf32x8_ps(s, 1));
  const __mmask8 rm = __mmask8((1u << rows) - 1);
  StoreChannels(a, mb, rows, _mm256_add_ps(v, BiasChannels(a, mb, rm)), y);
}

// Output channels h0 .. h0+R-1 of block-row i over [q_begin, q_end).
template <int R, bool T1 = false>
void RowGroup(const BsrConvArgs& a, Prefetcher& pf, int64_t i, int h0, const Tail& tail) {
  const __mmask16 full[kVecs] = {0xFFFF, 0xFFFF, 0xFFFF};
  const int64_t tiles = (tail.q - a.q_begin) / kTileQ;
  const bool has_tail = tail.q < a.q_end && tail.count > 0;
  // A few tail positions and enough full tiles: the last tiles carry one
  // tail position each, or two when there are fewer tiles than positions
  // (7x7: 48 + 1; 14x14: 4 x 48 + 4, or 2 x 48 + 4 in a position chunk).
  if (has_tail && tail.count <= kMaxChannelTail && 2 * tiles >= tail.count) {
    const int per = tiles >= tail.count ? 1 : 2;
    const int64_t fused = (tail.count + per - 1) / per;
    int64_t q = a.q_begin;
    for (int64_t k = 0; k < tiles - fused; ++k, q += kTileQ)
      Tile<R, kVecs, 0, T1>(a, pf, i, h0, q, full);
    for (int p = 0; p < tail.count; q += kTileQ) {
      const int n = std::min(per, tail.count - p);
      const FusedTail ft[2] = {{tail.qs[p] - q, tail.ys[p]},
                               {n == 2 ? tail.qs[p + 1] - q : 0, n == 2 ? tail.ys[p + 1] : 0}};
      if (n == 2 && R == kRows && a.out_channels - i * a.br - h0 >= R)
        Tile<R, kVecs, 2, T1, R == kRows>(a, pf, i, h0, q, full, ft);
      else if (n == 2)
        Tile<R, kVecs, 2, T1>(a, pf, i, h0, q, full, ft);
      else if (T1 && R == kRows && a.br == kRows && a.out_channels - i * a.br - h0 >= R)
        Tile<R, kVecs, 1, T1, T1 && R == kRows>(a, pf, i, h0, q, full, ft);
      else
        Tile<R, kVecs, 1, T1>(a, pf, i, h0, q, full, ft);
      p += n;
    }
    return;
  }
  for (int64_t q = a.q_begin; q < tail.q; q += kTileQ) Tile<R, kVecs, 0, T1>(a, pf, i, h0, q, full);
  if (!has_tail) return;
  if (tail.count <= kMaxChannelTail) {
    const int rows = static_cast<int>(std::min<int64_t>(R, a.out_channels - i * a.br - h0));
    if (rows <= 0) return;
    switch (tail.count) {
      case 1:
        if (R == kRows && a.br == kRows && a.taps == 1 && a.x_channel_stride == 1)
          Gemv8(a, i, rows, tail.qs[0], tail.ys[0]);
        else
          ChannelTail<1>(a, i, h0, rows, tail);
        return;
      case 2:
        return ChannelTail<2>(a, i, h0, rows, tail);
      case 3:
        return ChannelTail<3>(a, i, h0, rows, tail);
      default:
        return ChannelTail<4>(a, i, h0, rows, tail);
    }
  }
  const int64_t n = a.q_end - tail.q;
  const __mmask16 lm[kVecs] = {TailMask(n), TailMask(n - kLanes), TailMask(n - 2 * kLanes)};
  if (n <= kLanes)
    Tile<R, 1, 0, T1>(a, pf, i, h0, tail.q, lm);
  else if (n <= 2 * kLanes)
    Tile<R, 2, 0, T1>(a, pf, i, h0, tail.q, lm);
  else
    Tile<R, 3, 0, T1>(a, pf, i, h0, tail.q, lm);
}

// A Prefetcher for the call: Tile steps it once per stored block and tile
// (1x1), or once per input channel of a block (more taps).
Prefetcher CallPrefetcher(const BsrConvArgs& a, int groups) {
  const int64_t tiles = std::max<int64_t>(1, (a.q_end - a.q_begin) / kTileQ);
  const int64_t blocks = a.row_ptr[a.row_end] - a.row_ptr[a.row_begin];
  const int64_t per_block = a.taps == 1 ? 1 : a.bc;
  return Prefetcher(a, blocks * tiles * groups * per_block, a.taps * a.bc / per_block);
}

// Stride-2 direct tile (f32_bsr8xn_conv_s2__avx512): 8 output channels x V
// vectors of 16 positions starting at q, each vector inside one output row
// (the pitch is a multiple of 16). Vector k's input for tap t is the even
// lanes of 32 consecutive floats of one input row, as the plan's table
// (BsrS2Vec) says.
template <int V>
void TileS2(const BsrConvArgs& a, Prefetcher& pf, int64_t i, int64_t q,
            const __mmask16 (&lm)[kVecs]) {
  static_assert(V >= 1 && V <= kVecs);
  const int64_t mb = i * kRows;
  const int taps = a.taps;
  const BsrS2Vec* vec = a.s2_vecs + q / kLanes;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#define WBS_S2ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define WBS_INIT(r)                                                                           \
  __m512 a##r##0 = _mm512_set1_ps(a.bias && mb + r < a.out_channels ? a.bias[mb + r] : 0.0f); \
  __m512 a##r##1 = a##r##0;                                                                   \
  __m512 a##r##2 = a##r##0;
  WBS_S2ROWS(WBS_INIT)
#undef WBS_INIT
  const int64_t bs = int64_t{kRows} * a.bc * taps;
  // The masks straight from memory (kmovw k, m16: a load-port uop; through a
  // general register, kmovw k, r32 takes port 5, which the FMAs and the
  // permutes share).
  auto mask = [](const uint16_t* m) __attribute__((always_inline)) {
    __mmask16 k;
    asm("kmovw %1, %0" : "=k"(k) : "m"(*m));
    return k;
  };
  auto load = [&](const float* xc, int t, int k) __attribute__((always_inline)) {
    const float* p = xc + vec[k].off[t];
    return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(mask(&vec[k].lo[t]), p), even,
                                  _mm512_maskz_loadu_ps(mask(&vec[k].hi[t]), p + kLanes));
  };
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs;
    const float* xc = a.x + c0 * a.x_channel_stride;
    for (int64_t ci = 0; ci < nci; ++ci, xc += a.x_channel_stride) {
      pf.Step();
#pragma GCC unroll 9
      for (int t = 0; t < taps; ++t, w += kRows) {
        const __m512 v0 = load(xc, t, 0);
        if constexpr (V == 3) {
          const __m512 v1 = load(xc, t, 1), v2 = load(xc, t, 2);
#define WBS_FMA(r)                              \
  {                                             \
    const __m512 wr = _mm512_set1_ps(w[r]);     \
    a##r##0 = _mm512_fmadd_ps(wr, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(wr, v1, a##r##1); \
    a##r##2 = _mm512_fmadd_ps(wr, v2, a##r##2); \
  }
          WBS_S2ROWS(WBS_FMA)
#undef WBS_FMA
        } else if constexpr (V == 2) {
          const __m512 v1 = load(xc, t, 1);
#define WBS_FMA(r)                              \
  {                                             \
    const __m512 wr = _mm512_set1_ps(w[r]);     \
    a##r##0 = _mm512_fmadd_ps(wr, v0, a##r##0); \
    a##r##1 = _mm512_fmadd_ps(wr, v1, a##r##1); \
  }
          WBS_S2ROWS(WBS_FMA)
#undef WBS_FMA
        } else {
#define WBS_FMA(r) a##r##0 = _mm512_fmadd_ps(_mm512_set1_ps(w[r]), v0, a##r##0);
          WBS_S2ROWS(WBS_FMA)
#undef WBS_FMA
        }
      }
    }
  }
  // Stores: per vector the permute that packs its valid lanes (compress of
  // 0..15 under the lane mask), the store mask and the compact index, once
  // per tile (as Tile's dropped-column branch).
  const __m512 lo = _mm512_set1_ps(a.lo), hi = _mm512_set1_ps(a.hi);
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i perm[kVecs];
  __mmask16 put[kVecs];
  int64_t yk[kVecs];
  for (int k = 0; k < V; ++k) {
    if (a.lanes) {
      const LaneGroup& g = a.lanes[q / kLanes + k];
      const __mmask16 m = __mmask16(g.mask & lm[k]);
      perm[k] = _mm512_maskz_compress_epi32(m, iota);
      put[k] = TailMask(__builtin_popcount(m));
      yk[k] = g.y_index;
    } else {
      perm[k] = iota;
      put[k] = lm[k];
      yk[k] = q + k * kLanes;
    }
  }
  const int64_t rows = std::min<int64_t>(kRows, a.out_channels - mb);
  const int64_t ys = a.y_channel_stride;
  float* yr = a.y + mb * ys;
  const float* rr = a.residual ? a.residual + mb * ys : nullptr;
#define WBS_SV(r, k)                                                                    \
  if constexpr (k < V) {                                                                \
    __m512 v = _mm512_permutexvar_ps(perm[k], a##r##k);                                 \
    if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(put[k], rr + yk[k]));            \
    _mm512_mask_storeu_ps(yr + yk[k], put[k], _mm512_min_ps(_mm512_max_ps(v, lo), hi)); \
  }
#define WBS_SV3(r)                                   \
  if (r < rows) {                                    \
    asm("" : "+r"(yr));                              \
    WBS_SV(r, 0) WBS_SV(r, 1) WBS_SV(r, 2) yr += ys; \
    if (rr) rr += ys;                                \
  }
  WBS_S2ROWS(WBS_SV3)
#undef WBS_SV3
#undef WBS_SV
#undef WBS_S2ROWS
}

}  // namespace

void f32_bsr8xn_conv__avx512(const BsrConvArgs& a) {
  assert(a.br == kRows && a.q_begin % kLanes == 0 && a.q_end <= a.out_h * a.pitch);
  const Tail tail = FindTail(a);
  Prefetcher pf = CallPrefetcher(a, 1);
  // 1x1 convs get a Tile without the tap loop: with both paths in one
  // function GCC allocated the 1x1 step loop's registers worse (1-2% slower).
  if (a.taps == 1) {
    for (int64_t i = a.row_begin; i < a.row_end; ++i) RowGroup<kRows, true>(a, pf, i, 0, tail);
  } else {
    for (int64_t i = a.row_begin; i < a.row_end; ++i) RowGroup<kRows>(a, pf, i, 0, tail);
  }
}

void f32_bsr8xn_conv_s2__avx512(const BsrConvArgs& a) {
  assert(a.br == kRows && a.q_begin % kLanes == 0 && a.q_end <= a.out_h * a.pitch);
  assert(a.s2_vecs && a.pitch % kLanes == 0 && a.taps <= kBsrS2MaxTaps);
  Prefetcher pf = CallPrefetcher(a, 1);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    for (int64_t q = a.q_begin; q < a.q_end; q += kTileQ) {
      const int64_t n = a.q_end - q;
      const __mmask16 lm[kVecs] = {TailMask(n), TailMask(n - kLanes), TailMask(n - 2 * kLanes)};
      if (n > 2 * kLanes)
        TileS2<3>(a, pf, i, q, lm);
      else if (n > kLanes)
        TileS2<2>(a, pf, i, q, lm);
      else
        TileS2<1>(a, pf, i, q, lm);
    }
  }
}

void f32_bsrnxn_conv__avx512(const BsrConvArgs& a) {
  assert(a.q_begin % kLanes == 0 && a.q_end <= a.out_h * a.pitch);
  const Tail tail = FindTail(a);
  Prefetcher pf = CallPrefetcher(a, (a.br + kRows - 1) / kRows);
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    for (int h0 = 0; h0 < a.br; h0 += kRows) {
      switch (std::min(kRows, a.br - h0)) {
        case 1:
          RowGroup<1>(a, pf, i, h0, tail);
          break;
        case 2:
          RowGroup<2>(a, pf, i, h0, tail);
          break;
        case 3:
          RowGroup<3>(a, pf, i, h0, tail);
          break;
        case 4:
          RowGroup<4>(a, pf, i, h0, tail);
          break;
        case 5:
          RowGroup<5>(a, pf, i, h0, tail);
          break;
        case 6:
          RowGroup<6>(a, pf, i, h0, tail);
          break;
        case 7:
          RowGroup<7>(a, pf, i, h0, tail);
          break;
        default:
          RowGroup<8>(a, pf, i, h0, tail);
          break;
      }
    }
  }
}

namespace {

// f32_pack_plane__avx512 writes up to kPackOuts planes per pass (dst, and
// dst_odd / dst_prev: the same window at column offset + 1 / - 1), in
// segments of up to kPackSeg 16-column chunks per row.
constexpr int kPackOuts = 3;
constexpr int kPackSeg = 32;

// One segment of a pass: per output plane k and chunk i, the source offset
// of lane 0 within the row (stride 2: of the even lane pair) and the source
// lanes inside the row (hi: the second vector of a stride-2 pair); per
// chunk the first output column and the output lanes.
struct PackSegment {
  int outs = 0, chunks = 0;
  float* dst[kPackOuts] = {};
  int64_t base[kPackOuts][kPackSeg] = {};
  __mmask16 lo[kPackOuts][kPackSeg] = {}, hi[kPackOuts][kPackSeg] = {};
  int64_t col[kPackSeg] = {};
  __mmask16 store[kPackSeg] = {};
};

// Channels [c_begin, c_end) of one segment: every output plane, every chunk,
// straight-line (SX: stride; N: chunks per row, 0 = seg.chunks; K: planes).
// Each plane's chunk is its own masked load (or two and a vpermt2ps at
// stride 2) and masked store: the padding is in the masks, so a row has no
// branches and no scalar stores. The previous loop (per-row tests for the
// padding and the optional planes, scalar edge columns, one shared load for
// the planes) took 12-15 cycles per one-chunk row of ResNet-50's 7x7 and
// 14x14 planes: 12-20% of its 90%-sparse 3x3 and stride-2 layers.
template <int SX, int N, int K, bool P>
void PackChannels(const PackPlaneArgs& a, const PackSegment& seg) {
  static_assert(!P || (SX == 2 && K >= 2));
  constexpr int kMax = N > 0 ? N : kPackSeg;
  const int n = N > 0 ? N : seg.chunks;
  // Local copies: the stores (through may_alias vector types) would make
  // the compiler reload every field of seg after each of them.
  int64_t base[K][kMax], col[kMax];
  __mmask16 lo[K][kMax], hi[K][kMax], store[kMax];
  float* dst[K];
  for (int i = 0; i < n; ++i) {
    col[i] = seg.col[i];
    store[i] = seg.store[i];
    for (int k = 0; k < K; ++k) {
      base[k][i] = seg.base[k][i];
      lo[k][i] = seg.lo[k][i];
      hi[k][i] = seg.hi[k][i];
    }
  }
  for (int k = 0; k < K; ++k) dst[k] = seg.dst[k];
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  // Lane 15 of the load at base - 16: source column base - 1, if inside the row.
  const __mmask16 edge = P && K == 3 && base[0][0] - 1 >= 0 && base[0][0] - 1 < a.in_w ? 0x8000 : 0;
  // Plane rows whose source row is inside x: [r_in, r_out); the rest are zeros.
  auto first_row_at = [&](int64_t iy) {  // first r with r * sy + row_off >= iy
    return std::clamp<int64_t>((iy - a.row_off + a.sy - 1) / a.sy, 0, a.rows);
  };
  const int64_t r_in = first_row_at(0);
  const int64_t r_out = std::max(r_in, first_row_at(a.in_h));
  const int64_t src_row_stride = a.sy * a.in_w, cols = a.cols;
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const int64_t dst_off = c * a.dst_channel_stride;
    auto zeros = [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int k = 0; k < K; ++k)
          for (int i = 0; i < n; ++i)
            _mm512_mask_storeu_ps(dst[k] + dst_off + r * cols + col[i], store[i],
                                  _mm512_setzero_ps());
    };
    zeros(0, r_in);
    const float* src = a.x + c * a.in_h * a.in_w + (r_in * a.sy + a.row_off) * a.in_w;
    for (int64_t r = r_in; r < r_out; ++r, src += src_row_stride) {
      const int64_t row = dst_off + r * cols;
      // Stride-2 triple: the column offset - 1 plane is the odd plane one
      // lane to the right; its lane 0 comes from the previous chunk, or for
      // the first chunk from source column base - 1 (lane 15 of edge).
      __m512 prev_odd = _mm512_setzero_ps();
      if constexpr (P && K == 3) prev_odd = _mm512_maskz_loadu_ps(edge, src + base[0][0] - kLanes);
#pragma GCC unroll 4
      for (int i = 0; i < n; ++i) {
        if constexpr (P) {
          // The even and odd lanes of the same two loads (their masks are
          // the lanes inside the row: outside it both planes read zeros).
          const __m512 l = _mm512_maskz_loadu_ps(lo[0][i], src + base[0][i]);
          const __m512 h = _mm512_maskz_loadu_ps(hi[0][i], src + base[0][i] + kLanes);
          const __m512 o = _mm512_permutex2var_ps(l, odd, h);
          _mm512_mask_storeu_ps(dst[0] + row + col[i], store[i],
                                _mm512_permutex2var_ps(l, even, h));
          _mm512_mask_storeu_ps(dst[1] + row + col[i], store[i], o);
          if constexpr (K == 3) {
            const __m512 pv = _mm512_castsi512_ps(
                _mm512_alignr_epi32(_mm512_castps_si512(o), _mm512_castps_si512(prev_odd), 15));
            _mm512_mask_storeu_ps(dst[2] + row + col[i], store[i], pv);
            prev_odd = o;
          }
        }
#pragma GCC unroll 3
        for (int k = P ? K : 0; k < K; ++k) {
          __m512 v;
          if constexpr (SX == 1) {
            v = _mm512_maskz_loadu_ps(lo[k][i], src + base[k][i]);
          } else {
            const __m512 l = _mm512_maskz_loadu_ps(lo[k][i], src + base[k][i]);
            const __m512 h = _mm512_maskz_loadu_ps(hi[k][i], src + base[k][i] + kLanes);
            v = _mm512_permutex2var_ps(l, even, h);
          }
          _mm512_mask_storeu_ps(dst[k] + row + col[i], store[i], v);
        }
      }
    }
    zeros(r_out, a.rows);
  }
}

template <int SX, int K, bool P>
void PackChannelsN(const PackPlaneArgs& a, const PackSegment& seg) {
  switch (seg.chunks) {
    case 1:
      return PackChannels<SX, 1, K, P>(a, seg);
    case 2:
      return PackChannels<SX, 2, K, P>(a, seg);
    case 3:
      return PackChannels<SX, 3, K, P>(a, seg);
    case 4:
      return PackChannels<SX, 4, K, P>(a, seg);
    default:
      return PackChannels<SX, 0, K, P>(a, seg);
  }
}

// Planes of at most 8 columns (7x7 outputs) whose window in a source row
// spans at most 16 columns: two plane rows per vector. Two row loads (columns
// b .. b + 15 of source rows r and r + 1, b the leftmost column any plane
// reads; the load mask zeroes the columns outside the row) feed each plane's
// pair of rows through one vpermt2ps; K planes: 2 loads, K permutes and K
// stores per two rows, where the chunk loop takes K loads (stride 2: 2, and
// the permutes) and K stores per row, most of them half-empty and split
// across cache lines (ResNet-50 layer4.0.conv2's copy was 18 us of 117 at
// 90%).
template <int K>
void PackRowPairs(const PackPlaneArgs& a, float* const (&dst)[kPackOuts],
                  const int64_t (&col_off)[kPackOuts]) {
  const int64_t cols = a.cols, b = *std::min_element(col_off, col_off + K);
  const __mmask16 load = RangeMask(-b, a.in_w - b);
  __m512i idx[K];
  for (int k = 0; k < K; ++k) {
    alignas(64) int32_t lane[kLanes] = {};
    for (int64_t l = 0; l < 2 * cols; ++l)
      lane[l] = static_cast<int32_t>((l % cols) * a.sx + col_off[k] - b + (l >= cols ? kLanes : 0));
    idx[k] = _mm512_load_si512(lane);
  }
  const __mmask16 pair = TailMask(2 * cols), single = TailMask(cols);
  auto row = [&](const float* xc, int64_t r) {
    const int64_t iy = r * a.sy + a.row_off;
    return iy >= 0 && iy < a.in_h && r < a.rows ? _mm512_maskz_loadu_ps(load, xc + iy * a.in_w + b)
                                                : _mm512_setzero_ps();
  };
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* xc = a.x + c * a.in_h * a.in_w;
    const int64_t d = c * a.dst_channel_stride;
    for (int64_t r = 0; r < a.rows; r += 2) {
      const __m512 lo = row(xc, r), hi = row(xc, r + 1);
      const __mmask16 put = r + 1 < a.rows ? pair : single;
#pragma GCC unroll 3
      for (int k = 0; k < K; ++k)
        _mm512_mask_storeu_ps(dst[k] + d + r * cols, put, _mm512_permutex2var_ps(lo, idx[k], hi));
    }
  }
}

}  // namespace

void f32_pack_plane__avx512(const PackPlaneArgs& a) {
  if (a.sx != 1 && a.sx != 2) return f32_pack_plane__ref(a);
  const int64_t w = a.in_w;
  PackSegment seg;
  int64_t col_off[kPackOuts];
  seg.dst[seg.outs] = a.dst;
  col_off[seg.outs++] = a.col_off;
  if (a.dst_odd) {
    seg.dst[seg.outs] = a.dst_odd;
    col_off[seg.outs++] = a.col_off + 1;
  }
  if (a.dst_prev) {
    seg.dst[seg.outs] = a.dst_prev;
    col_off[seg.outs++] = a.col_off - 1;
  }
  const int64_t span = (a.cols - 1) * a.sx + *std::max_element(col_off, col_off + seg.outs) -
                       *std::min_element(col_off, col_off + seg.outs) + 1;
  if (2 * a.cols <= kLanes && span <= kLanes) {
    if (seg.outs == 1) return PackRowPairs<1>(a, seg.dst, col_off);
    if (seg.outs == 2) return PackRowPairs<2>(a, seg.dst, col_off);
    return PackRowPairs<3>(a, seg.dst, col_off);
  }
  for (int64_t s0 = 0; s0 < a.cols; s0 += kPackSeg * kLanes) {
    const int64_t s1 = std::min(a.cols, s0 + kPackSeg * kLanes);
    seg.chunks = 0;
    for (int64_t col = s0; col < s1; col += kLanes) {
      const int i = seg.chunks++;
      seg.col[i] = col;
      seg.store[i] = TailMask(s1 - col);
      // Output lane l is column col + l, source column (col + l) * sx + off:
      // load the source lanes inside the row (stride 2: two vectors, the
      // even lanes for this plane, the odd ones for dst_odd), zeros outside.
      for (int k = 0; k < seg.outs; ++k) {
        const int64_t base = col * a.sx + col_off[k];
        seg.base[k][i] = base;
        seg.lo[k][i] = RangeMask(-base, w - base);
        seg.hi[k][i] = a.sx == 2 ? RangeMask(-base - kLanes, w - base - kLanes) : 0;
      }
    }
    const bool pair = a.sx == 2 && a.dst_odd;
    if (a.sx == 1) {
      if (seg.outs == 1)
        PackChannelsN<1, 1, false>(a, seg);
      else if (seg.outs == 2)
        PackChannelsN<1, 2, false>(a, seg);
      else
        PackChannelsN<1, 3, false>(a, seg);
    } else if (seg.outs == 1) {
      PackChannelsN<2, 1, false>(a, seg);
    } else if (seg.outs == 2) {
      if (pair)
        PackChannelsN<2, 2, true>(a, seg);
      else
        PackChannelsN<2, 2, false>(a, seg);
    } else {
      PackChannelsN<2, 3, true>(a, seg);
    }
  }
}

}  // namespace wbs::kernels::sparse

// f32_bsr8xn_conv__avx2: compiled with -mavx2 -mfma (CMakeLists.txt); only
// called after the dispatcher saw avx2 and fma.
//
// Register tile: 4 of the block's 8 output channels x kVecs (3) ymm of 8
// positions = 12 accumulators, two passes per block-row; per (input channel,
// tap): 3 loads, 4 broadcasts, 12 FMAs. AVX2 has 16 ymm registers: 12
// accumulators + 3 inputs + 1 broadcast. (The previous 4 x 2 tile, 8
// accumulators, ran at ~53% of oneDNN's rate: 8 independent FMA chains only
// just cover Zen 3's 4-cycle FMA latency at 2 FMAs per cycle, and each step
// paid 6 loads for 8 FMAs.) 1x1 convs get a tile without the tap loop; in
// block-rows of more than kKGroup blocks both passes run kKGroup blocks at a
// time, so the second finds the tile's input in L1 (ResNet-50's 1024- and
// 2048-channel 1x1 layers: +7-16% at 50%, +10-15% at 0%; measurements in
// docs/BENCHMARKS.md "AVX2 kernel rework"). Software prefetch did not pay
// here: the block-two-ahead L1 prefetch of the AVX-512 kernel measured
// -18..+33% per layer (median -3%, 7x7 layers worse), the plan's L2 hints
// (BsrConvArgs::prefetch_*) issued as the AVX-512 kernel does made ResNet-50
// slower (CPU-time p10 86.0 vs 77.5 ms).
//
// Tiled 1x1 input (BsrConvArgs::x_tile_stride, BsrConvPlan "Tiled"): a
// tile's input for one block is 768 contiguous bytes, and calls of several
// block-rows run tiles outer so that input is reused across them. With the
// input L1-resident (a diagnostic build reading 16 channels only) the 1x1
// layers ran 1.8-3.0x over oneDNN at 50%: the first pass's input reads from
// L2 are what the plain layout loses. Not done: an 8-row one-pass tile with
// the output channels in the ymm and the positions broadcast (1 load, 12
// broadcasts, 12 FMAs per input channel, 8 x 12 positions, transposed for
// the stores) ran at 0.44-0.92x of this tile on every 1x1 layer: load-port bound.
// Not done either: input-channel chunks in tiled calls (per tile, per chunk
// of ~8 kept blocks per block-row and >= 128 channels, so the tile's chunk
// of input stays in L1, every block-row of the call runs its blocks of the
// chunk, partial sums of 16 block-rows parked between chunks; same bits).
// Forced tiled, 9 ResNet-50 1x1 layers, 4 alternating runs: median 1.45x /
// 5.65x over oneDNN at 50 / 90% vs 1.57x / 5.78x without chunks; batches of
// 4 block-rows 1.51x / 6.23x vs 1.59x / 6.57x (7 layers); fixed 128-channel
// chunks cost most at 90% (1.6 blocks per Tile call and park). A tile's
// tiled input is one contiguous C x 96 B run, which the L2 prefetchers
// stream; chunks add the partial sums' traffic and cut each block-row's
// weights into short runs (docs/BENCHMARKS.md "AVX2 ... h_avx2i").
//
// Direct (in-place) 1x1 plans with >= 8 kept blocks per block-row and >= 4
// tiles of positions call it with groups of block-rows too, and run them
// tiles outer the same way (no copy; same bits): ResNet-50 layer1.x.conv1,
// layer2.0.conv1, layer2.x.conv1 at 50% +6-13%, paired in process; sparser
// rows (90%: 0.91-0.95x) and 7x7 planes (0.93x) lost, so they stay one
// block-row per call (docs/BENCHMARKS.md "AVX2 direct 1x1 ... h_avx2l").
//
// The 1x1 full tile's channel loop stays GCC's code (h_avx2k). Unlike the
// 3x3 taps (Taps9 below), it keeps all 12 accumulators in registers: no
// spills, no FMA with a memory destination in any copy of Tile<3, true, 1,
// *>, and it ran at up to 82-88 GFLOP/s (~90% of the FMA peak) with input
// and weights L1-resident. The same loop in inline asm was slower, paired on
// ResNet-50's 15 1x1 layers (same bits): one block per 8 channels 0.93x at
// 0, 50 and 90%, one per channel 0.97x. prefetcht0 of the next tile's
// lines of each channel (plain layout, first pass) was 0.95x / 1.01x at 50
// / 90% (0.79-1.11x per layer). Those layers lose in the memory system, not
// in this loop. Measurements: docs/BENCHMARKS.md "AVX2 1x1 tile (h_avx2k)".
//
// Tails. When at most kMaxChannelTail positions of the range's last partial
// tile are valid (a 7x7 plane is 2 x 24 + 1, a batch-1 Gemm is 1) they are
// computed the other way round: one ymm holds the block's 8 output channels
// (one contiguous load from the CKR block, ragged rows are stored as zeros)
// and the input value is broadcast. For a batch-1 Gemm this is the GEMV
// form: one FMA per (input channel) for all 8 output channels, where a
// position tile spends 2 x 12 FMAs (one useful lane).
//
// Partial vectors (grids with dropped columns, the range's end) are packed
// with vpermps from a 256-entry table and stored with vmaskmovps (AVX2 has
// no vcompressps).
//
// 3x3 convs (h_avx2j). A full tile runs each input channel's 9 taps in one
// inline-asm block (Taps9): the accumulators pinned to ymm0-11, ymm12-15 for
// the 3 input vectors and the broadcast. GCC's code for the same unrolled
// taps kept 1-2 accumulators on the stack (their FMA chains went through
// store-to-load forwarding) and ran at ~50-65% of the FMA peak on
// L1-resident input (16 -> 64 channels, 14x14 / 28x28); the asm is 7-19%
// faster there and on ResNet-50's 3x3 layers -1..+19% (same bits). Stride-2
// tiles (four phase planes: 6 row ranges per channel instead of 3) also
// prefetch the next channel's lines: +5-16% at 50%, -1..+8% at 90% on those
// layers; stride 1 gained 0-12% at 50% but lost up to 4% at 90% and 1-9%
// on 7x7, so not there. The stride-2 plane copy writes both column
// phases from one pass over x (was one pass each): 1.3-1.5x faster, and it
// was 20-30% of a stride-2 layer's time at 90%. Not done (measured,
// docs/BENCHMARKS.md "AVX2 3x3 convs (h_avx2j)"): a 2 x 6-ymm tile (2
// broadcasts per 12 FMAs: 0.95-0.97x), the weights splat by vpermilps from
// one vbroadcastf128 (0.78x), both passes per group of 2-4 blocks with the
// sums parked so the second pass finds the input in L1 (0.97-0.99x), partial
// output vectors stored by 128/64/32-bit stores instead of vmaskmovps
// (0.98x), the partial 3x3 tile in the same asm with the third vector
// masked (14x14: 0.99-1.04x, within the noise), and shifted planes for <=
// 14 output columns (0.84-1.01x at 50%, 0.89-0.95x at 90%: the plan keeps
// phase planes on AVX2).
//
// f32_pack_plane__avx2 (the plan's input copies) is at the end of the file.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cassert>

#include "kernels/sparse/bsr_conv.h"
#include "kernels/sparse/bsr_conv_tail.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int kRows = 8;
constexpr int kHalf = 4;    // output channels per tile pass
constexpr int kLanes = 8;   // positions per ymm
constexpr int kGroup = 16;  // positions per LaneGroup
constexpr int kVecs = 3;
constexpr int64_t kTileQ = kVecs * kLanes;
static_assert(kTileQ == kBsrTileQ);
// Valid tail positions up to which the channel-vectorized path is cheaper
// than a position tile (per (ci, tap): 1 + P loads and P FMAs for all 8
// output channels vs 2 x (V + 4) loads and 2 x 4V FMAs).
constexpr int kMaxChannelTail = 4;
// 1x1 block-rows with more stored blocks than this run both passes of a
// tile over kKGroup blocks at a time: a tile's input is ~1 KB per block
// (8 channels x 2 lines) plus its weights, and L1 is 32 KB.
constexpr int32_t kKGroup = 16;

// Offset of position q in an input channel (BsrConvArgs::x_tile_stride).
inline int64_t XOff(const BsrConvArgs& a, int64_t q) {
  return a.x_tile_stride ? q / kTileQ * a.x_tile_stride + q % kTileQ : q;
}

inline __m256i LoadMask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::clamp<int64_t>(n, 0, 8))), idx);
}

// vpermps indices that move the set lanes of an 8-bit mask to the front:
// byte k of kCompress[m] is the lane of m's k-th set bit.
constexpr std::array<uint64_t, 256> MakeCompress() {
  std::array<uint64_t, 256> t{};
  for (int m = 0; m < 256; ++m) {
    int k = 0;
    for (int l = 0; l < kLanes; ++l)
      if (m >> l & 1) t[m] |= uint64_t(l) << (8 * k++);
  }
  return t;
}
constexpr std::array<uint64_t, 256> kCompress = MakeCompress();

// Where vector k of a tile goes: compact output index of its first valid
// lane, the valid lanes (bit l: position q + 8k + l) and, when not all 8
// are valid, the permute that packs them and the mask of the packed lanes
// (the valid lanes are consecutive in y).
struct VecOut {
  int64_t y = 0;
  uint32_t mask = 0;
  __m256i perm, put;
};

inline VecOut OutOf(const BsrConvArgs& a, int64_t p) {
  const uint32_t tail = p >= a.q_end            ? 0u
                        : a.q_end - p >= kLanes ? 0xFFu
                                                : (1u << (a.q_end - p)) - 1;
  VecOut o;
  o.y = p;
  o.mask = tail;
  if (a.lanes) {
    const LaneGroup& g = a.lanes[p / kGroup];
    const int half = static_cast<int>(p % kGroup) / kLanes;
    o.y = g.y_index + (half ? __builtin_popcount(g.mask & 0xFFu) : 0);
    o.mask = (g.mask >> (kLanes * half)) & tail;
  }
  o.perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(kCompress[o.mask])));
  o.put = LoadMask(__builtin_popcount(o.mask));
  return o;
}

// Adds the residual (if any), clamps and stores the valid lanes of v.
// (Partial vectors were a scalar loop over the lanes, one branch per lane:
// ~1 in 4 vectors of a 56x56 phase grid, pitch 58.)
inline void StoreVec(const BsrConvArgs& a, int64_t ch, const VecOut& o, __m256 v, __m256 lo,
                     __m256 hi) {
  const int64_t off = ch * a.y_channel_stride + o.y;
  float* yrow = a.y + off;
  const float* rrow = a.residual ? a.residual + off : nullptr;
  if (o.mask == 0xFFu) {
    if (rrow) v = _mm256_add_ps(v, _mm256_loadu_ps(rrow));
    _mm256_storeu_ps(yrow, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
    return;
  }
  v = _mm256_permutevar8x32_ps(v, o.perm);
  if (rrow) v = _mm256_add_ps(v, _mm256_maskload_ps(rrow, o.put));
  _mm256_maskstore_ps(yrow, o.put, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
}

// One input channel's 9 taps of a full 4 x 3 tile (3x3 convs): per tap 3
// loads, 4 broadcasts, 12 FMAs, acc += w * x as in step() (same bits). In
// asm because GCC's code for the unrolled taps kept 1-2 accumulators in
// memory (store-to-load forwarding on their FMA chains); see the top
// comment. kPrefetch: each tap also prefetches (prefetcht0) the first and
// last line of its range in the next channel, pf = x + x_channel_stride.
// clang-format off
#define WBS_T9_ROW(t, r, o)                                \
  "vbroadcastss " #t "*32+" #o "(%[w]), %%ymm15\n\t"       \
  "vfmadd231ps %%ymm12, %%ymm15, %[a" #r "0]\n\t"           \
  "vfmadd231ps %%ymm13, %%ymm15, %[a" #r "1]\n\t"           \
  "vfmadd231ps %%ymm14, %%ymm15, %[a" #r "2]\n\t"
#define WBS_T9_STEP(t, pf)                                 \
  "movq " #t "*8(%[off]), %%rax\n\t"                       \
  "vmovups (%[x],%%rax,4), %%ymm12\n\t"                    \
  "vmovups 32(%[x],%%rax,4), %%ymm13\n\t"                  \
  "vmovups 64(%[x],%%rax,4), %%ymm14\n\t"                  \
  pf                                                       \
  WBS_T9_ROW(t, 0, 0) WBS_T9_ROW(t, 1, 4) WBS_T9_ROW(t, 2, 8) WBS_T9_ROW(t, 3, 12)
#define WBS_T9_PF                                          \
  "prefetcht0 (%[pf],%%rax,4)\n\t"                         \
  "prefetcht0 92(%[pf],%%rax,4)\n\t"
#define WBS_T9_TAPS(pf)                                    \
  WBS_T9_STEP(0, pf) WBS_T9_STEP(1, pf) WBS_T9_STEP(2, pf) \
  WBS_T9_STEP(3, pf) WBS_T9_STEP(4, pf) WBS_T9_STEP(5, pf) \
  WBS_T9_STEP(6, pf) WBS_T9_STEP(7, pf) WBS_T9_STEP(8, pf)
#define WBS_T9_OPERANDS                                                                     \
      : [a00] "+x"(a00), [a01] "+x"(a01), [a02] "+x"(a02), [a10] "+x"(a10), [a11] "+x"(a11), \
        [a12] "+x"(a12), [a20] "+x"(a20), [a21] "+x"(a21), [a22] "+x"(a22), [a30] "+x"(a30), \
        [a31] "+x"(a31), [a32] "+x"(a32)                                                     \
      : [x] "r"(x), [w] "r"(w), [off] "r"(off), [pf] "r"(pf)                                 \
      : "rax", "xmm12", "xmm13", "xmm14", "xmm15", "memory"
// clang-format on
template <bool kPrefetch>
inline void Taps9(const float* x, const float* pf, const float* w, const int64_t* off, __m256& a00,
                  __m256& a01, __m256& a02, __m256& a10, __m256& a11, __m256& a12, __m256& a20,
                  __m256& a21, __m256& a22, __m256& a30, __m256& a31, __m256& a32) {
  if constexpr (kPrefetch)
    asm(WBS_T9_TAPS(WBS_T9_PF) WBS_T9_OPERANDS);
  else
    asm(WBS_T9_TAPS("") WBS_T9_OPERANDS);
}
#undef WBS_T9_OPERANDS
#undef WBS_T9_TAPS
#undef WBS_T9_PF
#undef WBS_T9_STEP
#undef WBS_T9_ROW

// The accumulators are named variables (an array of __m256 would live in
// memory).
#define WBS_ROWS4(X) X(0) X(1) X(2) X(3)

// Output channels i*8 + h0 .. +3 x V vectors at q. kFull: every lane of the
// V vectors may be loaded without a mask (q + 8V <= q_end). T: the taps
// when known at compile time (1: the tap loop compiles out; 9: unrolled), 0
// for a.taps.
template <int V, bool kFull, int T, bool kTiled = false>
inline void Tile(const BsrConvArgs& a, int64_t i, int h0, int64_t q, int32_t jb, int32_t je,
                 float* part) {
  static_assert(V >= 1 && V <= kVecs);
  const int64_t mb = i * kRows + h0;
#define WBS_INIT(r)                                                                           \
  __m256 a##r##0 = _mm256_set1_ps(a.bias && mb + r < a.out_channels ? a.bias[mb + r] : 0.0f); \
  __m256 a##r##1 = a##r##0;                                                                   \
  __m256 a##r##2 = a##r##0;
  WBS_ROWS4(WBS_INIT)
#undef WBS_INIT
  const bool resume = part && jb > a.row_ptr[i], suspend = part && je < a.row_ptr[i + 1];
  if (resume) {
#define WBS_LOAD(r)                                                                 \
  a##r##0 = _mm256_loadu_ps(part + (r * kVecs + 0) * kLanes);                       \
  if constexpr (V >= 2) a##r##1 = _mm256_loadu_ps(part + (r * kVecs + 1) * kLanes); \
  if constexpr (V >= 3) a##r##2 = _mm256_loadu_ps(part + (r * kVecs + 2) * kLanes);
    WBS_ROWS4(WBS_LOAD)
#undef WBS_LOAD
  }
  __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0;
  if constexpr (!kFull) {
    m0 = LoadMask(a.q_end - q);
    m1 = LoadMask(a.q_end - q - kLanes);
    m2 = LoadMask(a.q_end - q - 2 * kLanes);
  }
  // In a tiled copy this tile is one copy tile (q_begin % kTileQ == 0), so
  // its vectors are contiguous too.
  const int64_t x0 = kTiled ? XOff(a, q) : q;
  constexpr int64_t d1 = kLanes, d2 = 2 * kLanes;
  auto step = [&](const float* xp, const float* w) __attribute__((always_inline)) {
    __m256 v0, v1, v2;
    if constexpr (kFull) {
      v0 = _mm256_loadu_ps(xp);
      if constexpr (V >= 2) v1 = _mm256_loadu_ps(xp + d1);
      if constexpr (V >= 3) v2 = _mm256_loadu_ps(xp + d2);
    } else {
      v0 = _mm256_maskload_ps(xp, m0);
      if constexpr (V >= 2) v1 = _mm256_maskload_ps(xp + d1, m1);
      if constexpr (V >= 3) v2 = _mm256_maskload_ps(xp + d2, m2);
    }
#define WBS_FMA(r)                                                    \
  {                                                                   \
    const __m256 wr = _mm256_broadcast_ss(w + r);                     \
    a##r##0 = _mm256_fmadd_ps(wr, v0, a##r##0);                       \
    if constexpr (V >= 2) a##r##1 = _mm256_fmadd_ps(wr, v1, a##r##1); \
    if constexpr (V >= 3) a##r##2 = _mm256_fmadd_ps(wr, v2, a##r##2); \
  }
    WBS_ROWS4(WBS_FMA)
#undef WBS_FMA
  };
  const int64_t bs = int64_t{kRows} * a.bc * a.taps;
  const int64_t xs = a.x_channel_stride;
  // Stride 2 (the taps reach past 3 rows of one plane: four phase planes)
  // prefetches the next channel's lines in the 3x3 asm (see the top comment).
  bool t9_prefetch = false;
  if constexpr (kFull && T == 9 && V == kVecs)
    t9_prefetch = *std::max_element(a.tap_offset, a.tap_offset + 9) > 2 * (a.pitch + 1);
  for (int32_t j = jb; j < je; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs + h0;
    const float* xc = a.x + c0 * xs + x0;
    if constexpr (T == 1) {
#pragma GCC unroll 8
      for (int64_t ci = 0; ci < nci; ++ci, xc += xs, w += kRows) step(xc, w);
    } else if constexpr (kFull && T == 9 && V == kVecs) {
      if (t9_prefetch) {
        for (int64_t ci = 0; ci < nci; ++ci, xc += xs, w += 9 * kRows)
          Taps9<true>(xc, xc + xs, w, a.tap_offset, a00, a01, a02, a10, a11, a12, a20, a21, a22,
                      a30, a31, a32);
      } else {
        for (int64_t ci = 0; ci < nci; ++ci, xc += xs, w += 9 * kRows)
          Taps9<false>(xc, xc + xs, w, a.tap_offset, a00, a01, a02, a10, a11, a12, a20, a21, a22,
                       a30, a31, a32);
      }
    } else {
      const int taps = T ? T : a.taps;
      for (int64_t ci = 0; ci < nci; ++ci, xc += xs) {
#pragma GCC unroll 9
        for (int t = 0; t < taps; ++t, w += kRows) step(xc + a.tap_offset[t], w);
      }
    }
  }
  if (suspend) {
#define WBS_SAVE(r)                                                                 \
  _mm256_storeu_ps(part + (r * kVecs + 0) * kLanes, a##r##0);                       \
  if constexpr (V >= 2) _mm256_storeu_ps(part + (r * kVecs + 1) * kLanes, a##r##1); \
  if constexpr (V >= 3) _mm256_storeu_ps(part + (r * kVecs + 2) * kLanes, a##r##2);
    WBS_ROWS4(WBS_SAVE)
#undef WBS_SAVE
    return;
  }
  const __m256 lo = _mm256_set1_ps(a.lo), hi = _mm256_set1_ps(a.hi);
  const int rows = static_cast<int>(std::clamp<int64_t>(a.out_channels - mb, 0, kHalf));
  if (kFull && !a.lanes && rows == kHalf) {
    // Every lane is an output at q and all 4 rows exist: straight stores.
    const int64_t ys = a.y_channel_stride;
    float* yr = a.y + mb * ys + q;
    const float* rr = a.residual ? a.residual + mb * ys + q : nullptr;
#define WBS_ST(r)                                                                              \
  {                                                                                            \
    __m256 s0 = a##r##0, s1 = a##r##1, s2 = a##r##2;                                           \
    if (rr) {                                                                                  \
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(rr + r * ys));                                    \
      if constexpr (V >= 2) s1 = _mm256_add_ps(s1, _mm256_loadu_ps(rr + r * ys + kLanes));     \
      if constexpr (V >= 3) s2 = _mm256_add_ps(s2, _mm256_loadu_ps(rr + r * ys + 2 * kLanes)); \
    }                                                                                          \
    _mm256_storeu_ps(yr + r * ys, _mm256_min_ps(_mm256_max_ps(s0, lo), hi));                   \
    if constexpr (V >= 2)                                                                      \
      _mm256_storeu_ps(yr + r * ys + kLanes, _mm256_min_ps(_mm256_max_ps(s1, lo), hi));        \
    if constexpr (V >= 3)                                                                      \
      _mm256_storeu_ps(yr + r * ys + 2 * kLanes, _mm256_min_ps(_mm256_max_ps(s2, lo), hi));    \
  }
    WBS_ROWS4(WBS_ST)
#undef WBS_ST
    return;
  }
  VecOut o[kVecs];
  for (int k = 0; k < V; ++k) o[k] = OutOf(a, q + k * kLanes);
#define WBS_STORE(r)                                                  \
  if (r < rows) {                                                     \
    StoreVec(a, mb + r, o[0], a##r##0, lo, hi);                       \
    if constexpr (V >= 2) StoreVec(a, mb + r, o[1], a##r##1, lo, hi); \
    if constexpr (V >= 3) StoreVec(a, mb + r, o[2], a##r##2, lo, hi); \
  }
  WBS_ROWS4(WBS_STORE)
#undef WBS_STORE
}
#undef WBS_ROWS4

using Tail = BsrTail<kMaxChannelTail>;
inline Tail FindTail(const BsrConvArgs& a) { return FindBsrTail<kTileQ, kMaxChannelTail>(a); }

// P tail positions of block-row i, all 8 output channels in one ymm (CKR:
// the 8 weights of one (ci, tap) are adjacent; rows of a ragged block-row
// past M are stored as zeros, so the load is always whole). A accumulators
// per position break the FMA latency chain. T1: 1x1.
template <int P, bool T1>
void ChannelTail(const BsrConvArgs& a, int64_t i, const Tail& tail) {
  constexpr int A = P == 1 ? 4 : P == 2 ? 2 : 1;
  const int64_t mb = i * kRows;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, a.out_channels - mb));
  if (rows <= 0) return;
  const int64_t bs = int64_t{kRows} * a.bc * a.taps;
  const int64_t xs = a.x_channel_stride;
  __m256 acc[P][A];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int u = 0; u < A; ++u) acc[p][u] = _mm256_setzero_ps();
  int64_t qs[P];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p) qs[p] = XOff(a, tail.qs[p]);
  auto step = [&](const float* xp, const float* w, int u) __attribute__((always_inline)) {
    const __m256 wv = _mm256_loadu_ps(w);
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p)
      acc[p][u] = _mm256_fmadd_ps(wv, _mm256_broadcast_ss(xp + qs[p]), acc[p][u]);
  };
  for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
    const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
    const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
    const float* w = a.blocks + j * bs;
    const float* xc = a.x + c0 * xs;
    if constexpr (T1) {
      int64_t ci = 0;
      for (; ci + 8 <= nci; ci += 8, xc += 8 * xs, w += 8 * kRows) {
#pragma GCC unroll 8
        for (int s = 0; s < 8; ++s) step(xc + s * xs, w + s * kRows, s % A);
      }
      for (; ci < nci; ++ci, xc += xs, w += kRows) step(xc, w, 0);
    } else {
      // The (ci, tap) steps in order, A at a time (accumulator u of step s
      // is s % A, a constant in the unrolled body).
      const int64_t steps = nci * a.taps;
      int t = 0;
      auto next = [&](int u) __attribute__((always_inline)) {
        step(xc + a.tap_offset[t], w, u);
        w += kRows;
        if (++t == a.taps) {
          t = 0;
          xc += xs;
        }
      };
      int64_t s = 0;
      for (; s + A <= steps; s += A) {
#pragma GCC unroll 4
        for (int u = 0; u < A; ++u) next(u);
      }
      for (; s < steps; ++s) next(0);
    }
  }
  alignas(32) float bias[kRows] = {};
  if (a.bias)
    for (int r = 0; r < rows; ++r) bias[r] = a.bias[mb + r];
  for (int p = 0; p < P; ++p) {
    __m256 v = acc[p][0];
#pragma GCC unroll 4
    for (int u = 1; u < A; ++u) v = _mm256_add_ps(v, acc[p][u]);
    alignas(32) float buf[kRows];
    _mm256_store_ps(buf, _mm256_add_ps(v, _mm256_load_ps(bias)));
    for (int r = 0; r < rows; ++r) {
      const int64_t idx = (mb + r) * a.y_channel_stride + tail.ys[p];
      float s = buf[r];
      if (a.residual) s += a.residual[idx];
      a.y[idx] = std::min(std::max(s, a.lo), a.hi);
    }
  }
}

template <int T, bool kTiled = false>
void Run(const BsrConvArgs& a) {
  const Tail tail = FindTail(a);
  // Both passes of the full tile at q of block-row i.
  auto full = [&](int64_t i, int64_t q) __attribute__((always_inline)) {
    const int32_t jb = a.row_ptr[i], je = a.row_ptr[i + 1];
    if (T == 1 && je - jb > kKGroup) {
      // Wide 1x1 rows: both passes over kKGroup blocks at a time, the
      // partial sums parked in part between groups (same FMA order, so the
      // same bits), so the second pass finds the tile's input in L1.
      alignas(32) float part[kRows / kHalf][kHalf * kVecs * kLanes];
      for (int32_t g = jb; g < je; g += kKGroup)
        for (int h0 = 0; h0 < kRows; h0 += kHalf)
          Tile<kVecs, true, T, kTiled>(a, i, h0, q, g, std::min(je, g + kKGroup), part[h0 / kHalf]);
      return;
    }
    for (int h0 = 0; h0 < kRows; h0 += kHalf)
      Tile<kVecs, true, T, kTiled>(a, i, h0, q, jb, je, nullptr);
  };
  // The partial tile at tail.q of block-row i.
  auto rest = [&](int64_t i) {
    if (tail.q == a.q_end || tail.count == 0) return;
    switch (tail.count) {
      case 1:
        return ChannelTail<1, T == 1>(a, i, tail);
      case 2:
        return ChannelTail<2, T == 1>(a, i, tail);
      case 3:
        return ChannelTail<3, T == 1>(a, i, tail);
      case 4:
        return ChannelTail<4, T == 1>(a, i, tail);
      default:
        break;
    }
    const int32_t jb = a.row_ptr[i], je = a.row_ptr[i + 1];
    const int64_t q = tail.q, n = a.q_end - q;
    for (int h0 = 0; h0 < kRows; h0 += kHalf) {
      if (n > 2 * kLanes)
        Tile<3, false, T, kTiled>(a, i, h0, q, jb, je, nullptr);
      else if (n > kLanes)
        Tile<2, false, T, kTiled>(a, i, h0, q, jb, je, nullptr);
      else
        Tile<1, false, T, kTiled>(a, i, h0, q, jb, je, nullptr);
    }
  };
  if (T == 1 && a.row_end - a.row_begin > 1) {
    // Several block-rows per call (1x1 plans): tiles outer, so a tile's
    // input (tiled: C x 96 contiguous bytes; direct: C rows of 96 bytes) is
    // reused across the block-rows from L1/L2 while their weights stream.
    for (int64_t q = a.q_begin; q < tail.q; q += kTileQ)
      for (int64_t i = a.row_begin; i < a.row_end; ++i) full(i, q);
    for (int64_t i = a.row_begin; i < a.row_end; ++i) rest(i);
    return;
  }
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    for (int64_t q = a.q_begin; q < tail.q; q += kTileQ) full(i, q);
    rest(i);
  }
}

}  // namespace

void f32_bsr8xn_conv__avx2(const BsrConvArgs& a) {
  assert(a.br == kRows && a.q_begin % kGroup == 0 && a.q_end <= a.out_h * a.pitch);
  assert(a.x_tile_stride == 0 || (a.taps == 1 && a.q_begin % kTileQ == 0));
  if (a.taps == 1 && a.x_tile_stride)
    Run<1, true>(a);
  else if (a.taps == 1)
    Run<1>(a);
  else if (a.taps == 9)
    Run<9>(a);
  else
    Run<0>(a);
}

}  // namespace wbs::kernels::sparse

namespace wbs::kernels::sparse {
namespace {

// f32_pack_plane__avx2 copies up to kPackChunks 8-column chunks of a plane
// row per pass.
constexpr int kPackChunks = 32;

// Lanes [lo, hi) of 8 (both clamped to 0..8) as a vmaskmovps mask.
inline __m256i RangeMask(int64_t lo, int64_t hi) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  lo = std::clamp<int64_t>(lo, 0, kLanes);
  hi = std::clamp<int64_t>(hi, 0, kLanes);
  return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(static_cast<int>(lo) - 1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), idx));
}

// Columns [c0, c0 + 8n) of one plane (column offset off, SX 1 or 2). The
// padding is in per-chunk load masks (source lanes inside the row; the rest
// read as zeros) worked out once, so a row is n loads (stride 2: two and a
// shufps + vpermpd de-interleave) and n stores without branches on the
// geometry; chunks wholly inside the row load unmasked. (A row-by-row copy
// with scalar edges and std::fill for the padding was slower than the
// reference on 14- to 30-column planes: 0.65-0.87x.)
// Stores the first t (1..7) lanes of v at d: 128/64/32-bit stores, as
// vmaskmovps stores are slow on AMD cores.
inline void StoreFirst(float* d, __m256 v, int64_t t) {
  __m128 x = _mm256_castps256_ps128(v);
  if (t & 4) {
    _mm_storeu_ps(d, x);
    x = _mm256_extractf128_ps(v, 1);
    d += 4;
  }
  if (t & 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(d), x);
    x = _mm_movehl_ps(x, x);
    d += 2;
  }
  if (t & 1) _mm_store_ss(d, x);
}

// SX 2 with odd != nullptr: also the plane of column offset off + 1 (the
// odd lanes of the same loads) at odd.
template <int SX>
void PackSegment(const PackPlaneArgs& a, float* dst, float* odd, int64_t off, int64_t c0, int n) {
  __m256i lm[kPackChunks], hm[kPackChunks];
  bool inside[kPackChunks];
  for (int i = 0; i < n; ++i) {
    const int64_t col = c0 + kLanes * i, base = col * SX + off;
    lm[i] = RangeMask(-base, a.in_w - base);
    hm[i] = RangeMask(-base - kLanes, a.in_w - base - kLanes);
    inside[i] = base >= 0 && base + kLanes * SX <= a.in_w;
  }
  // Lanes of the last chunk inside the plane row (8: a whole vector).
  const int64_t last = a.cols - (c0 + kLanes * (n - 1));
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* src = a.x + c * a.in_h * a.in_w;
    float* d = dst + c * a.dst_channel_stride + c0;
    float* o = odd ? odd + c * a.dst_channel_stride + c0 : nullptr;
    for (int64_t r = 0; r < a.rows; ++r, d += a.cols, o = o ? o + a.cols : nullptr) {
      const int64_t iy = r * a.sy + a.row_off;
      if (iy < 0 || iy >= a.in_h) {
        std::fill(d, d + std::min<int64_t>(kLanes * n, a.cols - c0), 0.0f);
        if (o) std::fill(o, o + std::min<int64_t>(kLanes * n, a.cols - c0), 0.0f);
        continue;
      }
      const float* s = src + iy * a.in_w + c0 * SX + off;
      for (int i = 0; i < n; ++i) {
        __m256 v;
        const float* si = s + kLanes * SX * i;
        if constexpr (SX == 1) {
          v = inside[i] ? _mm256_loadu_ps(si) : _mm256_maskload_ps(si, lm[i]);
        } else {
          const __m256 l = inside[i] ? _mm256_loadu_ps(si) : _mm256_maskload_ps(si, lm[i]);
          const __m256 h =
              inside[i] ? _mm256_loadu_ps(si + kLanes) : _mm256_maskload_ps(si + kLanes, hm[i]);
          // Even lanes: shufps picks (0 2 | 0 2) per 128-bit half, the
          // 64-bit permute puts the halves in order.
          const __m256 e = _mm256_shuffle_ps(l, h, _MM_SHUFFLE(2, 0, 2, 0));
          v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
          if (o) {
            const __m256 od = _mm256_shuffle_ps(l, h, _MM_SHUFFLE(3, 1, 3, 1));
            const __m256 ov = _mm256_castpd_ps(
                _mm256_permute4x64_pd(_mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0)));
            if (i + 1 < n || last >= kLanes)
              _mm256_storeu_ps(o + kLanes * i, ov);
            else
              StoreFirst(o + kLanes * i, ov, last);
          }
        }
        if (i + 1 < n || last >= kLanes)
          _mm256_storeu_ps(d + kLanes * i, v);
        else
          StoreFirst(d + kLanes * i, v, last);
      }
    }
  }
}

template <int SX>
void PackPlanes(const PackPlaneArgs& a) {
  float* const dst[3] = {a.dst, a.dst_odd, a.dst_prev};
  const int64_t off[3] = {a.col_off, a.col_off + 1, a.col_off - 1};
  const int64_t chunks = (a.cols + kLanes - 1) / kLanes;
  // Stride 2: the odd plane comes from the even plane's loads (one pass over
  // x instead of two: ResNet-50's 3x3 stride-2 copies, see the top comment).
  const bool fuse_odd = SX == 2 && a.dst_odd;
  for (int k = 0; k < 3; ++k) {
    if (!dst[k] || (k == 1 && fuse_odd)) continue;
    for (int64_t i0 = 0; i0 < chunks; i0 += kPackChunks)
      PackSegment<SX>(a, dst[k], k == 0 && fuse_odd ? a.dst_odd : nullptr, off[k], kLanes * i0,
                      static_cast<int>(std::min<int64_t>(kPackChunks, chunks - i0)));
  }
}

}  // namespace

void f32_pack_plane__avx2(const PackPlaneArgs& a) {
  if (a.sx == 1) return PackPlanes<1>(a);
  if (a.sx == 2) return PackPlanes<2>(a);
  f32_pack_plane__ref(a);
}

}  // namespace wbs::kernels::sparse

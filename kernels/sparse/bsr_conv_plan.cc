#include "kernels/sparse/bsr_conv_plan.h"

#include <omp.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "core/logging.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kGroup = 16;                 // positions per LaneGroup
constexpr int64_t kChunkBudgetFloats = 65536;  // input floats per position chunk (~256 KB)
constexpr int kMinRowsPerThread = 4;
// Threads that can signal a finished input copy (bsr_conv_plan.h
// "Threads"); more use a barrier.
constexpr int kMaxFlagThreads = 64;
constexpr int kSpinsBeforeYield = 1000;
// Create() uses shifted planes up to this many output columns (any stride).
constexpr int64_t kShiftedMaxOw = 14;
// The same for strided convs (see kAuto below).
constexpr int64_t kShiftedMaxOwStrided = 7;
// Chunks are whole register tiles of every kernel (AVX-512: 48, AVX2: 16
// positions), so only a thread's last chunk has a partial tile.
constexpr int64_t kChunkQuantum = 48;
// Tail positions the AVX-512 kernel computes inside each full tile of a call
// (bsr_conv_avx512.cc: at most 4 in all, 2 per tile).
constexpr int64_t kFusedPerTile = 2;
// Tiled 1x1 plans call the kernel with block-rows of about this many bytes
// of kept weights at a time (it runs their tiles outer, block-rows inner).
constexpr int64_t kTiledGroupBytes = 128 << 10;
// Direct (in-place) 1x1 plans on a kernel that runs a multi-block-row 1x1
// call tiles outer (tiled_1x1) call it with kTiledGroupBytes of block-rows
// too when the block-rows keep at least this many blocks each on average:
// a 24-position tile's input is then read from L2 once per group instead of
// once per block-row (h_avx2l, docs/BENCHMARKS.md). Sparser rows lost
// (ResNet-50 layer1 at 90%, 3 blocks per row: 0.91-0.95x), and so did a
// plane of 2 tiles (7x7: layer4.x.conv1 at 90%, 0.93x), where the row's two
// tiles share its input lines: at least kDirectGroupMinPositions positions.
constexpr int64_t kDirectGroupMinBlocksPerRow = 8;
constexpr int64_t kDirectGroupMinPositions = 4 * kBsrTileQ;
int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
// Stride 2 in place under Stride2::kAuto: kept blocks per input block-column
// up to which the copy costs more than the in-place kernel's permutes and
// dropped lanes (UseStride2Direct).
constexpr int64_t kStride2MaxReuse = 4;

// Where thread t of nt starts in [0, total) positions: whole register
// tiles when every thread gets at least two, else 16-position groups (the
// kernel's alignment; `tiled`: always whole tiles, as the tiled 1x1 copy
// wants whole copy tiles); the last thread takes the remainder.
int64_t PositionSplit(int64_t total, int t, int nt, bool tiled) {
  if (t >= nt) return total;
  const int64_t unit = tiled || total >= 2 * kChunkQuantum * nt ? kChunkQuantum : kGroup;
  return total / unit * t / nt * unit;
}

// Requests [p, p + bytes) into L2 (prefetcht1) without waiting for it.
void PrefetchL2(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 2);
}

std::atomic<int64_t> g_late_worker_us{0};  // SetLateWorkerForTesting

// OneByOne::kIntelL2 (bsr_conv_plan.h): on Intel CPUs with at least this
// much L2 per core; chunks of half the L2; per channel range of the next
// chunk, prefetch requests for this many bytes (the kernel's Prefetcher
// rounds to lines and adds one).
constexpr long kIntelL2MinBytes = 2L << 20;
constexpr int64_t kIntelL2NextXBytes = 128;

// Per core, 0 if unknown (read once: glibc asks cpuid each time).
long L2CacheBytes() {
  static const long bytes = std::max(0L, sysconf(_SC_LEVEL2_CACHE_SIZE));
  return bytes;
}

bool IsIntelCpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_is("intel");
#else
  return false;
#endif
}

PackPlaneFn PackFor(const BsrConvKernel& k) {
  return k.isa >= Isa::kAvx512 ? f32_pack_plane__avx512
         : k.isa >= Isa::kAvx2 ? f32_pack_plane__avx2
                               : f32_pack_plane__ref;
}

// Stride2::kAuto (bsr_conv_plan.h): whether Create() reads a stride-2 conv
// the kernel's stride-2 variant can take in place: more than one tap, at
// most 15% of the lanes dropped (pitch = out_w rounded up to 16) and at most
// kStride2MaxReuse kept blocks per input block-column. Measured on the Intel
// VM (h_s2, docs/BENCHMARKS.md "Stride 2 in place"; scripts/bench_sparse_ab.sh
// against the copy, time copy / in place, 1 thread and 2): ResNet-50
// layer2.0.conv2 (28x28 out, 16 block-columns) 0.88 / 1.03 at 50%, 1.10 /
// 1.38 at 75%, 1.52 / 2.14 at 90%; layer3.0.conv2 (14x14, 32) 0.89 / 0.91,
// 0.96 / 1.42, 1.15 / 2.17; to 7x7 (16 lanes for 7) 0.33-0.46; the 1x1
// downsamples (the copy is one phase plane, a quarter of the input)
// 0.28-0.79 / 0.29-0.99.
bool UseStride2Direct(const BlockSparseWeight& w, int64_t taps, int64_t ow) {
  const int64_t pitch = RoundUp(ow, 16);
  return taps > 1 && pitch * 100 <= ow * 115 && w.nnz_blocks() <= kStride2MaxReuse * w.block_cols();
}

}  // namespace

Status ClampBounds(const ref::Activation& a, float* lo, float* hi) {
  *lo = -__builtin_inff();
  *hi = __builtin_inff();
  switch (a.kind) {
    case ref::ActivationKind::kNone:
      return Status::Ok();
    case ref::ActivationKind::kRelu:
      *lo = 0.0f;
      return Status::Ok();
    case ref::ActivationKind::kClip:
      *lo = a.alpha;
      *hi = a.beta;
      return Status::Ok();
    default:
      return Unimplemented("block-sparse conv: activation {} is not a clamp",
                           ref::ActivationName(a.kind));
  }
}

void BsrConvPlan::SetLateWorkerForTesting(int64_t microseconds) {
  g_late_worker_us.store(microseconds, std::memory_order_relaxed);
}

bool BsrConvPlan::PrivateCopiesDefault() {
  const char* v = std::getenv("WBS_PRIVATE_COPIES");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

BsrConvPlan::OneByOne BsrConvPlan::OneByOneDefault() {
  if (const char* v = std::getenv("WBS_BSR_1X1")) {
    if (std::strcmp(v, "intel") == 0) return OneByOne::kIntelL2;
    if (std::strcmp(v, "default") == 0) return OneByOne::kDefault;
    WBS_LOG_WARN("WBS_BSR_1X1='{}' is not default|intel; using the CPU's setting", v);
  }
  static const OneByOne detected = [] {
    const long l2 = L2CacheBytes();
    const bool intel = IsIntelCpu();
    const OneByOne t = intel && l2 >= kIntelL2MinBytes ? OneByOne::kIntelL2 : OneByOne::kDefault;
    WBS_LOG_INFO("block-sparse 1x1 plans: {} cpu, L2 {} KB: {}", intel ? "intel" : "non-intel",
                 l2 / 1024,
                 t == OneByOne::kIntelL2
                     ? "chunks of half the L2, next-chunk input prefetch 2-3 lines per channel"
                     : "256 KB chunks, whole next-chunk input prefetch");
    return t;
  }();
  return detected;
}

BsrConvPlan::Stride2 BsrConvPlan::Stride2Default() {
  const char* v = std::getenv("WBS_BSR_S2");
  if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return Stride2::kAuto;
  if (std::strcmp(v, "old") == 0) return Stride2::kOld;
  if (std::strcmp(v, "new") == 0) return Stride2::kNew;
  static std::once_flag warned;
  std::call_once(warned,
                 [v] { WBS_LOG_WARN("WBS_BSR_S2='{}' is not auto|old|new; using auto", v); });
  return Stride2::kAuto;
}

int BsrConvPlan::MinCallsDefault() {
  const char* v = std::getenv("WBS_SPLIT_MIN_CALLS");
  return v == nullptr ? 0 : std::max(0, std::atoi(v));
}

BsrConvPlan::SplitRule BsrConvPlan::SplitRuleDefault() {
  const char* v = std::getenv("WBS_SPLIT");
  if (v != nullptr && std::strcmp(v, "rows") == 0) return SplitRule::kRowsWhenPrivate;
  if (v != nullptr && std::strcmp(v, "shared") == 0) return SplitRule::kShared;
  if (v != nullptr && std::strcmp(v, "tiles") == 0) return SplitRule::kTiles;
  if (v != nullptr && std::strcmp(v, "tpos") == 0) return SplitRule::kTilesPos;
  if (v != nullptr && std::strcmp(v, "tshared") == 0) return SplitRule::kTilesShared;
  if (v != nullptr && std::strcmp(v, "size") == 0) return SplitRule::kSize;
  if (v != nullptr && *v != '\0' && std::strcmp(v, "tfine") != 0) {
    static std::once_flag warned;
    std::call_once(warned, [v] {
      WBS_LOG_WARN("WBS_SPLIT='{}' is not tfine|size|rows|shared|tiles|tpos|tshared; using tfine", v);
    });
  }
  return SplitRule::kTilesFine;
}

const char* BsrConvPlan::split_name(int threads) const {
  switch (SplitFor(threads)) {
    case Split::kNone: return "none";
    case Split::kRows: return PrivateCopies() && !direct_ ? "rows+private" : "rows";
    case Split::kPositions: return "positions";
  }
  return "?";
}

const char* BsrConvPlan::layout() const {
  return tiled_ ? "tiled" : s2_ ? "s2direct" : direct_ ? "direct" : shifted_ ? "shifted" : "phase";
}

Result<BsrConvPlan> BsrConvPlan::Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                        const BsrConvKernel* kernel) {
  return CreateWithLayout(p, w, Layout::kAuto, kernel);
}

Result<BsrConvPlan> BsrConvPlan::CreateWithLayout(const ref::ConvParams& p,
                                                  const BlockSparseWeight& w, Layout layout,
                                                  const BsrConvKernel* kernel) {
  if (p.group != 1) return Unimplemented("block-sparse conv: group {} (only 1)", p.group);
  if (p.spatial_rank > 2 || p.in[0] != 1 || p.kernel[0] != 1)
    return Unimplemented("block-sparse conv: only 1-D and 2-D convolutions");
  if (w.out_channels() != p.out_channels || w.in_channels() != p.in_channels ||
      w.kh() != p.kernel[1] || w.kw() != p.kernel[2])
    return InvalidArgument("block-sparse conv: weight [{},{},{},{}] does not fit the conv",
                           w.out_channels(), w.in_channels(), w.kh(), w.kw());
  BsrConvPlan plan;
  WBS_RETURN_IF_ERROR(ClampBounds(p.activation, &plan.lo_, &plan.hi_));
  plan.one_by_one_ = OneByOneDefault();
  plan.w_ = &w;
  plan.kernel_ = kernel ? kernel : &SelectBsrConvKernel(w.br());
  if (plan.kernel_->br != 0 && plan.kernel_->br != w.br())
    return InvalidArgument("block-sparse conv: kernel {} does not take {}-row blocks",
                           plan.kernel_->name, w.br());
  plan.pack_ = PackFor(*plan.kernel_);
  plan.batch_ = p.batch;
  plan.in_h_ = p.in[1];
  plan.in_w_ = p.in[2];
  plan.out_h_ = p.out[1];
  plan.out_w_ = p.out[2];
  plan.stride_y_ = p.stride[1];
  plan.stride_x_ = p.stride[2];
  const int64_t sy = p.stride[1], sx = p.stride[2];
  const int64_t pad_top = p.pad_begin[1], pad_left = p.pad_begin[2];
  const int64_t kh = p.kernel[1], kw = p.kernel[2], dy = p.dilation[1], dx = p.dilation[2];
  const int64_t oh = plan.out_h_, ow = plan.out_w_;
  // A 1x1 conv that reads no padding: output (oy, ox) reads input
  // (oy * sy, ox * sx) only.
  const bool unpadded_1x1 = kh == 1 && kw == 1 && pad_top == 0 && pad_left == 0 &&
                            (oh - 1) * sy < plan.in_h_ && (ow - 1) * sx < plan.in_w_;
  plan.direct_ = unpadded_1x1 && sy == 1 && sx == 1 && oh == plan.in_h_ && ow == plan.in_w_;
  const bool tiled_ok = unpadded_1x1 && plan.kernel_->tiled_1x1 && p.spatial_rank == 2 &&
                        oh * ow > kBsrTileQ;
  const bool tiled_rule = w.nnz_blocks() >= kTiledMinReuse * w.block_cols();
  plan.pad_top_ = pad_top;
  plan.pad_left_ = pad_left;
  plan.kh_ = kh;
  plan.kw_ = kw;
  // Stride 2 in place (the header's "Stride 2 in place").
  const bool s2_ok = plan.kernel_->stride2 != nullptr && p.spatial_rank == 2 && sy == 2 &&
                     sx == 2 && dy == 1 && dx == 1 && kh * kw <= kBsrS2MaxTaps;
  bool s2 = false;
  if (s2_ok && layout == Layout::kStride2) {
    s2 = true;
  } else if (s2_ok && layout == Layout::kAuto) {
    const Stride2 mode = Stride2Default();
    s2 = mode == Stride2::kNew || (mode == Stride2::kAuto && UseStride2Direct(w, kh * kw, ow));
  }
  if (s2) {
    plan.direct_ = true;
    plan.s2_ = true;
    plan.pitch_ = RoundUp(ow, kGroup);
    plan.x_channel_stride_ = plan.in_h_ * plan.in_w_;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) plan.tap_offset_.push_back(ky * plan.in_w_ + kx);
    // Per 16-position group and tap: where its 32 floats start and which
    // of them to load (BsrS2Vec).
    const int64_t in_h = plan.in_h_, in_w = plan.in_w_;
    plan.s2_vecs_.resize(static_cast<size_t>(oh * plan.pitch_ / kGroup));
    for (size_t g = 0; g < plan.s2_vecs_.size(); ++g) {
      BsrS2Vec& v = plan.s2_vecs_[g];
      const int64_t oy = static_cast<int64_t>(g) * kGroup / plan.pitch_;
      const int64_t ox0 = static_cast<int64_t>(g) * kGroup % plan.pitch_;
      const int64_t n = std::min(kGroup, ow - ox0);  // valid lanes, >= 1
      for (int64_t t = 0; t < kh * kw; ++t) {
        const int64_t iy = 2 * oy - pad_top + t / kw, col = 2 * ox0 - pad_left + t % kw;
        // Floats [lo, hi) of the 32 at col: inside the row, read by a lane < n.
        const int64_t lo = std::max<int64_t>(0, -col);
        const int64_t hi = std::min<int64_t>({2 * kGroup, in_w - col, 2 * n - 1});
        uint32_t m = 0;
        if (iy >= 0 && iy < in_h && hi > lo)
          m = (hi >= 32 ? ~0u : (1u << hi) - 1) & ~((1u << lo) - 1);
        v.off[t] = m ? iy * in_w + col : 0;
        v.lo[t] = static_cast<uint16_t>(m);
        v.hi[t] = static_cast<uint16_t>(m >> 16);
      }
    }
  } else if (tiled_ok && (layout == Layout::kTiled ||
                          (layout == Layout::kAuto && (tiled_rule || !plan.direct_)))) {
    // The tiled copy gathers the strided positions (oy * sy, ox * sx) too.
    plan.direct_ = false;
    plan.tiled_ = true;
    plan.pitch_ = ow;
    plan.x_channel_stride_ = kBsrTileQ;
    plan.tap_offset_ = {0};
    plan.scratch_floats_ = RoundUp(oh * ow, kBsrTileQ) * p.in_channels;
  } else if (plan.direct_) {
    plan.pitch_ = ow;
    plan.x_channel_stride_ = plan.in_h_ * plan.in_w_;
    plan.tap_offset_ = {0};
  } else {
    // The padded extent the outputs actually read.
    const int64_t hp = (oh - 1) * sy + (kh - 1) * dy + 1;
    const int64_t wp = (ow - 1) * sx + (kw - 1) * dx + 1;
    const int64_t hq = (hp + sy - 1) / sy, wq = (wp + sx - 1) / sx;
    // Planes each layout stores, in first-use order: (row phase, column key).
    auto planes_of = [&](bool shifted) {
      std::vector<std::pair<int64_t, int64_t>> used;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          const std::pair<int64_t, int64_t> key((ky * dy) % sy, shifted ? kx : (kx * dx) % sx);
          if (std::find(used.begin(), used.end(), key) == used.end()) used.push_back(key);
        }
      return used;
    };
    // kAuto: shifted planes for convs with at most kShiftedMaxOw output
    // columns on the AVX-512 kernel, else phase planes. Measured
    // (wbs_bench_sparse --layout=phase|shifted, docs/BENCHMARKS.md): on
    // small planes the dropped columns cost most (7x7: pitch 9, 63 lanes for
    // 49 outputs; with pitch 7 the 49th position rides along in the 48-wide
    // tile, and a 14x14 plane is 4 x 48 + 4) and the shifted planes' kw-fold
    // copy is small: ResNet-50 layer4.x.conv2 1.58x -> 1.70-2.01x at 50%,
    // layer3.x.conv2 1.65x -> 1.77x. On 28x28 and 56x56 planes and strided
    // convs the kw-fold copy and the kw times more cache lines per step
    // cost more than the dropped columns (1.76x vs 1.72x, 2.08x vs 1.45x).
    // Strided convs to a 7x7 plane gain too (ResNet-50 layer4.0.conv2, 3x3
    // s2: phase pitch 8, 56 lanes for 49 outputs; three alternating runs,
    // 1.52-1.77x phase vs 1.84-1.95x shifted at 50%, 7.0-7.8x vs 8.0-8.1x at
    // 90%); to 14x14 they did not while the 6 shifted planes took 6 copy
    // passes (layer3.0.conv2: 1.46-1.50x vs 1.44-1.55x at 50%, 6.0-6.4x vs
    // 4.9-5.2x at 90%); with 2 passes (PackPlaneArgs::dst_prev) shifted wins
    // (six alternating runs each under load 11-12, our eff GFLOP/s medians,
    // phase -> shifted: 158 -> 166 at 50%, 148 -> 158 at 75%, 125 -> 139 at
    // 90%). To 28x28 (layer2.0.conv2) phase stays ahead. On the AVX2 kernel
    // phase planes win on all four (h_avx2j, with the asm 3x3 tile: shifted
    // 0.84-1.01x at 50%, 0.89-0.95x at 90%, paired runs).
    // That 14x14 result was an AMD Zen 4 VM's at 1 thread. On an Intel Xeon
    // VM (2 MB L2, 2026-11-29, three alternating runs of --layout=phase /
    // shifted, speed-up over oneDNN) layer3.0.conv2 ran 1.38-1.60 / 1.37-1.50x
    // at 50% and 4.8-7.7 / 4.3-4.8x at 90% on 1 thread, and 1.47-1.48 /
    // 1.12-1.30x and 2.7-3.4 / 2.4-3.1x on 2 (phase: a private 900 KB copy
    // per thread; shifted: one shared 1260 KB copy), so strided convs take
    // shifted planes only to planes of at most kShiftedMaxOwStrided columns
    // (layer4.0.conv2 stays shifted: 1.9-2.2 / 1.3-1.7x at 50% here).
    const int64_t shifted_max_ow = sx > 1 || sy > 1 ? kShiftedMaxOwStrided : kShiftedMaxOw;
    const bool auto_shifted = kw > 1 && plan.kernel_->isa >= Isa::kAvx512 && ow <= shifted_max_ow;
    const bool shifted =
        layout == Layout::kShifted ||
        ((layout == Layout::kAuto || layout == Layout::kTiled) && auto_shifted);
    plan.shifted_ = shifted;
    plan.pitch_ = shifted ? ow : wq;
    // Shared pad columns (stride 1, phase planes padded on both sides): the
    // zeros right of row r double as the left padding of row r + 1, so the
    // pitch is W + max(pad_left, pad_right) instead of W + both, and fewer
    // dropped lanes are computed (28x28: pitch 29, not 30; 56x56: 57, not
    // 58). A tap past the pitch wraps into the next row's first pad_left
    // columns, always zeros; after the last channel's plane Pack() writes
    // them (tail_zeros_). Same session, alternating binaries, 3 runs each:
    // layer2.x.conv2 (28x28) 510-518 -> 491-503 us at 50%, 264-273 ->
    // 253-257 at 75%, 120-123 -> 117-118 at 90%; layer1.x.conv2 ~1-2%.
    const int64_t pad_right_read = wp - pad_left - plan.in_w_;
    if (!shifted && sx == 1 && sy == 1 && pad_left > 0 && pad_right_read > 0) {
      const int64_t shared = plan.in_w_ + std::max(pad_left, pad_right_read);
      if (shared < wq && shared >= ow) {
        plan.pitch_ = shared;
        plan.tail_zeros_ = pad_left;
      }
    }
    const std::vector<std::pair<int64_t, int64_t>> used = planes_of(shifted);
    const int64_t plane = hq * plan.pitch_;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        const std::pair<int64_t, int64_t> key((ky * dy) % sy, shifted ? kx : (kx * dx) % sx);
        const auto slot =
            static_cast<int64_t>(std::find(used.begin(), used.end(), key) - used.begin());
        const int64_t in_plane = (ky * dy / sy) * plan.pitch_ + (shifted ? 0 : kx * dx / sx);
        plan.tap_offset_.push_back(slot * plane + in_plane);
        plan.max_plane_off_ = std::max(plan.max_plane_off_, in_plane);
      }
    for (size_t s = 0; s < used.size(); ++s) {
      PackPlaneArgs pa;
      pa.in_h = plan.in_h_;
      pa.in_w = plan.in_w_;
      pa.rows = hq;
      pa.cols = plan.pitch_;
      pa.sy = sy;
      pa.sx = sx;
      pa.row_off = used[s].first - pad_top;
      pa.col_off = (shifted ? used[s].second * dx : used[s].second) - pad_left;
      pa.dst_channel_stride = static_cast<int64_t>(used.size()) * plane;
      pa.dst = nullptr;  // + s * plane at run time
      plan.planes_.push_back(pa);
    }
    // Planes of one row phase whose column offsets differ by one read the
    // same source rows: one pass writes them (stride 2: the phase planes
    // (py, 0) and (py, 1); stride 1 or 2: the shifted planes of kernel
    // columns 0, 1, 2 with dilation 1, offsets c - 1, c, c + 1,
    // PackPlaneArgs::dst_odd/dst_prev). A 3x3 stride-2 conv to 7x7 packed its
    // 6 shifted planes in 6 passes, a third of its time at 90%.
    plan.odd_partner_.assign(used.size(), -1);
    plan.prev_partner_.assign(used.size(), -1);
    if (sx <= 2) {
      auto find = [&](size_t s, int64_t dc) -> int64_t {
        for (size_t t = 0; t < used.size(); ++t)
          if (t != s && plan.odd_partner_[t] == -1 &&
              plan.planes_[t].row_off == plan.planes_[s].row_off &&
              plan.planes_[t].col_off == plan.planes_[s].col_off + dc)
            return static_cast<int64_t>(t);
        return -1;
      };
      // Triples first (a lead with both neighbours), then pairs.
      for (int pass = 0; pass < 2; ++pass)
        for (size_t s = 0; s < used.size(); ++s) {
          if (plan.odd_partner_[s] != -1) continue;
          const int64_t odd = find(s, 1), prev = pass == 0 ? find(s, -1) : -1;
          if (odd < 0 || (pass == 0 && prev < 0)) continue;
          plan.odd_partner_[s] = odd;
          plan.odd_partner_[static_cast<size_t>(odd)] = -2;
          if (prev >= 0) {
            plan.prev_partner_[s] = prev;
            plan.odd_partner_[static_cast<size_t>(prev)] = -2;
          }
        }
    }
    plan.x_channel_stride_ = static_cast<int64_t>(used.size()) * plane;
    // Slack: dropped lanes of the last row may read up to a row (plus a
    // vector) past the last plane.
    plan.scratch_floats_ = p.in_channels * plan.x_channel_stride_ + 2 * plan.pitch_ + 4 * kGroup;
  }
  if (plan.pitch_ != ow) {
    const int64_t total = oh * plan.pitch_;
    plan.lanes_.resize(static_cast<size_t>(RoundUp(total, kGroup) / kGroup));
    int64_t y_index = 0;
    for (size_t g = 0; g < plan.lanes_.size(); ++g) {
      LaneGroup& lg = plan.lanes_[g];
      lg.y_index = y_index;
      for (int64_t l = 0; l < kGroup; ++l) {
        const int64_t q = static_cast<int64_t>(g) * kGroup + l;
        if (q < total && q % plan.pitch_ < ow) {
          lg.mask = static_cast<uint16_t>(lg.mask | (1u << l));
          ++y_index;
        }
      }
    }
  }
  return plan;
}

Result<BsrConvPlan> BsrConvPlan::CreateGemm(int64_t n, const BlockSparseWeight& w,
                                            const BsrConvKernel* kernel) {
  if (w.kh() != 1 || w.kw() != 1)
    return InvalidArgument("block-sparse gemm: weight has a {}x{} kernel", w.kh(), w.kw());
  ref::ConvParams p;
  p.in_channels = w.in_channels();
  p.out_channels = w.out_channels();
  p.in = {1, 1, n};
  p.out = {1, 1, n};
  p.spatial_rank = 1;
  return Create(p, w, kernel);
}

// Per block of kTiles tiles, each channel's positions are read in order
// (kTiles x 96 contiguous bytes) and written kBsrTileQ floats at a time.
void BsrConvPlan::PackTiled(const float* x, float* dst, int64_t c_begin, int64_t c_end,
                            int64_t q_begin, int64_t q_end) const {
  constexpr int64_t kTiles = 8;
  const int64_t hw = in_h_ * in_w_, ts = w_->in_channels() * kBsrTileQ;
  q_end = std::min(q_end, out_h_ * out_w_);
  const int64_t sy = stride_y_, sx = stride_x_, ow = out_w_;
  for (int64_t t0 = q_begin / kBsrTileQ; t0 * kBsrTileQ < q_end; t0 += kTiles) {
    const int64_t t1 = std::min(t0 + kTiles, (q_end + kBsrTileQ - 1) / kBsrTileQ);
    for (int64_t c = c_begin; c < c_end; ++c)
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t a = std::max(q_begin, t * kBsrTileQ);
        const int64_t b = std::min(q_end, (t + 1) * kBsrTileQ);
        float* d = dst + t * ts + c * kBsrTileQ - t * kBsrTileQ;
        const float* xc = x + c * hw;
        if (sy == 1 && sx == 1) {
          std::memcpy(d + a, xc + a, static_cast<size_t>(b - a) * sizeof(float));
          continue;
        }
        // Strided: output row by output row, every sx-th input column.
        for (int64_t q = a; q < b;) {
          const int64_t oy = q / ow, ox = q % ow, n = std::min(b - q, ow - ox);
          const float* s = xc + oy * sy * in_w_ + ox * sx;
          int64_t k = 0;
#ifdef __SSE2__
          if (sx == 2) {
            // Even lanes of two 4-float loads; the last position stays
            // scalar, so no load passes the last column read.
            for (; k + 5 <= n; k += 4)
              _mm_storeu_ps(d + q + k, _mm_shuffle_ps(_mm_loadu_ps(s + 2 * k),
                                                      _mm_loadu_ps(s + 2 * k + 4),
                                                      _MM_SHUFFLE(2, 0, 2, 0)));
          }
#endif
          for (; k < n; ++k) d[q + k] = s[k * sx];
          q += n;
        }
      }
  }
}

void BsrConvPlan::Pack(const float* x, float* dst, int64_t c_begin, int64_t c_end,
                       int64_t row_begin, int64_t row_end) const {
  if (tiled_) {
    // Plane rows are output rows here.
    const int64_t w = out_w_;
    return PackTiled(x, dst, c_begin, c_end, row_begin * w,
                     row_end >= out_h_ ? out_h_ * w : row_end * w);
  }
  const int64_t plane = planes_.empty() ? 0 : planes_[0].rows * planes_[0].cols;
  for (size_t s = 0; s < planes_.size(); ++s) {
    if (odd_partner_[s] == -2) continue;
    PackPlaneArgs a = planes_[s];
    a.x = x;
    a.dst = dst + static_cast<int64_t>(s) * plane;
    if (odd_partner_[s] >= 0) a.dst_odd = dst + odd_partner_[s] * plane;
    if (prev_partner_[s] >= 0) a.dst_prev = dst + prev_partner_[s] * plane;
    a.c_begin = c_begin;
    a.c_end = c_end;
    // Plane rows [row_begin, row_end): the same window moved down.
    const int64_t r1 = std::min(row_end, a.rows);
    if (row_begin >= r1) continue;
    a.row_off += row_begin * a.sy;
    a.dst += row_begin * a.cols;
    if (a.dst_odd) a.dst_odd += row_begin * a.cols;
    if (a.dst_prev) a.dst_prev += row_begin * a.cols;
    a.rows = r1 - row_begin;
    pack_(a);
  }
  // Written by the copy of the last rows only (one writer per value).
  if (tail_zeros_ > 0 && c_end == w_->in_channels() && !planes_.empty() &&
      row_end >= planes_[0].rows)
    std::fill_n(dst + c_end * x_channel_stride_, tail_zeros_, 0.0f);
}

// A split by block-rows makes every thread read all of the input (from L3,
// and half of it from the other core's L2 when the previous layer or the
// input copy was split too); a split by positions makes every thread read
// all of the weights. So: positions when the weights read are smaller than
// the input read and every thread gets at least two whole tiles, else
// block-rows if there are enough of them. In ResNet-50 at 50% that moves
// the 56x56 and 28x28 layers (and the 14x14 1x1 layers reading 1024
// channels) to positions, the 7x7 layers and 3x3 14x14 ones stay on
// block-rows. Measured in the model at 2 threads (docs/BENCHMARKS.md
// "End-to-end block-sparse"): the sparse convs' summed compute time -7%.
// The same rule holds with private copies (SplitRule::kSize, below).
BsrConvPlan::Split BsrConvPlan::SplitFor(int threads) const {
  if (threads <= 1) return Split::kNone;
  const BlockSparseWeight& w = *w_;
  const int64_t total = out_h_ * pitch_;
  const bool rows_ok = w.block_rows() >= int64_t{kMinRowsPerThread} * threads;
  const bool positions_ok = total >= 2 * kChunkQuantum * threads;
  const int64_t weight_bytes = int64_t{w.row_ptr().back()} * w.br() * w.bc() * w.kh() * w.kw() * 4;
  const int64_t planes = std::max<int64_t>(1, static_cast<int64_t>(planes_.size()));
  // Stride 2 in place reads the input rows of every tap row (a 1x1 conv:
  // the even rows' cache lines).
  const int64_t plane_floats = s2_               ? S2InputFloats()
                               : planes_.empty() ? total
                                                 : planes_[0].rows * planes_[0].cols;
  const int64_t input_bytes = w.in_channels() * planes * plane_floats * 4;
  // SplitRule::kRowsWhenPrivate (WBS_SPLIT=rows): with private copies
  // (each thread copies all of an input that fits its L2) block-rows also
  // where the input is the larger operand. Round 10 (AVX-512 machine,
  // loaded, SCHED_FIFO, kernel benchmark, 90%): layer3.x.conv2 178 -> 61
  // us, layer2.x.conv2 97 -> 60, layer3.0.downsample 166 -> 66. In the
  // model on the AVX2 VM (h_avx2o) it lost: every thread then copies the
  // whole input of the 56x56 / 28x28 layers (0.4-0.9 MB, a serial part of
  // each layer) where a position split copies half; ResNet-50 50%, 2
  // threads, paired both orders under SCHED_FIFO, kSize / kRowsWhenPrivate
  // below 1 in 17 of 18 rounds (0.905-1.016, median ~0.96), kSize beat kShared
  // (no private copies) in 5 of 6 (docs/BENCHMARKS.md "AVX2 2-thread
  // scaling, h_avx2o"). So kSize (and the default kTilesFine, which
  // splits as kSize) decides by operand size and gives private copies only
  // to the block-row splits that rule picks. kTilesPos (tiled plans by
  // positions wherever each thread gets two tiles) lost in the model: every
  // thread then reads all of the 0.5-1 MB of kept weights (h_avx2p).
  const bool rows_for_private = PrivateCopies() && split_rule_ == SplitRule::kRowsWhenPrivate;
  if (tiled_ && split_rule_ == SplitRule::kTilesPos && positions_ok) return Split::kPositions;
  if (rows_ok && (!positions_ok || input_bytes <= weight_bytes || rows_for_private))
    return Split::kRows;
  return Split::kPositions;
}

void BsrConvPlan::Run(const float* x, const float* bias, float* y, float* scratch, int threads,
                      const float* residual) const {
  const BlockSparseWeight& w = *w_;
  const int64_t c = w.in_channels(), m = w.out_channels();
  const int64_t rows = w.block_rows();
  const int64_t pitch = pitch_;
  const int64_t total = out_h_ * pitch;
  // A chunk of positions reads chunk + max_plane_off_ floats of every stored
  // plane of every channel (stride 2 in place: about S2InputFloats() per
  // out_h_ * pitch_ positions).
  const int64_t planes =
      s2_ ? std::max<int64_t>(1, (S2InputFloats() + out_h_ * pitch_ - 1) / (out_h_ * pitch_))
          : std::max<int64_t>(1, static_cast<int64_t>(planes_.size()));
  // Plans of one tap on the AVX-512 kernel: see OneByOne.
  const bool intel_1x1 = one_by_one_ == OneByOne::kIntelL2 && tap_offset_.size() == 1 && !tiled_ &&
                         kernel_->isa >= Isa::kAvx512;
  const int64_t budget = intel_1x1 ? std::max<int64_t>(kChunkBudgetFloats, L2CacheBytes() / 2 / 4)
                                   : kChunkBudgetFloats;
  int64_t chunk =
      RoundUp(std::max<int64_t>(budget / (c * planes) - max_plane_off_, 1), kChunkQuantum);
  const std::vector<int32_t>& row_ptr = w.row_ptr();
  threads = std::max(1, threads);
  const int64_t block_floats = int64_t{w.br()} * w.bc() * w.kh() * w.kw();
  const int64_t plane_floats = planes_.empty() ? 0 : planes_[0].rows * planes_[0].cols;

  BsrConvArgs base;
  base.row_ptr = row_ptr.data();
  base.col_idx = w.col_idx().data();
  base.blocks = w.values();
  base.br = w.br();
  base.bc = w.bc();
  base.out_channels = m;
  base.in_channels = c;
  base.taps = static_cast<int>(tap_offset_.size());
  base.tap_offset = tap_offset_.data();
  base.x_channel_stride = x_channel_stride_;
  base.x_tile_stride = tiled_ ? c * kBsrTileQ : 0;
  base.y_channel_stride = out_h_ * out_w_;
  base.pitch = pitch;
  base.out_w = out_w_;
  base.out_h = out_h_;
  base.lanes = lanes_.empty() ? nullptr : lanes_.data();
  base.bias = bias;
  base.lo = lo_;
  base.hi = hi_;
  const int64_t work = row_ptr.back() + rows;  // blocks + one unit per row (stores)
  const Split split = SplitFor(threads);
  // Tiled 1x1 plans (and grouped direct 1x1 ones): calls of `group`
  base.s2_vecs = s2_ ? s2_vecs_.data() : nullptr;
  const BsrConvFn fn = s2_ ? kernel_->stride2 : kernel_->fn;
  // block-rows (see kTiledGroupBytes).
  const bool grouped = tiled_ || (direct_ && !s2_ && base.taps == 1 && kernel_->tiled_1x1 &&
                                  row_ptr.back() >= kDirectGroupMinBlocksPerRow * rows &&
                                  total >= kDirectGroupMinPositions);
  int64_t group =
      grouped ? std::max<int64_t>(1, kTiledGroupBytes * rows /
                                         std::max<int64_t>(1, row_ptr.back() * block_floats * 4))
              : 1;
  // Finer calls when a thread's share would have fewer than min_calls_
  // (SetMinCalls): a thread that runs out of its own calls can only take
  // whole calls from the others, so with 1-4 calls per share the threads
  // finish up to a call apart. Positions: smaller chunks (whole
  // kChunkQuantum); block-rows: smaller groups. Per output element the
  // sum is the same (a call still covers whole block-rows). A position
  // split rounds the chunk up, so it may stay below min_calls: ResNet-50's
  // tiled layer3.x.conv1 and layer2.x.conv3 keep 4 calls per thread at 50%;
  // rounding down (8 calls) measured no gain in the model (docs/BENCHMARKS.md
  // "AVX2 in-place conv3 at 2 threads, h_avx2q").
  const int min_calls = tiled_ && split_rule_ == SplitRule::kTilesFine
                            ? std::max(min_calls_, kTiledMinCalls)
                            : min_calls_;
  if (threads > 1 && min_calls > 1 && split != Split::kNone) {
    const int64_t share_q = split == Split::kPositions ? (total + threads - 1) / threads : total;
    const int64_t share_r = split == Split::kRows ? (rows + threads - 1) / threads : rows;
    const int64_t groups = (share_r + group - 1) / group;
    const int64_t chunks = (share_q + chunk - 1) / chunk;
    if (chunks * groups < min_calls) {
      if (split == Split::kPositions) {
        const int64_t want = (min_calls + groups - 1) / groups;
        chunk = std::max(kChunkQuantum, RoundUp((share_q + want - 1) / want, kChunkQuantum));
      } else if (group > 1) {
        const int64_t want = (min_calls + chunks - 1) / chunks;
        group = std::max<int64_t>(1, share_r / want);
      }
    }
  }

  // Split by positions with an input copy: each thread copies the plane rows
  // its own positions start in (so most of what it reads is in its own L2)
  // and then raises its flag; the taps reach a few rows into the next
  // thread's copy, which a thread needs only at the end of its range, long
  // after the other finished copying: it waits for the flags there instead
  // of at a barrier for everyone (a barrier costs a futex sleep and wake-up
  // when the threads wait passively, docs/BENCHMARKS.md).
  // A shared copy is split into one part per thread (plane rows of its
  // positions, or a channel range for a block-row split). A thread claims its
  // part before copying it; one that needs a part nobody claimed yet (its
  // owner not started: libgomp wakes a sleeping worker 18-21 us into the
  // region, docs/KERNELS.md round 9) copies it itself instead of waiting, so
  // at 90% sparsity, where a layer takes 20-60 us, the first thread does not
  // sit at a barrier for the second one's start. The results do not depend
  // on who copied a part (the same Pack call either way).
  std::atomic<int> packed[kMaxFlagThreads];
  std::atomic<int> claimed[kMaxFlagThreads];
  const bool private_rows = PrivateCopies() && threads > 1 && split == Split::kRows;
  const bool flags = !direct_ && !private_rows && threads > 1 && threads <= kMaxFlagThreads;
  // Whole-tile parts (SplitRule::kTiles...): a position split's own part
  // holds every tile its calls read.
  const bool tile_parts = TileParts() && flags;
  // Per thread, the next of its calls to run (see "steal" below); one cache
  // line each, or every call would move the line between the cores.
  struct alignas(64) Counter {
    std::atomic<int64_t> v{0};
  };
  Counter next_call[kMaxFlagThreads];
  const bool steal = threads > 1 && threads <= kMaxFlagThreads;

  for (int64_t n = 0; n < batch_; ++n) {
    const float* xn = x + n * c * in_h_ * in_w_;
    float* yn = y + n * m * out_h_ * out_w_;
    for (int t = 0; flags && t < threads; ++t) {
      packed[t].store(0, std::memory_order_relaxed);
      claimed[t].store(0, std::memory_order_relaxed);
    }
    for (int t = 0; steal && t < threads; ++t) next_call[t].v.store(0, std::memory_order_relaxed);
#pragma omp parallel num_threads(threads)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      if (tid == 1) {
        const int64_t late = g_late_worker_us.load(std::memory_order_relaxed);
        if (late > 0) std::this_thread::sleep_for(std::chrono::microseconds(late));
      }
      // The first plane row of thread t's positions (t = nt: past the end).
      auto row_start = [&](int t) -> int64_t {
        return t == 0 ? 0 : t >= nt ? INT64_MAX : PositionSplit(total, t, nt, tiled_) / pitch;
      };
      // Block-row split with private copies (EnablePrivateCopies): every
      // thread packs all of the input into its own copy, so it reads no
      // plane the other core wrote and waits for no one.
      const bool own_copy = private_rows && nt > 1 && !direct_;
      float* const xcopy = own_copy ? scratch + tid * CopyStride() : scratch;
      // Part u of a shared copy (see `claimed` above).
      auto pack_part = [&](int u) {
        if (tile_parts)
          PackTiled(xn, scratch, 0, c, PositionSplit(total, u, nt, true),
                    PositionSplit(total, u + 1, nt, true));
        else if (split == Split::kPositions)
          Pack(xn, scratch, 0, c, row_start(u), row_start(u + 1));
        else
          Pack(xn, scratch, c * u / nt, c * (u + 1) / nt);
      };
      // Part u is copied when this returns: by this thread if unclaimed.
      auto ensure_packed = [&](int u) {
        if (packed[u].load(std::memory_order_acquire)) return;
        if (claimed[u].exchange(1, std::memory_order_acq_rel) == 0) {
          pack_part(u);
          packed[u].store(1, std::memory_order_release);
          return;
        }
        for (int spins = 0; !packed[u].load(std::memory_order_acquire); ++spins)
          if (spins >= kSpinsBeforeYield) std::this_thread::yield();
      };
      if (own_copy) {
        Pack(xn, xcopy, 0, c);
      } else if (!direct_) {
        if (nt == 1) {
          Pack(xn, scratch, 0, c);
        } else if (flags) {
          ensure_packed(tid);
          // Every block-row reads every channel: all parts before the first call.
          if (split != Split::kPositions)
            for (int d = 1; d < nt; ++d) ensure_packed((tid + d) % nt);
        } else {
          pack_part(tid);
#pragma omp barrier
        }
      }
      // With flags: before a chunk whose reads (16-lane groups, plus the
      // taps' reach) pass this thread's last copied row, and before its
      // last chunk (dropped lanes may read past a plane's end into rows
      // another thread copied), wait until every other thread has copied.
      bool all_packed = !flags || nt == 1 || split != Split::kPositions;
      const int64_t own_rows_end = row_start(tid + 1);
      auto ensure_all = [&] {
        if (all_packed) return;
        for (int d = 1; d < nt; ++d) ensure_packed((tid + d) % nt);
        all_packed = true;
      };
      auto wait_packed = [&](int64_t q_end, bool last) {
        if (all_packed || tile_parts) return;
        const int64_t reach = (RoundUp(q_end, kGroup) - 1 + max_plane_off_) / pitch + 1;
        if (!last && reach <= own_rows_end) return;
        ensure_all();
      };
      BsrConvArgs a = base;
      a.x = direct_ ? xn : xcopy;
      a.y = yn;
      a.residual = residual ? residual + (yn - y) : nullptr;
      // Thread u's share: block-rows [r0, r1) x positions [q0, q1), walked
      // as `chunks` position chunks, each over every block-row of the share
      // (call k: chunk k / (r1 - r0), block-row r0 + k % (r1 - r0)), or
      // over groups of `group` block-rows (above).
      struct Share {
        int64_t r0 = 0, r1 = 0, q0 = 0, q1 = 0, chunks = 0, group = 1;
        int64_t groups() const { return (r1 - r0 + group - 1) / group; }
        int64_t calls() const { return chunks * groups(); }
      };
      // A remainder shorter than a tile joins the chunk before it: as a
      // chunk of its own it would stream every block-row's weights once
      // more for a few positions (7x7 = 48 + 1 with 2048 input channels:
      // 2 MB at 50% for one position), and in the same call the kernel
      // fuses such a tail into its full tiles.
      // Likewise a last chunk of one tile and 3-4 more positions: the
      // AVX-512 kernel fuses at most two tail positions into each full tile,
      // so it would run them in a pass of their own (ResNet-50
      // layer3.0.conv2, 3x3 s2 to 14x14: chunks of 48, the last 48 + 4;
      // layer3.0.downsample: 144 + 52); the chunk before takes them
      // instead (48, 48, 100; 196). Paired runs, 1 thread: +2-5% and
      // +7-10% at 50-90%.
      auto chunk_end = [&](const Share& sh, int64_t q) {
        const int64_t rest = sh.q1 - q - chunk;  // after this chunk
        const bool lone_tail = rest < 2 * kChunkQuantum && rest % kChunkQuantum > kFusedPerTile &&
                               rest % kChunkQuantum <= 2 * kFusedPerTile;
        return rest < kChunkQuantum || lone_tail ? sh.q1 : q + chunk;
      };
      auto share_of = [&](int u) {
        Share sh;
        sh.r1 = rows;
        sh.group = group;
        sh.q1 = total;
        if (nt > 1 && split == Split::kPositions) {
          sh.q0 = PositionSplit(total, u, nt, tiled_);
          sh.q1 = PositionSplit(total, u + 1, nt, tiled_);
        } else if (nt > 1 && split == Split::kRows) {
          // Block-rows whose cumulative work starts in this thread's share.
          auto start_of = [&](int64_t target) {
            int64_t r = 0;
            while (r < rows && row_ptr[r] + r < target) ++r;
            return r;
          };
          sh.r0 = start_of(work * u / nt);
          sh.r1 = u == nt - 1 ? rows : start_of(work * (u + 1) / nt);
        }
        if (sh.r0 < sh.r1)
          for (int64_t q = sh.q0; q < sh.q1; q = chunk_end(sh, q)) ++sh.chunks;
        return sh;
      };
      const float* xs = direct_ ? xn : xcopy;
      // Software pipelining over block-rows. In a model, a layer's weights
      // and input arrive from L3 or DRAM (the layers in between evicted
      // them), and the kernel's access pattern defeats the hardware
      // prefetchers: a tile reads 8 channels of a random block-column per
      // block (hundreds of interleaved streams), a block-row's weights are
      // read once per pass. So the kernel runs one block-row per call and
      // is asked to prefetch, spread over that call, the next block-row's
      // weights and 1/rows of the next chunk's input into L2 (ResNet-50
      // at 50%, 1 thread, each sparse layer timed inside the model:
      // docs/BENCHMARKS.md "End-to-end block-sparse").
      auto run_call = [&](const Share& sh, int64_t k) {
        const int64_t nr = sh.r1 - sh.r0, ci = k / sh.groups(),
                      r = sh.r0 + k % sh.groups() * sh.group;
        const bool last_chunk = ci == sh.chunks - 1;
        a.q_begin = sh.q0 + ci * chunk;
        a.q_end = last_chunk ? sh.q1 : a.q_begin + chunk;
        const int64_t nq0 = a.q_end, nq1 = last_chunk ? nq0 : chunk_end(sh, nq0);
        wait_packed(a.q_end, last_chunk);
        const int64_t rn = r + 1 < sh.r1 ? r + 1 : sh.r0;  // the next chunk starts over
        const bool next_w = r + 1 < sh.r1 || nq0 < nq1;
        a.prefetch_w = next_w ? w.values() + int64_t{row_ptr[rn]} * block_floats : nullptr;
        a.prefetch_w_bytes = int64_t{row_ptr[rn + 1] - row_ptr[rn]} * block_floats * 4;
        a.prefetch_x = nullptr;
        if (nq0 < nq1 && s2_) {
          // Stride 2 in place: the input rows of the next chunk's output
          // rows, channels [cb, ce).
          const int64_t cb = c * (r - sh.r0) / nr, ce = c * (r + 1 - sh.r0) / nr;
          const int64_t iy0 = std::max<int64_t>(0, 2 * (nq0 / pitch) - pad_top_);
          const int64_t iy1 = std::min(in_h_, 2 * ((nq1 - 1) / pitch) - pad_top_ + kh_);
          a.prefetch_x = xs + cb * x_channel_stride_ + iy0 * in_w_;
          a.prefetch_x_ranges = ce - cb;
          a.prefetch_x_stride = x_channel_stride_;
          a.prefetch_x_bytes = std::max<int64_t>(0, iy1 - iy0) * in_w_ * 4;
          if (intel_1x1) a.prefetch_x_bytes = std::min(a.prefetch_x_bytes, kIntelL2NextXBytes);
        } else if (nq0 < nq1 && !tiled_) {
          // Channels [cb, ce) of the next chunk: every stored plane, the
          // chunk's positions plus the taps' reach.
          const int64_t cb = c * (r - sh.r0) / nr, ce = c * (r + 1 - sh.r0) / nr;
          a.prefetch_x = xs + cb * x_channel_stride_ + nq0;
          a.prefetch_x_ranges = (ce - cb) * planes;
          a.prefetch_x_stride = direct_ ? x_channel_stride_ : plane_floats;
          a.prefetch_x_bytes = (nq1 - nq0 + max_plane_off_) * 4;
          if (intel_1x1) a.prefetch_x_bytes = std::min(a.prefetch_x_bytes, kIntelL2NextXBytes);
        }
        a.row_begin = r;
        a.row_end = std::min(sh.r1, r + sh.group);
        fn(a);
      };
      const Share mine = share_of(tid);
      if (mine.r0 < mine.r1)
        PrefetchL2(w.values() + int64_t{row_ptr[mine.r0]} * block_floats,
                   int64_t{row_ptr[mine.r0 + 1] - row_ptr[mine.r0]} * block_floats * 4);
      if (!steal) {
        for (int64_t k = 0; k < mine.calls(); ++k) run_call(mine, k);
      } else {
        // Each thread takes its own calls in order from its counter; when
        // done it takes the calls left on the other threads' counters (a
        // thread the OS descheduled, a slower share), after every input
        // copy is done. The calls and their chunk boundaries are the same
        // whoever runs them, so results do not depend on who did.
        for (int64_t k;
             (k = next_call[tid].v.fetch_add(1, std::memory_order_relaxed)) < mine.calls();)
          run_call(mine, k);
        for (int d = 1; d < nt; ++d) {
          const int u = (tid + d) % nt;
          const Share other = share_of(u);
          if (next_call[u].v.load(std::memory_order_relaxed) >= other.calls()) continue;
          if (!own_copy) ensure_all();
          for (int64_t k;
               (k = next_call[u].v.fetch_add(1, std::memory_order_relaxed)) < other.calls();)
            run_call(other, k);
        }
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

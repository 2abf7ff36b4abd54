// Block-sparse Conv / Gemm / MatMul operators and the per-layer cost rule
// (contract in ops_sparse.h).
#include "runtime/ops_sparse.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/block_mask.h"
#include "core/block_sparse.h"
#include "core/env.h"
#include "core/logging.h"
#include "kernels/sparse/bsr_conv_plan.h"
#include "kernels/sparse/bsr_wino_plan.h"
#include "runtime/operator.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime {

namespace {
std::atomic<int> g_mode_override{-1};  // a SparseMode, or -1: the environment's
}  // namespace

void SetSparseMode(SparseMode mode) { g_mode_override = static_cast<int>(mode); }

SparseMode CurrentSparseMode() {
  const int forced = g_mode_override.load();
  if (forced >= 0) return static_cast<SparseMode>(forced);
  static const SparseMode mode = [] {
    const char* v = std::getenv("WBS_SPARSE");
    if (v == nullptr || std::string(v) == "auto" || std::string(v).empty())
      return SparseMode::kAuto;
    if (std::string(v) == "0") {
      WBS_LOG_INFO("WBS_SPARSE=0: block-sparse kernels disabled, dense layers only");
      return SparseMode::kOff;
    }
    if (std::string(v) == "1") {
      WBS_LOG_INFO("WBS_SPARSE=1: every layer with a zero 8x8 block runs block-sparse");
      return SparseMode::kForce;
    }
    WBS_LOG_WARN("WBS_SPARSE='{}' is not 0|1|auto; using auto", v);
    return SparseMode::kAuto;
  }();
  return mode;
}

// The cost model. t_sparse / t_dense = a * kept + b per class, least squares
// over the 1-thread medians of
//   OMP_WAIT_POLICY=passive build/<dir>/bench/wbs_bench_sparse --threads=1,2
//       --sparsity=0,25,50,75,90 --benchmark_min_time=0.2
// (ResNet-50's 23 distinct conv shapes and its FC at 0/25/50/75/90% random-mask
// block sparsity, docs/BENCHMARKS.md "Block-sparse kernels"), one table per
// sparse-kernel ISA, fitted by scripts/fit_conv_cost.py. The classes are what
// the measurements separate: the output plane's size (the kernel vectorizes
// over output positions; per-tile and per-chunk costs are amortized over
// fewer positions on small planes), whether the input is first copied into
// stride phases, and (AVX2) whether the kernel is pointwise.
namespace {

enum class Kernel { kAny, kPointwise, kSpatial };  // kh * kw == 1 or > 1

struct CostClass {
  int64_t min_positions;  // applies to planes with at least this many positions
  bool strided;
  Kernel kernel;
  double a, b;
};
// AVX-512 (f32_bsr8xn_conv__avx512; commit ebef479, kernels with fused tails;
// the 2-thread samples of that loaded 2-CPU machine scattered by up to 0.5
// and were left out). Max abs residual of t_sparse/t_dense in parentheses:
// >= 700 positions s1 (0.28: layer2.0.conv1's samples; others < 0.15), s2
// (0.22; one stalled sample, 17x at 0%, left out); 150..699 s1 (0.06), s2
// (0.03); < 150 s1 (0.17), s2 (0.20). Before the fused tails the < 150
// classes were 1.50 * kept (7x7 planes gained 1.2-1.3x at 50%); now every
// class is ~1.05-1.26 * kept. Rechecked after the block-row prefetch
// (commit 80d1c8b, two full runs pooled, load 11-21): a = 0.89 / 0.89 /
// 1.02 / 1.16 / 1.09 / 1.05, b = 0.065 / 0.09 / 0.03 / 0.04 / -0.015 /
// 0.02 in the order below. Kept as they are: at 50-90% both choose sparse
// everywhere, and where the rule flips (kept 0.8-0.9) the constants below
// are 0.05-0.1 more conservative, which a model needs: there oneDNN runs
// ~10% faster than in this benchmark (no reorders) and a sparse layer ~4%
// slower (cold weights and input; docs/BENCHMARKS.md "End-to-end
// block-sparse").
constexpr CostClass kConvCostAvx512[] = {
    {700, false, Kernel::kAny, 1.046, 0.067}, {700, true, Kernel::kAny, 0.926, 0.081},
    {150, false, Kernel::kAny, 1.059, 0.031}, {150, true, Kernel::kAny, 1.258, 0.021},
    {0, false, Kernel::kAny, 1.092, 0.005},   {0, true, Kernel::kAny, 1.232, 0.0},
};
// AVX2 (f32_bsr8xn_conv__avx2 against oneDNN's jit:avx2 / jit_1x1:avx2 on an
// AMD EPYC Zen 3 VM; four 1-thread runs pooled, load 1.1-2.0, 2026-11-28
// 18:17-18:22 UTC; scripts/fit_conv_cost.py --isa=avx2). Kernel with 4 x
// 3-ymm tiles, channel-vectorized tails and grouped wide 1x1 rows (commit
// 83e8cf5): t_s/t_d at 50% 0.56-0.83 pointwise >= 700 positions, 0.69-0.81
// pointwise < 700, 0.75-0.77 pointwise strided, 0.59-0.70 kh x kw s1,
// 0.65-0.84 kh x kw s2. Max abs residuals 0.19 / 0.10 / 0.13 / 0.11 / 0.22 in
// the order below. Sparse (est <= 0.9) while kept <= 0.69 / 0.62 / 0.62 /
// 0.73 / 0.60. (The previous kernel, 4 x 2-ymm tiles, ran at ~53% of
// oneDNN's rate: a = 1.643 / 2.626 / 2.136 / 1.506 / 1.706.)
// The three pointwise classes refitted after the tiled 1x1 copy took the
// stride-1 layers at >= 16 kept blocks per input channel and every strided
// 1x1 layer (h_avx2i, 2026-11-28 21:07-21:15 UTC, load 3.2-3.9; four
// 25-90% runs and three 0% runs of the 1x1 layers pooled): they were
// 1.174 / 0.094, 1.477 / -0.012, 1.283 / 0.105 (sparse while kept <= 0.69 /
// 0.62 / 0.62); now sparse while kept <= 0.72 / 0.76 / 0.74. Max abs
// residuals 0.25 / 0.11 / 0.18.
constexpr CostClass kConvCostAvx2[] = {
    {700, false, Kernel::kPointwise, 1.110, 0.104}, {0, false, Kernel::kPointwise, 1.092, 0.065},
    {0, true, Kernel::kPointwise, 1.083, 0.100},    {0, false, Kernel::kSpatial, 1.196, 0.022},
    {0, true, Kernel::kSpatial, 1.391, 0.062},
};

}  // namespace

// Gemm with few rows (batch-1 classifiers). AVX-512: the kernel's
// paired-channel GEMV (Gemv8, two 8x8 blocks per step) streams the kept
// weights at oneDNN's rate, so sparse wins in proportion to the weights it
// skips. Small class (< 8M weights) refitted to the same wbs_bench_sparse
// run (ResNet-50's fc, 2048 -> 1000, 1 row: t_sparse/t_dense 1.20 / 0.86 /
// 0.51 / 0.25 / 0.07 at 0/25/50/75/90%: a = 1.257, b = -0.076 raised to 0;
// it was 2.3 / 1.3 / 0.47 at 50/75/90% before Gemv8, a = 4.4). The
// large class (>= 8M weights, VGG-16's fc1/fc2) was the fit of
//   OMP_WAIT_POLICY=passive wbs_bench_models --gemm_calibration --threads=1,2
//       --benchmark_min_time=0.1 --benchmark_repetitions=3
// from before Gemv8 (4096x4096: 0.72 / 0.50 / 0.19 at 50/75/90%;
// 25088x4096: 1.2 / 0.53 / 0.20; a = 1.8, b = 0.02: dense at 50%, and
// VGG-16's fc1 took 17.6-19.6 of its ~89 ms at 2 threads). Refitted to the
// same command on the Intel VM (2026-11-29 10:00 UTC, medians of 3, 1 / 2
// threads): 25088x4096 0.53 / 0.52 at 50%, 0.29 / 0.12 at 75%, 0.055 /
// 0.055 at 90%; 4096x4096 0.28 / 0.38, 0.28 / 0.26, 0.07 / 0.11; the 411 MB
// dense weight streams from DRAM, the sparse one is half as many bytes:
// a = 1.1 (the small class's 0% point, ~1.2, shrunk by the index bytes'
// smaller share), b = 0: sparse while kept <= 0.81. AVX2: the kernel's
// channel-vectorized tail is its GEMV form (one FMA per input channel for a
// block's 8 output channels); the fc measured 1.75 / 1.16 / 0.70 / 0.40 /
// 0.19 at 0/25/50/75/90% (the AVX2 runs above; a = 1.704, b = -0.046 raised
// to 0; sparse while kept <= 0.53). Before it (one position filled one of a
// tile's 8 lanes): 6.3-7.7 / 4.8-5.3 / 4.3 / 1.6-2.0 / 1.0-1.1, a = 6.7.
constexpr int64_t kGemmFewRows = 16;
constexpr int64_t kGemmLargeWeights = int64_t{8} << 20;
constexpr double kGemmSmallA = 1.257, kGemmSmallB = 0.0;
constexpr double kGemmLargeA = 1.1, kGemmLargeB = 0.0;
constexpr double kGemmAvx2A = 1.704, kGemmAvx2B = 0.0;

double EstimateSparseOverDense(const SparseLayerShape& s, kernels::sparse::Isa isa) {
  const bool avx512 = isa >= kernels::sparse::Isa::kAvx512;
  const double kept = std::clamp(s.kept, 0.0, 1.0);
  if (s.gemm && s.out_positions < kGemmFewRows) {
    if (!avx512) return kGemmAvx2A * kept + kGemmAvx2B;
    return s.weights >= kGemmLargeWeights ? kGemmLargeA * kept + kGemmLargeB
                                          : kGemmSmallA * kept + kGemmSmallB;
  }
  const bool strided = s.stride > 1;
  const Kernel kernel = s.kernel_elems > 1 ? Kernel::kSpatial : Kernel::kPointwise;
  for (const CostClass& c : avx512 ? std::span<const CostClass>(kConvCostAvx512)
                                   : std::span<const CostClass>(kConvCostAvx2))
    if (s.out_positions >= c.min_positions && c.strided == strided &&
        (c.kernel == Kernel::kAny || c.kernel == kernel))
      return c.a * kept + c.b;
  return 1e9;  // unreachable: each table's last classes start at 0 positions
}

double EstimateSparseOverDense(const SparseLayerShape& s) {
  return EstimateSparseOverDense(s, kernels::sparse::ActiveIsa());
}

WinogradMode CurrentWinogradMode() {
  const char* v = std::getenv("WBS_SPARSE_WINOGRAD");
  if (v == nullptr || *v == '\0' || std::string(v) == "auto") return WinogradMode::kAuto;
  if (std::string(v) == "0") return WinogradMode::kOff;
  if (std::string(v) == "1") return WinogradMode::kForce;
  WBS_LOG_WARN("WBS_SPARSE_WINOGRAD='{}' is not 0|1|auto; using auto", v);
  return WinogradMode::kAuto;
}

// Winograd over direct, both block-sparse, for 3x3 stride-1 convs:
// t_wino / t_direct = a / kept + b per output-plane class (the transforms
// are a fixed cost, the GEMMs and the direct plan scale with the kept
// blocks), fitted to the 1- and 2-thread medians of
//   OMP_WAIT_POLICY=passive chrt -f 10 build/<dir>/bench/wbs_bench_sparse
//       --winograd=only --threads=1,2 --sparsity=0,25,50,75,90
//       --benchmark_min_time=0.2
// (ResNet-50's four 3x3 stride-1 shapes; each row times oneDNN, the direct
// plan and the Winograd plan interleaved; docs/BENCHMARKS.md "Block-sparse
// Winograd on AVX2, h_wino2"), AVX2 Zen 3 VM, two runs. Speed-up over direct at 0 / 25 / 50
// / 75 / 90% (1 and 2 threads): 56x56 1.9-2.2 / 1.9-2.2 / 1.5-1.75 /
// 0.95-1.2 / 0.64-0.74x, 28x28 2.1-2.4 / 2.0-2.15 / 1.77-2.02 / 1.30-1.43 /
// 0.81-0.88x, 14x14 1.2-2.05 / 1.5-2.05 / 1.5-2.0 / 1.3-1.75 / 1.15-1.26x,
// 7x7 1.0-1.25 / 1.0-1.17 / 0.84-1.12 / 1.0-1.15 / 0.7-1.0x. The 7x7 class
// is set so that it is not chosen: its transformed weights (16/9 of the
// direct ones, 8.4 MB per ResNet-50 layer4 conv at 50%) come from DRAM
// inside a model, not warm as in the benchmark.
namespace {
struct WinoCostClass {
  int64_t min_positions;
  double a, b;
};
constexpr WinoCostClass kWinoCost[] = {
    {2000, 0.109, 0.39}, {500, 0.081, 0.37}, {150, 0.035, 0.48}, {0, 0.02, 0.98}};
}  // namespace

// AVX-512 (f32_bsr8xn_conv__avx512 GEMMs on chunks of 48 tiles, the
// f32_wino2x3__avx512 transforms), fitted to the same benchmark (--layers=2,
// 10,16,22, --benchmark_min_time=0.3) on an Intel Xeon (Emerald Rapids
// class, 2 cores, 2 MB L2) VM, two runs, 2026-11-29 09:25 UTC. Speed-up
// over direct at 0 / 25 / 50 / 75 / 90% (1 and 2 threads): 56x56 1.49-1.52
// / 1.26-1.51 / 1.10-1.20 / 0.77-0.87 / 0.45-0.53x, 28x28 1.42-1.66 /
// 1.32-1.63 / 1.20-1.49 / 0.99-1.11 / 0.60-0.83x, 14x14 1.80-1.99 /
// 1.71-1.99 / 1.60-1.78 / 1.43-1.75 / 0.99-1.76x, 7x7 0.72-0.96 /
// 0.49-0.93 / 0.78-0.93 / 0.64-0.86 / 0.53-0.70x (never picked). Max abs
// residuals of the fits 0.20 / 0.27 / 0.24. The transforms, not the GEMMs,
// bound the 56x56 plane: its V and M (196 KB each per chunk) stream
// through L2 (docs/KERNELS.md "Winograd").
constexpr WinoCostClass kWinoCostAvx512[] = {
    {2000, 0.153, 0.547}, {500, 0.092, 0.566}, {150, 0.030, 0.510}, {0, 0.043, 1.199}};

double EstimateWinoOverDirect(const SparseLayerShape& s, kernels::sparse::Isa isa) {
  const double kept = std::clamp(s.kept, 0.01, 1.0);
  for (const WinoCostClass& c : isa >= kernels::sparse::Isa::kAvx512
                                    ? std::span<const WinoCostClass>(kWinoCostAvx512)
                                    : std::span<const WinoCostClass>(kWinoCost))
    if (s.out_positions >= c.min_positions) return c.a / kept + c.b;
  return 1e9;  // unreachable: the last class starts at 0 positions
}

double EstimateWinoOverDirect(const SparseLayerShape& s) {
  return EstimateWinoOverDirect(s, kernels::sparse::ActiveIsa());
}

WinoTileMode CurrentWinoTileMode() {
  const char* v = std::getenv("WBS_WINO_TILE");
  if (v == nullptr || *v == '\0' || std::string(v) == "auto") return WinoTileMode::kAuto;
  if (std::string(v) == "2") return WinoTileMode::k2;
  if (std::string(v) == "4") return WinoTileMode::k4;
  WBS_LOG_WARN("WBS_WINO_TILE='{}' is not 2|4|auto; using auto", v);
  return WinoTileMode::kAuto;
}

// F(4x4, 3x3) over direct on AVX-512 (f32_wino4x3__avx512 transforms,
// chunks of 48 tiles), t / t_direct = a / kept + b per output-plane class
// like kWinoCostAvx512, fitted to the 1- and 2-thread medians of
//   OMP_WAIT_POLICY=passive chrt -f 10 build/<dir>/bench/wbs_bench_sparse
//       --winograd=only --threads=1|2 --sparsity=0,25,50,75,90 --layers=2,10
//       --benchmark_min_time=0.2
// (F(2x2), F(4x4), the direct plan and oneDNN interleaved in one loop) on
// the Intel VM (Emerald Rapids class, 2 cores), two runs, 2026-11-29
// 10:18 UTC (docs/BENCHMARKS.md "Winograd F(4x4, 3x3), h_w4"). Speed-up over
// direct at 0 / 25 / 50 / 75 / 90% (1 and 2 threads): 56x56 1.71-2.21 /
// 1.68-1.96 / 1.25-1.60 / 1.01-1.09 / 0.51-0.68x, 28x28 2.26-2.91 / 2.22-2.82
// / 1.76-2.24 / 1.23-1.59 / 0.71-1.00x; over F(2x2) 1.10-1.45x (56x56) and
// 1.10-2.24x (28x28) at every sparsity, so the rule's F(4x4) estimate is
// below F(2x2)'s everywhere on these planes. Max abs residuals 0.31 / 0.24.
// The 28x28 class refitted (0.095 / kept + 0.288 before) after the
// transforms took two tile rows per zmm on planes of <= 7 tiles per row,
// two runs at 0 / 50 / 90% (10:30 UTC): over direct 2.76-2.80 / 2.03-2.22 /
// 0.88-1.10x, over F(2x2) 1.85-1.88 / 1.69-1.73 / 1.30-1.44x; residual 0.11.
// Smaller planes have fewer 4x4 tiles than the kernel's 48-tile register
// tile (14x14: 16) and are not fitted (never F(4x4) in auto).
namespace {
constexpr WinoCostClass kWino4CostAvx512[] = {
    {2000, 0.140, 0.377}, {500, 0.072, 0.304}, {0, 0.0, 1e9}};
}  // namespace

double EstimateWino4OverDirect(const SparseLayerShape& s, kernels::sparse::Isa isa) {
  if (isa < kernels::sparse::Isa::kAvx512) return 1e9;
  const double kept = std::clamp(s.kept, 0.01, 1.0);
  for (const WinoCostClass& c : kWino4CostAvx512)
    if (s.out_positions >= c.min_positions) return c.a / kept + c.b;
  return 1e9;
}

double EstimateWino4OverDirect(const SparseLayerShape& s) {
  return EstimateWino4OverDirect(s, kernels::sparse::ActiveIsa());
}

namespace {

using kernels::sparse::BsrConvPlan;
using kernels::sparse::BsrWinoPlan;

// WBS_WINO_SPLIT=auto|xi|tiles|rows (read at each operator's creation):
// BsrWinoPlan's thread split, for paired runs (--variants); unset: auto.
BsrWinoPlan::Split WinoSplitFromEnv() {
  const char* v = std::getenv("WBS_WINO_SPLIT");
  const std::string s = v ? v : "";
  if (s.empty() || s == "auto") return BsrWinoPlan::Split::kAuto;
  if (s == "xi") return BsrWinoPlan::Split::kXi;
  if (s == "tiles") return BsrWinoPlan::Split::kTiles;
  if (s == "rows") return BsrWinoPlan::Split::kRows;
  static const bool warned = [&] {
    WBS_LOG_WARN("WBS_WINO_SPLIT='{}' is not auto|xi|tiles|rows; using auto", s);
    return true;
  }();
  (void)warned;
  return BsrWinoPlan::Split::kAuto;
}
constexpr int kBlock = 8;  // the block edge the AVX kernels take (bsr8xn)

// Scratch shared by every sparse operator run from this thread: operators
// of a session run one after the other, so one buffer sized for the largest
// layer serves all of them (and stays warm in cache).
float* ThreadScratch(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

// The clamp a BSR kernel can fuse: none, Relu, Clip.
bool IsClamp(const kernels::ref::Activation& a) {
  using K = kernels::ref::ActivationKind;
  return a.kind == K::kNone || a.kind == K::kRelu || a.kind == K::kClip;
}

bool AllStatic(const ir::ValueInfo& v) {
  if (!v.has_shape) return false;
  return std::all_of(v.shape.begin(), v.shape.end(), [](int64_t d) { return d >= 0; });
}

// The compressed weight of `w` (rank 2 [COUT, CIN] or 4), from the weight
// value's 8x8 mask when it has one that agrees with the zeros, else from
// its all-zero 8x8 blocks.
Result<BlockSparseWeight> Compress(const ir::Node& node, const ir::Value* wv, const Tensor& w) {
  if (wv && wv->block_mask && wv->block_mask->block_rows == kBlock &&
      wv->block_mask->block_cols == kBlock) {
    const BlockMask& m = *wv->block_mask;
    // A transposed copy keeps the mask's rows (COUT blocks) and columns.
    BlockMask oi = m;
    oi.layout = MaskLayout::kOutIn;
    Status fits = CheckMaskAgainstWeight(oi, w, "weight '" + wv->name + "'");
    if (fits.ok()) return BlockSparseWeight::FromDenseMasked(w, oi);
    WBS_LOG_WARN("{}: block mask ignored ({}); zero blocks are detected instead", node.Describe(),
                 fits.message());
  }
  return BlockSparseWeight::FromDense(w, kBlock, kBlock);
}

// Logs the per-layer decision and says whether to go sparse. `wino`:
// the sparse side would be Winograd F(tile x tile), `wino_est` its time
// over the direct sparse plan's (which scales the sparse estimate).
bool Decide(const ir::Node& node, const BlockSparseWeight& w, const SparseLayerShape& shape,
            bool wino = false, double wino_est = 1.0, int tile = 2) {
  const BlockSparseStats st = w.Stats();
  const double est = EstimateSparseOverDense(shape) * (wino ? wino_est : 1.0);
  const bool force = CurrentSparseMode() == SparseMode::kForce;
  const bool sparse = force || est <= kSparseChooseBelow;
  WBS_LOG_INFO("{}: sparse {:.1f}% zero blocks, est {:.2f}x dense -> {}{}{}",
               node.name.empty() ? node.Describe() : node.name, 100.0 * st.block_sparsity(), est,
               sparse ? "sparse" : "dense",
               !sparse ? ""
               : wino ? fmt::format(" winograd F({}x{}) (est {:.2f}x direct)", tile, tile, wino_est)
                      : " direct",
               force ? " (WBS_SPARSE=1)" : "");
  return sparse;
}

class SparseConvOp final : public Operator {
 public:
  // nullptr: declined (the wrapped factory is tried next).
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    const bool has_bias = in.size() > 2 && in[2].present;
    const bool residual = in.size() > 3 && in[3].present;
    if (in.size() < 2 || !in[0].present || in[0].dtype != DType::kF32 || !AllStatic(in[0]) ||
        in[1].value == nullptr || in[1].value->dtype() != DType::kF32 ||
        (has_bias && in[2].dtype != DType::kF32) || (residual && in[3].dtype != DType::kF32) ||
        args.outputs.empty() || args.outputs[0].dtype != DType::kF32)
      return std::unique_ptr<Operator>();
    const Tensor& w = *in[1].value;
    if ((w.rank() != 3 && w.rank() != 4) || in[0].rank() != w.rank() ||
        node.GetInt("group", 1) != 1)
      return std::unique_ptr<Operator>();
    Result<kernels::ref::ConvParams> p = ResolveConvParams(node, in[0].shape, w.shape(), false);
    if (!p.ok() || p->group != 1 || !IsClamp(p->activation) || NumElements(in[0].shape) == 0)
      return std::unique_ptr<Operator>();  // the dense chain reports bad geometry

    // 1-D convs are 2-D ones with a 1-high kernel.
    WBS_ASSIGN_OR_RETURN(Tensor w4, w.rank() == 4 ? Result<Tensor>(w)
                                                  : w.Reshaped({w.dim(0), w.dim(1), 1, w.dim(2)}));
    auto op = std::unique_ptr<SparseConvOp>(new SparseConvOp(node, has_bias, residual));
    WBS_ASSIGN_OR_RETURN(BlockSparseWeight bsr, Compress(node, node.input(1), w4));
    if (bsr.nnz_blocks() == bsr.block_rows() * bsr.block_cols()) {
      WBS_LOG_DEBUG("{}: no zero 8x8 block, dense", node.Describe());
      return std::unique_ptr<Operator>();
    }
    op->w_ = std::make_unique<BlockSparseWeight>(std::move(bsr));
    SparseLayerShape shape;
    shape.out_positions = p->out[1] * p->out[2];
    shape.stride = std::max(p->stride[1], p->stride[2]);
    shape.kernel_elems = p->kernel[1] * p->kernel[2];
    shape.kept = double(op->w_->nnz_blocks()) / double(op->w_->block_rows() * op->w_->block_cols());
    // Winograd for the 3x3 stride-1 layers when the measured rule (or
    // WBS_SPARSE_WINOGRAD=1) says so, F(4x4) or F(2x2) by WBS_WINO_TILE
    // and the rule; both variables are read here, at each operator's
    // creation, like WBS_PRIVATE_COPIES below.
    const WinogradMode wino_mode = CurrentWinogradMode();
    const bool wino_ok = wino_mode != WinogradMode::kOff && BsrWinoPlan::Eligible(*p);
    const WinoTileMode tile_mode = CurrentWinoTileMode();
    double wino_est = 1.0;
    int tile = 2;
    if (wino_ok) {
      const double est2 = EstimateWinoOverDirect(shape);
      const double est4 = tile_mode == WinoTileMode::k2 ? 1e9 : EstimateWino4OverDirect(shape);
      // F(4x4) fills the GEMM kernel's register tile of tiles only on
      // planes of at least that many 4x4 tiles (bsr_wino_plan.h).
      const int64_t tiles4 = (p->out[1] + 3) / 4 * ((p->out[2] + 3) / 4);
      const bool fits4 = tiles4 >= kernels::sparse::SelectBsrConvKernel(op->w_->br()).tile_q;
      tile = tile_mode == WinoTileMode::k4                              ? (fits4 ? 4 : 2)
             : tile_mode == WinoTileMode::kAuto && fits4 && est4 < est2 ? 4
                                                                        : 2;
      // Whether to go Winograd at all: the better estimate (F(2x2)'s
      // where F(4x4) has no fit, e.g. forced on AVX2).
      wino_est = tile == 4 && est4 < 1e8 ? est4 : est2;
    }
    bool wino = wino_ok && (wino_mode == WinogradMode::kForce || wino_est < 1.0);
    if (!Decide(node, *op->w_, shape, wino, wino_est, tile)) return std::unique_ptr<Operator>();
    if (wino) {
      Result<BsrWinoPlan> wp = BsrWinoPlan::Create(*p, *op->w_, nullptr, nullptr, tile);
      if (wp.ok()) {
        op->wino_ = std::make_unique<BsrWinoPlan>(std::move(wp).value());
        op->wino_->ForceSplit(WinoSplitFromEnv());
        op->x_shape_ = in[0].shape;
        op->y_shape_ = {p->batch, p->out_channels, p->out[1], p->out[2]};
        op->impl_ = std::string("sparse:winograd:") + op->wino_->kernel().name + "+" +
                    op->wino_->transform().name;
        // The plan keeps its own (transformed) copy of the weight.
        op->w_.reset();
        return std::unique_ptr<Operator>(std::move(op));
      }
      WBS_LOG_DEBUG("{}: winograd plan declined ({}); direct", node.Describe(),
                    wp.status().message());
    }
    // Create() reads WBS_BSR_S2=auto|old|new here, at the operator's
    // creation (stride-2 convs read in place or copied; BsrConvPlan::Stride2).
    Result<BsrConvPlan> plan = BsrConvPlan::Create(*p, *op->w_);
    if (!plan.ok()) {
      WBS_LOG_DEBUG("{}: block-sparse plan declined: {}", node.Describe(), plan.status().message());
      return std::unique_ptr<Operator>();
    }
    op->plan_ = std::make_unique<BsrConvPlan>(std::move(plan).value());
    // Private input copies for block-row splits: each thread copies all of
    // the input instead of reading half the channels' planes from the other
    // core's cache on every block-row. Paired in one process, ResNet-50 50%
    // at 2 threads: 3.4-4.9% faster on the loaded machine (also under
    // SCHED_FIFO), even on the quiet one (10.07 ms off, 10.12 on;
    // docs/BENCHMARKS.md "End-to-end block-sparse"). WBS_PRIVATE_COPIES=0
    // turns it off, read here at each operator's creation so
    // wbs_bench_models --variants can compare both.
    op->plan_->EnablePrivateCopies(BsrConvPlan::PrivateCopiesDefault());
    // The split rule (WBS_SPLIT, default tfine: by operand size, a position
    // split for the 56x56 / 28x28 layers even with private copies, and
    // whole-tile copy parts and >= 8 calls per thread for tiled 1x1 plans)
    // and finer calls (WBS_SPLIT_MIN_CALLS, default off); docs/BENCHMARKS.md
    // "AVX2 2-thread scaling, h_avx2o" and "AVX2 14x14 1x1 at 2 threads, h_avx2p".
    op->plan_->SetSplitRule(BsrConvPlan::SplitRuleDefault());
    op->plan_->SetMinCalls(BsrConvPlan::MinCallsDefault());
    op->x_shape_ = in[0].shape;
    op->y_shape_ = {p->batch, p->out_channels};
    for (int i = kernels::ref::kMaxConvSpatialRank - p->spatial_rank;
         i < kernels::ref::kMaxConvSpatialRank; ++i)
      op->y_shape_.push_back(p->out[i]);
    op->impl_ = std::string("sparse:") + op->plan_->kernel().name;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    const Tensor* x = InputOrNull(inputs, 0);
    if (x == nullptr || outputs.empty() || outputs[0] == nullptr)
      return InvalidArgument("{}: missing input X or output Y", node_.Describe());
    Tensor& y = *outputs[0];
    if (x->dtype() != DType::kF32 || x->shape() != x_shape_ || y.dtype() != DType::kF32 ||
        y.shape() != y_shape_)
      return InvalidArgument(
          "{}: block-sparse conv was planned for X f32{} -> Y f32{}, got {} -> {}",
          node_.Describe(), ShapeToString(x_shape_), ShapeToString(y_shape_), x->Describe(),
          y.Describe());
    const Tensor* b = InputOrNull(inputs, 2);
    if ((b != nullptr) != has_bias_ ||
        (b && (b->dtype() != DType::kF32 || b->shape() != Shape{y_shape_[1]})))
      return InvalidArgument("{}: bias must be f32[{}], got {}", node_.Describe(), y_shape_[1],
                             b ? b->Describe() : "none");
    const Tensor* r = InputOrNull(inputs, 3);
    if ((r != nullptr) != residual_ || (r && (r->dtype() != DType::kF32 || r->shape() != y_shape_)))
      return InvalidArgument("{}: residual must be f32{}, got {}", node_.Describe(),
                             ShapeToString(y_shape_), r ? r->Describe() : "none");
    const int threads = std::max(1, ctx.num_threads);
    threads_ = threads;
    float* scratch = ThreadScratch(static_cast<size_t>(
        wino_ ? wino_->scratch_floats(threads) : plan_->scratch_floats(threads)));
    auto run = [&] {
      if (wino_)
        wino_->Run(x->data<float>(), b ? b->data<float>() : nullptr, y.data<float>(), scratch,
                   threads, r ? r->data<float>() : nullptr);
      else
        plan_->Run(x->data<float>(), b ? b->data<float>() : nullptr, y.data<float>(), scratch,
                   threads, r ? r->data<float>() : nullptr);
    };
    const int profile = ProfileLevel();
    const bool y_aliases = (r != nullptr && r->data<float>() == y.data<float>()) ||
                           x->data<float>() == y.data<float>();
    // Levels 3-5 (diagnostics): before the timed call, untimed, touch one of
    // its operands so that call finds it cached: 3 writes Y (zeros, the
    // call overwrites them), 4 reads the weights, 5 reads X, one float per
    // 64-byte line. (cold - pre-touched) is that operand's share of the
    // cold cost; each is <= 4 MB, so the others stay where they were in
    // the 32 MB L3.
    if (profile >= 3 && !y_aliases) {
      auto touch = [](const float* p, size_t n) {
        float sum = 0;
        for (size_t i = 0; i < n; i += 16) sum += p[i];
        volatile float sink = sum;
        (void)sink;
      };
      if (profile == 3) std::memset(y.data<float>(), 0, y.nbytes());
      if (profile == 4 && !wino_)
        touch(w_->values(), static_cast<size_t>(w_->nnz_blocks() * w_->block_size()));
      if (profile == 5) touch(x->data<float>(), static_cast<size_t>(x->numel()));
    }
    const auto t0 = std::chrono::steady_clock::now();
    run();
    if (profile > 0)
      run_us_.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    // Level 2: the same call again, warm (the same result: only when Y is
    // not also an input).
    if (profile > 1 && !y_aliases) {
      const auto t1 = std::chrono::steady_clock::now();
      run();
      warm_us_.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count());
    }
    return Status::Ok();
  }

  // WBS_SPARSE_PROFILE=1: the median time of Run() inside whatever ran
  // this operator (e.g. a whole model), printed when it is destroyed; an
  // isolated benchmark finds weights and input warm, a model does not.
  ~SparseConvOp() override {
    if (run_us_.empty()) return;
    std::sort(run_us_.begin(), run_us_.end());
    std::sort(warm_us_.begin(), warm_us_.end());
    std::fprintf(stderr, "sparse_profile\t%s\t%s\t%s\t%zu\t%.1f",
                 node_.name.empty() ? node_.Describe().c_str() : node_.name.c_str(),
                 wino_ ? "winograd" : plan_->layout(), ShapeToString(x_shape_).c_str(),
                 run_us_.size(), run_us_[run_us_.size() / 2]);
    if (!warm_us_.empty()) std::fprintf(stderr, "\t%.1f", warm_us_[warm_us_.size() / 2]);
    if (plan_) std::fprintf(stderr, "\tsplit=%s", plan_->split_name(threads_));
    std::fprintf(stderr, "\n");
  }

  std::string impl_name() const override { return impl_; }

  // y = clamp(conv(x) + bias + residual) may be written over the residual:
  // both plans read each residual element just before they store the same
  // element of y (BsrConvPlan::Run, BsrWinoPlan::Run: "may alias y").
  int InPlaceInput() const override { return residual_ ? 3 : -1; }

 private:
  SparseConvOp(const ir::Node& node, bool has_bias, bool residual)
      : node_(node), has_bias_(has_bias), residual_(residual) {}

  // WBS_SPARSE_PROFILE: 0 (unset), 1 to 5 (ops_sparse.h; read once).
  static int ProfileLevel() {
    static const int level = [] {
      const char* v = std::getenv("WBS_SPARSE_PROFILE");
      return v == nullptr ? 0 : std::clamp(std::atoi(v), 0, 5);
    }();
    return level;
  }
  std::vector<double> run_us_;   // per Run(), with WBS_SPARSE_PROFILE=1 or 2
  std::vector<double> warm_us_;  // the repeated call, WBS_SPARSE_PROFILE=2
  int threads_ = 1;              // of the last Run() (the profile line's split)

  ir::Node node_;  // a copy: attributes and name outlive the graph
  bool has_bias_, residual_;
  std::unique_ptr<BlockSparseWeight> w_;  // plan_ points into it
  std::unique_ptr<BsrConvPlan> plan_;     // direct, or
  std::unique_ptr<BsrWinoPlan> wino_;     // Winograd (self-contained)
  Shape x_shape_, y_shape_;
  std::string impl_;
};

// Gemm (transA = 0) and MatMul with a constant 2-D weight: Y[R, N] =
// act(A[R, K] W^T + bias) as Y^T = W A^T, a 1x1 conv over an R-wide plane.
class SparseGemmOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, bool matmul) {
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    if (in.size() < 2 || !in[0].present || in[0].dtype != DType::kF32 || !AllStatic(in[0]) ||
        in[0].rank() < 2 || in[1].value == nullptr || in[1].value->dtype() != DType::kF32 ||
        in[1].value->rank() != 2 || args.outputs.empty() || args.outputs[0].dtype != DType::kF32 ||
        !AllStatic(args.outputs[0]))
      return std::unique_ptr<Operator>();
    const Tensor& b = *in[1].value;
    bool trans_b = false;
    std::vector<float> bias;
    if (!matmul) {
      if (in[0].rank() != 2 || node.GetInt("transA", 0) != 0 ||
          node.GetFloat("alpha", 1.0f) != 1.0f)
        return std::unique_ptr<Operator>();
      trans_b = node.GetInt("transB", 0) != 0;
      const float beta = node.GetFloat("beta", 1.0f);
      const int64_t n = trans_b ? b.dim(0) : b.dim(1);
      if (in.size() > 2 && in[2].present && beta != 0.0f) {
        // Only a constant C that is the same for every row: a bias of N.
        if (in[2].value == nullptr || in[2].value->dtype() != DType::kF32)
          return std::unique_ptr<Operator>();
        const Tensor& c = *in[2].value;
        const int64_t cn = c.rank() == 0 ? 1 : c.dim(-1);
        const int64_t cm = c.rank() == 2 ? c.dim(0) : 1;
        if (c.rank() > 2 || cm != 1 || (cn != 1 && cn != n)) return std::unique_ptr<Operator>();
        bias.resize(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j)
          bias[static_cast<size_t>(j)] = beta * c.data<float>()[cn == 1 ? 0 : j];
      }
    }
    Result<kernels::ref::Activation> act = FusedActivationOf(node);
    if (!act.ok() || !IsClamp(*act)) return std::unique_ptr<Operator>();
    const int64_t k = trans_b ? b.dim(1) : b.dim(0), n = trans_b ? b.dim(0) : b.dim(1);
    if (in[0].shape.back() != k || k == 0 || n == 0) return std::unique_ptr<Operator>();
    const int64_t rows = NumElements(in[0].shape) / k;
    if (rows == 0) return std::unique_ptr<Operator>();

    // W [N, K]: B itself when transB, else B transposed.
    Tensor w = b;
    if (!trans_b) {
      w = Tensor(DType::kF32, {n, k});
      const float* src = b.data<float>();
      float* dst = w.data<float>();
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < n; ++j) dst[j * k + i] = src[i * n + j];
    }
    WBS_ASSIGN_OR_RETURN(BlockSparseWeight bsr, Compress(node, node.input(1), w));
    if (bsr.nnz_blocks() == bsr.block_rows() * bsr.block_cols()) {
      WBS_LOG_DEBUG("{}: no zero 8x8 block, dense", node.Describe());
      return std::unique_ptr<Operator>();
    }
    auto op = std::unique_ptr<SparseGemmOp>(new SparseGemmOp(node));
    op->w_ = std::make_unique<BlockSparseWeight>(std::move(bsr));
    SparseLayerShape shape;
    shape.gemm = true;
    shape.out_positions = rows;
    shape.weights = n * k;
    shape.kept = double(op->w_->nnz_blocks()) / double(op->w_->block_rows() * op->w_->block_cols());
    if (!Decide(node, *op->w_, shape)) return std::unique_ptr<Operator>();
    // BsrConvPlan::CreateGemm without the activation: the same 1x1 conv.
    kernels::ref::ConvParams p;
    p.in_channels = k;
    p.out_channels = n;
    p.in = {1, 1, rows};
    p.out = {1, 1, rows};
    p.spatial_rank = 1;
    p.activation = *act;
    Result<BsrConvPlan> plan = BsrConvPlan::Create(p, *op->w_);
    if (!plan.ok()) {
      WBS_LOG_DEBUG("{}: block-sparse plan declined: {}", node.Describe(), plan.status().message());
      return std::unique_ptr<Operator>();
    }
    op->plan_ = std::make_unique<BsrConvPlan>(std::move(plan).value());
    op->bias_ = std::move(bias);
    op->a_shape_ = in[0].shape;
    op->y_shape_ = args.outputs[0].shape;
    op->rows_ = rows;
    op->k_ = k;
    op->n_ = n;
    if (NumElements(op->y_shape_) != rows * n)
      return Internal("{}: output {} is not {} x {}", node.Describe(), ShapeToString(op->y_shape_),
                      rows, n);
    op->impl_ = std::string("sparse:") + op->plan_->kernel().name;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    const Tensor* a = InputOrNull(inputs, 0);
    if (a == nullptr || outputs.empty() || outputs[0] == nullptr)
      return InvalidArgument("{}: missing input A or output Y", node_.Describe());
    Tensor& y = *outputs[0];
    if (a->dtype() != DType::kF32 || a->shape() != a_shape_ || y.dtype() != DType::kF32 ||
        y.shape() != y_shape_)
      return InvalidArgument(
          "{}: block-sparse gemm was planned for A f32{} -> Y f32{}, got {} -> {}",
          node_.Describe(), ShapeToString(a_shape_), ShapeToString(y_shape_), a->Describe(),
          y.Describe());
    const int threads = std::max(1, ctx.num_threads);
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (rows_ == 1) {
      // [1, K] and [1, N] are already the [K, 1] / [N, 1] planes.
      float* scratch = ThreadScratch(static_cast<size_t>(plan_->scratch_floats()));
      plan_->Run(a->data<float>(), bias, y.data<float>(), scratch, threads);
      return Status::Ok();
    }
    // A^T [K, R] and Y^T [N, R] in scratch, after the plan's own scratch.
    const size_t plan_floats = static_cast<size_t>(plan_->scratch_floats());
    float* scratch = ThreadScratch(plan_floats + static_cast<size_t>((k_ + n_) * rows_));
    float* at = scratch + plan_floats;
    float* yt = at + k_ * rows_;
    const float* src = a->data<float>();
    for (int64_t r = 0; r < rows_; ++r)
      for (int64_t i = 0; i < k_; ++i) at[i * rows_ + r] = src[r * k_ + i];
    plan_->Run(at, bias, yt, plan_floats ? scratch : nullptr, threads);
    float* dst = y.data<float>();
    for (int64_t j = 0; j < n_; ++j)
      for (int64_t r = 0; r < rows_; ++r) dst[r * n_ + j] = yt[j * rows_ + r];
    return Status::Ok();
  }

  std::string impl_name() const override { return impl_; }

 private:
  explicit SparseGemmOp(const ir::Node& node) : node_(node) {}

  ir::Node node_;
  std::unique_ptr<BlockSparseWeight> w_;
  std::unique_ptr<BsrConvPlan> plan_;
  std::vector<float> bias_;  // beta * C over N, or empty
  Shape a_shape_, y_shape_;
  int64_t rows_ = 1, k_ = 1, n_ = 1;
  std::string impl_;
};

// Sparse first, then `dense` (the factory registered before, if any).
OperatorFactory Wrap(OperatorFactory sparse, OperatorFactory dense) {
  return [sparse = std::move(sparse),
          dense = std::move(dense)](const OpCreateArgs& args) -> Result<std::unique_ptr<Operator>> {
    if (CurrentSparseMode() != SparseMode::kOff) {
      WBS_ASSIGN_OR_RETURN(std::unique_ptr<Operator> op, sparse(args));
      if (op) return op;
    }
    if (dense) return dense(args);
    return std::unique_ptr<Operator>();
  };
}

}  // namespace

void RegisterSparseOperators() {
  RegisterOperator("Conv", Backend::kFast,
                   Wrap(SparseConvOp::Create, FindOperatorFactory("Conv", Backend::kFast)));
  RegisterOperator("Gemm", Backend::kFast,
                   Wrap([](const OpCreateArgs& a) { return SparseGemmOp::Create(a, false); },
                        FindOperatorFactory("Gemm", Backend::kFast)));
  RegisterOperator("MatMul", Backend::kFast,
                   Wrap([](const OpCreateArgs& a) { return SparseGemmOp::Create(a, true); },
                        FindOperatorFactory("MatMul", Backend::kFast)));
}

}  // namespace wbs::runtime

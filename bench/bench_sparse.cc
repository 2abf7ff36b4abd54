// Block-sparse conv/Gemm (kernels/sparse) vs oneDNN dense on ResNet-50's
// distinct conv shapes (bench/data/resnet50_convs.csv) and its Gemm
// (bench/data/resnet50_gemms.csv), batch 1, in the same run.
//
//   wbs_bench_sparse [google-benchmark flags] [--csv=PATH] [--gemm-csv=PATH]
//                    [--threads=1,2] [--sparsity=0,25,50,75,90] [--block=8x8]
//                    [--layers=N,...] [--layout=auto|phase|shifted|tiled|s2]
//                    [--private-copies=auto|on|off] [--residual=off|separate|inplace]
//                    [--winograd=on|off|only] [--wino-split=auto|xi|rows|tiles]
//                    [--wino-chunk=TILES] [--wino-tile=2|4|2,4]
//
// Each benchmark "pair/<shape>/sp:<pct>/threads:<t>" times the oneDNN
// primitive (kernels/dnnl: Conv with plain NCHW in and out like our kernel,
// reorders included, bias + ReLU fused; Gemm as a MatMul with a packed
// weight and bias) and our kernel (a random block mask of that sparsity,
// fused bias + ReLU for convs, the input copy included) alternately in the
// same loop, so both sides see the same machine load; each side's time is
// the median of its iterations. Reported: speedup = dense median / bsr
// median, eff_GFLOP/s = non-zero-block FLOPs / bsr median, dense_GFLOP/s,
// eff_ratio = eff / dense GFLOP/s. A markdown table of the medians follows.
//
// For the 3x3 stride-1 shapes, "wino/<shape>/sp:<pct>/threads:<t>" times
// three sides in the same alternating loop: oneDNN dense (as above), our
// direct BSR plan and our block-sparse Winograd F(2x2, 3x3) plan
// (BsrWinoPlan) on the same masked weight; reported: wino_vs_dense = dense
// median / Winograd median, wino_vs_direct = direct median / Winograd
// median, and a second table; the per-layer medians are then printed a
// second time with the plan the runtime would run (the Winograd ratio where
// runtime::EstimateWinoOverDirect picks it). oneDNN's own Winograd (algorithm
// convolution_winograd; oneDNN 2.6 implements it for f32 with AVX-512 only)
// is tried for each shape: the label says whether it would be available
// (when it is, compare it with wbs_bench_conv; this benchmark does not time
// it). --winograd=only runs just these, off none of them. --wino-tile=2,4
// (the default) times F(2x2, 3x3) and F(4x4, 3x3) plans both, as a fourth
// side of the same loop (columns F(4x4) ms, F4 vs direct, F4 vs F2); 2 or 4
// times only that one (--wino-chunk applies to F(2x2) only).
//
// --residual (conv pairs, our side only): off (the default) times the conv
// without a residual; separate adds a residual tensor of y's shape, read
// from a buffer of its own like a session that gives every tensor one;
// inplace adds y's own storage as the residual (y = relu(conv + b + y)),
// as the runtime runs ResNet's conv3 + Add + Relu when the residual's
// buffer is handed on to y (runtime/session.cc "In-place outputs").
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "core/block_sparse.h"
#include "kernels/dnnl/conv.h"
#include "kernels/dnnl/matmul.h"
#include "kernels/sparse/bsr_conv_plan.h"
#include "kernels/sparse/bsr_wino_plan.h"
#include "runtime/ops_sparse.h"

#ifndef WBS_SOURCE_DIR
#define WBS_SOURCE_DIR "."
#endif

namespace wbs::bench {
namespace {

constexpr uint64_t kSeed = 11;
constexpr double kBlockSeconds = 0.025;  // see Pair()

kernels::ref::ConvParams ParamsOf(const ConvShape& s) {
  kernels::ref::ConvParams p;
  p.in_channels = s.cin;
  p.out_channels = s.cout;
  p.in = {1, s.h, s.w};
  p.out = {1, s.out_h(), s.out_w()};
  p.kernel = {1, s.k, s.k};
  p.stride = {1, s.stride, s.stride};
  p.pad_begin = {0, s.pad, s.pad};
  p.pad_end = {0, s.pad, s.pad};
  p.activation.kind = kernels::ref::ActivationKind::kRelu;
  return p;
}

struct Row {
  std::string layer, shape;
  int threads = 1, pct = 0;
  double dense_ms = 0, bsr_ms = 0, dense_gflops = 0, eff_gflops = 0;
  std::string layout;
};
std::vector<Row>& Rows() {
  static std::vector<Row> r;
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A Gemm row of bench/data/resnet50_gemms.csv: Y[n, m] = X[n, k] W^T + b.
struct GemmShape {
  int64_t k = 0, m = 0, n = 1;
  std::string layer;
  std::string Name() const { return fmt::format("gemm_k{}_m{}_n{}", k, m, n); }
  double flops() const { return 2.0 * double(k) * double(m) * double(n); }
};

Result<std::vector<GemmShape>> ReadGemmShapes(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("{}: cannot open", path);
  std::vector<GemmShape> out;
  std::string line;
  bool header = false;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      if (line.rfind("k,m,n", 0) != 0)
        return InvalidArgument("{}:{}: expected header k,m,n,layer", path, lineno);
      header = true;
      continue;
    }
    GemmShape g;
    char name[128] = {};
    long long k = 0, m = 0, n = 0;
    if (std::sscanf(line.c_str(), "%lld,%lld,%lld,%127s", &k, &m, &n, name) < 3 || k <= 0 ||
        m <= 0 || n <= 0)
      return InvalidArgument("{}:{}: expected k,m,n[,layer], got '{}'", path, lineno, line);
    g.k = k;
    g.m = m;
    g.n = n;
    g.layer = name;
    out.push_back(g);
  }
  return out;
}

// The conv weight of s with a random mask of that sparsity.
Tensor MaskedWeight(const ConvShape& s, double sparsity, int br, int bc, uint64_t seed) {
  Tensor w = RandomTensor({s.cout, s.cin, s.k, s.k}, seed, 0.05f);
  ZeroRandomBlocks(w, sparsity, br, bc, seed);
  return w;
}

kernels::sparse::BsrConvPlan::Layout g_layout = kernels::sparse::BsrConvPlan::Layout::kAuto;
// --private-copies: auto applies the runtime operator's setting
// (BsrConvPlan::PrivateCopiesDefault, WBS_PRIVATE_COPIES), on/off force it.
enum class PrivateCopies { kAuto, kOn, kOff };
PrivateCopies g_private = PrivateCopies::kAuto;
enum class ResidualMode { kOff, kSeparate, kInPlace };
ResidualMode g_residual = ResidualMode::kOff;

// Sets up `plan` the way the runtime's sparse operators do.
void ConfigureLikeRuntime(kernels::sparse::BsrConvPlan& plan) {
  using kernels::sparse::BsrConvPlan;
  plan.EnablePrivateCopies(g_private == PrivateCopies::kAuto ? BsrConvPlan::PrivateCopiesDefault()
                                                             : g_private == PrivateCopies::kOn);
  plan.SetSplitRule(BsrConvPlan::SplitRuleDefault());
  plan.SetMinCalls(BsrConvPlan::MinCallsDefault());
}

// Times `dense` and `bsr` in alternating blocks of back-to-back calls (each
// block ~kBlockSeconds), so both sides see the same machine load (this
// machine is shared) while each runs warm, as in separate benchmarks; the
// first call of a block is not counted. Records the medians. Short blocks
// would measure something else: with 5 ms blocks a 90%-sparse 56x56 layer's
// median was 1.8x its warm time, the calls after oneDNN's run refilling the
// caches oneDNN's buffers evicted.
// The same for any number of sides, in turn; (*medians)[i] is side i's.
void Interleave(benchmark::State& state, const std::vector<std::function<void()>>& sides,
                std::vector<double>* medians) {
  auto once = [](const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return Seconds(t0);
  };
  double t = 0;
  for (int i = 0; i < 2; ++i)
    for (const auto& f : sides) t = std::max(t, once(f));
  const int reps = static_cast<int>(std::clamp(kBlockSeconds / std::max(t, 1e-7), 3.0, 1000.0));
  std::vector<std::vector<double>> times(sides.size());
  for (auto _ : state) {
    for (size_t k = 0; k < sides.size(); ++k)
      for (int r = 0; r < reps; ++r) {
        const double e = once(sides[k]);
        if (r > 0) times[k].push_back(e);
      }
  }
  medians->clear();
  for (const auto& v : times) medians->push_back(Median(v));
}

template <typename D, typename S>
void Pair(benchmark::State& state, D&& dense, S&& bsr, double* dense_med, double* bsr_med) {
  std::vector<double> med;
  Interleave(state, {std::function<void()>(dense), std::function<void()>(bsr)}, &med);
  *dense_med = med[0];
  *bsr_med = med[1];
}

void Record(benchmark::State& state, Row row, double flops, double kept, double dense_med,
            double bsr_med) {
  row.dense_ms = dense_med * 1e3;
  row.bsr_ms = bsr_med * 1e3;
  row.dense_gflops = flops * 1e-9 / dense_med;
  row.eff_gflops = flops * kept * 1e-9 / bsr_med;
  state.counters["speedup"] = dense_med / bsr_med;
  state.counters["eff_GFLOP/s"] = row.eff_gflops;
  state.counters["dense_GFLOP/s"] = row.dense_gflops;
  state.counters["eff_ratio"] = row.eff_gflops / row.dense_gflops;
  state.counters["bsr_us"] = bsr_med * 1e6;
  state.counters["dense_us"] = dense_med * 1e6;
  // Google Benchmark calls this once per iteration-count probe: keep the last.
  auto same = std::find_if(Rows().begin(), Rows().end(), [&](const Row& r) {
    return r.shape == row.shape && r.threads == row.threads && r.pct == row.pct;
  });
  if (same != Rows().end())
    *same = row;
  else
    Rows().push_back(row);
}

// What both conv benchmarks time: the oneDNN primitive with its packed
// dense weight, and our direct plan (configured like the runtime's) on the
// same weight with a random block mask of pct% zero blocks.
struct ConvCase {
  std::unique_ptr<kernels::onednn::ConvPrimitive> prim;
  dnnl::memory packed;
  Tensor b, x, yd, ys, r;  // r: the separate residual (--residual=separate)
  std::unique_ptr<BlockSparseWeight> sw;
  std::unique_ptr<kernels::sparse::BsrConvPlan> plan;
  double kept = 1.0;

  static Result<ConvCase> Make(const ConvShape& s, int pct, int br, int bc) {
    ConvCase c;
    const kernels::ref::ConvParams p = ParamsOf(s);
    WBS_ASSIGN_OR_RETURN(c.prim, kernels::onednn::ConvPrimitive::Create(
                                     p, false, true, kernels::onednn::ConvLayout::kAuto));
    Tensor w = MaskedWeight(s, 0.0, br, bc, kSeed);
    c.b = RandomTensor({s.cout}, kSeed + 1);
    c.x = RandomTensor({1, s.cin, s.h, s.w}, kSeed + 2);
    c.yd = Tensor(DType::kF32, {1, s.cout, s.out_h(), s.out_w()});
    c.ys = RandomTensor({1, s.cout, s.out_h(), s.out_w()}, kSeed + 3);
    if (g_residual == ResidualMode::kSeparate)
      c.r = RandomTensor({1, s.cout, s.out_h(), s.out_w()}, kSeed + 4);
    WBS_ASSIGN_OR_RETURN(c.packed, c.prim->PackWeights(w.data<float>()));
    Tensor wz = MaskedWeight(s, pct / 100.0, br, bc, kSeed + static_cast<uint64_t>(pct));
    WBS_ASSIGN_OR_RETURN(BlockSparseWeight sw, BlockSparseWeight::FromDense(wz, br, bc));
    c.sw = std::make_unique<BlockSparseWeight>(std::move(sw));
    WBS_ASSIGN_OR_RETURN(kernels::sparse::BsrConvPlan plan,
                         kernels::sparse::BsrConvPlan::CreateWithLayout(p, *c.sw, g_layout));
    c.plan = std::make_unique<kernels::sparse::BsrConvPlan>(std::move(plan));
    ConfigureLikeRuntime(*c.plan);
    c.kept = double(c.sw->nnz_blocks()) / double(c.sw->block_rows() * c.sw->block_cols());
    return c;
  }
  void RunDense() {
    Status st = prim->Execute(x.data<float>(), packed, b.data<float>(), yd.data<float>());
    benchmark::DoNotOptimize(st);
  }
  void RunDirect(float* scratch, int threads) {
    const float* res = g_residual == ResidualMode::kSeparate  ? r.data<float>()
                       : g_residual == ResidualMode::kInPlace ? ys.data<float>()
                                                              : nullptr;
    plan->Run(x.data<float>(), b.data<float>(), ys.data<float>(), scratch, threads, res);
    benchmark::ClobberMemory();
  }
};

void BM_ConvPair(benchmark::State& state, ConvShape s, int pct, int br, int bc) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);  // oneDNN primitives specialise on the thread count
  auto c = ConvCase::Make(s, pct, br, bc);
  if (!c.ok()) {
    state.SkipWithError(c.status().ToString().c_str());
    return;
  }
  std::vector<float> scratch(static_cast<size_t>(c->plan->scratch_floats(threads)));
  double dmed = 0, smed = 0;
  Pair(
      state, [&] { c->RunDense(); }, [&] { c->RunDirect(scratch.data(), threads); }, &dmed, &smed);
  Row row{s.layer, s.Name(), threads, pct, 0, 0, 0, 0, ""};
  row.layout = c->plan->layout();
  Record(state, row, s.flops(), c->kept, dmed, smed);
  state.SetLabel(fmt::format("{} {} {} copy {} KB x{} / {}", s.layer, c->plan->kernel().name,
                             c->plan->layout(), c->plan->scratch_floats() * 4 / 1024,
                             c->plan->scratch_floats(threads) > c->plan->scratch_floats() ? threads
                                                                                          : 1,
                             c->prim->impl_name()));
}

void BM_GemmPair(benchmark::State& state, GemmShape g, int pct, int br, int bc) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  kernels::onednn::MatMulSpec spec;
  spec.a_dims = {g.n, g.k};
  spec.a_strides = {g.k, 1};
  spec.b_dims = {g.k, g.m};
  spec.b_strides = {1, g.k};  // B = W^T, W [m, k] row-major
  spec.y_dims = {g.n, g.m};
  spec.pack_b = true;
  spec.has_bias = true;
  auto prim = kernels::onednn::MatMulPrimitive::Create(spec);
  if (!prim.ok()) {
    state.SkipWithError(prim.status().ToString().c_str());
    return;
  }
  Tensor w = RandomTensor({g.m, g.k}, kSeed, 0.05f);
  Tensor b = RandomTensor({g.m}, kSeed + 1);
  Tensor x = RandomTensor({g.n, g.k}, kSeed + 2);
  Tensor yd(DType::kF32, {g.n, g.m});
  auto packed = (*prim)->PackB(w.data<float>());
  if (!packed.ok()) {
    state.SkipWithError(packed.status().ToString().c_str());
    return;
  }
  Tensor wz = w;
  ZeroRandomBlocks(wz, pct / 100.0, br, bc, kSeed + static_cast<uint64_t>(pct));
  auto sw = BlockSparseWeight::FromDense(wz, br, bc);
  if (!sw.ok()) {
    state.SkipWithError(sw.status().ToString().c_str());
    return;
  }
  auto plan = kernels::sparse::BsrConvPlan::CreateGemm(g.n, *sw);
  if (!plan.ok()) {
    state.SkipWithError(plan.status().ToString().c_str());
    return;
  }
  // Our plan computes Y^T [m, n] from X^T [k, n]; at n = 1 both are the
  // plain vectors (the runtime transposes otherwise; not timed here).
  Tensor xt(DType::kF32, {g.k, g.n}), ys(DType::kF32, {g.m, g.n});
  for (int64_t i = 0; i < g.k; ++i)
    for (int64_t j = 0; j < g.n; ++j) xt.data<float>()[i * g.n + j] = x.data<float>()[j * g.k + i];
  std::vector<float> scratch(static_cast<size_t>(plan->scratch_floats()) + 1);
  double dmed = 0, smed = 0;
  Pair(
      state,
      [&] {
        Status st = (*prim)->Execute(x.data<float>(), nullptr, &*packed, b.data<float>(), nullptr,
                                     yd.data<float>());
        benchmark::DoNotOptimize(st);
      },
      [&] {
        plan->Run(xt.data<float>(), b.data<float>(), ys.data<float>(), scratch.data(), threads);
        benchmark::ClobberMemory();
      },
      &dmed, &smed);
  const double kept = double(sw->nnz_blocks()) / double(sw->block_rows() * sw->block_cols());
  Row row{g.layer, g.Name(), threads, pct, 0, 0, 0, 0, ""};
  row.layout = plan->layout();
  Record(state, row, g.flops(), kept, dmed, smed);
  state.SetLabel(fmt::format("{} {} / {}", g.layer, plan->kernel().name, (*prim)->impl_name()));
}

struct WinoRow {
  std::string layer, shape;
  int threads = 1, pct = 0;
  double dense_ms = 0, direct_ms = 0, wino_ms = 0;
  double wino4_ms = 0;    // F(4x4); 0: not timed
  int64_t positions = 0;  // OH * OW, for the runtime's cost rule
};
std::vector<WinoRow>& WinoRows() {
  static std::vector<WinoRow> r;
  return r;
}
enum class WinoMode { kOn, kOff, kOnly };
WinoMode g_wino = WinoMode::kOn;
kernels::sparse::BsrWinoPlan::Split g_wino_split = kernels::sparse::BsrWinoPlan::Split::kAuto;
int64_t g_wino_chunk = 0;             // 0: the plan's
bool g_wino2 = true, g_wino4 = true;  // --wino-tile

// Whether oneDNN would create its own f32 Winograd convolution for p.
std::string OneDnnWinogradAvailability(const kernels::ref::ConvParams& p) {
  using dnnl::memory;
  try {
    const memory::desc src({1, p.in_channels, p.in[1], p.in[2]}, memory::data_type::f32,
                           memory::format_tag::any);
    const memory::desc dst({1, p.out_channels, p.out[1], p.out[2]}, memory::data_type::f32,
                           memory::format_tag::any);
    const memory::desc w({p.out_channels, p.in_channels, 3, 3}, memory::data_type::f32,
                         memory::format_tag::any);
    const memory::desc b({p.out_channels}, memory::data_type::f32, memory::format_tag::x);
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd, src, w, b, dst,
        {1, 1}, {p.pad_begin[1], p.pad_begin[2]}, {p.pad_end[1], p.pad_end[2]});
    dnnl::convolution_forward::primitive_desc pd(d, kernels::onednn::CpuEngine());
    return fmt::format("oneDNN winograd: {} (not timed here)", pd.impl_info_str());
  } catch (const dnnl::error&) {
    return "oneDNN winograd: unavailable";
  }
}

void BM_WinoPair(benchmark::State& state, ConvShape s, int pct, int br, int bc) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  const kernels::ref::ConvParams p = ParamsOf(s);
  auto c = ConvCase::Make(s, pct, br, bc);
  if (!c.ok()) {
    state.SkipWithError(c.status().ToString().c_str());
    return;
  }
  // The F(2x2) and F(4x4) plans (--wino-tile), in that order.
  std::vector<kernels::sparse::BsrWinoPlan> plans;
  std::vector<int> tiles;
  for (int tile : {2, 4}) {
    if (!(tile == 2 ? g_wino2 : g_wino4)) continue;
    auto wino = kernels::sparse::BsrWinoPlan::Create(p, *c->sw, nullptr, nullptr, tile);
    if (!wino.ok()) {
      state.SkipWithError(wino.status().ToString().c_str());
      return;
    }
    wino->ForceSplit(g_wino_split);
    if (g_wino_chunk > 0 && tile == 2) wino->SetChunk(g_wino_chunk);
    plans.push_back(std::move(wino).value());
    tiles.push_back(tile);
  }
  Tensor yw(DType::kF32, {1, s.cout, s.out_h(), s.out_w()});
  int64_t need = c->plan->scratch_floats(threads);
  for (const auto& w : plans) need = std::max(need, w.scratch_floats(threads));
  std::vector<float> scratch(static_cast<size_t>(need));
  std::vector<std::function<void()>> sides = {[&] { c->RunDense(); },
                                              [&] { c->RunDirect(scratch.data(), threads); }};
  for (const auto& w : plans)
    sides.push_back([&] {
      // The same --residual mode as RunDirect.
      const float* res = g_residual == ResidualMode::kSeparate  ? c->r.data<float>()
                         : g_residual == ResidualMode::kInPlace ? yw.data<float>()
                                                                : nullptr;
      w.Run(c->x.data<float>(), c->b.data<float>(), yw.data<float>(), scratch.data(), threads, res);
      benchmark::ClobberMemory();
    });
  std::vector<double> med;
  Interleave(state, sides, &med);
  // The sparse plans compute the same conv: a wrong Winograd result would
  // make its time meaningless. Compared once more without a residual (an
  // in-place residual has accumulated over the timed runs).
  Tensor yd(DType::kF32, {1, s.cout, s.out_h(), s.out_w()});
  c->plan->Run(c->x.data<float>(), c->b.data<float>(), yd.data<float>(), scratch.data(), threads);
  for (const auto& w : plans) {
    w.Run(c->x.data<float>(), c->b.data<float>(), yw.data<float>(), scratch.data(), threads);
    double err = 0, scale = 0;
    for (int64_t i = 0; i < yw.numel(); ++i) {
      err = std::max(err, double(std::abs(yd.data<float>()[i] - yw.data<float>()[i])));
      scale = std::max(scale, double(std::abs(yd.data<float>()[i])));
    }
    if (err > 1e-3 * (1.0 + scale)) {
      state.SkipWithError(
          fmt::format("winograd F({}x{}) differs from direct by {}", w.tile(), w.tile(), err)
              .c_str());
      return;
    }
  }
  const bool has2 = !tiles.empty() && tiles[0] == 2, has4 = tiles.back() == 4;
  const double m2 = has2 ? med[2] : 0, m4 = has4 ? med.back() : 0;
  WinoRow row{s.layer, s.Name(), threads, pct, med[0] * 1e3, med[1] * 1e3, m2 * 1e3};
  row.wino4_ms = m4 * 1e3;
  row.positions = s.out_h() * s.out_w();
  state.counters["dense_us"] = med[0] * 1e6;
  state.counters["direct_us"] = med[1] * 1e6;
  if (has2) {
    state.counters["wino_vs_dense"] = med[0] / m2;
    state.counters["wino_vs_direct"] = med[1] / m2;
    state.counters["wino_us"] = m2 * 1e6;
  }
  if (has4) {
    state.counters["wino4_vs_direct"] = med[1] / m4;
    state.counters["wino4_us"] = m4 * 1e6;
    if (has2) state.counters["wino4_vs_wino2"] = m2 / m4;
  }
  const kernels::sparse::BsrWinoPlan* wino = &plans[0];
  auto same = std::find_if(WinoRows().begin(), WinoRows().end(), [&](const WinoRow& r) {
    return r.shape == row.shape && r.threads == row.threads && r.pct == row.pct;
  });
  if (same != WinoRows().end())
    *same = row;
  else
    WinoRows().push_back(row);
  state.SetLabel(fmt::format(
      "{} {}+{}{} split {} chunk {} / {}; {}", s.layer, wino->kernel().name, wino->transform().name,
      has2 && has4 ? fmt::format(" (F4 chunk {})", plans[1].max_chunk()) : std::string(),
      wino->SplitFor(threads) == kernels::sparse::BsrWinoPlan::Split::kXi     ? "xi"
      : wino->SplitFor(threads) == kernels::sparse::BsrWinoPlan::Split::kRows ? "rows"
                                                                              : "tiles",
      wino->max_chunk(), c->prim->impl_name(), OneDnnWinogradAvailability(p)));
}

void PrintWinoTable() {
  if (WinoRows().empty()) return;
  // F(2x2) columns ("Winograd"), then F(4x4)'s where it was timed; "—"
  // for a plan not timed.
  auto ratio = [](double num, double den) {
    return num > 0 && den > 0 ? fmt::format("{:.2f}x", num / den) : std::string("—");
  };
  fmt::print(
      "\n| threads | layer | shape | sparsity | oneDNN ms | direct BSR ms | Winograd BSR ms | "
      "Winograd vs oneDNN | Winograd vs direct | F(4x4) ms | F4 vs direct | F4 vs F2 |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const WinoRow& r : WinoRows())
    fmt::print("| {} | {} | {} | {}% | {:.3f} | {:.3f} | {:.3f} | {} | {} | {:.3f} | {} | {} |\n",
               r.threads, r.layer, r.shape, r.pct, r.dense_ms, r.direct_ms, r.wino_ms,
               ratio(r.dense_ms, r.wino_ms), ratio(r.direct_ms, r.wino_ms), r.wino4_ms,
               ratio(r.direct_ms, r.wino4_ms), ratio(r.wino_ms, r.wino4_ms));
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void PrintTable() {
  // One line per layer/threads: dense ms, then speed-up (eff GFLOP/s) per sparsity.
  std::map<std::pair<int, std::string>, std::vector<const Row*>> by;
  std::vector<std::pair<int, std::string>> order;
  for (const Row& r : Rows()) {
    auto k = std::make_pair(r.threads, r.shape);
    if (!by.count(k)) order.push_back(k);
    by[k].push_back(&r);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<int> pcts;
  for (const Row& r : Rows())
    if (std::find(pcts.begin(), pcts.end(), r.pct) == pcts.end()) pcts.push_back(r.pct);
  fmt::print("\n| threads | layer | shape | layout | oneDNN ms (GFLOP/s) |");
  for (int pct : pcts) fmt::print(" {}%: speed-up (eff GFLOP/s) |", pct);
  fmt::print("\n|---|---|---|---|---:|");
  for (size_t i = 0; i < pcts.size(); ++i) fmt::print("---:|");
  fmt::print("\n");
  std::map<std::pair<int, int>, std::vector<double>> speedups, ratios;
  for (const auto& k : order) {
    const auto& rows = by[k];
    // oneDNN's time: the median over this layer's pairs.
    std::vector<double> dms;
    for (const Row* r : rows) dms.push_back(r->dense_ms);
    const double dms_med = Median(dms);
    fmt::print("| {} | {} | {} | {} | {:.3f} ({:.0f}) |", k.first, rows[0]->layer, k.second,
               rows.back()->layout, dms_med, rows[0]->dense_gflops * rows[0]->dense_ms / dms_med);
    for (int pct : pcts) {
      auto it = std::find_if(rows.begin(), rows.end(), [&](const Row* r) { return r->pct == pct; });
      if (it == rows.end() || (*it)->bsr_ms == 0) {
        fmt::print(" — |");
        continue;
      }
      const double sp = (*it)->dense_ms / (*it)->bsr_ms;
      speedups[{k.first, pct}].push_back(sp);
      ratios[{k.first, pct}].push_back((*it)->eff_gflops / (*it)->dense_gflops);
      fmt::print(" {:.2f}x ({:.0f}) |", sp, (*it)->eff_gflops);
    }
    fmt::print("\n");
  }
  // The same with the plan the runtime would run: where the Winograd pair
  // of this shape ran and the runtime's rule picks it
  // (runtime::EstimateWinoOverDirect < 1), that pair's Winograd / oneDNN
  // ratio instead of the direct plan's (each from its own interleaved run).
  std::map<std::pair<int, int>, std::vector<double>> chosen;
  int n_wino = 0;
  for (const auto& k : order)
    for (const Row* r : by[k]) {
      if (r->bsr_ms == 0) continue;
      double sp = r->dense_ms / r->bsr_ms;
      for (const WinoRow& w : WinoRows()) {
        if (w.shape != k.second || w.threads != k.first || w.pct != r->pct || w.wino_ms == 0)
          continue;
        runtime::SparseLayerShape ls;
        ls.out_positions = w.positions;
        ls.kept = 1.0 - r->pct / 100.0;
        ls.kernel_elems = 9;
        // F(4x4) where the rule prefers it and it was timed (the runtime
        // also wants a full kernel tile of 4x4 tiles: 56x56 and 28x28).
        const double est2 = runtime::EstimateWinoOverDirect(ls);
        const double est4 = w.wino4_ms > 0 && w.positions >= 28 * 28
                                ? runtime::EstimateWino4OverDirect(ls)
                                : 1e9;
        if (std::min(est2, est4) < 1.0) {
          sp = w.dense_ms / (est4 < est2 ? w.wino4_ms : w.wino_ms);
          ++n_wino;
        }
      }
      chosen[{k.first, r->pct}].push_back(sp);
    }
  fmt::print("\nMedian per-layer speed-up (and effective rate / oneDNN rate):\n");
  for (auto& [k, v] : speedups) {
    const auto& r = ratios[k];
    const auto met = std::count_if(r.begin(), r.end(), [](double x) { return x >= 0.7; });
    fmt::print(
        "  threads {} sparsity {}%: {:.2f}x over {} layers (min {:.2f}x, max {:.2f}x); eff ratio "
        "median {:.2f}, >= 0.70 on {} of {}\n",
        k.first, k.second, Median(v), v.size(), *std::min_element(v.begin(), v.end()),
        *std::max_element(v.begin(), v.end()), Median(r), met, r.size());
  }
  if (n_wino == 0) return;
  fmt::print(
      "Median per-layer speed-up with the runtime's plan (Winograd where its rule picks it, "
      "{} cells):\n",
      n_wino);
  for (auto& [k, v] : chosen)
    fmt::print("  threads {} sparsity {}%: {:.2f}x over {} layers (min {:.2f}x, max {:.2f}x)\n",
               k.first, k.second, Median(v), v.size(), *std::min_element(v.begin(), v.end()),
               *std::max_element(v.begin(), v.end()));
}

}  // namespace
}  // namespace wbs::bench

int main(int argc, char** argv) {
  wbs::bench::ChooseOmpWait(argv);
  using namespace wbs;
  using namespace wbs::bench;
  benchmark::Initialize(&argc, argv);
  std::string csv_path = WBS_SOURCE_DIR "/bench/data/resnet50_convs.csv";
  std::string gemm_path = WBS_SOURCE_DIR "/bench/data/resnet50_gemms.csv";
  std::vector<int> threads = {1, 2};
  std::vector<int> pcts = {0, 25, 50, 75, 90};
  std::vector<int> layers;  // indices into the conv CSV, then the Gemm CSV; empty = all
  int br = 8, bc = 8;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    std::string key = a.substr(0, eq);
    std::string val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--csv") {
      csv_path = val;
    } else if (key == "--gemm-csv") {
      gemm_path = val;
    } else if (key == "--threads") {
      threads.clear();
      for (const auto& t : SplitList(val)) threads.push_back(std::stoi(t));
    } else if (key == "--sparsity") {
      pcts.clear();
      for (const auto& t : SplitList(val)) pcts.push_back(std::stoi(t));
    } else if (key == "--layers") {
      for (const auto& t : SplitList(val)) layers.push_back(std::stoi(t));
    } else if (key == "--layout" && (val == "auto" || val == "phase" || val == "shifted" ||
                                     val == "tiled" || val == "s2")) {
      using L = kernels::sparse::BsrConvPlan::Layout;
      g_layout = val == "auto"    ? L::kAuto
                 : val == "phase" ? L::kPhase
                 : val == "s2"    ? L::kStride2
                 : val == "tiled" ? L::kTiled
                                  : L::kShifted;
    } else if (key == "--private-copies" && (val == "auto" || val == "on" || val == "off")) {
      g_private = val == "on"    ? PrivateCopies::kOn
                  : val == "off" ? PrivateCopies::kOff
                                 : PrivateCopies::kAuto;
    } else if (key == "--residual" && (val == "off" || val == "separate" || val == "inplace")) {
      g_residual = val == "off"        ? ResidualMode::kOff
                   : val == "separate" ? ResidualMode::kSeparate
                                       : ResidualMode::kInPlace;
    } else if (key == "--block" && std::sscanf(val.c_str(), "%dx%d", &br, &bc) == 2) {
    } else if (key == "--winograd" && (val == "on" || val == "off" || val == "only")) {
      g_wino = val == "on" ? WinoMode::kOn : val == "off" ? WinoMode::kOff : WinoMode::kOnly;
    } else if (key == "--wino-split" &&
               (val == "auto" || val == "xi" || val == "rows" || val == "tiles")) {
      using S = kernels::sparse::BsrWinoPlan::Split;
      g_wino_split = val == "auto" ? S::kAuto
                     : val == "xi" ? S::kXi
                     : val == "rows" ? S::kRows
                                     : S::kTiles;
    } else if (key == "--wino-chunk" && !val.empty()) {
      g_wino_chunk = std::stoll(val);
    } else if (key == "--wino-tile" && (val == "2" || val == "4" || val == "2,4")) {
      g_wino2 = val != "4";
      g_wino4 = val != "2";
    } else {
      fmt::print(stderr,
                 "usage: wbs_bench_sparse [benchmark flags] [--csv=PATH] [--gemm-csv=PATH|''] "
                 "[--threads=1,2] [--sparsity=0,25,50,75,90] [--block=8x8] [--layers=0,3,...] "
                 "[--layout=auto|phase|shifted|tiled|s2] [--private-copies=auto|on|off] "
                 "[--residual=off|separate|inplace] "
                 "[--winograd=on|off|only] [--wino-split=auto|xi|rows|tiles] [--wino-chunk=TILES] "
                 "[--wino-tile=2|4|2,4]\n");
      return 2;
    }
  }
  auto shapes = ReadConvShapes(csv_path);
  if (!shapes.ok()) {
    fmt::print(stderr, "wbs_bench_sparse: {}\n", shapes.status().ToString());
    return 1;
  }
  std::vector<GemmShape> gemms;
  if (!gemm_path.empty()) {
    auto g = ReadGemmShapes(gemm_path);
    if (!g.ok()) {
      fmt::print(stderr, "wbs_bench_sparse: {}\n", g.status().ToString());
      return 1;
    }
    gemms = std::move(g).value();
  }
  auto wanted = [&](size_t li) {
    return layers.empty() || std::find(layers.begin(), layers.end(), int(li)) != layers.end();
  };
  for (int t : threads) {
    for (size_t li = 0; li < shapes->size(); ++li) {
      if (!wanted(li)) continue;
      const ConvShape& s = (*shapes)[li];
      for (int pct : pcts)
        if (g_wino != WinoMode::kOnly)
          benchmark::RegisterBenchmark(fmt::format("pair/{}/sp:{}", s.Name(), pct).c_str(),
                                       BM_ConvPair, s, pct, br, bc)
              ->Arg(t)
              ->ArgName("threads")
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
      if (g_wino == WinoMode::kOff || !kernels::sparse::BsrWinoPlan::Eligible(ParamsOf(s)))
        continue;
      for (int pct : pcts)
        benchmark::RegisterBenchmark(fmt::format("wino/{}/sp:{}", s.Name(), pct).c_str(),
                                     BM_WinoPair, s, pct, br, bc)
            ->Arg(t)
            ->ArgName("threads")
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
    for (size_t gi = 0; gi < gemms.size(); ++gi) {
      if (!wanted(shapes->size() + gi) || g_wino == WinoMode::kOnly) continue;
      for (int pct : pcts)
        benchmark::RegisterBenchmark(fmt::format("pair/{}/sp:{}", gemms[gi].Name(), pct).c_str(),
                                     BM_GemmPair, gemms[gi], pct, br, bc)
            ->Arg(t)
            ->ArgName("threads")
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintTable();
  PrintWinoTable();
  return 0;
}

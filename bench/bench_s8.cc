// Int8 block-sparse conv/Gemm (kernels/sparse/s8_*) vs oneDNN int8 dense on
// ResNet-50's distinct conv shapes (bench/data/resnet50_convs.csv) plus its
// FC layer (Gemm 2048 -> 1000), batch 1, in the same run.
//
//   wbs_bench_s8 [google-benchmark flags] [--csv=PATH] [--threads=1,2]
//                [--sparsity=0,50,75,90] [--layers=N,...] [--layout=nchw4c|nchw] [--pot]
//                [--dense=native|exact]
//
// For every shape and thread count:
//   "onednn/<shape>/threads:<t>"  oneDNN's fastest int8 configuration
//       (kernels/dnnl/conv_s8.h kNative: u8 x s8 -> u8, s32 bias, per-channel
//       scales, ReLU; activations in the layouts oneDNN picks, weights
//       pre-packed, no reorders timed) — what a oneDNN int8 runtime spends.
//   "bsr/<shape>/sp:<pct>/threads:<t>"  S8BsrConvPlan with the chosen kernel,
//       activations nChw4c in and out (the layout a chain of our int8 layers
//       passes along; --layout=nchw times plain NCHW in and out instead),
//       bias + ReLU + exact requantization fused, the padded input copy of
//       3x3 / strided layers included.
// --dense=exact times kExact instead (oneDNN accumulates to s32 on a
// zero-point-padded copy, our epilogue requantizes: the runtime's bit-exact
// dense path, what a layer the plan declines actually costs; copy, primitive
// and epilogue timed, in the --layout the plan uses).
// --pot uses power-of-two requantization multipliers (M = 1, the AIE "fix
// position" mode; our epilogue is then 4 ops per 16 outputs instead of 10).
// The FC row compares oneDNN's 1x1 conv on [1, 2048, 1, 1] with S8BsrGemmPlan.
// Each benchmark records the median of its iterations; bsr rows report
// speedup = oneDNN median / bsr median. A markdown table and the median
// speed-up per (threads, sparsity) over the layers follow.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "core/quant_math.h"
#include "kernels/dnnl/conv_s8.h"
#include "kernels/sparse/s8_bsr_conv_plan.h"

#ifndef WBS_SOURCE_DIR
#define WBS_SOURCE_DIR "."
#endif

namespace wbs::bench {
namespace {

namespace ks = kernels::sparse;
constexpr uint64_t kSeed = 11;
ks::S8Layout g_layout = ks::S8Layout::kNchw4c;
bool g_pot = false;  // power-of-two multipliers (M = 1, the AIE "fix position" mode)
bool g_exact = false;  // baseline = kExact (the runtime's dense path), not kNative

// A conv shape, or the FC layer (k = 0: Gemm cin -> cout, one row).
bool IsGemm(const ConvShape& s) { return s.k == 0; }
std::string ShapeName(const ConvShape& s) {
  return IsGemm(s) ? fmt::format("gemm_k{}_m{}_n1", s.cin, s.cout) : s.Name();
}
double Flops(const ConvShape& s) { return IsGemm(s) ? 2.0 * s.cin * s.cout : s.flops(); }

kernels::ref::ConvParams ParamsOf(const ConvShape& s) {
  kernels::ref::ConvParams p;
  p.in_channels = s.cin;
  p.out_channels = s.cout;
  if (IsGemm(s)) return p;  // 1x1 over a 1x1 image
  p.in = {1, s.h, s.w};
  p.out = {1, s.out_h(), s.out_w()};
  p.kernel = {1, s.k, s.k};
  p.stride = {1, s.stride, s.stride};
  p.pad_begin = {0, s.pad, s.pad};
  p.pad_end = {0, s.pad, s.pad};
  return p;
}

// u8 activations (zero point 0), ReLU fused (lo = z_y = 0), per-channel
// multipliers around 2^-10.
ks::S8QuantParams QuantOf(const ConvShape& s) {
  ks::S8QuantParams q;
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> b(-5000, 5000), e(-50, 50);
  for (int64_t i = 0; i < s.cout; ++i) {
    q.bias.push_back(b(rng));
    q.requant.push_back(g_pot
                            ? PowerOfTwoMultiplier(10 + e(rng) / 50)
                            : QuantizeMultiplier(std::ldexp(1.0, -10) * std::exp(e(rng) / 100.0)));
  }
  return q;
}

// Random s8 weight [cout, cin, k, k] with exactly round(sparsity * blocks)
// zero 8x8 blocks.
std::vector<int8_t> MaskedWeight(const ConvShape& s, double sparsity, uint64_t seed,
                                 BlockMask* mask) {
  const int64_t taps = IsGemm(s) ? 1 : s.k * s.k;
  mask->block_rows = mask->block_cols = 8;
  mask->rows = (s.cout + 7) / 8;
  mask->cols = (s.cin + 7) / 8;
  std::vector<int64_t> order(static_cast<size_t>(mask->rows * mask->cols));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::shuffle(order.begin(), order.end(), rng);
  mask->keep.assign(order.size(), 1);
  const auto zeros = static_cast<int64_t>(sparsity * double(order.size()) + 0.5);
  for (int64_t z = 0; z < zeros; ++z) mask->keep[static_cast<size_t>(order[z])] = 0;
  std::uniform_int_distribution<int> d(-127, 127);
  std::vector<int8_t> w(static_cast<size_t>(s.cout * s.cin * taps));
  for (int64_t o = 0; o < s.cout; ++o)
    for (int64_t i = 0; i < s.cin; ++i)
      for (int64_t t = 0; t < taps; ++t)
        w[static_cast<size_t>((o * s.cin + i) * taps + t)] =
            mask->Get(o / 8, i / 8) ? static_cast<int8_t>(d(rng)) : 0;
  return w;
}

std::vector<uint8_t> RandomBytes(int64_t n, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& b : v) b = static_cast<uint8_t>(d(rng));
  return v;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <typename F>
std::vector<double> TimeLoop(benchmark::State& state, F&& f) {
  std::vector<double> t;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return t;
}

std::string Key(const ConvShape& s, int threads) {
  return fmt::format("{}/{}", ShapeName(s), threads);
}
std::map<std::string, double>& DenseMedians() {
  static std::map<std::string, double> m;
  return m;
}
struct Row {
  std::string layer, shape, kernel;
  int threads = 1, pct = 0;
  double dense_ms = 0, bsr_ms = 0;
};
std::vector<Row>& Rows() {
  static std::vector<Row> r;
  return r;
}

void BM_OneDnn(benchmark::State& state, ConvShape s) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);  // oneDNN primitives specialise on the thread count
  BlockMask mask;
  const std::vector<int8_t> w = MaskedWeight(s, 0.0, kSeed, &mask);
  const ks::S8QuantParams q = QuantOf(s);
  auto prim = kernels::onednn::S8ConvPrimitive::Create(
      ParamsOf(s), w.data(), q,
      g_exact ? kernels::onednn::S8ConvMode::kExact : kernels::onednn::S8ConvMode::kNative);
  if (!prim.ok()) {
    state.SkipWithError(prim.status().ToString().c_str());
    return;
  }
  // kExact's quad layout needs C and M multiples of 4 (conv1's C = 3: plain).
  const bool quad4 = g_layout == ks::S8Layout::kNchw4c && s.cin % 4 == 0 && s.cout % 4 == 0;
  std::vector<uint8_t> x, y;
  if (g_exact) {
    const int64_t hw_in = IsGemm(s) ? 1 : s.h * s.w;
    const int64_t hw_out = IsGemm(s) ? 1 : s.out_h() * s.out_w();
    x = RandomBytes(s.cin * hw_in, kSeed + 2);
    y.resize(static_cast<size_t>(s.cout * hw_out));
  }
  auto run = [&] {
    Status st = g_exact ? (*prim)->Run(x.data(), y.data(), quad4, quad4) : (*prim)->RunPrimitiveOnly();
    benchmark::DoNotOptimize(st);
  };
  for (int i = 0; i < 3; ++i) run();
  const double med = Median(TimeLoop(state, run));
  DenseMedians()[Key(s, threads)] = med;
  state.counters["GOP/s"] = Flops(s) * 1e-9 / med;
  state.counters["median_us"] = med * 1e6;
  state.SetLabel(s.layer + " " + (*prim)->impl_name());
}

void BM_Bsr(benchmark::State& state, ConvShape s, int pct) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  BlockMask mask;
  const std::vector<int8_t> w =
      MaskedWeight(s, pct / 100.0, kSeed + static_cast<uint64_t>(pct), &mask);
  const ks::S8QuantParams q = QuantOf(s);
  const int64_t kk = IsGemm(s) ? 1 : s.k;
  auto sw = ks::S8BlockSparseWeight::FromDense(w.data(), s.cout, s.cin, kk, kk, 8, 8, &mask);
  if (!sw.ok()) {
    state.SkipWithError(sw.status().ToString().c_str());
    return;
  }
  std::vector<uint8_t> x, y, scratch;
  std::function<void()> run;
  std::string kernel;
  std::optional<ks::S8BsrConvPlan> conv;
  std::optional<ks::S8BsrGemmPlan> gemm;
  if (IsGemm(s)) {
    auto plan = ks::S8BsrGemmPlan::Create(1, *sw, q);
    if (!plan.ok()) {
      state.SkipWithError(plan.status().ToString().c_str());
      return;
    }
    gemm = std::move(*plan);
    x = RandomBytes(s.cin, kSeed + 2);
    y.resize(static_cast<size_t>(s.cout));
    scratch.resize(static_cast<size_t>(gemm->scratch_bytes()));
    kernel = gemm->kernel().name;
    run = [&] { gemm->Run(x.data(), y.data(), scratch.data(), threads); };
  } else {
    auto plan = ks::S8BsrConvPlan::Create(ParamsOf(s), *sw, q, g_layout, g_layout);
    if (!plan.ok()) {
      state.SkipWithError(plan.status().ToString().c_str());
      return;
    }
    conv = std::move(*plan);
    x = RandomBytes(conv->x_image_bytes(), kSeed + 2);
    y.resize(static_cast<size_t>(conv->y_image_bytes()));
    scratch.resize(static_cast<size_t>(conv->scratch_bytes()));
    kernel = conv->kernel().name;
    run = [&] { conv->Run(x.data(), y.data(), scratch.data(), threads); };
  }
  auto timed = [&] {
    run();
    benchmark::ClobberMemory();
  };
  for (int i = 0; i < 3; ++i) timed();
  const double med = Median(TimeLoop(state, timed));
  state.counters["median_us"] = med * 1e6;
  state.counters["eff_GOP/s"] = Flops(s) * (1.0 - sw->block_sparsity()) * 1e-9 / med;
  Row row{s.layer, ShapeName(s), kernel, threads, pct, 0, med * 1e3};
  auto it = DenseMedians().find(Key(s, threads));
  if (it != DenseMedians().end()) {
    state.counters["speedup"] = it->second / med;
    row.dense_ms = it->second * 1e3;
  }
  // Google Benchmark calls this once per iteration-count probe: keep the last.
  auto same = std::find_if(Rows().begin(), Rows().end(), [&](const Row& r) {
    return r.shape == row.shape && r.threads == row.threads && r.pct == row.pct;
  });
  if (same != Rows().end())
    *same = row;
  else
    Rows().push_back(row);
  state.SetLabel(s.layer + " " + kernel);
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
  std::map<std::pair<int, std::string>, std::vector<const Row*>> by;
  std::vector<std::pair<int, std::string>> order;
  for (const Row& r : Rows()) {
    auto k = std::make_pair(r.threads, r.shape);
    if (!by.count(k)) order.push_back(k);
    by[k].push_back(&r);
  }
  std::vector<int> pcts;
  for (const Row& r : Rows())
    if (std::find(pcts.begin(), pcts.end(), r.pct) == pcts.end()) pcts.push_back(r.pct);
  fmt::print("\n| threads | layer | shape | oneDNN int8{} ms |", g_exact ? " kExact" : "");
  for (int pct : pcts) fmt::print(" {}%: ms (speed-up) |", pct);
  fmt::print("\n|---|---|---|---:|");
  for (size_t i = 0; i < pcts.size(); ++i) fmt::print("---:|");
  fmt::print("\n");
  std::map<std::pair<int, int>, std::vector<double>> speedups;
  for (const auto& k : order) {
    const auto& rows = by[k];
    fmt::print("| {} | {} | {} | {:.4f} |", k.first, rows[0]->layer, k.second, rows[0]->dense_ms);
    for (int pct : pcts) {
      auto it = std::find_if(rows.begin(), rows.end(), [&](const Row* r) { return r->pct == pct; });
      if (it == rows.end() || (*it)->dense_ms == 0) {
        fmt::print(" — |");
        continue;
      }
      const double sp = (*it)->dense_ms / (*it)->bsr_ms;
      speedups[{k.first, pct}].push_back(sp);
      fmt::print(" {:.4f} ({:.2f}x) |", (*it)->bsr_ms, sp);
    }
    fmt::print("\n");
  }
  fmt::print("\nMedian per-layer speed-up (kernel {}):\n", Rows().empty() ? "-" : Rows()[0].kernel);
  for (auto& [k, v] : speedups)
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
  std::vector<int> threads = {1, 2};
  std::vector<int> pcts = {0, 50, 75, 90};
  std::vector<int> layers;  // indices into the CSV (the FC layer is the last); empty = all
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    std::string key = a.substr(0, eq);
    std::string val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--csv") {
      csv_path = val;
    } else if (key == "--threads") {
      threads.clear();
      for (const auto& t : SplitList(val)) threads.push_back(std::stoi(t));
    } else if (key == "--sparsity") {
      pcts.clear();
      for (const auto& t : SplitList(val)) pcts.push_back(std::stoi(t));
    } else if (key == "--layers") {
      for (const auto& t : SplitList(val)) layers.push_back(std::stoi(t));
    } else if (key == "--pot" && (val.empty() || val == "1" || val == "0")) {
      g_pot = val != "0";
    } else if (key == "--dense" && (val == "native" || val == "exact")) {
      g_exact = val == "exact";
    } else if (key == "--layout" && (val == "nchw4c" || val == "nchw")) {
      g_layout =
          val == "nchw" ? kernels::sparse::S8Layout::kNchw : kernels::sparse::S8Layout::kNchw4c;
    } else {
      fmt::print(stderr,
                 "usage: wbs_bench_s8 [benchmark flags] [--csv=PATH] [--threads=1,2] "
                 "[--sparsity=0,50,75,90] [--layers=0,3,...] [--layout=nchw4c|nchw] [--pot] "
                 "[--dense=native|exact]\n");
      return 2;
    }
  }
  auto shapes = ReadConvShapes(csv_path);
  if (!shapes.ok()) {
    fmt::print(stderr, "wbs_bench_s8: {}\n", shapes.status().ToString());
    return 1;
  }
  ConvShape fc;
  fc.cin = 2048;
  fc.cout = 1000;
  fc.k = 0;
  fc.layer = "fc";
  shapes->push_back(fc);
  for (size_t li = 0; li < shapes->size(); ++li) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), int(li)) == layers.end())
      continue;
    const ConvShape& s = (*shapes)[li];
    for (int t : threads) {
      benchmark::RegisterBenchmark(("onednn/" + ShapeName(s)).c_str(), BM_OneDnn, s)
          ->Arg(t)
          ->ArgName("threads")
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      for (int pct : pcts)
        benchmark::RegisterBenchmark(fmt::format("bsr/{}/sp:{}", ShapeName(s), pct).c_str(), BM_Bsr,
                                     s, pct)
            ->Arg(t)
            ->ArgName("threads")
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintTable();
  return 0;
}

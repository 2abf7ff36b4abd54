// Block-sparse conv (kernels/sparse) vs oneDNN dense on ResNet-50's distinct
// conv shapes (bench/data/resnet50_convs.csv), batch 1, in the same run.
//
//   wbs_bench_sparse [google-benchmark flags] [--csv=PATH] [--threads=1,2]
//                    [--sparsity=0,25,50,75,90] [--block=8x8] [--layers=N,...]
//
// For every shape and thread count the oneDNN primitive (kernels/dnnl, plain
// NCHW in and out like our kernel, reorders included, bias + ReLU fused) runs
// as "dense/<shape>/threads:<t>", then our kernel as
// "bsr/<shape>/sp:<pct>/threads:<t>" on the same shape with a random block
// mask of that sparsity (fused bias + ReLU, input copy included). Each
// benchmark records the median of its iterations; bsr rows report
// speedup = dense median / bsr median, eff_GFLOP/s = non-zero-block FLOPs /
// bsr median, dense_GFLOP/s. A markdown table of the medians follows.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "core/block_sparse.h"
#include "kernels/dnnl/conv.h"
#include "kernels/sparse/bsr_conv_plan.h"

#ifndef WBS_SOURCE_DIR
#define WBS_SOURCE_DIR "."
#endif

namespace wbs::bench {
namespace {

constexpr uint64_t kSeed = 11;

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

// Random mask with exactly round(sparsity * blocks) zero blocks.
Tensor MaskedWeight(const ConvShape& s, double sparsity, int br, int bc, uint64_t seed) {
  Tensor w = RandomTensor({s.cout, s.cin, s.k, s.k}, seed, 0.05f);
  const int64_t rows = (s.cout + br - 1) / br, cols = (s.cin + bc - 1) / bc;
  std::vector<int64_t> order(static_cast<size_t>(rows * cols));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::shuffle(order.begin(), order.end(), rng);
  const auto zeros = static_cast<int64_t>(sparsity * double(rows * cols) + 0.5);
  float* p = w.data<float>();
  const int64_t taps = s.k * s.k;
  for (int64_t z = 0; z < zeros; ++z) {
    const int64_t bi = order[z] / cols, bj = order[z] % cols;
    for (int64_t m = bi * br; m < std::min(s.cout, (bi + 1) * br); ++m)
      for (int64_t c = bj * bc; c < std::min(s.cin, (bj + 1) * bc); ++c)
        std::fill(p + (m * s.cin + c) * taps, p + (m * s.cin + c + 1) * taps, 0.0f);
  }
  return w;
}

std::map<std::string, double>& DenseMedians() {
  static std::map<std::string, double> m;
  return m;
}
struct Row {
  std::string layer, shape;
  int threads = 1, pct = 0;
  double dense_ms = 0, bsr_ms = 0, dense_gflops = 0, eff_gflops = 0;
};
std::vector<Row>& Rows() {
  static std::vector<Row> r;
  return r;
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

std::string Key(const ConvShape& s, int threads) { return fmt::format("{}/{}", s.Name(), threads); }

void BM_Dense(benchmark::State& state, ConvShape s) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);  // oneDNN primitives specialise on the thread count
  const kernels::ref::ConvParams p = ParamsOf(s);
  auto prim =
      kernels::onednn::ConvPrimitive::Create(p, false, true, kernels::onednn::ConvLayout::kAuto);
  if (!prim.ok()) {
    state.SkipWithError(prim.status().ToString().c_str());
    return;
  }
  Tensor w = MaskedWeight(s, 0.0, 8, 8, kSeed);
  Tensor b = RandomTensor({s.cout}, kSeed + 1);
  Tensor x = RandomTensor({1, s.cin, s.h, s.w}, kSeed + 2);
  Tensor y(DType::kF32, {1, s.cout, s.out_h(), s.out_w()});
  auto packed = (*prim)->PackWeights(w.data<float>());
  if (!packed.ok()) {
    state.SkipWithError(packed.status().ToString().c_str());
    return;
  }
  auto run = [&] {
    Status st = (*prim)->Execute(x.data<float>(), *packed, b.data<float>(), y.data<float>());
    benchmark::DoNotOptimize(st);
  };
  for (int i = 0; i < 2; ++i) run();
  const double med = Median(TimeLoop(state, run));
  DenseMedians()[Key(s, threads)] = med;
  state.counters["GFLOP/s"] = s.flops() * 1e-9 / med;
  state.counters["median_us"] = med * 1e6;
  state.SetLabel(s.layer + " " + (*prim)->impl_name());
}

void BM_Bsr(benchmark::State& state, ConvShape s, int pct, int br, int bc) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  const kernels::ref::ConvParams p = ParamsOf(s);
  Tensor w = MaskedWeight(s, pct / 100.0, br, bc, kSeed + static_cast<uint64_t>(pct));
  auto sw = BlockSparseWeight::FromDense(w, br, bc);
  if (!sw.ok()) {
    state.SkipWithError(sw.status().ToString().c_str());
    return;
  }
  auto plan = kernels::sparse::BsrConvPlan::Create(p, *sw);
  if (!plan.ok()) {
    state.SkipWithError(plan.status().ToString().c_str());
    return;
  }
  Tensor b = RandomTensor({s.cout}, kSeed + 1);
  Tensor x = RandomTensor({1, s.cin, s.h, s.w}, kSeed + 2);
  Tensor y(DType::kF32, {1, s.cout, s.out_h(), s.out_w()});
  std::vector<float> scratch(static_cast<size_t>(plan->scratch_floats()));
  auto run = [&] {
    plan->Run(x.data<float>(), b.data<float>(), y.data<float>(), scratch.data(), threads);
    benchmark::ClobberMemory();
  };
  for (int i = 0; i < 2; ++i) run();
  const double med = Median(TimeLoop(state, run));
  const double kept = double(sw->nnz_blocks()) / double(sw->block_rows() * sw->block_cols());
  const double eff = s.flops() * kept * 1e-9 / med;
  state.counters["eff_GFLOP/s"] = eff;
  state.counters["median_us"] = med * 1e6;
  auto it = DenseMedians().find(Key(s, threads));
  Row row{s.layer, s.Name(), threads, pct, 0, med * 1e3, 0, eff};
  if (it != DenseMedians().end()) {
    state.counters["speedup"] = it->second / med;
    state.counters["dense_GFLOP/s"] = s.flops() * 1e-9 / it->second;
    row.dense_ms = it->second * 1e3;
    row.dense_gflops = s.flops() * 1e-9 / it->second;
  }
  // Google Benchmark calls this once per iteration-count probe: keep the last.
  auto same = std::find_if(Rows().begin(), Rows().end(), [&](const Row& r) {
    return r.shape == row.shape && r.threads == row.threads && r.pct == row.pct;
  });
  if (same != Rows().end())
    *same = row;
  else
    Rows().push_back(row);
  state.SetLabel(s.layer + " " + plan->kernel().name);
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
  std::vector<int> pcts;
  for (const Row& r : Rows())
    if (std::find(pcts.begin(), pcts.end(), r.pct) == pcts.end()) pcts.push_back(r.pct);
  fmt::print("\n| threads | layer | shape | oneDNN ms (GFLOP/s) |");
  for (int pct : pcts) fmt::print(" {}%: speed-up (eff GFLOP/s) |", pct);
  fmt::print("\n|---|---|---|---:|");
  for (size_t i = 0; i < pcts.size(); ++i) fmt::print("---:|");
  fmt::print("\n");
  std::map<std::pair<int, int>, std::vector<double>> speedups;
  for (const auto& k : order) {
    const auto& rows = by[k];
    fmt::print("| {} | {} | {} | {:.3f} ({:.0f}) |", k.first, rows[0]->layer, k.second,
               rows[0]->dense_ms, rows[0]->dense_gflops);
    for (int pct : pcts) {
      auto it = std::find_if(rows.begin(), rows.end(), [&](const Row* r) { return r->pct == pct; });
      if (it == rows.end() || (*it)->dense_ms == 0) {
        fmt::print(" — |");
        continue;
      }
      const double sp = (*it)->dense_ms / (*it)->bsr_ms;
      speedups[{k.first, pct}].push_back(sp);
      fmt::print(" {:.2f}x ({:.0f}) |", sp, (*it)->eff_gflops);
    }
    fmt::print("\n");
  }
  fmt::print("\nMedian per-layer speed-up:\n");
  for (auto& [k, v] : speedups)
    fmt::print("  threads {} sparsity {}%: {:.2f}x over {} layers (min {:.2f}x, max {:.2f}x)\n",
               k.first, k.second, Median(v), v.size(), *std::min_element(v.begin(), v.end()),
               *std::max_element(v.begin(), v.end()));
}

}  // namespace
}  // namespace wbs::bench

int main(int argc, char** argv) {
  using namespace wbs;
  using namespace wbs::bench;
  benchmark::Initialize(&argc, argv);
  std::string csv_path = WBS_SOURCE_DIR "/bench/data/resnet50_convs.csv";
  std::vector<int> threads = {1, 2};
  std::vector<int> pcts = {0, 25, 50, 75, 90};
  std::vector<int> layers;  // indices into the CSV; empty = all
  int br = 8, bc = 8;
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
    } else if (key == "--block" && std::sscanf(val.c_str(), "%dx%d", &br, &bc) == 2) {
    } else {
      fmt::print(stderr,
                 "usage: wbs_bench_sparse [benchmark flags] [--csv=PATH] [--threads=1,2] "
                 "[--sparsity=0,25,50,75,90] [--block=8x8] [--layers=0,3,...]\n");
      return 2;
    }
  }
  auto shapes = ReadConvShapes(csv_path);
  if (!shapes.ok()) {
    fmt::print(stderr, "wbs_bench_sparse: {}\n", shapes.status().ToString());
    return 1;
  }
  for (size_t li = 0; li < shapes->size(); ++li) {
    if (!layers.empty() && std::find(layers.begin(), layers.end(), int(li)) == layers.end())
      continue;
    const ConvShape& s = (*shapes)[li];
    for (int t : threads) {
      benchmark::RegisterBenchmark(("dense/" + s.Name()).c_str(), BM_Dense, s)
          ->Arg(t)
          ->ArgName("threads")
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      for (int pct : pcts)
        benchmark::RegisterBenchmark(fmt::format("bsr/{}/sp:{}", s.Name(), pct).c_str(), BM_Bsr, s,
                                     pct, br, bc)
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

// Conv layers with ResNet-50's distinct shapes (bench/data/resnet50_convs.csv),
// each as a one-node session, batch 1: real time and GFLOP/s.
//
//   wbs_bench_conv [google-benchmark flags] [--csv=PATH] [--threads=1,2]
//                  [--backend=fast|reference] [--verify=0] [--export_onnx=DIR]
//                  [--fixed_iterations=N]
//
// Benchmarks are named "conv/<cin..._cout..._k_s_p_HxW>/threads:<n>". The
// "count" counter is how often the shape occurs in the model, so
// sum(count * time) is ResNet-50's total conv time at this thread count.
// At start-up the CSV is checked against zoo::BuildModel("resnet50") (the
// data file must describe the model we ship); a mismatch is an error.
// --export_onnx=DIR writes each one-node conv graph to DIR/conv_<shape>.onnx
// (for timing ONNX Runtime on the same layers) instead of benchmarking.
#include <benchmark/benchmark.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "onnx/model_io.h"
#include "runtime/session.h"
#include "zoo/zoo.h"

#ifndef WBS_SOURCE_DIR
#define WBS_SOURCE_DIR "."
#endif

namespace wbs::bench {
namespace {

constexpr uint64_t kSeed = 11;
constexpr int kWarmupRuns = 2;  // untimed runs after session creation

struct Cached {
  std::string key;
  std::unique_ptr<runtime::Session> session;
  std::vector<Tensor> inputs;
  Status status;
};
Cached& Cache() {
  static Cached c;
  return c;
}

Status Prepare(const ConvShape& s, int threads, runtime::Backend backend) {
  Cached& c = Cache();
  std::string key = fmt::format("{}/{}/{}", s.Name(), threads, runtime::BackendName(backend));
  if (c.key == key) return c.status;
  c.session.reset();
  c.key = key;
  c.status = [&]() -> Status {
    auto graph = BuildConvGraph(s, kSeed);
    runtime::SessionOptions so;
    so.backend = backend;
    so.num_threads = threads;
    WBS_ASSIGN_OR_RETURN(c.session, runtime::Session::Create(*graph, so));
    c.inputs = {RandomTensor({1, s.cin, s.h, s.w}, kSeed + 2)};
    for (int r = 0; r < kWarmupRuns; ++r) WBS_RETURN_IF_ERROR(c.session->Run(c.inputs).status());
    return Status::Ok();
  }();
  return c.status;
}

void BM_Conv(benchmark::State& state, const ConvShape& s, runtime::Backend backend) {
  int threads = static_cast<int>(state.range(0));
  Status st = Prepare(s, threads, backend);
  if (!st.ok()) {
    state.SkipWithError(st.ToString().c_str());
    return;
  }
  Cached& c = Cache();
  for (auto _ : state) {
    auto out = c.session->Run(c.inputs);
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out->data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(s.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["MFLOP"] = s.flops() * 1e-6;
  state.counters["count"] = static_cast<double>(s.count);
  state.SetLabel(s.layer + " " + c.session->NodeImplementations().at(0));
}

// Error unless `csv` lists exactly the distinct conv shapes of the zoo's
// ResNet-50 with the same counts (order-insensitive).
Status VerifyAgainstZoo(const std::vector<ConvShape>& csv) {
  WBS_ASSIGN_OR_RETURN(auto graph, zoo::BuildModel("resnet50"));
  WBS_ASSIGN_OR_RETURN(std::vector<ConvShape> model, DistinctConvShapes(*graph));
  for (const ConvShape& m : model) {
    auto it =
        std::find_if(csv.begin(), csv.end(), [&](const ConvShape& r) { return r.SameShape(m); });
    if (it == csv.end())
      return FailedPrecondition("zoo resnet50 conv {} ({}) is not in the CSV", m.Name(), m.layer);
    if (it->count != m.count)
      return FailedPrecondition("conv {}: CSV count {}, zoo resnet50 has {}", m.Name(), it->count,
                                m.count);
  }
  if (model.size() != csv.size())
    return FailedPrecondition("CSV has {} shapes, zoo resnet50 has {}", csv.size(), model.size());
  return Status::Ok();
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
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
  runtime::Backend backend = runtime::Backend::kFast;
  bool verify = true;
  int64_t fixed_iterations = 0;  // > 0: exactly this many runs per repetition
  std::string export_dir;        // non-empty: write each conv as ONNX there and exit
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    std::string key = a.substr(0, eq);
    std::string val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--csv") {
      csv_path = val;
    } else if (key == "--threads") {
      threads.clear();
      for (const std::string& t : SplitList(val)) threads.push_back(std::stoi(t));
    } else if (key == "--backend" && (val == "fast" || val == "reference")) {
      backend = val == "fast" ? runtime::Backend::kFast : runtime::Backend::kReference;
    } else if (key == "--export_onnx") {
      export_dir = val;
    } else if (key == "--fixed_iterations") {
      fixed_iterations = std::stoll(val);
    } else if (key == "--verify") {
      verify = val != "0" && val != "false";
    } else {
      fmt::print(
          stderr,
          "usage: wbs_bench_conv [benchmark flags] [--csv=PATH] [--threads=1,2] "
          "[--backend=fast|reference] [--verify=0] [--export_onnx=DIR] [--fixed_iterations=N]\n");
      return 2;
    }
  }
  auto shapes = ReadConvShapes(csv_path);
  if (!shapes.ok()) {
    fmt::print(stderr, "wbs_bench_conv: {}\n", shapes.status().ToString());
    return 1;
  }
  if (verify) {
    Status st = VerifyAgainstZoo(*shapes);
    if (!st.ok()) {
      fmt::print(stderr,
                 "wbs_bench_conv: {} does not match the zoo: {}\n(--verify=0 to run anyway)\n",
                 csv_path, st.ToString());
      return 1;
    }
  }
  if (!export_dir.empty()) {
    // The same one-node graphs (same seeds) for ONNX Runtime: scripts/bench.sh
    // times them with tools/ort/run.js for a per-layer comparison.
    for (const ConvShape& s : *shapes) {
      std::string path = fmt::format("{}/conv_{}.onnx", export_dir, s.Name());
      Status st = onnxio::ExportModel(*BuildConvGraph(s, kSeed), path);
      if (!st.ok()) {
        fmt::print(stderr, "wbs_bench_conv: {}\n", st.ToString());
        return 1;
      }
      fmt::print("{}\n", path);
    }
    return 0;
  }
  for (const ConvShape& s : *shapes) {
    auto* b = benchmark::RegisterBenchmark(("conv/" + s.Name()).c_str(), BM_Conv, s, backend);
    for (int t : threads) b->Arg(t);
    b->ArgName("threads")->Unit(benchmark::kMicrosecond)->UseRealTime();
    if (fixed_iterations > 0) b->Iterations(fixed_iterations);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

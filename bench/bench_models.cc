// Whole-model latency of the zoo models through runtime::Session, batch 1.
//
//   wbs_bench_models [google-benchmark flags] [--models=resnet50,vgg16]
//                    [--threads=1,2] [--backend=fast|reference] [--sparsity=0,50,75]
//                    [--fixed_iterations=N] [--mark_timed_runs] [--profile_nodes=REPEATS]
//                    [--gemm_calibration] [--interleaved=RUNS] [--cpu_time] [--variants=NAME=v1,v2]
//
// --fixed_iterations=N runs each benchmark exactly N times per repetition
// (no iteration estimate); with N = 1 every repetition is one run, the same
// statistic tools/ort/run.js reports for ORT (median of single runs).
// --mark_timed_runs prints "wbs_bench: timed runs start" before each timed
// loop, so a oneDNN verbose log after the last marker holds only timed runs.
// --profile_nodes=R prints a per-node profile (bench_common.h ProfileNodes)
// of each model instead of benchmarking.
// --sparsity=P,... (percent, default 0) benchmarks each model also after
// one-shot sparsification (sparse::Sparsify: 8x8 blocks, L2 scores, P% of
// the blocks of every blockable layer but the first conv zeroed, channels
// kept alive); the runtime then picks sparse or dense per layer
// (runtime/ops_sparse.h; WBS_SPARSE=0|1 overrides). Names:
// "model/<name>/threads:<n>" for 0, "model/<name>/sparse:<P>/threads:<n>".
// --interleaved=R (with --sparsity) prepares every sparsity's session of a
// (model, threads) at once and runs them in turn, R times (the order rotates
// each time), printing "sample<TAB>model<TAB>threads<TAB>sparsity<TAB>ms" per
// run and a "label" line per session: dense and sparse samples are taken
// seconds apart, so load that changes by the minute on a shared machine
// moves both sides alike (scripts/bench.sh step 4 uses it).
// --cpu_time (with --interleaved) also prints, after each sample line,
// "cpu<TAB>model<TAB>threads<TAB>sparsity<TAB>ms": the process CPU time of
// that run (all threads). With OMP_WAIT_POLICY=passive idle threads sleep,
// so it is the work done, which other jobs on the machine barely move while
// they stretch the wall-clock samples; for A/B tests of changes that do not
// move work between threads (docs/BENCHMARKS.md "End-to-end block-sparse").
// --variants=NAME=v1,v2,... (with --interleaved) prepares one session per
// (sparsity, value) with the environment variable NAME set to the value
// while the session is created (switches read at session creation, e.g.
// WBS_PRIVATE_COPIES), runs them all in turn and prints the sparsity
// field as "P:value": a paired A/B of such a switch in one process.
// --gemm_calibration instead times the FC layers of the zoo models (batch 1)
// sparse vs oneDNN dense at 50/75/90% random-mask block sparsity, one-node
// sessions in the same process: the Gemm rows of the cost rule in
// runtime/ops_sparse.cc.
//
// One benchmark per (model, threads): "model/<name>/threads:<n>", real time
// in ms. Session creation (graph passes, weight packing) is not timed. The
// label lists how many nodes run a fast implementation, so a silent fallback
// to the reference path shows in the report. ONNX Runtime's numbers for the
// same models come from tools/ort/run.js (see scripts/bench.sh).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "runtime/ops_sparse.h"
#include "runtime/session.h"
#include "sparse/sparsify.h"
#include "zoo/zoo.h"

namespace wbs::bench {
namespace {

constexpr uint64_t kWeightSeed = 1;
constexpr uint64_t kInputSeed = 7;
constexpr const char* kTimedRunsMarker = "wbs_bench: timed runs start";
bool g_mark_timed_runs = false;  // --mark_timed_runs
// Runs after session creation, before any timing: first-touch page faults of
// the arena and oneDNN's lazily created state stay out of every sample, also
// when a benchmark is a fixed single iteration.
constexpr int kWarmupRuns = 2;

struct Flags {
  std::vector<std::string> models;
  std::vector<int> threads = {1, 2};
  runtime::Backend backend = runtime::Backend::kFast;
  int64_t fixed_iterations = 0;  // > 0: exactly this many runs (for profiles)
  int profile_nodes = 0;         // > 0: print a per-node profile (this many repeats), no benchmarks
  std::vector<int> sparsity = {0};  // percent of zero blocks per blockable layer
  bool gemm_calibration = false;
  int interleaved = 0;      // > 0: paired runs of every sparsity, no Google Benchmark
  bool cpu_time = false;    // --interleaved also prints each run's process CPU time
  std::string variant_env;  // --variants: NAME
  std::vector<std::string> variant_values;  // and its values
};

// The session being benchmarked. Google Benchmark calls a benchmark's
// function several times (iteration estimate, repetitions) and runs
// benchmarks in registration order, so one cached session per
// (model, threads) keeps creation out of the timing and at most one model's
// weights in memory (VGG-16 alone is 0.5 GB).
struct Cached {
  std::string key;
  std::unique_ptr<runtime::Session> session;
  std::vector<Tensor> inputs;
  std::string label;
  Status status;
};
Cached& Cache() {
  static Cached c;
  return c;
}

Status Prepare(const std::string& model, int threads, runtime::Backend backend, int sparsity) {
  Cached& c = Cache();
  std::string key =
      fmt::format("{}/{}/{}/{}", model, threads, runtime::BackendName(backend), sparsity);
  if (c.key == key) return c.status;
  c.session.reset();
  c.inputs.clear();
  c.key = key;
  c.status = [&]() -> Status {
    zoo::ZooOptions zo;
    zo.batch = 1;
    zo.seed = kWeightSeed;
    WBS_ASSIGN_OR_RETURN(auto graph, zoo::BuildModel(model, zo));
    if (sparsity > 0) {
      sparse::SparsifyOptions sp;
      sp.sparsity = sparsity / 100.0;
      sp.score = sparse::Score::kL2;
      WBS_RETURN_IF_ERROR(sparse::Sparsify(*graph, sp).status());
    }
    runtime::SessionOptions so;
    so.backend = backend;
    so.num_threads = threads;
    WBS_ASSIGN_OR_RETURN(c.session, runtime::Session::Create(*graph, so));
    WBS_ASSIGN_OR_RETURN(c.inputs, RandomInputs(c.session->graph(), kInputSeed));
    std::map<std::string, int> impls;
    int fast = 0, total = 0, sparse_nodes = 0;
    for (const std::string& s : c.session->NodeImplementations()) {
      ++total;
      if (s.substr(s.find(':') + 1) != "ref") ++fast;
      if (s.find(":sparse:") != std::string::npos) ++sparse_nodes;
    }
    const runtime::MemoryPlanStats& mem = c.session->memory_stats();
    c.label = fmt::format(
        "{}/{} nodes fast, {} block-sparse, {} tensors passed blocked/channels-last, arena {:.1f} "
        "MB ({:.1f} MB without reuse, {} outputs in place)",
        fast, total, sparse_nodes, c.session->NonPlainValues().size(), mem.arena_bytes / 1e6,
        mem.unplanned_bytes / 1e6, mem.num_in_place);
    for (int r = 0; r < kWarmupRuns; ++r) WBS_RETURN_IF_ERROR(c.session->Run(c.inputs).status());
    return Status::Ok();
  }();
  return c.status;
}

void BM_Model(benchmark::State& state, const std::string& model, runtime::Backend backend,
              int sparsity) {
  int threads = static_cast<int>(state.range(0));
  Status st = Prepare(model, threads, backend, sparsity);
  if (!st.ok()) {
    state.SkipWithError(st.ToString().c_str());
    return;
  }
  Cached& c = Cache();
  if (g_mark_timed_runs) {
    // Profiles (oneDNN verbose on stdout) keep only what follows the last
    // marker, so weight packing at session creation is not counted.
    std::printf("%s %s\n", kTimedRunsMarker, c.key.c_str());
    std::fflush(stdout);
  }
  for (auto _ : state) {
    auto out = c.session->Run(c.inputs);
    if (!out.ok()) {
      state.SkipWithError(out.status().ToString().c_str());
      return;
    }
    benchmark::DoNotOptimize(out->data());
  }
  state.SetLabel(c.label);
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Parses our flags out of what Google Benchmark left; false on an unknown one.
bool ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      return a.rfind(name + "=", 0) == 0 ? argv[i] + name.size() + 1 : nullptr;
    };
    if (const char* v = value("--models")) {
      f.models = SplitList(v);
    } else if (const char* v = value("--threads")) {
      f.threads.clear();
      for (const std::string& t : SplitList(v)) f.threads.push_back(std::stoi(t));
    } else if (const char* v = value("--profile_nodes")) {
      f.profile_nodes = std::stoi(v);
    } else if (const char* v = value("--sparsity")) {
      f.sparsity.clear();
      for (const std::string& t : SplitList(v)) {
        const int pct = std::stoi(t);
        if (pct < 0 || pct > 100) return false;
        f.sparsity.push_back(pct);
      }
    } else if (const char* v = value("--interleaved")) {
      f.interleaved = std::stoi(v);
    } else if (const char* v = value("--variants")) {
      const std::string spec = v;
      const size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0) return false;
      f.variant_env = spec.substr(0, eq);
      f.variant_values = SplitList(spec.substr(eq + 1));
      if (f.variant_values.empty()) return false;
    } else if (a == "--cpu_time") {
      f.cpu_time = true;
    } else if (a == "--gemm_calibration") {
      f.gemm_calibration = true;
    } else if (a == "--mark_timed_runs") {
      g_mark_timed_runs = true;
    } else if (const char* v = value("--fixed_iterations")) {
      f.fixed_iterations = std::stoll(v);
    } else if (const char* v = value("--backend")) {
      std::string b = v;
      if (b == "fast")
        f.backend = runtime::Backend::kFast;
      else if (b == "reference")
        f.backend = runtime::Backend::kReference;
      else
        return false;
    } else {
      fmt::print(stderr, "wbs_bench_models: unknown flag '{}'\n", a);
      return false;
    }
  }
  return true;
}

// Prints one "node<TAB>op<TAB>impl<TAB>name<TAB>ms" line per node, then the
// model's own median latency for comparison ("model<TAB>ms").
int PrintNodeProfile(const Flags& flags) {
  for (const std::string& m : flags.models) {
    for (int t : flags.threads)
      for (int sp : flags.sparsity) {
        Status st = Prepare(m, t, flags.backend, sp);
        if (!st.ok()) {
          fmt::print(stderr, "{}: {}\n", m, st.ToString());
          return 1;
        }
        Cached& c = Cache();
        auto nodes = ProfileNodes(c.session->graph(), flags.backend, t, flags.profile_nodes);
        if (!nodes.ok()) {
          fmt::print(stderr, "{}: {}\n", m, nodes.status().ToString());
          return 1;
        }
        std::vector<double> runs;
        for (int r = 0; r < flags.profile_nodes + 2; ++r) {
          auto t0 = std::chrono::steady_clock::now();
          auto out = c.session->Run(c.inputs);
          if (!out.ok()) return 1;
          if (r >= 2)
            runs.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
        }
        std::sort(runs.begin(), runs.end());
        fmt::print("# {} threads={} backend={} sparsity={}%\n", m, t,
                   runtime::BackendName(flags.backend), sp);
        for (const NodeTiming& n : *nodes)
          fmt::print("node\t{}\t{}\t{}\t{:.4f}\n", n.op_type, n.impl, n.name, n.ms);
        fmt::print("model\t{:.4f}\n", runs[runs.size() / 2]);
      }
  }
  return 0;
}

// CPU time of the whole process so far, in ms.
double ProcessCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

// --interleaved: see the file comment.
int RunInterleaved(const Flags& flags) {
  for (const std::string& m : flags.models)
    for (int t : flags.threads) {
      std::vector<Cached> sessions;
      std::vector<std::string> names;  // the sparsity field of each session's lines
      const std::vector<std::string> values =
          flags.variant_env.empty() ? std::vector<std::string>{""} : flags.variant_values;
      for (int sp : flags.sparsity)
        for (const std::string& val : values) {
          if (!flags.variant_env.empty()) setenv(flags.variant_env.c_str(), val.c_str(), 1);
          Status st = Prepare(m, t, flags.backend, sp);
          if (!st.ok()) {
            fmt::print(stderr, "{}: {}\n", m, st.ToString());
            return 1;
          }
          names.push_back(flags.variant_env.empty() ? std::to_string(sp)
                                                    : fmt::format("{}:{}", sp, val));
          fmt::print("label\t{}\t{}\t{}\t{}\n", m, t, names.back(), Cache().label);
          sessions.push_back(std::move(Cache()));
          Cache() = Cached();
        }
      if (!flags.variant_env.empty()) unsetenv(flags.variant_env.c_str());
      const size_t n = sessions.size();
      for (int r = 0; r < flags.interleaved; ++r)
        for (size_t k = 0; k < n; ++k) {
          const size_t i = (k + static_cast<size_t>(r)) % n;
          const double cpu0 = ProcessCpuMs();
          auto t0 = std::chrono::steady_clock::now();
          auto out = sessions[i].session->Run(sessions[i].inputs);
          const double ms =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                  .count();
          const double cpu_ms = ProcessCpuMs() - cpu0;
          if (!out.ok()) {
            fmt::print(stderr, "{}: {}\n", m, out.status().ToString());
            return 1;
          }
          fmt::print("sample\t{}\t{}\t{}\t{:.4f}\n", m, t, names[i], ms);
          if (flags.cpu_time) fmt::print("cpu\t{}\t{}\t{}\t{:.4f}\n", m, t, names[i], cpu_ms);
        }
      std::fflush(stdout);
    }
  return 0;
}

// --gemm_calibration: a one-node Gemm (transB = 1, bias, batch 1) with a
// random block mask, created once with sparse off (oneDNN) and once forced
// sparse; both time the same weights in the same process.
struct GemmCase {
  int64_t k, n;
  const char* model;
};
constexpr GemmCase kGemmCases[] = {
    {2048, 1000, "resnet50/inception_v3 fc"},
    {512, 1000, "resnet18 fc"},
    {25088, 4096, "vgg16 fc1"},
    {4096, 4096, "vgg16 fc2"},
    {4096, 1000, "vgg16 fc3"},
};

std::unique_ptr<ir::Graph> GemmGraph(const GemmCase& g, int sparsity) {
  auto graph = std::make_unique<ir::Graph>();
  ir::Value* a = graph->AddInput("a", DType::kF32, {1, g.k});
  Tensor w = RandomTensor({g.n, g.k}, 5, 0.02f);
  const int64_t rows = (g.n + 7) / 8, cols = (g.k + 7) / 8;
  std::mt19937_64 rng(9);
  float* p = w.data<float>();
  for (int64_t bi = 0; bi < rows; ++bi)
    for (int64_t bj = 0; bj < cols; ++bj) {
      if (std::uniform_int_distribution<int>(0, 99)(rng) >= sparsity) continue;
      for (int64_t r = bi * 8; r < std::min(g.n, bi * 8 + 8); ++r)
        std::fill(p + r * g.k + bj * 8, p + r * g.k + std::min(g.k, bj * 8 + 8), 0.0f);
    }
  ir::Value* wv = graph->AddConstant("w", w);
  ir::Value* bv = graph->AddConstant("b", RandomTensor({g.n}, 6, 0.1f));
  ir::Value* y = graph->AddValue("y");
  ir::Node* n = graph->AddNode("Gemm", {a, wv, bv}, {y}, "fc");
  n->attrs["transB"] = int64_t{1};
  graph->outputs.push_back(y);
  return graph;
}

void BM_Gemm(benchmark::State& state, GemmCase g, int sparsity, bool sparse) {
  const int threads = static_cast<int>(state.range(0));
  auto graph = GemmGraph(g, sparsity);
  runtime::SetSparseMode(sparse ? runtime::SparseMode::kForce : runtime::SparseMode::kOff);
  runtime::SessionOptions so;
  so.num_threads = threads;
  auto session = runtime::Session::Create(*graph, so);
  runtime::SetSparseMode(runtime::SparseMode::kAuto);
  if (!session.ok()) {
    state.SkipWithError(session.status().ToString().c_str());
    return;
  }
  std::vector<Tensor> in = {RandomTensor({1, g.k}, 7)};
  for (int r = 0; r < kWarmupRuns; ++r)
    if (!(*session)->Run(in).ok()) state.SkipWithError("run failed");
  for (auto _ : state) benchmark::DoNotOptimize((*session)->Run(in));
  state.SetLabel(fmt::format("{} {}", g.model, (*session)->NodeImplementations()[0]));
}

void RegisterGemmCalibration(const Flags& flags) {
  for (const GemmCase& g : kGemmCases)
    for (int sp : {50, 75, 90})
      for (bool sparse : {false, true}) {
        const std::string name =
            fmt::format("gemm/k{}_n{}/sparse:{}/{}", g.k, g.n, sp, sparse ? "bsr" : "dense");
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, g, sp, sparse);
        for (int t : flags.threads) b->Arg(t);
        b->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
      }
}

}  // namespace
}  // namespace wbs::bench

int main(int argc, char** argv) {
  wbs::bench::ChooseOmpWait(argv);
  using namespace wbs::bench;
  benchmark::Initialize(&argc, argv);
  Flags flags;
  flags.models = wbs::zoo::ModelNames();
  if (!ParseFlags(argc, argv, flags)) {
    fmt::print(stderr,
               "usage: wbs_bench_models [benchmark flags] [--models=a,b] [--threads=1,2] "
               "[--backend=fast|reference] [--sparsity=0,50,75] [--fixed_iterations=N] "
               "[--mark_timed_runs] [--profile_nodes=R] [--gemm_calibration] [--interleaved=R] "
               "[--cpu_time] [--variants=NAME=v1,v2]\n");
    return 2;
  }
  if (flags.profile_nodes > 0) return PrintNodeProfile(flags);
  if (flags.interleaved > 0) return RunInterleaved(flags);
  if (flags.gemm_calibration) RegisterGemmCalibration(flags);
  for (const std::string& m : flags.gemm_calibration ? std::vector<std::string>() : flags.models)
    for (int sp : flags.sparsity) {
      const std::string name = sp == 0 ? "model/" + m : fmt::format("model/{}/sparse:{}", m, sp);
      auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_Model, m, flags.backend, sp);
      for (int t : flags.threads) b->Arg(t);
      b->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
      if (flags.fixed_iterations > 0) b->Iterations(flags.fixed_iterations);
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

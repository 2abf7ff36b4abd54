// Latency and per-node profile of a quantized (QDQ) ONNX model through
// runtime::Session on the fast backend: the wbs side of the "Int8 end to
// end" benchmark (scripts/bench_int8_e2e.sh; ONNX Runtime runs the same or
// the dense QDQ file through tools/ort/run.js).
//
//   wbs_bench_int8 MODEL.onnx [--input X.npy] [--threads N] [--warmup N] [--repeat N]
//                  [--profile R] [--samples]
//
// Prints one line "latency_ms median=.. min=.. runs=.." (the median of
// single timed runs after the warm-ups, the statistic run.js reports), the
// count of nodes per implementation, the count of tensors passed in each
// non-plain layout (core/layout.h), and with --profile R a per-node
// profile: each node of the session's graph (after the default passes,
// QDQ lowered to the integer ops) runs alone in a one-node session on
// random inputs of its dtype, shape and quantization parameters, median of
// R runs. Isolated timings miss cache reuse and include the one-node
// session's layout conversions at its boundary, so they approximate each
// node's share; the table also sums them per op type and implementation.
// Also "cpu_ms median=.. min=..": the process CPU time per run (robust to
// preemption on a loaded machine at 1 thread). --samples prints every timed
// run ("sample<TAB>wall ms<TAB>cpu ms") for the caller's own statistics.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "core/logging.h"
#include "core/npy.h"
#include "onnx/model_io.h"
#include "runtime/session.h"

namespace wbs::bench {
namespace {

struct Flags {
  std::string model;
  std::string input;
  int threads = 1;
  int warmup = 3;
  int repeat = 10;
  int profile = 0;
  bool samples = false;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The process's CPU time (all threads), ms.
double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e3 * double(ts.tv_sec) + 1e-6 * double(ts.tv_nsec);
}

// `samples`: wall ms per run; `cpu`: process CPU ms per run (at 1 thread,
// or with passive OpenMP waits, the work itself: on a loaded machine it
// moves far less than the wall time, which includes preemption).
Result<double> TimeRuns(runtime::Session& s, const std::vector<Tensor>& in, int warmup, int repeat,
                        std::vector<double>* samples, std::vector<double>* cpu) {
  for (int r = 0; r < warmup; ++r) WBS_RETURN_IF_ERROR(s.Run(in).status());
  std::vector<double> t, c;
  for (int r = 0; r < repeat; ++r) {
    const double c0 = CpuMs();
    const auto t0 = std::chrono::steady_clock::now();
    WBS_RETURN_IF_ERROR(s.Run(in).status());
    const auto t1 = std::chrono::steady_clock::now();
    c.push_back(CpuMs() - c0);
    t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  if (samples) *samples = t;
  if (cpu) *cpu = c;
  return Median(t);
}

Status Main(const Flags& f) {
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, onnxio::ImportModel(f.model));
  runtime::SessionOptions so;
  so.num_threads = f.threads;
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session,
                       runtime::Session::Create(*graph, so));
  std::vector<Tensor> inputs;
  if (!f.input.empty()) {
    WBS_ASSIGN_OR_RETURN(Tensor x, ReadNpy(f.input));
    inputs.push_back(std::move(x));
  } else {
    for (const ir::Value* v : session->graph().inputs) {
      Shape s = v->shape;
      for (int64_t& d : s) d = d < 0 ? 1 : d;
      WBS_ASSIGN_OR_RETURN(Tensor x, RandomTensorOf(v->dtype, s, 7));
      inputs.push_back(std::move(x));
    }
  }
  std::vector<double> samples, cpu;
  WBS_ASSIGN_OR_RETURN(double med, TimeRuns(*session, inputs, f.warmup, f.repeat, &samples, &cpu));
  std::map<std::string, int> impls;
  for (const std::string& s : session->NodeImplementations()) {
    // "Op:impl[:kernel]" -> "Op impl".
    const size_t c = s.find(':');
    const std::string op = s.substr(0, c);
    std::string impl = c == std::string::npos ? "" : s.substr(c + 1);
    impl = impl.substr(0, impl.find(':'));
    ++impls[op + " " + impl];
  }
  fmt::print("model {} threads {}\n", f.model, f.threads);
  fmt::print("latency_ms median={:.3f} min={:.3f} runs={}\n", med,
             *std::min_element(samples.begin(), samples.end()), samples.size());
  fmt::print("cpu_ms median={:.3f} min={:.3f}\n", Median(cpu),
             *std::min_element(cpu.begin(), cpu.end()));
  if (f.samples)
    for (size_t i = 0; i < samples.size(); ++i)
      fmt::print("sample\t{:.4f}\t{:.4f}\n", samples[i], cpu[i]);
  for (const auto& [k, c] : impls) fmt::print("impl\t{}\t{}\n", k, c);
  // Tensors the negotiation kept out of the plain layout (core/layout.h),
  // i.e. reorder pairs saved between operators.
  std::map<std::string, int> layouts;
  for (const auto& [name, layout] : session->NonPlainValues())
    ++layouts[ActivationLayoutName(layout)];
  for (const auto& [k, c] : layouts) fmt::print("layout\t{}\t{}\n", k, c);
  if (f.profile > 0) {
    WBS_ASSIGN_OR_RETURN(
        std::vector<NodeTiming> nodes,
        ProfileNodes(session->graph(), runtime::Backend::kFast, f.threads, f.profile));
    double total = 0;
    std::map<std::string, std::pair<double, int>> by;
    for (const NodeTiming& n : nodes) {
      total += n.ms;
      auto& e = by[n.op_type + " " + n.impl];
      e.first += n.ms;
      ++e.second;
    }
    fmt::print("\nper node (isolated, median of {}):\n", f.profile);
    for (const NodeTiming& n : nodes)
      fmt::print("node\t{}\t{}\t{}\t{:.3f}\n", n.name, n.op_type, n.impl, n.ms);
    std::vector<std::pair<std::string, std::pair<double, int>>> rows(by.begin(), by.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    fmt::print("\nper op and implementation (sum of isolated nodes {:.2f} ms):\n", total);
    for (const auto& [k, v] : rows)
      fmt::print("op\t{}\t{}\t{:.3f}\t{:.1f}%\n", k, v.second, v.first, 100 * v.first / total);
  }
  return Status::Ok();
}

bool ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      return a == name && i + 1 < argc ? argv[++i] : nullptr;
    };
    if (const char* v = value("--input"))
      f.input = v;
    else if (const char* v = value("--threads"))
      f.threads = std::atoi(v);
    else if (const char* v = value("--warmup"))
      f.warmup = std::atoi(v);
    else if (const char* v = value("--repeat"))
      f.repeat = std::atoi(v);
    else if (const char* v = value("--profile"))
      f.profile = std::atoi(v);
    else if (a == "--samples")
      f.samples = true;
    else if (!a.empty() && a[0] != '-' && f.model.empty())
      f.model = a;
    else
      return false;
  }
  return !f.model.empty() && f.threads >= 1 && f.warmup >= 0 && f.repeat >= 1 && f.profile >= 0;
}

}  // namespace
}  // namespace wbs::bench

int main(int argc, char** argv) {
  wbs::bench::ChooseOmpWait(argv);
  wbs::SetVerbosity(0);  // warnings only: the per-layer sparse decisions are info
  wbs::bench::Flags f;
  if (!wbs::bench::ParseFlags(argc, argv, f)) {
    fmt::print(stderr,
               "usage: wbs_bench_int8 MODEL.onnx [--input X.npy] [--threads N] [--warmup N] "
               "[--repeat N] [--profile R] [--samples]\n");
    return 2;
  }
  wbs::Status st = wbs::bench::Main(f);
  if (!st.ok()) {
    fmt::print(stderr, "wbs_bench_int8: {}\n", st.ToString());
    return 1;
  }
  return 0;
}

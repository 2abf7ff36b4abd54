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
// count of nodes per implementation, and with --profile R a per-node
// profile: each node of the session's graph (after the default passes,
// QDQ lowered to the integer ops) runs alone in a one-node session on
// random inputs of its dtype, shape and quantization parameters, median of
// R runs. Isolated timings miss cache reuse and include the one-node
// session's layout conversions at its boundary, so they approximate each
// node's share; the table also sums them per op type and implementation.
// --samples prints every timed run ("sample<TAB>ms") for the caller's own
// statistics.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

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

// Random values of any type the int8 graph exchanges: u8/s8 over their whole
// range, f32 standard normal.
Tensor RandomOf(DType t, const Shape& s, uint64_t seed) {
  Tensor x(t, s);
  std::mt19937_64 rng(seed);
  if (t == DType::kF32) {
    std::normal_distribution<float> d(0.f, 1.f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = d(rng);
  } else {
    uint8_t* b = reinterpret_cast<uint8_t*>(x.raw());
    const int64_t bytes = x.numel() * static_cast<int64_t>(DTypeSize(t));
    for (int64_t i = 0; i < bytes; ++i) b[i] = static_cast<uint8_t>(rng());
  }
  return x;
}

Result<double> TimeRuns(runtime::Session& s, const std::vector<Tensor>& in, int warmup, int repeat,
                        std::vector<double>* samples) {
  for (int r = 0; r < warmup; ++r) WBS_RETURN_IF_ERROR(s.Run(in).status());
  std::vector<double> t;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    WBS_RETURN_IF_ERROR(s.Run(in).status());
    const auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  if (samples) *samples = t;
  return Median(t);
}

struct NodeTime {
  std::string name, op_type, impl;
  double ms = 0;
};

// One-node session per node of `g` (see the file comment).
Result<std::vector<NodeTime>> Profile(const ir::Graph& g, int threads, int repeat) {
  std::vector<NodeTime> out;
  uint64_t seed = 1000;
  for (const auto& np : g.nodes()) {
    const ir::Node& n = *np;
    ir::Graph one;
    one.opset = g.opset;
    std::map<const ir::Value*, ir::Value*> mapped;
    std::vector<Tensor> inputs;
    std::vector<ir::Value*> ins;
    bool skip = false;
    for (const ir::Value* v : n.inputs) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      auto it = mapped.find(v);
      if (it != mapped.end()) {
        ins.push_back(it->second);
        continue;
      }
      ir::Value* nv = nullptr;
      if (v->is_constant()) {
        nv = one.AddConstant(v->name, v->constant);
      } else {
        if (!v->shape_is_static()) {
          skip = true;
          break;
        }
        nv = one.AddInput(v->name, v->dtype, v->shape);
        inputs.push_back(RandomOf(v->dtype, v->shape, seed++));
      }
      nv->quant = v->quant;
      nv->block_mask = v->block_mask;
      mapped[v] = nv;
      ins.push_back(nv);
    }
    if (skip) continue;
    std::vector<ir::Value*> outs;
    for (const ir::Value* v : n.outputs) {
      ir::Value* o = one.AddValue(v ? v->name : "");
      if (v) o->quant = v->quant;
      outs.push_back(o);
    }
    ir::Node* copy = one.AddNode(n.op_type, ins, outs, n.name);
    copy->domain = n.domain;
    copy->opset = n.opset;
    copy->attrs = n.attrs;
    for (ir::Value* v : outs) one.outputs.push_back(v);
    runtime::SessionOptions so;
    so.num_threads = threads;
    so.optimize = false;
    auto session = runtime::Session::Create(one, so);
    if (!session.ok()) return session.status().WithContext("profiling " + n.Describe());
    WBS_ASSIGN_OR_RETURN(double ms, TimeRuns(**session, inputs, 2, repeat, nullptr));
    std::string impl = (*session)->NodeImplementations().at(0);
    impl = impl.substr(impl.find(':') + 1);
    out.push_back({n.name, n.op_type, impl, ms});
  }
  return out;
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
      inputs.push_back(RandomOf(v->dtype, s, 7));
    }
  }
  std::vector<double> samples;
  WBS_ASSIGN_OR_RETURN(double med, TimeRuns(*session, inputs, f.warmup, f.repeat, &samples));
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
  if (f.samples)
    for (double s : samples) fmt::print("sample\t{:.4f}\n", s);
  for (const auto& [k, c] : impls) fmt::print("impl\t{}\t{}\n", k, c);
  if (f.profile > 0) {
    WBS_ASSIGN_OR_RETURN(std::vector<NodeTime> nodes,
                         Profile(session->graph(), f.threads, f.profile));
    double total = 0;
    std::map<std::string, std::pair<double, int>> by;
    for (const NodeTime& n : nodes) {
      total += n.ms;
      auto& e = by[n.op_type + " " + n.impl];
      e.first += n.ms;
      ++e.second;
    }
    fmt::print("\nper node (isolated, median of {}):\n", f.profile);
    for (const NodeTime& n : nodes)
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

// wbs run: executes a model with runtime::Session on given or random inputs,
// prints output statistics and latency, and optionally saves outputs as .npy.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "cli/command.h"
#include "core/logging.h"
#include "core/npy.h"
#include "onnx/model_io.h"
#include "runtime/session.h"

namespace wbs::cli {

namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;        // NAME=FILE
  std::vector<std::string> input_shapes;  // NAME=DIMS
  bool random = false;
  uint64_t seed = 0;
  std::string output_dir;
  int threads = 0;
  std::string backend = "fast";
  int repeat = 1;
  int warmup = 0;
};

constexpr int kTopK = 5;
constexpr int64_t kMaxTopKRows = 4;

Result<Tensor> ReadTensorFile(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".npy") return ReadNpy(path);
  if (ext == ".pb") return onnxio::ReadTensorProtoFile(path);
  return InvalidArgument("--input file '{}': expected a .npy or .pb (TensorProto) file", path);
}

// Standard normal floats, integers in [0, 10), or random booleans.
Result<Tensor> RandomTensor(const ir::Value& v, uint64_t seed) {
  if (!v.shape_is_static())
    return InvalidArgument("input '{}' has no static shape; give --input-shape", v.name);
  Tensor t(v.dtype, v.shape);
  std::mt19937_64 rng(seed);
  const int64_t n = t.numel();
  bool ok = VisitDType(v.dtype, [&]<typename T>() {
    T* d = t.data<T>();
    if constexpr (std::is_same_v<T, bool>) {
      for (int64_t i = 0; i < n; ++i) d[i] = (rng() & 1) != 0;
    } else if constexpr (std::is_floating_point_v<T>) {
      std::normal_distribution<double> dist(0.0, 1.0);
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(dist(rng));
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(rng() % 10);
    }
  });
  if (!ok)
    return Unimplemented("--random: cannot generate {} values for input '{}'", DTypeName(v.dtype),
                         v.name);
  return t;
}

void PrintOutput(const std::string& name, const Tensor& t) {
  fmt::print("output {}: {}", name, t.Describe());
  if (t.numel() == 0 || !VisitDType(t.dtype(), []<typename>() {})) {
    fmt::print("\n");
    return;
  }
  std::vector<double> v = t.ToVector<double>();
  auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  fmt::print("  min {:.6g}  max {:.6g}  mean {:.6g}\n", *mn, *mx, mean);
  if (t.rank() != 2 || t.dim(1) < 2) return;
  const int64_t rows = t.dim(0), cols = t.dim(1);
  for (int64_t r = 0; r < std::min(rows, kMaxTopKRows); ++r) {
    std::vector<int64_t> idx(static_cast<size_t>(cols));
    std::iota(idx.begin(), idx.end(), 0);
    const double* row = v.data() + r * cols;
    const int k = static_cast<int>(std::min<int64_t>(kTopK, cols));
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [row](int64_t a, int64_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    std::string top;
    for (int i = 0; i < k; ++i)
      top += fmt::format("{}{} ({:.4g})", i ? ", " : "", idx[i], row[idx[i]]);
    fmt::print("  top-{} [row {}]: {}\n", k, r, top);
  }
  if (rows > kMaxTopKRows) fmt::print("  ({} more rows)\n", rows - kMaxTopKRows);
}

// Writes every output or none: on a failure, files already written are removed.
Status WriteOutputs(const std::string& dir, const ir::Graph& g, const std::vector<Tensor>& outs) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("-o {}: cannot create directory: {}", dir, ec.message());
  std::vector<std::string> written;
  std::set<std::string> used;
  for (size_t i = 0; i < outs.size(); ++i) {
    std::string base = SanitizeFileName(g.outputs[i]->name);
    if (!used.insert(base).second) base += "_" + std::to_string(i);
    const std::string path = (fs::path(dir) / (base + ".npy")).string();
    Status st = WriteNpy(outs[i], path);
    if (!st.ok()) {
      for (const std::string& p : written) fs::remove(p, ec);
      return st;
    }
    written.push_back(path);
  }
  for (const std::string& p : written) fmt::print("wrote {}\n", p);
  return Status::Ok();
}

Status RunRun(const RunArgs& a) {
  WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
  std::map<std::string, Tensor> given;
  for (const std::string& spec : a.inputs) {
    WBS_ASSIGN_OR_RETURN(auto nv, SplitNameValue("--input", spec));
    WBS_ASSIGN_OR_RETURN(Tensor t, ReadTensorFile(nv.second));
    if (!given.emplace(nv.first, t).second)
      return InvalidArgument("--input: input '{}' is given twice", nv.first);
  }
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, LoadModel(a.model, shapes));
  // A file fixes the dims --input-shape leaves open (e.g. a symbolic batch):
  // import again with the files' shapes, which the importer checks against
  // the model's declared dims.
  bool reimport = false;
  for (const auto& [name, t] : given) {
    const ir::Value* in = nullptr;
    for (const ir::Value* v : graph->inputs)
      if (v->name == name) in = v;
    if (!in) {
      std::string names;
      for (const ir::Value* v : graph->inputs) names += (names.empty() ? "" : ", ") + v->name;
      return InvalidArgument("--input names '{}', which is not a model input (inputs: {})", name,
                             names);
    }
    if (in->shape != t.shape() && !shapes.count(name)) {
      shapes[name] = t.shape();
      reimport = true;
    }
  }
  if (reimport) {
    WBS_ASSIGN_OR_RETURN(graph, LoadModel(a.model, shapes));
  }

  std::vector<Tensor> inputs;
  for (size_t i = 0; i < graph->inputs.size(); ++i) {
    const ir::Value& in = *graph->inputs[i];
    auto it = given.find(in.name);
    if (it != given.end()) {
      if (it->second.dtype() != in.dtype || it->second.shape() != in.shape)
        return InvalidArgument("--input {}: file holds {}, model input is {}{}", in.name,
                               it->second.Describe(), DTypeName(in.dtype), ShapeToString(in.shape));
      inputs.push_back(it->second);
      given.erase(it);
      continue;
    }
    if (!a.random)
      return InvalidArgument(
          "model input '{}' {}{} has no value; give --input {}=FILE.npy or --random", in.name,
          DTypeName(in.dtype), ShapeToString(in.shape), in.name);
    WBS_ASSIGN_OR_RETURN(Tensor t, RandomTensor(in, a.seed + i));
    inputs.push_back(std::move(t));
  }

  runtime::SessionOptions options;
  options.backend =
      a.backend == "reference" ? runtime::Backend::kReference : runtime::Backend::kFast;
  options.num_threads = a.threads > 0
                            ? a.threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.input_shapes = shapes;
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session,
                       runtime::Session::Create(*graph, options));
  // -v: which implementation runs each node (oneDNN, block-sparse, ref).
  // (NodeImplementations follows the session graph's node order.)
  const std::vector<std::string> impls = session->NodeImplementations();
  size_t i = 0;
  for (const auto& n : session->graph().nodes())
    if (i < impls.size()) WBS_LOG_INFO("node '{}' {}", n->name, impls[i++]);

  for (int i = 0; i < a.warmup; ++i) WBS_RETURN_IF_ERROR(session->Run(inputs).status());
  std::vector<double> ms;
  std::vector<Tensor> outputs;
  for (int i = 0; i < a.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    WBS_ASSIGN_OR_RETURN(outputs, session->Run(inputs));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }

  for (size_t i = 0; i < outputs.size(); ++i)
    PrintOutput(session->graph().outputs[i]->name, outputs[i]);
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2
                            ? sorted[sorted.size() / 2]
                            : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  fmt::print("latency: median {:.3f} ms, min {:.3f} ms over {} run{} ({} backend, {} thread{})\n",
             median, sorted.front(), ms.size(), ms.size() == 1 ? "" : "s",
             runtime::BackendName(options.backend), options.num_threads,
             options.num_threads == 1 ? "" : "s");
  if (!a.output_dir.empty())
    WBS_RETURN_IF_ERROR(WriteOutputs(a.output_dir, session->graph(), outputs));
  return Status::Ok();
}

}  // namespace

Command AddRunCommand(CLI::App& parent) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* app = parent.add_subcommand("run", "Run a model on given or random inputs and time it");
  app->add_option("model", args->model, "ONNX model")->required()->type_name("MODEL.onnx");
  app->add_option("--input", args->inputs,
                  "Input value NAME=FILE, .npy or .pb TensorProto (repeatable)")
      ->type_name("NAME=FILE")
      ->allow_extra_args(false);
  AddInputShapeOption(*app, args->input_shapes);
  app->add_flag("--random", args->random, "Fill inputs not given with --input with random values");
  app->add_option("--seed", args->seed, "Seed for --random")->capture_default_str();
  app->add_option("-o,--output-dir", args->output_dir, "Write each output as DIR/<name>.npy")
      ->type_name("DIR");
  app->add_option("--threads", args->threads, "Threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--backend", args->backend, "fast (oneDNN, wbs kernels) or reference (naive)")
      ->capture_default_str()
      ->check(CLI::IsMember({"fast", "reference"}));
  app->add_option("--repeat", args->repeat, "Timed runs; the median latency is reported")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--warmup", args->warmup, "Untimed runs before the timed ones")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->footer(
      "Examples:\n"
      "  wbs run out/resnet50.onnx --random --threads 2 --warmup 1 --repeat 10\n"
      "  wbs run model.onnx --input input=x.npy -o out/ --backend reference\n"
      "  wbs run model.onnx --random --input-shape input=8,3,224,224");
  return {app, [args] { return RunRun(*args); }};
}

}  // namespace wbs::cli

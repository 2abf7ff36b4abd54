// wbs simulate: runs an AIE program (wbs compile's program.bin or
// program.txt) on the AIE2 simulator (sim/, docs/SIMULATOR.md): functional
// execution with fault checks, the event-driven time model, a per-layer
// report against the static estimate, an optional Perfetto trace. --check
// compares the network output read back from DDR bit for bit with the CPU
// int8 runtime (runtime::Session on the int8 model).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "aie/program.h"
#include "aie/target.h"
#include "cli/command.h"
#include "core/logging.h"
#include "core/npy.h"
#include "onnx/file_io.h"
#include "runtime/session.h"
#include "sim/simulator.h"

namespace wbs::cli {

// cmd_compile.cc: the in-process int8 zoo model of `wbs compile --zoo`.
Result<std::unique_ptr<ir::Graph>> BuildInt8ZooModel(const std::string& name, double sparsity,
                                                     uint64_t seed);

namespace {

struct SimulateArgs {
  std::string program, model, zoo, input, target, trace, estimate;
  double zoo_sparsity = 0;
  uint64_t zoo_seed = 1;
  std::vector<std::string> report, compare;
  bool check = false, reference = false, timing_only = false;
  uint64_t seed = 1;
};

Result<aie::Program> LoadProgram(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return NotFound("{}: cannot open the program", path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  uint32_t magic = 0;
  if (bytes.size() >= 4) std::memcpy(&magic, bytes.data(), 4);
  if (magic == aie::kProgramMagic) return aie::Program::FromBinary(bytes, path);
  return aie::Program::FromText(std::string(bytes.begin(), bytes.end()), path);
}

// The compiler's per-layer estimate from wbs compile's layers.tsv (column
// time_us, by layer name), in cycles; the layers must be the program's.
Result<std::vector<double>> LoadLayerEstimates(const std::string& path, const aie::Program& prog,
                                               const aie::Target& t) {
  std::ifstream f(path);
  if (!f) return NotFound("{}: cannot open the layer table", path);
  std::string line;
  int name_col = -1, time_col = -1;
  std::map<std::string, double> us;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) cols.push_back(c);
    if (time_col < 0) {
      for (size_t i = 0; i < cols.size(); ++i) {
        if (cols[i] == "layer") name_col = static_cast<int>(i);
        if (cols[i] == "time_us") time_col = static_cast<int>(i);
      }
      if (name_col < 0 || time_col < 0)
        return InvalidArgument("{}:{}: header without 'layer' and 'time_us' columns", path, lineno);
      continue;
    }
    if (static_cast<int>(cols.size()) <= std::max(name_col, time_col))
      return InvalidArgument("{}:{}: {} columns, expected more than {}", path, lineno, cols.size(),
                             std::max(name_col, time_col));
    char* end = nullptr;
    const double v = std::strtod(cols[static_cast<size_t>(time_col)].c_str(), &end);
    if (end == cols[static_cast<size_t>(time_col)].c_str())
      return InvalidArgument("{}:{}: time_us '{}' is not a number", path, lineno,
                             cols[static_cast<size_t>(time_col)]);
    us[cols[static_cast<size_t>(name_col)]] += v;
  }
  std::vector<double> cycles;
  for (const aie::LayerInfo& l : prog.layers) {
    auto it = us.find(l.name);
    if (it == us.end())
      return InvalidArgument(
          "{}: no row for the program's layer '{}' (a table of another program?)", path, l.name);
    cycles.push_back(it->second * 1e3 * t.clock_ghz);  // us at clock_ghz GHz
  }
  if (us.size() != prog.layers.size())
    return InvalidArgument("{}: {} layers, the program has {}", path, us.size(),
                           prog.layers.size());
  return cycles;
}

// ONNX QuantizeLinear (docs/int8.md §2): round half to even of an f32 division.
uint8_t QuantizeOne(float x, float s, int32_t z, aie::OutType t) {
  const float q = std::nearbyint(x / s) + static_cast<float>(z);
  const float lo = t == aie::OutType::kS8 ? -128.f : 0.f,
              hi = t == aie::OutType::kS8 ? 127.f : 255.f;
  return static_cast<uint8_t>(static_cast<int32_t>(std::min(hi, std::max(lo, q))) & 0xff);
}

// The output symbol's bytes as the f32 the int8 runtime returns: s32
// accumulators times the per-channel scale (docs/int8.md §3 "Dequantized
// output"); 8-bit outputs dequantized as DequantizeLinear.
std::vector<float> Dequantize(const aie::DdrSymbol& y, const std::vector<uint8_t>& b) {
  std::vector<float> out;
  if (y.type == aie::OutType::kS32) {
    const int64_t n = static_cast<int64_t>(b.size()) / 4;
    const int64_t c = y.shape.size() >= 2 ? y.shape[1] : n;
    const int64_t plane = c > 0 ? n / c : 1;
    for (int64_t i = 0; i < n; ++i) {
      int32_t acc = 0;
      std::memcpy(&acc, &b[static_cast<size_t>(4 * i)], 4);
      const size_t ch =
          static_cast<size_t>((i / std::max<int64_t>(1, plane)) % std::max<int64_t>(1, c));
      const float s = ch < y.scales.size() ? y.scales[ch] : y.scale;
      out.push_back(static_cast<float>(acc) * s);
    }
  } else {
    for (uint8_t v : b) {
      const int32_t q = y.type == aie::OutType::kS8 ? static_cast<int8_t>(v) : v;
      out.push_back(static_cast<float>(q - y.zero_point) * y.scale);
    }
  }
  return out;
}

Status RunSimulate(const SimulateArgs& a) {
  WBS_ASSIGN_OR_RETURN(aie::Program prog, LoadProgram(a.program));
  WBS_ASSIGN_OR_RETURN(aie::Target target,
                       aie::Target::Load(a.target.empty() ? prog.target : a.target));
  const aie::DdrSymbol* in_sym = nullptr;
  std::vector<const aie::DdrSymbol*> outs;
  for (const aie::DdrSymbol& y : prog.symbols) {
    if (y.kind == aie::DdrSymbol::Kind::kInput && !in_sym) in_sym = &y;
    if (y.kind == aie::DdrSymbol::Kind::kOutput) outs.push_back(&y);
  }
  if (!in_sym) return InvalidArgument("{}: the program has no input symbol", a.program);
  // The f32 input (the model's input): from --input, else seeded normal values.
  Tensor x;
  if (!a.input.empty()) {
    WBS_ASSIGN_OR_RETURN(x, ReadNpy(a.input));
    if (x.dtype() != DType::kF32)
      return InvalidArgument("{}: expected an f32 array, got {}", a.input, x.Describe());
    int64_t n = 1;
    for (int64_t d : in_sym->shape) n *= d;
    if (x.numel() != n)
      return InvalidArgument("{}: {} elements, the program's input {} has {}", a.input, x.numel(),
                             in_sym->name, n);
  } else {
    Shape shape(in_sym->shape.begin(), in_sym->shape.end());
    x = Tensor(DType::kF32, shape);
    std::mt19937_64 rng(a.seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  }
  std::vector<uint8_t> qx(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i)
    qx[static_cast<size_t>(i)] =
        QuantizeOne(x.data<float>()[i], in_sym->scale, in_sym->zero_point, in_sym->type);

  if (a.check && a.model.empty() == a.zoo.empty())
    return InvalidArgument(
        "--check needs --model (the int8 model the program was compiled from) or --zoo NAME "
        "(the program came from wbs compile --zoo NAME, same --sparsity and --zoo-seed)");
  if (a.check && a.timing_only)
    return InvalidArgument("--check needs the functional run (drop --timing-only)");
  sim::SimOptions sim_options;
  sim_options.functional = !a.timing_only;
  WBS_ASSIGN_OR_RETURN(sim::Simulator simulator, sim::Simulator::Create(prog, target, sim_options));
  // The estimate: the compiler's time model on this program, or --estimate
  // (a layers.tsv of wbs compile).
  const std::string& estimate = a.estimate;
  if (!estimate.empty()) {
    WBS_ASSIGN_OR_RETURN(std::vector<double> est, LoadLayerEstimates(estimate, prog, target));
    WBS_RETURN_IF_ERROR(simulator.SetLayerEstimates(est, estimate));
  }
  WBS_RETURN_IF_ERROR(simulator.SetInput(in_sym->name, qx));
  const auto t0 = std::chrono::steady_clock::now();
  WBS_RETURN_IF_ERROR(simulator.Run().WithContext(a.program));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string report = simulator.Report();
  fmt::print("{}", report);
  fmt::print("simulated in {:.2f} s (host)\n", secs);
  if (!a.trace.empty())
    WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.trace, simulator.TraceJson()));
  // Reports are written after --check so report.json can say whether the
  // output was bit-exact (null: not checked).
  auto write_reports = [&](const nlohmann::json& bit_exact, int64_t mismatches) -> Status {
    for (const std::string& path : a.report) {
      if (std::filesystem::path(path).extension() == ".json") {
        nlohmann::json j = nlohmann::json::parse(simulator.ReportJson());
        j["program"] = a.program;
        j["model"] = a.zoo.empty() ? a.model : "zoo:" + a.zoo;
        j["host_seconds"] = secs;
        j["bit_exact"] = bit_exact;
        j["mismatches"] = mismatches;
        WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(path, j.dump(1) + "\n"));
      } else {
        WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(path, report));
      }
    }
    return Status::Ok();
  };
  if (!a.check) return write_reports(nullptr, 0);
  std::unique_ptr<ir::Graph> graph;
  if (!a.zoo.empty()) {
    WBS_ASSIGN_OR_RETURN(graph, BuildInt8ZooModel(a.zoo, a.zoo_sparsity, a.zoo_seed));
  } else {
    WBS_ASSIGN_OR_RETURN(graph, LoadModel(a.model, {}));
  }
  // --compare: intermediate values become extra graph outputs (after the
  // model's own), compared with the DDR symbol of the same name.
  const size_t model_outputs = graph->outputs.size();
  for (const std::string& name : a.compare) {
    ir::Value* v = graph->FindValue(name);
    if (!v) return NotFound("--compare: the model has no value '{}'", name);
    graph->outputs.push_back(v);
  }
  runtime::SessionOptions so;
  if (a.reference) so.backend = runtime::Backend::kReference;
  so.num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!graph->inputs.empty()) so.input_shapes[graph->inputs[0]->name] = x.shape();
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<runtime::Session> session,
                       runtime::Session::Create(*graph, so));
  WBS_ASSIGN_OR_RETURN(std::vector<Tensor> ref, session->Run({x}));
  for (size_t k = 0; k < a.compare.size(); ++k) {
    const Tensor& r = ref[model_outputs + k];
    WBS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, simulator.ReadSymbol(a.compare[k]));
    if (r.dtype() != DType::kU8 && r.dtype() != DType::kI8)
      return FailedPrecondition("--compare {}: the runtime value is {}, not 8-bit", a.compare[k],
                                r.Describe());
    int64_t diff = 0, first = -1;
    for (int64_t i = 0; i < std::min<int64_t>(r.numel(), static_cast<int64_t>(bytes.size())); ++i)
      if (bytes[static_cast<size_t>(i)] != static_cast<const uint8_t*>(r.raw())[i]) {
        if (first < 0) first = i;
        ++diff;
      }
    // A symbol whose DDR bytes a later layer reused differs for that reason.
    fmt::print("compare {}: {} of {} bytes differ{}\n", a.compare[k], diff, r.numel(),
               first >= 0 ? fmt::format(" (first at {}: simulator {} runtime {})", first,
                                        bytes[static_cast<size_t>(first)],
                                        static_cast<const uint8_t*>(r.raw())[first])
                          : std::string());
  }
  ref.resize(model_outputs);
  if (ref.size() != outs.size())
    return FailedPrecondition("--check: the model has {} outputs, the program {}", ref.size(),
                              outs.size());
  int64_t mismatches = 0;
  for (size_t o = 0; o < outs.size(); ++o) {
    WBS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, simulator.ReadSymbol(outs[o]->name));
    const Tensor& r = ref[o];
    std::vector<float> got = Dequantize(*outs[o], bytes);
    if (r.dtype() == DType::kU8 || r.dtype() == DType::kI8) {
      // 8-bit runtime output: compare the bytes.
      if (static_cast<int64_t>(bytes.size()) != r.numel())
        return FailedPrecondition("--check: output {} has {} bytes, the runtime {}", outs[o]->name,
                                  bytes.size(), r.numel());
      for (int64_t i = 0; i < r.numel(); ++i)
        if (bytes[static_cast<size_t>(i)] != static_cast<const uint8_t*>(r.raw())[i]) ++mismatches;
      continue;
    }
    if (r.dtype() != DType::kF32 || r.numel() != static_cast<int64_t>(got.size()))
      return FailedPrecondition("--check: output {} is {}, the runtime's {}", outs[o]->name,
                                got.size(), r.Describe());
    int64_t first = -1;
    for (int64_t i = 0; i < r.numel(); ++i) {
      const float g = got[static_cast<size_t>(i)], e = r.data<float>()[i];
      if (std::memcmp(&g, &e, 4) != 0) {
        if (first < 0) first = i;
        ++mismatches;
      }
    }
    if (first >= 0)
      fmt::print("output {}: first mismatch at {}: simulator {} runtime {}\n", outs[o]->name, first,
                 got[static_cast<size_t>(first)], r.data<float>()[first]);
  }
  WBS_RETURN_IF_ERROR(write_reports(mismatches == 0, mismatches));
  if (mismatches)
    return FailedPrecondition("--check: {} output values differ from the CPU int8 runtime",
                              mismatches);
  fmt::print("check: output bit-exact with the CPU int8 runtime\n");
  return Status::Ok();
}

}  // namespace

Command AddSimulateCommand(CLI::App& parent) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* app = parent.add_subcommand(
      "simulate", "Run an AIE program on the AIE2 simulator (bit-exact, timed)");
  app->add_option("program", args->program, "program.bin or program.txt (wbs compile)")->required();
  app->add_option("--model", args->model,
                  "the int8 model the program was compiled from (for --check)");
  app->add_option(
      "--zoo", args->zoo,
      "for --check: rebuild the int8 model of `wbs compile --zoo NAME` instead of --model");
  app->add_option("--sparsity", args->zoo_sparsity, "with --zoo: as given to wbs compile")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--zoo-seed", args->zoo_seed, "with --zoo: wbs compile's --seed (default 1)");
  app->add_option("--input", args->input, "f32 input .npy (default: seeded normal values)");
  app->add_option("--target", args->target, "target preset or config (default: the program's)");
  app->add_option("--compare", args->compare,
                  "with --check: also compare this intermediate value's DDR symbol (repeatable; "
                  "a symbol whose bytes a later layer reused differs for that reason)");
  app->add_option("--trace", args->trace, "write a Chrome/Perfetto trace JSON");
  app->add_option("--report", args->report,
                  "write the per-layer report (repeatable; a .json path gets JSON with bit_exact)");
  app->add_option("--estimate", args->estimate,
                  "per-layer estimate from a wbs compile layers.tsv (default: the compiler's time "
                  "model run on the program)");
  app->add_option("--seed", args->seed, "seed of the default input");
  app->add_flag("--reference", args->reference,
                "with --check: compare with the runtime's reference backend (naive operators)");
  app->add_flag("--check", args->check, "compare the output bit for bit with the CPU int8 runtime");
  app->add_flag("--timing-only", args->timing_only,
                "time the program without moving bytes or computing (fast; no --check)");
  return {app, [args] { return RunSimulate(*args); }};
}

}  // namespace wbs::cli

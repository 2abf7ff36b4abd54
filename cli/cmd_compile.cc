// wbs compile: the AIE compiler (aie/passes/, docs/AIE_COMPILER.md). Input: a
// quantized model (wbs quantize's .int8.onnx), or --zoo NAME to build one in
// process (seeded weights, optional L2 block masks, PTQ on random data).
// Writes program.txt / program.bin (docs/AIE_PROGRAM.md), memory_map.txt,
// layers.tsv (per layer: subvolume, split, bytes per level, MACs, time,
// roofline, efficiency) and trace.json (Chrome/Perfetto) into -o DIR.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <random>
#include <string_view>

#include "aie/passes/compiler.h"
#include "cli/command.h"
#include "core/logging.h"
#include "ir/op_schema.h"
#include "ir/pass.h"
#include "onnx/file_io.h"
#include "quant/ptq.h"
#include "sparse/sparsify.h"
#include "zoo/zoo.h"

namespace wbs::cli {

// Batch 1 and static shapes everywhere (the compiler plans exact sizes).
Status PrepareForAie(ir::Graph& g) {
  for (ir::Value* v : g.inputs)
    if (v->has_shape && !v->shape.empty() && v->shape[0] < 0) v->shape[0] = 1;
  return ir::InferShapes(g);
}

namespace {

// Wall time per phase of a command, logged at -v (info): where a compile's
// time goes (zoo build, masks, calibration, the compiler, each output file).
class PhaseClock {
 public:
  // Logs the time since the previous Mark (or construction) as `phase`.
  void Mark(std::string_view phase) {
    const auto now = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(now - last_).count();
    WBS_LOG_INFO("compile: {:<22} {:7.3f} s", phase, s);
    last_ = now;
  }
  double Total() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

Result<std::unique_ptr<ir::Graph>> BuildInt8ZooModelTimed(const std::string& name, double sparsity, uint64_t seed,
                                                          PhaseClock* clock) {
  auto mark = [clock](std::string_view phase) {
    if (clock != nullptr) clock->Mark(phase);
  };
  zoo::ZooOptions zo;
  zo.seed = seed;
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> g, zoo::BuildModel(name, zo));
  mark("zoo build");
  if (sparsity > 0) {
    sparse::SparsifyOptions so;
    so.sparsity = sparsity;
    so.score = sparse::Score::kL2;
    WBS_ASSIGN_OR_RETURN(sparse::SparsifyReport rep, sparse::Sparsify(*g, so));
    (void)rep;
    mark("block masks (L2)");
  }
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> prepared, quant::PrepareFloatGraph(*g));
  mark("ptq: prepare float");
  // Random calibration images (seeded): the compiler's output does not depend
  // on the scales beyond the requantization integers.
  const ir::Value* in = prepared->inputs.at(0);
  Shape shape = in->shape;
  if (!shape.empty() && shape[0] < 0) shape[0] = 1;
  Tensor x(DType::kF32, shape);
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  quant::PtqOptions po;
  WBS_ASSIGN_OR_RETURN(quant::Calibration cal, quant::Calibrate(*prepared, {x}, po));
  mark("ptq: calibration");
  quant::PtqReport report;
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> q, quant::BuildQuantizedGraph(*prepared, cal, po, &report));
  mark("ptq: quantize graph");
  WBS_RETURN_IF_ERROR(PrepareForAie(*q));
  mark("shape inference");
  return q;
}

}  // namespace

Result<std::unique_ptr<ir::Graph>> BuildInt8ZooModel(const std::string& name, double sparsity, uint64_t seed) {
  return BuildInt8ZooModelTimed(name, sparsity, seed, nullptr);
}

namespace {

struct CompileArgs {
  std::string model, zoo, target = "paper-4x4", out, print_after;
  double sparsity = 0.0, efficiency = 0.0;
  bool no_resident = false;
  bool partial_resident = false;
  std::string sibling_fusion = "trial";
  uint64_t seed = 1;
  bool check = false;
};

Status RunCompile(const CompileArgs& a) {
  PhaseClock clock;
  std::unique_ptr<ir::Graph> graph;
  if (!a.zoo.empty()) {
    WBS_ASSIGN_OR_RETURN(graph, BuildInt8ZooModelTimed(a.zoo, a.sparsity, a.seed, &clock));
  } else {
    WBS_ASSIGN_OR_RETURN(graph, LoadModel(a.model, {}));
    // A QDQ file (wbs quantize -o) imports as f32 ops between Quantize/
    // DequantizeLinear pairs; the compiler needs the integer ops that
    // quant::BuildQuantizedGraph builds in process, which lower-qdq rebuilds
    // (the same first passes runtime::Session runs).
    ir::PassManager pm;
    pm.Add(ir::CreateLowerQdqPass());
    pm.Add(ir::CreateRemoveIdentityPass());
    pm.Add(ir::CreateDeadCodeEliminationPass());
    WBS_RETURN_IF_ERROR(pm.Run(*graph).WithContext(a.model));
    WBS_RETURN_IF_ERROR(PrepareForAie(*graph));
    clock.Mark("load model");
  }
  aie::CompileState s;
  WBS_ASSIGN_OR_RETURN(s.target, aie::Target::Load(a.target));
  s.options.mac_efficiency = a.efficiency;
  s.options.resident = !a.no_resident;
  s.options.resident_partial = a.partial_resident;
  s.options.hfuse = a.sibling_fusion != "none";
  s.options.try_hfuse = a.sibling_fusion == "trial";
  s.graph = graph.get();
  const auto t0 = std::chrono::steady_clock::now();
  std::string printed;
  WBS_RETURN_IF_ERROR(aie::Compile(s, a.print_after, &printed));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  clock.Mark("compile");
  if (!printed.empty()) fmt::print("{}", printed);
  if (a.check) {
    WBS_RETURN_IF_ERROR(aie::CheckProgram(s));
    clock.Mark("check");
  }
  if (!a.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    if (ec) return IoError("{}: cannot create directory: {}", a.out, ec.message());
    // program.bin is built and written on a second thread beside the text
    // files (each is ~45 MB on ResNet-50; the two take about the same time).
    double bin_secs = 0;
    std::future<Status> bin_written = std::async(std::launch::async, [&s, &a, &bin_secs] {
      const auto b0 = std::chrono::steady_clock::now();
      const std::vector<uint8_t> bin = s.program.ToBinary();
      Status st = onnxio::WriteFileAtomically(a.out + "/program.bin", std::string(bin.begin(), bin.end()));
      bin_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count();
      return st;
    });
    Status text_written = [&]() -> Status {
      WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.out + "/program.txt", s.program.ToText(true)));
      clock.Mark("write program.txt");
      WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.out + "/memory_map.txt", aie::MemoryMap(s)));
      clock.Mark("write memory_map.txt");
      WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.out + "/layers.tsv", aie::LayerTable(s)));
      clock.Mark("write layers.tsv");
      WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(a.out + "/trace.json", aie::TraceJson(s)));
      clock.Mark("write trace.json");
      return Status::Ok();
    }();
    const Status bin_status = bin_written.get();
    WBS_RETURN_IF_ERROR(text_written);
    WBS_RETURN_IF_ERROR(bin_status);
    WBS_LOG_INFO("compile: {:<22} {:7.3f} s (beside the text files)", "write program.bin", bin_secs);
    clock.Mark("wait for program.bin");
  }
  WBS_LOG_INFO("compile: {:<22} {:7.3f} s", "total", clock.Total());
  int64_t macs = 0, dense = 0;
  for (const auto& l : s.layers) macs += l.macs, dense += l.macs_dense;
  fmt::print("{} on {}: {} layers, {} blocks, {} instructions; MACs {} dense / {} effective; estimate {:.4f} ms, "
             "roofline {:.4f} ms (efficiency {:.3f}), ideal {:.4f} ms (compute {:.4f}, DDR read {:.4f}); "
             "compiled in {:.2f} s{}\n",
             a.zoo.empty() ? a.model : a.zoo, s.target.name, s.layers.size(), s.program.blocks.size(),
             s.program.instruction_count(), dense, macs, s.total_s * 1e3, s.bound_s * 1e3,
             s.total_s > 0 ? s.bound_s / s.total_s : 0.0, s.ideal.total_s * 1e3, s.ideal.compute_s * 1e3,
             s.ideal.read_s * 1e3, secs, a.check ? "; invariants OK" : "");
  return Status::Ok();
}

}  // namespace

Command AddCompileCommand(CLI::App& parent) {
  auto a = std::make_shared<CompileArgs>();
  CLI::App* app = parent.add_subcommand("compile", "Compile a quantized model for an AIE array (program, memory map, time estimate)");
  app->add_option("model", a->model, "Quantized model (.int8.onnx from wbs quantize)")->type_name("FILE");
  app->add_option("--zoo", a->zoo, "Build a zoo model in process instead (seeded weights, PTQ on random data)");
  app->add_option("--sparsity", a->sparsity, "With --zoo: fraction of 8x8 blocks zeroed (L2 score)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--seed", a->seed, "With --zoo: weight and calibration seed");
  app->add_option("--target", a->target, "AIE target config or preset name (default paper-4x4)");
  app->add_option("-o,--out", a->out, "Output directory (program.txt, program.bin, memory_map.txt, layers.tsv, trace.json)");
  app->add_option("--print-after", a->print_after, "Print the state after this pass (schedule, subvolume, split, balance, compact, memplan, fusion, codegen, time)");
  app->add_option("--efficiency", a->efficiency, "Kernel MAC efficiency (default: the target's)")->check(CLI::Range(0.0, 1.0));
  app->add_flag("--no-resident", a->no_resident, "Every activation through DDR (no memtile-resident tensors between layers)");
  app->add_flag("--partial-resident", a->partial_resident,
                "Keep tensors resident for the consumers that can read them when others need DDR "
                "in every trial compile (the default tries it once, on the kept program; this is "
                "one more whole compile: about twice the compile time)");
  app->add_option("--sibling-fusion", a->sibling_fusion,
                  "Sibling convs on one input (Inception's 1x1 branches) as one layer: trial (per group, "
                  "the faster; default), all, none")
      ->check(CLI::IsMember({"trial", "all", "none"}));
  app->add_flag("--check", a->check, "Run the invariant checker on the program (slow on large models)");
  app->footer("Docs: docs/AIE_COMPILER.md, docs/AIE_PROGRAM.md.\n\nExamples:\n"
              "  wbs compile model.int8.onnx --target configs/aie/paper-4x4.json -o out/\n"
              "  wbs compile --zoo resnet50 --sparsity 0.5 --target paper-8x8 --print-after=split");
  app->callback([a] {
    if (a->model.empty() == a->zoo.empty()) throw CLI::RequiredError("compile: MODEL or --zoo NAME (exactly one)");
  });
  return {app, [a] { return RunCompile(*a); }};
}

}  // namespace wbs::cli

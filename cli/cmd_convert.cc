// wbs convert: ONNX -> IR -> optional rewrite passes -> ONNX.
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "cli/command.h"
#include "ir/pass.h"
#include "onnx/model_io.h"
#include "runtime/session.h"

namespace wbs::cli {

namespace {

struct ConvertArgs {
  std::string input;
  std::string output;
  std::vector<std::string> input_shapes;
  bool fold_bn = false;
  bool fuse = false;
  bool optimize = false;
  std::string print_after;
};

Status RunConvert(const ConvertArgs& a) {
  WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, LoadModel(a.input, shapes));
  const size_t nodes_before = graph->num_nodes();

  ir::PassManager pm;
  std::unique_ptr<ir::NodeEvaluator> evaluator;
  if (a.optimize) {
    evaluator = runtime::CreateReferenceEvaluator();
    ir::AddDefaultPasses(pm, evaluator.get(), /*fold_bn=*/true, /*fuse_activations=*/true);
  } else {
    if (a.fold_bn) pm.Add(ir::CreateFoldBatchNormPass());
    if (a.fuse) {
      pm.Add(ir::CreateFuseResidualPass());
      pm.Add(ir::CreateFuseActivationPass());
    }
    // Folding leaves BN constants unused; DCE drops them from the file.
    if (a.fold_bn || a.fuse) pm.Add(ir::CreateDeadCodeEliminationPass());
  }
  const std::vector<std::string> names = pm.PassNames();
  if (!a.print_after.empty()) {
    if (a.print_after != "all" &&
        std::find(names.begin(), names.end(), a.print_after) == names.end()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      return InvalidArgument("--print-after={}: no such pass in this pipeline (passes: {})",
                             a.print_after,
                             list.empty() ? "none; add --fold-bn, --fuse or --optimize" : list);
    }
    pm.SetPrintAfter(a.print_after, [](const std::string& pass, const ir::Graph& g) {
      fmt::print("// ---- after {} ----\n{}\n", pass, ir::PrintGraph(g));
    });
  }
  WBS_RETURN_IF_ERROR(pm.Run(*graph).WithContext(a.input));

  WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_RETURN_IF_ERROR(onnxio::ExportModel(*graph, a.output));
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  fmt::print("wrote {}: {} -> {} nodes{}{}\n", a.output, nodes_before, graph->num_nodes(),
             list.empty() ? "" : " after passes ", list);
  return Status::Ok();
}

}  // namespace

Command AddConvertCommand(CLI::App& parent) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* app =
      parent.add_subcommand("convert", "Import an ONNX model, apply IR passes, export ONNX");
  app->add_option("input", args->input, "Input ONNX model")->required()->type_name("IN.onnx");
  app->add_option("-o,--output", args->output, "Output ONNX model (written atomically)")
      ->required()
      ->type_name("OUT.onnx");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_flag("--fold-bn", args->fold_bn, "Fold BatchNormalization into the preceding Conv/Gemm");
  app->add_flag("--fuse", args->fuse,
                "Mark residual Adds and activations fused into Conv/Gemm (exported again as "
                "separate nodes)");
  app->add_flag("--optimize", args->optimize,
                "Run the runtime's default pipeline: remove-identity, constant-folding, "
                "fold-batchnorm, fuse-residual, fuse-activation, dce")
      ->excludes("--fold-bn")
      ->excludes("--fuse");
  app->add_option("--print-after", args->print_after,
                  "Print the graph after the named pass, or after every pass with 'all'")
      ->type_name("PASS|all");
  app->footer(
      "Passes: fold-batchnorm (--fold-bn), fuse-residual and fuse-activation (--fuse), then dce;\n"
      "--optimize runs the full default pipeline. The graph is verified after every pass.\n\n"
      "Examples:\n"
      "  wbs convert out/resnet50.onnx -o out/resnet50_folded.onnx --fold-bn\n"
      "  wbs convert model.onnx -o opt.onnx --optimize --print-after=all");
  return {app, [args] { return RunConvert(*args); }};
}

}  // namespace wbs::cli

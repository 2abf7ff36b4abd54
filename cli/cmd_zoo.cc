// wbs zoo: writes a zoo model (random weights) as an ONNX file.
#include <fmt/format.h>

#include <memory>

#include "cli/command.h"
#include "onnx/model_io.h"
#include "zoo/model_stats.h"
#include "zoo/zoo.h"

namespace wbs::cli {

namespace {

struct ZooArgs {
  std::string name;
  std::string output;
  int64_t batch = 1;
  uint64_t seed = 0;
  int64_t image_size = 0;
  int64_t num_classes = 0;
  bool list = false;
};

Status ListModels() {
  fmt::print("{:<15} {:>5} {:>7}  {}\n", "model", "input", "classes", "description");
  for (const zoo::ModelInfo& m : zoo::Models()) {
    fmt::print("{:<15} {:>5} {:>7}  {}\n", m.name,
               fmt::format("{}x{}", m.in_channels, m.default_image_size), m.default_num_classes,
               m.summary);
  }
  return Status::Ok();
}

Status RunZoo(const ZooArgs& a) {
  if (a.list) return ListModels();
  zoo::ZooOptions options;
  options.batch = a.batch;
  options.seed = a.seed;
  options.image_size = a.image_size;
  options.num_classes = a.num_classes;
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, zoo::BuildModel(a.name, options));
  WBS_ASSIGN_OR_RETURN(zoo::ModelStats stats, zoo::ComputeModelStats(*graph));
  WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_RETURN_IF_ERROR(onnxio::ExportModel(*graph, a.output));
  const ir::Value* in = graph->inputs.front();
  fmt::print("wrote {}: {} {}{} -> logits, {} nodes, {} parameters, {:.3f} GMAC\n", a.output,
             a.name, DTypeName(in->dtype), ShapeToString(in->shape), graph->num_nodes(),
             WithThousands(stats.num_parameters), static_cast<double>(stats.total_macs) * 1e-9);
  return Status::Ok();
}

}  // namespace

Command AddZooCommand(CLI::App& parent) {
  auto args = std::make_shared<ZooArgs>();
  CLI::App* app = parent.add_subcommand("zoo", "Write a model from the built-in zoo as ONNX");
  app->add_option("name", args->name, "Model name (see --list)")->type_name("NAME");
  app->add_option("-o,--output", args->output, "Output .onnx file (written atomically)")
      ->type_name("FILE");
  app->add_option("--batch", args->batch, "Batch size of the input")->capture_default_str();
  app->add_option("--seed", args->seed, "Seed of the random weights")->capture_default_str();
  app->add_option("--image-size", args->image_size,
                  "Input height and width (default: the model's, e.g. 224)");
  app->add_option("--classes", args->num_classes, "Number of classes (default: the model's)");
  app->add_flag("--list", args->list, "List the models and exit");
  app->footer(
      "Models are torchvision's topologies (resnet18, resnet50, vgg16, inception_v3,\n"
      "mobilenet_v2) plus fmnist_resnet, with seeded random weights.\n\n"
      "Examples:\n"
      "  wbs zoo --list\n"
      "  wbs zoo resnet50 -o out/resnet50.onnx\n"
      "  wbs zoo fmnist_resnet -o out/fmnist.onnx --batch 64 --seed 7");
  // NAME and -o are required unless --list; checked at parse time so a
  // missing one is a usage error (exit code 2).
  app->callback([args] {
    if (args->list) return;
    if (args->name.empty()) throw CLI::RequiredError("zoo: NAME (or --list)");
    if (args->output.empty()) throw CLI::RequiredError("zoo: -o,--output");
  });
  return {app, [args] { return RunZoo(*args); }};
}

}  // namespace wbs::cli

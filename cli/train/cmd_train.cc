// wbs train: dense training of a zoo model or an ONNX file on an image
// dataset (default Fashion-MNIST) with LibTorch; checkpoints every epoch,
// --resume, JSON-lines metrics, data-parallel ranks, ONNX export with BN
// folded.
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
#include "cli/train/train_options.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "onnx/model_io.h"
#include "train/module.h"
#include "train/trainer.h"
#include "zoo/zoo.h"

namespace wbs::cli {

namespace {

struct TrainArgs {
  std::string model;
  std::vector<std::string> input_shapes;
  std::string output;
  TrainingArgs t;  // TrainingArgs' defaults are the dense-training ones
};

// A zoo name, or an ONNX file (its classes must match the data's).
Result<std::unique_ptr<ir::Graph>> LoadTrainModel(const TrainArgs& a, const data::Dataset& d) {
  if (IsOnnxPath(a.model) || std::filesystem::exists(a.model)) {
    WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
    return LoadModel(a.model, shapes);
  }
  zoo::ZooOptions zo;
  zo.batch = 1;
  zo.seed = a.t.seed;
  zo.num_classes = d.num_classes;
  zo.image_size = d.height();
  for (const auto& info : zoo::Models()) {
    if (info.name == a.model && info.in_channels != d.channels()) {
      return InvalidArgument("model '{}' takes {} input channel(s) but data '{}' has {}", a.model,
                             info.in_channels, a.t.data, d.channels());
    }
  }
  return zoo::BuildModel(a.model, zo);
}

Status RunTrain(const TrainArgs& a) {
  if (a.t.quiet) SetProgressEnabled(false);
  WBS_ASSIGN_OR_RETURN(train::TrainOptions o, MakeTrainOptions(a.t, "train"));
  WBS_ASSIGN_OR_RETURN(TrainingData d, LoadTrainingData(a.t, o));
  data::Dataset& train = d.train;
  data::Dataset& test_set = d.test;
  if (!d.test_error.empty() && o.progress) {
    fmt::print(stderr, "wbs train: no test split ({}); validating only\n", d.test_error);
  }

  WBS_ASSIGN_OR_RETURN(auto graph, LoadTrainModel(a, train));
  train::ModuleOptions mo;
  mo.device = o.device;
  WBS_ASSIGN_OR_RETURN(auto module, train::GraphModule::Create(*graph, mo));
  graph.reset();
  if (o.rank == 0 && !a.t.quiet) {
    fmt::print(stderr,
               "wbs train: {} on {} ({} train, {} test), {} epochs, batch {}, {} lr {} {}, "
               "seed {}{}\n",
               a.model, a.t.data, train.size(), test_set.size(), o.epochs, o.batch_size,
               a.t.optimizer, o.lr, a.t.lr_schedule, o.seed,
               o.world_size > 1 ? fmt::format(", {} ranks", o.world_size) : "");
  }
  if (!a.output.empty() && o.rank == 0) WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_ASSIGN_OR_RETURN(auto trainer,
                       train::Trainer::Create(module, std::move(train), std::move(test_set), o));
  WBS_ASSIGN_OR_RETURN(train::TrainResult r, trainer->Run());

  // Every rank reports its checksum, so ranks can be compared (tests/train/ddp_test.sh).
  if (o.world_size > 1) {
    fmt::print("rank {}/{}: parameter checksum {:016x}\n", o.rank, o.world_size, r.checksum);
  }
  if (o.rank == 0) {
    if (!a.output.empty()) {
      WBS_ASSIGN_OR_RETURN(auto out, module->ExportGraph(/*fold_bn=*/true));
      WBS_RETURN_IF_ERROR(onnxio::ExportModel(*out, a.output));
    }
    fmt::print(
        "{}: {} epochs, val acc {:.2f}%, test acc {:.2f}% (loss {:.4f}), {:.1f} s{}\n", a.model,
        o.epochs, 100 * r.final_val.accuracy, 100 * r.test.accuracy, r.test.loss, r.seconds,
        r.resumed_from_epoch >= 0 ? fmt::format(" (resumed at epoch {})", r.resumed_from_epoch + 1)
                                  : "");
    if (!a.output.empty()) fmt::print("wrote {}\n", a.output);
  }
  return Status::Ok();
}

}  // namespace

Command AddTrainCommand(CLI::App& parent) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* app = parent.add_subcommand(
      "train", "Train a zoo model or ONNX file on an image dataset (LibTorch; dense)");
  app->add_option("model", args->model, "Zoo model name (e.g. fmnist_resnet) or ONNX file")
      ->required()
      ->type_name("MODEL");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_option("-o,--output", args->output,
                  "Write the trained model as ONNX (BN folded into the convs; written atomically)")
      ->type_name("OUT.onnx");
  AddTrainingOptions(*app, args->t);
  app->footer(
      "The model's input is the normalised image (x/255 - mean)/std; Fashion-MNIST uses\n"
      "mean 0.2860, std 0.3530, other data the training set's per-channel statistics.\n"
      "-o exports the final weights; DIR/best.pt holds the best validation epoch.\n\n"
      "Examples:\n"
      "  wbs train fmnist_resnet -o out/fmnist_resnet.onnx --checkpoint-dir out/ckpt/dense\n"
      "  wbs train fmnist_resnet --checkpoint-dir out/ckpt/dense --resume   # after a crash\n"
      "  wbs train fmnist_resnet --world-size 2 --rank 0 --master 127.0.0.1:29500 &\n"
      "  wbs train fmnist_resnet --world-size 2 --rank 1 --master 127.0.0.1:29500");
  return {app, [args] { return RunTrain(*args); }};
}

}  // namespace wbs::cli

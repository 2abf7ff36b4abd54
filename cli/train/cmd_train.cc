// wbs train: dense training of a zoo model or an ONNX file on an image
// dataset (default Fashion-MNIST) with LibTorch; checkpoints every epoch,
// --resume, JSON-lines metrics, data-parallel ranks, ONNX export with BN
// folded.
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "cli/command.h"
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
  std::string data = "fashion-mnist";
  std::string output;
  int epochs = 10;
  int batch = 128;
  double lr = 0.1;
  std::string optimizer = "sgd";
  std::string schedule = "cosine";
  double warmup = 1.0;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double label_smoothing = 0.1;
  int pad_crop = 2;
  bool hflip = true;
  double val_fraction = 0.1;
  int threads = 0;
  uint64_t seed = 1;
  std::string checkpoint_dir;
  bool resume = false;
  std::string metrics;
  std::string device = "cpu";
  int world_size = 1;
  int rank = 0;
  std::string master = "127.0.0.1:29500";
  int dist_timeout = 60;
  int64_t max_train_images = 0;
  int64_t max_eval_images = 0;
  bool quiet = false;
};

bool IsOnnxPath(const std::string& s) {
  return s.size() > 5 && s.compare(s.size() - 5, 5, ".onnx") == 0;
}

// A zoo name, or an ONNX file (its classes must match the data's).
Result<std::unique_ptr<ir::Graph>> LoadTrainModel(const TrainArgs& a, const data::Dataset& d) {
  if (IsOnnxPath(a.model) || std::filesystem::exists(a.model)) {
    WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
    return LoadModel(a.model, shapes);
  }
  zoo::ZooOptions zo;
  zo.batch = 1;
  zo.seed = a.seed;
  zo.num_classes = d.num_classes;
  zo.image_size = d.height();
  for (const auto& info : zoo::Models()) {
    if (info.name == a.model && info.in_channels != d.channels()) {
      return InvalidArgument("model '{}' takes {} input channel(s) but data '{}' has {}", a.model,
                             info.in_channels, a.data, d.channels());
    }
  }
  return zoo::BuildModel(a.model, zo);
}

Result<torch::Device> ParseDevice(const std::string& text) {
  try {
    torch::Device dev(text);
    if (dev.is_cuda() && !torch::cuda::is_available()) {
      return InvalidArgument("--device {}: this LibTorch has no CUDA device", text);
    }
    return dev;
  } catch (const std::exception&) {
    return InvalidArgument("--device '{}': expected cpu, cuda or cuda:N", text);
  }
}

Status RunTrain(const TrainArgs& a) {
  if (a.quiet) SetProgressEnabled(false);
  train::TrainOptions o;
  o.epochs = a.epochs;
  o.batch_size = a.batch;
  o.lr = a.lr;
  WBS_ASSIGN_OR_RETURN(o.optimizer, train::ParseOptimizer(a.optimizer));
  WBS_ASSIGN_OR_RETURN(o.schedule, train::ParseLrSchedule(a.schedule));
  o.warmup_epochs = a.warmup;
  o.momentum = a.momentum;
  o.weight_decay = a.weight_decay;
  o.label_smoothing = a.label_smoothing;
  o.augment.pad_crop = a.pad_crop;
  o.augment.hflip = a.hflip;
  o.validation_fraction = a.val_fraction;
  o.threads = a.threads;
  o.seed = a.seed;
  o.checkpoint_dir = a.checkpoint_dir;
  o.resume = a.resume;
  o.metrics_path = a.metrics;
  WBS_ASSIGN_OR_RETURN(o.device, ParseDevice(a.device));
  o.world_size = a.world_size;
  o.rank = a.rank;
  o.master = a.master;
  o.dist_timeout_s = a.dist_timeout;
  o.max_train_images = a.max_train_images;
  o.max_eval_images = a.max_eval_images;
  o.progress = !a.quiet;

  WBS_ASSIGN_OR_RETURN(data::Dataset train, data::LoadDataset(a.data, data::Split::kTrain));
  Result<data::Dataset> test = data::LoadDataset(a.data, data::Split::kTest);
  data::Dataset test_set;
  if (test.ok()) {
    test_set = std::move(test).value();
  } else if (!o.progress) {
    // A source without a test split trains and validates only.
  } else {
    fmt::print(stderr, "wbs train: no test split ({}); validating only\n", test.status().message());
  }
  // Fashion-MNIST's published statistics; other data: computed by the trainer.
  if (a.data.rfind("fashion-mnist", 0) == 0) o.normalization = data::FashionMnistNormalization();

  WBS_ASSIGN_OR_RETURN(auto graph, LoadTrainModel(a, train));
  train::ModuleOptions mo;
  mo.device = o.device;
  WBS_ASSIGN_OR_RETURN(auto module, train::GraphModule::Create(*graph, mo));
  graph.reset();
  if (o.rank == 0 && !a.quiet) {
    fmt::print(stderr, "wbs train: {} on {} ({} train, {} test), {} epochs, batch {}, {} lr {} {}, "
               "seed {}{}\n",
               a.model, a.data, train.size(), test_set.size(), o.epochs, o.batch_size,
               a.optimizer, o.lr, a.schedule, o.seed,
               o.world_size > 1 ? fmt::format(", {} ranks", o.world_size) : "");
  }
  if (!a.output.empty() && o.rank == 0) WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_ASSIGN_OR_RETURN(auto trainer, train::Trainer::Create(module, std::move(train),
                                                            std::move(test_set), o));
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
    fmt::print("{}: {} epochs, val acc {:.2f}%, test acc {:.2f}% (loss {:.4f}), {:.1f} s{}\n",
               a.model, o.epochs, 100 * r.final_val.accuracy, 100 * r.test.accuracy, r.test.loss,
               r.seconds, r.resumed_from_epoch >= 0
                              ? fmt::format(" (resumed at epoch {})", r.resumed_from_epoch + 1)
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
  app->add_option("--data", args->data,
                  "Dataset: fashion-mnist, fashion-mnist:DIR, idx:IMAGES,LABELS[,TEST_IMAGES,"
                  "TEST_LABELS], folder:DIR")
      ->capture_default_str();
  app->add_option("-o,--output", args->output,
                  "Write the trained model as ONNX (BN folded into the convs; written atomically)")
      ->type_name("OUT.onnx");
  app->add_option("--epochs", args->epochs, "Training epochs")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--batch", args->batch, "Global batch size (split over ranks)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--lr", args->lr, "Peak learning rate (after warmup)")->capture_default_str();
  app->add_option("--optimizer", args->optimizer, "sgd (Nesterov momentum), adam or adamw")
      ->capture_default_str();
  app->add_option("--schedule", args->schedule,
                  "LR schedule after warmup: cosine, step (x0.1 every 10 epochs) or constant")
      ->capture_default_str();
  app->add_option("--warmup", args->warmup, "Linear LR warmup, in epochs")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--momentum", args->momentum, "SGD momentum")->capture_default_str();
  app->add_option("--weight-decay", args->weight_decay,
                  "Weight decay of conv/FC weights (not of BN or biases)")
      ->capture_default_str();
  app->add_option("--label-smoothing", args->label_smoothing, "Label smoothing of the loss")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app->add_option("--pad-crop", args->pad_crop,
                  "Augmentation: zero-pad by N pixels and crop back at random (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_flag("--hflip,!--no-hflip", args->hflip, "Augmentation: random horizontal flips");
  app->add_option("--val-fraction", args->val_fraction,
                  "Fraction of the training set held out for validation (seeded)")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app->add_option("--threads", args->threads, "Intra-op threads (0: LibTorch's default)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--seed", args->seed, "Seeds weights, data order, split and augmentation")
      ->capture_default_str();
  app->add_option("--checkpoint-dir", args->checkpoint_dir,
                  "Write DIR/last.pt every epoch and DIR/best.pt on a new best validation "
                  "accuracy (atomically)")
      ->type_name("DIR");
  app->add_flag("--resume", args->resume,
                "Continue from --checkpoint-dir/last.pt if it exists (same options required)");
  app->add_option("--metrics", args->metrics,
                  "Write one JSON line per epoch (and a final line with test accuracy)")
      ->type_name("OUT.jsonl");
  app->add_option("--device", args->device, "cpu, cuda or cuda:N")->capture_default_str();
  app->add_option("--world-size", args->world_size,
                  "Data-parallel ranks (c10d Gloo); start one process per rank")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--rank", args->rank, "This process's rank in [0, world size)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--master", args->master, "host:port where rank 0 listens (rendezvous)")
      ->capture_default_str();
  app->add_option("--dist-timeout", args->dist_timeout,
                  "Seconds a rank waits for the others before failing")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--max-train-images", args->max_train_images,
                  "Use at most N training images per epoch (quick runs and tests; 0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--max-eval-images", args->max_eval_images,
                  "Evaluate at most N validation and N test images (quick runs and tests; 0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_flag("-q,--quiet", args->quiet, "No progress display");
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

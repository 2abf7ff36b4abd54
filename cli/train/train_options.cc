#include "cli/train/train_options.h"

#include <exception>

namespace wbs::cli {

void AddTrainingOptions(CLI::App& app, TrainingArgs& a, const TrainingFlags& flags) {
  const std::string& g = flags.group;
  auto grouped = [&](CLI::Option* o) { return g.empty() ? o : o->group(g); };
  grouped(app.add_option("--data", a.data,
                         "Dataset: fashion-mnist, fashion-mnist:DIR, idx:IMAGES,LABELS[,TEST_"
                         "IMAGES,TEST_LABELS], folder:DIR")
              ->capture_default_str());
  grouped(app.add_option("--epochs", a.epochs, "Training epochs (finetune: 0 = masks only)")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  grouped(app.add_option("--batch", a.batch, "Global batch size (split over ranks)")
              ->check(CLI::PositiveNumber)
              ->capture_default_str());
  grouped(app.add_option("--lr", a.lr, "Peak learning rate (after warmup)")->capture_default_str());
  grouped(app.add_option("--optimizer", a.optimizer, "sgd (Nesterov momentum), adam or adamw")
              ->capture_default_str());
  grouped(app.add_option(flags.schedule_flag, a.lr_schedule,
                         "LR schedule after warmup: cosine, step (x0.1 every 10 epochs) or "
                         "constant")
              ->capture_default_str());
  grouped(app.add_option("--warmup", a.warmup, "Linear LR warmup, in epochs")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  grouped(app.add_option("--momentum", a.momentum, "SGD momentum")->capture_default_str());
  grouped(app.add_option("--weight-decay", a.weight_decay,
                         "Weight decay of conv/FC weights (not of BN or biases)")
              ->capture_default_str());
  grouped(app.add_option("--label-smoothing", a.label_smoothing, "Label smoothing of the loss")
              ->check(CLI::Range(0.0, 1.0))
              ->capture_default_str());
  grouped(app.add_option("--ema", a.ema_decay,
                         "Average the weights over the last --ema-epochs epochs with this "
                         "decay per step (0: off); kept when its validation accuracy is not lower")
              ->check(CLI::Range(0.0, 0.99999))
              ->capture_default_str());
  grouped(app.add_option("--ema-epochs", a.ema_epochs, "Epochs the --ema average covers")
              ->check(CLI::PositiveNumber)
              ->capture_default_str());
  grouped(app.add_option("--pad-crop", a.pad_crop,
                         "Augmentation: zero-pad by N pixels and crop back at random (0: off)")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  grouped(app.add_flag("--hflip,!--no-hflip", a.hflip, "Augmentation: random horizontal flips"));
  grouped(app.add_option("--val-fraction", a.val_fraction,
                         "Fraction of the training set held out for validation (seeded)")
              ->check(CLI::Range(0.0, 0.9))
              ->capture_default_str());
  grouped(app.add_option("--threads", a.threads, "Intra-op threads (0: LibTorch's default)")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  grouped(app.add_option("--seed", a.seed,
                         "Seeds weights (zoo models), data order, split and augmentation")
              ->capture_default_str());
  grouped(app.add_option("--checkpoint-dir", a.checkpoint_dir,
                         "Write DIR/last.pt every epoch and DIR/best.pt on a new best validation "
                         "accuracy (atomically; finetune: masks and method state included)")
              ->type_name("DIR"));
  grouped(app.add_flag("--resume", a.resume,
                       "Continue from --checkpoint-dir/last.pt if it exists (same options "
                       "required)"));
  grouped(app.add_option("--metrics", a.metrics,
                         "Write one JSON line per epoch (and a final line with test accuracy)")
              ->type_name("OUT.jsonl"));
  grouped(app.add_option("--device", a.device, "cpu, cuda or cuda:N")->capture_default_str());
  grouped(app.add_option("--world-size", a.world_size,
                         "Data-parallel ranks (c10d Gloo); start one process per rank")
              ->check(CLI::PositiveNumber)
              ->capture_default_str());
  grouped(app.add_option("--rank", a.rank, "This process's rank in [0, world size)")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  grouped(app.add_option("--master", a.master, "host:port where rank 0 listens (rendezvous)")
              ->capture_default_str());
  grouped(app.add_option("--dist-timeout", a.dist_timeout,
                         "Seconds a rank waits for the others before failing")
              ->check(CLI::PositiveNumber)
              ->capture_default_str());
  grouped(app.add_option("--max-train-images", a.max_train_images,
                         "Use at most N training images per epoch (quick runs and tests; 0: all)")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  grouped(app.add_option("--max-eval-images", a.max_eval_images,
                         "Evaluate at most N validation and N test images (quick runs and "
                         "tests; 0: all)")
              ->check(CLI::NonNegativeNumber)
              ->capture_default_str());
  app.add_flag("-q,--quiet", a.quiet, "No progress display");
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

bool IsOnnxPath(const std::string& s) {
  return s.size() > 5 && s.compare(s.size() - 5, 5, ".onnx") == 0;
}

Result<train::TrainOptions> MakeTrainOptions(const TrainingArgs& a, const std::string& log_prefix) {
  train::TrainOptions o;
  o.epochs = a.epochs;
  o.batch_size = a.batch;
  o.lr = a.lr;
  WBS_ASSIGN_OR_RETURN(o.optimizer, train::ParseOptimizer(a.optimizer));
  WBS_ASSIGN_OR_RETURN(o.schedule, train::ParseLrSchedule(a.lr_schedule));
  o.warmup_epochs = a.warmup;
  o.momentum = a.momentum;
  o.weight_decay = a.weight_decay;
  o.label_smoothing = a.label_smoothing;
  o.ema_decay = a.ema_decay;
  o.ema_epochs = a.ema_epochs;
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
  o.log_prefix = log_prefix;
  return o;
}

Result<TrainingData> LoadTrainingData(const TrainingArgs& a, train::TrainOptions& o) {
  TrainingData d;
  WBS_ASSIGN_OR_RETURN(d.train, data::LoadDataset(a.data, data::Split::kTrain));
  Result<data::Dataset> test = data::LoadDataset(a.data, data::Split::kTest);
  if (test.ok()) {
    d.test = std::move(test).value();
  } else {
    // A source without a test split trains and validates only.
    d.test_error = test.status().message();
  }
  // Fashion-MNIST's published statistics; other data: computed by the trainer.
  if (a.data.rfind("fashion-mnist", 0) == 0) o.normalization = data::FashionMnistNormalization();
  return d;
}

nlohmann::json EvalJson(const train::EvalResult& r) {
  return {{"accuracy", r.accuracy}, {"loss", r.loss}, {"count", r.count}};
}

}  // namespace wbs::cli

// Training options shared by `wbs train` and `wbs finetune`: one struct, one
// set of CLI11 options and one conversion to train::TrainOptions, so the two
// commands cannot drift apart. Each command sets its own defaults in the
// struct before AddTrainingOptions (CLI11 captures them for --help).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "data/dataset.h"
#include "train/trainer.h"

namespace wbs::cli {

struct TrainingArgs {
  std::string data = "fashion-mnist";
  int epochs = 10;
  int batch = 128;
  double lr = 0.1;
  std::string optimizer = "sgd";
  std::string lr_schedule = "cosine";
  double warmup = 1.0;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double label_smoothing = 0.1;
  double ema_decay = 0.0;
  int ema_epochs = 1;
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

struct TrainingFlags {
  // Name(s) of the LR-schedule option: `wbs train` has "--schedule", while
  // `wbs finetune` uses "--lr-schedule" next to its --prune-schedule.
  std::string schedule_flag = "--schedule";
  // Option group in --help ("" = the default group).
  std::string group;
};

// Registers --data, --epochs, --batch, --lr, ..., -q,--quiet on `app`.
void AddTrainingOptions(CLI::App& app, TrainingArgs& args, const TrainingFlags& flags = {});

// The trainer options of `args` (parses --optimizer, the LR schedule and
// --device). log_prefix names the command in progress lines.
Result<train::TrainOptions> MakeTrainOptions(const TrainingArgs& args,
                                             const std::string& log_prefix);

// The training split and, when the source has one, the test split (empty
// otherwise); sets `options.normalization` to Fashion-MNIST's published
// statistics for that data (other data: the trainer computes them).
struct TrainingData {
  data::Dataset train;
  data::Dataset test;
  std::string test_error;  // why there is no test split, if there is none
};
Result<TrainingData> LoadTrainingData(const TrainingArgs& args, train::TrainOptions& options);

// "cpu", "cuda", "cuda:N" (an error if this LibTorch has no CUDA).
Result<torch::Device> ParseDevice(const std::string& text);

// {"accuracy", "loss", "count"} of one evaluation, as the commands' JSON
// summaries record it.
nlohmann::json EvalJson(const train::EvalResult& r);

// True for "*.onnx" (the model argument is a file, not a zoo name).
bool IsOnnxPath(const std::string& s);

}  // namespace wbs::cli

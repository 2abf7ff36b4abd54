// The `wbs pipeline` config (docs/PIPELINE.md has every key with its default).
//
// A config is JSON (comments allowed). Parsing merges the user's object into
// the embedded default, so the resolved config always has every key; the
// default doubles as the schema: a key the default lacks is unknown, and a
// value must have the default's type. Errors name the file and the key path:
// "my.json: sparse.sparsity: 1.5 is not in [0,1)".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs::pipeline {

struct DenseConfig {
  bool enabled = true;
  std::string checkpoint;  // reuse when the file exists
  bool require_checkpoint = false;
  int epochs = 1;
  int64_t max_train_images = 0;
  int batch = 128;
  double lr = 0.1;
};

struct SparseConfig {
  bool enabled = true;
  double sparsity = 0.5;
  std::string block = "8x8";
  std::string method = "oneshot";
  std::string score = "l2";
  bool finetune = true;
  bool bn_recal = true;
  bool distill = true;
  int epochs = 1;
  int64_t max_train_images = 0;
  double lr = 0.01;
  std::vector<std::string> extra_args;
};

struct Int8Config {
  bool enabled = true;
  std::string observer = "minmax";
  int calib = 256;
  bool pot = false;
  std::string act = "u8";
  int eval = 2000;
};

struct AieConfig {
  bool enabled = true;
  std::vector<std::string> targets;
  bool sweep = true;
  std::string sweep_arrays = "2x2..8x8";
};

struct SimConfig {
  bool enabled = true;
  std::string target = "paper-4x4";
  bool check = true;
};

struct BenchConfig {
  bool enabled = true;
  int threads = 2;
  int repeats = 50;
  int warmup = 5;
};

struct ReportConfig {
  bool enabled = true;
  std::vector<std::string> accuracy_results;
};

struct Config {
  std::string source;  // file name, or "(embedded default)"
  std::string output = "out";
  int threads = 2;
  uint64_t seed = 1;
  std::string model_name;  // zoo model (when model_onnx is empty)
  std::string model_onnx;
  std::string input_shape;  // "NAME=D0,D1,..." or ""
  std::string dataset;
  DenseConfig dense;
  SparseConfig sparse;
  Int8Config int8;
  AieConfig aie;
  SimConfig sim;
  BenchConfig bench;
  ReportConfig report;
  // The resolved config (every key), as written to OUT/pipeline.json.
  nlohmann::ordered_json resolved;

  // The model as `wbs` commands take it: the ONNX path or the zoo name.
  const std::string& ModelArg() const { return model_onnx.empty() ? model_name : model_onnx; }
  // Display name: the zoo name or the ONNX file's stem.
  std::string ModelLabel() const;
};

// The embedded default (what `make demo` runs), as JSON text with comments.
const std::string& DefaultConfigText();

// Parses `text` (JSON with comments) from `source` (named in errors) over the
// default, validates every key, and fills a Config.
Result<Config> ParseConfig(const std::string& text, const std::string& source);
// Reads and parses a config file; an empty path gives the embedded default.
Result<Config> LoadConfig(const std::string& path);

// True when a stage uses a shorter schedule than docs/ACCURACY.md's full runs.
bool DenseIsDemoSchedule(const DenseConfig& d);
bool SparseIsDemoSchedule(const SparseConfig& s);

}  // namespace wbs::pipeline

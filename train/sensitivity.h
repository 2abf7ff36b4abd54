// Per-layer sensitivity to block sparsity, and a budget allocation from it.
//
// Scan: for every blockable layer alone, zero its weakest blocks (one-shot
// selection by `score`, keep_channels) at each level, evaluate on a
// validation subset without retraining, and restore the layer. The
// accuracy drop per (layer, level) says where blocks can go.
//
// Allocation: each layer's drop is made a non-decreasing piecewise-linear
// function of its level (level 0: drop 0). For a tolerance τ, a layer gets
// the highest level (up to the highest scanned) whose drop is <= τ; the
// block-weighted mean level grows with τ, and τ is bisected so that it
// equals the overall target. The last two assignments that bracket the
// target are blended linearly so the budget is met exactly (before the
// per-layer rounding of block counts).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "data/dataset.h"
#include "sparse/layers.h"
#include "sparse/scores.h"
#include "train/methods_select.h"
#include "train/module.h"
#include "train/trainer.h"

namespace wbs::train {

struct SensitivityOptions {
  std::vector<double> levels = {0.25, 0.5, 0.75, 0.9};
  sparse::LayerRules rules;
  sparse::Score score = sparse::Score::kL2;
  bool keep_channels = true;
  int64_t max_images = 1000;  // validation images per evaluation
  int batch_size = 500;
  torch::Device device = torch::kCPU;
  // Called after each evaluation: (layer index, level index) — progress.
  std::function<void(size_t, size_t)> progress;
};

struct LayerSensitivity {
  std::string node;
  std::string weight;
  int64_t blocks = 0;
  std::vector<double> achieved;  // zero-block fraction at each level (keep_channels may cap it)
  std::vector<EvalResult> eval;  // at each level
};

struct SensitivityReport {
  EvalResult dense;
  std::vector<double> levels;
  std::vector<LayerSensitivity> layers;
};

// The module's masks are cleared first and left cleared.
Result<SensitivityReport> ScanSensitivity(GraphModule& m, const data::Dataset& val,
                                          const data::Normalization& norm,
                                          const SensitivityOptions& o);

// Per-layer targets (node name -> level) whose block-weighted mean is
// `target`. Error if target exceeds what the scanned levels allow.
Result<std::map<std::string, double>> AllocateTargets(const SensitivityReport& r, double target);

}  // namespace wbs::train

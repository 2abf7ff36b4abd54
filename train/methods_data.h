// Passes over data that the sparsity methods and `wbs sensitivity` make
// outside the trainer's loop: deterministic batches, BatchNorm
// recalibration, evaluation of a module. No augmentation anywhere here.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "data/dataset.h"
#include "train/module.h"
#include "train/trainer.h"

namespace wbs::train {

// Runs `f` and turns a torch (or std) exception into Internal("<what>: ...").
Status TorchGuard(const std::string& what, const std::function<Status()>& f);

using BatchFn = std::function<Status(const torch::Tensor& images, const torch::Tensor& labels)>;
// Visits min(max_images, N) images of `d` (max_images <= 0: all) in batches
// of batch_size (the last may be smaller): in dataset order for seed 0, else
// in data::EpochOrder(N, seed, 0). images f32 [B, C, H, W] normalised,
// labels i64 [B], both on `device`.
Status ForEachBatch(const data::Dataset& d, const data::Normalization& norm, int64_t max_images,
                    int batch_size, uint64_t seed, torch::Device device, const BatchFn& f);

// Re-estimates BatchNorm running statistics of the (masked) module: `batches`
// batches of training images forward in train mode without gradients. The
// running averages move with each BN's own momentum, so enough batches
// (momentum 0.1: 50 leave 0.5% of the old statistics) replace them. Restores
// the previous train/eval mode.
Status RecalibrateBatchNorm(GraphModule& m, const data::Dataset& d, const data::Normalization& norm,
                            int batches, int batch_size, uint64_t seed, torch::Device device);

// Mean cross-entropy and accuracy in eval mode over min(max_images, N) images
// in dataset order (max_images <= 0: all). Restores the previous mode.
Result<EvalResult> EvaluateModule(GraphModule& m, const data::Dataset& d,
                                  const data::Normalization& norm, int64_t max_images,
                                  int batch_size, torch::Device device);

}  // namespace wbs::train

// Diagonal (empirical) Fisher information of the blockable weights, as block
// scores for the `fisher` method.
//
// F_i = E[g_i^2] is estimated from gradients of the cross-entropy over
// micro-batches of training images (eval mode, so BatchNorm uses its running
// statistics and a micro-batch's gradient does not depend on the others);
// squaring per micro-batch rather than per image trades some variance for a
// micro_batch-times cheaper pass. As a block score, the diagonal-Fisher
// (OBD-style) estimate of the loss increase when the block is zeroed,
// Σ_block F_i w_i^2 / 2, or the plain accumulated Σ_block F_i.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "data/dataset.h"
#include "train/methods_select.h"
#include "train/module.h"

namespace wbs::train {

struct FisherOptions {
  int64_t samples = 1024;  // images (the first ones of a seeded shuffle)
  int micro_batch = 8;
  bool weighted = true;  // Σ F w^2 / 2; false: Σ F
  uint64_t seed = 1;
};

// Per-layer F (same shape as each layer's weight), on the module's device.
Result<std::vector<torch::Tensor>> AccumulateFisher(GraphModule& m,
                                                    const std::vector<BlockLayer>& layers,
                                                    const data::Dataset& d,
                                                    const data::Normalization& norm,
                                                    const FisherOptions& o, torch::Device device);

// Block scores from F and the module's current weights.
std::vector<std::vector<double>> FisherBlockScores(GraphModule& m,
                                                   const std::vector<BlockLayer>& layers,
                                                   const std::vector<torch::Tensor>& fisher,
                                                   bool weighted);

}  // namespace wbs::train

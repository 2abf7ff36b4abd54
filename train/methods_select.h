// Block selection for the fine-tuning methods: which weights of a
// GraphModule are blocked, block scores from torch tensors, and the choice of
// zero blocks at a sparsity level (sparse::ChooseBlocks: exact per-layer
// counts, global mode with caps, keep_channels), optionally monotone (blocks
// zeroed earlier stay zero) and with per-layer targets.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "sparse/layers.h"
#include "sparse/scores.h"
#include "sparse/sparsify.h"
#include "train/module.h"

namespace wbs::train {

// One blockable weight of a module.
struct BlockLayer {
  std::string node;    // node name (for reports and --per-layer-targets)
  std::string weight;  // IR constant name = GraphModule parameter name
  MaskLayout layout = MaskLayout::kOutIn;
  WeightView view;
  int block_rows = 8;
  int block_cols = 8;
  int64_t rows = 0;  // blocks
  int64_t cols = 0;
  int64_t num_blocks() const { return rows * cols; }
};

// The blockable layers of the module's graph under `rules` (sparse::FindLayers),
// in graph order. Error if a blockable weight is not a module parameter.
Result<std::vector<BlockLayer>> FindBlockLayers(const GraphModule& module,
                                                const sparse::LayerRules& rules);

struct SelectOptions {
  double sparsity = 0.5;  // the final target (per-layer targets override it per layer)
  bool global = false;
  double min_layer = 0.0;
  double max_layer = 1.0;
  bool keep_channels = true;
  uint64_t seed = 0;
  // node or weight name -> that layer's final target (per-layer mode only);
  // layers not listed get `sparsity`.
  std::map<std::string, double> per_layer;
  // Per-layer mode without per-layer targets: when keep_channels caps a layer
  // below the level (a 4x4 block grid can zero at most about half its
  // blocks), zero the shortfall in the other layers instead, so the whole
  // model reaches the level (counted in blocks). Off: every layer at the
  // level or its cap, and the model below the level.
  bool fill_target = false;
};
Status ValidateSelectOptions(const SelectOptions& o, const std::vector<BlockLayer>& layers);

// The final target of each layer (per_layer entry or sparsity).
std::vector<double> LayerTargets(const std::vector<BlockLayer>& layers, const SelectOptions& o);

// Chooses masks at schedule level `level` (0 <= level <= o.sparsity; each
// layer's target is scaled by level / o.sparsity when per-layer targets are
// given). scores: one per layer (rows*cols, higher = more important).
// previous (optional, one per layer): blocks zeroed there stay zeroed; it is
// an error (Internal) if the selection would revive one.
Result<std::vector<BlockMask>> SelectMasks(const std::vector<BlockLayer>& layers,
                                           const std::vector<std::vector<double>>& scores,
                                           const SelectOptions& o, double level,
                                           const std::vector<BlockMask>* previous = nullptr);

// Magnitude scores (sparse::BlockScores) of the module's current weights;
// L2/L1 scores of ragged edge blocks are scaled as if the block were full
// with the same magnitude per number (so they are not zeroed just for being
// small).
// bn_scaled: a Conv whose only consumer is a BatchNormalization is scored on
// its effective weight W[o] * |gamma[o]| / sqrt(running_var[o] + eps), the
// weight the BN-folded model runs. BN renormalises every output channel, so
// the raw weight's per-channel scale is arbitrary and raw L2 compares blocks
// of different output channels on meaningless scales.
Result<std::vector<std::vector<double>>> MagnitudeScores(GraphModule& module,
                                                         const std::vector<BlockLayer>& layers,
                                                         sparse::Score score,
                                                         bool bn_scaled = false);
// The per-output-channel factor of bn_scaled for layer l (nullopt: no BN
// right after it).
std::optional<torch::Tensor> BatchNormScale(GraphModule& module, const BlockLayer& l);

// Sum over each block of an elementwise tensor shaped like the layer's
// weight (e.g. squared gradients): f64 [rows * cols], row-major.
std::vector<double> BlockSums(const torch::Tensor& t, const BlockLayer& layer);

// A 0/1 (or soft) block tensor [rows, cols] expanded to the weight's shape:
// out[o, i, ...] = blocks[o / br, i / bc] in the layer's layout. Keeps the
// autograd graph of `blocks`.
torch::Tensor ExpandBlocks(const torch::Tensor& blocks, const BlockLayer& layer,
                           const torch::Tensor& weight);
// The mask as a f32 [rows, cols] tensor of 0/1 on `device`.
torch::Tensor MaskTensor(const BlockMask& mask, torch::Device device);

// Masks zeroed fraction over all layers' blocks.
double BlockSparsity(const std::vector<BlockMask>& masks);

}  // namespace wbs::train

// Masks on weights and one-shot sparsification.
//
// One-shot: score every block of every blockable layer (sparse/scores.h),
// then zero the lowest-scoring blocks.
//   - Per-layer mode: each blockable layer with n blocks gets exactly
//     round(sparsity * n) zero blocks, fewer only when keep_channels forbids
//     it (the achieved sparsity is reported).
//   - Global mode: one threshold over all blockable layers. Scores are first
//     normalised per layer by the layer's mean block score (layers differ in
//     scale: fan-in, initialisation, BN folding), so a block's normalised
//     score says how weak it is relative to its own layer. round(sparsity *
//     total blocks) blocks are zeroed overall, lowest normalised score first,
//     with each layer's count clamped to [round(min_layer * n),
//     round(max_layer * n)] (the minimum wins over the global count).
//   - keep_channels (the paper's rule, default on): no block-row or
//     block-column becomes entirely zero; the best block (highest score) of
//     each row and of each column is never zeroed.
// Ties in score are broken by block index, or by a seeded hash of it when
// seed != 0, so a run is reproducible either way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "sparse/layers.h"
#include "sparse/scores.h"

namespace wbs::sparse {

// A copy of `weight` with every masked block zeroed (the input is untouched).
// Error if the mask does not fit the weight's shape.
Result<Tensor> ApplyMask(const Tensor& weight, const BlockMask& mask);

// Bytes of one int32 BSR index entry (block-row pointer, block-column index).
inline constexpr int64_t kBsrIndexBytes = 4;

struct MaskStats {
  int64_t blocks = 0;
  int64_t zero_blocks = 0;
  int64_t weights = 0;       // elements of the tensor
  int64_t zero_weights = 0;  // elements equal to zero (masked or not)
  int64_t dense_bytes = 0;   // weights * element size
  // BSR: (rows + 1) row pointers + one column index per kept block (int32
  // each) + the kept blocks' values (ragged edge blocks count only their real
  // elements; no padding).
  int64_t compressed_bytes = 0;
  double block_sparsity() const { return blocks ? double(zero_blocks) / double(blocks) : 0.0; }
  double zero_fraction() const { return weights ? double(zero_weights) / double(weights) : 0.0; }
};
Result<MaskStats> ComputeMaskStats(const Tensor& weight, const BlockMask& mask);

// The keep_channels set: 1 for the best block of every row and of every
// column of a rows x cols score matrix (ties: the lowest index).
std::vector<uint8_t> ProtectedBlocks(const std::vector<double>& scores, int64_t rows, int64_t cols);

struct SparsifyOptions {
  LayerRules rules;       // block shape, first-conv and --exclude rules
  double sparsity = 0.5;  // target fraction of zero blocks, in [0, 1]
  Score score = Score::kL2;
  bool global = false;
  double min_layer = 0.0;  // global mode: per-layer bounds on the zero fraction
  double max_layer = 1.0;
  bool keep_channels = true;
  uint64_t seed = 0;  // 0: ties by block index; else by a seeded hash
};
Status ValidateOptions(const SparsifyOptions& o);

// The selection on bare scores (one entry per layer, rows*cols row-major):
// returns each layer's keep matrix (1 = keep). Used by Sparsify; exposed for
// tests.
struct LayerScores {
  std::vector<double> scores;
  int64_t rows = 0;
  int64_t cols = 0;
};
Result<std::vector<std::vector<uint8_t>>> ChooseBlocks(const std::vector<LayerScores>& layers,
                                                       const SparsifyOptions& o);

struct LayerReport {
  std::string name;  // node name
  std::string op_type;
  std::string weight;  // weight value name ("" if not a constant)
  Shape weight_shape;
  bool blockable = false;
  std::string reason;  // why not, when !blockable
  MaskStats stats;     // blockable: after masking; else blocks = 0, dense = compressed
};
struct SparsifyReport {
  std::vector<LayerReport> layers;  // every Conv/ConvTranspose/Gemm/MatMul
  MaskStats total;                  // blocks over blockable layers; bytes over all layers
  int64_t num_blockable = 0;
};

// Scores, chooses and applies masks in place: every blockable layer's weight
// constant is replaced by its masked copy and gets Value::block_mask.
// Errors name the layer.
Result<SparsifyReport> Sparsify(ir::Graph& graph, const SparsifyOptions& o);

}  // namespace wbs::sparse

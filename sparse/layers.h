// Which layers of a graph may carry a block mask, and why the others may not.
//
// A layer is a node with a weight: Conv, ConvTranspose, Gemm, MatMul whose
// weight input (input 1) is a constant, possibly reached through Identity
// nodes (torch.onnx's shared initializers). The rules, in the order they are
// checked (the first that applies is the reason reported):
//   - the weight is not a constant                        -> not blockable
//   - ConvTranspose                                       -> excluded (for now)
//   - Conv with group != 1 (grouped, depthwise)           -> dense by rule
//   - Gemm/MatMul whose weight is not 2-D                 -> not blockable
//   - fewer than one full block (COUT < br or CIN < bc)   -> excluded
//   - the weight is already claimed by an earlier layer   -> shares its mask
//     (or is used with a different orientation)
//   - the first Conv of the graph, unless include_first   -> excluded (paper)
//   - the node or weight name matches an --exclude rule   -> excluded
// The view of the weight is COUT x CIN (x kernel): Conv [COUT, CIN, kh, kw];
// Gemm transB=1 [N, K] and transB=0 / MatMul [K, N] (MaskLayout).
#pragma once

#include <regex>
#include <string>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "ir/graph.h"

namespace wbs::sparse {

struct LayerRules {
  int block_rows = 8;
  int block_cols = 8;
  bool include_first = false;
  // A layer is excluded when its node name or weight name equals a pattern or
  // matches it as a whole (std::regex, ECMAScript).
  std::vector<std::string> exclude;
};

// The rules of the command-line options shared by sparsify, finetune and
// sensitivity: `block` as "RxC" (core/block_mask.h ParseBlockShape; errors
// name the text), whether the first conv is included, the exclusion patterns.
Result<LayerRules> MakeLayerRules(const std::string& block, bool include_first,
                                  std::vector<std::string> exclude);

struct Layer {
  ir::Node* node = nullptr;
  ir::Value* weight = nullptr;  // the constant's value (after Identity chains)
  MaskLayout layout = MaskLayout::kOutIn;
  WeightView view;
  bool blockable = false;
  std::string reason;  // why not blockable; empty when blockable
};

// One entry per Conv/ConvTranspose/Gemm/MatMul node, in graph order (the
// graph should be topologically sorted). Errors: an invalid regex (named).
Result<std::vector<Layer>> FindLayers(const ir::Graph& graph, const LayerRules& rules);

}  // namespace wbs::sparse

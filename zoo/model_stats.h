// Model statistics for `wbs info` and the zoo tests: multiply-accumulates per
// layer, parameter counts, and which layers can carry a block-sparse mask.
//
// MACs are counted for the four ops whose cost dominates a CNN: Conv,
// ConvTranspose, Gemm and MatMul (the convention behind torchvision's quoted
// GFLOPS figures, which are really GMACs). Everything else counts 0.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::zoo {

// The block edge of the AIE2 int8 matrix unit the paper targets (8x8 blocks).
inline constexpr int64_t kDefaultBlock = 8;

// MACs of one node at its inferred shapes, batch included:
//   Conv           numel(Y) * CIN/group * kh * kw    (= numel(Y) * prod(W.shape[1:]))
//   ConvTranspose  numel(X) * COUT/group * kh * kw   (= numel(X) * prod(W.shape[1:]))
//   Gemm, MatMul   numel(Y) * K
// 0 for other ops. InvalidArgument (naming the node) if a needed shape is
// unknown or not static.
Result<int64_t> CountMacs(const ir::Node& node);

// The constant held by `v` or, through a chain of Identity nodes, by its
// source (torch.onnx exports shared initializers as Identity nodes); nullptr
// if `v` is computed at run time.
const Tensor* ConstantSource(const ir::Value* v);

// True when the node's weight can be masked in block x block tiles of the
// COUT x CIN weight matrix: a Conv (group 1), Gemm or MatMul whose weight
// (Conv input 1, Gemm/MatMul input B) is a constant with COUT >= block and
// CIN >= block. Gemm's B is [K, N] ([N, K] with transB), so COUT = N, CIN = K.
bool IsBlockable(const ir::Node& node, int64_t block = kDefaultBlock);

struct LayerStats {
  std::string name;
  std::string op_type;
  Shape input_shape;   // of input 0; empty if unknown
  Shape output_shape;  // of output 0; empty if unknown
  Shape weight_shape;  // input 1 of Conv/ConvTranspose/Gemm/MatMul; empty otherwise
  int64_t macs = 0;
  int64_t params = 0;  // elements of the node's constant inputs (through Identity)
  bool blockable = false;
};

struct ModelStats {
  std::vector<LayerStats> layers;  // one per node, in graph order
  std::map<std::string, int64_t> op_histogram;
  int64_t total_macs = 0;
  int64_t blockable_macs = 0;
  int64_t num_blockable = 0;
  // Elements and bytes of all constants that nodes use (each counted once,
  // BN running statistics included, unlike torch's parameters()).
  int64_t num_parameters = 0;
  int64_t parameter_bytes = 0;
};

// Needs inferred shapes (ir::InferShapes); errors name the node.
Result<ModelStats> ComputeModelStats(const ir::Graph& graph);

}  // namespace wbs::zoo

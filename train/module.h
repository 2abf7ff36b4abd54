// The LibTorch bridge: an IR graph (zoo or imported ONNX) as a trainable
// torch module, and the trained values back into the IR. train/ is the only
// place that includes LibTorch.
//
// Contract:
//  - GraphModule::Create builds one torch parameter per float constant that
//    training should change (Conv/ConvTranspose/Gemm weights and biases,
//    constant MatMul operands, an Add's constant right after a MatMul/Gemm,
//    BN scale/bias; constants reached through Identity count) and buffers
//    for BN running mean/var; other constants (shapes, Clip bounds) stay
//    fixed. Every node that reaches an output runs as the equivalent ATen op
//    (train/torch_ops.h lists them: Conv with the fused "wbs.activation*" /
//    "wbs.residual" attrs of ir/graph.h, BatchNormalization, Relu, Clip,
//    Add, Mul, Concat, the pools, Flatten, Reshape, Gemm, MatMul, Softmax,
//    Identity, Dropout, ...). An op or attribute it cannot express is an
//    Unimplemented error naming the node.
//    BatchNormalization stays a trainable BN (train() mode uses batch stats
//    and updates running stats with its momentum, ONNX's m -> torch's 1 - m;
//    eval() uses the running stats); if the graph came with BN already
//    folded, the convs simply have biases.
//  - Masks: a Conv (group 1), Gemm or MatMul weight may carry a BlockMask Γ
//    (view and layout as sparse/layers.h). forward() uses W ⊙ expand(Γ);
//    after every optimizer step ApplyMasks() also zeroes the masked entries
//    of W in place, so masked blocks are exactly zero at all times (also in
//    checkpoints and exports).
//  - Gates (learned masks): a weight may carry a gate function g(W) -> W'
//    (e.g. straight-through top-k); forward uses g(W) ⊙ expand(Γ) when it
//    has both.
//  - ExportGraph writes the current values into a clone of the source graph
//    (BN kept, or folded into the convs when fold_bn), with each masked
//    weight's Value::block_mask set, ready for onnxio::ExportModel and the
//    runtime.
//  - Device-agnostic: parameters, buffers, fixed constants and expanded
//    masks live on options.device (choose it at Create; Module::to() would
//    move only parameters and buffers). LibTorch errors (c10::Error) never
//    cross the Status-returning calls.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "ir/graph.h"

namespace wbs::train {

struct ModuleOptions {
  torch::Device device = torch::kCPU;
  // Mask block shape for blockable-weight discovery (sparse::LayerRules).
  int block_rows = 8;
  int block_cols = 8;
};

class GraphModule : public torch::nn::Module {
 public:
  // The graph is cloned; the module does not refer to `graph` afterwards.
  // Masks the graph carries (Value::block_mask: `wbs sparsify` output, an
  // earlier export) are set with SetMask (forward masks; ApplyMasks zeroes).
  static Result<std::shared_ptr<GraphModule>> Create(const ir::Graph& graph,
                                                     const ModuleOptions& options = {});

  // x: f32 [B, C, H, W] (moved to the module's device if elsewhere) -> the
  // graph's first output (logits). Nodes that do not reach it never run.
  // Throws (torch convention) with the failing node named; Forward() is the
  // same returning a Status instead.
  // A graph with several inputs needs Run().
  torch::Tensor forward(const torch::Tensor& x);
  Result<torch::Tensor> Forward(const torch::Tensor& x);
  // Every graph input (graph order) -> every graph output (graph order).
  Result<std::vector<torch::Tensor>> Run(const std::vector<torch::Tensor>& inputs);

  // Names (IR constant names) of all parameters in graph order: weights,
  // biases, BN scale/bias.
  const std::vector<std::string>& weight_names() const;
  // The weights that may carry a block mask under options' block shape and
  // the default rules (sparse::FindLayers, blockable: not the first conv, not
  // grouped, at least one block). SetMask also accepts the first conv and
  // weights smaller than a block; never grouped convs or shared weights.
  const std::vector<std::string>& blockable_weights() const;
  // The parameter (throws std::out_of_range for an unknown name).
  torch::Tensor& weight(const std::string& name);
  // BN running mean/var (IR names), registered as torch buffers.
  const std::vector<std::string>& buffer_names() const;
  torch::Tensor& buffer(const std::string& name);
  // The name a parameter/buffer is registered under in torch (IR name with
  // '.' -> '_', made unique), i.e. its key in named_parameters(); "" if none.
  std::string torch_name(const std::string& name) const;

  // The mask's layout and block grid must fit the weight (its block shape may
  // differ from options'). Forward uses gate(W) ⊙ expand(Γ) from now on; W
  // itself is zeroed only by ApplyMasks.
  Status SetMask(const std::string& weight, const BlockMask& mask);
  std::optional<BlockMask> mask(const std::string& weight) const;
  void ClearMasks();
  // Zero masked entries of every masked weight in place (no_grad).
  void ApplyMasks();

  using Gate = std::function<torch::Tensor(const torch::Tensor& w)>;
  Status SetGate(const std::string& weight, Gate gate);  // empty gate removes it

  // A copy of the source graph holding the current parameter and BN values
  // (each weight as forward sees it: gated and masked). With fold_bn,
  // ir's fold-batchnorm pass folds every BN it can into its conv and the
  // folded constants keep the natural names ("<w>", "<conv>.bias").
  Result<std::unique_ptr<ir::Graph>> ExportGraph(bool fold_bn) const;

  // The wrapped graph (structure and names; values are the initial ones).
  const ir::Graph& graph() const;

 private:
  GraphModule() = default;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace wbs::train

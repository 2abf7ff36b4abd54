// Pass manager for graph-to-graph rewrites.
//
// A pass is a named, single-purpose rewrite. The manager runs passes in
// order, re-sorts and verifies the graph after each one, and can print the
// graph after a named pass (`wbs convert --print-after=PASS`).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::ir {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  // Rewrites the graph; sets *changed when it changed anything.
  virtual Status Run(Graph& graph, bool* changed) = 0;
};

// Evaluates one node on constant inputs; supplied by the runtime so the IR
// does not depend on kernels (dependency inversion).
class NodeEvaluator {
 public:
  virtual ~NodeEvaluator() = default;
  virtual Result<std::vector<Tensor>> Evaluate(const Node& node,
                                               const std::vector<const Tensor*>& inputs) = 0;
};

class PassManager {
 public:
  void Add(std::unique_ptr<Pass> pass) { passes_.push_back(std::move(pass)); }
  // Called with (pass name, graph) after each pass whose name matches
  // `print_after` ("all" matches every pass).
  void SetPrintAfter(std::string pass_name, std::function<void(const std::string&, const Graph&)> fn) {
    print_after_ = std::move(pass_name);
    printer_ = std::move(fn);
  }
  Status Run(Graph& graph);
  std::vector<std::string> PassNames() const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
  std::string print_after_;
  std::function<void(const std::string&, const Graph&)> printer_;
};

// The passes (one file each in ir/passes/).
std::unique_ptr<Pass> CreateRemoveIdentityPass();        // Identity, Dropout (inference) removal
std::unique_ptr<Pass> CreateConstantFoldingPass(NodeEvaluator* evaluator);
std::unique_ptr<Pass> CreateFoldBatchNormPass();         // BN into preceding Conv/Gemm
std::unique_ptr<Pass> CreateFuseResidualPass();          // Conv + Add into one Conv
std::unique_ptr<Pass> CreateFuseActivationPass();        // mark Conv/Gemm + activation
std::unique_ptr<Pass> CreateDeadCodeEliminationPass();
// lower-qdq (ir/passes/qdq.cc): ONNX QDQ patterns into the integer ops of
// the quantized IR (docs/int8.md); first in the default pipeline.
std::unique_ptr<Pass> CreateLowerQdqPass();
// True if the graph holds integer ops (QConv, QGemm, QAdd, ...).
bool HasIntegerOps(const Graph& graph);
// The inverse of lower-qdq, for export: every integer op becomes
// DequantizeLinear -> f32 op [-> Relu/Clip] -> QuantizeLinear.
Status ExpandQdq(Graph& graph);

// The standard inference pipeline: QDQ lowering, identity removal, constant folding (if an
// evaluator is given), BN folding, residual fusion, activation fusion, dead
// code elimination. Residual fusion precedes activation fusion so that
// Conv -> Add -> Relu becomes one Conv.
void AddDefaultPasses(PassManager& pm, NodeEvaluator* evaluator, bool fold_bn = true,
                      bool fuse_activations = true, bool fuse_residuals = true);

// Human-readable dump: one line per node ("%out = Conv(%x, %w) {strides=[1,1]} : f32[...]").
std::string PrintGraph(const Graph& graph);

}  // namespace wbs::ir

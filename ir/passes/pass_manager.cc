#include "core/logging.h"
#include "ir/op_schema.h"
#include "ir/pass.h"

namespace wbs::ir {

Status PassManager::Run(Graph& graph) {
  for (auto& pass : passes_) {
    bool changed = false;
    WBS_RETURN_IF_ERROR(pass->Run(graph, &changed).WithContext("pass " + pass->name()));
    WBS_RETURN_IF_ERROR(graph.TopologicalSort());
    WBS_RETURN_IF_ERROR(graph.Verify().WithContext("after pass " + pass->name()));
    WBS_LOG_DEBUG("pass {}: {}", pass->name(), changed ? "changed" : "no change");
    if (printer_ && (print_after_ == "all" || print_after_ == pass->name())) printer_(pass->name(), graph);
  }
  return Status::Ok();
}

std::vector<std::string> PassManager::PassNames() const {
  std::vector<std::string> names;
  for (auto& p : passes_) names.push_back(p->name());
  return names;
}

void AddDefaultPasses(PassManager& pm, NodeEvaluator* evaluator, bool fold_bn, bool fuse_activations,
                      bool fuse_residuals) {
  pm.Add(CreateLowerQdqPass());  // before folding turns DequantizeLinear(W8) into f32 weights
  pm.Add(CreateRemoveIdentityPass());
  if (evaluator) pm.Add(CreateConstantFoldingPass(evaluator));
  if (fold_bn) pm.Add(CreateFoldBatchNormPass());
  if (fuse_residuals) pm.Add(CreateFuseResidualPass());
  if (fuse_activations) pm.Add(CreateFuseActivationPass());
  pm.Add(CreateDeadCodeEliminationPass());
}

}  // namespace wbs::ir

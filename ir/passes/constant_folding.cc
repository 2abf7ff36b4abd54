// constant-folding: evaluates nodes whose inputs are all constant (e.g. the
// Shape -> Gather -> Concat -> Reshape chains of exported models) and turns
// their outputs into constants.
#include "ir/op_schema.h"
#include "ir/pass.h"

namespace wbs::ir {
namespace {

// Folding a node whose output is huge would bloat the model (e.g. a
// ConstantOfShape feeding an Add): keep those as nodes.
constexpr int64_t kMaxFoldedElements = 1 << 20;

class ConstantFoldingPass : public Pass {
 public:
  explicit ConstantFoldingPass(NodeEvaluator* evaluator) : evaluator_(evaluator) {}
  std::string name() const override { return "constant-folding"; }
  std::string summary() const override { return "evaluate nodes whose inputs are all constant"; }
  Status Run(Graph& g, bool* changed) override {
    WBS_RETURN_IF_ERROR(g.TopologicalSort());
    std::vector<Node*> order;
    for (auto& n : g.nodes()) order.push_back(n.get());
    int folded = 0;
    for (Node* n : order) {
      bool all_const = true;
      std::vector<const Tensor*> ins;
      for (Value* v : n->inputs) {
        if (v && !v->is_constant()) all_const = false;
        ins.push_back(v ? &v->constant : nullptr);
      }
      if (!all_const) continue;
      bool too_big = false;
      for (Value* o : n->outputs)
        if (o && o->shape_is_static() && NumElements(o->shape) > kMaxFoldedElements) too_big = true;
      if (too_big) continue;
      WBS_ASSIGN_OR_RETURN(std::vector<Tensor> outs, evaluator_->Evaluate(*n, ins));
      std::vector<Value*> outputs = n->outputs;
      g.EraseNode(n);
      for (size_t i = 0; i < outputs.size(); ++i) {
        Value* o = outputs[i];
        if (!o) continue;
        o->constant = std::move(outs[i]);
        o->dtype = o->constant.dtype();
        o->shape = o->constant.shape();
        o->has_shape = true;
      }
      ++folded;
    }
    g.EraseDeadValues();
    *changed = folded > 0;
    return Status::Ok();
  }

 private:
  NodeEvaluator* evaluator_;
};

}  // namespace

std::unique_ptr<Pass> CreateConstantFoldingPass(NodeEvaluator* evaluator) {
  return std::make_unique<ConstantFoldingPass>(evaluator);
}

}  // namespace wbs::ir

// remove-identity: drops Identity nodes and inference-mode Dropout nodes
// (whose mask output is unused), wiring their users to the input.
#include "ir/pass.h"

namespace wbs::ir {
namespace {

class RemoveIdentityPass : public Pass {
 public:
  std::string name() const override { return "remove-identity"; }
  std::string summary() const override { return "remove Identity and inference Dropout nodes"; }
  Status Run(Graph& g, bool* changed) override {
    std::vector<Node*> doomed;
    for (auto& n : g.nodes()) {
      bool identity = n->op_type == "Identity";
      bool dropout = n->op_type == "Dropout" &&
                     (n->outputs.size() < 2 || !n->outputs[1] || n->outputs[1]->users.empty()) &&
                     (n->outputs.size() < 2 || !n->outputs[1] || !g.IsOutput(n->outputs[1]));
      if (!identity && !dropout) continue;
      if (!n->input(0) || !n->outputs[0]) continue;
      // Keep the node when both ends are graph-visible: the output name is
      // part of the model's interface and the input cannot take it over.
      Value* in = n->inputs[0];
      Value* out = n->outputs[0];
      if (g.IsOutput(out) && (!in->producer || g.IsOutput(in))) continue;
      doomed.push_back(n.get());
    }
    for (Node* n : doomed) {
      Value* in = n->inputs[0];
      Value* out = n->outputs[0];
      bool out_is_output = g.IsOutput(out);
      g.ReplaceAllUses(out, in);
      g.EraseNode(n);
      if (out_is_output) {
        // The surviving value takes the graph-visible output name.
        std::string keep = out->name;
        g.EraseDeadValues();
        WBS_RETURN_IF_ERROR(g.RenameValue(in, keep));
      }
    }
    g.EraseDeadValues();
    *changed = !doomed.empty();
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateRemoveIdentityPass() { return std::make_unique<RemoveIdentityPass>(); }

}  // namespace wbs::ir

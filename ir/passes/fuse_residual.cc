// fuse-residual: folds a residual Add into the Conv that feeds it,
//   y = Conv(x, W[, B]);  z = Add(y, r)   (or Add(r, y))
// becomes z = Conv(x, W, B or omitted, r) {wbs.residual=1} (contract in
// ir/graph.h), so the kernel adds r while its output is still in cache and
// the Add node and its pass over memory disappear. Runs before
// fuse-activation, which then fuses a following Relu into the same Conv.
//
// Fused only when the result is exactly the Add's: y has no other reader and
// is no graph output, the Conv has no fused activation yet (the Add would
// come after it), and r has y's dtype and exact static shape (no
// broadcasting). When both Add operands qualify (a ResNet downsample block),
// the first one is fused and the other becomes its residual. The exporter
// writes the Add back as its own node.
#include "ir/pass.h"

namespace wbs::ir {
namespace {

constexpr const char* kResidualAttr = "wbs.residual";

bool IsFloatDType(DType t) { return t == DType::kF32 || t == DType::kF64; }

// True when Add operand `y` is a Conv output that may absorb `r`.
bool CanFuse(const Graph& g, const Value* y, const Value* r) {
  if (!y || !r || !y->producer) return false;
  const Node* conv = y->producer;
  if (conv->op_type != "Conv" || !conv->domain.empty() || conv->outputs.size() != 1 ||
      conv->num_inputs() < 2 || conv->num_inputs() > 3 || conv->Has("wbs.activation") ||
      conv->Has(kResidualAttr))
    return false;
  if (y->users.size() != 1 || g.IsOutput(y)) return false;
  return IsFloatDType(y->dtype) && r->dtype == y->dtype && y->shape_is_static() &&
         r->shape_is_static() && r->shape == y->shape;
}

class FuseResidualPass : public Pass {
 public:
  std::string name() const override { return "fuse-residual"; }
  std::string summary() const override { return "fuse a residual Add into the Conv feeding it"; }

  Status Run(Graph& g, bool* changed) override {
    std::vector<Node*> adds;
    for (auto& n : g.nodes())
      if (n->op_type == "Add" && n->domain.empty() && n->num_inputs() == 2 &&
          n->outputs.size() == 1 && n->outputs[0])
        adds.push_back(n.get());
    int fused = 0;
    for (Node* add : adds) {
      for (int side : {0, 1}) {
        Value* y = add->input(side);
        Value* r = add->input(1 - side);
        if (!CanFuse(g, y, r) || add->outputs[0]->dtype != y->dtype) continue;
        Node* conv = y->producer;
        if (conv->num_inputs() < 3) g.SetInput(conv, 2, nullptr);  // the bias slot
        g.SetInput(conv, 3, r);
        conv->attrs[kResidualAttr] = int64_t{1};
        Value* z = add->outputs[0];
        g.EraseNode(add);
        conv->outputs[0] = z;
        z->producer = conv;
        z->producer_output = 0;
        y->producer = nullptr;
        ++fused;
        break;
      }
    }
    g.EraseDeadValues();
    *changed = fused > 0;
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseResidualPass() { return std::make_unique<FuseResidualPass>(); }

}  // namespace wbs::ir

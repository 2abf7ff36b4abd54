// fuse-activation: marks Conv / ConvTranspose / Gemm / MatMul + activation
// pairs: the activation's parameters move into the producer's "wbs.activation*"
// attributes (contract in ir/graph.h) and the activation node disappears, so
// kernels apply it while the output is still in cache. The exporter writes
// the activation back as its own node. A Conv that fuse-residual (which runs
// first) gave a residual takes the activation too; it applies after the
// residual, as ir/graph.h defines.
#include <limits>

#include "ir/pass.h"

namespace wbs::ir {
namespace {

// Reads a scalar f32 constant input, or returns `def` when the input is absent.
bool ScalarInput(const Node& n, size_t i, float def, float* out) {
  const Value* v = n.input(i);
  if (!v) {
    *out = def;
    return true;
  }
  if (!v->is_constant() || v->constant.dtype() != DType::kF32 || v->constant.numel() != 1) return false;
  *out = v->constant.data<float>()[0];
  return true;
}

// Fills alpha/beta for a supported activation; false if it cannot be fused.
bool ActivationParams(const Node& act, float* alpha, float* beta) {
  const std::string& op = act.op_type;
  *alpha = 0.0f;
  *beta = 0.0f;
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh") return true;
  if (op == "LeakyRelu") {
    *alpha = act.GetFloat("alpha", 0.01f);
    return true;
  }
  if (op == "HardSigmoid") {
    *alpha = act.GetFloat("alpha", 0.2f);
    *beta = act.GetFloat("beta", 0.5f);
    return true;
  }
  if (op == "Clip") {
    const float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (act.Has("min") || act.Has("max") || act.num_inputs() <= 1) {
      *alpha = act.GetFloat("min", lo);
      *beta = act.GetFloat("max", hi);
      return true;
    }
    return ScalarInput(act, 1, lo, alpha) && ScalarInput(act, 2, hi, beta);
  }
  return false;
}

class FuseActivationPass : public Pass {
 public:
  std::string name() const override { return "fuse-activation"; }
  std::string summary() const override { return "fuse Relu/Clip/LeakyRelu/... into Conv/Gemm/MatMul"; }

  Status Run(Graph& g, bool* changed) override {
    std::vector<Node*> producers;
    for (auto& n : g.nodes()) {
      const std::string& op = n->op_type;
      if ((op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul") &&
          !n->Has("wbs.activation") && n->outputs.size() == 1 && n->outputs[0])
        producers.push_back(n.get());
    }
    int fused = 0;
    for (Node* p : producers) {
      Value* y = p->outputs[0];
      if (y->users.size() != 1 || g.IsOutput(y)) continue;
      Node* act = y->users[0];
      if (act->input(0) != y || act->outputs.size() != 1 || y->dtype != DType::kF32) continue;
      float alpha, beta;
      if (!ActivationParams(*act, &alpha, &beta)) continue;
      p->attrs["wbs.activation"] = act->op_type;
      p->attrs["wbs.activation_alpha"] = alpha;
      p->attrs["wbs.activation_beta"] = beta;
      Value* z = act->outputs[0];
      g.EraseNode(act);
      p->outputs[0] = z;
      z->producer = p;
      z->producer_output = 0;
      y->producer = nullptr;
      ++fused;
    }
    g.EraseDeadValues();
    *changed = fused > 0;
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFuseActivationPass() { return std::make_unique<FuseActivationPass>(); }

}  // namespace wbs::ir

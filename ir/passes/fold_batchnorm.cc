// fold-batchnorm: folds an inference BatchNormalization into the Conv,
// ConvTranspose (group 1) or Gemm that feeds it, when that producer's output
// has no other reader and all parameters are constant:
//   BN(y) = s * (y - mean) + beta,  s = gamma / sqrt(var + eps)
//   Conv: W'[o] = W[o] * s[o],  b'[o] = (b[o] - mean[o]) * s[o] + beta[o]
// New constants are created (weights may be shared with other graphs).
#include <cmath>

#include "ir/pass.h"

namespace wbs::ir {
namespace {

const Tensor* ConstF32(const Value* v) {
  if (!v || !v->is_constant() || v->constant.dtype() != DType::kF32) return nullptr;
  return &v->constant;
}

class FoldBatchNormPass : public Pass {
 public:
  std::string name() const override { return "fold-batchnorm"; }
  std::string summary() const override { return "fold BatchNormalization into the preceding Conv/Gemm"; }

  Status Run(Graph& g, bool* changed) override {
    std::vector<Node*> bns;
    for (auto& n : g.nodes())
      if (n->op_type == "BatchNormalization") bns.push_back(n.get());
    int folded = 0;
    for (Node* bn : bns) {
      if (TryFold(g, bn)) ++folded;
    }
    g.EraseDeadValues();
    *changed = folded > 0;
    return Status::Ok();
  }

 private:
  static bool TryFold(Graph& g, Node* bn) {
    if (bn->outputs.size() != 1 || bn->GetInt("training_mode", 0) != 0) return false;
    if (bn->GetInt("spatial", 1) != 1) return false;  // opset < 9 per-activation BN
    Value* x = bn->input(0);
    if (!x || !x->producer || x->users.size() != 1 || g.IsOutput(x)) return false;
    Node* p = x->producer;
    const Tensor* gamma = ConstF32(bn->input(1));
    const Tensor* beta = ConstF32(bn->input(2));
    const Tensor* mean = ConstF32(bn->input(3));
    const Tensor* var = ConstF32(bn->input(4));
    if (!gamma || !beta || !mean || !var) return false;
    const int64_t c = gamma->numel();
    if (beta->numel() != c || mean->numel() != c || var->numel() != c) return false;
    const float eps = bn->GetFloat("epsilon", 1e-5f);
    std::vector<float> s(c), shift(c);
    for (int64_t i = 0; i < c; ++i) {
      s[i] = gamma->data<float>()[i] / std::sqrt(var->data<float>()[i] + eps);
      shift[i] = beta->data<float>()[i] - mean->data<float>()[i] * s[i];
    }
    const Tensor* w = ConstF32(p->input(1));
    // A fused activation or residual comes after the conv's own output.
    if (!w || p->Has("wbs.activation") || p->Has("wbs.residual")) return false;
    Tensor new_w = w->Clone();
    std::vector<float> bias(c, 0.0f);
    if (p->op_type == "Conv") {
      if (w->rank() < 3 || w->dim(0) != c) return false;
      const int64_t per_out = w->numel() / c;
      for (int64_t o = 0; o < c; ++o)
        for (int64_t k = 0; k < per_out; ++k) new_w.data<float>()[o * per_out + k] *= s[o];
      if (!ReadBias(p->input(2), c, &bias)) return false;
    } else if (p->op_type == "ConvTranspose") {
      // Weight is CIN x COUT/group x k...; fold only group 1.
      if (p->GetInt("group", 1) != 1 || w->rank() < 3 || w->dim(1) != c) return false;
      const int64_t cin = w->dim(0), per = w->numel() / (cin * c);
      for (int64_t i = 0; i < cin; ++i)
        for (int64_t o = 0; o < c; ++o)
          for (int64_t k = 0; k < per; ++k) new_w.data<float>()[(i * c + o) * per + k] *= s[o];
      if (!ReadBias(p->input(2), c, &bias)) return false;
    } else if (p->op_type == "Gemm") {
      // Y = alpha * A' B' + beta_c * C, output channels along N (BN on [M, N]).
      if (w->rank() != 2 || p->GetInt("transA", 0) != 0) return false;
      const bool trans_b = p->GetInt("transB", 0) != 0;
      const int64_t n = trans_b ? w->dim(0) : w->dim(1);
      const int64_t k = trans_b ? w->dim(1) : w->dim(0);
      if (n != c || !x->has_shape || x->shape.size() != 2) return false;
      for (int64_t r = 0; r < k; ++r)
        for (int64_t o = 0; o < n; ++o) {
          float& e = trans_b ? new_w.data<float>()[o * k + r] : new_w.data<float>()[r * n + o];
          e *= s[o];
        }
      if (!ReadBias(p->input(2), c, &bias)) return false;
      const float beta_c = p->GetFloat("beta", 1.0f);
      for (float& b : bias) b *= beta_c;
      p->attrs["beta"] = 1.0f;
    } else {
      return false;
    }
    for (int64_t o = 0; o < c; ++o) bias[o] = bias[o] * s[o] + shift[o];
    Value* wv = g.AddConstant(p->input(1)->name + "_bnfolded", std::move(new_w));
    Value* bv = g.AddConstant(p->name + ".bias_bnfolded", Tensor::FromVector<float>({c}, bias));
    // Scaling output channels keeps zero blocks zero, so a block mask carries
    // over (checked: a non-finite scale would break it, and then it is dropped).
    if (const auto& m = p->input(1)->block_mask;
        m && CheckMaskAgainstWeight(*m, wv->constant, "").ok()) {
      wv->block_mask = m;
    }
    g.SetInput(p, 1, wv);
    g.SetInput(p, 2, bv);
    // The producer now writes the BN's output value directly.
    Value* y = bn->outputs[0];
    g.EraseNode(bn);
    p->outputs[x->producer_output] = y;
    y->producer = p;
    y->producer_output = x->producer_output;
    x->producer = nullptr;
    return true;
  }

  // Bias as a length-c vector (absent = zeros; Gemm C may be a scalar or [1, c]).
  static bool ReadBias(const Value* b, int64_t c, std::vector<float>* out) {
    if (!b) return true;
    const Tensor* t = ConstF32(b);
    if (!t) return false;
    if (t->numel() == c) {
      for (int64_t i = 0; i < c; ++i) (*out)[i] = t->data<float>()[i];
      return true;
    }
    if (t->numel() == 1) {
      for (float& v : *out) v = t->data<float>()[0];
      return true;
    }
    return false;
  }
};

}  // namespace

std::unique_ptr<Pass> CreateFoldBatchNormPass() { return std::make_unique<FoldBatchNormPass>(); }

}  // namespace wbs::ir

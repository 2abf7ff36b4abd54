// The quantized IR <-> ONNX QDQ form (docs/int8.md, "ONNX form").
//
// lower-qdq (a pass, first in the default pipeline): recognises
//   DequantizeLinear(x8) [, DequantizeLinear(W8 const), DequantizeLinear(B32 const)]
//     -> Conv | Gemm | MatMul | Add | Concat | MaxPool | AveragePool | GlobalAveragePool
//     [-> Relu | Clip] -> QuantizeLinear -> y8
// and replaces it by the integer op (QConv, QGemm, QAdd, ...) on x8 / y8, the
// scales and zero points moving onto the values' QuantParams. A Conv / Gemm
// whose output is not quantized becomes a QConv / QGemm with an f32 output
// (the dequantized accumulator). Anything else is left as it is, so a QDQ
// model that does not follow these patterns still runs (in f32, like ONNX
// Runtime's plain QDQ semantics).
//
// ExpandQdq (used by the exporter): the inverse, so ONNX Runtime and every
// other ONNX tool can run the model: each integer op becomes
// DequantizeLinear on its inputs, the f32 op, the activation and a
// QuantizeLinear, with weights stored as s8 (per-channel scales, axis 0) and
// biases as s32 initializers.
#include <cmath>
#include <limits>
#include <set>

#include "ir/pass.h"

namespace wbs::ir {
namespace {

bool Is8Bit(DType t) { return t == DType::kU8 || t == DType::kI8; }

bool IsPowerOfTwo(float s) {
  int e = 0;
  return s > 0 && std::frexp(s, &e) == 0.5f;
}

// Parameters of a DequantizeLinear / QuantizeLinear node with constant
// scale and zero point.
bool ReadParams(const Node& n, QuantParams* q, DType value_type) {
  const Value* s = n.input(1);
  const Value* z = n.input(2);
  if (!s || !s->is_constant() || s->constant.dtype() != DType::kF32) return false;
  if (z && !z->is_constant()) return false;
  q->scale = s->constant.ToVector<float>();
  if (q->scale.empty()) return false;
  if (z) {
    q->zero_point = z->constant.ToVector<int32_t>();
    if (q->zero_point.size() != q->scale.size()) return false;
  } else {
    q->zero_point.assign(q->scale.size(), 0);
  }
  q->dtype = static_cast<int32_t>(z ? z->constant.dtype() : value_type);
  q->axis = q->scale.size() > 1 || s->constant.rank() == 1 ? static_cast<int>(n.GetInt("axis", 1)) : -1;
  if (q->scale.size() == 1) q->axis = -1;
  q->power_of_two = true;
  for (float v : q->scale) q->power_of_two = q->power_of_two && IsPowerOfTwo(v);
  return true;
}

// x8 -> DequantizeLinear (per tensor): fills the 8-bit input and its params.
bool PerTensorDq(const Value* v, Value** x8, QuantParams* q) {
  if (!v || !v->producer || v->producer->op_type != "DequantizeLinear") return false;
  const Node& dq = *v->producer;
  Value* x = dq.input(0);
  if (!x || !Is8Bit(x->dtype)) return false;
  if (!ReadParams(dq, q, x->dtype) || q->scale.size() != 1) return false;
  *x8 = x;
  return true;
}

// The single QuantizeLinear (per tensor) reading `v`, or nullptr.
Node* SingleQuantizeUser(const Graph& g, const Value* v, QuantParams* q) {
  if (g.IsOutput(v) || v->users.size() != 1) return nullptr;
  Node* u = v->users[0];
  if (u->op_type != "QuantizeLinear" || u->input(0) != v) return nullptr;
  const Value* z = u->input(2);
  const DType t = z ? z->dtype : DType::kU8;
  if (!ReadParams(*u, q, t) || q->scale.size() != 1 || !Is8Bit(t)) return nullptr;
  return u;
}

bool ClipBounds(const Node& c, float* lo, float* hi) {
  *lo = -std::numeric_limits<float>::infinity();
  *hi = std::numeric_limits<float>::infinity();
  if (c.Has("min") || c.Has("max")) {
    *lo = c.GetFloat("min", *lo);
    *hi = c.GetFloat("max", *hi);
    return true;
  }
  for (size_t i = 1; i < 3; ++i) {
    const Value* v = c.input(i);
    if (!v) continue;
    if (!v->is_constant() || v->constant.dtype() != DType::kF32 || v->constant.numel() != 1) return false;
    (i == 1 ? *lo : *hi) = v->constant.data<float>()[0];
  }
  return true;
}

void SetQuant(Value* v, const QuantParams& q) { v->quant = std::make_shared<QuantParams>(q); }

class LowerQdqPass : public Pass {
 public:
  std::string name() const override { return "lower-qdq"; }
  std::string summary() const override {
    return "QDQ patterns (DequantizeLinear -> op -> QuantizeLinear) into integer ops";
  }

  Status Run(Graph& g, bool* changed) override {
    std::vector<Node*> candidates;
    for (const auto& n : g.nodes()) candidates.push_back(n.get());
    std::set<Node*> erased;
    for (Node* n : candidates) {
      if (erased.count(n)) continue;
      if (Lower(g, n, &erased)) *changed = true;
    }
    if (*changed) {
      g.EraseDeadNodes();
      g.EraseDeadValues();
    }
    return Status::Ok();
  }

 private:
  bool Lower(Graph& g, Node* n, std::set<Node*>* erased) {
    const std::string& op = n->op_type;
    const bool linear = op == "Conv" || op == "Gemm" || op == "MatMul";
    const bool multi = op == "Add" || op == "Concat";
    const bool pool = op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool";
    if (!linear && !multi && !pool) return false;
    if (n->outputs.size() != 1 || n->Has("wbs.residual") || n->Has("wbs.activation")) return false;
    if (op == "Gemm" && (n->GetInt("transA", 0) != 0 || n->GetFloat("alpha", 1.f) != 1.f ||
                         n->GetFloat("beta", 1.f) != 1.f))
      return false;
    // Activation inputs.
    const size_t n_act = linear ? 1 : n->inputs.size();
    std::vector<Value*> x8(n_act);
    std::vector<QuantParams> xq(n_act);
    for (size_t i = 0; i < n_act; ++i)
      if (!PerTensorDq(n->input(i), &x8[i], &xq[i])) return false;
    // Output: [Relu | Clip] -> QuantizeLinear, or f32 (Conv/Gemm/MatMul only).
    Value* y = n->outputs[0];
    Node* act = nullptr;
    if (!g.IsOutput(y) && y->users.size() == 1 &&
        (y->users[0]->op_type == "Relu" || y->users[0]->op_type == "Clip") &&
        (linear || op == "Add"))
      act = y->users[0];
    QuantParams yq;
    Node* qnode = SingleQuantizeUser(g, act ? act->outputs[0] : y, &yq);
    if (!qnode) {
      if (act) {
        act = nullptr;
        qnode = SingleQuantizeUser(g, y, &yq);
      }
    }
    if (!qnode && !linear) return false;
    if (pool && !(yq.scale == xq[0].scale && yq.zero_point == xq[0].zero_point &&
                  yq.dtype == xq[0].dtype))
      return false;
    float clip_lo = 0, clip_hi = 0;
    if (act && act->op_type == "Clip" && !ClipBounds(*act, &clip_lo, &clip_hi)) return false;

    std::vector<Value*> ins = x8;
    if (linear) {
      Value* w8 = nullptr;
      Value* b32 = nullptr;
      if (!LinearWeights(g, *n, xq[0], &w8, &b32)) return false;
      ins.push_back(w8);
      if (b32) ins.push_back(b32);
    }
    for (size_t i = 0; i < n_act; ++i) SetQuant(x8[i], xq[i]);

    Value* out = qnode ? qnode->outputs[0] : y;
    const std::string qop = op == "MatMul" ? "QGemm" : "Q" + op;
    std::map<std::string, Attribute> attrs = n->attrs;
    const std::string name = n->name;
    if (op == "Gemm" || op == "MatMul") {
      attrs.erase("transA");
      attrs.erase("alpha");
      attrs.erase("beta");
      attrs["transB"] = int64_t{1};
    }
    if (act) {
      attrs["wbs.activation"] = act->op_type;
      if (act->op_type == "Clip") {
        attrs["wbs.activation_alpha"] = clip_lo;
        attrs["wbs.activation_beta"] = clip_hi;
      }
    }
    // Detach: the final value gets the integer op as its producer.
    for (Node* e : {qnode, act, n}) {
      if (!e) continue;
      erased->insert(e);
      g.EraseNode(e);
    }
    if (qnode) SetQuant(out, yq);
    Node* q = g.AddNode(qop, ins, {out}, name);
    q->attrs = std::move(attrs);
    return true;
  }

  // W: DequantizeLinear(s8 const, zero points 0, per tensor or axis 0 of the
  // [Cout, ...] weight); B: DequantizeLinear(s32 const) with scale s_x*s_w.
  // Gemm transB=0 / MatMul weights are transposed to [N, K].
  bool LinearWeights(Graph& g, const Node& n, const QuantParams& xq, Value** w8, Value** b32) {
    const Value* wv = n.input(1);
    if (!wv || !wv->producer || wv->producer->op_type != "DequantizeLinear") return false;
    const Node& wdq = *wv->producer;
    Value* w = wdq.input(0);
    if (!w || !w->is_constant() || w->constant.dtype() != DType::kI8) return false;
    QuantParams wq;
    if (!ReadParams(wdq, &wq, DType::kI8)) return false;
    for (int32_t z : wq.zero_point)
      if (z != 0) return false;
    const bool transpose = n.op_type == "MatMul" || (n.op_type == "Gemm" && n.GetInt("transB", 0) == 0);
    Tensor wt = w->constant;
    if (transpose) {
      if (wt.rank() != 2 || (wq.scale.size() != 1 && wq.axis != 1)) return false;
      Tensor t(DType::kI8, {wt.dim(1), wt.dim(0)});
      for (int64_t i = 0; i < wt.dim(0); ++i)
        for (int64_t j = 0; j < wt.dim(1); ++j) t.data<int8_t>()[j * wt.dim(0) + i] = wt.data<int8_t>()[i * wt.dim(1) + j];
      wt = t;
    } else if (wq.scale.size() != 1 && wq.axis != 0) {
      return false;
    }
    const int64_t m = wt.dim(0);
    if (wq.scale.size() != 1 && static_cast<int64_t>(wq.scale.size()) != m) return false;
    wq.axis = wq.scale.size() == 1 ? -1 : 0;
    if (wq.scale.size() != 1) wq.axis = 0;
    *b32 = nullptr;
    if (const Value* bv = n.input(2)) {
      if (!bv->producer || bv->producer->op_type != "DequantizeLinear") return false;
      const Node& bdq = *bv->producer;
      Value* b = bdq.input(0);
      if (!b || !b->is_constant() || b->constant.dtype() != DType::kI32 || b->constant.numel() != m)
        return false;
      QuantParams bq;
      if (!ReadParams(bdq, &bq, DType::kI32)) return false;
      for (int64_t c = 0; c < m; ++c) {
        if (bq.zero_point[bq.zero_point.size() == 1 ? 0 : c] != 0) return false;
        const double want = static_cast<double>(xq.scale[0]) * wq.scale[wq.scale.size() == 1 ? 0 : c];
        const double have = bq.scale[bq.scale.size() == 1 ? 0 : c];
        if (std::fabs(have - want) > 1e-6 * want) return false;  // not s_x * s_w
      }
      if (b->constant.rank() != 1) {
        Result<Tensor> r = b->constant.Reshaped({m});
        if (!r.ok()) return false;
        Value* nb = g.AddConstant(b->name + "_1d", *r);
        b = nb;
      }
      bq.axis = 0;
      SetQuant(b, bq);
      *b32 = b;
    }
    Value* wout = w;
    if (transpose || w->users.size() > 1) {
      wout = g.AddConstant(w->name, wt);
      wout->block_mask = w->block_mask;
      if (wout->block_mask && transpose) {
        auto m2 = std::make_shared<BlockMask>(*w->block_mask);
        m2->layout = MaskLayout::kOutIn;
        wout->block_mask = m2;
      }
    }
    SetQuant(wout, wq);
    *w8 = wout;
    return true;
  }
};

// Scalar constants for a DequantizeLinear/QuantizeLinear of per-tensor
// parameters.
std::pair<Value*, Value*> ScaleZp(Graph& g, const std::string& base, const QuantParams& q) {
  Value* s = g.AddConstant(base + "_scale", Tensor::Scalar<float>(q.scale[0]));
  Tensor z = static_cast<DType>(q.dtype) == DType::kU8
                 ? Tensor::Scalar<uint8_t>(static_cast<uint8_t>(q.zero_point[0]))
                 : Tensor::Scalar<int8_t>(static_cast<int8_t>(q.zero_point[0]));
  return {s, g.AddConstant(base + "_zero_point", std::move(z))};
}

class Expander {
 public:
  explicit Expander(Graph& g) : g_(g) {}

  Status Run() {
    std::vector<Node*> nodes;
    for (const auto& n : g_.nodes()) nodes.push_back(n.get());
    for (Node* n : nodes) {
      const std::string op = n->op_type;
      if (op.size() < 2 || op[0] != 'Q' || op == "QuantizeLinear") continue;
      WBS_RETURN_IF_ERROR(Expand(n));
    }
    if (g_.opset < 13) g_.opset = 13;
    return Status::Ok();
  }

 private:
  Result<Value*> Dq(Value* x8, const std::string& what) {
    if (auto it = dq_.find(x8); it != dq_.end()) return it->second;
    if (!x8->quant) return InvalidArgument("{}: '{}' has no quantization parameters", what, x8->name);
    auto [s, z] = ScaleZp(g_, x8->name + "_dq", *x8->quant);
    Value* out = g_.AddValue(x8->name + "_dq");
    g_.AddNode("DequantizeLinear", {x8, s, z}, {out}, x8->name + "_dequantize");
    dq_[x8] = out;
    return out;
  }

  // DequantizeLinear of a per-channel constant (weights s8, biases s32).
  Result<Value*> DqChannels(Value* c, const std::string& what) {
    if (!c->quant) return InvalidArgument("{}: '{}' has no quantization parameters", what, c->name);
    const QuantParams& q = *c->quant;
    const int64_t n = static_cast<int64_t>(q.scale.size());
    Value* s = n == 1 ? g_.AddConstant(c->name + "_scale", Tensor::Scalar<float>(q.scale[0]))
                      : g_.AddConstant(c->name + "_scale", Tensor::FromVector<float>({n}, q.scale));
    std::vector<Value*> ins = {c, s};
    if (c->constant.dtype() == DType::kI8) {
      std::vector<int8_t> z(static_cast<size_t>(n), 0);
      ins.push_back(n == 1 ? g_.AddConstant(c->name + "_zero_point", Tensor::Scalar<int8_t>(0))
                           : g_.AddConstant(c->name + "_zero_point", Tensor::FromVector<int8_t>({n}, z)));
    }
    Value* out = g_.AddValue(c->name + "_dq");
    Node* d = g_.AddNode("DequantizeLinear", ins, {out}, c->name + "_dequantize");
    if (n > 1) d->attrs["axis"] = int64_t{0};
    return out;
  }

  Status Expand(Node* n) {
    const std::string op = n->op_type;
    const std::string what = n->Describe();
    const std::string fop = op == "QGemm" ? "Gemm" : op.substr(1);
    const bool linear = op == "QConv" || op == "QGemm";
    std::vector<Value*> ins;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Value* v = n->inputs[i];
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      if (linear && i > 0) {
        WBS_ASSIGN_OR_RETURN(Value * d, DqChannels(v, what));
        ins.push_back(d);
      } else {
        WBS_ASSIGN_OR_RETURN(Value * d, Dq(v, what));
        ins.push_back(d);
      }
    }
    Value* y = n->outputs[0];
    std::map<std::string, Attribute> attrs;
    std::string act;
    float alpha = 0, beta = 0;
    for (const auto& [k, v] : n->attrs) {
      if (k.rfind("wbs.", 0) != 0) attrs[k] = v;
    }
    act = n->GetString("wbs.activation", "");
    alpha = n->GetFloat("wbs.activation_alpha", -std::numeric_limits<float>::infinity());
    beta = n->GetFloat("wbs.activation_beta", std::numeric_limits<float>::infinity());
    const std::string name = n->name;
    g_.EraseNode(n);
    const bool quantized_out = y->quant != nullptr;
    Value* f = quantized_out ? g_.AddValue(y->name + "_f") : y;
    Node* fn = g_.AddNode(fop, ins, {act.empty() ? f : g_.AddValue(y->name + "_preact")}, name);
    fn->attrs = attrs;
    if (!act.empty()) {
      std::vector<Value*> ai = {fn->outputs[0]};
      if (act == "Clip") {
        ai.push_back(g_.AddConstant(name + "_clip_min", Tensor::Scalar<float>(alpha)));
        ai.push_back(g_.AddConstant(name + "_clip_max", Tensor::Scalar<float>(beta)));
      } else if (act != "Relu") {
        return Unimplemented("{}: fused activation {} in an integer op", what, act);
      }
      g_.AddNode(act, ai, {f}, name + "_" + act);
    }
    if (quantized_out) {
      auto [s, z] = ScaleZp(g_, y->name, *y->quant);
      g_.AddNode("QuantizeLinear", {f, s, z}, {y}, name + "_quantize");
    }
    return Status::Ok();
  }

  Graph& g_;
  std::map<Value*, Value*> dq_;
};

}  // namespace

std::unique_ptr<Pass> CreateLowerQdqPass() { return std::make_unique<LowerQdqPass>(); }

bool HasIntegerOps(const Graph& graph) {
  for (const auto& n : graph.nodes()) {
    const std::string& op = n->op_type;
    if (op.size() > 1 && op[0] == 'Q' && op != "QuantizeLinear") return true;
  }
  return false;
}

Status ExpandQdq(Graph& graph) {
  Expander e(graph);
  WBS_RETURN_IF_ERROR(e.Run());
  WBS_RETURN_IF_ERROR(graph.TopologicalSort());
  return graph.Verify();
}

}  // namespace wbs::ir

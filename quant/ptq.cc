#include "quant/ptq.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "core/block_mask.h"
#include "core/quant_math.h"
#include "ir/op_schema.h"
#include "ir/pass.h"
#include "runtime/session.h"

namespace wbs::quant {

namespace {

constexpr int32_t kWeightMax = 127;  // symmetric s8 weights: -128 is never used
constexpr int64_t kInt32Max = 2147483647;
constexpr int kBlock = 8;

// The exponent k with 2^-k the smallest power of two >= v (v > 0).
int PotExponent(double v) { return -static_cast<int>(std::ceil(std::log2(v))); }

}  // namespace

QuantParams ActivationParams(ActRange r, DType type, bool power_of_two) {
  QuantParams q;
  q.dtype = static_cast<int32_t>(type);
  q.power_of_two = power_of_two;
  const double lo = std::min<double>(r.lo, 0.0), hi = std::max<double>(r.hi, 0.0);
  if (power_of_two) {
    // Zero point 0: u8 covers [0, 255 s] (used only for a non-negative
    // range), s8 covers [-128 s, 127 s].
    const bool unsigned_ok = type == DType::kU8 && lo >= 0;
    if (type == DType::kU8 && !unsigned_ok) q.dtype = static_cast<int32_t>(DType::kI8);
    const double m = unsigned_ok ? hi / 255.0 : std::max(-lo / 128.0, hi / 127.0);
    q.scale = {m > 0 ? std::ldexp(1.0f, -PotExponent(m)) : 1.0f};
    q.zero_point = {0};
    return q;
  }
  double s = (hi - lo) / 255.0;
  if (!(s > 0) || !std::isfinite(s)) s = 1.0;
  const float scale = static_cast<float>(s);
  const int32_t qmin = type == DType::kU8 ? 0 : -128, qmax = type == DType::kU8 ? 255 : 127;
  const int64_t z = qmin + RoundHalfAway(-lo / scale);
  q.scale = {scale};
  q.zero_point = {static_cast<int32_t>(std::clamp<int64_t>(z, qmin, qmax))};
  return q;
}

Tensor QuantizeWeightPerChannel(const Tensor& w, bool power_of_two, std::vector<float>* scales) {
  const int64_t m = w.dim(0);
  const int64_t per = m > 0 ? w.numel() / m : 0;
  const float* wd = w.data<float>();
  Tensor q(DType::kI8, w.shape());
  int8_t* qd = q.data<int8_t>();
  scales->assign(static_cast<size_t>(m), 1.f);
  for (int64_t c = 0; c < m; ++c) {
    double amax = 0;
    for (int64_t i = 0; i < per; ++i) amax = std::max<double>(amax, std::fabs(wd[c * per + i]));
    float s = 1.f;  // an all-zero channel (docs/int8.md)
    if (amax > 0) {
      s = power_of_two ? std::ldexp(1.0f, -PotExponent(amax / kWeightMax))
                       : static_cast<float>(amax / kWeightMax);
    }
    (*scales)[c] = s;
    for (int64_t i = 0; i < per; ++i) {
      const int64_t v = RoundHalfAway(static_cast<double>(wd[c * per + i]) / s);
      qd[c * per + i] = static_cast<int8_t>(std::clamp<int64_t>(v, -kWeightMax, kWeightMax));
    }
  }
  return q;
}

Result<std::unique_ptr<ir::Graph>> PrepareFloatGraph(const ir::Graph& graph) {
  std::unique_ptr<ir::Graph> g = graph.Clone();
  if (g->inputs.size() != 1) {
    return Unimplemented("graph '{}': quantization needs exactly one input, found {}", g->name,
                         g->inputs.size());
  }
  std::vector<Shape> declared;
  for (const ir::Value* v : g->inputs) declared.push_back(v->shape);
  WBS_RETURN_IF_ERROR(ir::ResolveInputShapes(*g, {}));
  WBS_RETURN_IF_ERROR(ir::InferShapes(*g));
  auto evaluator = runtime::CreateReferenceEvaluator();
  ir::PassManager pm;
  ir::AddDefaultPasses(pm, evaluator.get(), /*fold_bn=*/true, /*fuse_activations=*/true,
                       /*fuse_residuals=*/false);
  WBS_RETURN_IF_ERROR(pm.Run(*g));
  for (size_t i = 0; i < g->inputs.size(); ++i) {
    if (g->inputs[i]->dtype != DType::kF32) {
      return Unimplemented("input '{}' is {}; quantization needs an f32 input",
                           g->inputs[i]->name, DTypeName(g->inputs[i]->dtype));
    }
    // Calibration and evaluation run batches: the batch dim becomes free.
    g->inputs[i]->shape = declared[i];
    if (!g->inputs[i]->shape.empty()) g->inputs[i]->shape[0] = -1;
  }
  return g;
}

const Observer* Calibration::Find(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return &observers[i];
  return nullptr;
}

namespace {

// A copy of `g` whose outputs are the original outputs followed by `extra`.
std::unique_ptr<ir::Graph> WithOutputs(const ir::Graph& g, const std::vector<std::string>& extra) {
  std::unique_ptr<ir::Graph> c = g.Clone();
  for (const std::string& n : extra) {
    ir::Value* v = c->FindValue(n);
    if (v && !c->IsOutput(v)) c->outputs.push_back(v);
  }
  return c;
}

// Runs `g` on each batch, calling fn(batch index, outputs) (a session per
// distinct batch shape).
Status RunBatches(const ir::Graph& g, const std::vector<Tensor>& batches, int threads,
                  runtime::Backend backend,
                  const std::function<void(size_t, const std::vector<Tensor>&)>& fn) {
  std::map<Shape, std::unique_ptr<runtime::Session>> sessions;
  for (size_t b = 0; b < batches.size(); ++b) {
    auto& s = sessions[batches[b].shape()];
    if (!s) {
      runtime::SessionOptions o;
      o.backend = backend;
      o.num_threads = threads;
      o.optimize = false;
      o.input_shapes[g.inputs[0]->name] = batches[b].shape();
      WBS_ASSIGN_OR_RETURN(s, runtime::Session::Create(g, o));
    }
    WBS_ASSIGN_OR_RETURN(std::vector<Tensor> out, s->Run({batches[b]}));
    fn(b, out);
  }
  return Status::Ok();
}

}  // namespace

Result<Calibration> Calibrate(const ir::Graph& prepared, const std::vector<Tensor>& batches,
                              const PtqOptions& options) {
  if (batches.empty()) return InvalidArgument("calibration needs at least one image");
  Calibration cal;
  std::vector<std::string> names;
  for (const auto& n : prepared.nodes())
    for (const ir::Value* v : n->outputs)
      if (v && !v->is_constant() && v->dtype == DType::kF32) names.push_back(v->name);
  std::unique_ptr<ir::Graph> g = WithOutputs(prepared, names);
  // The graph input is observed from the batches themselves.
  cal.names.push_back(prepared.inputs[0]->name);
  cal.observers.emplace_back(options.observer, options.percentile);
  std::vector<size_t> pos = {0};
  for (const std::string& n : names) {
    const ir::Value* v = g->FindValue(n);
    const size_t p = std::find(g->outputs.begin(), g->outputs.end(), v) - g->outputs.begin();
    if (p < g->outputs.size()) {
      cal.names.push_back(n);
      cal.observers.emplace_back(options.observer, options.percentile);
      pos.push_back(p);
    }
  }
  auto input_pos = [&](size_t k, const std::vector<Tensor>& out, size_t b) -> const Tensor& {
    // The graph input is not an output of the session: it is the batch.
    return cal.names[k] == prepared.inputs[0]->name ? batches[b] : out[pos[k]];
  };
  const runtime::Backend backend =
      options.reference_backend ? runtime::Backend::kReference : runtime::Backend::kFast;
  WBS_RETURN_IF_ERROR(RunBatches(*g, batches, options.num_threads, backend,
                                 [&](size_t b, const std::vector<Tensor>& out) {
                                   for (size_t k = 0; k < cal.names.size(); ++k) {
                                     const Tensor& t = input_pos(k, out, b);
                                     cal.observers[k].ObserveRange(t.data<float>(), t.numel());
                                   }
                                 }));
  if (cal.observers.front().needs_histogram()) {
    WBS_RETURN_IF_ERROR(RunBatches(*g, batches, options.num_threads, backend,
                                   [&](size_t b, const std::vector<Tensor>& out) {
                                     for (size_t k = 0; k < cal.names.size(); ++k) {
                                       const Tensor& t = input_pos(k, out, b);
                                       cal.observers[k].ObserveHistogram(t.data<float>(),
                                                                         t.numel());
                                     }
                                   }));
  }
  for (const Tensor& b : batches) cal.images += b.dim(0);
  return cal;
}

namespace {

class Builder {
 public:
  Builder(const ir::Graph& p, const Calibration& cal, const PtqOptions& o, PtqReport* report)
      : p_(p), cal_(cal), o_(o), report_(report), q_(std::make_unique<ir::Graph>()) {}

  Result<std::unique_ptr<ir::Graph>> Build() {
    q_->name = p_.name;
    q_->opset = std::max<int64_t>(p_.opset, 13);  // per-axis DequantizeLinear
    q_->metadata = p_.metadata;
    q_->metadata["wbs.quantization"] =
        fmt::format("observer={} activations={} power_of_two={} calibration_images={}",
                    ObserverName(o_.observer), DTypeName(o_.activation_type),
                    o_.power_of_two ? 1 : 0, cal_.images);
    for (const ir::Value* v : p_.inputs) float_[v] = q_->AddInput(v->name, v->dtype, v->shape);
    // Relu nodes folded into the QAdd before them.
    for (const auto& up : p_.nodes()) {
      const ir::Node& n = *up;
      if (fused_.count(&n)) continue;
      Status s = Lower(n);
      if (!s.ok()) return s;
    }
    for (const ir::Value* v : p_.outputs) {
      WBS_ASSIGN_OR_RETURN(ir::Value * f, Float(v));
      q_->outputs.push_back(f);
    }
    q_->EraseDeadNodes();
    q_->EraseDeadValues();
    WBS_RETURN_IF_ERROR(q_->TopologicalSort());
    WBS_RETURN_IF_ERROR(q_->Verify());
    return std::move(q_);
  }

 private:
  // Calibrated parameters of an f32 activation.
  Result<QuantParams> ParamsOf(const ir::Value* v, LayerReport* lr) {
    const Observer* ob = cal_.Find(v->name);
    if (!ob) return Internal("no calibration data for '{}'", v->name);
    const ActRange r = ob->Range(256);
    QuantParams q = ActivationParams(r, o_.activation_type, o_.power_of_two);
    if (lr) {
      lr->value = v->name;
      lr->dtype = static_cast<DType>(q.dtype);
      lr->scale = q.scale[0];
      lr->zero_point = q.zero_point[0];
      lr->observed_min = ob->min();
      lr->observed_max = ob->max();
      lr->range_lo = r.lo;
      lr->range_hi = r.hi;
      lr->clipped_fraction = ob->ClippedFraction(r);
    }
    return q;
  }

  std::string IntName(const ir::Value* v) const {
    return p_.IsOutput(v) ? v->name + "_q" : v->name;
  }

  ir::Value* Const(const ir::Value* v) {
    auto it = float_.find(v);
    if (it != float_.end()) return it->second;
    ir::Value* c = q_->AddConstant(v->name, v->constant);
    c->block_mask = v->block_mask;
    float_[v] = c;
    return c;
  }

  ir::Value* ScalarConst(const std::string& name, Tensor t) {
    return q_->AddConstant(name, std::move(t));
  }

  // The 8-bit form of an activation (QuantizeLinear of its f32 form if it
  // has no integer producer).
  Result<ir::Value*> Int(const ir::Value* v) {
    if (auto it = int_.find(v); it != int_.end()) return it->second;
    WBS_ASSIGN_OR_RETURN(ir::Value * f, Float(v));
    LayerReport lr;
    lr.node = v->producer ? v->producer->name : v->name;
    lr.op_type = "QuantizeLinear";
    WBS_ASSIGN_OR_RETURN(QuantParams qp, ParamsOf(v, &lr));
    report_->layers.push_back(lr);
    ir::Value* s = ScalarConst(v->name + "_scale", Tensor::Scalar<float>(qp.scale[0]));
    Tensor zt = static_cast<DType>(qp.dtype) == DType::kU8
                    ? Tensor::Scalar<uint8_t>(static_cast<uint8_t>(qp.zero_point[0]))
                    : Tensor::Scalar<int8_t>(static_cast<int8_t>(qp.zero_point[0]));
    ir::Value* z = ScalarConst(v->name + "_zero_point", std::move(zt));
    ir::Value* out = q_->AddValue(v->name + "_q");
    out->quant = std::make_shared<QuantParams>(qp);
    q_->AddNode("QuantizeLinear", {f, s, z}, {out}, v->name + "_quantize");
    int_[v] = out;
    return out;
  }

  // The f32 form of an activation (DequantizeLinear of its 8-bit form).
  Result<ir::Value*> Float(const ir::Value* v) {
    if (v->is_constant()) return Const(v);
    if (auto it = float_.find(v); it != float_.end()) return it->second;
    auto it = int_.find(v);
    if (it == int_.end()) return Internal("value '{}' has no producer in the quantized graph", v->name);
    ir::Value* iv = it->second;
    const QuantParams& qp = *iv->quant;
    ir::Value* s = ScalarConst(v->name + "_dq_scale", Tensor::Scalar<float>(qp.scale[0]));
    Tensor zt = static_cast<DType>(qp.dtype) == DType::kU8
                    ? Tensor::Scalar<uint8_t>(static_cast<uint8_t>(qp.zero_point[0]))
                    : Tensor::Scalar<int8_t>(static_cast<int8_t>(qp.zero_point[0]));
    ir::Value* z = ScalarConst(v->name + "_dq_zero_point", std::move(zt));
    ir::Value* out = q_->AddValue(p_.IsOutput(v) ? v->name : v->name + "_dq");
    q_->AddNode("DequantizeLinear", {iv, s, z}, {out}, v->name + "_dequantize");
    float_[v] = out;
    return out;
  }

  static bool ActivationOk(const ir::Node& n) {
    const std::string a = n.GetString("wbs.activation", "");
    return a.empty() || a == "Relu" || a == "Clip";
  }

  Status Lower(const ir::Node& n) {
    const std::string& op = n.op_type;
    if (op == "Conv" && n.input(1) && n.input(1)->is_constant() &&
        n.input(1)->dtype == DType::kF32 && !n.Has("wbs.residual") && ActivationOk(n) &&
        (!n.input(2) || n.input(2)->is_constant()))
      return LowerLinear(n, /*conv=*/true);
    if ((op == "Gemm" || op == "MatMul") && IsLinearGemm(n)) return LowerLinear(n, false);
    if (op == "Add" && n.input(0) && n.input(1) && !n.input(0)->is_constant() &&
        !n.input(1)->is_constant() && n.inputs.size() == 2)
      return LowerAdd(n);
    if (op == "Concat" && std::none_of(n.inputs.begin(), n.inputs.end(),
                                       [](const ir::Value* v) { return !v || v->is_constant(); }))
      return LowerMulti(n, "QConcat", nullptr);
    if ((op == "MaxPool" && (n.outputs.size() < 2 || !n.outputs[1] || n.outputs[1]->users.empty())) ||
        op == "AveragePool" || op == "GlobalAveragePool")
      return LowerPassThrough(n, "Q" + op);
    if ((op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze" ||
         op == "Transpose" || op == "Identity") &&
        int_.count(n.input(0)))
      return LowerPassThrough(n, op);
    return LowerFloat(n);
  }

  bool IsLinearGemm(const ir::Node& n) const {
    const ir::Value* a = n.input(0);
    const ir::Value* b = n.input(1);
    if (!a || !b || !b->is_constant() || b->dtype != DType::kF32 || b->constant.rank() != 2)
      return false;
    if (!a->has_shape || a->shape.size() != 2 || !ActivationOk(n)) return false;
    if (n.op_type == "MatMul") return true;
    if (n.GetInt("transA", 0) != 0 || n.GetFloat("alpha", 1.f) != 1.f ||
        n.GetFloat("beta", 1.f) != 1.f)
      return false;
    const ir::Value* c = n.input(2);
    const int64_t cols = n.GetInt("transB", 0) ? b->constant.dim(0) : b->constant.dim(1);
    return !c || (c->is_constant() && c->dtype == DType::kF32 && c->constant.numel() == cols);
  }

  Status LowerLinear(const ir::Node& n, bool conv) {
    const ir::Value* y = n.outputs[0];
    LayerReport lr;
    lr.node = n.name;
    lr.op_type = conv ? "QConv" : "QGemm";
    WBS_ASSIGN_OR_RETURN(ir::Value * xi, Int(n.input(0)));
    const QuantParams& xq = *xi->quant;
    // Weight as [Cout, ...] (Gemm transB=0 / MatMul: transposed).
    Tensor w = n.input(1)->constant;
    std::shared_ptr<BlockMask> mask = n.input(1)->block_mask;
    const bool transpose = !conv && (n.op_type == "MatMul" || n.GetInt("transB", 0) == 0);
    if (transpose) {
      Tensor t(DType::kF32, {w.dim(1), w.dim(0)});
      for (int64_t i = 0; i < w.dim(0); ++i)
        for (int64_t j = 0; j < w.dim(1); ++j)
          t.data<float>()[j * w.dim(0) + i] = w.data<float>()[i * w.dim(1) + j];
      w = t;
      if (mask) {
        mask = std::make_shared<BlockMask>(*mask);
        mask->layout = MaskLayout::kOutIn;  // same blocks, now [COUT, CIN]
      }
    }
    std::vector<float> ws;
    Tensor wq = QuantizeWeightPerChannel(w, o_.power_of_two, &ws);
    const int64_t m = w.dim(0);
    const int64_t k = w.numel() / std::max<int64_t>(m, 1);
    const int64_t acc_bound = k * kWeightMax * 255;
    if (acc_bound >= kInt32Max) {
      return Unimplemented("{}: reduction length {} can overflow the s32 accumulator",
                           n.Describe(), k);
    }
    ir::Value* wv = q_->AddConstant(n.input(1)->name, wq);
    auto wp = std::make_shared<QuantParams>();
    wp->dtype = static_cast<int32_t>(DType::kI8);
    wp->scale = ws;
    wp->zero_point.assign(ws.size(), 0);
    wp->axis = 0;
    wp->power_of_two = o_.power_of_two;
    wv->quant = wp;
    if (mask) {
      WBS_RETURN_IF_ERROR(CheckMaskAgainstWeight(*mask, wq, "int8 weight '" + wv->name + "'"));
      wv->block_mask = mask;
    }
    if (w.rank() >= 2) {
      auto zb = MaskFromZeroBlocks(wq, kBlock, kBlock, MaskLayout::kOutIn);
      if (zb.ok()) lr.zero_blocks = zb->num_zero();
    }
    lr.weight_scale_min = *std::min_element(ws.begin(), ws.end());
    lr.weight_scale_max = *std::max_element(ws.begin(), ws.end());
    ir::Value* bv = nullptr;
    if (const ir::Value* b = n.input(2)) {
      const std::vector<float> bf = b->constant.ToVector<float>();
      std::vector<int32_t> bq(static_cast<size_t>(m));
      std::vector<float> bs(static_cast<size_t>(m));
      const int64_t limit = kInt32Max - acc_bound;
      for (int64_t c = 0; c < m; ++c) {
        const double s = static_cast<double>(xq.scale[0]) * ws[c];
        const int64_t v = RoundHalfAway(bf[c] / s);
        const int64_t cl = std::clamp<int64_t>(v, -limit, limit);
        lr.bias_clamped += cl != v;
        bq[c] = static_cast<int32_t>(cl);
        bs[c] = static_cast<float>(s);
      }
      bv = q_->AddConstant(b->name, Tensor::FromVector<int32_t>({m}, bq));
      auto bp = std::make_shared<QuantParams>();
      bp->dtype = static_cast<int32_t>(DType::kI32);
      bp->scale = bs;
      bp->zero_point.assign(bs.size(), 0);
      bp->axis = 0;
      bp->power_of_two = o_.power_of_two;
      bv->quant = bp;
    }
    const bool float_out = p_.IsOutput(y) && !n.Has("wbs.activation");
    ir::Value* out = q_->AddValue(float_out ? y->name : IntName(y));
    if (!float_out) {
      WBS_ASSIGN_OR_RETURN(QuantParams yq, ParamsOf(y, &lr));
      out->quant = std::make_shared<QuantParams>(yq);
    } else {
      lr.value = y->name;
      lr.dtype = DType::kF32;
    }
    std::vector<ir::Value*> ins = {xi, wv};
    if (bv) ins.push_back(bv);
    ir::Node* qn = q_->AddNode(conv ? "QConv" : "QGemm", ins, {out}, n.name);
    for (const auto& [key, val] : n.attrs) {
      if (!conv && (key == "transA" || key == "transB" || key == "alpha" || key == "beta")) continue;
      qn->attrs[key] = val;
    }
    if (!conv) qn->attrs["transB"] = int64_t{1};
    (float_out ? float_ : int_)[y] = out;
    report_->layers.push_back(lr);
    return Status::Ok();
  }

  Status LowerAdd(const ir::Node& n) {
    const ir::Value* y = n.outputs[0];
    const ir::Node* relu = nullptr;
    if (!p_.IsOutput(y) && y->users.size() == 1 && y->users[0]->op_type == "Relu") {
      relu = y->users[0];
      y = relu->outputs[0];
      fused_.insert(relu);
    }
    return LowerMulti(n, "QAdd", relu, y);
  }

  Status LowerMulti(const ir::Node& n, const char* qop, const ir::Node* relu,
                    const ir::Value* y = nullptr) {
    if (!y) y = n.outputs[0];
    LayerReport lr;
    lr.node = n.name;
    lr.op_type = qop;
    std::vector<ir::Value*> ins;
    for (const ir::Value* v : n.inputs) {
      WBS_ASSIGN_OR_RETURN(ir::Value * iv, Int(v));
      ins.push_back(iv);
    }
    ir::Value* out = q_->AddValue(IntName(y));
    WBS_ASSIGN_OR_RETURN(QuantParams yq, ParamsOf(y, &lr));
    out->quant = std::make_shared<QuantParams>(yq);
    ir::Node* qn = q_->AddNode(qop, ins, {out}, n.name);
    qn->attrs = n.attrs;
    if (relu) qn->attrs["wbs.activation"] = std::string("Relu");
    int_[y] = out;
    report_->layers.push_back(lr);
    return Status::Ok();
  }

  // Ops whose output has the input's parameters: pools and data movement.
  Status LowerPassThrough(const ir::Node& n, const std::string& qop) {
    WBS_ASSIGN_OR_RETURN(ir::Value * xi, Int(n.input(0)));
    std::vector<ir::Value*> ins = {xi};
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      if (!n.inputs[i]) {
        ins.push_back(nullptr);
        continue;
      }
      if (!n.inputs[i]->is_constant()) return LowerFloat(n);
      ins.push_back(Const(n.inputs[i]));
    }
    const ir::Value* y = n.outputs[0];
    ir::Value* out = q_->AddValue(IntName(y));
    out->quant = xi->quant;
    ir::Node* qn = q_->AddNode(qop, ins, {out}, n.name);
    qn->attrs = n.attrs;
    int_[y] = out;
    return Status::Ok();
  }

  Status LowerFloat(const ir::Node& n) {
    std::vector<ir::Value*> ins;
    for (const ir::Value* v : n.inputs) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      WBS_ASSIGN_OR_RETURN(ir::Value * f, Float(v));
      ins.push_back(f);
    }
    std::vector<ir::Value*> outs;
    for (const ir::Value* v : n.outputs) {
      ir::Value* o = v ? q_->AddValue(v->name) : nullptr;
      if (v) float_[v] = o;
      outs.push_back(o);
    }
    ir::Node* qn = q_->AddNode(n.op_type, ins, outs, n.name);
    qn->attrs = n.attrs;
    qn->domain = n.domain;
    qn->opset = n.opset;
    ++report_->fallback_nodes;
    LayerReport lr;
    lr.node = n.name;
    lr.op_type = "f32 " + n.op_type;
    report_->layers.push_back(lr);
    return Status::Ok();
  }

  const ir::Graph& p_;
  const Calibration& cal_;
  const PtqOptions& o_;
  PtqReport* report_;
  std::unique_ptr<ir::Graph> q_;
  std::map<const ir::Value*, ir::Value*> float_, int_;
  std::set<const ir::Node*> fused_;
};

}  // namespace

Result<std::unique_ptr<ir::Graph>> BuildQuantizedGraph(const ir::Graph& prepared,
                                                       const Calibration& calibration,
                                                       const PtqOptions& options,
                                                       PtqReport* report) {
  if (options.activation_type != DType::kU8 && options.activation_type != DType::kI8)
    return InvalidArgument("activation type must be u8 or s8");
  PtqReport local;
  PtqReport* r = report ? report : &local;
  r->calibration_images = calibration.images;
  Builder b(prepared, calibration, options, r);
  return b.Build();
}

Status MeasureLayerErrors(const ir::Graph& prepared, const ir::Graph& quantized,
                          const std::vector<Tensor>& batches, int num_threads, PtqReport* report) {
  std::vector<std::string> fnames, qnames;
  for (const LayerReport& l : report->layers) {
    if (l.value.empty() || l.op_type == "QuantizeLinear") continue;
    const ir::Value* qv = quantized.FindValue(l.dtype == DType::kF32 ? l.value : l.value);
    const ir::Value* qi = quantized.FindValue(l.value + "_q");
    if (qi && qi->quant) qv = qi;
    if (!qv || !prepared.FindValue(l.value)) continue;
    fnames.push_back(l.value);
    qnames.push_back(qv->name);
  }
  std::unique_ptr<ir::Graph> fg = WithOutputs(prepared, fnames);
  std::unique_ptr<ir::Graph> qg = WithOutputs(quantized, qnames);
  auto out_index = [](const ir::Graph& g, const std::string& n) {
    const ir::Value* v = g.FindValue(n);
    return static_cast<size_t>(std::find(g.outputs.begin(), g.outputs.end(), v) -
                               g.outputs.begin());
  };
  std::vector<std::vector<Tensor>> fout(batches.size());
  WBS_RETURN_IF_ERROR(RunBatches(*fg, batches, num_threads, runtime::Backend::kFast,
                                 [&](size_t b, const std::vector<Tensor>& o) { fout[b] = o; }));
  std::vector<double> sig(fnames.size(), 0.0), noise(fnames.size(), 0.0);
  WBS_RETURN_IF_ERROR(RunBatches(
      *qg, batches, num_threads, runtime::Backend::kFast,
      [&](size_t b, const std::vector<Tensor>& o) {
        for (size_t k = 0; k < fnames.size(); ++k) {
          const Tensor& f = fout[b][out_index(*fg, fnames[k])];
          const ir::Value* qv = qg->FindValue(qnames[k]);
          const Tensor& t = o[out_index(*qg, qnames[k])];
          const float* fd = f.data<float>();
          if (t.numel() != f.numel()) continue;
          for (int64_t i = 0; i < t.numel(); ++i) {
            double d = 0;
            if (t.dtype() == DType::kF32) {
              d = t.data<float>()[i];
            } else {
              const int32_t v = t.dtype() == DType::kU8 ? t.data<uint8_t>()[i] : t.data<int8_t>()[i];
              d = static_cast<double>(qv->quant->scale[0]) * (v - qv->quant->zero_point[0]);
            }
            sig[k] += static_cast<double>(fd[i]) * fd[i];
            noise[k] += (d - fd[i]) * (d - fd[i]);
          }
        }
      }));
  for (LayerReport& l : report->layers) {
    for (size_t k = 0; k < fnames.size(); ++k) {
      if (fnames[k] != l.value) continue;
      l.rel_l2 = sig[k] > 0 ? std::sqrt(noise[k] / sig[k]) : 0.0;
      l.sqnr_db = noise[k] > 0 ? 10.0 * std::log10(sig[k] / noise[k]) : 200.0;
    }
  }
  return Status::Ok();
}

}  // namespace wbs::quant

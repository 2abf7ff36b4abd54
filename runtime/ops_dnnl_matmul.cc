// oneDNN fast paths for Gemm and MatMul (f32) on dnnl::matmul.
//
// Gemm: transposes are strides; alpha is the output scale; beta * C becomes
// the bias when it is constant over rows (pre-divided by alpha, which oneDNN
// applies after the bias) and a binary-add post-op otherwise. A run-time C
// with beta != 1 declines (it would need a per-run scaled copy), and so does
// a run-time C of shape [M, 1] (oneDNN has no per-row binary broadcast).
// MatMul: numpy semantics (1-D promotion, broadcast batch dims); a 2-D B
// folds A's batch into M so one GEMM with packed weights runs.
// A constant B is packed once into oneDNN's preferred layout.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "core/logging.h"
#include "kernels/dnnl/matmul.h"
#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime::dnnl_ops {
namespace {

namespace onednn = kernels::onednn;

bool AllF32(const OpCreateArgs& args, size_t n_inputs) {
  for (size_t i = 0; i < n_inputs && i < args.inputs.size(); ++i)
    if (args.inputs[i].present && args.inputs[i].dtype != DType::kF32) return false;
  return !args.outputs.empty() && args.outputs[0].dtype == DType::kF32;
}

bool HasZeroDim(const Shape& s) {
  return std::any_of(s.begin(), s.end(), [](int64_t d) { return d == 0; });
}

// Runs the node's shape rule on concrete shapes; the output shape or the
// rule's error (which names the node).
Result<Shape> InferOutput(const ir::Node& node, std::initializer_list<const Shape*> shapes) {
  std::vector<ir::ValueInfo> in;
  for (const Shape* s : shapes) {
    ir::ValueInfo v;
    v.dtype = DType::kF32;
    if (s) {
      v.shape = *s;
      v.has_shape = true;
    } else {
      v.present = false;
    }
    in.push_back(v);
  }
  std::vector<ir::ValueInfo> out;
  WBS_RETURN_IF_ERROR(ir::InferNode(node, in, out));
  if (out.empty() || !out[0].has_shape)
    return Internal("{}: shape rule gave no output shape", node.Describe());
  return out[0].shape;
}

// What Gemm and MatMul share: the cache of primitives by run shapes, packed
// B, the fallback and the execution of one entry.
class DnnlMatMulBase : public Operator {
 public:
  std::string impl_name() const override { return impl_; }

 protected:
  struct Entry {
    std::unique_ptr<onednn::MatMulPrimitive> prim;  // nullptr: the fallback runs
    dnnl::memory packed_b;                          // when B is packed
    Shape y_shape;
    Tensor bias;                 // owned bias (constant C folded), or undefined
    bool bias_from_c = false;    // the bias is the run-time C as given
    bool addend_from_c = false;  // the addend is the run-time C as given
    Tensor addend;               // owned addend (constant beta * C), or undefined
  };

  DnnlMatMulBase(const ir::Node& node, Tensor b_const)
      : node_(node), b_const_(std::move(b_const)) {}

  // Builds the primitive for `spec` into `e` (packing B if constant); on
  // oneDNN's refusal leaves e->prim null so the fallback runs.
  Status Build(onednn::MatMulSpec spec, Entry* e, const std::string& shapes, int threads) {
    spec.pack_b = b_const_.defined();
    auto prim = onednn::MatMulPrimitive::Create(spec);
    if (!prim.ok() && spec.pack_b) {
      // Some broadcast batch layouts only work with B read in place.
      spec.pack_b = false;
      prim = onednn::MatMulPrimitive::Create(spec);
    }
    if (!prim.ok()) {
      WBS_LOG_DEBUG("{}: reference fallback for {}: {}", node_.Describe(), shapes,
                    prim.status().message());
      return Status::Ok();
    }
    if (spec.pack_b) {
      e->packed_b = packed_.Find((*prim)->b_desc());
      if (!e->packed_b) {
        WBS_ASSIGN_OR_RETURN(e->packed_b, (*prim)->PackB(b_const_.data<float>()));
        packed_.Add((*prim)->b_desc(), e->packed_b);
      }
    }
    WBS_LOG_DEBUG("{}: oneDNN {} for {} ({} threads)", node_.Describe(), (*prim)->impl_name(),
                  shapes, threads);
    e->prim = std::move(prim).value();
    return Status::Ok();
  }

  Status Execute(Entry& e, const std::vector<const Tensor*>& inputs,
                 const std::vector<Tensor*>& outputs, const ExecContext& ctx) {
    if (e.prim == nullptr) return fallback_->Run(inputs, outputs, ctx);
    Tensor& y = *outputs[0];
    if (y.shape() != e.y_shape) {
      return InvalidArgument("{}: output Y is {} but the inputs give {}", node_.Describe(),
                             y.Describe(), ShapeToString(e.y_shape));
    }
    const Tensor* c = InputOrNull(inputs, 2);
    const float* bias = e.bias.defined() ? e.bias.data<float>()
                        : e.bias_from_c  ? c->data<float>()
                                         : nullptr;
    const float* addend = e.addend.defined() ? e.addend.data<float>()
                          : e.addend_from_c  ? c->data<float>()
                                             : nullptr;
    const bool packed = static_cast<bool>(e.packed_b);
    return e.prim->Execute(inputs[0]->data<float>(), packed ? nullptr : inputs[1]->data<float>(),
                           packed ? &e.packed_b : nullptr, bias, addend, y.data<float>());
  }

  // Checks that the run's operands are present f32 tensors.
  Status CheckOperands(const std::vector<const Tensor*>& inputs,
                       const std::vector<Tensor*>& outputs, size_t n_required) const {
    if (inputs.size() < n_required || outputs.empty() || outputs[0] == nullptr)
      return InvalidArgument("{}: missing inputs or output", node_.Describe());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor* t = InputOrNull(inputs, i);
      if (t == nullptr && i < n_required)
        return InvalidArgument("{}: input {} is missing", node_.Describe(), i);
      if (t != nullptr && t->dtype() != DType::kF32)
        return InvalidArgument("{}: input {} is {}, expected f32", node_.Describe(), i,
                               t->Describe());
    }
    if (outputs[0]->dtype() != DType::kF32)
      return InvalidArgument("{}: output is {}, expected f32", node_.Describe(),
                             outputs[0]->Describe());
    return Status::Ok();
  }

  ir::Node node_;   // a copy: attributes and name outlive the graph
  Tensor b_const_;  // constant B (shares storage), or undefined
  std::string impl_ = "onednn";
  std::map<std::vector<int64_t>, Entry> cache_;
  PackedWeights packed_;
  std::unique_ptr<Operator> fallback_;
};

class DnnlGemmOp final : public DnnlMatMulBase {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    if (!DnnlEnabled() || !AllF32(args, 3) || args.inputs.size() < 2)
      return std::unique_ptr<Operator>();
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    const float alpha = node.GetFloat("alpha", 1.0f);
    const float beta = node.GetFloat("beta", 1.0f);
    const bool has_c = in.size() > 2 && in[2].present && beta != 0.0f;
    const bool c_const = has_c && in[2].value != nullptr;
    // alpha == 0 has no output-scale form worth supporting; a run-time C
    // with beta != 1 would need a scaled copy per run.
    if (alpha == 0.0f || (has_c && !c_const && beta != 1.0f)) return std::unique_ptr<Operator>();
    if (has_c && in[2].has_shape && in[2].rank() > 2) return std::unique_ptr<Operator>();
    auto act = FusedActivationOf(node);
    if (!act.ok()) return std::unique_ptr<Operator>();

    auto op =
        std::unique_ptr<DnnlGemmOp>(new DnnlGemmOp(node, in[1].value ? *in[1].value : Tensor()));
    op->trans_a_ = node.GetInt("transA", 0) != 0;
    op->trans_b_ = node.GetInt("transB", 0) != 0;
    op->alpha_ = alpha;
    op->has_c_ = has_c;
    op->activation_ = *act;
    if (c_const) {
      // beta * C, folded once.
      const Tensor& c = *in[2].value;
      Tensor scaled(DType::kF32, c.shape());
      for (int64_t i = 0; i < c.numel(); ++i) scaled.data<float>()[i] = beta * c.data<float>()[i];
      op->c_const_ = scaled;
    }
    const bool b_known = in[1].value != nullptr || IsStatic(in[1]);
    const bool c_known = !has_c || c_const || IsStatic(in[2]);
    if (IsStatic(in[0]) && b_known && c_known) {
      const Shape b_shape = in[1].value ? in[1].value->shape() : in[1].shape;
      const Shape c_shape = has_c ? (c_const ? in[2].value->shape() : in[2].shape) : Shape();
      Result<Entry*> e =
          op->Lookup(in[0].shape, b_shape, has_c ? &c_shape : nullptr, CurrentThreads());
      if (!e.ok() || (*e)->prim == nullptr) return std::unique_ptr<Operator>();
      op->impl_ = "onednn:" + (*e)->prim->impl_name();
    }
    WBS_ASSIGN_OR_RETURN(op->fallback_, CreateFallback(args));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckOperands(inputs, outputs, 2));
    const Tensor* c = InputOrNull(inputs, 2);
    if (has_c_ && c == nullptr) return InvalidArgument("{}: input C is missing", node_.Describe());
    UseThreads(ctx);
    WBS_ASSIGN_OR_RETURN(Entry * e, Lookup(inputs[0]->shape(), inputs[1]->shape(),
                                           has_c_ ? &c->shape() : nullptr, CurrentThreads()));
    return Execute(*e, inputs, outputs, ctx);
  }

 private:
  using DnnlMatMulBase::DnnlMatMulBase;

  Result<Entry*> Lookup(const Shape& a, const Shape& b, const Shape* c, int threads) {
    const bool c_runtime = c != nullptr && !c_const_.defined();
    const std::vector<int64_t> key =
        RunKey({&a, b_const_.defined() ? nullptr : &b, c_runtime ? c : nullptr}, threads);
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;

    Entry e;
    WBS_ASSIGN_OR_RETURN(e.y_shape, InferOutput(node_, {&a, &b, c}));
    const int64_t m = e.y_shape[0], n = e.y_shape[1], k = a[trans_a_ ? 0 : 1];
    if (c != nullptr && c->size() > 2) return Internal("{}: C has rank > 2", node_.Describe());
    if (!HasZeroDim(a) && !HasZeroDim(b) && m > 0 && n > 0) {
      onednn::MatMulSpec spec;
      spec.a_dims = {m, k};
      spec.a_strides = trans_a_ ? std::vector<int64_t>{1, m} : std::vector<int64_t>{k, 1};
      spec.b_dims = {k, n};
      spec.b_strides = trans_b_ ? std::vector<int64_t>{1, k} : std::vector<int64_t>{n, 1};
      spec.y_dims = {m, n};
      spec.alpha = alpha_;
      spec.activation = activation_;
      if (c != nullptr) {
        // C broadcasts unidirectionally to [M, N] from [cm, cn].
        const int64_t cm = c->size() == 2 ? (*c)[0] : 1;
        const int64_t cn = c->empty() ? 1 : c->back();
        if (cm == 1 && c_const_.defined()) {
          // Constant over rows: a bias of N, pre-divided by alpha.
          e.bias = Tensor(DType::kF32, {n});
          for (int64_t j = 0; j < n; ++j)
            e.bias.data<float>()[j] = c_const_.data<float>()[cn == 1 ? 0 : j] / alpha_;
          spec.has_bias = true;
        } else if (cm == 1 && cn == n && alpha_ == 1.0f) {
          e.bias_from_c = true;
          spec.has_bias = true;
        } else if (c_const_.defined() && cn == 1 && n > 1) {
          // oneDNN 2.6 has no per-row broadcast for binary post-ops; a
          // constant column is expanded once (a run-time one falls back).
          e.addend = Tensor(DType::kF32, {cm, n});
          for (int64_t i = 0; i < cm; ++i)
            std::fill_n(e.addend.data<float>() + i * n, n, c_const_.data<float>()[i]);
          spec.addend_dims = {cm, n};
        } else {
          spec.addend_dims = {cm, cn};
          if (c_const_.defined())
            e.addend = c_const_;
          else
            e.addend_from_c = true;
        }
      }
      WBS_RETURN_IF_ERROR(
          Build(std::move(spec), &e, "A " + ShapeToString(a) + " B " + ShapeToString(b), threads));
    }
    return &cache_.emplace(key, std::move(e)).first->second;
  }

  bool trans_a_ = false, trans_b_ = false, has_c_ = false;
  float alpha_ = 1.0f;
  kernels::ref::Activation activation_;
  Tensor c_const_;  // beta * C when C is constant
};

class DnnlMatMulOp final : public DnnlMatMulBase {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    if (!DnnlEnabled() || !AllF32(args, 2) || args.inputs.size() < 2)
      return std::unique_ptr<Operator>();
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    auto act = FusedActivationOf(node);
    if (!act.ok()) return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<DnnlMatMulOp>(
        new DnnlMatMulOp(node, in[1].value ? *in[1].value : Tensor()));
    op->activation_ = *act;
    const bool b_known = in[1].value != nullptr || IsStatic(in[1]);
    if (IsStatic(in[0]) && b_known) {
      const Shape b_shape = in[1].value ? in[1].value->shape() : in[1].shape;
      Result<Entry*> e = op->Lookup(in[0].shape, b_shape, CurrentThreads());
      if (!e.ok() || (*e)->prim == nullptr) return std::unique_ptr<Operator>();
      op->impl_ = "onednn:" + (*e)->prim->impl_name();
    }
    WBS_ASSIGN_OR_RETURN(op->fallback_, CreateFallback(args));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckOperands(inputs, outputs, 2));
    UseThreads(ctx);
    WBS_ASSIGN_OR_RETURN(Entry * e,
                         Lookup(inputs[0]->shape(), inputs[1]->shape(), CurrentThreads()));
    return Execute(*e, inputs, outputs, ctx);
  }

 private:
  using DnnlMatMulBase::DnnlMatMulBase;

  Result<Entry*> Lookup(const Shape& a, const Shape& b, int threads) {
    const std::vector<int64_t> key = RunKey({&a, &b}, threads);
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;

    Entry e;
    WBS_ASSIGN_OR_RETURN(e.y_shape, InferOutput(node_, {&a, &b}));
    if (!HasZeroDim(a) && !HasZeroDim(b)) {
      // numpy: 1-D A is [1, K] and 1-D B is [K, 1]; Y drops those dims,
      // which does not change its dense layout.
      const Shape as = a.size() == 1 ? Shape{1, a[0]} : a;
      const Shape bs = b.size() == 1 ? Shape{b[0], 1} : b;
      const size_t r = std::max(as.size(), bs.size());
      const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
      bool b_batched = false;
      for (size_t i = 0; i + 2 < bs.size(); ++i) b_batched = b_batched || bs[i] != 1;
      onednn::MatMulSpec spec;
      if (!b_batched) {
        // Y rows are A's rows in order, whatever A's batch dims are.
        const int64_t rows = NumElements(as) / k;
        spec.a_dims = {rows, k};
        spec.b_dims = {k, n};
        spec.y_dims = {rows, n};
      } else {
        spec.a_dims = Shape(r - as.size(), 1);
        spec.a_dims.insert(spec.a_dims.end(), as.begin(), as.end());
        spec.b_dims = Shape(r - bs.size(), 1);
        spec.b_dims.insert(spec.b_dims.end(), bs.begin(), bs.end());
        spec.y_dims.resize(r);
        for (size_t i = 0; i + 2 < r; ++i)
          spec.y_dims[i] = std::max(spec.a_dims[i], spec.b_dims[i]);
        spec.y_dims[r - 2] = m;
        spec.y_dims[r - 1] = n;
      }
      spec.a_strides = StridesOf(spec.a_dims);
      spec.b_strides = StridesOf(spec.b_dims);
      spec.activation = activation_;
      WBS_RETURN_IF_ERROR(
          Build(std::move(spec), &e, "A " + ShapeToString(a) + " B " + ShapeToString(b), threads));
    }
    return &cache_.emplace(key, std::move(e)).first->second;
  }

  kernels::ref::Activation activation_;
};

}  // namespace

void RegisterMatMulOperators() {
  RegisterOperator("Gemm", Backend::kFast, DnnlGemmOp::Create);
  RegisterOperator("MatMul", Backend::kFast, DnnlMatMulOp::Create);
}

}  // namespace wbs::runtime::dnnl_ops

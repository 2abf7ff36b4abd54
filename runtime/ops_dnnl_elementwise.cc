// oneDNN fast paths for the elementwise ops CNNs run between convolutions,
// f32 only: unary ops whose reference loop is slow (LeakyRelu, Clip, Sigmoid,
// Tanh, Elu, HardSwish, Exp, Abs, Sqrt) and Add/Sub/Mul/Div with the same
// shape on both sides or one side broadcast (per channel, scalar, ...).
//
// Measured at batch 1 on [802816] floats (ResNet-50's largest activation),
// one thread, µs oneDNN / reference: LeakyRelu 59/1232, Sigmoid 151/1401,
// Tanh 160/6089, Elu 133/763, HardSwish 56/182, Exp 112/1083, Abs 58/220,
// Sqrt 60/1243, Clip 67/95; Add 76/74 and per-channel Mul 52/63. Relu and
// Neg are not registered: the reference loop already streams at memory speed
// (64/60 vs 61/61). A primitive call costs ~0.3 µs at one thread but ~7 µs
// when it wakes a second (passive) OpenMP thread, and two threads never beat
// one on this loaded 2-core machine up to 800K elements, so tensors below
// kParallelElements run single-threaded.
//
// Declines: other dtypes; tensors below kMinUnaryElements/kMinBinaryElements
// (the reference loop wins there); Clip with run-time or crossed bounds; a
// broadcast first operand of Sub/Div, or broadcasts on both sides; shapes
// oneDNN serves only with its reference kernel. NaN: oneDNN's clip maps NaN
// to the lower bound where the reference propagates it (as the conv's fused
// Clip post-op does). See ops_dnnl_internal.h for the life cycle.
#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "core/logging.h"
#include "ir/op_schema.h"
#include "kernels/dnnl/elementwise.h"
#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime::dnnl_ops {
namespace {

namespace onednn = kernels::onednn;
namespace ref = kernels::ref;

// Below these sizes the reference loops are as fast (measured as above:
// Clip over 4K floats 0.3 vs 0.5 µs; Add over 16K 1.3 vs 1.2 µs).
constexpr int64_t kMinUnaryElements = 4096;
constexpr int64_t kMinBinaryElements = 16384;
// From this size on, the op uses the session's threads (see above).
constexpr int64_t kParallelElements = int64_t{1} << 20;

int ThreadsFor(int64_t numel, int threads) { return numel >= kParallelElements ? threads : 1; }

// Runs `f` with oneDNN on ThreadsFor(numel) threads, then restores ctx's.
template <typename F>
Status WithThreads(int64_t numel, const ExecContext& ctx, F&& f) {
  ExecContext use = ctx;
  use.num_threads = ThreadsFor(numel, ctx.num_threads);
  UseThreads(use);
  Status st = f(CurrentThreads());
  UseThreads(ctx);
  return st;
}

bool F32(const ir::ValueInfo& v) { return v.present && v.dtype == DType::kF32; }

// The output elements known at creation, or -1.
int64_t StaticElements(const ir::ValueInfo& v) { return IsStatic(v) ? NumElements(v.shape) : -1; }

// A constant f32 scalar input, the attribute `attr`, or `def`; nullopt when
// the input is present but not a constant scalar.
std::optional<float> ConstantBound(const OpCreateArgs& a, size_t i, const char* attr, float def) {
  if (a.node->Has(attr)) return a.node->GetFloat(attr, def);
  if (i >= a.inputs.size() || !a.inputs[i].present) return def;
  const Tensor* t = a.inputs[i].value;
  if (t == nullptr || t->dtype() != DType::kF32 || t->numel() != 1) return std::nullopt;
  return t->data<float>()[0];
}

class DnnlUnaryOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args,
                                                  const onednn::UnaryAlgorithm& f) {
    auto op = std::unique_ptr<DnnlUnaryOp>(new DnnlUnaryOp(*args.node, f));
    const int64_t n = StaticElements(args.inputs[0]);
    if (n >= 0) {
      if (n < kMinUnaryElements) return std::unique_ptr<Operator>();
      Result<Entry*> e = op->Lookup(n, ThreadsFor(n, CurrentThreads()));
      if (!e.ok() || (*e)->prim == nullptr) return std::unique_ptr<Operator>();
      op->impl_ = "onednn:eltwise:" + (*e)->prim->impl_name();
    }
    WBS_ASSIGN_OR_RETURN(op->fallback_, CreateFallback(args));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    if (x.dtype() != DType::kF32)
      return InvalidArgument("{}: X {} must be f32 (the operator was created for f32)",
                             node_.Describe(), x.Describe());
    if (x.numel() < kMinUnaryElements) return fallback_->Run(inputs, outputs, ctx);
    return WithThreads(x.numel(), ctx, [&](int threads) -> Status {
      WBS_ASSIGN_OR_RETURN(Entry * e, Lookup(x.numel(), threads));
      if (e->prim == nullptr) return fallback_->Run(inputs, outputs, ctx);
      return e->prim->Execute(x.data<float>(), y.data<float>());
    });
  }

  std::string impl_name() const override { return impl_; }

 private:
  struct Entry {
    std::unique_ptr<onednn::UnaryPrimitive> prim;  // nullptr: the fallback runs
  };

  DnnlUnaryOp(const ir::Node& node, const onednn::UnaryAlgorithm& f) : node_(node), f_(f) {}

  Result<Entry*> Lookup(int64_t numel, int threads) {
    const Shape n = {numel};
    const std::vector<int64_t> key = RunKey({&n}, threads);
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    Entry e;
    auto prim = onednn::UnaryPrimitive::Create(f_, numel);
    if (prim.ok())
      e.prim = std::move(prim).value();
    else
      WBS_LOG_DEBUG("{}: reference fallback for {} elements: {}", node_.Describe(), numel,
                    prim.status().message());
    return &cache_.emplace(key, std::move(e)).first->second;
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  onednn::UnaryAlgorithm f_;
  std::string impl_ = "onednn:eltwise";
  std::map<std::vector<int64_t>, Entry> cache_;
  std::unique_ptr<Operator> fallback_;
};

class DnnlBinaryOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, ref::BinaryOp kind) {
    auto op = std::unique_ptr<DnnlBinaryOp>(new DnnlBinaryOp(*args.node, kind));
    const auto& in = args.inputs;
    if (IsStatic(in[0]) && IsStatic(in[1])) {
      const int64_t n = std::max(NumElements(in[0].shape), NumElements(in[1].shape));
      Result<Entry*> e = op->Lookup(in[0].shape, in[1].shape, ThreadsFor(n, CurrentThreads()));
      if (!e.ok() || (*e)->prim == nullptr) return std::unique_ptr<Operator>();
      op->impl_ = "onednn:binary:" + (*e)->prim->impl_name();
    }
    WBS_ASSIGN_OR_RETURN(op->fallback_, CreateFallback(args));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    if (a.dtype() != DType::kF32 || b.dtype() != DType::kF32)
      return InvalidArgument("{}: A {} and B {} must be f32 (the operator was created for f32)",
                             node_.Describe(), a.Describe(), b.Describe());
    return WithThreads(outputs[0]->numel(), ctx, [&](int threads) -> Status {
      WBS_ASSIGN_OR_RETURN(Entry * e, Lookup(a.shape(), b.shape(), threads));
      if (e->prim == nullptr) return fallback_->Run(inputs, outputs, ctx);
      const Tensor& first = e->swapped ? b : a;
      const Tensor& second = e->swapped ? a : b;
      return e->prim->Execute(first.data<float>(), second.data<float>(), outputs[0]->data<float>());
    });
  }

  std::string impl_name() const override { return impl_; }

 private:
  struct Entry {
    std::unique_ptr<onednn::BinaryPrimitive> prim;  // nullptr: the fallback runs
    bool swapped = false;  // the primitive reads (B, A): A is the broadcast one
  };

  DnnlBinaryOp(const ir::Node& node, ref::BinaryOp kind) : node_(node), kind_(kind) {}

  // oneDNN broadcasts only its second operand, so the first must have the
  // output's shape; Add and Mul may swap.
  Result<Entry*> Lookup(const Shape& a, const Shape& b, int threads) {
    const std::vector<int64_t> key = RunKey({&a, &b}, threads);
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    WBS_ASSIGN_OR_RETURN(Shape y, ir::BroadcastShapes(a, b));
    Entry e;
    const bool commutative = kind_ == ref::BinaryOp::kAdd || kind_ == ref::BinaryOp::kMul;
    const Shape* first = a == y ? &a : commutative && b == y ? &b : nullptr;
    if (first != nullptr && NumElements(y) >= kMinBinaryElements) {
      e.swapped = first == &b;
      const Shape& second = e.swapped ? a : b;
      Shape padded(y.size() - second.size(), 1);
      padded.insert(padded.end(), second.begin(), second.end());
      auto prim = onednn::BinaryPrimitive::Create(kind_, y, padded);
      if (prim.ok())
        e.prim = std::move(prim).value();
      else
        WBS_LOG_DEBUG("{}: reference fallback for {} and {}: {}", node_.Describe(),
                      ShapeToString(a), ShapeToString(b), prim.status().message());
    }
    return &cache_.emplace(key, std::move(e)).first->second;
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  ref::BinaryOp kind_;
  std::string impl_ = "onednn:binary";
  std::map<std::vector<int64_t>, Entry> cache_;
  std::unique_ptr<Operator> fallback_;
};

struct UnaryDef {
  const char* op_type;
  ref::UnaryOp op;
  // The op's parameters with their ONNX defaults.
  ref::UnaryParams (*params)(const ir::Node& node);
};

ref::UnaryParams NoParams(const ir::Node&) { return {}; }

constexpr UnaryDef kUnaryDefs[] = {
    {"LeakyRelu", ref::UnaryOp::kLeakyRelu,
     [](const ir::Node& n) {
       return ref::UnaryParams{n.GetFloat("alpha", 0.01f), 0, 0};
     }},
    {"Sigmoid", ref::UnaryOp::kSigmoid, NoParams},
    {"Tanh", ref::UnaryOp::kTanh, NoParams},
    {"Elu", ref::UnaryOp::kElu,
     [](const ir::Node& n) {
       return ref::UnaryParams{n.GetFloat("alpha", 1.0f), 0, 0};
     }},
    {"HardSwish", ref::UnaryOp::kHardSwish, NoParams},
    {"Exp", ref::UnaryOp::kExp, NoParams},
    {"Abs", ref::UnaryOp::kAbs, NoParams},
    {"Sqrt", ref::UnaryOp::kSqrt, NoParams},
};

bool UnaryArgsSupported(const OpCreateArgs& a) {
  return DnnlEnabled() && !a.inputs.empty() && F32(a.inputs[0]) && !a.outputs.empty() &&
         a.outputs[0].dtype == DType::kF32;
}

}  // namespace

void RegisterElementwiseOperators() {
  for (const UnaryDef& def : kUnaryDefs) {
    RegisterOperator(
        def.op_type, Backend::kFast,
        [def](const OpCreateArgs& a) -> Result<std::unique_ptr<Operator>> {
          onednn::UnaryAlgorithm f;
          if (!UnaryArgsSupported(a) || !onednn::UnaryAlgorithmFor(def.op, def.params(*a.node), &f))
            return std::unique_ptr<Operator>();
          return DnnlUnaryOp::Create(a, f);
        });
  }
  RegisterOperator("Clip", Backend::kFast,
                   [](const OpCreateArgs& a) -> Result<std::unique_ptr<Operator>> {
                     if (!UnaryArgsSupported(a)) return std::unique_ptr<Operator>();
                     constexpr float kInf = std::numeric_limits<float>::infinity();
                     const std::optional<float> lo = ConstantBound(a, 1, "min", -kInf);
                     const std::optional<float> hi = ConstantBound(a, 2, "max", kInf);
                     if (!lo || !hi || *lo > *hi) return std::unique_ptr<Operator>();
                     return DnnlUnaryOp::Create(a, onednn::ClipAlgorithm(*lo, *hi));
                   });
  const std::pair<const char*, ref::BinaryOp> binary[] = {{"Add", ref::BinaryOp::kAdd},
                                                          {"Sub", ref::BinaryOp::kSub},
                                                          {"Mul", ref::BinaryOp::kMul},
                                                          {"Div", ref::BinaryOp::kDiv}};
  for (const auto& [op_type, kind] : binary) {
    RegisterOperator(op_type, Backend::kFast,
                     [kind](const OpCreateArgs& a) -> Result<std::unique_ptr<Operator>> {
                       if (!DnnlEnabled() || a.inputs.size() != 2 || !F32(a.inputs[0]) ||
                           !F32(a.inputs[1]) || a.outputs.empty() ||
                           a.outputs[0].dtype != DType::kF32)
                         return std::unique_ptr<Operator>();
                       return DnnlBinaryOp::Create(a, kind);
                     });
  }
}

}  // namespace wbs::runtime::dnnl_ops

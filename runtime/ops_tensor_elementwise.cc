// Reference operators of the elementwise ops (kernels/ref/elementwise.h).
#include <limits>
#include <map>
#include <vector>

#include "kernels/ref/convert.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/tensor_ops.h"
#include "runtime/ops_tensor_internal.h"

namespace wbs::runtime::tensor_ops {

namespace {

namespace k = wbs::kernels::ref;

struct UnaryDef {
  k::UnaryOp op;
  // Reads the op's attributes with their ONNX defaults.
  k::UnaryParams (*params)(const ir::Node& node);
};

k::UnaryParams NoParams(const ir::Node&) { return {}; }

const std::map<std::string, UnaryDef>& UnaryDefs() {
  static const std::map<std::string, UnaryDef> defs = {
      {"Neg", {k::UnaryOp::kNeg, NoParams}},
      {"Abs", {k::UnaryOp::kAbs, NoParams}},
      {"Sign", {k::UnaryOp::kSign, NoParams}},
      {"Relu", {k::UnaryOp::kRelu, NoParams}},
      {"Shrink",
       {k::UnaryOp::kShrink,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("lambd", 0.5f), n.GetFloat("bias", 0.0f), 0};
        }}},
      {"LeakyRelu",
       {k::UnaryOp::kLeakyRelu,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("alpha", 0.01f), 0, 0};
        }}},
      {"Sigmoid", {k::UnaryOp::kSigmoid, NoParams}},
      {"HardSigmoid",
       {k::UnaryOp::kHardSigmoid,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("alpha", 0.2f), n.GetFloat("beta", 0.5f), 0};
        }}},
      {"Tanh", {k::UnaryOp::kTanh, NoParams}},
      {"Exp", {k::UnaryOp::kExp, NoParams}},
      {"Log", {k::UnaryOp::kLog, NoParams}},
      {"Sqrt", {k::UnaryOp::kSqrt, NoParams}},
      {"Reciprocal", {k::UnaryOp::kReciprocal, NoParams}},
      {"Ceil", {k::UnaryOp::kCeil, NoParams}},
      {"Floor", {k::UnaryOp::kFloor, NoParams}},
      {"Round", {k::UnaryOp::kRound, NoParams}},
      {"Erf", {k::UnaryOp::kErf, NoParams}},
      {"Sin", {k::UnaryOp::kSin, NoParams}},
      {"Cos", {k::UnaryOp::kCos, NoParams}},
      {"Tan", {k::UnaryOp::kTan, NoParams}},
      {"Asin", {k::UnaryOp::kAsin, NoParams}},
      {"Acos", {k::UnaryOp::kAcos, NoParams}},
      {"Atan", {k::UnaryOp::kAtan, NoParams}},
      {"Sinh", {k::UnaryOp::kSinh, NoParams}},
      {"Cosh", {k::UnaryOp::kCosh, NoParams}},
      {"Asinh", {k::UnaryOp::kAsinh, NoParams}},
      {"Acosh", {k::UnaryOp::kAcosh, NoParams}},
      {"Atanh", {k::UnaryOp::kAtanh, NoParams}},
      {"Elu",
       {k::UnaryOp::kElu,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("alpha", 1.0f), 0, 0};
        }}},
      {"Selu",
       {k::UnaryOp::kSelu,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("alpha", 1.67326319217681884765625f), 0,
                                n.GetFloat("gamma", 1.05070102214813232421875f)};
        }}},
      {"Celu",
       {k::UnaryOp::kCelu,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("alpha", 1.0f), 0, 0};
        }}},
      {"Softplus", {k::UnaryOp::kSoftplus, NoParams}},
      {"Softsign", {k::UnaryOp::kSoftsign, NoParams}},
      {"ThresholdedRelu",
       {k::UnaryOp::kThresholdedRelu,
        [](const ir::Node& n) {
          return k::UnaryParams{n.GetFloat("alpha", 1.0f), 0, 0};
        }}},
      {"HardSwish", {k::UnaryOp::kHardSwish, NoParams}},
  };
  return defs;
}

Result<RunFn> MakeUnary(const OpCreateArgs& a) {
  const ir::Node& node = *a.node;
  const UnaryDef& def = UnaryDefs().at(node.op_type);
  const DType t = InputType(a, 0);
  const bool ints = k::UnaryOpAcceptsIntegers(def.op);
  if (!(t == DType::kF32 || t == DType::kF64 || (ints && IsInteger(t))))
    return NoKernelFor(node, t);
  const k::UnaryParams p = def.params(node);
  if (def.op == k::UnaryOp::kCelu && p.alpha == 0.0f) {
    return InvalidArgument("{}: alpha must not be 0", node.Describe());
  }
  return RunFn([op = def.op, p, t](const RunArgs& r) {
    VisitNumeric(t, [&]<typename T>() {
      k::Unary<T>(op, p, r.in[0]->data<T>(), r.out[0]->data<T>(), r.in[0]->numel());
    });
    return Status::Ok();
  });
}

Result<RunFn> MakeNot(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) {
    k::Not(r.in[0]->data<bool>(), r.out[0]->data<bool>(), r.in[0]->numel());
    return Status::Ok();
  });
}

Result<RunFn> MakeIsNaNInf(const OpCreateArgs& a) {
  const DType t = InputType(a, 0);
  if (t != DType::kF32 && t != DType::kF64) return NoKernelFor(*a.node, t);
  const bool is_nan = a.node->op_type == "IsNaN";
  const bool neg = a.node->GetInt("detect_negative", 1) != 0,
             pos = a.node->GetInt("detect_positive", 1) != 0;
  return RunFn([=](const RunArgs& r) {
    VisitFloat(t, [&]<typename T>() {
      if (is_nan)
        k::IsNaN<T>(r.in[0]->data<T>(), r.out[0]->data<bool>(), r.in[0]->numel());
      else
        k::IsInf<T>(r.in[0]->data<T>(), r.out[0]->data<bool>(), r.in[0]->numel(), neg, pos);
    });
    return Status::Ok();
  });
}

// Integer division and modulo by zero have no defined result: reported as an
// error rather than silently producing a value.
template <typename T>
bool HasZero(const Tensor& t) {
  const T* d = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (d[i] == T(0)) return true;
  return false;
}

Result<RunFn> MakeBinary(const OpCreateArgs& a) {
  const ir::Node& node = *a.node;
  const DType t = InputType(a, 0);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(node, t);
  static const std::map<std::string, k::BinaryOp> ops = {
      {"Add", k::BinaryOp::kAdd}, {"Sub", k::BinaryOp::kSub}, {"Mul", k::BinaryOp::kMul},
      {"Div", k::BinaryOp::kDiv}, {"Mod", k::BinaryOp::kMod}, {"PRelu", k::BinaryOp::kPRelu}};
  k::BinaryOp op = ops.at(node.op_type);
  if (op == k::BinaryOp::kMod && node.GetInt("fmod", 0) != 0) op = k::BinaryOp::kFmod;
  const bool check_zero = IsInteger(t) && (op == k::BinaryOp::kDiv || op == k::BinaryOp::kMod ||
                                           op == k::BinaryOp::kFmod);
  return RunFn([op, t, check_zero](const RunArgs& r) {
    Status st;
    VisitNumeric(t, [&]<typename T>() {
      if (check_zero && HasZero<T>(*r.in[1])) {
        st = InvalidArgument("{}: integer division by zero (divisor {})", r.node.Describe(),
                             r.in[1]->Describe());
        return;
      }
      k::Binary<T>(op, r.in[0]->data<T>(), r.in[0]->shape(), r.in[1]->data<T>(), r.in[1]->shape(),
                   r.out[0]->data<T>(), r.out[0]->shape());
    });
    return st;
  });
}

Result<RunFn> MakePow(const OpCreateArgs& a) {
  const DType t = InputType(a, 0), e = InputType(a, 1);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(*a.node, t);
  if (!VisitNumeric(e, []<typename>() {})) return NoKernelFor(*a.node, e);
  return RunFn([t, e](const RunArgs& r) {
    std::vector<double> exponent(static_cast<size_t>(r.in[1]->numel()));
    k::Convert(e, r.in[1]->raw(), DType::kF64, exponent.data(), r.in[1]->numel());
    VisitNumeric(t, [&]<typename T>() {
      k::Pow<T>(r.in[0]->data<T>(), r.in[0]->shape(), exponent.data(), r.in[1]->shape(),
                r.out[0]->data<T>(), r.out[0]->shape());
    });
    return Status::Ok();
  });
}

Result<RunFn> MakeCompare(const OpCreateArgs& a) {
  const DType t = InputType(a, 0);
  static const std::map<std::string, k::CompareOp> ops = {
      {"Equal", k::CompareOp::kEqual},
      {"Less", k::CompareOp::kLess},
      {"LessOrEqual", k::CompareOp::kLessOrEqual},
      {"Greater", k::CompareOp::kGreater},
      {"GreaterOrEqual", k::CompareOp::kGreaterOrEqual}};
  const k::CompareOp op = ops.at(a.node->op_type);
  if (!VisitDType(t, []<typename>() {})) return NoKernelFor(*a.node, t);
  return RunFn([op, t](const RunArgs& r) {
    VisitDType(t, [&]<typename T>() {
      k::Compare<T>(op, r.in[0]->data<T>(), r.in[0]->shape(), r.in[1]->data<T>(), r.in[1]->shape(),
                    r.out[0]->data<bool>(), r.out[0]->shape());
    });
    return Status::Ok();
  });
}

Result<RunFn> MakeLogical(const OpCreateArgs& a) {
  static const std::map<std::string, k::LogicalOp> ops = {
      {"And", k::LogicalOp::kAnd}, {"Or", k::LogicalOp::kOr}, {"Xor", k::LogicalOp::kXor}};
  const k::LogicalOp op = ops.at(a.node->op_type);
  return RunFn([op](const RunArgs& r) {
    k::Logical(op, r.in[0]->data<bool>(), r.in[0]->shape(), r.in[1]->data<bool>(), r.in[1]->shape(),
               r.out[0]->data<bool>(), r.out[0]->shape());
    return Status::Ok();
  });
}

// Max, Min, Sum, Mean: the output starts as input 0 broadcast, then folds
// the other inputs in place.
Result<RunFn> MakeVariadic(const OpCreateArgs& a) {
  const ir::Node& node = *a.node;
  const DType t = InputType(a, 0);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(node, t);
  const std::string& op_type = node.op_type;
  const k::BinaryOp op = op_type == "Max"   ? k::BinaryOp::kMax
                         : op_type == "Min" ? k::BinaryOp::kMin
                                            : k::BinaryOp::kAdd;
  const bool mean = op_type == "Mean";
  return RunFn([op, t, mean](const RunArgs& r) {
    Tensor& out = *r.out[0];
    const Tensor& first = *r.in[0];
    k::CopyStrided(first.raw(), 0, BroadcastStrides(first.shape(), out.shape()), out.shape(),
                   out.raw(), DTypeSize(t));
    VisitNumeric(t, [&]<typename T>() {
      for (size_t i = 1; i < r.in.size(); ++i) {
        k::Binary<T>(op, out.data<T>(), out.shape(), r.in[i]->data<T>(), r.in[i]->shape(),
                     out.data<T>(), out.shape());
      }
      if (mean) {
        const T n = static_cast<T>(r.in.size());
        k::Binary<T>(k::BinaryOp::kDiv, out.data<T>(), out.shape(), &n, {}, out.data<T>(),
                     out.shape());
      }
    });
    return Status::Ok();
  });
}

Result<RunFn> MakeWhere(const OpCreateArgs& a) {
  const size_t elem = DTypeSize(InputType(a, 1));
  return RunFn([elem](const RunArgs& r) {
    k::Where(r.in[0]->data<bool>(), r.in[0]->shape(), r.in[1]->raw(), r.in[1]->shape(),
             r.in[2]->raw(), r.in[2]->shape(), r.out[0]->raw(), r.out[0]->shape(), elem);
    return Status::Ok();
  });
}

// Clip bounds: attributes (before opset 11) or scalar inputs (11+); an absent
// bound does not clip (infinity for floats, the type's range for integers).
Result<RunFn> MakeClip(const OpCreateArgs& a) {
  const ir::Node& node = *a.node;
  const DType t = InputType(a, 0);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(node, t);
  const bool attr_min = node.Has("min"), attr_max = node.Has("max");
  const double amin = node.GetFloat("min", 0.0f), amax = node.GetFloat("max", 0.0f);
  return RunFn([=](const RunArgs& r) {
    Status st;
    VisitNumeric(t, [&]<typename T>() {
      using L = std::numeric_limits<T>;
      T lo = L::has_infinity ? -L::infinity() : L::lowest();
      T hi = L::has_infinity ? L::infinity() : L::max();
      if (attr_min) lo = k::ConvertValue<T>(amin);
      if (attr_max) hi = k::ConvertValue<T>(amax);
      for (size_t i = 1; i < 3; ++i) {
        if (i >= r.in.size() || !r.in[i]) continue;
        if (r.in[i]->numel() != 1) {
          st = InvalidArgument("{}: {} must be a scalar, got {}", r.node.Describe(),
                               i == 1 ? "min" : "max", r.in[i]->Describe());
          return;
        }
        (i == 1 ? lo : hi) = r.in[i]->data<T>()[0];
      }
      k::Clip<T>(r.in[0]->data<T>(), r.out[0]->data<T>(), r.in[0]->numel(), lo, hi);
    });
    return st;
  });
}

Result<RunFn> MakeCast(const OpCreateArgs& a) {
  const DType from = InputType(a, 0);
  const DType to =
      a.node->op_type == "CastLike" ? InputType(a, 1) : static_cast<DType>(a.node->GetInt("to", 0));
  if (!VisitDType(from, []<typename>() {})) return NoKernelFor(*a.node, from);
  if (!VisitDType(to, []<typename>() {})) return NoKernelFor(*a.node, to);
  return RunFn([from, to](const RunArgs& r) {
    k::Convert(from, r.in[0]->raw(), to, r.out[0]->raw(), r.in[0]->numel());
    return Status::Ok();
  });
}

}  // namespace

void RegisterElementwiseOperators() {
  for (const auto& [op, def] : UnaryDefs()) RegisterRef(op, MakeUnary);
  RegisterRef("Not", MakeNot);
  RegisterRef("IsNaN", MakeIsNaNInf);
  RegisterRef("IsInf", MakeIsNaNInf);
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Mod", "PRelu"}) RegisterRef(op, MakeBinary);
  RegisterRef("Pow", MakePow);
  for (const char* op : {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"})
    RegisterRef(op, MakeCompare);
  for (const char* op : {"And", "Or", "Xor"}) RegisterRef(op, MakeLogical);
  for (const char* op : {"Max", "Min", "Sum", "Mean"}) RegisterRef(op, MakeVariadic);
  RegisterRef("Where", MakeWhere);
  RegisterRef("Clip", MakeClip);
  RegisterRef("Cast", MakeCast);
  RegisterRef("CastLike", MakeCast);
}

}  // namespace wbs::runtime::tensor_ops

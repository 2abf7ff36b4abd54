// Shape rules of the elementwise ops: unary maps, numpy-broadcasting binary
// and variadic ops, comparisons, logical ops, Where, Clip, Pow and Cast.
//
// Type rules follow the ONNX type constraints; f16/bf16 pass the shape rule
// (they are valid ONNX) and are refused by operator creation instead.
#include <limits>
#include <string_view>

#include "ir/schemas_tensor.h"

namespace wbs::ir {

namespace {

enum class Types { kFloat, kNumeric, kBool, kNumericOrBool };

bool Accepts(Types t, DType d) {
  switch (t) {
    case Types::kFloat:
      return IsFloat(d);
    case Types::kNumeric:
      return IsFloat(d) || IsInteger(d);
    case Types::kBool:
      return d == DType::kBool;
    case Types::kNumericOrBool:
      return IsFloat(d) || IsInteger(d) || d == DType::kBool;
  }
  return false;
}

const char* TypesName(Types t) {
  switch (t) {
    case Types::kFloat:
      return "a floating-point";
    case Types::kNumeric:
      return "a numeric";
    case Types::kBool:
      return "a bool";
    case Types::kNumericOrBool:
      return "a numeric or bool";
  }
  return "?";
}

Status CheckType(const Node& node, const ValueInfo& v, size_t i, Types t) {
  if (Accepts(t, v.dtype)) return Status::Ok();
  return InvalidArgument("{}: input {} must be {} type, got {}", node.Describe(), i, TypesName(t),
                         DTypeName(v.dtype));
}

Status CheckSameType(const Node& node, const std::vector<ValueInfo>& in, size_t i, size_t j) {
  if (in[i].dtype == in[j].dtype) return Status::Ok();
  return InvalidArgument("{}: inputs {} and {} must have the same type, got {} and {}",
                         node.Describe(), i, j, DTypeName(in[i].dtype), DTypeName(in[j].dtype));
}

// Broadcast shape of the present inputs; nullopt-like `known` = false when
// some input's rank is unknown.
Status BroadcastAll(const Node& node, const std::vector<ValueInfo>& in, Shape* out, bool* known) {
  *known = true;
  Shape s;
  bool first = true;
  for (const ValueInfo& v : in) {
    if (!v.present) continue;
    if (!v.has_shape) {
      *known = false;
      return Status::Ok();
    }
    if (first) {
      s = v.shape;
      first = false;
      continue;
    }
    Result<Shape> b = BroadcastShapes(s, v.shape);
    if (!b.ok()) {
      return InvalidArgument("{}: input shapes {} and {} do not broadcast", node.Describe(),
                             ShapeToString(s), ShapeToString(v.shape));
    }
    s = *b;
  }
  *out = s;
  return Status::Ok();
}

Status SetBroadcastOutput(const Node& node, const std::vector<ValueInfo>& in, DType dtype,
                          std::vector<ValueInfo>& out) {
  Shape s;
  bool known = false;
  WBS_RETURN_IF_ERROR(BroadcastAll(node, in, &s, &known));
  if (known)
    SetShape(out, 0, dtype, s);
  else
    SetUnknownShape(out, 0, dtype);
  return Status::Ok();
}

struct UnaryRule {
  std::string_view op;
  Types types;
  bool bool_output;
};
constexpr UnaryRule kUnaryRules[] = {
    {"Relu", Types::kNumeric, false},     {"Neg", Types::kNumeric, false},
    {"Abs", Types::kNumeric, false},      {"Sign", Types::kNumeric, false},
    {"Shrink", Types::kNumeric, false},   {"LeakyRelu", Types::kFloat, false},
    {"Sigmoid", Types::kFloat, false},    {"HardSigmoid", Types::kFloat, false},
    {"Tanh", Types::kFloat, false},       {"Exp", Types::kFloat, false},
    {"Log", Types::kFloat, false},        {"Sqrt", Types::kFloat, false},
    {"Reciprocal", Types::kFloat, false}, {"Ceil", Types::kFloat, false},
    {"Floor", Types::kFloat, false},      {"Round", Types::kFloat, false},
    {"Erf", Types::kFloat, false},        {"Sin", Types::kFloat, false},
    {"Cos", Types::kFloat, false},        {"Tan", Types::kFloat, false},
    {"Asin", Types::kFloat, false},       {"Acos", Types::kFloat, false},
    {"Atan", Types::kFloat, false},       {"Sinh", Types::kFloat, false},
    {"Cosh", Types::kFloat, false},       {"Asinh", Types::kFloat, false},
    {"Acosh", Types::kFloat, false},      {"Atanh", Types::kFloat, false},
    {"Elu", Types::kFloat, false},        {"Selu", Types::kFloat, false},
    {"Celu", Types::kFloat, false},       {"Softplus", Types::kFloat, false},
    {"Softsign", Types::kFloat, false},   {"ThresholdedRelu", Types::kFloat, false},
    {"HardSwish", Types::kFloat, false},  {"Not", Types::kBool, false},
    {"IsNaN", Types::kFloat, true},       {"IsInf", Types::kFloat, true},
};

const UnaryRule* FindUnaryRule(const std::string& op) {
  for (const UnaryRule& r : kUnaryRules)
    if (r.op == op) return &r;
  return nullptr;
}

Status InferUnary(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  const UnaryRule* rule = FindUnaryRule(node.op_type);
  if (!rule) return Internal("{}: no unary rule", node.Describe());
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, rule->types));
  const DType t = rule->bool_output ? DType::kBool : in[0].dtype;
  if (in[0].has_shape)
    SetShape(out, 0, t, in[0].shape);
  else
    SetUnknownShape(out, 0, t);
  return Status::Ok();
}

// Add, Sub, Mul, Div, Mod: same numeric type, broadcast.
Status InferArithmetic(const Node& node, const std::vector<ValueInfo>& in,
                       std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, Types::kNumeric));
  WBS_RETURN_IF_ERROR(CheckSameType(node, in, 0, 1));
  return SetBroadcastOutput(node, in, in[0].dtype, out);
}

// PRelu: slope broadcasts to X (unidirectionally).
Status InferPRelu(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, Types::kNumeric));
  WBS_RETURN_IF_ERROR(CheckSameType(node, in, 0, 1));
  if (!in[0].has_shape) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  if (in[1].has_shape && IsStatic(in[0]) && IsStatic(in[1])) {
    Result<Shape> b = BroadcastShapes(in[0].shape, in[1].shape);
    if (!b.ok() || *b != in[0].shape) {
      return InvalidArgument("{}: slope shape {} does not broadcast to input shape {}",
                             node.Describe(), ShapeToString(in[1].shape),
                             ShapeToString(in[0].shape));
    }
  }
  SetShape(out, 0, in[0].dtype, in[0].shape);
  return Status::Ok();
}

// Pow: numeric base and exponent of possibly different types; output has the
// base's type.
Status InferPow(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, Types::kNumeric));
  WBS_RETURN_IF_ERROR(CheckType(node, in[1], 1, Types::kNumeric));
  return SetBroadcastOutput(node, in, in[0].dtype, out);
}

Status InferCompare(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(
      CheckType(node, in[0], 0, node.op_type == "Equal" ? Types::kNumericOrBool : Types::kNumeric));
  WBS_RETURN_IF_ERROR(CheckSameType(node, in, 0, 1));
  return SetBroadcastOutput(node, in, DType::kBool, out);
}

Status InferLogical(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, Types::kBool));
  WBS_RETURN_IF_ERROR(CheckType(node, in[1], 1, Types::kBool));
  return SetBroadcastOutput(node, in, DType::kBool, out);
}

// Max, Min, Sum, Mean: one or more inputs of one numeric type, broadcast.
Status InferVariadic(const Node& node, const std::vector<ValueInfo>& in,
                     std::vector<ValueInfo>& out) {
  // ONNX restricts Sum and Mean to floats; integers are accepted here too.
  const Types types = Types::kNumeric;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].present) return InvalidArgument("{}: input {} is missing", node.Describe(), i);
    WBS_RETURN_IF_ERROR(CheckType(node, in[i], i, types));
    WBS_RETURN_IF_ERROR(CheckSameType(node, in, 0, i));
  }
  return SetBroadcastOutput(node, in, in[0].dtype, out);
}

Status InferWhere(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, Types::kBool));
  WBS_RETURN_IF_ERROR(CheckSameType(node, in, 1, 2));
  if (DTypeSize(in[1].dtype) == 0) {
    return Unimplemented("{}: type {} is not supported", node.Describe(), DTypeName(in[1].dtype));
  }
  return SetBroadcastOutput(node, in, in[1].dtype, out);
}

// Clip: min/max as attributes (before opset 11) or optional scalar inputs of
// the input's type (11+); whichever form the node has.
Status InferClip(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(CheckType(node, in[0], 0, Types::kNumeric));
  for (size_t i = 1; i < in.size(); ++i) {
    if (!in[i].present) continue;
    WBS_RETURN_IF_ERROR(CheckSameType(node, in, 0, i));
    if (IsStatic(in[i]) && NumElements(in[i].shape) != 1) {
      return InvalidArgument("{}: {} must be a scalar, got shape {}", node.Describe(),
                             i == 1 ? "min" : "max", ShapeToString(in[i].shape));
    }
  }
  if (in[0].has_shape)
    SetShape(out, 0, in[0].dtype, in[0].shape);
  else
    SetUnknownShape(out, 0, in[0].dtype);
  return Status::Ok();
}

Status InferCast(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  DType to = DType::kUndefined;
  if (node.op_type == "CastLike") {
    to = in[1].dtype;
  } else {
    if (!node.Has("to")) return InvalidArgument("{}: attribute 'to' is required", node.Describe());
    to = static_cast<DType>(node.GetInt("to", 0));
  }
  if (to == DType::kString || in[0].dtype == DType::kString) {
    return Unimplemented("{}: string tensors are not supported", node.Describe());
  }
  if (!IsSupported(to)) {
    return InvalidArgument("{}: unknown target type {}", node.Describe(), static_cast<int>(to));
  }
  if (in[0].has_shape)
    SetShape(out, 0, to, in[0].shape);
  else
    SetUnknownShape(out, 0, to);
  return Status::Ok();
}

constexpr int kMaxVariadicInputs = std::numeric_limits<int>::max();

}  // namespace

void RegisterElementwiseSchemas() {
  for (const UnaryRule& r : kUnaryRules)
    RegisterSchema({std::string(r.op), 1, 1, 1, 1, InferUnary});
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Mod"})
    RegisterSchema({op, 2, 2, 1, 1, InferArithmetic});
  RegisterSchema({"PRelu", 2, 2, 1, 1, InferPRelu});
  RegisterSchema({"Pow", 2, 2, 1, 1, InferPow});
  for (const char* op : {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"})
    RegisterSchema({op, 2, 2, 1, 1, InferCompare});
  for (const char* op : {"And", "Or", "Xor"}) RegisterSchema({op, 2, 2, 1, 1, InferLogical});
  for (const char* op : {"Max", "Min", "Sum", "Mean"})
    RegisterSchema({op, 1, kMaxVariadicInputs, 1, 1, InferVariadic});
  RegisterSchema({"Where", 3, 3, 1, 1, InferWhere});
  RegisterSchema({"Clip", 1, 3, 1, 1, InferClip});
  RegisterSchema({"Cast", 1, 1, 1, 1, InferCast});
  RegisterSchema({"CastLike", 2, 2, 1, 1, InferCast});
}

}  // namespace wbs::ir

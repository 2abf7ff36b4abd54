// Shape rules of the quantized ops (docs/int8.md): ONNX QuantizeLinear and
// DequantizeLinear, and the integer ops of the quantized IR, QConv, QGemm,
// QAdd, QConcat, QMaxPool, QAveragePool, QGlobalAveragePool.
//
// The integer ops take their quantization parameters from the QuantParams of
// their input and output Values (ir/graph.h), not from attributes, so a
// tensor's scale is stated once. A QConv/QGemm output without QuantParams is
// f32 (the dequantized accumulator, e.g. the logits); every other integer
// op's output must carry QuantParams. Geometry and broadcasting are the float
// op's rule (Conv, Gemm, Add, Concat, the pools), run on f32 stand-ins.
#include "ir/op_schema.h"

namespace wbs::ir {
namespace {

bool Is8Bit(DType t) { return t == DType::kU8 || t == DType::kI8; }

// Runs the float op's shape rule with the inputs typed f32.
Status InferAsFloat(const char* float_op, const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  const OpSchema* s = FindSchema(float_op);
  if (!s || !s->infer) return Internal("{}: no shape rule for {}", node.Describe(), float_op);
  std::vector<ValueInfo> f = in;
  for (ValueInfo& v : f) {
    v.value = nullptr;
    if (v.present) v.dtype = DType::kF32;
  }
  return s->infer(node, f, out);
}

Status Check8Bit(const Node& node, const ValueInfo& v, const char* what) {
  if (v.dtype == DType::kUndefined || Is8Bit(v.dtype)) return Status::Ok();
  return InvalidArgument("{}: {} has dtype {}, expected u8 or i8", node.Describe(), what,
                         DTypeName(v.dtype));
}

// The output dtype from the output value's QuantParams; f32 when it has none
// and `allow_float` (QConv/QGemm), else an error.
Result<DType> QuantOutputType(const Node& node, bool allow_float) {
  const Value* y = node.outputs.empty() ? nullptr : node.outputs[0];
  if (y && y->quant) {
    const DType t = static_cast<DType>(y->quant->dtype);
    if (!Is8Bit(t)) {
      return InvalidArgument("{}: output quantization dtype {} is not u8 or i8", node.Describe(),
                             DTypeName(t));
    }
    return t;
  }
  if (allow_float) return DType::kF32;
  return InvalidArgument("{}: output has no quantization parameters", node.Describe());
}

Status CheckInputsQuantized(const Node& node, size_t count) {
  for (size_t i = 0; i < count && i < node.inputs.size(); ++i) {
    const Value* v = node.inputs[i];
    if (v && !v->quant) {
      return InvalidArgument("{}: input {} '{}' has no quantization parameters", node.Describe(),
                             i, v->name);
    }
  }
  return Status::Ok();
}

Status InferQConvOrGemm(const char* float_op, const Node& node, const std::vector<ValueInfo>& in,
                        std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(Check8Bit(node, in[0], "input X"));
  if (in[1].dtype != DType::kUndefined && in[1].dtype != DType::kI8) {
    return InvalidArgument("{}: weight W has dtype {}, expected i8", node.Describe(),
                           DTypeName(in[1].dtype));
  }
  if (in.size() > 2 && in[2].present && in[2].dtype != DType::kUndefined &&
      in[2].dtype != DType::kI32) {
    return InvalidArgument("{}: bias B has dtype {}, expected i32", node.Describe(),
                           DTypeName(in[2].dtype));
  }
  WBS_RETURN_IF_ERROR(CheckInputsQuantized(node, 2));
  WBS_ASSIGN_OR_RETURN(const DType t, QuantOutputType(node, /*allow_float=*/true));
  WBS_RETURN_IF_ERROR(InferAsFloat(float_op, node, in, out));
  out[0].dtype = t;
  return Status::Ok();
}

Status InferQConv(const Node& node, const std::vector<ValueInfo>& in,
                  std::vector<ValueInfo>& out) {
  if (node.Has("wbs.residual"))
    return InvalidArgument("{}: a fused residual is not supported", node.Describe());
  return InferQConvOrGemm("Conv", node, in, out);
}

// QGemm: Y = X * W^T + B, W stored [N, K] (the transB = 1 layout).
Status InferQGemm(const Node& node, const std::vector<ValueInfo>& in,
                  std::vector<ValueInfo>& out) {
  if (node.GetInt("transA", 0) != 0 || node.GetInt("transB", 0) != 1 ||
      node.GetFloat("alpha", 1.f) != 1.f || node.GetFloat("beta", 1.f) != 1.f) {
    return InvalidArgument("{}: expects transA=0, transB=1, alpha=beta=1", node.Describe());
  }
  return InferQConvOrGemm("Gemm", node, in, out);
}

// QAdd, QConcat: 8-bit inputs (each with its own parameters), rescaled to
// the output's.
Status InferQMulti(const char* float_op, const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  for (const ValueInfo& v : in) WBS_RETURN_IF_ERROR(Check8Bit(node, v, "input"));
  WBS_RETURN_IF_ERROR(CheckInputsQuantized(node, node.inputs.size()));
  WBS_ASSIGN_OR_RETURN(const DType t, QuantOutputType(node, /*allow_float=*/false));
  WBS_RETURN_IF_ERROR(InferAsFloat(float_op, node, in, out));
  out[0].dtype = t;
  return Status::Ok();
}

Status InferQAdd(const Node& node, const std::vector<ValueInfo>& in,
                 std::vector<ValueInfo>& out) {
  return InferQMulti("Add", node, in, out);
}
Status InferQConcat(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  return InferQMulti("Concat", node, in, out);
}

// Pools keep the input's type and parameters (docs/int8.md).
Status InferQPool(const char* float_op, const Node& node, const std::vector<ValueInfo>& in,
                  std::vector<ValueInfo>& out) {
  WBS_RETURN_IF_ERROR(Check8Bit(node, in[0], "input X"));
  WBS_RETURN_IF_ERROR(CheckInputsQuantized(node, 1));
  const Value* x = node.inputs[0];
  const Value* y = node.outputs.empty() ? nullptr : node.outputs[0];
  if (y && y->quant && x && x->quant && !(*y->quant == *x->quant)) {
    return InvalidArgument("{}: output quantization differs from the input's", node.Describe());
  }
  if (out.size() > 1) return InvalidArgument("{}: has one output", node.Describe());
  WBS_RETURN_IF_ERROR(InferAsFloat(float_op, node, in, out));
  out[0].dtype = in[0].dtype;
  return Status::Ok();
}

Status InferQMaxPool(const Node& node, const std::vector<ValueInfo>& in,
                     std::vector<ValueInfo>& out) {
  return InferQPool("MaxPool", node, in, out);
}
Status InferQAveragePool(const Node& node, const std::vector<ValueInfo>& in,
                         std::vector<ValueInfo>& out) {
  return InferQPool("AveragePool", node, in, out);
}
Status InferQGlobalAveragePool(const Node& node, const std::vector<ValueInfo>& in,
                               std::vector<ValueInfo>& out) {
  return InferQPool("GlobalAveragePool", node, in, out);
}

// Scale (f32) and zero point of QuantizeLinear/DequantizeLinear: a scalar
// (per tensor) or 1-D of the axis' length (per axis, opset 13).
Status CheckScaleZp(const Node& node, const std::vector<ValueInfo>& in, const ValueInfo& x) {
  const ValueInfo& s = in[1];
  if (s.dtype != DType::kUndefined && s.dtype != DType::kF32) {
    return InvalidArgument("{}: scale has dtype {}, expected f32", node.Describe(),
                           DTypeName(s.dtype));
  }
  if (s.has_shape && s.rank() > 1) {
    return InvalidArgument("{}: scale {} must be a scalar or 1-D", node.Describe(),
                           ShapeToString(s.shape));
  }
  if (s.has_shape && s.rank() == 1 && x.has_shape) {
    WBS_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(node.GetInt("axis", 1), x.rank(), node));
    if (s.shape[0] >= 0 && x.shape[axis] >= 0 && s.shape[0] != x.shape[axis] && s.shape[0] != 1) {
      return InvalidArgument("{}: scale {} does not match axis {} of input {}", node.Describe(),
                             ShapeToString(s.shape), axis, ShapeToString(x.shape));
    }
  }
  if (in.size() > 2 && in[2].present && in[2].has_shape && s.has_shape &&
      in[2].shape != s.shape) {
    return InvalidArgument("{}: zero point shape {} differs from scale shape {}",
                           node.Describe(), ShapeToString(in[2].shape), ShapeToString(s.shape));
  }
  return Status::Ok();
}

Status InferQuantizeLinear(const Node& node, const std::vector<ValueInfo>& in,
                           std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  if (x.dtype != DType::kUndefined && x.dtype != DType::kF32 && x.dtype != DType::kI32) {
    return InvalidArgument("{}: input x has dtype {}, expected f32 or i32", node.Describe(),
                           DTypeName(x.dtype));
  }
  WBS_RETURN_IF_ERROR(CheckScaleZp(node, in, x));
  DType t = DType::kU8;
  if (in.size() > 2 && in[2].present) {
    t = in[2].dtype;
    WBS_RETURN_IF_ERROR(Check8Bit(node, in[2], "zero point"));
  }
  out[0].dtype = t;
  out[0].has_shape = x.has_shape;
  out[0].shape = x.shape;
  return Status::Ok();
}

Status InferDequantizeLinear(const Node& node, const std::vector<ValueInfo>& in,
                             std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  if (x.dtype != DType::kUndefined && !Is8Bit(x.dtype) && x.dtype != DType::kI32) {
    return InvalidArgument("{}: input x has dtype {}, expected u8, i8 or i32", node.Describe(),
                           DTypeName(x.dtype));
  }
  if (in.size() > 2 && in[2].present && in[2].dtype != DType::kUndefined &&
      x.dtype != DType::kUndefined && in[2].dtype != x.dtype) {
    return InvalidArgument("{}: zero point dtype {} differs from x dtype {}", node.Describe(),
                           DTypeName(in[2].dtype), DTypeName(x.dtype));
  }
  WBS_RETURN_IF_ERROR(CheckScaleZp(node, in, x));
  out[0].dtype = DType::kF32;
  out[0].has_shape = x.has_shape;
  out[0].shape = x.shape;
  return Status::Ok();
}

}  // namespace

void RegisterQuantSchemas() {
  RegisterSchema({"QuantizeLinear", 2, 3, 1, 1, InferQuantizeLinear});
  RegisterSchema({"DequantizeLinear", 2, 3, 1, 1, InferDequantizeLinear});
  RegisterSchema({"QConv", 2, 3, 1, 1, InferQConv});
  RegisterSchema({"QGemm", 2, 3, 1, 1, InferQGemm});
  RegisterSchema({"QAdd", 2, 2, 1, 1, InferQAdd});
  RegisterSchema({"QConcat", 1, 1 << 20, 1, 1, InferQConcat});
  RegisterSchema({"QMaxPool", 1, 1, 1, 1, InferQMaxPool});
  RegisterSchema({"QAveragePool", 1, 1, 1, 1, InferQAveragePool});
  RegisterSchema({"QGlobalAveragePool", 1, 1, 1, 1, InferQGlobalAveragePool});
}

}  // namespace wbs::ir

// Shape rules of the sliding-window NN ops: Conv, ConvTranspose, MaxPool,
// AveragePool, GlobalAveragePool, GlobalMaxPool (ONNX opsets 7..17). The
// matrix, normalisation and softmax rules live in schemas_nn_math.cc.
#include <algorithm>

#include "ir/conv_geometry.h"
#include "ir/op_schema.h"
#include "ir/schemas_nn_internal.h"

namespace wbs::ir {
namespace nn_schemas {

Status CheckFloat(const Node& node, const ValueInfo& v, const char* what) {
  if (v.dtype == DType::kUndefined || IsFloat(v.dtype)) return Status::Ok();
  return InvalidArgument("{}: {} has dtype {}, expected a float type", node.Describe(), what,
                         DTypeName(v.dtype));
}

Status CheckSameDType(const Node& node, const ValueInfo& a, const char* a_name,
                      const ValueInfo& b, const char* b_name) {
  if (a.dtype == DType::kUndefined || b.dtype == DType::kUndefined || a.dtype == b.dtype)
    return Status::Ok();
  return InvalidArgument("{}: {} has dtype {} but {} has dtype {}", node.Describe(), a_name,
                         DTypeName(a.dtype), b_name, DTypeName(b.dtype));
}

namespace {

std::vector<int64_t> SpatialDims(const Shape& s) { return {s.begin() + 2, s.end()}; }
bool AllKnown(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t d) { return d >= 0; });
}

// Checks X of a window op: rank >= 3 (N, C, spatial...).
Status CheckWindowInput(const Node& node, const ValueInfo& x) {
  if (x.rank() < 3) {
    return InvalidArgument("{}: input X {} must have rank >= 3 (N, C, spatial...)",
                           node.Describe(), ShapeToString(x.shape));
  }
  return Status::Ok();
}

// Checks the optional bias B of Conv/ConvTranspose against `m` channels.
Status CheckBias(const Node& node, const ValueInfo* b, int64_t m) {
  if (!b || !b->has_shape) return Status::Ok();
  if (b->rank() != 1 || (m >= 0 && b->shape[0] >= 0 && b->shape[0] != m)) {
    return InvalidArgument("{}: bias B {} must have shape [{}] (output channels)",
                           node.Describe(), ShapeToString(b->shape), m);
  }
  return Status::Ok();
}

// Common checks of Conv and ConvTranspose: dtypes, group, ranks. Returns
// false in *known when X or W has no shape (output shape unknown).
Status CheckConvLike(const Node& node, const std::vector<ValueInfo>& in, bool* known) {
  const ValueInfo& x = in[0];
  const ValueInfo& w = in[1];
  WBS_RETURN_IF_ERROR(CheckFloat(node, x, "input X"));
  WBS_RETURN_IF_ERROR(CheckSameDType(node, x, "input X", w, "weight W"));
  if (const ValueInfo* b = OptionalInput(in, 2))
    WBS_RETURN_IF_ERROR(CheckSameDType(node, x, "input X", *b, "bias B"));
  const int64_t group = node.GetInt("group", 1);
  if (group < 1) return InvalidArgument("{}: group {} must be >= 1", node.Describe(), group);
  *known = x.has_shape && w.has_shape;
  if (!*known) return Status::Ok();
  WBS_RETURN_IF_ERROR(CheckWindowInput(node, x));
  if (w.rank() != x.rank()) {
    return InvalidArgument("{}: weight W {} must have the rank of input X {}", node.Describe(),
                           ShapeToString(w.shape), ShapeToString(x.shape));
  }
  return Status::Ok();
}

// The fused residual of a Conv (ir/graph.h): a 4th input only with
// "wbs.residual" = 1, and then present, of Y's dtype and (when known) shape.
Status CheckResidual(const Node& node, const std::vector<ValueInfo>& in, const ValueInfo& y) {
  const int64_t flag = node.GetInt("wbs.residual", 0);
  if (flag != 0 && flag != 1)
    return InvalidArgument("{}: wbs.residual must be 0 or 1, got {}", node.Describe(), flag);
  if (in.size() < 4) {
    if (flag == 1)
      return InvalidArgument("{}: wbs.residual=1 needs a 4th input (the residual)",
                             node.Describe());
    return Status::Ok();
  }
  if (flag != 1) {
    return InvalidArgument(
        "{}: has {} inputs; Conv takes at most 3 (a 4th, the residual, only with wbs.residual=1)",
        node.Describe(), in.size());
  }
  const ValueInfo* r = OptionalInput(in, 3);
  if (!r)
    return InvalidArgument("{}: wbs.residual=1 but the residual input is omitted", node.Describe());
  WBS_RETURN_IF_ERROR(CheckSameDType(node, in[0], "input X", *r, "residual R"));
  if (r->has_shape && y.has_shape && r->shape != y.shape) {
    return InvalidArgument("{}: residual R {} must have the output's shape {}", node.Describe(),
                           ShapeToString(r->shape), ShapeToString(y.shape));
  }
  return Status::Ok();
}

Status InferConv(const Node& node, const std::vector<ValueInfo>& in,
                 std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  const ValueInfo& w = in[1];
  out[0].dtype = x.dtype;
  bool known = false;
  WBS_RETURN_IF_ERROR(CheckConvLike(node, in, &known));
  if (!known) return CheckResidual(node, in, out[0]);
  const int64_t group = node.GetInt("group", 1);
  const int64_t c = x.shape[1], m = w.shape[0], cg = w.shape[1];
  if (m >= 0 && m % group != 0) {
    return InvalidArgument("{}: weight W {} has {} output channels, not divisible by group {}",
                           node.Describe(), ShapeToString(w.shape), m, group);
  }
  if (c >= 0 && cg >= 0 && cg * group != c) {
    return InvalidArgument(
        "{}: input X {} has {} channels but weight W {} expects {} (W.shape[1] {} * group {})",
        node.Describe(), ShapeToString(x.shape), c, ShapeToString(w.shape), cg * group, cg,
        group);
  }
  WBS_RETURN_IF_ERROR(CheckBias(node, OptionalInput(in, 2), m));
  const std::vector<int64_t> wk = SpatialDims(w.shape);
  if (!AllKnown(wk) && !node.Has("kernel_shape")) return CheckResidual(node, in, out[0]);
  WBS_ASSIGN_OR_RETURN(WindowAttrs attrs,
                       ParseWindowAttrs(node, x.rank() - 2, AllKnown(wk) ? wk : Shape{}));
  WBS_ASSIGN_OR_RETURN(WindowGeometry g, ComputeWindowGeometry(node, attrs, SpatialDims(x.shape)));
  out[0].shape = {x.shape[0], m};
  out[0].shape.insert(out[0].shape.end(), g.output.begin(), g.output.end());
  out[0].has_shape = true;
  return CheckResidual(node, in, out[0]);
}

Status InferConvTranspose(const Node& node, const std::vector<ValueInfo>& in,
                          std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  const ValueInfo& w = in[1];
  out[0].dtype = x.dtype;
  bool known = false;
  WBS_RETURN_IF_ERROR(CheckConvLike(node, in, &known));
  if (!known) return Status::Ok();
  const int64_t group = node.GetInt("group", 1);
  const int64_t c = x.shape[1], wc = w.shape[0], mg = w.shape[1];
  if (c >= 0 && wc >= 0 && c != wc) {
    return InvalidArgument("{}: input X {} has {} channels but weight W {} has {} (W.shape[0])",
                           node.Describe(), ShapeToString(x.shape), c, ShapeToString(w.shape),
                           wc);
  }
  if (wc >= 0 && wc % group != 0) {
    return InvalidArgument("{}: weight W {} has {} input channels, not divisible by group {}",
                           node.Describe(), ShapeToString(w.shape), wc, group);
  }
  const int64_t m = mg >= 0 ? mg * group : -1;
  WBS_RETURN_IF_ERROR(CheckBias(node, OptionalInput(in, 2), m));
  const std::vector<int64_t> wk = SpatialDims(w.shape);
  if (!AllKnown(wk) && !node.Has("kernel_shape")) return Status::Ok();
  WBS_ASSIGN_OR_RETURN(WindowAttrs attrs,
                       ParseWindowAttrs(node, x.rank() - 2, AllKnown(wk) ? wk : Shape{}));
  WBS_ASSIGN_OR_RETURN(WindowGeometry g,
                       ComputeConvTransposeGeometry(node, attrs, SpatialDims(x.shape)));
  out[0].shape = {x.shape[0], m};
  out[0].shape.insert(out[0].shape.end(), g.output.begin(), g.output.end());
  out[0].has_shape = true;
  return Status::Ok();
}

// MaxPool and AveragePool.
Status InferPool(const Node& node, const std::vector<ValueInfo>& in,
                 std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  const bool is_max = node.op_type == "MaxPool";
  // MaxPool takes 8-bit integers from opset 12; AveragePool only floats.
  if (!is_max || (x.dtype != DType::kU8 && x.dtype != DType::kI8))
    WBS_RETURN_IF_ERROR(CheckFloat(node, x, "input X"));
  for (auto& o : out) o.dtype = x.dtype;
  if (out.size() > 1) out[1].dtype = DType::kI64;
  if (is_max) {
    const int64_t order = node.GetInt("storage_order", 0);
    if (order != 0 && order != 1)
      return InvalidArgument("{}: storage_order must be 0 or 1, got {}", node.Describe(), order);
  } else {
    const int64_t cip = node.GetInt("count_include_pad", 0);
    if (cip != 0 && cip != 1) {
      return InvalidArgument("{}: count_include_pad must be 0 or 1, got {}", node.Describe(),
                             cip);
    }
  }
  if (!x.has_shape) {
    // Attributes can still be checked against the kernel's rank.
    if (node.Has("kernel_shape")) {
      const int rank = static_cast<int>(node.GetInts("kernel_shape").size());
      WBS_RETURN_IF_ERROR(ParseWindowAttrs(node, rank, {}).status());
    }
    return Status::Ok();
  }
  WBS_RETURN_IF_ERROR(CheckWindowInput(node, x));
  WBS_ASSIGN_OR_RETURN(WindowAttrs attrs, ParseWindowAttrs(node, x.rank() - 2, {}));
  WBS_ASSIGN_OR_RETURN(WindowGeometry g, ComputeWindowGeometry(node, attrs, SpatialDims(x.shape)));
  Shape y = {x.shape[0], x.shape[1]};
  y.insert(y.end(), g.output.begin(), g.output.end());
  for (auto& o : out) {
    o.shape = y;
    o.has_shape = true;
  }
  return Status::Ok();
}

// GlobalAveragePool and GlobalMaxPool: [N, C, d...] -> [N, C, 1...].
Status InferGlobalPool(const Node& node, const std::vector<ValueInfo>& in,
                       std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  WBS_RETURN_IF_ERROR(CheckFloat(node, x, "input X"));
  out[0].dtype = x.dtype;
  if (!x.has_shape) return Status::Ok();
  WBS_RETURN_IF_ERROR(CheckWindowInput(node, x));
  out[0].shape = x.shape;
  std::fill(out[0].shape.begin() + 2, out[0].shape.end(), 1);
  out[0].has_shape = true;
  return Status::Ok();
}

}  // namespace
}  // namespace nn_schemas

void RegisterNnSchemas() {
  using namespace nn_schemas;
  RegisterSchema({"Conv", 2, 4, 1, 1, InferConv});  // 4th: wbs.residual
  RegisterSchema({"ConvTranspose", 2, 3, 1, 1, InferConvTranspose});
  RegisterSchema({"MaxPool", 1, 1, 1, 2, InferPool});
  RegisterSchema({"AveragePool", 1, 1, 1, 1, InferPool});
  RegisterSchema({"GlobalAveragePool", 1, 1, 1, 1, InferGlobalPool});
  RegisterSchema({"GlobalMaxPool", 1, 1, 1, 1, InferGlobalPool});
  RegisterMathSchemas();
}

}  // namespace wbs::ir

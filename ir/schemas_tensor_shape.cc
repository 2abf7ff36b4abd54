// Shape rules of the shape-manipulation and data-movement ops: Reshape,
// Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Expand, Tile,
// DepthToSpace, SpaceToDepth, Shape, Size, ConstantOfShape, Constant, Range,
// Identity, Dropout.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ir/schemas_tensor.h"

namespace wbs::ir {

namespace {

// Output 0 = input 0's dtype with `shape`, or unknown.
void SameTypeOutput(const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out, bool known,
                    Shape shape) {
  if (known)
    SetShape(out, 0, in[0].dtype, std::move(shape));
  else
    SetUnknownShape(out, 0, in[0].dtype);
}

Status InferIdentity(const Node& node, const std::vector<ValueInfo>& in,
                     std::vector<ValueInfo>& out) {
  SameTypeOutput(in, out, in[0].has_shape, in[0].shape);
  return Status::Ok();
}

// Inference-only Dropout: Y = X, optional mask = all kept (bool from opset
// 10; before, the mask had the input's type).
Status InferDropout(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  if (HasValue(in, 2)) {
    const Tensor& t = *in[2].value;
    if (t.numel() != 1 || t.dtype() != DType::kBool) {
      return InvalidArgument("{}: training_mode must be a bool scalar, got {}", node.Describe(),
                             t.Describe());
    }
    if (t.data<bool>()[0]) {
      return Unimplemented("{}: training-mode dropout is not supported (inference only)",
                           node.Describe());
    }
  }
  SameTypeOutput(in, out, in[0].has_shape, in[0].shape);
  if (out.size() > 1) {
    const DType mask = node.opset < 10 ? in[0].dtype : DType::kBool;
    if (in[0].has_shape)
      SetShape(out, 1, mask, in[0].shape);
    else
      SetUnknownShape(out, 1, mask);
  }
  return Status::Ok();
}

// Reshape: 0 copies the input dim (unless allowzero), one -1 is inferred.
Status InferReshape(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  std::vector<int64_t> shape;
  if (IsPresent(in, 1)) {
    if (!in[1].value || !IsStatic(in[0])) {
      SameTypeOutput(in, out, false, {});
      return Status::Ok();
    }
    WBS_ASSIGN_OR_RETURN(shape, ReadInts(node, in[1], "shape"));
  } else if (node.Has("shape")) {
    shape = node.GetInts("shape");
  } else {
    return InvalidArgument("{}: needs a shape input", node.Describe());
  }
  if (!IsStatic(in[0])) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  const bool allowzero = node.GetInt("allowzero", 0) != 0;
  const Shape& s = in[0].shape;
  Shape o(shape.size());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    if (d == 0 && !allowzero) {
      if (i >= s.size()) {
        return InvalidArgument("{}: shape {} copies dim {} of input shape {}, which has rank {}",
                               node.Describe(), ShapeToString(shape), i, ShapeToString(s),
                               s.size());
      }
      d = s[i];
    }
    if (d == -1) {
      if (infer >= 0)
        return InvalidArgument("{}: shape {} has more than one -1", node.Describe(),
                               ShapeToString(shape));
      infer = static_cast<int>(i);
      continue;
    }
    if (d < 0)
      return InvalidArgument("{}: shape {} has a negative dim", node.Describe(),
                             ShapeToString(shape));
    o[i] = d;
    known *= d;
  }
  const int64_t n = NumElements(s);
  if (infer >= 0) {
    if (known == 0 || n % known != 0) {
      return InvalidArgument("{}: cannot reshape {} to {}", node.Describe(), ShapeToString(s),
                             ShapeToString(shape));
    }
    o[infer] = n / known;
  } else if (known != n) {
    return InvalidArgument("{}: cannot reshape {} to {}", node.Describe(), ShapeToString(s),
                           ShapeToString(shape));
  }
  SameTypeOutput(in, out, true, o);
  return Status::Ok();
}

Status InferFlatten(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  if (!in[0].has_shape) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  const int r = in[0].rank();
  int64_t axis = node.GetInt("axis", 1);
  if (axis < -r || axis > r) {
    return InvalidArgument("{}: axis {} out of range for input shape {}", node.Describe(), axis,
                           ShapeToString(in[0].shape));
  }
  if (axis < 0) axis += r;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < r; ++d) {
    int64_t& p = d < axis ? outer : inner;
    p = (p < 0 || in[0].shape[d] < 0) ? -1 : p * in[0].shape[d];
  }
  SameTypeOutput(in, out, true, {outer, inner});
  return Status::Ok();
}

Status InferSqueeze(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  if (!IsStatic(in[0]) || (IsPresent(in, 1) && !in[1].value)) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ResolveSqueezeAxes(node, in));
  const Shape& s = in[0].shape;
  std::vector<bool> drop(s.size(), false);
  if (axes.empty()) {
    for (size_t d = 0; d < s.size(); ++d) drop[d] = s[d] == 1;
  }
  for (int64_t a : axes) {
    if (s[a] != 1) {
      return InvalidArgument("{}: cannot squeeze axis {} of size {} in shape {}", node.Describe(),
                             a, s[a], ShapeToString(s));
    }
    drop[a] = true;
  }
  Shape o;
  for (size_t d = 0; d < s.size(); ++d)
    if (!drop[d]) o.push_back(s[d]);
  SameTypeOutput(in, out, true, o);
  return Status::Ok();
}

Status InferUnsqueeze(const Node& node, const std::vector<ValueInfo>& in,
                      std::vector<ValueInfo>& out) {
  if (!in[0].has_shape || (IsPresent(in, 1) && !in[1].value)) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> axes, ResolveSqueezeAxes(node, in));
  const size_t r = in[0].shape.size() + axes.size();
  std::vector<bool> is_new(r, false);
  for (int64_t a : axes) is_new[a] = true;
  Shape o(r);
  size_t k = 0;
  for (size_t d = 0; d < r; ++d) o[d] = is_new[d] ? 1 : in[0].shape[k++];
  SameTypeOutput(in, out, true, o);
  return Status::Ok();
}

Status InferTranspose(const Node& node, const std::vector<ValueInfo>& in,
                      std::vector<ValueInfo>& out) {
  if (!in[0].has_shape) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  const int r = in[0].rank();
  std::vector<int64_t> perm = node.GetInts("perm");
  if (!node.Has("perm")) {
    for (int d = r - 1; d >= 0; --d) perm.push_back(d);
  }
  std::vector<bool> seen(r, false);
  bool valid = static_cast<int>(perm.size()) == r;
  for (int64_t p : perm) {
    if (!valid || p < 0 || p >= r || seen[p]) {
      valid = false;
      break;
    }
    seen[p] = true;
  }
  if (!valid) {
    return InvalidArgument("{}: perm {} is not a permutation of the axes of shape {}",
                           node.Describe(), ShapeToString(perm), ShapeToString(in[0].shape));
  }
  Shape o(r);
  for (int d = 0; d < r; ++d) o[d] = in[0].shape[perm[d]];
  SameTypeOutput(in, out, true, o);
  return Status::Ok();
}

Status InferConcat(const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  if (!node.Has("axis"))
    return InvalidArgument("{}: attribute 'axis' is required", node.Describe());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!in[i].present) return InvalidArgument("{}: input {} is missing", node.Describe(), i);
    if (in[i].dtype != in[0].dtype) {
      return InvalidArgument("{}: input {} has type {}, input 0 has {}", node.Describe(), i,
                             DTypeName(in[i].dtype), DTypeName(in[0].dtype));
    }
  }
  for (const ValueInfo& v : in) {
    if (!v.has_shape) {
      SameTypeOutput(in, out, false, {});
      return Status::Ok();
    }
  }
  const int r = in[0].rank();
  WBS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node.GetInt("axis", 0), r, node));
  if (r == 0) return InvalidArgument("{}: cannot concatenate scalars", node.Describe());
  Shape o = in[0].shape;
  for (size_t i = 1; i < in.size(); ++i) {
    const Shape& s = in[i].shape;
    if (static_cast<int>(s.size()) != r) {
      return InvalidArgument("{}: input {} has shape {} of rank {}, input 0 has shape {}",
                             node.Describe(), i, ShapeToString(s), s.size(),
                             ShapeToString(in[0].shape));
    }
    for (int d = 0; d < r; ++d) {
      if (d == axis) {
        o[d] = (o[d] < 0 || s[d] < 0) ? -1 : o[d] + s[d];
      } else if (o[d] >= 0 && s[d] >= 0 && o[d] != s[d]) {
        return InvalidArgument("{}: input {} has shape {}, incompatible with {} outside axis {}",
                               node.Describe(), i, ShapeToString(s), ShapeToString(in[0].shape),
                               axis);
      } else if (o[d] < 0) {
        o[d] = s[d];
      }
    }
  }
  SameTypeOutput(in, out, true, o);
  return Status::Ok();
}

Status InferSplit(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  if (!IsStatic(in[0]) || (IsPresent(in, 1) && !in[1].value)) {
    for (size_t i = 0; i < out.size(); ++i) SetUnknownShape(out, i, in[0].dtype);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node.GetInt("axis", 0), in[0].rank(), node));
  if (in[0].rank() == 0) return InvalidArgument("{}: cannot split a scalar", node.Describe());
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> sizes, ResolveSplit(node, in, out.size(), axis));
  for (size_t i = 0; i < out.size(); ++i) {
    Shape s = in[0].shape;
    s[axis] = sizes[i];
    SetShape(out, i, in[0].dtype, s);
  }
  return Status::Ok();
}

Status InferExpand(const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  if (!in[1].value || !in[0].has_shape) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(node, in[1], "shape"));
  for (int64_t d : shape) {
    if (d < 0)
      return InvalidArgument("{}: shape {} has a negative dim", node.Describe(),
                             ShapeToString(shape));
  }
  Result<Shape> o = BroadcastShapes(in[0].shape, shape);
  if (!o.ok()) {
    return InvalidArgument("{}: cannot expand shape {} to {}", node.Describe(),
                           ShapeToString(in[0].shape), ShapeToString(shape));
  }
  SameTypeOutput(in, out, true, *o);
  return Status::Ok();
}

Status InferTile(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  if (!in[1].value || !in[0].has_shape) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> reps, ReadInts(node, in[1], "repeats"));
  const Shape& s = in[0].shape;
  if (reps.size() != s.size()) {
    return InvalidArgument("{}: repeats {} must have one entry per axis of shape {}",
                           node.Describe(), ShapeToString(reps), ShapeToString(s));
  }
  Shape o(s.size());
  for (size_t d = 0; d < s.size(); ++d) {
    if (reps[d] < 0)
      return InvalidArgument("{}: repeats {} has a negative entry", node.Describe(),
                             ShapeToString(reps));
    o[d] = s[d] < 0 ? -1 : s[d] * reps[d];
  }
  SameTypeOutput(in, out, true, o);
  return Status::Ok();
}

// DepthToSpace / SpaceToDepth on NCHW.
Status InferDepthSpace(const Node& node, const std::vector<ValueInfo>& in,
                       std::vector<ValueInfo>& out) {
  const int64_t b = node.GetInt("blocksize", 0);
  if (b <= 0) return InvalidArgument("{}: blocksize must be positive, got {}", node.Describe(), b);
  if (node.op_type == "DepthToSpace") {
    const std::string mode = node.GetString("mode", "DCR");
    if (mode != "DCR" && mode != "CRD")
      return InvalidArgument("{}: unknown mode '{}'", node.Describe(), mode);
  }
  if (!IsStatic(in[0])) {
    SameTypeOutput(in, out, false, {});
    return Status::Ok();
  }
  const Shape& s = in[0].shape;
  if (s.size() != 4)
    return InvalidArgument("{}: input must be 4-D NCHW, got shape {}", node.Describe(),
                           ShapeToString(s));
  if (node.op_type == "DepthToSpace") {
    if (s[1] % (b * b) != 0) {
      return InvalidArgument("{}: channels of shape {} not divisible by blocksize^2 = {}",
                             node.Describe(), ShapeToString(s), b * b);
    }
    SameTypeOutput(in, out, true, {s[0], s[1] / (b * b), s[2] * b, s[3] * b});
  } else {
    if (s[2] % b != 0 || s[3] % b != 0) {
      return InvalidArgument("{}: spatial dims of shape {} not divisible by blocksize {}",
                             node.Describe(), ShapeToString(s), b);
    }
    SameTypeOutput(in, out, true, {s[0], s[1] * b * b, s[2] / b, s[3] / b});
  }
  return Status::Ok();
}

Status InferShape(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  if (!in[0].has_shape) {
    SetUnknownShape(out, 0, DType::kI64);
    return Status::Ok();
  }
  const int64_t r = in[0].rank();
  auto clamp = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t start = clamp(node.GetInt("start", 0)), end = clamp(node.GetInt("end", r));
  SetShape(out, 0, DType::kI64, {std::max<int64_t>(0, end - start)});
  return Status::Ok();
}

Status InferSize(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  SetShape(out, 0, DType::kI64, {});
  return Status::Ok();
}

Status InferConstantOfShape(const Node& node, const std::vector<ValueInfo>& in,
                            std::vector<ValueInfo>& out) {
  DType t = DType::kF32;
  if (const Tensor* v = node.GetTensor("value")) {
    if (v->numel() != 1) {
      return InvalidArgument("{}: value must have one element, got {}", node.Describe(),
                             v->Describe());
    }
    t = v->dtype();
  }
  if (!in[0].value) {
    SetUnknownShape(out, 0, t);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(node, in[0], "shape"));
  for (int64_t d : shape) {
    if (d < 0)
      return InvalidArgument("{}: shape {} has a negative dim", node.Describe(),
                             ShapeToString(shape));
  }
  SetShape(out, 0, t, shape);
  return Status::Ok();
}

Status InferConstant(const Node& node, const std::vector<ValueInfo>& in,
                     std::vector<ValueInfo>& out) {
  if (const Tensor* v = node.GetTensor("value")) {
    SetShape(out, 0, v->dtype(), v->shape());
  } else if (node.Has("value_float")) {
    SetShape(out, 0, DType::kF32, {});
  } else if (node.Has("value_floats")) {
    SetShape(out, 0, DType::kF32, {static_cast<int64_t>(node.GetFloats("value_floats").size())});
  } else if (node.Has("value_int")) {
    SetShape(out, 0, DType::kI64, {});
  } else if (node.Has("value_ints")) {
    SetShape(out, 0, DType::kI64, {static_cast<int64_t>(node.GetInts("value_ints").size())});
  } else {
    return Unimplemented("{}: only value, value_float(s) and value_int(s) are supported",
                         node.Describe());
  }
  return Status::Ok();
}

// Range: ceil((limit - start) / delta) elements, at least 0.
Status InferRange(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  for (size_t i = 0; i < 3; ++i) {
    if (in[i].dtype != in[0].dtype || !(IsFloat(in[0].dtype) || IsInteger(in[0].dtype))) {
      return InvalidArgument(
          "{}: start, limit and delta must share one numeric type, got {}, {}, {}", node.Describe(),
          DTypeName(in[0].dtype), DTypeName(in[1].dtype), DTypeName(in[2].dtype));
    }
    if (IsStatic(in[i]) && NumElements(in[i].shape) != 1) {
      return InvalidArgument("{}: input {} must be a scalar, got shape {}", node.Describe(), i,
                             ShapeToString(in[i].shape));
    }
  }
  if (!in[0].value || !in[1].value || !in[2].value) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(std::vector<double> start, ReadDoubles(node, in[0], "start"));
  WBS_ASSIGN_OR_RETURN(std::vector<double> limit, ReadDoubles(node, in[1], "limit"));
  WBS_ASSIGN_OR_RETURN(std::vector<double> delta, ReadDoubles(node, in[2], "delta"));
  if (delta[0] == 0) return InvalidArgument("{}: delta must not be 0", node.Describe());
  const double n = std::ceil((limit[0] - start[0]) / delta[0]);
  if (!(n < static_cast<double>(std::numeric_limits<int32_t>::max()))) {
    return InvalidArgument("{}: range of {} elements is too large", node.Describe(), n);
  }
  SetShape(out, 0, in[0].dtype, {std::max<int64_t>(0, static_cast<int64_t>(n))});
  return Status::Ok();
}

}  // namespace

Result<std::vector<int64_t>> ResolveSqueezeAxes(const Node& node,
                                                const std::vector<ValueInfo>& inputs) {
  std::vector<int64_t> axes;
  if (IsPresent(inputs, 1)) {
    WBS_ASSIGN_OR_RETURN(axes, ReadInts(node, inputs[1], "axes"));
  } else {
    axes = node.GetInts("axes");
  }
  const bool unsqueeze = node.op_type == "Unsqueeze";
  if (unsqueeze && axes.empty()) return InvalidArgument("{}: axes are required", node.Describe());
  const int rank = inputs[0].rank() + (unsqueeze ? static_cast<int>(axes.size()) : 0);
  WBS_ASSIGN_OR_RETURN(std::vector<int> norm, NormalizeAxes(node, axes, rank));
  return std::vector<int64_t>(norm.begin(), norm.end());
}

Result<std::vector<int64_t>> ResolveSplit(const Node& node, const std::vector<ValueInfo>& inputs,
                                          size_t num_outputs, int axis) {
  const int64_t dim = inputs[0].shape[axis];
  std::vector<int64_t> sizes;
  if (IsPresent(inputs, 1)) {
    WBS_ASSIGN_OR_RETURN(sizes, ReadInts(node, inputs[1], "split"));
  } else if (node.Has("split")) {
    sizes = node.GetInts("split");
  } else if (node.Has("num_outputs")) {
    // Opset 18: ceil(dim / n) per output, the last one smaller.
    const int64_t n = node.GetInt("num_outputs", 0);
    if (n <= 0 || static_cast<size_t>(n) != num_outputs) {
      return InvalidArgument("{}: num_outputs {} does not match {} outputs", node.Describe(), n,
                             num_outputs);
    }
    const int64_t part = (dim + n - 1) / n;
    for (int64_t i = 0; i < n; ++i) sizes.push_back(std::clamp<int64_t>(dim - i * part, 0, part));
  } else {
    const int64_t n = static_cast<int64_t>(num_outputs);
    if (dim % n != 0) {
      return InvalidArgument("{}: axis {} of shape {} does not split into {} equal parts",
                             node.Describe(), axis, ShapeToString(inputs[0].shape), n);
    }
    sizes.assign(num_outputs, dim / n);
  }
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0)
      return InvalidArgument("{}: split {} has a negative size", node.Describe(),
                             ShapeToString(sizes));
    sum += s;
  }
  if (sizes.size() != num_outputs || sum != dim) {
    return InvalidArgument("{}: split {} does not cover axis {} of shape {} with {} outputs",
                           node.Describe(), ShapeToString(sizes), axis,
                           ShapeToString(inputs[0].shape), num_outputs);
  }
  return sizes;
}

void RegisterShapeSchemas() {
  constexpr int kMany = std::numeric_limits<int>::max();
  RegisterSchema({"Identity", 1, 1, 1, 1, InferIdentity});
  RegisterSchema({"Dropout", 1, 3, 1, 2, InferDropout});
  RegisterSchema({"Reshape", 1, 2, 1, 1, InferReshape});
  RegisterSchema({"Flatten", 1, 1, 1, 1, InferFlatten});
  RegisterSchema({"Squeeze", 1, 2, 1, 1, InferSqueeze});
  RegisterSchema({"Unsqueeze", 1, 2, 1, 1, InferUnsqueeze});
  RegisterSchema({"Transpose", 1, 1, 1, 1, InferTranspose});
  RegisterSchema({"Concat", 1, kMany, 1, 1, InferConcat});
  RegisterSchema({"Split", 1, 2, 1, kMany, InferSplit});
  RegisterSchema({"Expand", 2, 2, 1, 1, InferExpand});
  RegisterSchema({"Tile", 2, 2, 1, 1, InferTile});
  RegisterSchema({"DepthToSpace", 1, 1, 1, 1, InferDepthSpace});
  RegisterSchema({"SpaceToDepth", 1, 1, 1, 1, InferDepthSpace});
  RegisterSchema({"Shape", 1, 1, 1, 1, InferShape});
  RegisterSchema({"Size", 1, 1, 1, 1, InferSize});
  RegisterSchema({"ConstantOfShape", 1, 1, 1, 1, InferConstantOfShape});
  RegisterSchema({"Constant", 0, 0, 1, 1, InferConstant});
  RegisterSchema({"Range", 3, 3, 1, 1, InferRange});
}

}  // namespace wbs::ir

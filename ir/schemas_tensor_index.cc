// Shape rules of the indexing, padding, resampling and reduction ops: Slice,
// Pad, Resize, Upsample, Reduce*, ArgMax/ArgMin, Gather, GatherElements;
// with the Resolve* functions the runtime shares (ir/schemas_tensor.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "ir/schemas_tensor.h"

namespace wbs::ir {

namespace {

// True when every present input in [first, last] has known contents.
bool ParamsKnown(const std::vector<ValueInfo>& in, size_t first, size_t last) {
  for (size_t i = first; i <= last && i < in.size(); ++i)
    if (in[i].present && !in[i].value) return false;
  return true;
}

Status InferSlice(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  if (!IsStatic(in[0]) || !ParamsKnown(in, 1, 4)) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(SliceParams p, ResolveSlice(node, in));
  SetShape(out, 0, in[0].dtype, p.out_shape);
  return Status::Ok();
}

Status InferPad(const Node& node, const std::vector<ValueInfo>& in, std::vector<ValueInfo>& out) {
  if (IsPresent(in, 2) && in[2].dtype != in[0].dtype) {
    return InvalidArgument("{}: constant_value has type {}, input has {}", node.Describe(),
                           DTypeName(in[2].dtype), DTypeName(in[0].dtype));
  }
  if (!IsStatic(in[0]) || !ParamsKnown(in, 1, 1) || !ParamsKnown(in, 3, 3)) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(PadParams p, ResolvePad(node, in));
  SetShape(out, 0, in[0].dtype, p.out_shape);
  return Status::Ok();
}

Status InferResize(const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  // The roi (input 1 from opset 11) only matters for tf_crop_and_resize.
  const bool params_known =
      node.op_type == "Resize" && node.opset >= 11 ? ParamsKnown(in, 2, 3) : ParamsKnown(in, 1, 1);
  if (!IsStatic(in[0]) || !params_known) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(ResizeParams p, ResolveResize(node, in));
  SetShape(out, 0, in[0].dtype, p.out_shape);
  return Status::Ok();
}

Status InferReduce(const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  if (!(IsFloat(in[0].dtype) || IsInteger(in[0].dtype))) {
    return InvalidArgument("{}: input must be numeric, got {}", node.Describe(),
                           DTypeName(in[0].dtype));
  }
  if (!IsStatic(in[0]) || !ParamsKnown(in, 1, 1)) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  WBS_ASSIGN_OR_RETURN(ReduceParams p, ResolveReduce(node, in));
  SetShape(out, 0, in[0].dtype, p.out_shape);
  return Status::Ok();
}

Status InferArgReduce(const Node& node, const std::vector<ValueInfo>& in,
                      std::vector<ValueInfo>& out) {
  if (!(IsFloat(in[0].dtype) || IsInteger(in[0].dtype))) {
    return InvalidArgument("{}: input must be numeric, got {}", node.Describe(),
                           DTypeName(in[0].dtype));
  }
  if (!in[0].has_shape) {
    SetUnknownShape(out, 0, DType::kI64);
    return Status::Ok();
  }
  Shape s = in[0].shape;
  WBS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node.GetInt("axis", 0), in[0].rank(), node));
  if (s.empty()) return InvalidArgument("{}: input must have rank >= 1", node.Describe());
  if (s[axis] == 0) {
    return InvalidArgument("{}: axis {} of shape {} is empty", node.Describe(), axis,
                           ShapeToString(s));
  }
  if (node.GetInt("keepdims", 1) != 0)
    s[axis] = 1;
  else
    s.erase(s.begin() + axis);
  SetShape(out, 0, DType::kI64, s);
  return Status::Ok();
}

Status InferGather(const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  if (in[1].dtype != DType::kI64 && in[1].dtype != DType::kI32) {
    return InvalidArgument("{}: indices must be int64 or int32, got {}", node.Describe(),
                           DTypeName(in[1].dtype));
  }
  if (!in[0].has_shape || !in[1].has_shape) {
    SetUnknownShape(out, 0, in[0].dtype);
    return Status::Ok();
  }
  const Shape& s = in[0].shape;
  if (s.empty()) return InvalidArgument("{}: data must have rank >= 1", node.Describe());
  WBS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node.GetInt("axis", 0), in[0].rank(), node));
  if (node.op_type == "GatherElements") {
    const Shape& is = in[1].shape;
    if (is.size() != s.size()) {
      return InvalidArgument("{}: indices shape {} must have the rank of data shape {}",
                             node.Describe(), ShapeToString(is), ShapeToString(s));
    }
    for (size_t d = 0; d < s.size(); ++d) {
      if (static_cast<int>(d) != axis && is[d] >= 0 && s[d] >= 0 && is[d] > s[d]) {
        return InvalidArgument("{}: indices shape {} exceeds data shape {} outside axis {}",
                               node.Describe(), ShapeToString(is), ShapeToString(s), axis);
      }
    }
    SetShape(out, 0, in[0].dtype, is);
    return Status::Ok();
  }
  Shape o(s.begin(), s.begin() + axis);
  o.insert(o.end(), in[1].shape.begin(), in[1].shape.end());
  o.insert(o.end(), s.begin() + axis + 1, s.end());
  SetShape(out, 0, in[0].dtype, o);
  return Status::Ok();
}

// Per-axis scales or sizes, expanded from the `axes` attribute (opset 18)
// to one entry per input axis; missing axes get `fill`.
template <typename V>
Result<std::vector<V>> ExpandToRank(const Node& node, const std::vector<V>& v, int rank, V fill,
                                    const char* what) {
  if (!node.Has("axes")) {
    if (static_cast<int>(v.size()) != rank) {
      return InvalidArgument("{}: {} has {} entries, input has rank {}", node.Describe(), what,
                             v.size(), rank);
    }
    return v;
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int> axes, NormalizeAxes(node, node.GetInts("axes"), rank));
  if (axes.size() != v.size()) {
    return InvalidArgument("{}: {} has {} entries for {} axes", node.Describe(), what, v.size(),
                           axes.size());
  }
  std::vector<V> out(rank, fill);
  for (size_t i = 0; i < axes.size(); ++i) out[axes[i]] = v[i];
  return out;
}

}  // namespace

Result<SliceParams> ResolveSlice(const Node& node, const std::vector<ValueInfo>& in) {
  const Shape& s = in[0].shape;
  const int r = in[0].rank();
  std::vector<int64_t> starts, ends, axes, steps;
  bool has_axes = false, has_steps = false;
  if (IsPresent(in, 1)) {
    if (!IsPresent(in, 2)) return InvalidArgument("{}: ends input is required", node.Describe());
    WBS_ASSIGN_OR_RETURN(starts, ReadInts(node, in[1], "starts"));
    WBS_ASSIGN_OR_RETURN(ends, ReadInts(node, in[2], "ends"));
    if (IsPresent(in, 3)) {
      WBS_ASSIGN_OR_RETURN(axes, ReadInts(node, in[3], "axes"));
      has_axes = true;
    }
    if (IsPresent(in, 4)) {
      WBS_ASSIGN_OR_RETURN(steps, ReadInts(node, in[4], "steps"));
      has_steps = true;
    }
  } else {
    if (!node.Has("starts") || !node.Has("ends")) {
      return InvalidArgument("{}: needs starts and ends (inputs or attributes)", node.Describe());
    }
    starts = node.GetInts("starts");
    ends = node.GetInts("ends");
    has_axes = node.Has("axes");
    axes = node.GetInts("axes");
  }
  if (!has_axes) {
    axes.clear();
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (!has_steps) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() ||
      steps.size() != starts.size()) {
    return InvalidArgument("{}: starts, ends, axes and steps have {}, {}, {} and {} entries",
                           node.Describe(), starts.size(), ends.size(), axes.size(), steps.size());
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int> norm_axes, NormalizeAxes(node, axes, r));
  SliceParams p;
  p.starts.assign(r, 0);
  p.steps.assign(r, 1);
  p.out_shape = s;
  for (size_t i = 0; i < norm_axes.size(); ++i) {
    const int a = norm_axes[i];
    const int64_t dim = s[a];
    int64_t step = steps[i];
    if (step == 0) return InvalidArgument("{}: step for axis {} is 0", node.Describe(), a);
    if (step == std::numeric_limits<int64_t>::min()) step = -std::numeric_limits<int64_t>::max();
    int64_t start = starts[i], end = ends[i];
    // Negative positions count from the end; cannot overflow as dim >= 0.
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    int64_t len = 0;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, dim);
      end = std::clamp<int64_t>(end, 0, dim);
      len = end > start ? 1 + (end - start - 1) / step : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, std::max<int64_t>(dim - 1, 0));
      end = std::clamp<int64_t>(end, -1, dim - 1);
      len = (dim > 0 && start > end) ? 1 + (start - end - 1) / -step : 0;
    }
    p.starts[a] = start;
    p.steps[a] = step;
    p.out_shape[a] = len;
  }
  return p;
}

Result<PadParams> ResolvePad(const Node& node, const std::vector<ValueInfo>& in) {
  PadParams p;
  p.mode = node.GetString("mode", "constant");
  if (p.mode != "constant" && p.mode != "reflect" && p.mode != "edge" && p.mode != "wrap") {
    return InvalidArgument("{}: unknown mode '{}'", node.Describe(), p.mode);
  }
  const Shape& s = in[0].shape;
  const int r = in[0].rank();
  std::vector<int64_t> pads;
  if (IsPresent(in, 1)) {
    WBS_ASSIGN_OR_RETURN(pads, ReadInts(node, in[1], "pads"));
  } else if (node.Has("pads")) {
    pads = node.GetInts("pads");
  } else if (node.Has("paddings")) {
    pads = node.GetInts("paddings");  // opset 1
  } else {
    return InvalidArgument("{}: needs pads (input or attribute)", node.Describe());
  }
  std::vector<int> axes;
  if (IsPresent(in, 3)) {
    WBS_ASSIGN_OR_RETURN(std::vector<int64_t> raw, ReadInts(node, in[3], "axes"));
    WBS_ASSIGN_OR_RETURN(axes, NormalizeAxes(node, raw, r));
  } else {
    for (int d = 0; d < r; ++d) axes.push_back(d);
  }
  if (pads.size() != 2 * axes.size()) {
    return InvalidArgument("{}: pads {} must have 2 x {} entries for input shape {}",
                           node.Describe(), ShapeToString(pads), axes.size(), ShapeToString(s));
  }
  p.begin.assign(r, 0);
  p.end.assign(r, 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    p.begin[axes[i]] = pads[i];
    p.end[axes[i]] = pads[i + axes.size()];
  }
  p.out_shape = s;
  for (int d = 0; d < r; ++d) {
    const int64_t kept = s[d] + std::min<int64_t>(p.begin[d], 0) + std::min<int64_t>(p.end[d], 0);
    if (kept < 0) {
      return InvalidArgument("{}: pads {} crop more than axis {} of shape {}", node.Describe(),
                             ShapeToString(pads), d, ShapeToString(s));
    }
    if (kept == 0 && p.mode != "constant" && (p.begin[d] > 0 || p.end[d] > 0)) {
      return InvalidArgument("{}: cannot {}-pad empty axis {} of shape {}", node.Describe(), p.mode,
                             d, ShapeToString(s));
    }
    p.out_shape[d] = s[d] + p.begin[d] + p.end[d];
  }
  return p;
}

Result<ResizeParams> ResolveResize(const Node& node, const std::vector<ValueInfo>& in) {
  ResizeParams p;
  const bool v11 = node.op_type == "Resize" && node.opset >= 11;
  const std::string mode = node.GetString("mode", "nearest");
  if (mode == "linear" || mode == "bilinear")
    p.linear = true;
  else if (mode == "cubic")
    return Unimplemented("{}: mode 'cubic' is not supported", node.Describe());
  else if (mode != "nearest")
    return InvalidArgument("{}: unknown mode '{}'", node.Describe(), mode);
  // Before opset 11 (Upsample, Resize-10) coordinates were asymmetric, and
  // nearest picked floor when upsampling and ceil when downsampling (as
  // ONNX Runtime does); "" names that rule.
  p.coordinate_mode =
      v11 ? node.GetString("coordinate_transformation_mode", "half_pixel") : "asymmetric";
  p.nearest_mode = v11 ? node.GetString("nearest_mode", "round_prefer_floor") : "";
  const std::string& cm = p.coordinate_mode;
  if (cm == "tf_crop_and_resize" || cm == "half_pixel_symmetric") {
    return Unimplemented("{}: coordinate_transformation_mode '{}' is not supported",
                         node.Describe(), cm);
  }
  if (cm != "half_pixel" && cm != "pytorch_half_pixel" && cm != "align_corners" &&
      cm != "asymmetric" && cm != "tf_half_pixel_for_nn") {
    return InvalidArgument("{}: unknown coordinate_transformation_mode '{}'", node.Describe(), cm);
  }
  const std::string& nm = p.nearest_mode;
  if (v11 && nm != "round_prefer_floor" && nm != "round_prefer_ceil" && nm != "floor" &&
      nm != "ceil") {
    return InvalidArgument("{}: unknown nearest_mode '{}'", node.Describe(), nm);
  }
  const Shape& s = in[0].shape;
  const int r = in[0].rank();
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  bool have_scales = false, have_sizes = false;
  const size_t scales_input = v11 ? 2 : 1;
  if (IsPresent(in, scales_input)) {
    WBS_ASSIGN_OR_RETURN(scales, ReadDoubles(node, in[scales_input], "scales"));
    have_scales = !scales.empty();
  } else if (node.op_type == "Upsample" && node.Has("scales")) {
    for (float f : node.GetFloats("scales")) scales.push_back(f);
    have_scales = true;
  }
  if (v11 && IsPresent(in, 3)) {
    WBS_ASSIGN_OR_RETURN(sizes, ReadInts(node, in[3], "sizes"));
    have_sizes = !sizes.empty();
  }
  if (have_scales == have_sizes) {
    return InvalidArgument("{}: exactly one of scales and sizes must be given", node.Describe());
  }
  p.out_shape = s;
  if (have_scales) {
    WBS_ASSIGN_OR_RETURN(p.scales, ExpandToRank(node, scales, r, 1.0, "scales"));
    for (int d = 0; d < r; ++d) {
      if (!(p.scales[d] > 0)) {
        return InvalidArgument("{}: scale {} for axis {} must be positive", node.Describe(),
                               p.scales[d], d);
      }
      p.out_shape[d] = static_cast<int64_t>(std::floor(static_cast<double>(s[d]) * p.scales[d]));
    }
  } else {
    WBS_ASSIGN_OR_RETURN(std::vector<int64_t> full,
                         ExpandToRank<int64_t>(node, sizes, r, -1, "sizes"));
    const std::string policy = node.GetString("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") {
      return InvalidArgument("{}: unknown keep_aspect_ratio_policy '{}'", node.Describe(), policy);
    }
    // not_larger / not_smaller: one scale for every given axis (opset 18).
    double common = policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
    p.scales.assign(r, 1.0);
    for (int d = 0; d < r; ++d) {
      if (full[d] < 0) {
        if (node.Has("axes")) continue;  // axis not resized
        return InvalidArgument("{}: size {} for axis {} is negative", node.Describe(), full[d], d);
      }
      const double sc = s[d] > 0 ? static_cast<double>(full[d]) / static_cast<double>(s[d]) : 1.0;
      p.scales[d] = sc;
      p.out_shape[d] = full[d];
      common = policy == "not_larger" ? std::min(common, sc) : std::max(common, sc);
    }
    if (policy != "stretch") {
      for (int d = 0; d < r; ++d) {
        if (full[d] < 0) continue;
        p.scales[d] = common;
        p.out_shape[d] = static_cast<int64_t>(std::round(static_cast<double>(s[d]) * common));
      }
    }
  }
  return p;
}

Result<ReduceParams> ResolveReduce(const Node& node, const std::vector<ValueInfo>& in) {
  const int r = in[0].rank();
  std::vector<int64_t> axes;
  if (IsPresent(in, 1)) {
    WBS_ASSIGN_OR_RETURN(axes, ReadInts(node, in[1], "axes"));
  } else {
    axes = node.GetInts("axes");
  }
  WBS_ASSIGN_OR_RETURN(std::vector<int> norm, NormalizeAxes(node, axes, r));
  ReduceParams p;
  const bool noop = norm.empty() && node.GetInt("noop_with_empty_axes", 0) != 0;
  p.reduce_axis.assign(r, norm.empty() && !noop);
  for (int a : norm) p.reduce_axis[a] = true;
  const bool keepdims = node.GetInt("keepdims", 1) != 0;
  for (int d = 0; d < r; ++d) {
    if (!p.reduce_axis[d])
      p.out_shape.push_back(in[0].shape[d]);
    else if (keepdims)
      p.out_shape.push_back(1);
  }
  return p;
}

void RegisterIndexSchemas() {
  RegisterSchema({"Slice", 1, 5, 1, 1, InferSlice});
  RegisterSchema({"Pad", 1, 4, 1, 1, InferPad});
  RegisterSchema({"Resize", 1, 4, 1, 1, InferResize});
  RegisterSchema({"Upsample", 1, 2, 1, 1, InferResize});
  for (const char* op :
       {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})
    RegisterSchema({op, 1, 2, 1, 1, InferReduce});
  RegisterSchema({"ArgMax", 1, 1, 1, 1, InferArgReduce});
  RegisterSchema({"ArgMin", 1, 1, 1, 1, InferArgReduce});
  RegisterSchema({"Gather", 2, 2, 1, 1, InferGather});
  RegisterSchema({"GatherElements", 2, 2, 1, 1, InferGather});
}

}  // namespace wbs::ir

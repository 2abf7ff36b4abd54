// Reference operators of the indexing, padding, resampling and reduction
// ops. Parameters that may come from inputs are resolved by the same
// functions the shape rules use (ir/schemas_tensor.h).
#include <cstring>
#include <map>

#include "ir/schemas_tensor.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/reduce.h"
#include "kernels/ref/resize.h"
#include "kernels/ref/tensor_ops.h"
#include "runtime/ops_tensor_internal.h"

namespace wbs::runtime::tensor_ops {

namespace {

namespace k = wbs::kernels::ref;

Result<RunFn> MakeSlice(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) -> Status {
    WBS_ASSIGN_OR_RETURN(ir::SliceParams p, ir::ResolveSlice(r.node, r.in_infos));
    const Tensor& in = *r.in[0];
    const std::vector<int64_t> st = StridesOf(in.shape());
    int64_t offset = 0;
    std::vector<int64_t> strides(st.size());
    for (size_t d = 0; d < st.size(); ++d) {
      offset += p.starts[d] * st[d];
      strides[d] = p.steps[d] * st[d];
    }
    k::CopyStrided(in.raw(), offset, strides, r.out[0]->shape(), r.out[0]->raw(),
                   DTypeSize(in.dtype()));
    return Status::Ok();
  });
}

// Pad's fill value as one element of the input's type: the constant_value
// input (11+), else the `value` attribute (before 11), else 0.
Result<Tensor> PadValue(const RunArgs& r) {
  const DType t = r.in[0]->dtype();
  if (r.in.size() > 2 && r.in[2]) {
    if (r.in[2]->numel() > 1) {
      return InvalidArgument("{}: constant_value must be a scalar, got {}", r.node.Describe(),
                             r.in[2]->Describe());
    }
    if (r.in[2]->numel() == 1) return *r.in[2];
  }
  Tensor v(t, {});
  const float f = r.node.GetFloat("value", 0.0f);
  if (f != 0.0f && !k::Convert(DType::kF32, &f, t, v.raw(), 1)) return NoKernelFor(r.node, t);
  return v;
}

Result<RunFn> MakePad(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) -> Status {
    WBS_ASSIGN_OR_RETURN(ir::PadParams p, ir::ResolvePad(r.node, r.in_infos));
    WBS_ASSIGN_OR_RETURN(Tensor value, PadValue(r));
    static const std::map<std::string, k::PadMode> modes = {{"constant", k::PadMode::kConstant},
                                                            {"reflect", k::PadMode::kReflect},
                                                            {"edge", k::PadMode::kEdge},
                                                            {"wrap", k::PadMode::kWrap}};
    const k::PadMode mode = modes.at(p.mode);
    const Tensor& in = *r.in[0];
    std::vector<std::vector<int64_t>> maps;
    for (int d = 0; d < in.rank(); ++d)
      maps.push_back(k::PadAxisMap(mode, in.shape()[d], p.begin[d], p.end[d]));
    if (r.out[0]->numel() > 0) {
      k::GatherByAxisMaps(in.raw(), in.shape(), maps, r.out[0]->shape(), value.raw(),
                          r.out[0]->raw(), DTypeSize(in.dtype()));
    }
    return Status::Ok();
  });
}

k::CoordTransform CoordTransformOf(const std::string& m) {
  if (m == "half_pixel") return k::CoordTransform::kHalfPixel;
  if (m == "pytorch_half_pixel") return k::CoordTransform::kPytorchHalfPixel;
  if (m == "align_corners") return k::CoordTransform::kAlignCorners;
  if (m == "tf_half_pixel_for_nn") return k::CoordTransform::kTfHalfPixelForNn;
  return k::CoordTransform::kAsymmetric;
}

// "" is the opset-10 rule (ir::ResizeParams): floor when upsampling, ceil
// when downsampling.
k::NearestMode NearestModeOf(const std::string& m, double scale) {
  if (m == "round_prefer_floor") return k::NearestMode::kRoundPreferFloor;
  if (m == "round_prefer_ceil") return k::NearestMode::kRoundPreferCeil;
  if (m == "floor") return k::NearestMode::kFloor;
  if (m == "ceil") return k::NearestMode::kCeil;
  return scale < 1.0 ? k::NearestMode::kCeil : k::NearestMode::kFloor;
}

Result<RunFn> MakeResize(const OpCreateArgs& a) {
  const ir::Node& node = *a.node;
  const DType t = InputType(a, 0);
  const std::string mode = node.GetString("mode", "nearest");
  if ((mode == "linear" || mode == "bilinear") && t != DType::kF32 && t != DType::kF64) {
    return NoKernelFor(node, t);
  }
  return RunFn([t](const RunArgs& r) -> Status {
    WBS_ASSIGN_OR_RETURN(ir::ResizeParams p, ir::ResolveResize(r.node, r.in_infos));
    const Tensor& in = *r.in[0];
    Tensor& out = *r.out[0];
    if (out.numel() == 0) return Status::Ok();
    if (in.numel() == 0) {
      return InvalidArgument("{}: cannot resize empty input {} to {}", r.node.Describe(),
                             in.Describe(), ShapeToString(out.shape()));
    }
    const k::CoordTransform ct = CoordTransformOf(p.coordinate_mode);
    if (!p.linear) {
      std::vector<std::vector<int64_t>> maps;
      for (int d = 0; d < in.rank(); ++d) {
        maps.push_back(k::NearestAxisMap(ct, NearestModeOf(p.nearest_mode, p.scales[d]),
                                         in.shape()[d], out.shape()[d], p.scales[d]));
      }
      k::GatherByAxisMaps(in.raw(), in.shape(), maps, out.shape(), nullptr, out.raw(),
                          DTypeSize(t));
      return Status::Ok();
    }
    std::vector<k::LinearTaps> taps;
    for (int d = 0; d < in.rank(); ++d)
      taps.push_back(k::LinearAxisTaps(ct, in.shape()[d], out.shape()[d], p.scales[d]));
    VisitFloat(t, [&]<typename T>() {
      k::ResizeLinear<T>(in.data<T>(), in.shape(), taps, out.shape(), out.data<T>());
    });
    return Status::Ok();
  });
}

Result<RunFn> MakeReduce(const OpCreateArgs& a) {
  static const std::map<std::string, k::ReduceOp> ops = {
      {"ReduceSum", k::ReduceOp::kSum},
      {"ReduceMean", k::ReduceOp::kMean},
      {"ReduceMax", k::ReduceOp::kMax},
      {"ReduceMin", k::ReduceOp::kMin},
      {"ReduceProd", k::ReduceOp::kProd},
      {"ReduceL1", k::ReduceOp::kL1},
      {"ReduceL2", k::ReduceOp::kL2},
      {"ReduceLogSum", k::ReduceOp::kLogSum},
      {"ReduceLogSumExp", k::ReduceOp::kLogSumExp},
      {"ReduceSumSquare", k::ReduceOp::kSumSquare}};
  const k::ReduceOp op = ops.at(a.node->op_type);
  const DType t = InputType(a, 0);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(*a.node, t);
  return RunFn([op, t](const RunArgs& r) -> Status {
    WBS_ASSIGN_OR_RETURN(ir::ReduceParams p, ir::ResolveReduce(r.node, r.in_infos));
    VisitNumeric(t, [&]<typename T>() {
      k::Reduce<T>(op, r.in[0]->data<T>(), r.in[0]->shape(), p.reduce_axis, r.out[0]->data<T>());
    });
    return Status::Ok();
  });
}

Result<RunFn> MakeArgReduce(const OpCreateArgs& a) {
  const DType t = InputType(a, 0);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(*a.node, t);
  const bool is_max = a.node->op_type == "ArgMax";
  const bool last = a.node->GetInt("select_last_index", 0) != 0;
  const int64_t axis_attr = a.node->GetInt("axis", 0);
  return RunFn([=](const RunArgs& r) {
    const int axis = static_cast<int>(axis_attr < 0 ? axis_attr + r.in[0]->rank() : axis_attr);
    VisitNumeric(t, [&]<typename T>() {
      k::ArgReduce<T>(is_max, last, r.in[0]->data<T>(), r.in[0]->shape(), axis,
                      r.out[0]->data<int64_t>());
    });
    return Status::Ok();
  });
}

// Indices as int64 in [0, len): negative ones count from the end; any other
// out-of-range index is an InvalidArgument naming the node.
Result<std::vector<int64_t>> NormalizeIndices(const ir::Node& node, const Tensor& indices,
                                              int64_t len, int axis) {
  std::vector<int64_t> idx = indices.ToVector<int64_t>();
  for (int64_t& i : idx) {
    if (i < -len || i >= len) {
      return InvalidArgument("{}: index {} out of range for axis {} of size {}", node.Describe(), i,
                             axis, len);
    }
    if (i < 0) i += len;
  }
  return idx;
}

Result<RunFn> MakeGather(const OpCreateArgs& a) {
  const int64_t axis_attr = a.node->GetInt("axis", 0);
  const bool elements = a.node->op_type == "GatherElements";
  return RunFn([axis_attr, elements](const RunArgs& r) -> Status {
    const Tensor& data = *r.in[0];
    const Shape& s = data.shape();
    const int axis = static_cast<int>(axis_attr < 0 ? axis_attr + data.rank() : axis_attr);
    WBS_ASSIGN_OR_RETURN(std::vector<int64_t> idx,
                         NormalizeIndices(r.node, *r.in[1], s[axis], axis));
    if (elements) {
      k::GatherElements(data.raw(), s, idx.data(), r.out[0]->shape(), axis, r.out[0]->raw(),
                        DTypeSize(data.dtype()));
      return Status::Ok();
    }
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= s[d];
    for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
    k::Gather(data.raw(), outer, s[axis], inner, idx.data(), static_cast<int64_t>(idx.size()),
              r.out[0]->raw(), DTypeSize(data.dtype()));
    return Status::Ok();
  });
}

}  // namespace

void RegisterIndexOperators() {
  RegisterRef("Slice", MakeSlice);
  RegisterRef("Pad", MakePad);
  RegisterRef("Resize", MakeResize);
  RegisterRef("Upsample", MakeResize);
  for (const char* op :
       {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})
    RegisterRef(op, MakeReduce);
  RegisterRef("ArgMax", MakeArgReduce);
  RegisterRef("ArgMin", MakeArgReduce);
  RegisterRef("Gather", MakeGather);
  RegisterRef("GatherElements", MakeGather);
}

}  // namespace wbs::runtime::tensor_ops

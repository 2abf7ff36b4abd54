#include "runtime/ops_nn_common.h"

#include <optional>

#include "ir/conv_geometry.h"
#include "ir/op_schema.h"

namespace wbs::runtime {

Result<kernels::ref::Activation> FusedActivationOf(const ir::Node& node) {
  const std::string op = node.GetString("wbs.activation", "");
  auto param = [&](const char* name) -> std::optional<float> {
    if (!node.Has(name)) return std::nullopt;
    return node.GetFloat(name, 0.0f);
  };
  auto act =
      kernels::ref::MakeActivation(op, param("wbs.activation_alpha"), param("wbs.activation_beta"));
  if (!act.ok()) return act.status().WithContext(node.Describe());
  return act;
}

Status CheckRunShapes(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                      const std::vector<Tensor*>& outputs) {
  std::vector<ir::ValueInfo> in;
  in.reserve(inputs.size());
  for (const Tensor* t : inputs) in.push_back(ir::ValueInfo::FromTensor(t));
  std::vector<ir::ValueInfo> out;
  WBS_RETURN_IF_ERROR(ir::InferNode(node, in, out));
  for (size_t i = 0; i < outputs.size() && i < out.size(); ++i) {
    const Tensor* t = outputs[i];
    if (!t) continue;
    if (t->dtype() != out[i].dtype || (out[i].has_shape && t->shape() != out[i].shape)) {
      return InvalidArgument("{}: output {} is {} but the inputs give {}{}", node.Describe(), i,
                             t->Describe(), DTypeName(out[i].dtype),
                             out[i].has_shape ? ShapeToString(out[i].shape) : "[rank ?]");
    }
  }
  return Status::Ok();
}

Status RequireF32OrF64(const ir::Node& node, DType dtype, const char* what) {
  if (dtype == DType::kF32 || dtype == DType::kF64) return Status::Ok();
  return Unimplemented("{}: {} dtype {} is not supported (f32, f64)", node.Describe(), what,
                       DTypeName(dtype));
}

namespace {

// Copies a window geometry into the reference kernels' parameters (conv or
// pool), spatial dims right-aligned in their 3 slots (leading 1s stay).
template <typename Params>
void SetWindow(const ir::WindowGeometry& g, int spatial, Params* p) {
  const int lead = kernels::ref::kMaxConvSpatialRank - spatial;
  for (int i = 0; i < spatial; ++i) {
    p->in[lead + i] = g.input[i];
    p->out[lead + i] = g.output[i];
    p->kernel[lead + i] = g.kernel[i];
    p->stride[lead + i] = g.strides[i];
    p->dilation[lead + i] = g.dilations[i];
    p->pad_begin[lead + i] = g.pad_begin[i];
    p->pad_end[lead + i] = g.pad_end[i];
  }
}

}  // namespace

Result<kernels::ref::PoolParams> ResolvePoolParams(const ir::Node& node, const Shape& x) {
  namespace ref = kernels::ref;
  if (x.size() < 3) {
    return InvalidArgument("{}: input X {} must have rank >= 3 (N, C, spatial...)", node.Describe(),
                           ShapeToString(x));
  }
  const int spatial = static_cast<int>(x.size()) - 2;
  if (spatial > ref::kMaxConvSpatialRank) {
    return Unimplemented("{}: {} spatial dims (input {}); at most {} are supported",
                         node.Describe(), spatial, ShapeToString(x), ref::kMaxConvSpatialRank);
  }
  WBS_ASSIGN_OR_RETURN(ir::WindowAttrs attrs, ir::ParseWindowAttrs(node, spatial, {}));
  WBS_ASSIGN_OR_RETURN(ir::WindowGeometry g,
                       ir::ComputeWindowGeometry(node, attrs, Shape(x.begin() + 2, x.end())));
  ref::PoolParams p;
  p.batch = x[0];
  p.channels = x[1];
  SetWindow(g, spatial, &p);
  p.count_include_pad = node.GetInt("count_include_pad", 0) == 1;
  p.column_major_indices = node.GetInt("storage_order", 0) == 1;
  return p;
}

Result<kernels::ref::ConvParams> ResolveConvParams(const ir::Node& node, const Shape& x,
                                                   const Shape& w, bool transpose) {
  // The shape rule validates ranks, channels, group and attributes.
  std::vector<ir::ValueInfo> in(2), out;
  for (int i = 0; i < 2; ++i) {
    in[i].shape = i == 0 ? x : w;
    in[i].has_shape = true;
  }
  if (node.GetInt("wbs.residual", 0) == 1) {
    // A fused residual (checked against Y by the operators at run time) is
    // a present 4th input here, so the rule accepts the attribute.
    in.resize(4);
    in[2].present = false;
  }
  WBS_RETURN_IF_ERROR(ir::InferNode(node, in, out));
  const int spatial = static_cast<int>(x.size()) - 2;
  if (spatial > kernels::ref::kMaxConvSpatialRank) {
    return Unimplemented("{}: {} spatial dims (input {}); at most {} are supported",
                         node.Describe(), spatial, ShapeToString(x),
                         kernels::ref::kMaxConvSpatialRank);
  }
  const Shape wk(w.begin() + 2, w.end());
  WBS_ASSIGN_OR_RETURN(ir::WindowAttrs attrs, ir::ParseWindowAttrs(node, spatial, wk));
  const Shape xs(x.begin() + 2, x.end());
  WBS_ASSIGN_OR_RETURN(ir::WindowGeometry g, transpose
                                                 ? ir::ComputeConvTransposeGeometry(node, attrs, xs)
                                                 : ir::ComputeWindowGeometry(node, attrs, xs));
  kernels::ref::ConvParams p;
  p.batch = x[0];
  p.in_channels = x[1];
  p.group = node.GetInt("group", 1);
  p.out_channels = transpose ? w[1] * p.group : w[0];
  p.spatial_rank = spatial;
  SetWindow(g, spatial, &p);
  WBS_ASSIGN_OR_RETURN(p.activation, FusedActivationOf(node));
  return p;
}

}  // namespace wbs::runtime

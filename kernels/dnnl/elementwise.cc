#include "kernels/dnnl/elementwise.h"

#include <fmt/format.h>

#include "core/tensor.h"
#include "kernels/dnnl/dnnl_common.h"

namespace wbs::kernels::onednn {

namespace {

using dnnl::algorithm;
using dnnl::memory;

// oneDNN's binary primitive supports at most this many dims for broadcasting.
constexpr size_t kMaxBinaryRank = 6;

}  // namespace

bool UnaryAlgorithmFor(ref::UnaryOp op, const ref::UnaryParams& p, UnaryAlgorithm* out) {
  using ref::UnaryOp;
  switch (op) {
    case UnaryOp::kRelu:
      *out = {algorithm::eltwise_relu, 0.0f, 0.0f};
      return true;
    case UnaryOp::kLeakyRelu:
      // oneDNN's relu with alpha is x < 0 ? alpha * x : x, ONNX LeakyRelu.
      *out = {algorithm::eltwise_relu, p.alpha, 0.0f};
      return true;
    case UnaryOp::kSigmoid:
      *out = {algorithm::eltwise_logistic, 0.0f, 0.0f};
      return true;
    case UnaryOp::kTanh:
      *out = {algorithm::eltwise_tanh, 0.0f, 0.0f};
      return true;
    case UnaryOp::kElu:
      *out = {algorithm::eltwise_elu, p.alpha, 0.0f};
      return true;
    case UnaryOp::kHardSwish:
      // x * relu6(x + 3) / 6 = ONNX x * max(0, min(1, x / 6 + 0.5)).
      *out = {algorithm::eltwise_hardswish, 0.0f, 0.0f};
      return true;
    case UnaryOp::kExp:
      *out = {algorithm::eltwise_exp, 0.0f, 0.0f};
      return true;
    case UnaryOp::kAbs:
      *out = {algorithm::eltwise_abs, 0.0f, 0.0f};
      return true;
    case UnaryOp::kSqrt:
      *out = {algorithm::eltwise_sqrt, 0.0f, 0.0f};
      return true;
    case UnaryOp::kNeg:
      *out = {algorithm::eltwise_linear, -1.0f, 0.0f};
      return true;
    default:
      return false;
  }
}

UnaryAlgorithm ClipAlgorithm(float lo, float hi) { return {algorithm::eltwise_clip, lo, hi}; }

Result<std::unique_ptr<UnaryPrimitive>> UnaryPrimitive::Create(const UnaryAlgorithm& f,
                                                               int64_t numel) {
  const std::string context =
      fmt::format("eltwise {} on {} elements", static_cast<int>(f.alg), numel);
  if (numel < 1) return InvalidArgument("{}: nothing to compute", context);
  try {
    const memory::desc md = PlainDesc({numel});
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, f.alg, md, f.alpha, f.beta);
    dnnl::eltwise_forward::primitive_desc pd(d, CpuEngine(), true);
    if (!pd) return Unimplemented("{}: no oneDNN implementation", context);
    const char* impl = pd.impl_info_str();
    if (IsReferenceImpl(impl))
      return Unimplemented("{}: oneDNN has only its reference implementation", context);
    std::unique_ptr<UnaryPrimitive> u(new UnaryPrimitive());
    u->context_ = context;
    u->impl_name_ = impl;
    u->prim_ = dnnl::eltwise_forward(pd);
    u->src_ = memory(md, CpuEngine(), DNNL_MEMORY_NONE);
    u->dst_ = memory(md, CpuEngine(), DNNL_MEMORY_NONE);
    return u;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context);
  }
}

Status UnaryPrimitive::Execute(const float* x, float* y) {
  try {
    dnnl::stream& s = ThreadStream();
    // oneDNN never writes through a source handle; its API is just not const.
    src_.set_data_handle(const_cast<float*>(x));
    dst_.set_data_handle(y);
    prim_.execute(s, {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}});
    s.wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_);
  }
  return Status::Ok();
}

Result<std::unique_ptr<BinaryPrimitive>> BinaryPrimitive::Create(
    ref::BinaryOp op, const std::vector<int64_t>& a_dims, const std::vector<int64_t>& b_dims) {
  const std::string context = fmt::format("binary {} {} {}", ShapeToString(a_dims),
                                          static_cast<int>(op), ShapeToString(b_dims));
  algorithm alg;
  switch (op) {
    case ref::BinaryOp::kAdd:
      alg = algorithm::binary_add;
      break;
    case ref::BinaryOp::kSub:
      alg = algorithm::binary_sub;
      break;
    case ref::BinaryOp::kMul:
      alg = algorithm::binary_mul;
      break;
    case ref::BinaryOp::kDiv:
      alg = algorithm::binary_div;
      break;
    default:
      return Unimplemented("{}: no oneDNN binary algorithm", context);
  }
  if (a_dims.empty() || a_dims.size() != b_dims.size() || a_dims.size() > kMaxBinaryRank)
    return Unimplemented("{}: ranks must be equal and 1..{}", context, kMaxBinaryRank);
  for (size_t i = 0; i < a_dims.size(); ++i) {
    if (a_dims[i] < 1 || (b_dims[i] != a_dims[i] && b_dims[i] != 1))
      return InvalidArgument("{}: the second operand must broadcast to the first", context);
  }
  try {
    const memory::desc a_md = PlainDesc(a_dims), b_md = PlainDesc(b_dims);
    dnnl::binary::desc d(alg, a_md, b_md, a_md);
    dnnl::binary::primitive_desc pd(d, CpuEngine(), true);
    if (!pd) return Unimplemented("{}: no oneDNN implementation", context);
    const char* impl = pd.impl_info_str();
    if (IsReferenceImpl(impl))
      return Unimplemented("{}: oneDNN has only its reference implementation", context);
    std::unique_ptr<BinaryPrimitive> b(new BinaryPrimitive());
    b->context_ = context;
    b->impl_name_ = impl;
    b->prim_ = dnnl::binary(pd);
    b->a_ = memory(a_md, CpuEngine(), DNNL_MEMORY_NONE);
    b->b_ = memory(b_md, CpuEngine(), DNNL_MEMORY_NONE);
    b->y_ = memory(a_md, CpuEngine(), DNNL_MEMORY_NONE);
    return b;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context);
  }
}

Status BinaryPrimitive::Execute(const float* a, const float* b, float* y) {
  try {
    dnnl::stream& s = ThreadStream();
    a_.set_data_handle(const_cast<float*>(a));
    b_.set_data_handle(const_cast<float*>(b));
    y_.set_data_handle(y);
    prim_.execute(s, {{DNNL_ARG_SRC_0, a_}, {DNNL_ARG_SRC_1, b_}, {DNNL_ARG_DST, y_}});
    s.wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_);
  }
  return Status::Ok();
}

}  // namespace wbs::kernels::onednn

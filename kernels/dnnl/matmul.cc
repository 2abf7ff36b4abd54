#include "kernels/dnnl/matmul.h"

#include <fmt/format.h>

#include <unordered_map>

#include "core/tensor.h"
#include "kernels/dnnl/dnnl_common.h"

namespace wbs::kernels::onednn {

namespace {

using dnnl::memory;

// The binary-add post-op, when present, is the first post-op.
constexpr int kAddendPostOpIndex = 0;

bool SameRank(const MatMulSpec& s) {
  const size_t r = s.y_dims.size();
  return r >= 2 && s.a_dims.size() == r && s.a_strides.size() == r && s.b_dims.size() == r &&
         s.b_strides.size() == r && (s.addend_dims.empty() || s.addend_dims.size() == r);
}

}  // namespace

Result<std::unique_ptr<MatMulPrimitive>> MatMulPrimitive::Create(const MatMulSpec& spec) {
  const std::string context = fmt::format("matmul {}x{}->{}", ShapeToString(spec.a_dims),
                                          ShapeToString(spec.b_dims), ShapeToString(spec.y_dims));
  if (!SameRank(spec)) return InvalidArgument("{}: operand ranks differ", context);
  const size_t r = spec.y_dims.size();
  std::vector<int64_t> bias_dims(r, 1);
  bias_dims[r - 1] = spec.y_dims[r - 1];

  dnnl::post_ops ops;
  if (!spec.addend_dims.empty())
    ops.append_binary(dnnl::algorithm::binary_add, PlainDesc(spec.addend_dims));
  if (!AppendActivation(spec.activation, &ops)) {
    return Unimplemented("{}: activation {} has no oneDNN post-op", context,
                         ref::ActivationName(spec.activation.kind));
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  if (spec.alpha != 1.0f) attr.set_output_scales(0, {spec.alpha});

  try {
    const memory::desc a_md = StridedDesc(spec.a_dims, spec.a_strides);
    const memory::desc user_b_md = StridedDesc(spec.b_dims, spec.b_strides);
    const memory::desc b_md =
        spec.pack_b ? memory::desc(memory::dims(spec.b_dims.begin(), spec.b_dims.end()),
                                   memory::data_type::f32, memory::format_tag::any)
                    : user_b_md;
    const memory::desc y_md = PlainDesc(spec.y_dims);
    const memory::desc bias_md = spec.has_bias ? PlainDesc(bias_dims) : memory::desc();
    dnnl::matmul::desc d(a_md, b_md, bias_md, y_md);
    dnnl::matmul::primitive_desc pd(d, attr, CpuEngine(), true);
    if (!pd) return Unimplemented("{}: no oneDNN implementation", context);
    const char* impl = pd.impl_info_str();
    if (IsReferenceImpl(impl))
      return Unimplemented("{}: oneDNN has only its reference implementation", context);
    if (pd.src_desc() != a_md || pd.dst_desc() != y_md ||
        (!spec.pack_b && pd.weights_desc() != user_b_md) ||
        (spec.has_bias && pd.bias_desc() != bias_md)) {
      return Unimplemented("{}: oneDNN wants other operand layouts", context);
    }

    std::unique_ptr<MatMulPrimitive> m(new MatMulPrimitive());
    m->context_ = context;
    m->impl_name_ = impl;
    m->pack_b_ = spec.pack_b;
    m->has_bias_ = spec.has_bias;
    m->has_addend_ = !spec.addend_dims.empty();
    m->prim_ = dnnl::matmul(pd);
    m->b_md_ = pd.weights_desc();
    m->user_b_md_ = user_b_md;
    m->a_ = memory(a_md, CpuEngine(), DNNL_MEMORY_NONE);
    m->b_ = memory(m->b_md_, CpuEngine(), DNNL_MEMORY_NONE);
    m->y_ = memory(y_md, CpuEngine(), DNNL_MEMORY_NONE);
    if (spec.has_bias) m->bias_ = memory(bias_md, CpuEngine(), DNNL_MEMORY_NONE);
    if (m->has_addend_)
      m->addend_ = memory(PlainDesc(spec.addend_dims), CpuEngine(), DNNL_MEMORY_NONE);
    return m;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context);
  }
}

Result<dnnl::memory> MatMulPrimitive::PackB(const float* b) const {
  try {
    memory user(user_b_md_, CpuEngine(), const_cast<float*>(b));
    memory packed(b_md_, CpuEngine());
    dnnl::reorder(user, packed).execute(ThreadStream(), user, packed);
    ThreadStream().wait();
    return packed;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_ + ": packing B");
  }
}

Status MatMulPrimitive::Execute(const float* a, const float* b, const dnnl::memory* packed_b,
                                const float* bias, const float* addend, float* y) {
  if ((packed_b != nullptr) != pack_b_ || (!pack_b_ && b == nullptr) ||
      (bias != nullptr) != has_bias_ || (addend != nullptr) != has_addend_) {
    return Internal("{}: operands do not match the primitive's spec", context_);
  }
  try {
    // oneDNN never writes through source handles; its API is just not const.
    a_.set_data_handle(const_cast<float*>(a));
    y_.set_data_handle(y);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, a_}, {DNNL_ARG_DST, y_}};
    if (pack_b_) {
      args.emplace(DNNL_ARG_WEIGHTS, *packed_b);
    } else {
      b_.set_data_handle(const_cast<float*>(b));
      args.emplace(DNNL_ARG_WEIGHTS, b_);
    }
    if (has_bias_) {
      bias_.set_data_handle(const_cast<float*>(bias));
      args.emplace(DNNL_ARG_BIAS, bias_);
    }
    if (has_addend_) {
      addend_.set_data_handle(const_cast<float*>(addend));
      args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(kAddendPostOpIndex) | DNNL_ARG_SRC_1, addend_);
    }
    prim_.execute(ThreadStream(), args);
    ThreadStream().wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_);
  }
  return Status::Ok();
}

}  // namespace wbs::kernels::onednn

#include "kernels/dnnl/conv.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>

#include "core/tensor.h"
#include "kernels/dnnl/dnnl_common.h"

namespace wbs::kernels::onednn {

namespace {

using dnnl::memory;
using Dims = std::vector<int64_t>;

// The residual, when present, is the first post-op.
constexpr int kResidualPostOp = 0;

constexpr std::array<const char*, static_cast<size_t>(ConvLayout::kCount)> kLayoutNames = {
    "auto", "plain", "any", "blocked"};
static_assert(kLayoutNames.size() == static_cast<size_t>(ConvLayout::kCount),
              "one name per ConvLayout");

// The last `spatial_rank` entries of a padded-to-3 ConvParams array.
Dims Spatial(const std::array<int64_t, ref::kMaxConvSpatialRank>& a, int spatial_rank) {
  return Dims(a.end() - spatial_rank, a.end());
}

Dims Concat(Dims a, const Dims& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The candidate activation layouts, best first (see conv.h): a requested
// layout goes first, then the kAuto order.
std::vector<ConvLayout> Candidates(const ref::ConvParams& p, ConvLayout requested) {
  bool pointwise = true;
  for (int64_t k : p.kernel) pointwise = pointwise && k == 1;
  const bool depthwise = p.group > 1 && p.in_channels == p.group;
  std::vector<ConvLayout> order =
      pointwise || depthwise
          ? std::vector<ConvLayout>{ConvLayout::kBlocked, ConvLayout::kAny, ConvLayout::kPlain}
          : std::vector<ConvLayout>{ConvLayout::kAny, ConvLayout::kBlocked, ConvLayout::kPlain};
  if (requested != ConvLayout::kAuto) {
    order.erase(std::find(order.begin(), order.end(), requested));
    order.insert(order.begin(), requested);
  }
  return order;
}

memory::desc ActivationDesc(ConvLayout layout, const Dims& dims) {
  const memory::dims d(dims.begin(), dims.end());
  switch (layout) {
    case ConvLayout::kAny:
      return memory::desc(d, memory::data_type::f32, memory::format_tag::any);
    case ConvLayout::kBlocked:
      return NativeBlockedDesc(dims);
    default:
      return PlainDesc(dims);
  }
}

}  // namespace

const char* ConvLayoutName(ConvLayout layout) {
  const auto i = static_cast<size_t>(layout);
  return i < kLayoutNames.size() ? kLayoutNames[i] : "?";
}

bool ParseConvLayout(const std::string& name, ConvLayout* layout) {
  for (size_t i = 0; i < kLayoutNames.size(); ++i) {
    if (name == kLayoutNames[i]) {
      *layout = static_cast<ConvLayout>(i);
      return true;
    }
  }
  return false;
}

Result<std::unique_ptr<ConvPrimitive>> ConvPrimitive::Create(const ref::ConvParams& p,
                                                             bool transpose, bool has_bias,
                                                             ConvLayout layout, bool residual,
                                                             ActivationLayout residual_layout) {
  const int sr = p.spatial_rank;
  const int64_t g = p.group;
  const Dims kernel = Spatial(p.kernel, sr);
  const Dims src_dims = Concat({p.batch, p.in_channels}, Spatial(p.in, sr));
  const Dims dst_dims = Concat({p.batch, p.out_channels}, Spatial(p.out, sr));
  const std::string context =
      fmt::format("{} {}->{} (group {}, kernel {})", transpose ? "deconvolution" : "convolution",
                  ShapeToString(src_dims), ShapeToString(dst_dims), g, ShapeToString(kernel));
  if (sr < 1 || sr > ref::kMaxConvSpatialRank || g < 1 || p.in_channels % g != 0 ||
      p.out_channels % g != 0) {
    return InvalidArgument("{}: inconsistent parameters", context);
  }
  // oneDNN 2.6's JIT convolution with a fused sum post-op (the residual)
  // crashes (SIGSEGV inside the generated code, found by
  // OpsDnnlTest.ConvWithResidualMatchesReference with WBS_TEST_SEED=33, 34,
  // 37) when a dilated (dilation > 1) kernel is longer than the input along a dim, e.g. X
  // [1,4,1,6], W 3x5, dilations [3,1], pads [2,1,6,0]. Such layers decline,
  // so the runtime runs them on the reference.
  if (residual && !transpose) {
    for (int i = ref::kMaxConvSpatialRank - sr; i < ref::kMaxConvSpatialRank; ++i) {
      const int64_t extent = (p.kernel[i] - 1) * p.dilation[i] + 1;
      if (p.dilation[i] > 1 && p.in[i] < extent)
        return Unimplemented(
            "{}: fused residual with a dilated kernel ({}) longer than the input ({})", context,
            extent, p.in[i]);
    }
  }

  // oneDNN's logical weight dims are [G,] O/G, I/G, k... for both primitives.
  // Conv weights are stored exactly so; ConvTranspose stores I before O.
  const int64_t ipg = p.in_channels / g, opg = p.out_channels / g;
  int64_t kvol = 1;
  for (int64_t k : kernel) kvol *= k;
  Dims w_dims = Concat(g > 1 ? Dims{g, opg, ipg} : Dims{opg, ipg}, kernel);
  Dims w_strides(w_dims.size());
  {
    // Row-major over the kernel dims, then the two channel dims by layout.
    int64_t s = 1;
    for (size_t i = w_dims.size(); i-- > w_dims.size() - kernel.size();) {
      w_strides[i] = s;
      s *= w_dims[i];
    }
    const size_t o = g > 1 ? 1 : 0, in = o + 1;
    w_strides[transpose ? o : in] = kvol;
    w_strides[transpose ? in : o] = kvol * (transpose ? opg : ipg);
    if (g > 1) w_strides[0] = kvol * ipg * opg;
  }

  memory::dims strides, dilates, pad_l, pad_r;
  for (int i = 0; i < sr; ++i) {
    const int j = ref::kMaxConvSpatialRank - sr + i;
    strides.push_back(p.stride[j]);
    dilates.push_back(p.dilation[j] - 1);  // oneDNN counts the gaps
    pad_l.push_back(p.pad_begin[j]);
    if (transpose) {
      // Only dim consistency depends on the trailing pad: every output
      // position gets exactly the ONNX sum, and positions past the natural
      // size (output_shape, output_padding) get just the bias.
      const int64_t dk = (p.kernel[j] - 1) * p.dilation[j] + 1;
      pad_r.push_back(p.stride[j] * (p.in[j] - 1) + dk - p.pad_begin[j] - p.out[j]);
    } else {
      pad_r.push_back(p.pad_end[j]);
    }
  }

  if (residual && transpose) return InvalidArgument("{}: a residual needs a convolution", context);
  const bool binary_residual = residual && residual_layout != ActivationLayout::kCount;
  if (binary_residual && !LayoutFits(residual_layout, dst_dims))
    return InvalidArgument("{}: residual layout {} does not fit", context,
                           ActivationLayoutName(residual_layout));
  dnnl::post_ops ops;
  // Residual first: y = act(conv + bias + residual), as ir/graph.h defines.
  if (binary_residual)
    ops.append_binary(dnnl::algorithm::binary_add, LayoutDesc(dst_dims, residual_layout));
  else if (residual)
    ops.append_sum(1.0f);
  if (!AppendActivation(p.activation, &ops)) {
    return Unimplemented("{}: activation {} has no oneDNN post-op", context,
                         ref::ActivationName(p.activation.kind));
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);

  // oneDNN 2.6's brgconv (avx512_core) computes wrong values or crashes
  // when an output row or column reads only padding (a pad at least the
  // kernel's extent; tests/unit/ops_dnnl_conv_pads_test.cc): skip it there.
  bool padding_only_lines = false;
  for (int i = 0; i < sr; ++i) {
    const int64_t extent = (kernel[i] - 1) * (dilates[i] + 1) + 1;
    padding_only_lines |= pad_l[i] >= extent || pad_r[i] >= extent;
  }
  auto avoided = [&](const char* impl) {
    return padding_only_lines && std::string(impl).rfind("brg", 0) == 0;
  };

  Status last = Unimplemented("{}: oneDNN has only its reference implementation", context);
  for (ConvLayout cand : Candidates(p, layout)) {
    try {
      const memory::desc src_md = ActivationDesc(cand, src_dims);
      const memory::desc dst_md = ActivationDesc(cand, dst_dims);
      const memory::desc w_md(memory::dims(w_dims.begin(), w_dims.end()), memory::data_type::f32,
                              memory::format_tag::any);
      const memory::desc b_md = has_bias ? PlainDesc({p.out_channels}) : memory::desc();
      dnnl::primitive prim;
      memory::desc pd_src, pd_dst, pd_w, pd_b;
      const char* impl = nullptr;
      if (transpose) {
        dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::deconvolution_direct, src_md, w_md,
                                            b_md, dst_md, strides, dilates, pad_l, pad_r);
        dnnl::deconvolution_forward::primitive_desc pd(d, attr, CpuEngine(), true);
        if (!pd) continue;
        impl = pd.impl_info_str();
        if (IsReferenceImpl(impl)) continue;
        pd_src = pd.src_desc(), pd_dst = pd.dst_desc(), pd_w = pd.weights_desc();
        pd_b = pd.bias_desc();
        prim = dnnl::deconvolution_forward(pd);
      } else {
        dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                          dnnl::algorithm::convolution_direct, src_md, w_md, b_md,
                                          dst_md, strides, dilates, pad_l, pad_r);
        dnnl::convolution_forward::primitive_desc pd(d, attr, CpuEngine(), true);
        if (!pd) continue;
        impl = pd.impl_info_str();
        while (avoided(impl) && pd.next_impl()) impl = pd.impl_info_str();
        if (IsReferenceImpl(impl) || avoided(impl)) continue;
        pd_src = pd.src_desc(), pd_dst = pd.dst_desc(), pd_w = pd.weights_desc();
        pd_b = pd.bias_desc();
        prim = dnnl::convolution_forward(pd);
      }
      if (has_bias && pd_b != PlainDesc({p.out_channels})) {
        last = Unimplemented("{}: oneDNN wants a non-plain bias layout", context);
        continue;
      }
      if (binary_residual && pd_dst != LayoutDesc(dst_dims, residual_layout)) {
        last = Unimplemented("{}: the destination is not in the residual's layout {}", context,
                             ActivationLayoutName(residual_layout));
        continue;
      }

      std::unique_ptr<ConvPrimitive> c(new ConvPrimitive());
      c->context_ = context;
      c->impl_name_ = fmt::format("{}/{}", impl, ConvLayoutName(cand));
      c->layout_ = cand;
      c->transpose_ = transpose;
      c->has_bias_ = has_bias;
      c->residual_ = residual;
      c->binary_residual_ = binary_residual ? residual_layout : ActivationLayout::kCount;
      c->prim_ = prim;
      c->weights_md_ = pd_w;
      c->user_weights_md_ = StridedDesc(w_dims, w_strides);
      c->src_dims_ = src_dims;
      c->dst_dims_ = dst_dims;
      c->src_md_ = pd_src;
      c->dst_md_ = pd_dst;
      if (has_bias) c->bias_ = memory(pd_b, CpuEngine(), DNNL_MEMORY_NONE);
      WBS_RETURN_IF_ERROR(
          c->SetBoundaryLayouts(ActivationLayout::kPlain, ActivationLayout::kPlain,
                                binary_residual ? residual_layout : ActivationLayout::kPlain));
      return c;
    } catch (const dnnl::error& e) {
      last = FromDnnlError(e, context);
    }
  }
  return last;
}

Status ConvPrimitive::SetBoundaryLayouts(ActivationLayout x, ActivationLayout y,
                                         ActivationLayout residual) {
  if (!LayoutFits(x, src_dims_) || !LayoutFits(y, dst_dims_) || !LayoutFits(residual, dst_dims_)) {
    return InvalidArgument("{}: boundary layouts {}/{}/{} do not fit", context_,
                           ActivationLayoutName(x), ActivationLayoutName(y),
                           ActivationLayoutName(residual));
  }
  try {
    const memory::desc user_src = LayoutDesc(src_dims_, x), user_dst = LayoutDesc(dst_dims_, y);
    user_src_ = memory(user_src, CpuEngine(), DNNL_MEMORY_NONE);
    user_dst_ = memory(user_dst, CpuEngine(), DNNL_MEMORY_NONE);
    reorder_src_ = src_md_ != user_src;
    reorder_dst_ = dst_md_ != user_dst;
    // Staged activations live in the thread's shared StagingBuffer().
    if (reorder_src_) {
      src_ = memory(src_md_, CpuEngine(), DNNL_MEMORY_NONE);
      src_reorder_ = dnnl::reorder(user_src_, src_);
    } else {
      src_ = user_src_;
    }
    if (reorder_dst_) {
      dst_ = memory(dst_md_, CpuEngine(), DNNL_MEMORY_NONE);
      dst_reorder_ = dnnl::reorder(dst_, user_dst_);
    } else {
      dst_ = user_dst_;
    }
    if (binary_residual_ != ActivationLayout::kCount && residual != binary_residual_) {
      return InvalidArgument("{}: the residual is read as {}, not {}", context_,
                             ActivationLayoutName(binary_residual_),
                             ActivationLayoutName(residual));
    }
    if (residual_) {
      user_residual_ = memory(LayoutDesc(dst_dims_, residual), CpuEngine(), DNNL_MEMORY_NONE);
      if (binary_residual_ == ActivationLayout::kCount)
        residual_reorder_ = dnnl::reorder(user_residual_, dst_);
    }
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_ + ": boundary layouts");
  }
  return Status::Ok();
}

Result<dnnl::memory> ConvPrimitive::PackWeights(const float* w) const {
  try {
    memory user(user_weights_md_, CpuEngine(), const_cast<float*>(w));
    memory packed(weights_md_, CpuEngine());
    dnnl::reorder(user, packed).execute(ThreadStream(), user, packed);
    ThreadStream().wait();
    return packed;
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_ + ": packing weights");
  }
}

Status ConvPrimitive::Execute(const float* x, const dnnl::memory& packed_weights, const float* bias,
                              float* y, const float* residual) {
  if ((bias != nullptr) != has_bias_) {
    return Internal("{}: bias {} but the primitive was built {}", context_,
                    bias ? "given" : "missing", has_bias_ ? "with one" : "without");
  }
  if ((residual != nullptr) != residual_) {
    return Internal("{}: residual {} but the primitive was built {}", context_,
                    residual ? "given" : "missing", residual_ ? "with one" : "without");
  }
  if (residual != nullptr && residual == y)
    return Internal("{}: the residual aliases the output", context_);
  try {
    dnnl::stream& s = ThreadStream();
    // oneDNN never writes through a source handle; its API is just not const.
    user_src_.set_data_handle(const_cast<float*>(x));
    user_dst_.set_data_handle(y);
    for (int slot : {0, 1}) {
      if (!(slot == 0 ? reorder_src_ : reorder_dst_)) continue;
      memory& m = slot == 0 ? src_ : dst_;
      void* buffer = StagingBuffer(slot, m.get_desc().get_size());
      if (buffer == nullptr)
        return Internal("{}: out of memory staging {} bytes", context_, m.get_desc().get_size());
      m.set_data_handle(buffer);
    }
    if (reorder_src_) src_reorder_.execute(s, user_src_, src_);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, packed_weights}, {DNNL_ARG_DST, dst_}};
    if (residual_) {
      user_residual_.set_data_handle(const_cast<float*>(residual));
      if (binary_residual_ != ActivationLayout::kCount)
        args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(kResidualPostOp) | DNNL_ARG_SRC_1,
                     user_residual_);
      else
        residual_reorder_.execute(s, user_residual_, dst_);
    }
    if (has_bias_) {
      bias_.set_data_handle(const_cast<float*>(bias));
      args.emplace(DNNL_ARG_BIAS, bias_);
    }
    prim_.execute(s, args);
    if (reorder_dst_) dst_reorder_.execute(s, dst_, user_dst_);
    s.wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_);
  }
  return Status::Ok();
}

}  // namespace wbs::kernels::onednn

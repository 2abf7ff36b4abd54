#include "kernels/dnnl/conv.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <unordered_map>

#include "core/tensor.h"
#include "kernels/dnnl/dnnl_common.h"

namespace wbs::kernels::onednn {

namespace {

using dnnl::memory;
using Dims = std::vector<int64_t>;

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

memory::format_tag BlockedTag(int spatial_rank) {
  switch (spatial_rank) {
    case 1:
      return memory::format_tag::nCw16c;
    case 2:
      return memory::format_tag::nChw16c;
    default:
      return memory::format_tag::nCdhw16c;
  }
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

memory::desc ActivationDesc(ConvLayout layout, const Dims& dims, int spatial_rank) {
  const memory::dims d(dims.begin(), dims.end());
  switch (layout) {
    case ConvLayout::kAny:
      return memory::desc(d, memory::data_type::f32, memory::format_tag::any);
    case ConvLayout::kBlocked:
      return memory::desc(d, memory::data_type::f32, BlockedTag(spatial_rank));
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
                                                             ConvLayout layout, bool residual) {
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
  dnnl::post_ops ops;
  // Residual first: y = act(conv + bias + residual), as ir/graph.h defines.
  if (residual) ops.append_sum(1.0f);
  if (!AppendActivation(p.activation, &ops)) {
    return Unimplemented("{}: activation {} has no oneDNN post-op", context,
                         ref::ActivationName(p.activation.kind));
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);

  Status last = Unimplemented("{}: oneDNN has only its reference implementation", context);
  for (ConvLayout cand : Candidates(p, layout)) {
    try {
      const memory::desc src_md = ActivationDesc(cand, src_dims, sr);
      const memory::desc dst_md = ActivationDesc(cand, dst_dims, sr);
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
        if (IsReferenceImpl(impl)) continue;
        pd_src = pd.src_desc(), pd_dst = pd.dst_desc(), pd_w = pd.weights_desc();
        pd_b = pd.bias_desc();
        prim = dnnl::convolution_forward(pd);
      }
      if (has_bias && pd_b != PlainDesc({p.out_channels})) {
        last = Unimplemented("{}: oneDNN wants a non-plain bias layout", context);
        continue;
      }

      std::unique_ptr<ConvPrimitive> c(new ConvPrimitive());
      c->context_ = context;
      c->impl_name_ = fmt::format("{}/{}", impl, ConvLayoutName(cand));
      c->layout_ = cand;
      c->transpose_ = transpose;
      c->has_bias_ = has_bias;
      c->residual_ = residual;
      c->prim_ = prim;
      c->weights_md_ = pd_w;
      c->user_weights_md_ = StridedDesc(w_dims, w_strides);
      const memory::desc user_src = PlainDesc(src_dims), user_dst = PlainDesc(dst_dims);
      c->user_src_ = memory(user_src, CpuEngine(), DNNL_MEMORY_NONE);
      c->user_dst_ = memory(user_dst, CpuEngine(), DNNL_MEMORY_NONE);
      c->reorder_src_ = pd_src != user_src;
      c->reorder_dst_ = pd_dst != user_dst;
      // Staged activations live in the thread's shared StagingBuffer().
      if (c->reorder_src_) {
        c->src_ = memory(pd_src, CpuEngine(), DNNL_MEMORY_NONE);
        c->src_reorder_ = dnnl::reorder(c->user_src_, c->src_);
      } else {
        c->src_ = c->user_src_;
      }
      if (c->reorder_dst_) {
        c->dst_ = memory(pd_dst, CpuEngine(), DNNL_MEMORY_NONE);
        c->dst_reorder_ = dnnl::reorder(c->dst_, c->user_dst_);
      } else {
        c->dst_ = c->user_dst_;
      }
      if (has_bias) c->bias_ = memory(pd_b, CpuEngine(), DNNL_MEMORY_NONE);
      if (residual) {
        c->user_residual_ = memory(user_dst, CpuEngine(), DNNL_MEMORY_NONE);
        c->residual_reorder_ = dnnl::reorder(c->user_residual_, c->dst_);
      }
      return c;
    } catch (const dnnl::error& e) {
      last = FromDnnlError(e, context);
    }
  }
  return last;
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
    if (residual_) {
      user_residual_.set_data_handle(const_cast<float*>(residual));
      residual_reorder_.execute(s, user_residual_, dst_);
    }
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, packed_weights}, {DNNL_ARG_DST, dst_}};
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

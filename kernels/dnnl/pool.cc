#include "kernels/dnnl/pool.h"

#include <fmt/format.h>

#include <array>
#include <cstring>

#include "core/tensor.h"
#include "kernels/dnnl/dnnl_common.h"

namespace wbs::kernels::onednn {

namespace {

using dnnl::memory;

constexpr std::array<const char*, static_cast<size_t>(PoolLayout::kCount)> kLayoutNames = {
    "auto", "plain", "blocked", "channels_last"};
static_assert(kLayoutNames.size() == static_cast<size_t>(PoolLayout::kCount),
              "one name per PoolLayout");

bool Consistent(const PoolSpec& s) {
  const size_t r = s.src_dims.size();
  if (r < 3 || r > 5 || s.dst_dims.size() != r) return false;
  const size_t n = r - 2;
  for (const auto* v :
       {&s.kernel, &s.strides, &s.dilations, &s.pad_begin, &s.pad_end, &s.ceil_extra_end})
    if (v->size() != n) return false;
  return s.src_dims[0] == s.dst_dims[0] && s.src_dims[1] == s.dst_dims[1];
}

// True when every output position of spatial dim i has a tap inside the input.
bool EveryWindowTouchesInput(const PoolSpec& s, size_t i) {
  const int64_t in = s.src_dims[i + 2], out = s.dst_dims[i + 2];
  for (int64_t o = 0; o < out; ++o) {
    bool touches = false;
    for (int64_t k = 0; k < s.kernel[i] && !touches; ++k) {
      const int64_t pos = o * s.strides[i] - s.pad_begin[i] + k * s.dilations[i];
      touches = pos >= 0 && pos < in;
    }
    if (!touches) return false;
  }
  return true;
}

dnnl::algorithm Algorithm(PoolAlgorithm a) {
  switch (a) {
    case PoolAlgorithm::kMax:
      return dnnl::algorithm::pooling_max;
    case PoolAlgorithm::kAverageIncludePad:
      return dnnl::algorithm::pooling_avg_include_padding;
    case PoolAlgorithm::kAverageExcludePad:
      break;
  }
  return dnnl::algorithm::pooling_avg_exclude_padding;
}

// oneDNN's generated kernels. Its other pooling implementations (the naive
// "ref" and the C++ "simple_nchw") measured slower than kernels/ref on
// Inception-v3's 3x3/s2 max pool over [1,64,147,147] (7.8 ms vs 3.3 ms), so
// a layout they would serve is skipped.
bool IsJitImpl(const char* impl) { return std::strncmp(impl, "jit", 3) == 0; }

std::vector<PoolLayout> Candidates(PoolLayout requested) {
  if (requested == PoolLayout::kBlocked) return {PoolLayout::kBlocked, PoolLayout::kPlain};
  if (requested == PoolLayout::kChannelsLast)
    return {PoolLayout::kChannelsLast, PoolLayout::kPlain, PoolLayout::kBlocked};
  return {PoolLayout::kPlain, PoolLayout::kBlocked};
}

// The desc of `dims` in `layout`; blocked in this machine's block
// (NativeBlockedLayout()), also when C is not a multiple of it.
memory::desc InternalDesc(const std::vector<int64_t>& dims, PoolLayout layout) {
  switch (layout) {
    case PoolLayout::kBlocked:
      return NativeBlockedDesc(dims);
    case PoolLayout::kChannelsLast:
      return LayoutDesc(dims, ActivationLayout::kChannelsLast);
    default:
      return PlainDesc(dims);
  }
}

}  // namespace

const char* PoolLayoutName(PoolLayout layout) {
  const auto i = static_cast<size_t>(layout);
  return i < kLayoutNames.size() ? kLayoutNames[i] : "?";
}

Result<std::unique_ptr<PoolPrimitive>> PoolPrimitive::Create(const PoolSpec& spec,
                                                             PoolLayout layout) {
  const std::string context = fmt::format(
      "pooling {}->{} (kernel {}, strides {})", ShapeToString(spec.src_dims),
      ShapeToString(spec.dst_dims), ShapeToString(spec.kernel), ShapeToString(spec.strides));
  if (!Consistent(spec)) return InvalidArgument("{}: inconsistent parameters", context);
  const size_t n = spec.kernel.size();
  memory::dims strides, kernel, dilation, pad_l, pad_r;
  for (size_t i = 0; i < n; ++i) {
    if (!EveryWindowTouchesInput(spec, i))
      return Unimplemented("{}: a window lies entirely in the padding", context);
    if (spec.algorithm == PoolAlgorithm::kAverageIncludePad && spec.ceil_extra_end[i] != 0) {
      return Unimplemented("{}: ceil_mode windows past the trailing pad with count_include_pad",
                           context);
    }
    strides.push_back(spec.strides[i]);
    kernel.push_back(spec.kernel[i]);
    // oneDNN counts the gaps; a 1-tap window has none whatever the attribute.
    dilation.push_back(spec.kernel[i] == 1 ? 0 : spec.dilations[i] - 1);
    pad_l.push_back(spec.pad_begin[i]);
    pad_r.push_back(spec.pad_end[i] + spec.ceil_extra_end[i]);
  }

  Status last = Unimplemented("{}: oneDNN has only its reference implementation", context);
  for (PoolLayout cand : Candidates(layout)) {
    try {
      const memory::desc src_md = InternalDesc(spec.src_dims, cand);
      const memory::desc dst_md = InternalDesc(spec.dst_dims, cand);
      dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference,
                                       Algorithm(spec.algorithm), src_md, dst_md, strides, kernel,
                                       dilation, pad_l, pad_r);
      dnnl::pooling_v2_forward::primitive_desc pd(d, CpuEngine(), true);
      if (!pd) continue;
      const char* impl = pd.impl_info_str();
      if (!IsJitImpl(impl)) {
        last = Unimplemented("{}: oneDNN offers only '{}' for the {} layout", context, impl,
                             PoolLayoutName(cand));
        continue;
      }

      std::unique_ptr<PoolPrimitive> p(new PoolPrimitive());
      p->context_ = context;
      p->impl_name_ = fmt::format("{}/{}", impl, PoolLayoutName(cand));
      p->layout_ = cand;
      p->prim_ = dnnl::pooling_v2_forward(pd);
      p->src_dims_ = spec.src_dims;
      p->dst_dims_ = spec.dst_dims;
      p->src_md_ = pd.src_desc();
      p->dst_md_ = pd.dst_desc();
      WBS_RETURN_IF_ERROR(
          p->SetBoundaryLayouts(ActivationLayout::kPlain, ActivationLayout::kPlain));
      return p;
    } catch (const dnnl::error& e) {
      last = FromDnnlError(e, context);
    }
  }
  return last;
}

Status PoolPrimitive::SetBoundaryLayouts(ActivationLayout x, ActivationLayout y) {
  if (!LayoutFits(x, src_dims_) || !LayoutFits(y, dst_dims_)) {
    return InvalidArgument("{}: boundary layouts {}/{} do not fit", context_,
                           ActivationLayoutName(x), ActivationLayoutName(y));
  }
  try {
    const memory::desc user_src = LayoutDesc(src_dims_, x), user_dst = LayoutDesc(dst_dims_, y);
    user_src_ = memory(user_src, CpuEngine(), DNNL_MEMORY_NONE);
    user_dst_ = memory(user_dst, CpuEngine(), DNNL_MEMORY_NONE);
    reorder_src_ = src_md_ != user_src;
    reorder_dst_ = dst_md_ != user_dst;
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
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_ + ": boundary layouts");
  }
  return Status::Ok();
}

Status PoolPrimitive::Execute(const float* x, float* y) {
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
    prim_.execute(s, {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}});
    if (reorder_dst_) dst_reorder_.execute(s, dst_, user_dst_);
    s.wait();
  } catch (const dnnl::error& e) {
    return FromDnnlError(e, context_);
  }
  return Status::Ok();
}

}  // namespace wbs::kernels::onednn

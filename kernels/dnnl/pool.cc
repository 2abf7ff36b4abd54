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
    "auto", "plain", "blocked"};
static_assert(kLayoutNames.size() == static_cast<size_t>(PoolLayout::kCount),
              "one name per PoolLayout");

memory::format_tag BlockedTag(size_t spatial_rank) {
  switch (spatial_rank) {
    case 1:
      return memory::format_tag::nCw16c;
    case 2:
      return memory::format_tag::nChw16c;
    default:
      return memory::format_tag::nCdhw16c;
  }
}

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
  return {PoolLayout::kPlain, PoolLayout::kBlocked};
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

  const memory::desc user_src = PlainDesc(spec.src_dims), user_dst = PlainDesc(spec.dst_dims);
  Status last = Unimplemented("{}: oneDNN has only its reference implementation", context);
  for (PoolLayout cand : Candidates(layout)) {
    try {
      const memory::desc src_md =
          cand == PoolLayout::kBlocked
              ? memory::desc(memory::dims(spec.src_dims.begin(), spec.src_dims.end()),
                             memory::data_type::f32, BlockedTag(n))
              : user_src;
      const memory::desc dst_md =
          cand == PoolLayout::kBlocked
              ? memory::desc(memory::dims(spec.dst_dims.begin(), spec.dst_dims.end()),
                             memory::data_type::f32, BlockedTag(n))
              : user_dst;
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
      p->user_src_ = memory(user_src, CpuEngine(), DNNL_MEMORY_NONE);
      p->user_dst_ = memory(user_dst, CpuEngine(), DNNL_MEMORY_NONE);
      p->reorder_src_ = pd.src_desc() != user_src;
      p->reorder_dst_ = pd.dst_desc() != user_dst;
      if (p->reorder_src_) {
        p->src_ = memory(pd.src_desc(), CpuEngine(), DNNL_MEMORY_NONE);
        p->src_reorder_ = dnnl::reorder(p->user_src_, p->src_);
      } else {
        p->src_ = p->user_src_;
      }
      if (p->reorder_dst_) {
        p->dst_ = memory(pd.dst_desc(), CpuEngine(), DNNL_MEMORY_NONE);
        p->dst_reorder_ = dnnl::reorder(p->dst_, p->user_dst_);
      } else {
        p->dst_ = p->user_dst_;
      }
      return p;
    } catch (const dnnl::error& e) {
      last = FromDnnlError(e, context);
    }
  }
  return last;
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

#include "kernels/dnnl/dnnl_common.h"

#include <array>
#include <cassert>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace wbs::kernels::onednn {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& ThreadStream() {
  thread_local dnnl::stream stream(CpuEngine());
  return stream;
}

Status FromDnnlError(const dnnl::error& e, const std::string& context) {
  const char* what = e.what() ? e.what() : "error";
  switch (e.status) {
    case dnnl_invalid_arguments:
      return InvalidArgument("{}: oneDNN {} (invalid arguments)", context, what);
    case dnnl_unimplemented:
      return Unimplemented("{}: oneDNN {} (unimplemented)", context, what);
    case dnnl_out_of_memory:
      return Internal("{}: oneDNN {} (out of memory)", context, what);
    default:
      return Internal("{}: oneDNN {} (status {})", context, what, static_cast<int>(e.status));
  }
}

bool AppendActivation(const ref::Activation& act, dnnl::post_ops* ops) {
  using dnnl::algorithm;
  using ref::ActivationKind;
  constexpr float kScale = 1.0f;  // post-op result scale; always the identity here
  switch (act.kind) {
    case ActivationKind::kNone:
      return true;
    case ActivationKind::kRelu:
      ops->append_eltwise(kScale, algorithm::eltwise_relu, 0.0f, 0.0f);
      return true;
    case ActivationKind::kLeakyRelu:
      // oneDNN's relu with alpha is x < 0 ? alpha * x : x, ONNX LeakyRelu.
      ops->append_eltwise(kScale, algorithm::eltwise_relu, act.alpha, 0.0f);
      return true;
    case ActivationKind::kClip:
      ops->append_eltwise(kScale, algorithm::eltwise_clip, act.alpha, act.beta);
      return true;
    case ActivationKind::kSigmoid:
      ops->append_eltwise(kScale, algorithm::eltwise_logistic, 0.0f, 0.0f);
      return true;
    case ActivationKind::kHardSigmoid:
      ops->append_eltwise(kScale, algorithm::eltwise_linear, act.alpha, act.beta);
      ops->append_eltwise(kScale, algorithm::eltwise_clip, 0.0f, 1.0f);
      return true;
    case ActivationKind::kTanh:
      ops->append_eltwise(kScale, algorithm::eltwise_tanh, 0.0f, 0.0f);
      return true;
    case ActivationKind::kCount:
      break;
  }
  return false;
}

dnnl::memory::desc PlainDesc(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size());
  int64_t s = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = s;
    s *= dims[i];
  }
  return StridedDesc(dims, strides);
}

namespace {

// nC[D]HW<block>c for 1-3 spatial dims, block 8 or 16.
dnnl::memory::desc BlockedDesc(const std::vector<int64_t>& dims, int block) {
  using tag = dnnl::memory::format_tag;
  const size_t spatial = dims.size() - 2;
  const tag t16 = spatial == 1 ? tag::nCw16c : spatial == 2 ? tag::nChw16c : tag::nCdhw16c;
  const tag t8 = spatial == 1 ? tag::nCw8c : spatial == 2 ? tag::nChw8c : tag::nCdhw8c;
  const tag t = block == 16 ? t16 : t8;
  return dnnl::memory::desc(dnnl::memory::dims(dims.begin(), dims.end()),
                            dnnl::memory::data_type::f32, t);
}

}  // namespace

ActivationLayout NativeBlockedLayout() {
  static const ActivationLayout layout = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    // cpu_isa values are feature bit sets: each ISA includes the ones below.
    return (isa & avx512) == avx512 ? ActivationLayout::kBlocked16 : ActivationLayout::kBlocked8;
  }();
  return layout;
}

dnnl::memory::desc NativeBlockedDesc(const std::vector<int64_t>& dims) {
  return BlockedDesc(dims, NativeBlockedLayout() == ActivationLayout::kBlocked16 ? 16 : 8);
}

dnnl::memory::desc LayoutDesc(const std::vector<int64_t>& dims, ActivationLayout layout) {
  using tag = dnnl::memory::format_tag;
  assert(LayoutFits(layout, dims));
  const size_t spatial = dims.size() - 2;
  tag t = tag::undef;
  switch (layout) {
    case ActivationLayout::kBlocked16:
      return BlockedDesc(dims, 16);
    case ActivationLayout::kBlocked8:
      return BlockedDesc(dims, 8);
    case ActivationLayout::kChannelsLast:
      t = spatial == 1 ? tag::nwc : spatial == 2 ? tag::nhwc : tag::ndhwc;
      break;
    default:
      return PlainDesc(dims);
  }
  return dnnl::memory::desc(dnnl::memory::dims(dims.begin(), dims.end()),
                            dnnl::memory::data_type::f32, t);
}

ActivationLayout LayoutOf(const dnnl::memory::desc& md, const std::vector<int64_t>& dims) {
  for (int i = 0; i < static_cast<int>(ActivationLayout::kCount); ++i) {
    const auto layout = static_cast<ActivationLayout>(i);
    if (LayoutFits(layout, dims) && md == LayoutDesc(dims, layout)) return layout;
  }
  return ActivationLayout::kCount;
}

dnnl::memory::desc StridedDesc(const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& strides) {
  return dnnl::memory::desc(dnnl::memory::dims(dims.begin(), dims.end()),
                            dnnl::memory::data_type::f32,
                            dnnl::memory::dims(strides.begin(), strides.end()));
}

namespace {

// 4 KiB alignment keeps blocked rows page- and cache-line aligned.
constexpr size_t kStagingAlignment = 4096;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

}  // namespace

void* StagingBuffer(int slot, size_t bytes) {
  assert(slot >= 0 && slot < kStagingSlots);
  struct Buffer {
    std::unique_ptr<void, AlignedFree> data;
    size_t bytes = 0;
  };
  thread_local std::array<Buffer, kStagingSlots> buffers;
  Buffer& b = buffers[static_cast<size_t>(slot)];
  if (b.bytes < bytes) {
    const size_t rounded = (bytes + kStagingAlignment - 1) / kStagingAlignment * kStagingAlignment;
    b.data.reset(std::aligned_alloc(kStagingAlignment, rounded));
    b.bytes = b.data ? rounded : 0;
  }
  return b.data.get();
}

bool IsReferenceImpl(const char* impl_info) {
  return impl_info != nullptr && std::strncmp(impl_info, "ref", 3) == 0;
}

}  // namespace wbs::kernels::onednn

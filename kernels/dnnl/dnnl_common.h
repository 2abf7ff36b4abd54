// Shared oneDNN plumbing for the dense fast paths: the CPU engine, a stream
// per thread, error conversion and the fused activation as post-ops.
//
// Everything that touches oneDNN catches dnnl::error at this library's
// boundary and returns a Status, so callers never see an exception.
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "core/layout.h"
#include "core/status.h"
#include "kernels/ref/activation.h"

namespace wbs::kernels::onednn {

// The process-wide CPU engine (created on first use).
const dnnl::engine& CpuEngine();
// A stream on CpuEngine() owned by the calling thread: oneDNN streams are not
// safe to share between threads that execute concurrently.
dnnl::stream& ThreadStream();

// InvalidArgument/Unimplemented/Internal (by dnnl status) with
// "<context>: oneDNN <what> (<status>)".
Status FromDnnlError(const dnnl::error& e, const std::string& context);

// Appends `act` to `ops` as eltwise post-ops. Every ActivationKind has an
// exact oneDNN form (HardSigmoid = linear followed by clip to [0, 1], since
// oneDNN 2.6 has no eltwise_hardsigmoid); returns false for kinds it cannot
// express so the caller can decline.
bool AppendActivation(const ref::Activation& act, dnnl::post_ops* ops);

// A memory descriptor for a dense row-major f32 array of `dims`.
dnnl::memory::desc PlainDesc(const std::vector<int64_t>& dims);
// An f32 activation [N, C, spatial...] in `layout` (core/layout.h);
// precondition: LayoutFits(layout, dims).
dnnl::memory::desc LayoutDesc(const std::vector<int64_t>& dims, ActivationLayout layout);
// The layout `md` (of activation dims `dims`) is in, or kCount when it is
// none of them (e.g. oneDNN's nChw4c for f32).
ActivationLayout LayoutOf(const dnnl::memory::desc& md, const std::vector<int64_t>& dims);
// oneDNN's channel-blocked f32 layout on this machine: kBlocked16 when its
// effective ISA (dnnl::get_effective_cpu_isa(), capped by
// ONEDNN_MAX_CPU_ISA) has AVX-512, else kBlocked8. Its jit convolutions and
// pools serve only their own block: on an AVX2 machine nChw16c gets the
// naive reference kernels, nChw8c the jit ones.
ActivationLayout NativeBlockedLayout();
// An f32 activation of `dims` blocked by NativeBlockedLayout()'s channel
// block, also when C is not a multiple of it (oneDNN then pads the last
// block, so the buffer exceeds the plain tensor's: primitive-internal only).
dnnl::memory::desc NativeBlockedDesc(const std::vector<int64_t>& dims);
// An f32 descriptor with explicit element strides (transposed or broadcast views).
dnnl::memory::desc StridedDesc(const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& strides);

// Scratch for activations in a primitive's internal layout while a reorder
// feeds or drains it. Slot 0 and 1 are distinct buffers (source and
// destination of one primitive), owned by the calling thread, grown on
// demand and kept until the thread exits: primitives run one at a time per
// thread, so all of them share two buffers instead of each owning its own
// activation-sized copies. Contents do not survive the next call.
inline constexpr int kStagingSlots = 2;
void* StagingBuffer(int slot, size_t bytes);

// True when oneDNN picked its naive reference implementation ("ref:any"),
// which is slower than ours and therefore never used by a fast path.
bool IsReferenceImpl(const char* impl_info);

}  // namespace wbs::kernels::onednn

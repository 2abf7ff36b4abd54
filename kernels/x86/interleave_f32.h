// Plain NCHW -> channels-last (NHWC) for 3-channel f32 images, AVX-512.
//
// Why: a model's input is plain and RGB, and oneDNN's stem convolution
// (ResNet-50's conv1, 7x7 stride 2, brgconv) wants it channels-last; its own
// reorder of 1x3x224x224 took 36-37 us at 1 thread and 19-20 us at 2 (warm,
// medians of 300), this interleave 10.4-11.2 us and 5.6-6.3 us. The oneDNN
// conv operator (ops_dnnl_conv.cc) runs it instead when its input arrives
// plain with 3 channels and its primitive computes channels-last.
#pragma once

#include <cstdint>

namespace wbs::kernels::x86 {

// True when the CPU runs the AVX-512 interleave (the f32 block-sparse
// dispatch's active ISA, so WBS_ISA_CAP lowers it too).
bool Interleave3Supported();

// y[n, p, c] = x[n, c, p] for `images` images of 3 channels x `plane`
// pixels; `threads` OpenMP threads split each image's pixels. Requires
// Interleave3Supported().
void PlainToChannelsLast3(const float* x, float* y, int64_t images, int64_t plane, int threads);

}  // namespace wbs::kernels::x86

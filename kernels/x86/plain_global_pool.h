// Global average pooling of plain NCHW f32 tensors with an AVX-512 or an
// AVX2 kernel (used by the GlobalAveragePool operator of runtime/ops_dnnl_pool.cc when
// its input arrives plain).
//
// Why: in a block-sparse model the pool's input comes plain from a sparse
// conv (ResNet-50: 2048 planes of 7x7), and oneDNN's plain-layout kernel
// reduced it at ~30 GB/s with the data in L2 (13 us alone, 34-46 us inside
// the model at 1 thread, where part of the input has gone to L3;
// docs/BENCHMARKS.md "End-to-end block-sparse", round 9). Here each plane
// is summed 16 floats per load (the last load masked), the planes split
// over threads in contiguous ranges only for inputs of several MB (in the
// model a small pool ran 3x slower on two threads than on one).
#pragma once

#include <cstdint>

namespace wbs::kernels::x86 {

// True when the CPU runs the kernel (the f32 block-sparse dispatch's active
// ISA is AVX2 or AVX-512, so WBS_ISA_CAP lowers it too). On AVX2 it matters
// more than on AVX-512: oneDNN 2.6's AVX2 pooling has no jit kernel for
// plain tensors, only "simple_nchw", so without this the operator reorders
// to nChw8c and back.
bool PlainGlobalAvgPoolSupported();
// "wbs:gap_plain_avx512" or "wbs:gap_plain_avx2": the kernel that runs.
const char* PlainGlobalAvgPoolName();

// y[i] = (sum of x[i * plane_size + j], j < plane_size) / plane_size for i <
// planes; `threads` OpenMP threads when the input is large enough to pay
// for the fork (else one). The summation order differs from
// kernels::ref::GlobalAveragePool's (16 partial sums, then a tree), so
// results agree to rounding (8 partial sums with AVX2). Requires PlainGlobalAvgPoolSupported() and
// plane_size >= 1.
void PlainGlobalAvgPoolF32(int64_t planes, int64_t plane_size, const float* x, float* y,
                           int threads);

}  // namespace wbs::kernels::x86

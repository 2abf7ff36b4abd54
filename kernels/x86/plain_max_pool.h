// Max pooling of plain NCHW f32 tensors with an AVX-512 or an AVX2 kernel (used by the
// MaxPool operator of runtime/ops_dnnl_pool.cc when its input arrives plain).
//
// Why: oneDNN's pooling jit kernels want channels-last or blocked tensors;
// on plain NCHW it falls back to a slow implementation (ResNet-50's 3x3/2
// max-pool over 64 x 112 x 112: ~0.33 ms against ~0.08 ms channels-last at
// 2 threads). In a block-sparse model the pool's neighbours exchange plain
// tensors (the sparse convs read and write NCHW), so the pool reads plain.
// The kernel works per plane and 16 outputs of a row at a time in
// registers: per kernel column, the max of the window's rows over the 16
// (stride 1) or 32 (stride 2, then the even lanes) input columns it covers,
// columns outside the row read as -inf. The max of floats does not depend
// on the order, so the result equals the reference's for every input
// without NaN.
#pragma once

#include "kernels/ref/pool.h"

namespace wbs::kernels::x86 {

// True when the CPU runs a kernel (the f32 block-sparse dispatch's active
// ISA is AVX-512 or AVX2, so WBS_ISA_CAP lowers it too) and `p` is a window
// it takes: 2-D (or 1-D) windows (up to 16 columns wide on AVX-512; the AVX2
// kernel stages a row buffer, see plain_max_pool.cc), dilation 1, column
// stride 1 or 2, nonnegative pads, every output window holding at least one
// input element (padding never wins then, as in kernels::ref::MaxPool), and
// on AVX-512 a shape where it was measured faster than oneDNN (output rows
// >= 16 wide, input <= 16 MB; on AVX2 every shape, since oneDNN's pool there
// needs reorders to nChw8c and back: plain_max_pool.cc).
bool PlainMaxPoolSupports(const ref::PoolParams& p);

// y[n, c, oy, ox] = max of x[n, c, iy, ix] over the window's in-range
// taps, for x and y plain [N, C, H, W] / [N, C, OH, OW]; `threads` OpenMP
// threads split the N * C planes. Requires PlainMaxPoolSupports(p).
void PlainMaxPoolF32(const ref::PoolParams& p, const float* x, float* y, int threads);

// Channels-last input, plain output: y[n, c, oy, ox] = max over the
// window of x[n, iy, ix, c] (x NHWC [N, H, W, C], y NCHW [N, C, OH, OW]):
// the MaxPool operator's kernel when the producer hands it a channels-last
// tensor (ResNet-50's stem conv) and its readers want plain ones (the
// block-sparse convs), where oneDNN's pool then writes plain output from a
// channels-last source (ResNet-50 at 50%, 2 threads: 336-424 us against
// 193-210 us for a plain-in, plain-out pool, whose plain input costs the
// stem conv ~600 us more). AVX-512 only; 2-D windows, channels a multiple of
// 16, dilation 1, every window reaching the input. Rows of the output split
// over `threads`.
bool NhwcToPlainMaxPoolSupports(const ref::PoolParams& p);
void NhwcToPlainMaxPoolF32(const ref::PoolParams& p, const float* x, float* y, int threads);

// The kernel PlainMaxPoolF32 runs on this CPU: "wbs:maxpool_plain_avx512"
// or "wbs:maxpool_plain_avx2" (the operator's impl name).
const char* PlainMaxPoolName();

}  // namespace wbs::kernels::x86

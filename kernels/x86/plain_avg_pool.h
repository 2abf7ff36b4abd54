// Average pooling of plain NCHW f32 tensors with an AVX-512 kernel (used by
// the AveragePool operator of runtime/ops_dnnl_pool.cc when its input
// arrives plain, as in a block-sparse model whose convs read and write
// NCHW).
//
// Why: oneDNN's pooling jit kernels want channels-last or blocked tensors;
// on plain NCHW it takes a slow path (Inception-v3's nine 3x3/1 average
// pools at 50% block sparsity on an Intel Xeon VM, 2 threads: 179-248 us
// each inside the model, 1.8 ms in all).
//
// The kernel works per plane on 16 outputs of 4 rows at a time (4
// independent sums hide the add latency): per window tap, in the
// reference's order (rows, then columns), one load of the 16
// outputs' input columns (lanes outside the row masked to +0, which leaves
// every sum unchanged), then the division by the window's count, per lane
// (ONNX count_include_pad: taps inside the padded extent, else in-range
// taps). The same additions in the same order and the same division as
// kernels::ref::AveragePool, so the same bits.
#pragma once

#include "kernels/ref/pool.h"

namespace wbs::kernels::x86 {

// True when the CPU runs the kernel (the f32 block-sparse dispatch's active
// ISA is AVX-512, so WBS_ISA_CAP lowers it too) and `p` is a window it
// takes: 2-D (or 1-D), stride 1, dilation 1, windows up to 16 columns,
// nonnegative pads, every output window holding at least one input element,
// and, at 1 thread, output rows of at least 24 columns: measured inside
// Inception-v3 at 50% block sparsity on the Intel VM (per-step minimums,
// us, ours vs oneDNN's plain pool, 1 / 2 threads): 35-wide rows 202-300 vs
// 254-354 / 115-168 vs 175-241; 17-wide 256-258 vs 206-211 / 139-141 vs
// 207-236; 8-wide 110-176 vs 68-103 / 67-102 vs 86-112 (a 17- or 8-wide row
// fills half of its vectors).
bool PlainAvgPoolSupports(const ref::PoolParams& p, int threads);

// y[n, c, oy, ox] = the average over the window of x[n, c, ...] (x, y plain
// [N, C, H, W] / [N, C, OH, OW]); `threads` OpenMP threads split the N * C
// planes. Requires PlainAvgPoolSupports(p).
void PlainAvgPoolF32(const ref::PoolParams& p, const float* x, float* y, int threads);

// "wbs:avgpool_plain_avx512" (the operator's impl name).
const char* PlainAvgPoolName();

}  // namespace wbs::kernels::x86

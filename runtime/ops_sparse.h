// Block-sparse fast paths for Conv, Gemm and MatMul (issue 3 part 4): the
// runtime's choice, per layer, between our BSR kernels (kernels/sparse,
// BsrConvPlan) and oneDNN dense.
//
// RegisterSparseOperators() (called by the registry after the oneDNN
// operators) wraps the kFast factory already registered for each op: the
// sparse factory looks at the layer first and, when it declines or the cost
// rule prefers dense, calls the wrapped factory (oneDNN, which may decline
// too, then the reference runs). So the order is sparse -> oneDNN ->
// reference.
//
// A layer can run sparse when its weight is a constant f32 tensor with at
// least one all-zero 8x8 block (Conv: 8 output x 8 input channels x the
// whole kernel; a weight whose Value carries an 8x8 block_mask uses that
// mask, which must agree with the zeros) and:
//   Conv: group 1, 1-D/2-D, static input shape, fused activation
//         none/Relu/Clip, optional bias and fused residual (input 3);
//   Gemm: transA = 0, alpha = 1, C absent or a constant broadcast over rows
//         (a bias), fused activation none/Relu/Clip;
//   MatMul: A of rank >= 2 with a static shape, constant 2-D B.
// Activations are plain (NCHW / row-major) in and out: the operator keeps
// the default layout negotiation, so oneDNN neighbours hand it plain
// tensors and read plain ones back. A Conv with a fused residual lets the
// session write Y over the residual's buffer (Operator::InPlaceInput; in
// ResNet-50 the conv3 layers then store into the lines they just read:
// docs/BENCHMARKS.md "AVX2 in-model gap, h_avx2m").
//
// Environment (read once, logged at info level):
//   WBS_SPARSE=0   never sparse (the oneDNN/ref chain as before)
//   WBS_SPARSE=1   sparse wherever possible, whatever the cost rule says
//                  (tests; a dense weight still never goes sparse)
//   unset / auto   the cost rule below decides per layer
//   WBS_SPARSE_PROFILE=1  each sparse Conv prints to stderr, when destroyed,
//                  "sparse_profile<TAB>node<TAB>layout<TAB>X shape<TAB>runs<TAB>
//                  median us" of its Run() calls (timed inside a model:
//                  docs/BENCHMARKS.md "End-to-end block-sparse")
//   WBS_SPARSE_PROFILE=2  the same, and each Run() whose Y aliases no input
//                  runs its conv a second time, timed apart (the same layer
//                  warm, in the same model and load): "...<TAB>warm median
//                  us" (diagnostics only: twice the work; docs/BENCHMARKS.md
//                  "AVX2 in-model gap, h_avx2m")
//   WBS_SPARSE_PROFILE=3|4|5  as 2, and before the first (timed) call,
//                  untimed, Y is zero-filled (3), the weights read (4) or X
//                  read (5), so that call finds that operand cached: what
//                  each operand adds to the cold time (diagnostics;
//                  docs/BENCHMARKS.md "AVX2 in-model, h_avx2n")
//   WBS_PRIVATE_COPIES=0  a sparse Conv split by block-rows over threads
//                  copies its input once, split by channels, instead of
//                  one private copy per thread (read at each operator's
//                  creation; BsrConvPlan::PrivateCopiesDefault)
//   WBS_SPLIT=tfine|size|rows|shared|tiles|tpos|tshared  how a sparse
//                  Conv's plan splits an image over threads
//                  (BsrConvPlan::SplitRule): size by operand size, private
//                  copies for the block-row splits it picks; tfine (default,
//                  h_avx2p): size, and tiled 1x1 plans copy in whole-tile
//                  parts and take >= 8 calls per thread; tiles/tpos/tshared:
//                  the tiled variants measured against it; rows: block-rows
//                  wherever private copies apply (the rule before h_avx2o);
//                  shared: no private copies. Read at each operator's
//                  creation (--variants pairs them)
//   WBS_SPLIT_MIN_CALLS=N  cut each thread's share into at least N kernel
//                  calls where it has fewer (BsrConvPlan::SetMinCalls; 0:
//                  off, the default). Read at each operator's creation
//   WBS_SPARSE_WINOGRAD=0|1|auto  for a sparse Conv that BsrWinoPlan takes
//                  (3x3, stride 1, dilation 1): never Winograd F(2x2, 3x3),
//                  always, or when EstimateWinoOverDirect() says it is faster
//                  (auto, the default). Read at each operator's creation
//                  (CurrentWinogradMode), so wbs_bench_models --variants can
//                  compare them in one process; the Decide() log line names
//                  the choice.
//   WBS_WINO_SPLIT=auto|xi|tiles|rows  BsrWinoPlan's thread split for
//                  the Winograd layers (read at each operator's creation;
//                  auto: SplitFor in kernels/sparse/bsr_wino_plan.h)
//   WBS_WINO_TILE=2|4|auto  the output tile of the Winograd layers: 2 =
//                  F(2x2, 3x3) on all (the rule before h_w4); 4 = F(4x4,
//                  3x3) on every plane with at least one full GEMM kernel
//                  tile of 4x4 tiles (AVX-512: 48 tiles, ResNet-50's 56x56
//                  and 28x28), F(2x2) on smaller ones; auto (the default) =
//                  F(4x4) where EstimateWino4OverDirect() is below F(2x2)'s
//                  estimate (AVX-512 only). Read at each operator's creation
//                  (CurrentWinoTileMode), so --variants pairs them
#pragma once

#include <cstdint>

#include "kernels/sparse/dispatch.h"

namespace wbs::runtime {

enum class SparseMode { kAuto, kOff, kForce };
// The mode in force: SetSparseMode's if called, else WBS_SPARSE (read once;
// an unknown value warns and means auto). Read when operators are created.
SparseMode CurrentSparseMode();
// Overrides WBS_SPARSE for operators created from now on (tests and
// benchmarks comparing sparse with dense in one process).
void SetSparseMode(SparseMode mode);

// What the cost rule sees of one layer.
struct SparseLayerShape {
  int64_t out_positions = 1;  // Conv: OH*OW per image; Gemm/MatMul: rows of A
  int64_t stride = 1;         // Conv: largest spatial stride; 1 for Gemm
  bool gemm = false;
  double kept = 1.0;    // fraction of 8x8 blocks stored (1 - block sparsity)
  int64_t weights = 0;  // Gemm: elements of the dense weight
  int64_t kernel_elems = 1;  // Conv: kh * kw (1 for pointwise convs and Gemm)
};

// Estimated time of the sparse kernel relative to oneDNN dense on the same
// layer (< 1: sparse is faster). A linear model a * kept + b per shape
// class, fitted to wbs_bench_sparse medians (see the tables and the command
// in ops_sparse.cc).
// The rule depends on the sparse kernels' ISA (kernels/sparse/dispatch.h):
// the one-argument form uses ActiveIsa(); AVX-512 has its own table, AVX2
// and the reference kernel share the AVX2 one.
double EstimateSparseOverDense(const SparseLayerShape& s);
double EstimateSparseOverDense(const SparseLayerShape& s, kernels::sparse::Isa isa);
enum class WinogradMode { kAuto, kOff, kForce };
// WBS_SPARSE_WINOGRAD now (unset/empty/auto: kAuto; an unknown value warns
// and means auto).
WinogradMode CurrentWinogradMode();
// Estimated time of the block-sparse Winograd plan relative to the direct
// block-sparse plan on a 3x3 stride-1 conv (< 1: Winograd is faster);
// measured, see kWinoCost / kWinoCostAvx512 in ops_sparse.cc.
double EstimateWinoOverDirect(const SparseLayerShape& s);
// The same for a given ISA level (tests).
double EstimateWinoOverDirect(const SparseLayerShape& s, kernels::sparse::Isa isa);
enum class WinoTileMode { kAuto, k2, k4 };
// WBS_WINO_TILE now (unset/empty/auto: kAuto; an unknown value warns and
// means auto).
WinoTileMode CurrentWinoTileMode();
// The same for the F(4x4, 3x3) plan (kWino4CostAvx512 in ops_sparse.cc);
// no fit below AVX-512 (there F(4x4) has no vector transforms): a huge
// value, so AVX2 machines keep F(2x2).
double EstimateWino4OverDirect(const SparseLayerShape& s);
double EstimateWino4OverDirect(const SparseLayerShape& s, kernels::sparse::Isa isa);

// The cost rule: sparse when the estimate is at most this. Below 1 because
// the measured dense side converted plain NCHW in and out, while in a
// session oneDNN neighbours exchange blocked tensors and a sparse layer
// between them costs them their reorders.
inline constexpr double kSparseChooseBelow = 0.9;

}  // namespace wbs::runtime

// BsrConvPlan: everything around the BSR conv microkernel for one concrete
// problem — input layout, tap offsets, valid-lane table, thread split. Built
// once (like a oneDNN primitive), run many times. The runtime operator
// (issue 3 part 4) is expected to own one plan, the BlockSparseWeight and a
// scratch buffer of scratch_floats() floats.
//
// Input layout. Unless the conv is 1x1, stride 1 and unpadded (then x is read
// in place, one flat plane per channel), Run() first copies each channel into
// scratch as planes of the zero-padded input, in one of two layouts:
//
// - Phase planes: padded element (yp, xp) goes to plane (yp % sy, xp % sx)
//   at (yp / sy, xp / sx), each plane Hq x Wq (planes no tap reads are not
//   stored). Tap (ky, kx) of output (oy, ox) then lives in plane
//   ((ky*dy) % sy, (kx*dx) % sx) at flat offset (oy + ky*dy/sy)*Wq + ox + kx*dx/sx,
//   a constant offset from q = oy*Wq + ox. The grid's pitch is Wq > OW, so
//   Wq - OW columns per row are computed and dropped.
// - Shifted planes: one plane per (row phase yp % sy, kernel column kx),
//   Hq x OW, holding padded (yp, ox*sx + kx*dx). Tap (ky, kx) reads plane
//   ((ky*dy) % sy, kx) at offset (ky*dy/sy)*OW from q = oy*OW + ox: no
//   dropped columns (every lane useful, a 7x7 plane is 49 positions, not 63)
//   for kw times the copy, and kw times the cache lines per step. Create()
//   uses shifted planes for convs with at most 14 output columns on the
//   AVX-512 kernel (faster there: ResNet-50's 14x14 and 7x7 3x3 layers,
//   stride 1 and 2), phase planes otherwise (faster on 28x28 and 56x56);
//   CreateWithLayout() can force either (tests, benchmarks).
//
// - Tiled (1x1 and unpadded, on the AVX2 kernel; stride 1 when each input
//   channel feeds at least kTiledMinReuse (16) kept blocks, any other stride
//   always): the output positions' input, cut into tiles of kBsrTileQ (24)
//   positions, a tile's positions of all channels contiguous
//   (BsrConvArgs::x_tile_stride), so a register tile's input for one block
//   is 768 contiguous bytes instead of 8 rows 1-2 cache lines each, far
//   apart; a strided conv's copy gathers every s-th column of every s-th row
//   (the same quarter of the input at stride 2 that the phase layout stores
//   as its one used plane: the gain is the layout, not a smaller copy).
//   Run() calls the kernel with ~128 KB of kept weights' block-rows at a
//   time, and it runs tiles outer. Measured (docs/BENCHMARKS.md "AVX2 ...
//   h_avx2i"; 3 alternating runs, 1 thread, --layout=tiled vs phase on the
//   12 stride-1 1x1 shapes of ResNet-50 at 25/50/75/90%; tie: within 3%):
//   at reuse >= 16 tiled won 17 of 22 points, tied 2, lost 3 (by 4-11%,
//   worst layer4.x.conv3 at 90%: 7.4x vs 8.4x over oneDNN), median tiled /
//   untiled speed 1.07 (layer4.0.conv1 at 50%: 1.76x vs 1.26x); at reuse
//   8-15 it won 2 of 8, lost 5, median 0.93 (layer2.0.conv1 at 50%: 1.05x vs
//   1.44x; 256 and 512 channels at 56x56 and 28x28), below 8 it lost 14 of
//   18, median 0.76. Strided 1x1 (3 downsample shapes): tiled won at every
//   sparsity, median 1.15/1.50/2.81/5.81x vs phase planes 0.90/1.16/2.07/
//   5.38x at 25/50/75/90%. Direct 1x1 plans on that kernel with >= 8 kept
//   blocks per block-row and >= 96 positions are called with the same
//   block-row groups (tiles outer, no copy; +6-13% on ResNet-50's direct
//   1x1 layers at 50%, h_avx2l).
//
// - Stride 2 in place ("s2direct", kernels with a BsrConvKernel::stride2
//   variant: AVX-512; stride 2x2, dilation 1, at most kBsrS2MaxTaps taps):
//   no copy. The flat grid's pitch is the output width rounded up to 16, so
//   each 16-position vector is one output row's run of columns, and the
//   kernel de-interleaves its input (vpermt2ps) from two masked loads of 32
//   consecutive floats of the input row, the masks standing in for the
//   padding (BsrConvArgs::s2_vecs: a table of offsets and masks per
//   16-position group, built here). It costs one permute per 8 x 16 FMAs and
//   the lanes past the output width (28 -> 32, 14 -> 16), and saves the
//   copy, which at high sparsity costs as much as the MACs. Create() takes
//   it for convs of more than one tap with at most 15% dropped lanes and
//   at most 4 kept blocks per input block-column (Stride2, WBS_BSR_S2).
//
// Either way stride, dilation and padding all become tap offsets and the
// microkernel's loads stay contiguous. The copy runs on an ISA-specific
// f32_pack_plane kernel of the same ISA as the conv kernel.
//
// Threads. One parallel region per image. When the kept weights are smaller
// than the input the kernel reads (large planes: ResNet-50's 56x56 and 28x28
// layers) and every thread gets two whole 48-position tiles (with private
// copies too, unless SetSplitRule(kRowsWhenPrivate): see SplitRule), thread t takes
// ~1/T of the flat output positions (whole tiles, the remainder to the last
// thread) over all block-rows, and copies the input plane rows its positions
// start in, so most of its input is in its own L2; no barrier: a thread waits
// for the others' copies (flags) only before the chunks that reach into their
// rows, at the end of its range. Otherwise, with at least 4 block-rows per
// thread, thread t takes a run of block-rows holding ~1/T of the non-zero
// blocks (balanced by work, not by row count) and the copy is split by channels
// (then every thread reads the planes of all channels, half of them written by
// the other core), or, with EnablePrivateCopies(), every thread copies all of
// the input into its own scratch when that fits a core's L2 (twice the copy
// work, no barrier, every plane it reads written by its own core: the runtime
// operator's default, docs/KERNELS.md "Threads"); else the positions are split
// in 16-position groups. A shared copy comes in one part per thread (its
// plane rows or channels); a thread that needs a part whose owner has not
// started yet (a worker woken late) claims and copies it itself, so nobody
// waits at a barrier for a late thread. Each thread runs its share's kernel calls in order,
// taking them from a counter; a thread done with its share takes the calls left
// on the others' counters (one the OS descheduled on a busy machine), with the
// same chunk boundaries, so the results do not depend on who ran a call. Within
// a thread, positions are walked in chunks sized so that the chunk's input
// stays in L2 while every block-row of the thread passes over it, one kernel
// call per block-row, each asked to prefetch the next block-row's weights and a
// slice of the next chunk's input (BsrConvArgs::prefetch_*): in a model both
// arrive from L3/DRAM in patterns the hardware prefetchers miss. SetMinCalls()
// cuts a share into more, smaller calls when it has few (off by default for
// untiled plans: its end-to-end gain was not resolved, docs/BENCHMARKS.md
// "AVX2 2-thread scaling, h_avx2o"; tiled 1x1 plans take at least
// kTiledMinCalls under the default SplitRule::kTilesFine when split by
// block-rows (a position split rounds its chunk up and may stay below), and
// split a shared tiled copy in whole-tile parts matching the position split,
// h_avx2p). Measured and not adopted (h_avx2q, docs/BENCHMARKS.md "AVX2
// in-place conv3 at 2 threads"): splitting the in-place conv3 layers by
// positions like their neighbours, and prefetching the residual per call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/block_sparse.h"
#include "core/status.h"
#include "kernels/ref/conv.h"
#include "kernels/sparse/dispatch.h"

namespace wbs::kernels::sparse {

// The clamp [lo, hi] a block-sparse plan fuses for activation a (none, Relu,
// Clip); Unimplemented for any other activation.
Status ClampBounds(const ref::Activation& a, float* lo, float* hi);

class BsrConvPlan {
 public:
  // p: 2-D conv (spatial_rank 1 or 2), group 1, activation none/Relu/Clip
  // (fused as a clamp); w: the weight of p's shape. `kernel` overrides the
  // dispatcher (tests); it must accept w.br(). The plan keeps a pointer to w.
  static Result<BsrConvPlan> Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                    const BsrConvKernel* kernel = nullptr);
  enum class Layout { kAuto, kPhase, kShifted, kTiled, kStride2 };
  // Create() with the input layout forced (tests, benchmarks); kAuto is
  // Create(). kPhase and kShifted never take the tiled copy: a 1x1 stride-1
  // unpadded conv is then read in place. kTiled takes it wherever the
  // kernel and the conv allow (1x1, unpadded), else acts like kAuto.
  // kStride2 reads a stride-2 conv's input in place (see "Stride 2 in
  // place" above) wherever the kernel and the conv allow, else acts like
  // kAuto.
  static Result<BsrConvPlan> CreateWithLayout(const ref::ConvParams& p, const BlockSparseWeight& w,
                                              Layout layout, const BsrConvKernel* kernel = nullptr);
  // Y[M, N] = W[M, K] X[K, N] (+ bias[M]): a 1x1 conv over an N-wide plane.
  static Result<BsrConvPlan> CreateGemm(int64_t n, const BlockSparseWeight& w,
                                        const BsrConvKernel* kernel = nullptr);

  int64_t scratch_floats() const { return scratch_floats_; }
  // The scratch Run(..., threads) needs: scratch_floats(), or with private
  // copies one (16-float aligned) copy per thread.
  int64_t scratch_floats(int threads) const {
    return PrivateCopies() && threads > 1 ? CopyStride() * threads : scratch_floats_;
  }
  // A block-row split with an input copy of at most kPrivateCopyMaxBytes
  // then gives every thread its own copy of the whole input (see "Threads"
  // above). Larger copies stay shared: one copy no longer fits a core's L2
  // (1 MB here), so the second copy adds its traffic without keeping the
  // reads local (ResNet-50 layer3.0.conv2, a 1.3 MB copy, gained nothing).
  void EnablePrivateCopies(bool on = true) { private_copies_ = on; }
  // The setting the runtime's sparse Conv operator applies to its plans: on
  // unless the environment has WBS_PRIVATE_COPIES=0. Read at each call, so
  // one process can compare both; benchmarks call it too, so they time the
  // configuration the runtime runs.
  static bool PrivateCopiesDefault();
  // How SplitFor chooses between block-rows and positions when private
  // copies are on, and how tiled 1x1 plans divide their copy and calls (see
  // "Threads" above). kSize: the operand-size rule decides as without
  // private copies (positions when the input read is larger than the kept
  // weights), and a block-row split it picks gets private copies.
  // kRowsWhenPrivate: block-rows wherever there are kMinRowsPerThread per
  // thread (round 10, a kernel benchmark on the AVX-512 machine under load;
  // slower in the model on the AVX2 VM, SplitFor). kShared: no private
  // copies (as EnablePrivateCopies(false)). The rest are kSize with, for
  // tiled 1x1 plans (h_avx2p, docs/BENCHMARKS.md "AVX2 14x14 1x1 at 2
  // threads, h_avx2p"): kTiles: a shared tiled copy is cut into whole-tile
  // parts matching the position split, so a thread waits for no one's copy
  // before its own tiles (under kSize part 0 ends at the plane row before
  // thread 1's first tile: thread 0 waited for thread 1's copy of 1024
  // channels); kTilesFine (the default): kTiles and at least
  // kTiledMinCalls calls per share (SetMinCalls, tiled plans only; the
  // 14x14 ones had 1-3; position splits may stay below it, see Run());
  // kTilesPos: kTiles, and every tiled plan with two
  // tiles per thread split by positions; kTilesShared: kTiles, and the
  // tiled block-row splits on one shared copy (half the tiles from each
  // thread). In ResNet-50 at 50%, 2 threads, paired in one process, the
  // five 14x14 tiled layer kinds summed: kTilesFine 0.93x kSize, kTiles
  // 0.97-0.99x, kTilesPos 1.06x, kTilesShared 1.05x.
  enum class SplitRule {
    kRowsWhenPrivate,
    kSize,
    kShared,
    kTiles,
    kTilesPos,
    kTilesShared,
    kTilesFine
  };
  static constexpr int kTiledMinCalls = 8;
  void SetSplitRule(SplitRule r) { split_rule_ = r; }
  // The rule the runtime's sparse Conv applies:
  // WBS_SPLIT=tfine|size|rows|shared|tiles|tpos|tshared, default tfine
  // (read at each call, so wbs_bench_models --variants can pair them).
  static SplitRule SplitRuleDefault();
  // With more than one thread, each thread's share is cut into at least
  // this many kernel calls where the plan's own call size gives fewer
  // (smaller position chunks or block-row groups; 0 or 1: off), so a thread
  // that finishes first can take the other's last calls. The runtime's
  // setting: WBS_SPLIT_MIN_CALLS=N (read at each call).
  void SetMinCalls(int n) { min_calls_ = n; }
  static int MinCallsDefault();
  // Tests: thread 1 of every parallel region of Run() sleeps this long
  // before it starts (a worker woken late), so the others copy its part of a
  // shared input copy and take its calls. 0 (the default): off.
  static void SetLateWorkerForTesting(int64_t microseconds);
  static constexpr int64_t kPrivateCopyMaxBytes = int64_t{1} << 20;
  // Plans of one tap (1x1 convs, Gemm) on the AVX-512 kernel: the input
  // bytes per position chunk (a chunk's input stays in L2 while every
  // block-row of the call's share passes over it) and how much of each
  // channel range of the next chunk a call asks the kernel to prefetch into
  // L2 (0: all of it). Other plans use 256 KB chunks and the whole request.
  // kDefault: 256 KB, all (tuned on AMD Zen 4/5, 1 MB L2). kIntelL2: half
  // the L2 and the first two or three lines per channel (the Prefetcher adds
  // one for alignment), leaving the rest of each channel's run to the
  // hardware L2 streamer. On an Intel Xeon (Emerald Rapids, 2 MB L2) that
  // ran ResNet-50's 56x56 and 28x28 1x1 layers 1.04-1.20x faster at 50/75%
  // (1 thread, paired; the full request with 1 MB chunks gained about half
  // as much; presumably its software prefetches hold L1 fill buffers until
  // the far L3 answers), docs/BENCHMARKS.md "AVX-512 1x1 layers on Intel, h_x1".
  enum class OneByOne { kDefault, kIntelL2 };
  // The runtime's setting, chosen once from the CPU (kIntelL2 on Intel CPUs
  // with at least 2 MB of L2, else kDefault; logged once) unless
  // WBS_BSR_1X1=default|intel forces one (read at each call, so
  // wbs_bench_models --variants can pair them). Create() applies it.
  static OneByOne OneByOneDefault();
  void SetOneByOne(OneByOne t) { one_by_one_ = t; }
  // The tiled 1x1 copy (above) when the input channels feed at least this
  // many kept blocks each on average: the copy is one more pass over x.
  static constexpr int64_t kTiledMinReuse = 16;
  const BsrConvKernel& kernel() const { return *kernel_; }
  // Stride-2 convs read in place (kStride2) under Create(): kAuto by the
  // measured rule (UseStride2Direct in bsr_conv_plan.cc), kOld never
  // (always a copy), kNew wherever the kernel and the conv allow. The
  // runtime's setting: WBS_BSR_S2=auto|old|new, default auto (read at each
  // Create(), so wbs_bench_models --variants can pair them).
  enum class Stride2 { kAuto, kOld, kNew };
  static Stride2 Stride2Default();
  // "direct", "tiled", "phase", "shifted" or "s2direct" (see above), for
  // logs and benchmarks.
  const char* layout() const;
  // How Run(..., threads) splits an image: "none", "rows", "rows+private"
  // (block-rows, one input copy per thread) or "positions" (logs, profiles).
  const char* split_name(int threads) const;

  // y [N, M, OH, OW] = clamp(conv(x [N, C, H, W]) + bias + residual); bias
  // [M] or nullptr; residual like y or nullptr (may alias y); scratch holds
  // scratch_floats() floats (may be null if 0). Uses `threads` OpenMP threads.
  void Run(const float* x, const float* bias, float* y, float* scratch, int threads,
           const float* residual = nullptr) const;

 private:
  // How Run() divides one image over threads: not at all, by block-rows
  // (each thread reads all the input, its share of the weights) or by
  // output positions (all the weights, its share of the input).
  enum class Split { kNone, kRows, kPositions };
  int64_t CopyStride() const { return (scratch_floats_ + 15) / 16 * 16; }
  // Whole-tile copy parts (SplitRule::kTiles and the rules built on it).
  bool TileParts() const {
    return tiled_ &&
           (split_rule_ == SplitRule::kTiles || split_rule_ == SplitRule::kTilesPos ||
            split_rule_ == SplitRule::kTilesShared || split_rule_ == SplitRule::kTilesFine);
  }
  bool PrivateCopies() const {
    return private_copies_ && split_rule_ != SplitRule::kShared &&
           !(tiled_ && split_rule_ == SplitRule::kTilesShared) && scratch_floats_ > 0 &&
           scratch_floats_ * int64_t{sizeof(float)} <= kPrivateCopyMaxBytes;
  }
  Split SplitFor(int threads) const;
  // Stride 2 in place: the input floats per channel the kernel reads (every
  // row a tap row reads: all of them with kh > 1, the even ones for 1x1).
  int64_t S2InputFloats() const { return (kh_ > 1 ? in_h_ : (in_h_ + 1) / 2) * in_w_; }
  // Copies channels [c_begin, c_end), plane rows [row_begin, row_end) of
  // every stored plane into dst.
  void Pack(const float* x, float* dst, int64_t c_begin, int64_t c_end, int64_t row_begin = 0,
            int64_t row_end = INT64_MAX) const;
  // The tiled copy of channels [c_begin, c_end), positions [q_begin, q_end).
  void PackTiled(const float* x, float* dst, int64_t c_begin, int64_t c_end, int64_t q_begin,
                 int64_t q_end) const;

  const BlockSparseWeight* w_ = nullptr;
  const BsrConvKernel* kernel_ = nullptr;
  int64_t batch_ = 1, in_h_ = 1, in_w_ = 1, out_h_ = 1, out_w_ = 1;
  int64_t stride_y_ = 1, stride_x_ = 1;
  bool direct_ = true;  // x read in place
  bool tiled_ = false;  // the tiled 1x1 copy (above)
  bool shifted_ = false;
  bool s2_ = false;  // stride 2 read in place (direct_ too)
  int64_t pad_top_ = 0, pad_left_ = 0, kh_ = 1, kw_ = 1;
  int64_t pitch_ = 1, x_channel_stride_ = 0, max_plane_off_ = 0;
  std::vector<int64_t> tap_offset_;
  std::vector<PackPlaneArgs> planes_;  // the stored planes (x, dst, channels filled by Run)
  // Per plane: the slot of the plane of column offset + 1 packed from the same
  // loads (stride 2), -1 for none, -2 if another plane packs this one; and of
  // column offset - 1 (PackPlaneArgs::dst_prev), -1 for none.
  std::vector<int64_t> odd_partner_;
  std::vector<int64_t> prev_partner_;
  PackPlaneFn pack_ = nullptr;
  std::vector<LaneGroup> lanes_;   // empty iff pitch == out_w
  std::vector<BsrS2Vec> s2_vecs_;  // stride 2 in place: per 16-position group
  int64_t scratch_floats_ = 0;
  int64_t tail_zeros_ = 0;  // zeros Pack() writes after the last channel's planes
  bool private_copies_ = false;
  SplitRule split_rule_ = SplitRule::kTilesFine;
  int min_calls_ = 0;
  OneByOne one_by_one_ = OneByOne::kDefault;
  float lo_ = -__builtin_inff(), hi_ = __builtin_inff();
};

}  // namespace wbs::kernels::sparse

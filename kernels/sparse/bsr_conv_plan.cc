#include "kernels/sparse/bsr_conv_plan.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kGroup = 16;                 // positions per LaneGroup
constexpr int64_t kChunkBudgetFloats = 65536;  // input floats per position chunk (~256 KB)
constexpr int kMinRowsPerThread = 4;
// Create() uses shifted planes up to this many output columns (any stride).
constexpr int64_t kShiftedMaxOw = 14;
// Chunks are whole register tiles of every kernel (AVX-512: 48, AVX2: 16
// positions), so only a thread's last chunk has a partial tile.
constexpr int64_t kChunkQuantum = 48;
int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Requests [p, p + bytes) into L2 (prefetcht1) without waiting for it.
void PrefetchL2(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 2);
}

PackPlaneFn PackFor(const BsrConvKernel& k) {
  return k.isa >= Isa::kAvx512 ? f32_pack_plane__avx512 : f32_pack_plane__ref;
}

}  // namespace

const char* BsrConvPlan::layout() const {
  return direct_ ? "direct" : shifted_ ? "shifted" : "phase";
}

Result<BsrConvPlan> BsrConvPlan::Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                        const BsrConvKernel* kernel) {
  return CreateWithLayout(p, w, Layout::kAuto, kernel);
}

Result<BsrConvPlan> BsrConvPlan::CreateWithLayout(const ref::ConvParams& p,
                                                  const BlockSparseWeight& w, Layout layout,
                                                  const BsrConvKernel* kernel) {
  if (p.group != 1) return Unimplemented("block-sparse conv: group {} (only 1)", p.group);
  if (p.spatial_rank > 2 || p.in[0] != 1 || p.kernel[0] != 1)
    return Unimplemented("block-sparse conv: only 1-D and 2-D convolutions");
  if (w.out_channels() != p.out_channels || w.in_channels() != p.in_channels ||
      w.kh() != p.kernel[1] || w.kw() != p.kernel[2])
    return InvalidArgument("block-sparse conv: weight [{},{},{},{}] does not fit the conv",
                           w.out_channels(), w.in_channels(), w.kh(), w.kw());
  BsrConvPlan plan;
  switch (p.activation.kind) {
    case ref::ActivationKind::kNone:
      break;
    case ref::ActivationKind::kRelu:
      plan.lo_ = 0.0f;
      break;
    case ref::ActivationKind::kClip:
      plan.lo_ = p.activation.alpha;
      plan.hi_ = p.activation.beta;
      break;
    default:
      return Unimplemented("block-sparse conv: activation {} is not a clamp",
                           ref::ActivationName(p.activation.kind));
  }
  plan.w_ = &w;
  plan.kernel_ = kernel ? kernel : &SelectBsrConvKernel(w.br());
  if (plan.kernel_->br != 0 && plan.kernel_->br != w.br())
    return InvalidArgument("block-sparse conv: kernel {} does not take {}-row blocks",
                           plan.kernel_->name, w.br());
  plan.pack_ = PackFor(*plan.kernel_);
  plan.batch_ = p.batch;
  plan.in_h_ = p.in[1];
  plan.in_w_ = p.in[2];
  plan.out_h_ = p.out[1];
  plan.out_w_ = p.out[2];
  const int64_t sy = p.stride[1], sx = p.stride[2];
  const int64_t pad_top = p.pad_begin[1], pad_left = p.pad_begin[2];
  const int64_t kh = p.kernel[1], kw = p.kernel[2], dy = p.dilation[1], dx = p.dilation[2];
  const int64_t oh = plan.out_h_, ow = plan.out_w_;
  plan.direct_ = kh == 1 && kw == 1 && sy == 1 && sx == 1 && pad_top == 0 && pad_left == 0 &&
                 oh == plan.in_h_ && ow == plan.in_w_;
  if (plan.direct_) {
    plan.pitch_ = ow;
    plan.x_channel_stride_ = plan.in_h_ * plan.in_w_;
    plan.tap_offset_ = {0};
  } else {
    // The padded extent the outputs actually read.
    const int64_t hp = (oh - 1) * sy + (kh - 1) * dy + 1;
    const int64_t wp = (ow - 1) * sx + (kw - 1) * dx + 1;
    const int64_t hq = (hp + sy - 1) / sy, wq = (wp + sx - 1) / sx;
    // Planes each layout stores, in first-use order: (row phase, column key).
    auto planes_of = [&](bool shifted) {
      std::vector<std::pair<int64_t, int64_t>> used;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          const std::pair<int64_t, int64_t> key((ky * dy) % sy, shifted ? kx : (kx * dx) % sx);
          if (std::find(used.begin(), used.end(), key) == used.end()) used.push_back(key);
        }
      return used;
    };
    // kAuto: shifted planes for convs with at most kShiftedMaxOw output
    // columns on the AVX-512 kernel, else phase planes. Measured
    // (wbs_bench_sparse --layout=phase|shifted, docs/BENCHMARKS.md): on
    // small planes the dropped columns cost most (7x7: pitch 9, 63 lanes for
    // 49 outputs; with pitch 7 the 49th position rides along in the 48-wide
    // tile, and a 14x14 plane is 4 x 48 + 4) and the shifted planes' kw-fold
    // copy is small: ResNet-50 layer4.x.conv2 1.58x -> 1.70-2.01x at 50%,
    // layer3.x.conv2 1.65x -> 1.77x. On 28x28 and 56x56 planes and strided
    // convs the kw-fold copy and the kw times more cache lines per step
    // cost more than the dropped columns (1.76x vs 1.72x, 2.08x vs 1.45x).
    // Strided convs to a 7x7 plane gain too (ResNet-50 layer4.0.conv2, 3x3
    // s2: phase pitch 8, 56 lanes for 49 outputs; three alternating runs,
    // 1.52-1.77x phase vs 1.84-1.95x shifted at 50%, 7.0-7.8x vs 8.0-8.1x at
    // 90%); to 14x14 they did not while the 6 shifted planes took 6 copy
    // passes (layer3.0.conv2: 1.46-1.50x vs 1.44-1.55x at 50%, 6.0-6.4x vs
    // 4.9-5.2x at 90%); with 2 passes (PackPlaneArgs::dst_prev) shifted wins
    // (six alternating runs each under load 11-12, our eff GFLOP/s medians,
    // phase -> shifted: 158 -> 166 at 50%, 148 -> 158 at 75%, 125 -> 139 at
    // 90%). To 28x28 (layer2.0.conv2) phase stays ahead.
    const bool auto_shifted = kw > 1 && plan.kernel_->isa >= Isa::kAvx512 && ow <= kShiftedMaxOw;
    const bool shifted = layout == Layout::kShifted || (layout == Layout::kAuto && auto_shifted);
    plan.shifted_ = shifted;
    plan.pitch_ = shifted ? ow : wq;
    // Shared pad columns (stride 1, phase planes padded on both sides): the
    // zeros right of row r double as the left padding of row r + 1, so the
    // pitch is W + max(pad_left, pad_right) instead of W + both, and fewer
    // dropped lanes are computed (28x28: pitch 29, not 30; 56x56: 57, not
    // 58). A tap past the pitch wraps into the next row's first pad_left
    // columns, always zeros; after the last channel's plane Pack() writes
    // them (tail_zeros_). Same session, alternating binaries, 3 runs each:
    // layer2.x.conv2 (28x28) 510-518 -> 491-503 us at 50%, 264-273 ->
    // 253-257 at 75%, 120-123 -> 117-118 at 90%; layer1.x.conv2 ~1-2%.
    const int64_t pad_right_read = wp - pad_left - plan.in_w_;
    if (!shifted && sx == 1 && sy == 1 && pad_left > 0 && pad_right_read > 0) {
      const int64_t shared = plan.in_w_ + std::max(pad_left, pad_right_read);
      if (shared < wq && shared >= ow) {
        plan.pitch_ = shared;
        plan.tail_zeros_ = pad_left;
      }
    }
    const std::vector<std::pair<int64_t, int64_t>> used = planes_of(shifted);
    const int64_t plane = hq * plan.pitch_;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        const std::pair<int64_t, int64_t> key((ky * dy) % sy, shifted ? kx : (kx * dx) % sx);
        const auto slot =
            static_cast<int64_t>(std::find(used.begin(), used.end(), key) - used.begin());
        const int64_t in_plane = (ky * dy / sy) * plan.pitch_ + (shifted ? 0 : kx * dx / sx);
        plan.tap_offset_.push_back(slot * plane + in_plane);
        plan.max_plane_off_ = std::max(plan.max_plane_off_, in_plane);
      }
    for (size_t s = 0; s < used.size(); ++s) {
      PackPlaneArgs pa;
      pa.in_h = plan.in_h_;
      pa.in_w = plan.in_w_;
      pa.rows = hq;
      pa.cols = plan.pitch_;
      pa.sy = sy;
      pa.sx = sx;
      pa.row_off = used[s].first - pad_top;
      pa.col_off = (shifted ? used[s].second * dx : used[s].second) - pad_left;
      pa.dst_channel_stride = static_cast<int64_t>(used.size()) * plane;
      pa.dst = nullptr;  // + s * plane at run time
      plan.planes_.push_back(pa);
    }
    // Planes of one row phase whose column offsets differ by one read the
    // same source rows: one pass writes them (stride 2: the phase planes
    // (py, 0) and (py, 1); stride 1 or 2: the shifted planes of kernel
    // columns 0, 1, 2 with dilation 1, offsets c - 1, c, c + 1,
    // PackPlaneArgs::dst_odd/dst_prev). A 3x3 stride-2 conv to 7x7 packed its
    // 6 shifted planes in 6 passes, a third of its time at 90%.
    plan.odd_partner_.assign(used.size(), -1);
    plan.prev_partner_.assign(used.size(), -1);
    if (sx <= 2) {
      auto find = [&](size_t s, int64_t dc) -> int64_t {
        for (size_t t = 0; t < used.size(); ++t)
          if (t != s && plan.odd_partner_[t] == -1 &&
              plan.planes_[t].row_off == plan.planes_[s].row_off &&
              plan.planes_[t].col_off == plan.planes_[s].col_off + dc)
            return static_cast<int64_t>(t);
        return -1;
      };
      // Triples first (a lead with both neighbours), then pairs.
      for (int pass = 0; pass < 2; ++pass)
        for (size_t s = 0; s < used.size(); ++s) {
          if (plan.odd_partner_[s] != -1) continue;
          const int64_t odd = find(s, 1), prev = pass == 0 ? find(s, -1) : -1;
          if (odd < 0 || (pass == 0 && prev < 0)) continue;
          plan.odd_partner_[s] = odd;
          plan.odd_partner_[static_cast<size_t>(odd)] = -2;
          if (prev >= 0) {
            plan.prev_partner_[s] = prev;
            plan.odd_partner_[static_cast<size_t>(prev)] = -2;
          }
        }
    }
    plan.x_channel_stride_ = static_cast<int64_t>(used.size()) * plane;
    // Slack: dropped lanes of the last row may read up to a row (plus a
    // vector) past the last plane.
    plan.scratch_floats_ = p.in_channels * plan.x_channel_stride_ + 2 * plan.pitch_ + 4 * kGroup;
  }
  if (plan.pitch_ != ow) {
    const int64_t total = oh * plan.pitch_;
    plan.lanes_.resize(static_cast<size_t>(RoundUp(total, kGroup) / kGroup));
    int64_t y_index = 0;
    for (size_t g = 0; g < plan.lanes_.size(); ++g) {
      LaneGroup& lg = plan.lanes_[g];
      lg.y_index = y_index;
      for (int64_t l = 0; l < kGroup; ++l) {
        const int64_t q = static_cast<int64_t>(g) * kGroup + l;
        if (q < total && q % plan.pitch_ < ow) {
          lg.mask = static_cast<uint16_t>(lg.mask | (1u << l));
          ++y_index;
        }
      }
    }
  }
  return plan;
}

Result<BsrConvPlan> BsrConvPlan::CreateGemm(int64_t n, const BlockSparseWeight& w,
                                            const BsrConvKernel* kernel) {
  if (w.kh() != 1 || w.kw() != 1)
    return InvalidArgument("block-sparse gemm: weight has a {}x{} kernel", w.kh(), w.kw());
  ref::ConvParams p;
  p.in_channels = w.in_channels();
  p.out_channels = w.out_channels();
  p.in = {1, 1, n};
  p.out = {1, 1, n};
  p.spatial_rank = 1;
  return Create(p, w, kernel);
}

void BsrConvPlan::Pack(const float* x, float* dst, int64_t c_begin, int64_t c_end) const {
  const int64_t plane = planes_.empty() ? 0 : planes_[0].rows * planes_[0].cols;
  for (size_t s = 0; s < planes_.size(); ++s) {
    if (odd_partner_[s] == -2) continue;
    PackPlaneArgs a = planes_[s];
    a.x = x;
    a.dst = dst + static_cast<int64_t>(s) * plane;
    if (odd_partner_[s] >= 0) a.dst_odd = dst + odd_partner_[s] * plane;
    if (prev_partner_[s] >= 0) a.dst_prev = dst + prev_partner_[s] * plane;
    a.c_begin = c_begin;
    a.c_end = c_end;
    pack_(a);
  }
  if (tail_zeros_ > 0 && c_end == w_->in_channels())
    std::fill_n(dst + c_end * x_channel_stride_, tail_zeros_, 0.0f);
}

void BsrConvPlan::Run(const float* x, const float* bias, float* y, float* scratch, int threads,
                      const float* residual) const {
  const BlockSparseWeight& w = *w_;
  const int64_t c = w.in_channels(), m = w.out_channels();
  const int64_t rows = w.block_rows();
  const int64_t pitch = pitch_;
  const int64_t total = out_h_ * pitch;
  // A chunk of positions reads chunk + max_plane_off_ floats of every stored
  // plane of every channel.
  const int64_t planes = std::max<int64_t>(1, static_cast<int64_t>(planes_.size()));
  const int64_t chunk = RoundUp(
      std::max<int64_t>(kChunkBudgetFloats / (c * planes) - max_plane_off_, 1), kChunkQuantum);
  const std::vector<int32_t>& row_ptr = w.row_ptr();
  threads = std::max(1, threads);
  const int64_t block_floats = int64_t{w.br()} * w.bc() * w.kh() * w.kw();
  const int64_t plane_floats = planes_.empty() ? 0 : planes_[0].rows * planes_[0].cols;

  BsrConvArgs base;
  base.row_ptr = row_ptr.data();
  base.col_idx = w.col_idx().data();
  base.blocks = w.values();
  base.br = w.br();
  base.bc = w.bc();
  base.out_channels = m;
  base.in_channels = c;
  base.taps = static_cast<int>(tap_offset_.size());
  base.tap_offset = tap_offset_.data();
  base.x_channel_stride = x_channel_stride_;
  base.y_channel_stride = out_h_ * out_w_;
  base.pitch = pitch;
  base.out_w = out_w_;
  base.out_h = out_h_;
  base.lanes = lanes_.empty() ? nullptr : lanes_.data();
  base.bias = bias;
  base.lo = lo_;
  base.hi = hi_;
  const bool split_rows = rows >= int64_t{kMinRowsPerThread} * threads;
  const int64_t work = row_ptr.back() + rows;  // blocks + one unit per row (stores)

  for (int64_t n = 0; n < batch_; ++n) {
    const float* xn = x + n * c * in_h_ * in_w_;
    float* yn = y + n * m * out_h_ * out_w_;
#pragma omp parallel num_threads(threads)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      if (!direct_) {
        const int64_t c0 = c * tid / nt, c1 = c * (tid + 1) / nt;
        Pack(xn, scratch, c0, c1);
#pragma omp barrier
      }
      BsrConvArgs a = base;
      a.x = direct_ ? xn : scratch;
      a.y = yn;
      a.residual = residual ? residual + (yn - y) : nullptr;
      int64_t r0 = 0, r1 = rows, q0 = 0, q1 = total;
      if (nt > 1 && split_rows) {
        // Block-rows whose cumulative work starts in this thread's share.
        const int64_t lo = work * tid / nt, hi = work * (tid + 1) / nt;
        auto start_of = [&](int64_t target) {
          int64_t r = 0;
          while (r < rows && row_ptr[r] + r < target) ++r;
          return r;
        };
        r0 = start_of(lo);
        r1 = tid == nt - 1 ? rows : start_of(hi);
      } else if (nt > 1) {
        const int64_t groups = RoundUp(total, kGroup) / kGroup;
        q0 = std::min(total, groups * tid / nt * kGroup);
        q1 = std::min(total, groups * (tid + 1) / nt * kGroup);
      }
      // A remainder shorter than a tile joins the chunk before it: as a
      // chunk of its own it would stream every block-row's weights once
      // more for a few positions (7x7 = 48 + 1 with 2048 input channels:
      // 2 MB at 50% for one position), and in the same call the kernel
      // fuses such a tail into its full tiles.
      auto chunk_end = [&](int64_t q) { return q1 - q < chunk + kChunkQuantum ? q1 : q + chunk; };
      // Software pipelining over block-rows. In a model, a layer's weights
      // and input arrive from L3 or DRAM (the layers in between evicted
      // them), and the kernel's access pattern defeats the hardware
      // prefetchers: a tile reads 8 channels of a random block-column per
      // block (hundreds of interleaved streams), a block-row's weights are
      // read once per pass. So the kernel runs one block-row per call and
      // is asked to prefetch, spread over that call, the next block-row's
      // weights and 1/rows of the next chunk's input into L2 (ResNet-50
      // at 50%, 1 thread, each sparse layer timed inside the model:
      // docs/BENCHMARKS.md "End-to-end block-sparse").
      if (r0 < r1)
        PrefetchL2(w.values() + int64_t{row_ptr[r0]} * block_floats,
                   int64_t{row_ptr[r0 + 1] - row_ptr[r0]} * block_floats * 4);
      const float* xs = direct_ ? xn : scratch;
      for (int64_t q = q0; q < q1 && r0 < r1; q = a.q_end) {
        a.q_begin = q;
        a.q_end = chunk_end(q);
        const int64_t nq0 = a.q_end, nq1 = nq0 < q1 ? chunk_end(nq0) : nq0;
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t rn = r + 1 < r1 ? r + 1 : r0;  // the next chunk starts over
          const bool next_w = r + 1 < r1 || nq0 < nq1;
          a.prefetch_w = next_w ? w.values() + int64_t{row_ptr[rn]} * block_floats : nullptr;
          a.prefetch_w_bytes = int64_t{row_ptr[rn + 1] - row_ptr[rn]} * block_floats * 4;
          a.prefetch_x = nullptr;
          if (nq0 < nq1) {
            // Channels [cb, ce) of the next chunk: every stored plane, the
            // chunk's positions plus the taps' reach.
            const int64_t cb = c * (r - r0) / (r1 - r0), ce = c * (r + 1 - r0) / (r1 - r0);
            a.prefetch_x = xs + cb * x_channel_stride_ + nq0;
            a.prefetch_x_ranges = (ce - cb) * planes;
            a.prefetch_x_stride = direct_ ? x_channel_stride_ : plane_floats;
            a.prefetch_x_bytes = (nq1 - nq0 + max_plane_off_) * 4;
          }
          a.row_begin = r;
          a.row_end = r + 1;
          kernel_->fn(a);
        }
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

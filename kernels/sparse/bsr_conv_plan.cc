#include "kernels/sparse/bsr_conv_plan.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kGroup = 16;                 // positions per LaneGroup
constexpr int64_t kChunkBudgetFloats = 65536;  // input floats per position chunk (~256 KB)
constexpr int kMinRowsPerThread = 4;
// Chunks are whole register tiles of every kernel (AVX-512: 48, AVX2: 16
// positions), so only a thread's last chunk has a partial tile.
constexpr int64_t kChunkQuantum = 48;

int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

}  // namespace

Result<BsrConvPlan> BsrConvPlan::Create(const ref::ConvParams& p, const BlockSparseWeight& w,
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
  plan.batch_ = p.batch;
  plan.in_h_ = p.in[1];
  plan.in_w_ = p.in[2];
  plan.out_h_ = p.out[1];
  plan.out_w_ = p.out[2];
  plan.sy_ = p.stride[1];
  plan.sx_ = p.stride[2];
  plan.pad_top_ = p.pad_begin[1];
  plan.pad_left_ = p.pad_begin[2];
  const int64_t kh = p.kernel[1], kw = p.kernel[2], dy = p.dilation[1], dx = p.dilation[2];
  plan.direct_ = kh == 1 && kw == 1 && plan.sy_ == 1 && plan.sx_ == 1 && plan.pad_top_ == 0 &&
                 plan.pad_left_ == 0 && plan.out_h_ == plan.in_h_ && plan.out_w_ == plan.in_w_;
  int64_t pitch;
  if (plan.direct_) {
    plan.hq_ = plan.in_h_;
    plan.wq_ = plan.in_w_;
    plan.x_channel_stride_ = plan.in_h_ * plan.in_w_;
    plan.tap_offset_ = {0};
    pitch = plan.out_w_;
  } else {
    // The padded extent the outputs actually read.
    const int64_t hp = (plan.out_h_ - 1) * plan.sy_ + (kh - 1) * dy + 1;
    const int64_t wp = (plan.out_w_ - 1) * plan.sx_ + (kw - 1) * dx + 1;
    plan.hq_ = (hp + plan.sy_ - 1) / plan.sy_;
    plan.wq_ = (wp + plan.sx_ - 1) / plan.sx_;
    const int64_t plane = plan.hq_ * plan.wq_;
    // Only the phases some tap reads are stored (a 1x1 stride-2 conv reads
    // one of four), in first-use order.
    plan.phase_slot_.assign(static_cast<size_t>(plan.sy_ * plan.sx_), -1);
    int64_t used = 0;
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx) {
        const int64_t phase = ((ky * dy) % plan.sy_) * plan.sx_ + (kx * dx) % plan.sx_;
        int64_t& slot = plan.phase_slot_[static_cast<size_t>(phase)];
        if (slot < 0) slot = used++;
        plan.tap_offset_.push_back(slot * plane + (ky * dy / plan.sy_) * plan.wq_ +
                                   kx * dx / plan.sx_);
      }
    plan.x_channel_stride_ = used * plane;
    pitch = plan.wq_;
    // Slack: dropped lanes of the last row may read up to a row (plus a
    // vector) past the last plane.
    plan.scratch_floats_ = p.in_channels * plan.x_channel_stride_ + 2 * plan.wq_ + 4 * kGroup;
  }
  if (pitch != plan.out_w_) {
    const int64_t total = plan.out_h_ * pitch;
    plan.lanes_.resize(static_cast<size_t>(RoundUp(total, kGroup) / kGroup));
    int64_t y_index = 0;
    for (size_t g = 0; g < plan.lanes_.size(); ++g) {
      LaneGroup& lg = plan.lanes_[g];
      lg.y_index = y_index;
      for (int64_t l = 0; l < kGroup; ++l) {
        const int64_t q = static_cast<int64_t>(g) * kGroup + l;
        if (q < total && q % pitch < plan.out_w_) {
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
  const int64_t plane = hq_ * wq_;
  for (int64_t c = c_begin; c < c_end; ++c) {
    const float* src = x + c * in_h_ * in_w_;
    float* out = dst + c * x_channel_stride_;
    for (int64_t py = 0; py < sy_; ++py) {
      if (sx_ == 2 && phase_slot_[static_cast<size_t>(py * 2)] >= 0 &&
          phase_slot_[static_cast<size_t>(py * 2 + 1)] >= 0) {
        // Both column phases in one pass over each source row (half the
        // reads of two strided passes; the interior loop vectorizes).
        float* pl0 = out + phase_slot_[static_cast<size_t>(py * 2)] * plane;
        float* pl1 = out + phase_slot_[static_cast<size_t>(py * 2 + 1)] * plane;
        // Columns where both ix = 2*col - pad_left and ix + 1 are inside the row.
        const int64_t lo = std::clamp<int64_t>((pad_left_ + 1) / 2, 0, wq_);
        const int64_t hi = std::clamp<int64_t>((in_w_ + pad_left_) / 2, lo, wq_);
        for (int64_t r = 0; r < hq_; ++r) {
          float* row0 = pl0 + r * wq_;
          float* row1 = pl1 + r * wq_;
          const int64_t iy = r * sy_ + py - pad_top_;
          if (iy < 0 || iy >= in_h_) {
            std::memset(row0, 0, static_cast<size_t>(wq_) * sizeof(float));
            std::memset(row1, 0, static_cast<size_t>(wq_) * sizeof(float));
            continue;
          }
          const float* srow = src + iy * in_w_;
          auto edge = [&](int64_t col) {
            const int64_t ix = 2 * col - pad_left_;
            row0[col] = ix >= 0 && ix < in_w_ ? srow[ix] : 0.0f;
            row1[col] = ix + 1 >= 0 && ix + 1 < in_w_ ? srow[ix + 1] : 0.0f;
          };
          for (int64_t col = 0; col < lo; ++col) edge(col);
          const float* s = srow - pad_left_;
          for (int64_t col = lo; col < hi; ++col) {
            row0[col] = s[2 * col];
            row1[col] = s[2 * col + 1];
          }
          for (int64_t col = hi; col < wq_; ++col) edge(col);
        }
        continue;
      }
      for (int64_t px = 0; px < sx_; ++px) {
        const int64_t slot = phase_slot_[static_cast<size_t>(py * sx_ + px)];
        if (slot < 0) continue;
        float* pl = out + slot * plane;
        // Columns whose source ix = col*sx + px - pad_left is inside the row.
        const int64_t lo = std::clamp<int64_t>((pad_left_ - px + sx_ - 1) / sx_, 0, wq_);
        const int64_t hi = std::clamp<int64_t>((in_w_ + pad_left_ - px + sx_ - 1) / sx_, lo, wq_);
        for (int64_t r = 0; r < hq_; ++r) {
          float* row = pl + r * wq_;
          const int64_t iy = r * sy_ + py - pad_top_;
          if (iy < 0 || iy >= in_h_) {
            std::memset(row, 0, static_cast<size_t>(wq_) * sizeof(float));
            continue;
          }
          const float* srow = src + iy * in_w_ + px - pad_left_;  // srow[col * sx] = x[iy, ix]
          std::memset(row, 0, static_cast<size_t>(lo) * sizeof(float));
          if (sx_ == 1) {
            std::memcpy(row + lo, srow + lo, static_cast<size_t>(hi - lo) * sizeof(float));
          } else {
            for (int64_t col = lo; col < hi; ++col) row[col] = srow[col * sx_];
          }
          std::memset(row + hi, 0, static_cast<size_t>(wq_ - hi) * sizeof(float));
        }
      }
    }
  }
}

void BsrConvPlan::Run(const float* x, const float* bias, float* y, float* scratch, int threads,
                      const float* residual) const {
  const BlockSparseWeight& w = *w_;
  const int64_t c = w.in_channels(), m = w.out_channels();
  const int64_t rows = w.block_rows();
  const int64_t pitch = lanes_.empty() ? out_w_ : wq_;
  const int64_t total = out_h_ * pitch;
  const int64_t max_off = *std::max_element(tap_offset_.begin(), tap_offset_.end());
  int64_t chunk = RoundUp(std::max<int64_t>(kChunkBudgetFloats / c - max_off, 1), kChunkQuantum);
  const std::vector<int32_t>& row_ptr = w.row_ptr();
  threads = std::max(1, threads);

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
      a.row_begin = r0;
      a.row_end = r1;
      for (int64_t q = q0; q < q1 && r0 < r1; q += chunk) {
        a.q_begin = q;
        a.q_end = std::min(q1, q + chunk);
        kernel_->fn(a);
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

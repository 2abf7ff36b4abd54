#include "kernels/sparse/bsr_wino_plan.h"

#include <omp.h>

#include <algorithm>

#include "kernels/sparse/bsr_conv_plan.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int kXi = 16;  // entries of the 4x4 transformed tile
constexpr int64_t kLanes = 16;
int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

}  // namespace

bool BsrWinoPlan::Eligible(const ref::ConvParams& p) {
  return p.group == 1 && p.spatial_rank == 2 && p.in[0] == 1 && p.kernel[0] == 1 &&
         p.kernel[1] == 3 && p.kernel[2] == 3 && p.stride[1] == 1 && p.stride[2] == 1 &&
         p.dilation[1] == 1 && p.dilation[2] == 1;
}

Result<BsrWinoPlan> BsrWinoPlan::Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                        const BsrConvKernel* kernel,
                                        const WinoTransformKernel* transform) {
  if (!Eligible(p))
    return Unimplemented("block-sparse winograd: only 2-D 3x3 stride-1 dilation-1 group-1 convs");
  if (w.out_channels() != p.out_channels || w.in_channels() != p.in_channels || w.kh() != 3 ||
      w.kw() != 3)
    return InvalidArgument("block-sparse winograd: weight [{},{},{},{}] does not fit the conv",
                           w.out_channels(), w.in_channels(), w.kh(), w.kw());
  BsrWinoPlan plan;
  WBS_RETURN_IF_ERROR(ClampBounds(p.activation, &plan.lo_, &plan.hi_));
  plan.kernel_ = kernel ? kernel : &SelectBsrConvKernel(w.br());
  if (plan.kernel_->br != 0 && plan.kernel_->br != w.br())
    return InvalidArgument("block-sparse winograd: kernel {} does not take {}-row blocks",
                           plan.kernel_->name, w.br());
  plan.transform_ = transform ? transform : &SelectWinoTransform();
  plan.br_ = w.br();
  plan.bc_ = w.bc();
  plan.m_ = w.out_channels();
  plan.c_ = w.in_channels();
  plan.row_ptr_ = w.row_ptr();
  plan.col_idx_ = w.col_idx();
  plan.batch_ = p.batch;
  plan.in_h_ = p.in[1];
  plan.in_w_ = p.in[2];
  plan.out_h_ = p.out[1];
  plan.out_w_ = p.out[2];
  plan.pad_top_ = p.pad_begin[1];
  plan.pad_left_ = p.pad_begin[2];
  plan.tiles_h_ = (plan.out_h_ + 1) / 2;
  plan.tiles_w_ = (plan.out_w_ + 1) / 2;
  plan.max_chunk_ = std::max<int64_t>(kLanes, kVBudgetFloats / (kXi * plan.c_) / kLanes * kLanes);

  // U_xi's blocks: value (ci, r) of block j at u_[(xi * nnz + j) * bc * br + ci * br + r]
  // (CKR with one tap, what the microkernel reads), from the CKR 3x3 block.
  const int64_t nnz = w.nnz_blocks(), bs = int64_t{w.br()} * w.bc();
  plan.u_.assign(static_cast<size_t>(kXi * nnz * bs), 0.0f);
  for (int64_t j = 0; j < nnz; ++j) {
    const float* blk = w.values() + j * w.block_size();
    for (int64_t ci = 0; ci < w.bc(); ++ci)
      for (int64_t r = 0; r < w.br(); ++r) {
        float g[9], u[kXi];
        for (int t = 0; t < 9; ++t) g[t] = blk[(ci * 9 + t) * w.br() + r];
        WinoWeightTransform(g, u);
        for (int xi = 0; xi < kXi; ++xi)
          plan.u_[static_cast<size_t>((xi * nnz + j) * bs + ci * w.br() + r)] = u[xi];
      }
  }
  return plan;
}

int64_t BsrWinoPlan::PerThreadFloats() const {
  const int64_t stride = RoundUp(max_chunk_, kLanes);
  return kXi * c_ * stride + kXi * br_ * stride + kLanes;
}

BsrWinoPlan::Split BsrWinoPlan::SplitFor(int threads) const {
  if (threads <= 1) return Split::kAuto;
  if (forced_split_ != Split::kAuto) return forced_split_;
  return tiles() >= kMinTilesPerThread * threads ? Split::kTiles : Split::kRows;
}

void BsrWinoPlan::Run(const float* x, const float* bias, float* y, float* scratch, int threads,
                      const float* residual) const {
  threads = std::max(1, threads);
  const int64_t total = tiles(), rows = static_cast<int64_t>(row_ptr_.size()) - 1;
  const int64_t stride = RoundUp(max_chunk_, kLanes);
  const int64_t xi_floats = static_cast<int64_t>(col_idx_.size()) * br_ * bc_;
  const int64_t plane = out_h_ * out_w_;
  const Split split = SplitFor(threads);
  static constexpr int64_t kZeroTap[1] = {0};
  const int64_t work = row_ptr_.back() + rows;  // blocks + one unit per row (stores)
  // The first block-row whose cumulative work reaches `target`.
  auto rows_start = [&](int64_t target) {
    int64_t r = 0;
    while (r < rows && row_ptr_[static_cast<size_t>(r)] + r < target) ++r;
    return r;
  };

  for (int64_t n = 0; n < batch_; ++n) {
    const float* xn = x + n * c_ * in_h_ * in_w_;
    float* yn = y + n * m_ * plane;
    const float* rn = residual ? residual + n * m_ * plane : nullptr;
#pragma omp parallel num_threads(threads)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      int64_t t_begin = 0, t_end = total, r_begin = 0, r_end = rows;
      if (nt > 1 && split == Split::kTiles) {
        t_begin = total * tid / nt;
        t_end = total * (tid + 1) / nt;
      } else if (nt > 1) {
        r_begin = rows_start(work * tid / nt);
        r_end = tid == nt - 1 ? rows : rows_start(work * (tid + 1) / nt);
      }
      float* v = scratch + tid * PerThreadFloats();
      float* mbuf = v + kXi * c_ * stride;

      WinoInputArgs in;
      in.x = xn;
      in.in_h = in_h_;
      in.in_w = in_w_;
      in.pad_top = pad_top_;
      in.pad_left = pad_left_;
      in.tiles_w = tiles_w_;
      in.c_begin = 0;
      in.c_end = c_;
      in.v = v;
      in.v_xi_stride = c_ * stride;
      in.v_channel_stride = stride;

      BsrConvArgs g;
      g.col_idx = col_idx_.data();
      g.br = br_;
      g.bc = bc_;
      g.in_channels = c_;
      g.taps = 1;
      g.tap_offset = kZeroTap;
      g.x_channel_stride = stride;
      g.y_channel_stride = stride;
      g.out_h = 1;
      g.row_begin = 0;
      g.row_end = 1;
      g.q_begin = 0;

      WinoOutputArgs out;
      out.m = mbuf;
      out.m_xi_stride = br_ * stride;
      out.m_channel_stride = stride;
      out.y_channel_stride = plane;
      out.out_h = out_h_;
      out.out_w = out_w_;
      out.tiles_w = tiles_w_;
      out.lo = lo_;
      out.hi = hi_;

      // Equal chunks of at most max_chunk_ tiles.
      const int64_t mine = t_end - t_begin;
      const int64_t chunks = mine > 0 ? (mine + max_chunk_ - 1) / max_chunk_ : 0;
      for (int64_t k = 0; k < chunks && r_begin < r_end; ++k) {
        const int64_t t0 = t_begin + mine * k / chunks, t1 = t_begin + mine * (k + 1) / chunks;
        in.t_begin = t0;
        in.t_end = t1;
        transform_->input(in);
        g.pitch = g.out_w = t1 - t0;
        g.q_end = t1 - t0;
        out.t_begin = t0;
        out.t_end = t1;
        for (int64_t r = r_begin; r < r_end; ++r) {
          // Block-row r as row 0 of a one-row BSR: row_ptr + r keeps the
          // global block indices into col_idx and U_xi's values.
          const int64_t ch = std::min<int64_t>(br_, m_ - r * br_);
          g.row_ptr = row_ptr_.data() + r;
          g.out_channels = ch;
          for (int xi = 0; xi < kXi; ++xi) {
            g.blocks = u_.data() + xi * xi_floats;
            g.x = v + xi * c_ * stride;
            g.y = mbuf + xi * br_ * stride;
            kernel_->fn(g);
          }
          out.channels = ch;
          out.y = yn + r * br_ * plane;
          out.bias = bias ? bias + r * br_ : nullptr;
          out.residual = rn ? rn + r * br_ * plane : nullptr;
          transform_->output(out);
        }
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

#include "kernels/sparse/bsr_wino_plan.h"

#include <omp.h>

#include <algorithm>

#include "kernels/sparse/bsr_conv_plan.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int kXi = 16;  // entries of the 4x4 transformed tile
constexpr int64_t kLanes = 16;
int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Scratch strides. The transforms touch all 16 xi matrices per tile group
// and the GEMM a block's 8 channel rows: with power-of-two distances
// (V[xi] is C * 128 floats = 32 KB apart on ResNet-50's 56x56 layer, M[xi]
// 4 KB) all those lines fall into one L1 set and evict each other, so every
// matrix is skewed by one cache line (16 floats) from the previous one and
// a row stride that is a multiple of 4 KB gets a line more. Rows hold the
// transforms' slack (kWinoSlack) after the chunk.
constexpr int64_t kSkew = 16;
struct Strides {
  int64_t row, v_xi, m_xi;
};
Strides StridesFor(int64_t max_chunk, int64_t c, int64_t br) {
  Strides s;
  s.row = RoundUp(max_chunk + kWinoSlack, kLanes);
  if (s.row % 1024 == 0) s.row += kSkew;
  s.v_xi = c * s.row + kSkew;
  s.m_xi = br * s.row + kSkew;
  return s;
}

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
  // One register tile of the GEMM kernel per chunk (AVX2: 16 positions,
  // AVX-512: 48), within kVBudgetFloats. Small chunks keep each GEMM's
  // operand V_xi[C][chunk] in L1 while every block-row passes over it
  // (ResNet-50's 64-channel 56x56 layer: 4 KB): measured on this AVX2
  // machine (Zen 3, 32 KB L1, 512 KB L2), 1 thread, 0% sparsity, chunks of
  // 128 / 64 / 32 / 16 tiles: 10.5 / 10.2 / 9.2 / 4.9 ms (direct plan 10.2
  // ms); 50%: 64 tiles 8.3 ms, 16 tiles 4.0 ms (direct 7.4). The AVX-512
  // value is the kernel's tile, not measured (no AVX-512 machine here).
  const int64_t tile = plan.kernel_->isa >= Isa::kAvx512 ? 3 * kLanes : kLanes;
  plan.max_chunk_ = std::clamp<int64_t>(kVBudgetFloats / (kXi * plan.c_) / kLanes * kLanes,
                                        kLanes, tile);

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
  const Strides st = StridesFor(max_chunk_, c_, br_);
  return kXi * st.v_xi + kXi * st.m_xi + kLanes;
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
  const Strides st = StridesFor(max_chunk_, c_, br_);
  const int64_t stride = st.row;
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
        // Whole chunks per thread: only the image's last chunk is partial.
        const int64_t chunks = (total + max_chunk_ - 1) / max_chunk_;
        t_begin = std::min(total, chunks * tid / nt * max_chunk_);
        t_end = std::min(total, chunks * (tid + 1) / nt * max_chunk_);
      } else if (nt > 1) {
        r_begin = rows_start(work * tid / nt);
        r_end = tid == nt - 1 ? rows : rows_start(work * (tid + 1) / nt);
      }
      float* v = scratch + tid * PerThreadFloats();
      float* mbuf = v + kXi * st.v_xi;

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
      in.v_xi_stride = st.v_xi;
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
      out.m_xi_stride = st.m_xi;
      out.m_channel_stride = stride;
      out.y_channel_stride = plane;
      out.out_h = out_h_;
      out.out_w = out_w_;
      out.tiles_w = tiles_w_;
      out.lo = lo_;
      out.hi = hi_;

      // Chunks of max_chunk_ tiles (whole register tiles), the last one shorter.
      for (int64_t t0 = t_begin; t0 < t_end && r_begin < r_end; t0 += max_chunk_) {
        const int64_t t1 = std::min(t_end, t0 + max_chunk_);
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
            g.x = v + xi * st.v_xi;
            g.y = mbuf + xi * st.m_xi;
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

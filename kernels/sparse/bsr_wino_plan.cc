#include "kernels/sparse/bsr_wino_plan.h"

#include <omp.h>

#include <algorithm>

#include "kernels/sparse/bsr_conv_plan.h"

namespace wbs::kernels::sparse {
namespace {

constexpr int64_t kLanes = 16;
int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Scratch strides. The transforms touch all 16 xi matrices per tile group:
// with power-of-two distances all those lines fall into one L1 set and
// evict each other, so every matrix is skewed by one cache line (16 floats)
// from the previous one and a row stride that is a multiple of 4 KB gets a
// line more. Plain rows hold the transforms' slack (kWinoSlack) after the
// chunk.
constexpr int64_t kSkew = 16;
int64_t RowFloats(int64_t chunk) {
  int64_t row = RoundUp(chunk + kWinoSlack, kLanes);
  if (row % 1024 == 0) row += kSkew;
  return row;
}

}  // namespace

// Floats of the scratch matrices for chunks of max_chunk_ tiles.
struct BsrWinoPlan::Strides {
  int64_t v_block = 0;  // tiled: floats per 24-tile block of V_xi (0: plain)
  int64_t v_row = 0;    // channel stride in V_xi (tiled: kBsrTileQ)
  int64_t v_xi = 0;     // floats per V_xi
  int64_t m_row = 0, m_xi = 0;
  int64_t chunks = 0;   // chunks per image: k * max_chunk_ .., the last to the plane's end
  int64_t longest = 0;  // tiles of the longest chunk
  int m_bufs = 1;       // M buffers (2 when chunks follow each other)
  int nxi = 16;         // GEMMs (entries of the transformed tile)
  int64_t v_floats() const { return nxi * v_xi; }
  int64_t m_floats() const { return nxi * m_xi; }
};

BsrWinoPlan::Strides BsrWinoPlan::StridesOf() const {
  Strides s;
  s.nxi = nxi_;
  s.chunks = std::max<int64_t>(1, (tiles() + max_chunk_ - 1) / max_chunk_);
  // A last chunk of at most kMergeTiles joins the one before (ResNet-50's
  // 14x14 plane: 24 + 25 tiles, not 24 + 24 + 1 with every U_xi streamed
  // again for one tile).
  if (s.chunks > 1 && tiles() - (s.chunks - 1) * max_chunk_ <= kMergeTiles) --s.chunks;
  s.longest = std::min(tiles(), s.chunks == 1 ? tiles() : max_chunk_);
  s.longest = std::max(s.longest, tiles() - (s.chunks - 1) * max_chunk_);
  s.m_bufs = s.chunks > 1 ? 2 : 1;
  const int64_t longest = s.longest;
  if (tiled_) {
    s.v_row = kBsrTileQ;
    s.v_block = c_ * kBsrTileQ + kSkew;
    s.v_xi = (longest + kBsrTileQ - 1) / kBsrTileQ * s.v_block + kSkew;
  } else {
    s.v_row = RowFloats(longest);
    s.v_xi = c_ * s.v_row + kSkew;
  }
  s.m_row = RowFloats(longest);
  s.m_xi = m_ * s.m_row + kSkew;
  return s;
}

bool BsrWinoPlan::Eligible(const ref::ConvParams& p) {
  return p.group == 1 && p.spatial_rank == 2 && p.in[0] == 1 && p.kernel[0] == 1 &&
         p.kernel[1] == 3 && p.kernel[2] == 3 && p.stride[1] == 1 && p.stride[2] == 1 &&
         p.dilation[1] == 1 && p.dilation[2] == 1;
}

Result<BsrWinoPlan> BsrWinoPlan::Create(const ref::ConvParams& p, const BlockSparseWeight& w,
                                        const BsrConvKernel* kernel,
                                        const WinoTransformKernel* transform, int tile) {
  if (!Eligible(p))
    return Unimplemented("block-sparse winograd: only 2-D 3x3 stride-1 dilation-1 group-1 convs");
  if (w.out_channels() != p.out_channels || w.in_channels() != p.in_channels || w.kh() != 3 ||
      w.kw() != 3)
    return InvalidArgument("block-sparse winograd: weight [{},{},{},{}] does not fit the conv",
                           w.out_channels(), w.in_channels(), w.kh(), w.kw());
  if (tile != 2 && tile != 4)
    return InvalidArgument("block-sparse winograd: output tile {} is not 2 or 4", tile);
  if (transform && transform->tile != tile)
    return InvalidArgument("block-sparse winograd: transform {} is not F({}x{}, 3x3)",
                           transform->name, tile, tile);
  BsrWinoPlan plan;
  plan.tile_ = tile;
  plan.win_ = tile + 2;
  plan.nxi_ = plan.win_ * plan.win_;
  WBS_RETURN_IF_ERROR(ClampBounds(p.activation, &plan.lo_, &plan.hi_));
  plan.kernel_ = kernel ? kernel : &SelectBsrConvKernel(w.br());
  if (plan.kernel_->br != 0 && plan.kernel_->br != w.br())
    return InvalidArgument("block-sparse winograd: kernel {} does not take {}-row blocks",
                           plan.kernel_->name, w.br());
  plan.transform_ = transform ? transform : &SelectWinoTransform(tile);
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
  plan.tiles_h_ = (plan.out_h_ + tile - 1) / tile;
  plan.tiles_w_ = (plan.out_w_ + tile - 1) / tile;
  plan.tiled_ = plan.kernel_->tiled_1x1;
  // Whole register tiles of tiles (the kernel's tile_q: AVX-512 48, AVX2
  // 24; chunks of 24 ran the AVX-512 kernel's 48-position tile half empty,
  // 1.1-1.6x slower) while V and M of a chunk fit kChunkBudgetFloats (at
  // least one).
  const int64_t per_tile = plan.nxi_ * (plan.c_ + plan.m_);
  const int64_t tq = plan.kernel_->tile_q > 0 ? plan.kernel_->tile_q : kBsrTileQ;
  plan.max_chunk_ = std::max<int64_t>(tq, kChunkBudgetFloats / per_tile / tq * tq);

  // U_xi's blocks: value (ci, r) of block j at u_[(xi * nnz + j) * bc * br + ci * br + r]
  // (CKR with one tap, what the microkernel reads), from the CKR 3x3 block.
  const int64_t nnz = w.nnz_blocks(), bs = int64_t{w.br()} * w.bc();
  const int nxi = plan.nxi_;
  plan.u_.assign(static_cast<size_t>(nxi * nnz * bs), 0.0f);
  for (int64_t j = 0; j < nnz; ++j) {
    const float* blk = w.values() + j * w.block_size();
    for (int64_t ci = 0; ci < w.bc(); ++ci)
      for (int64_t r = 0; r < w.br(); ++r) {
        float g[9], u[36];
        for (int t = 0; t < 9; ++t) g[t] = blk[(ci * 9 + t) * w.br() + r];
        if (tile == 4)
          Wino4WeightTransform(g, u);
        else
          WinoWeightTransform(g, u);
        for (int xi = 0; xi < nxi; ++xi)
          plan.u_[static_cast<size_t>((xi * nnz + j) * bs + ci * w.br() + r)] = u[xi];
      }
  }
  return plan;
}

int64_t BsrWinoPlan::scratch_floats(int threads) const {
  const Strides st = StridesOf();
  const Split split = SplitFor(threads);
  const int t = std::max(1, threads);
  if (split == Split::kRows) return t * st.v_floats() + st.m_bufs * st.m_floats() + kLanes;
  if (split == Split::kTiles) return t * (st.v_floats() + st.m_floats()) + kLanes;
  return st.v_floats() + st.m_bufs * st.m_floats() + kLanes;
}

BsrWinoPlan::Split BsrWinoPlan::SplitFor(int threads) const {
  if (threads <= 1) return Split::kXi;
  if (forced_split_ != Split::kAuto) return forced_split_;
  // Whole chunks per thread where there are enough (ResNet-50 at 50%, 2
  // threads, speed-up over the direct plan, tiles / xi: 56x56 1.16-1.19 /
  // 0.90-1.12, 28x28 1.34-1.40 / 1.05-1.31, 14x14 (2 chunks) 1.43-1.52 /
  // 1.19-1.27); the 7x7 plane (one chunk) splits the xi grid.
  return StridesOf().chunks >= threads ? Split::kTiles : Split::kXi;
}

void BsrWinoPlan::Run(const float* x, const float* bias, float* y, float* scratch, int threads,
                      const float* residual) const {
  threads = std::max(1, threads);
  const int64_t total = tiles(), rows = static_cast<int64_t>(row_ptr_.size()) - 1;
  const Strides st = StridesOf();
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
  // Block-rows per GEMM call: about kGemmGroupBytes of U_xi's blocks.
  const int64_t row_bytes = std::max<int64_t>(
      1, xi_floats * static_cast<int64_t>(sizeof(float)) / std::max<int64_t>(1, rows));
  const int64_t group = std::max<int64_t>(1, kGemmGroupBytes / row_bytes);

  for (int64_t n = 0; n < batch_; ++n) {
    const float* xn = x + n * c_ * in_h_ * in_w_;
    float* yn = y + n * m_ * plane;
    const float* rn = residual ? residual + n * m_ * plane : nullptr;
#pragma omp parallel num_threads(threads)
    {
      const int nt = omp_get_num_threads(), tid = omp_get_thread_num();
      // This thread's rows a of the xi grid, block-rows of the GEMMs, and
      // block-rows of the output transform.
      const int win = win_;
      int a_begin = 0, a_end = win;
      int64_t g_begin = 0, g_end = rows, o_begin = 0, o_end = rows;
      float* v = scratch;
      float* m0 = scratch + st.v_floats();
      int64_t k_begin = 0, k_end = st.chunks;
      int m_bufs = st.m_bufs;
      if (nt > 1 && split == Split::kTiles) {
        k_begin = st.chunks * tid / nt;
        k_end = st.chunks * (tid + 1) / nt;
        v = scratch + tid * (st.v_floats() + st.m_floats());
        m0 = v + st.v_floats();
        m_bufs = 1;
      } else if (nt > 1 && split == Split::kRows) {
        g_begin = o_begin = rows_start(work * tid / nt);
        g_end = o_end = tid == nt - 1 ? rows : rows_start(work * (tid + 1) / nt);
        v = scratch + tid * st.v_floats();
        m0 = scratch + nt * st.v_floats();
      } else if (nt > 1) {
        const int parts = std::min(nt, win);
        a_begin = tid < parts ? win * tid / parts : win;
        a_end = tid < parts ? win * (tid + 1) / parts : win;
        o_begin = rows * tid / nt;
        o_end = rows * (tid + 1) / nt;
      }

      WinoInputArgs in;
      in.x = xn;
      in.in_h = in_h_;
      in.in_w = in_w_;
      in.pad_top = pad_top_;
      in.pad_left = pad_left_;
      in.tiles_w = tiles_w_;
      in.c_begin = 0;
      in.c_end = c_;
      in.a_begin = a_begin;
      in.a_end = a_end;
      in.v_xi_stride = st.v_xi;
      in.v_channel_stride = st.v_row;

      BsrConvArgs g;
      g.row_ptr = row_ptr_.data();
      g.col_idx = col_idx_.data();
      g.br = br_;
      g.bc = bc_;
      g.out_channels = m_;
      g.in_channels = c_;
      g.taps = 1;
      g.tap_offset = kZeroTap;
      g.x_channel_stride = st.v_row;
      g.x_tile_stride = st.v_block;
      g.y_channel_stride = st.m_row;
      g.out_h = 1;
      g.q_begin = 0;

      WinoOutputArgs out;
      out.m_xi_stride = st.m_xi;
      out.m_channel_stride = st.m_row;
      out.y_channel_stride = plane;
      out.out_h = out_h_;
      out.out_w = out_w_;
      out.tiles_w = tiles_w_;
      out.lo = lo_;
      out.hi = hi_;

      for (int64_t k = k_begin; k < k_end; ++k) {
        const int64_t t0 = k * max_chunk_;
        const int64_t t1 = k == st.chunks - 1 ? total : t0 + max_chunk_, nq = t1 - t0;
        float* mk = m0 + (k % m_bufs) * st.m_floats();
        if (a_begin < a_end && g_begin < g_end) {
          // (A) V's rows a_begin..a_end-1 for the chunk.
          if (tiled_) {
            for (int64_t b0 = t0; b0 < t1; b0 += kBsrTileQ) {
              in.t_begin = b0;
              in.t_end = std::min(t1, b0 + kBsrTileQ);
              in.v = v + (b0 - t0) / kBsrTileQ * st.v_block;
              transform_->input(in);
            }
          } else {
            in.t_begin = t0;
            in.t_end = t1;
            in.v = v;
            transform_->input(in);
          }
          // (B) Their GEMMs: M_xi = U_xi V_xi over the chunk's tiles.
          g.pitch = g.out_w = g.q_end = nq;
          for (int xi = win * a_begin; xi < win * a_end; ++xi) {
            g.blocks = u_.data() + xi * xi_floats;
            g.x = v + xi * st.v_xi;
            g.y = mk + xi * st.m_xi;
            for (int64_t r = g_begin; r < g_end; r += group) {
              g.row_begin = r;
              g.row_end = std::min(g_end, r + group);
              kernel_->fn(g);
            }
          }
        }
        if (nt > 1 && split == Split::kXi) {
#pragma omp barrier
        }
        // (C) Outputs of block-rows o_begin..o_end-1.
        if (o_begin < o_end) {
          const int64_t c0 = o_begin * br_;
          out.m = mk + c0 * st.m_row;
          out.channels = std::min<int64_t>(m_, o_end * br_) - c0;
          out.y = yn + c0 * plane;
          out.bias = bias ? bias + c0 : nullptr;
          out.residual = rn ? rn + c0 * plane : nullptr;
          out.t_begin = t0;
          out.t_end = t1;
          transform_->output(out);
        }
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

#include <algorithm>
#include <cassert>

#include "kernels/sparse/bsr_conv.h"

namespace wbs::kernels::sparse {

void f32_bsrnxn_conv__ref(const BsrConvArgs& a) {
  assert(a.q_begin % 16 == 0 && a.q_end <= a.out_h * a.pitch);
  const int64_t bs = int64_t{a.br} * a.bc * a.taps;
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    for (int64_t r = 0; r < a.br; ++r) {
      const int64_t m = i * a.br + r;
      if (m >= a.out_channels) break;
      for (int64_t q = a.q_begin; q < a.q_end; ++q) {
        const int64_t oy = q / a.pitch, ox = q % a.pitch;
        if (ox >= a.out_w) continue;
        float acc = a.bias ? a.bias[m] : 0.0f;
        for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
          const int64_t c0 = int64_t{a.col_idx[j]} * a.bc;
          const int64_t nci = std::min<int64_t>(a.bc, a.in_channels - c0);
          const float* blk = a.blocks + j * bs;
          for (int64_t ci = 0; ci < nci; ++ci)
            for (int t = 0; t < a.taps; ++t)
              acc += blk[(ci * a.taps + t) * a.br + r] *
                     a.x[(c0 + ci) * a.x_channel_stride + q + a.tap_offset[t]];
        }
        const int64_t idx = m * a.y_channel_stride + oy * a.out_w + ox;
        if (a.residual) acc += a.residual[idx];
        a.y[idx] = std::min(std::max(acc, a.lo), a.hi);
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

namespace wbs::kernels::sparse {

void f32_pack_plane__ref(const PackPlaneArgs& a) {
  if (a.dst_odd || a.dst_prev) {
    PackPlaneArgs one = a;
    one.dst_odd = one.dst_prev = nullptr;
    f32_pack_plane__ref(one);
    if (a.dst_odd) {
      one.dst = a.dst_odd;
      one.col_off = a.col_off + 1;
      f32_pack_plane__ref(one);
    }
    if (a.dst_prev) {
      one.dst = a.dst_prev;
      one.col_off = a.col_off - 1;
      f32_pack_plane__ref(one);
    }
    return;
  }
  // Columns whose source ix = col * sx + col_off is inside the row.
  const int64_t lo = std::clamp<int64_t>((-a.col_off + a.sx - 1) / a.sx, 0, a.cols);
  const int64_t hi = std::clamp<int64_t>((a.in_w - a.col_off + a.sx - 1) / a.sx, lo, a.cols);
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* src = a.x + c * a.in_h * a.in_w;
    float* dst = a.dst + c * a.dst_channel_stride;
    for (int64_t r = 0; r < a.rows; ++r, dst += a.cols) {
      const int64_t iy = r * a.sy + a.row_off;
      if (iy < 0 || iy >= a.in_h) {
        std::fill(dst, dst + a.cols, 0.0f);
        continue;
      }
      const float* srow = src + iy * a.in_w + a.col_off;  // srow[col * sx] = x[iy, ix]
      std::fill(dst, dst + lo, 0.0f);
      for (int64_t col = lo; col < hi; ++col) dst[col] = srow[col * a.sx];
      std::fill(dst + hi, dst + a.cols, 0.0f);
    }
  }
}

}  // namespace wbs::kernels::sparse

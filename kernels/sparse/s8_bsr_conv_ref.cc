// Reference int8 BSR kernels: plain loops over the canonical quad layout,
// Requantize() from core/quant_math.h for the epilogue.
#include <algorithm>
#include <cassert>

#include "core/quant_math.h"
#include "kernels/sparse/s8_bsr_conv.h"

namespace wbs::kernels::sparse {
namespace {

uint8_t RequantOne(int32_t acc, const S8Epilogue& ep, int64_t m) {
  const wbs::Requant r{ep.multiplier[m], ep.shift[m]};
  return static_cast<uint8_t>(Requantize(acc, r, ep.zero_point, ep.lo, ep.hi));
}

}  // namespace

void s8_bsrnxn_conv__ref(const S8BsrConvArgs& a) {
  assert(a.q_begin % 16 == 0 && a.q_end <= a.out_h * a.pitch && a.bc % 4 == 0);
  const int8_t* blocks = static_cast<const int8_t*>(a.packed);
  const int64_t quads = a.bc / 4;
  for (int64_t i = a.row_begin; i < a.row_end; ++i) {
    for (int64_t r = 0; r < a.br; ++r) {
      const int64_t m = i * a.br + r;
      if (a.y_layout == S8Layout::kNchw && m >= a.out_channels) break;
      if (a.y_layout == S8Layout::kNchw4c && m >= (a.out_channels + 3) / 4 * 4) break;
      for (int64_t q = a.q_begin; q < a.q_end; ++q) {
        const int64_t oy = q / a.pitch, ox = q % a.pitch;
        if (ox >= a.out_w) continue;
        // Unsigned arithmetic wraps like the int32 accumulators of the
        // vector kernels (the contract is modulo 2^32).
        uint32_t acc = static_cast<uint32_t>(a.ep.bias[m]);
        for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
          const int64_t q0 = int64_t{a.col_idx[j]} * quads;
          const int8_t* blk = blocks + j * a.block_bytes;
          for (int64_t qq = 0; qq < quads; ++qq) {
            if ((q0 + qq) * 4 >= a.in_channels) break;
            const uint8_t* xq = a.x + (q0 + qq) * a.x_quad_stride * 4;
            for (int t = 0; t < a.taps; ++t) {
              const int8_t* wq = blk + ((qq * a.taps + t) * a.br + r) * 4;
              const uint8_t* xp = xq + (q + a.tap_offset[t]) * 4;
              for (int l = 0; l < 4; ++l)
                acc += static_cast<uint32_t>(int32_t{wq[l]} * int32_t{xp[l]});
            }
          }
        }
        const int64_t idx = oy * a.out_w + ox;
        const uint8_t v = m < a.out_channels ? RequantOne(static_cast<int32_t>(acc), a.ep, m) : 0;
        if (a.y_layout == S8Layout::kNchw)
          a.y[m * a.y_plane + idx] = v;
        else
          a.y[((m / 4) * a.y_plane + idx) * 4 + m % 4] = v;
      }
    }
  }
}

void s8_bsrnxn_gemm__ref(const S8BsrGemmArgs& a) {
  const int8_t* blocks = static_cast<const int8_t*>(a.packed);
  const uint8_t* x = static_cast<const uint8_t*>(a.x);
  const int64_t quads = a.bc / 4;
  for (int64_t n = a.n_begin; n < a.n_end; ++n)
    for (int64_t i = a.row_begin; i < a.row_end; ++i)
      for (int64_t r = 0; r < a.br; ++r) {
        const int64_t m = i * a.br + r;
        if (m >= a.out_channels) break;
        uint32_t acc = static_cast<uint32_t>(a.ep.bias[m]);
        for (int32_t j = a.row_ptr[i]; j < a.row_ptr[i + 1]; ++j) {
          const int8_t* blk = blocks + j * a.block_bytes;
          const uint8_t* xr = x + n * a.x_stride + int64_t{a.col_idx[j]} * a.bc;
          for (int64_t qq = 0; qq < quads; ++qq)
            for (int l = 0; l < 4; ++l)
              acc += static_cast<uint32_t>(int32_t{blk[(qq * a.br + r) * 4 + l]} *
                                           int32_t{xr[qq * 4 + l]});
        }
        a.y[n * a.y_stride + m] = RequantOne(static_cast<int32_t>(acc), a.ep, m);
      }
}

}  // namespace wbs::kernels::sparse

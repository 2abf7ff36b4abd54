// f32_wino4x3_{input,output}__ref and the F(4x4, 3x3) weight transform: the
// source of truth for the vector kernels (scalar loops over tiles, the
// combinations of wino4_combine.h).
#include <algorithm>
#include <cassert>

#include "kernels/sparse/wino4_combine.h"
#include "kernels/sparse/wino_transform.h"

namespace wbs::kernels::sparse {

void Wino4WeightTransform(const float g[9], float u[36]) {
  static constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};
  // t = G g (6 x 3), then u = t G^T (6 x 6), in double.
  double t[6][3];
  for (int a = 0; a < 6; ++a)
    for (int k = 0; k < 3; ++k)
      t[a][k] = kG[a][0] * g[k] + kG[a][1] * g[3 + k] + kG[a][2] * g[6 + k];
  for (int a = 0; a < 6; ++a)
    for (int b = 0; b < 6; ++b)
      u[6 * a + b] =
          static_cast<float>(t[a][0] * kG[b][0] + t[a][1] * kG[b][1] + t[a][2] * kG[b][2]);
}

void f32_wino4x3_input__ref(const WinoInputArgs& a) {
  assert(a.t_begin <= a.t_end && 0 <= a.a_begin && a.a_begin <= a.a_end && a.a_end <= 6);
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* xc = a.x + c * a.in_h * a.in_w;
    for (int64_t t = a.t_begin; t < a.t_end; ++t) {
      const int64_t iy0 = t / a.tiles_w * 4 - a.pad_top, ix0 = t % a.tiles_w * 4 - a.pad_left;
      // d^T: column k of the window as a row, so that B^T acts on rows.
      float dt[6][6];
      for (int r = 0; r < 6; ++r)
        for (int k = 0; k < 6; ++k) {
          const int64_t iy = iy0 + r, ix = ix0 + k;
          dt[k][r] = iy >= 0 && iy < a.in_h && ix >= 0 && ix < a.in_w ? xc[iy * a.in_w + ix] : 0.0f;
        }
      float* v = a.v + c * a.v_channel_stride + (t - a.t_begin);
      for (int r = a.a_begin; r < a.a_end; ++r) {
        // Row r of e = B^T d, then its 6 entries of e B.
        float e[6], vr[6];
        for (int k = 0; k < 6; ++k) e[k] = wino4::InRowAt(r, dt[k]);
        wino4::In(e, vr);
        for (int k = 0; k < 6; ++k) v[(6 * r + k) * a.v_xi_stride] = vr[k];
      }
    }
  }
}

void f32_wino4x3_output__ref(const WinoOutputArgs& a) {
  assert(a.t_begin <= a.t_end);
  for (int64_t c = 0; c < a.channels; ++c) {
    const float b = a.bias ? a.bias[c] : 0.0f;
    for (int64_t t = a.t_begin; t < a.t_end; ++t) {
      const float* m = a.m + c * a.m_channel_stride + (t - a.t_begin);
      // s = A^T M (4 x 6) column by column, then Y = s A row by row.
      float s[6][4];
      for (int k = 0; k < 6; ++k) {
        float col[6];
        for (int r = 0; r < 6; ++r) col[r] = m[(6 * r + k) * a.m_xi_stride];
        wino4::Out(col, s[k]);
      }
      const int64_t oy0 = t / a.tiles_w * 4, ox0 = t % a.tiles_w * 4;
      for (int u = 0; u < 4; ++u) {
        const float row[6] = {s[0][u], s[1][u], s[2][u], s[3][u], s[4][u], s[5][u]};
        float yu[4];
        wino4::Out(row, yu);
        for (int v = 0; v < 4; ++v) {
          const int64_t oy = oy0 + u, ox = ox0 + v;
          if (oy >= a.out_h || ox >= a.out_w) continue;
          const int64_t idx = c * a.y_channel_stride + oy * a.out_w + ox;
          float acc = yu[v] + b;
          if (a.residual) acc += a.residual[idx];
          a.y[idx] = std::min(std::max(acc, a.lo), a.hi);
        }
      }
    }
  }
}

}  // namespace wbs::kernels::sparse

#include <algorithm>
#include <cassert>

#include "kernels/sparse/wino_transform.h"

namespace wbs::kernels::sparse {

void WinoWeightTransform(const float g[9], float u[16]) {
  // t = G g (4 x 3), then u = t G^T (4 x 4).
  float t[4][3];
  for (int k = 0; k < 3; ++k) {
    const float g0 = g[k], g1 = g[3 + k], g2 = g[6 + k];
    t[0][k] = g0;
    t[1][k] = 0.5f * (g0 + g1 + g2);
    t[2][k] = 0.5f * (g0 - g1 + g2);
    t[3][k] = g2;
  }
  for (int a = 0; a < 4; ++a) {
    const float t0 = t[a][0], t1 = t[a][1], t2 = t[a][2];
    u[4 * a + 0] = t0;
    u[4 * a + 1] = 0.5f * (t0 + t1 + t2);
    u[4 * a + 2] = 0.5f * (t0 - t1 + t2);
    u[4 * a + 3] = t2;
  }
}

void f32_wino2x3_input__ref(const WinoInputArgs& a) {
  assert(a.t_begin <= a.t_end && 0 <= a.a_begin && a.a_begin <= a.a_end && a.a_end <= 4);
  for (int64_t c = a.c_begin; c < a.c_end; ++c) {
    const float* xc = a.x + c * a.in_h * a.in_w;
    for (int64_t t = a.t_begin; t < a.t_end; ++t) {
      const int64_t iy0 = t / a.tiles_w * 2 - a.pad_top, ix0 = t % a.tiles_w * 2 - a.pad_left;
      float d[4][4];
      for (int r = 0; r < 4; ++r)
        for (int k = 0; k < 4; ++k) {
          const int64_t iy = iy0 + r, ix = ix0 + k;
          d[r][k] = iy >= 0 && iy < a.in_h && ix >= 0 && ix < a.in_w ? xc[iy * a.in_w + ix] : 0.0f;
        }
      // e = B^T d, then V = e B (same combination along the other axis).
      float e[4][4];
      for (int k = 0; k < 4; ++k) {
        e[0][k] = d[0][k] - d[2][k];
        e[1][k] = d[1][k] + d[2][k];
        e[2][k] = d[2][k] - d[1][k];
        e[3][k] = d[1][k] - d[3][k];
      }
      float* v = a.v + c * a.v_channel_stride + (t - a.t_begin);
      for (int r = a.a_begin; r < a.a_end; ++r) {
        const float vr[4] = {e[r][0] - e[r][2], e[r][1] + e[r][2], e[r][2] - e[r][1],
                             e[r][1] - e[r][3]};
        for (int k = 0; k < 4; ++k) v[(4 * r + k) * a.v_xi_stride] = vr[k];
      }
    }
  }
}

void f32_wino2x3_output__ref(const WinoOutputArgs& a) {
  assert(a.t_begin <= a.t_end);
  for (int64_t c = 0; c < a.channels; ++c) {
    const float b = a.bias ? a.bias[c] : 0.0f;
    for (int64_t t = a.t_begin; t < a.t_end; ++t) {
      const float* m = a.m + c * a.m_channel_stride + (t - a.t_begin);
      // s = A^T M (2 x 4), then Y = s A (2 x 2).
      float s[2][4];
      for (int k = 0; k < 4; ++k) {
        const float m0 = m[k * a.m_xi_stride], m1 = m[(4 + k) * a.m_xi_stride];
        const float m2 = m[(8 + k) * a.m_xi_stride], m3 = m[(12 + k) * a.m_xi_stride];
        s[0][k] = m0 + m1 + m2;
        s[1][k] = m1 - m2 - m3;
      }
      const int64_t oy0 = t / a.tiles_w * 2, ox0 = t % a.tiles_w * 2;
      for (int u = 0; u < 2; ++u) {
        const float yu[2] = {s[u][0] + s[u][1] + s[u][2], s[u][1] - s[u][2] - s[u][3]};
        for (int v = 0; v < 2; ++v) {
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

#include "kernels/ref/conv.h"

#include <algorithm>
#include <cassert>

#include "kernels/ref/window.h"

namespace wbs::kernels::ref {

// Loop order: per (n, output channel) plane, accumulate one weight tap at a
// time over whole output rows, so the innermost loop streams contiguous
// memory with a scalar weight. Each output element still sums exactly the
// terms of the formula in conv.h.
template <typename T>
void Conv(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  assert(p.group > 0 && p.in_channels % p.group == 0 && p.out_channels % p.group == 0);
  const int64_t cg_count = p.in_channels / p.group;
  const int64_t mg_count = p.out_channels / p.group;
  const int64_t ID = p.in[0], IH = p.in[1], IW = p.in[2];
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2];
  const int64_t KD = p.kernel[0], KH = p.kernel[1], KW = p.kernel[2];
  const int64_t in_plane = ID * IH * IW;
  const int64_t out_plane = OD * OH * OW;
  const int64_t k_size = KD * KH * KW;
  const int64_t planes = p.batch * p.out_channels;

#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t nm = 0; nm < planes; ++nm) {
    const int64_t n = nm / p.out_channels;
    const int64_t m = nm % p.out_channels;
    const int64_t g = m / mg_count;
    T* yp = y + nm * out_plane;
    std::fill(yp, yp + out_plane, bias ? bias[m] : T(0));
    for (int64_t cg = 0; cg < cg_count; ++cg) {
      const T* xp = x + (n * p.in_channels + g * cg_count + cg) * in_plane;
      const T* wp = w + (m * cg_count + cg) * k_size;
      for (int64_t kd = 0; kd < KD; ++kd) {
        const int64_t off_d = kd * p.dilation[0] - p.pad_begin[0];
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t off_h = kh * p.dilation[1] - p.pad_begin[1];
          for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t off_w = kw * p.dilation[2] - p.pad_begin[2];
            const T wv = wp[(kd * KH + kh) * KW + kw];
            const Range rw = ValidRange(OW, p.stride[2], off_w, IW);
            for (int64_t od = 0; od < OD; ++od) {
              const int64_t id = od * p.stride[0] + off_d;
              if (id < 0 || id >= ID) continue;
              for (int64_t oh = 0; oh < OH; ++oh) {
                const int64_t ih = oh * p.stride[1] + off_h;
                if (ih < 0 || ih >= IH) continue;
                const T* xrow = xp + (id * IH + ih) * IW;
                T* yrow = yp + (od * OH + oh) * OW;
                for (int64_t ow = rw.begin; ow < rw.end; ++ow)
                  yrow[ow] += wv * xrow[ow * p.stride[2] + off_w];
              }
            }
          }
        }
      }
    }
    ApplyActivation(p.activation, yp, out_plane);
  }
}

template <typename T>
void ConvTranspose(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  assert(p.group > 0 && p.in_channels % p.group == 0 && p.out_channels % p.group == 0);
  const int64_t cg_count = p.in_channels / p.group;
  const int64_t mg_count = p.out_channels / p.group;
  const int64_t ID = p.in[0], IH = p.in[1], IW = p.in[2];
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2];
  const int64_t KD = p.kernel[0], KH = p.kernel[1], KW = p.kernel[2];
  const int64_t in_plane = ID * IH * IW;
  const int64_t out_plane = OD * OH * OW;
  const int64_t k_size = KD * KH * KW;
  const int64_t planes = p.batch * p.out_channels;

  // Parallel over output planes: each is written by exactly one thread.
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t nm = 0; nm < planes; ++nm) {
    const int64_t n = nm / p.out_channels;
    const int64_t m = nm % p.out_channels;
    const int64_t g = m / mg_count;
    const int64_t mg = m % mg_count;
    T* yp = y + nm * out_plane;
    std::fill(yp, yp + out_plane, T(0));
    for (int64_t cg = 0; cg < cg_count; ++cg) {
      const int64_t c = g * cg_count + cg;
      const T* xp = x + (n * p.in_channels + c) * in_plane;
      const T* wp = w + (c * mg_count + mg) * k_size;
      for (int64_t kd = 0; kd < KD; ++kd) {
        const int64_t off_d = kd * p.dilation[0] - p.pad_begin[0];
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t off_h = kh * p.dilation[1] - p.pad_begin[1];
          for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t off_w = kw * p.dilation[2] - p.pad_begin[2];
            const T wv = wp[(kd * KH + kh) * KW + kw];
            const Range rw = ValidRange(IW, p.stride[2], off_w, OW);
            for (int64_t id = 0; id < ID; ++id) {
              const int64_t od = id * p.stride[0] + off_d;
              if (od < 0 || od >= OD) continue;
              for (int64_t ih = 0; ih < IH; ++ih) {
                const int64_t oh = ih * p.stride[1] + off_h;
                if (oh < 0 || oh >= OH) continue;
                const T* xrow = xp + (id * IH + ih) * IW;
                T* yrow = yp + (od * OH + oh) * OW;
                for (int64_t iw = rw.begin; iw < rw.end; ++iw)
                  yrow[iw * p.stride[2] + off_w] += wv * xrow[iw];
              }
            }
          }
        }
      }
    }
    if (bias) {
      for (int64_t i = 0; i < out_plane; ++i) yp[i] += bias[m];
    }
    ApplyActivation(p.activation, yp, out_plane);
  }
}

template void Conv<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void Conv<double>(const ConvParams&, const double*, const double*, const double*,
                           double*);
template void ConvTranspose<float>(const ConvParams&, const float*, const float*, const float*,
                                   float*);
template void ConvTranspose<double>(const ConvParams&, const double*, const double*,
                                    const double*, double*);

}  // namespace wbs::kernels::ref

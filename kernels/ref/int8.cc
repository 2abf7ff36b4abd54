#include "kernels/ref/int8.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/ref/window.h"

namespace wbs::kernels::ref {
namespace {

template <typename TY>
inline TY Store(int32_t acc, int64_t c, const QuantOutput& o) {
  if constexpr (std::is_same_v<TY, float>) {
    return static_cast<float>(acc) * o.dequant_scale[c];
  } else {
    return static_cast<TY>(Requantize(acc, o.requant[c], o.zero_point, o.lo, o.hi));
  }
}

}  // namespace

// Same loop order as the f32 reference Conv (conv.cc): one weight tap at a
// time over whole output rows into an int32 plane, taps outside the input
// skipped (they would add w * (z_x - z_x) = 0). The sums are exact: the
// quantizer bounds |acc| < 2^31 (docs/int8.md).
template <typename TX, typename TY>
void QConv(const ConvParams& p, const TX* x, int32_t zx, const int8_t* w, const int32_t* bias,
           const QuantOutput& out, TY* y) {
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

#pragma omp parallel num_threads(p.num_threads) if (p.num_threads > 1)
  {
    std::vector<int32_t> acc(static_cast<size_t>(out_plane));
#pragma omp for schedule(static)
    for (int64_t nm = 0; nm < planes; ++nm) {
      const int64_t n = nm / p.out_channels;
      const int64_t m = nm % p.out_channels;
      const int64_t g = m / mg_count;
      std::fill(acc.begin(), acc.end(), bias ? bias[m] : 0);
      for (int64_t cg = 0; cg < cg_count; ++cg) {
        const TX* xp = x + (n * p.in_channels + g * cg_count + cg) * in_plane;
        const int8_t* wp = w + (m * cg_count + cg) * k_size;
        for (int64_t kd = 0; kd < KD; ++kd) {
          const int64_t off_d = kd * p.dilation[0] - p.pad_begin[0];
          for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t off_h = kh * p.dilation[1] - p.pad_begin[1];
            for (int64_t kw = 0; kw < KW; ++kw) {
              const int64_t off_w = kw * p.dilation[2] - p.pad_begin[2];
              const int32_t wv = wp[(kd * KH + kh) * KW + kw];
              if (wv == 0) continue;  // adds 0 exactly (zero blocks)
              const Range rw = ValidRange(OW, p.stride[2], off_w, IW);
              for (int64_t od = 0; od < OD; ++od) {
                const int64_t id = od * p.stride[0] + off_d;
                if (id < 0 || id >= ID) continue;
                for (int64_t oh = 0; oh < OH; ++oh) {
                  const int64_t ih = oh * p.stride[1] + off_h;
                  if (ih < 0 || ih >= IH) continue;
                  const TX* xrow = xp + (id * IH + ih) * IW;
                  int32_t* arow = acc.data() + (od * OH + oh) * OW;
                  for (int64_t ow = rw.begin; ow < rw.end; ++ow)
                    arow[ow] += wv * (static_cast<int32_t>(xrow[ow * p.stride[2] + off_w]) - zx);
                }
              }
            }
          }
        }
      }
      TY* yp = y + nm * out_plane;
      for (int64_t i = 0; i < out_plane; ++i) yp[i] = Store<TY>(acc[i], m, out);
    }
  }
}

template <typename TX, typename TY>
void QGemm(int64_t m, int64_t n, int64_t k, const TX* x, int32_t zx, const int8_t* w,
           const int32_t* bias, const QuantOutput& out, TY* y, int num_threads) {
#pragma omp parallel for num_threads(num_threads) if (num_threads > 1) schedule(static)
  for (int64_t i = 0; i < m; ++i) {
    const TX* xr = x + i * k;
    for (int64_t j = 0; j < n; ++j) {
      const int8_t* wr = w + j * k;
      int32_t acc = bias ? bias[j] : 0;
      for (int64_t t = 0; t < k; ++t) acc += static_cast<int32_t>(wr[t]) * (xr[t] - zx);
      y[i * n + j] = Store<TY>(acc, j, out);
    }
  }
}

template <typename T>
void QAveragePool(const PoolParams& p, const T* x, int32_t zp, T* y) {
  const int64_t ID = p.in[0], IH = p.in[1], IW = p.in[2];
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2];
  const int64_t in_plane = ID * IH * IW, out_plane = OD * OH * OW;
  constexpr int32_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t plane = 0; plane < p.batch * p.channels; ++plane) {
    const T* xp = x + plane * in_plane;
    T* yp = y + plane * out_plane;
    for (int64_t od = 0; od < OD; ++od)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t sum = 0, count = 0;
          const int64_t o[3] = {od, oh, ow};
          for (int64_t kd = 0; kd < p.kernel[0]; ++kd)
            for (int64_t kh = 0; kh < p.kernel[1]; ++kh)
              for (int64_t kw = 0; kw < p.kernel[2]; ++kw) {
                const int64_t k[3] = {kd, kh, kw};
                int64_t pos[3];
                bool inside = true, counted = true;
                for (int d = 0; d < 3; ++d) {
                  pos[d] = o[d] * p.stride[d] - p.pad_begin[d] + k[d] * p.dilation[d];
                  inside = inside && pos[d] >= 0 && pos[d] < p.in[d];
                  counted = counted && pos[d] >= -p.pad_begin[d] && pos[d] < p.in[d] + p.pad_end[d];
                }
                if (inside) {
                  sum += static_cast<int32_t>(xp[(pos[0] * IH + pos[1]) * IW + pos[2]]) - zp;
                  ++count;
                } else if (p.count_include_pad && counted) {
                  ++count;  // a padded tap is z_p: adds 0, counts 1
                }
              }
          const int64_t v = count == 0 ? zp : zp + RoundDivHalfUp(sum, count);
          yp[(od * OH + oh) * OW + ow] = static_cast<T>(std::clamp<int64_t>(v, lo, hi));
        }
  }
}

template <typename T>
void QGlobalAveragePool(int64_t planes, int64_t plane_size, const T* x, int32_t zp, T* y) {
  constexpr int32_t lo = std::numeric_limits<T>::min(), hi = std::numeric_limits<T>::max();
  for (int64_t i = 0; i < planes; ++i) {
    int64_t sum = 0;
    const T* xp = x + i * plane_size;
    for (int64_t j = 0; j < plane_size; ++j) sum += static_cast<int32_t>(xp[j]) - zp;
    const int64_t v = plane_size == 0 ? zp : zp + RoundDivHalfUp(sum, plane_size);
    y[i] = static_cast<T>(std::clamp<int64_t>(v, lo, hi));
  }
}

template <typename TX, typename TY>
void QRescale(int64_t n, const TX* x, int32_t zx, Requant r, int32_t zy, int32_t lo, int32_t hi,
              TY* y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<TY>(Requantize(static_cast<int32_t>(x[i]) - zx, r, zy, lo, hi));
}

#define WBS_INT8_CONV(TX, TY)                                                                  \
  template void QConv<TX, TY>(const ConvParams&, const TX*, int32_t, const int8_t*,            \
                              const int32_t*, const QuantOutput&, TY*);                        \
  template void QGemm<TX, TY>(int64_t, int64_t, int64_t, const TX*, int32_t, const int8_t*,    \
                              const int32_t*, const QuantOutput&, TY*, int);                   \
  template void QRescale<TX, TY>(int64_t, const TX*, int32_t, Requant, int32_t, int32_t,       \
                                 int32_t, TY*);
WBS_INT8_CONV(uint8_t, uint8_t)
WBS_INT8_CONV(uint8_t, int8_t)
WBS_INT8_CONV(int8_t, uint8_t)
WBS_INT8_CONV(int8_t, int8_t)
template void QConv<uint8_t, float>(const ConvParams&, const uint8_t*, int32_t, const int8_t*,
                                    const int32_t*, const QuantOutput&, float*);
template void QConv<int8_t, float>(const ConvParams&, const int8_t*, int32_t, const int8_t*,
                                   const int32_t*, const QuantOutput&, float*);
template void QGemm<uint8_t, float>(int64_t, int64_t, int64_t, const uint8_t*, int32_t,
                                    const int8_t*, const int32_t*, const QuantOutput&, float*, int);
template void QGemm<int8_t, float>(int64_t, int64_t, int64_t, const int8_t*, int32_t,
                                   const int8_t*, const int32_t*, const QuantOutput&, float*, int);
#undef WBS_INT8_CONV
template void QAveragePool<uint8_t>(const PoolParams&, const uint8_t*, int32_t, uint8_t*);
template void QAveragePool<int8_t>(const PoolParams&, const int8_t*, int32_t, int8_t*);
template void QGlobalAveragePool<uint8_t>(int64_t, int64_t, const uint8_t*, int32_t, uint8_t*);
template void QGlobalAveragePool<int8_t>(int64_t, int64_t, const int8_t*, int32_t, int8_t*);

}  // namespace wbs::kernels::ref

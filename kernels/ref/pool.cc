#include "kernels/ref/pool.h"

#include <limits>

#include "kernels/ref/window.h"

namespace wbs::kernels::ref {

namespace {

// The kernel taps of one output position, per spatial dim, whose input
// position lies inside [0, in).
struct Taps {
  std::array<Range, kMaxConvSpatialRank> k;
  std::array<int64_t, kMaxConvSpatialRank> origin;  // input position of tap 0
};

Taps TapsAt(const PoolParams& p, int64_t od, int64_t oh, int64_t ow) {
  Taps t;
  const int64_t o[kMaxConvSpatialRank] = {od, oh, ow};
  for (int i = 0; i < kMaxConvSpatialRank; ++i) {
    t.origin[i] = o[i] * p.stride[i] - p.pad_begin[i];
    t.k[i] = ValidRange(p.kernel[i], p.dilation[i], t.origin[i], p.in[i]);
  }
  return t;
}

}  // namespace

template <typename T>
void MaxPool(const PoolParams& p, const T* x, T* y, int64_t* indices) {
  const int64_t ID = p.in[0], IH = p.in[1], IW = p.in[2];
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2];
  const int64_t in_plane = ID * IH * IW;
  const int64_t out_plane = OD * OH * OW;
  const int64_t planes = p.batch * p.channels;
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* xp = x + nc * in_plane;
    int64_t o = nc * out_plane;
    for (int64_t od = 0; od < OD; ++od) {
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t ow = 0; ow < OW; ++ow, ++o) {
          const Taps t = TapsAt(p, od, oh, ow);
          T best = std::numeric_limits<T>::lowest();
          int64_t best_d = -1, best_h = -1, best_w = -1;
          for (int64_t kd = t.k[0].begin; kd < t.k[0].end; ++kd) {
            const int64_t id = t.origin[0] + kd * p.dilation[0];
            for (int64_t kh = t.k[1].begin; kh < t.k[1].end; ++kh) {
              const int64_t ih = t.origin[1] + kh * p.dilation[1];
              for (int64_t kw = t.k[2].begin; kw < t.k[2].end; ++kw) {
                const int64_t iw = t.origin[2] + kw * p.dilation[2];
                const T v = xp[(id * IH + ih) * IW + iw];
                if (best_d < 0 || v > best) {
                  best = v;
                  best_d = id;
                  best_h = ih;
                  best_w = iw;
                }
              }
            }
          }
          y[o] = best;
          if (indices) {
            if (best_d < 0) {
              indices[o] = -1;
            } else {
              const int64_t spatial = p.column_major_indices
                                          ? best_d + best_h * ID + best_w * ID * IH
                                          : (best_d * IH + best_h) * IW + best_w;
              indices[o] = nc * in_plane + spatial;
            }
          }
        }
      }
    }
  }
}

template <typename T>
void AveragePool(const PoolParams& p, const T* x, T* y) {
  const int64_t ID = p.in[0], IH = p.in[1], IW = p.in[2];
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2];
  const int64_t in_plane = ID * IH * IW;
  const int64_t out_plane = OD * OH * OW;
  const int64_t planes = p.batch * p.channels;
#pragma omp parallel for num_threads(p.num_threads) if (p.num_threads > 1) schedule(static)
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* xp = x + nc * in_plane;
    int64_t o = nc * out_plane;
    for (int64_t od = 0; od < OD; ++od) {
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t ow = 0; ow < OW; ++ow, ++o) {
          const Taps t = TapsAt(p, od, oh, ow);
          T sum = T(0);
          for (int64_t kd = t.k[0].begin; kd < t.k[0].end; ++kd) {
            const int64_t id = t.origin[0] + kd * p.dilation[0];
            for (int64_t kh = t.k[1].begin; kh < t.k[1].end; ++kh) {
              const int64_t ih = t.origin[1] + kh * p.dilation[1];
              for (int64_t kw = t.k[2].begin; kw < t.k[2].end; ++kw) {
                sum += xp[(id * IH + ih) * IW + t.origin[2] + kw * p.dilation[2]];
              }
            }
          }
          int64_t count = 1;
          for (int i = 0; i < kMaxConvSpatialRank; ++i) {
            if (p.count_include_pad) {
              // Taps inside the padded extent [-pb, in + pe).
              const Range r = ValidRange(p.kernel[i], p.dilation[i],
                                         t.origin[i] + p.pad_begin[i],
                                         p.in[i] + p.pad_begin[i] + p.pad_end[i]);
              count *= r.end - r.begin;
            } else {
              count *= t.k[i].end - t.k[i].begin;
            }
          }
          y[o] = count > 0 ? sum / static_cast<T>(count) : T(0);
        }
      }
    }
  }
}

template <typename T>
void GlobalAveragePool(int64_t planes, int64_t plane_size, const T* x, T* y, int num_threads) {
#pragma omp parallel for num_threads(num_threads) if (num_threads > 1) schedule(static)
  for (int64_t i = 0; i < planes; ++i) {
    const T* xp = x + i * plane_size;
    T sum = T(0);
    for (int64_t j = 0; j < plane_size; ++j) sum += xp[j];
    y[i] = sum / static_cast<T>(plane_size);
  }
}

template <typename T>
void GlobalMaxPool(int64_t planes, int64_t plane_size, const T* x, T* y, int num_threads) {
#pragma omp parallel for num_threads(num_threads) if (num_threads > 1) schedule(static)
  for (int64_t i = 0; i < planes; ++i) {
    const T* xp = x + i * plane_size;
    T best = xp[0];
    for (int64_t j = 1; j < plane_size; ++j) best = xp[j] > best ? xp[j] : best;
    y[i] = best;
  }
}

#define WBS_REF_POOL_INSTANTIATE(T)                                            \
  template void MaxPool<T>(const PoolParams&, const T*, T*, int64_t*);       \
  template void AveragePool<T>(const PoolParams&, const T*, T*);             \
  template void GlobalAveragePool<T>(int64_t, int64_t, const T*, T*, int);   \
  template void GlobalMaxPool<T>(int64_t, int64_t, const T*, T*, int);
WBS_REF_POOL_INSTANTIATE(float)
WBS_REF_POOL_INSTANTIATE(double)
#undef WBS_REF_POOL_INSTANTIATE
template void MaxPool<int8_t>(const PoolParams&, const int8_t*, int8_t*, int64_t*);
template void MaxPool<uint8_t>(const PoolParams&, const uint8_t*, uint8_t*, int64_t*);

}  // namespace wbs::kernels::ref

// Reference pooling kernels (ONNX MaxPool, AveragePool, GlobalAveragePool,
// GlobalMaxPool). Layout x [N, C, D, H, W] -> y [N, C, D', H', W']; 1-D and
// 2-D pools use leading spatial dims of size 1, as in conv.h.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/ref/conv.h"

namespace wbs::kernels::ref {

struct PoolParams {
  int64_t batch = 1;
  int64_t channels = 1;
  std::array<int64_t, kMaxConvSpatialRank> in{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> out{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> kernel{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> stride{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> dilation{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> pad_begin{0, 0, 0};
  // Declared trailing pads (not the ceil_mode extension): the region that
  // count_include_pad counts.
  std::array<int64_t, kMaxConvSpatialRank> pad_end{0, 0, 0};
  bool count_include_pad = false;  // AveragePool
  bool column_major_indices = false;  // MaxPool storage_order = 1
  int num_threads = 1;  // > 1: parallel over (batch, channel)
};

// y[n,c,o] = max over taps k with an in-range input position
// o*s - pb + k*d of x[n,c,pos] (padding never wins; the first maximum
// wins ties). If `indices` is not null it receives the flat index of that
// element in x: (n*C + c) * in_plane + the spatial offset, row-major, or
// column-major over the spatial dims when column_major_indices. A window
// with no in-range tap yields the lowest T and index -1.
template <typename T>
void MaxPool(const PoolParams& p, const T* x, T* y, int64_t* indices);

// y[n,c,o] = sum of in-range taps / divisor, where the divisor counts the
// in-range taps, or with count_include_pad the taps inside
// [-pad_begin, in + pad_end) (taps beyond that, from ceil_mode, never
// count). A window with divisor 0 yields 0.
template <typename T>
void AveragePool(const PoolParams& p, const T* x, T* y);

// Per plane of `plane_size` elements (planes = N * C): mean or max.
template <typename T>
void GlobalAveragePool(int64_t planes, int64_t plane_size, const T* x, T* y, int num_threads);
template <typename T>
void GlobalMaxPool(int64_t planes, int64_t plane_size, const T* x, T* y, int num_threads);

#define WBS_REF_POOL_EXTERN(T)                                                              \
  extern template void MaxPool<T>(const PoolParams&, const T*, T*, int64_t*);             \
  extern template void AveragePool<T>(const PoolParams&, const T*, T*);                   \
  extern template void GlobalAveragePool<T>(int64_t, int64_t, const T*, T*, int);         \
  extern template void GlobalMaxPool<T>(int64_t, int64_t, const T*, T*, int);
WBS_REF_POOL_EXTERN(float)
WBS_REF_POOL_EXTERN(double)
#undef WBS_REF_POOL_EXTERN
// MaxPool also takes 8-bit integers (ONNX opset >= 12).
extern template void MaxPool<int8_t>(const PoolParams&, const int8_t*, int8_t*, int64_t*);
extern template void MaxPool<uint8_t>(const PoolParams&, const uint8_t*, uint8_t*, int64_t*);

}  // namespace wbs::kernels::ref

// Reference (naive, direct-formula) convolution and transposed convolution,
// the ground truth every fast conv kernel is tested against.
//
// Layouts are ONNX: x [N, C, D, H, W], y [N, M, D', H', W'] (row-major).
// 1-D and 2-D convolutions are 3-D ones with leading spatial dims of size 1
// (kernel 1, stride 1, pad 0), so one loop nest serves every rank.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/ref/activation.h"

namespace wbs::kernels::ref {

inline constexpr int kMaxConvSpatialRank = 3;

struct ConvParams {
  int64_t batch = 1;
  int64_t in_channels = 1;   // C (all groups)
  int64_t out_channels = 1;  // M (all groups)
  int64_t group = 1;         // C and M are multiples of group
  // Spatial dims, outermost first, padded to 3 with leading 1s (pads 0).
  std::array<int64_t, kMaxConvSpatialRank> in{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> out{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> kernel{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> stride{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> dilation{1, 1, 1};
  std::array<int64_t, kMaxConvSpatialRank> pad_begin{0, 0, 0};
  // Not read by the reference kernels (`out` already encodes it); for
  // libraries that take explicit trailing pads. May be negative for
  // ConvTranspose (see ir/conv_geometry.h).
  std::array<int64_t, kMaxConvSpatialRank> pad_end{0, 0, 0};
  int spatial_rank = 2;   // of the ONNX node (1..3); the arrays are padded regardless
  Activation activation;  // applied after the bias
  int num_threads = 1;    // > 1: parallel over (batch, output channel)
};

// Conv: w [M, C/group, kD, kH, kW], bias [M] or nullptr.
//   y[n,m,o] = act(bias[m] + sum_{c in group(m), k} x[n,c,o*s - pb + k*d] * w[m,c',k])
// with out-of-range input positions contributing 0.
template <typename T>
void Conv(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

// ConvTranspose (the adjoint of Conv for the same geometry with in/out
// swapped): x [N, C, in...], w [C, M/group, kD, kH, kW], bias [M] or nullptr.
//   y[n,m,j*s - pb + k*d] += x[n,c,j] * w[c,m',k]   for c in group(m)
// then y = act(y + bias[m]); positions outside y are dropped.
template <typename T>
void ConvTranspose(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

extern template void Conv<float>(const ConvParams&, const float*, const float*, const float*,
                                 float*);
extern template void Conv<double>(const ConvParams&, const double*, const double*,
                                  const double*, double*);
extern template void ConvTranspose<float>(const ConvParams&, const float*, const float*,
                                          const float*, float*);
extern template void ConvTranspose<double>(const ConvParams&, const double*, const double*,
                                           const double*, double*);

}  // namespace wbs::kernels::ref

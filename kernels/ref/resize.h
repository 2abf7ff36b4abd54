// Reference Resize (ONNX opsets 10..18, modes nearest and linear) as
// per-axis coordinate tables plus a gather (nearest, via GatherByAxisMaps in
// kernels/ref/tensor_ops.h) or an N-linear interpolation.
//
// Every axis is resampled independently: an output coordinate x maps to a
// source coordinate by the coordinate transformation mode, with `scale` the
// scale the model gave (or out_len / in_len when it gave sizes). As in the
// ONNX reference, the "resized length" in those formulas is in_len * scale,
// not the rounded output length (they differ when in_len * scale is not an
// integer, e.g. align_corners downsampling 4 -> 2 with scale 0.6).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace wbs::kernels::ref {

enum class CoordTransform : int32_t {
  kHalfPixel,         // (x + 0.5) / scale - 0.5
  kPytorchHalfPixel,  // like half_pixel, but 0 when the resized length <= 1
  kAlignCorners,      // x * (in_len - 1) / (resized length - 1), 0 when it is 1
  kAsymmetric,        // x / scale
  kTfHalfPixelForNn,  // (x + 0.5) / scale
};

enum class NearestMode : int32_t { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

double SourceCoordinate(CoordTransform t, int64_t x, int64_t in_len, double scale);

// For every output coordinate, the nearest source coordinate, clamped to
// [0, in_len). Precondition: in_len > 0.
std::vector<int64_t> NearestAxisMap(CoordTransform t, NearestMode m, int64_t in_len,
                                    int64_t out_len, double scale);

// Linear taps of one axis: output coordinate o reads
// (1 - w1[o]) * src[i0[o]] + w1[o] * src[i1[o]]; the source coordinate is
// clamped to [0, in_len - 1] (edge extension).
struct LinearTaps {
  std::vector<int64_t> i0, i1;
  std::vector<double> w1;
};
LinearTaps LinearAxisTaps(CoordTransform t, int64_t in_len, int64_t out_len, double scale);

// N-linear interpolation: every axis with some nonzero w1 is interpolated,
// the others gather i0. Computed in double; T is float or double.
template <typename T>
void ResizeLinear(const T* x, const Shape& x_shape, const std::vector<LinearTaps>& taps,
                  const Shape& y_shape, T* y);

}  // namespace wbs::kernels::ref

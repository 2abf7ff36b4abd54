#include "kernels/ref/resize.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace wbs::kernels::ref {

double SourceCoordinate(CoordTransform t, int64_t x, int64_t in_len, double scale) {
  const double xd = static_cast<double>(x);
  const double resized = static_cast<double>(in_len) * scale;
  switch (t) {
    case CoordTransform::kHalfPixel:
      return (xd + 0.5) / scale - 0.5;
    case CoordTransform::kPytorchHalfPixel:
      return resized > 1.0 ? (xd + 0.5) / scale - 0.5 : 0.0;
    case CoordTransform::kAlignCorners:
      return resized == 1.0 ? 0.0 : xd * static_cast<double>(in_len - 1) / (resized - 1.0);
    case CoordTransform::kAsymmetric:
      return xd / scale;
    case CoordTransform::kTfHalfPixelForNn:
      return (xd + 0.5) / scale;
  }
  return 0.0;
}

std::vector<int64_t> NearestAxisMap(CoordTransform t, NearestMode m, int64_t in_len,
                                    int64_t out_len, double scale) {
  assert(in_len > 0);
  std::vector<int64_t> map(static_cast<size_t>(out_len));
  for (int64_t o = 0; o < out_len; ++o) {
    const double s = SourceCoordinate(t, o, in_len, scale);
    const double f = std::floor(s);
    double r = 0.0;
    switch (m) {
      case NearestMode::kRoundPreferFloor:
        r = s == f + 0.5 ? f : std::round(s);
        break;
      case NearestMode::kRoundPreferCeil:
        r = s == f + 0.5 ? f + 1.0 : std::round(s);
        break;
      case NearestMode::kFloor:
        r = f;
        break;
      case NearestMode::kCeil:
        r = std::ceil(s);
        break;
    }
    r = std::clamp(r, 0.0, static_cast<double>(in_len - 1));
    map[o] = static_cast<int64_t>(r);
  }
  return map;
}

LinearTaps LinearAxisTaps(CoordTransform t, int64_t in_len, int64_t out_len, double scale) {
  assert(in_len > 0);
  LinearTaps taps;
  taps.i0.resize(static_cast<size_t>(out_len));
  taps.i1.resize(static_cast<size_t>(out_len));
  taps.w1.resize(static_cast<size_t>(out_len));
  for (int64_t o = 0; o < out_len; ++o) {
    double s = SourceCoordinate(t, o, in_len, scale);
    s = std::clamp(s, 0.0, static_cast<double>(in_len - 1));
    const int64_t i0 = static_cast<int64_t>(std::floor(s));
    taps.i0[o] = i0;
    taps.i1[o] = std::min(i0 + 1, in_len - 1);
    taps.w1[o] = s - static_cast<double>(i0);
  }
  return taps;
}

template <typename T>
void ResizeLinear(const T* x, const Shape& xs, const std::vector<LinearTaps>& taps, const Shape& ys,
                  T* y) {
  const int r = static_cast<int>(ys.size());
  assert(static_cast<int>(taps.size()) == r && static_cast<int>(xs.size()) == r);
  const int64_t n = NumElements(ys);
  if (n == 0) return;
  const std::vector<int64_t> st = StridesOf(xs);
  std::vector<int> active;  // axes that interpolate somewhere
  for (int d = 0; d < r; ++d) {
    if (std::any_of(taps[d].w1.begin(), taps[d].w1.end(), [](double w) { return w != 0.0; }))
      active.push_back(d);
  }
  const int k = static_cast<int>(active.size());
  std::vector<int64_t> idx(r, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t base = 0;
    for (int d = 0; d < r; ++d) base += taps[d].i0[idx[d]] * st[d];
    double acc = 0.0;
    for (int c = 0; c < (1 << k); ++c) {
      int64_t off = base;
      double w = 1.0;
      for (int j = 0; j < k; ++j) {
        const int d = active[j];
        const int64_t o = idx[d];
        if ((c >> j) & 1) {
          off += (taps[d].i1[o] - taps[d].i0[o]) * st[d];
          w *= taps[d].w1[o];
        } else {
          w *= 1.0 - taps[d].w1[o];
        }
      }
      if (w != 0.0) acc += w * static_cast<double>(x[off]);
    }
    y[i] = static_cast<T>(acc);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
}

template void ResizeLinear<float>(const float*, const Shape&, const std::vector<LinearTaps>&,
                                  const Shape&, float*);
template void ResizeLinear<double>(const double*, const Shape&, const std::vector<LinearTaps>&,
                                   const Shape&, double*);

}  // namespace wbs::kernels::ref

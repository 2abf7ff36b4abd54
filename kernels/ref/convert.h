// Element conversion with ONNX Cast semantics and no undefined behaviour,
// shared by the reference kernels.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

namespace wbs::kernels::ref {

// To bool is s != 0; float to integer truncates toward zero, saturates at
// the target's range and maps NaN to 0; everything else is a C++ cast
// (integer narrowing wraps).
template <typename D, typename S>
D ConvertValue(S s) {
  if constexpr (std::is_same_v<D, bool>) {
    return s != S(0);
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(s)) return D(0);
    constexpr D lo = std::numeric_limits<D>::lowest(), hi = std::numeric_limits<D>::max();
    if (!(s > static_cast<S>(lo))) return lo;
    if (!(s < static_cast<S>(hi))) return hi;
    return static_cast<D>(s);
  } else {
    return static_cast<D>(s);
  }
}

}  // namespace wbs::kernels::ref

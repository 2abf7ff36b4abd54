#include "kernels/ref/reduce.h"

#include <cassert>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/ref/broadcast.h"
#include "kernels/ref/convert.h"

namespace wbs::kernels::ref {

namespace {

// Calls f(y_offset, x_value) for every element of x, where y_offset is the
// element's position in the reduced output.
template <typename T, typename F>
void Walk(const T* x, const Shape& x_shape, const Shape& kept_shape, F&& f) {
  const BroadcastLoop loop = MakeBroadcastLoop(x_shape, {&kept_shape});
  ForEachRow(loop,
             [&](const BroadcastLoop::Strides& off, int64_t n, const BroadcastLoop::Strides& st) {
               const T* px = x + off[0];
               for (int64_t j = 0; j < n; ++j) f(off[1] + j * st[1], px[j * st[0]]);
             });
}

template <typename T>
bool IsNaN(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

template <typename T>
void MaxMin(bool is_max, const T* x, const Shape& xs, const Shape& ks, T* y) {
  const int64_t n = NumElements(ks);
  const T init = is_max
                     ? (std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                             : std::numeric_limits<T>::lowest())
                     : (std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity()
                                                             : std::numeric_limits<T>::max());
  for (int64_t i = 0; i < n; ++i) y[i] = init;
  // Once an accumulator is NaN no comparison replaces it.
  if (is_max) {
    Walk(x, xs, ks, [&](int64_t o, T v) {
      if (v > y[o] || IsNaN(v)) y[o] = v;
    });
  } else {
    Walk(x, xs, ks, [&](int64_t o, T v) {
      if (v < y[o] || IsNaN(v)) y[o] = v;
    });
  }
}

// Sums in double: every op except Max/Min on floats, and the ops that
// involve exp/log/sqrt on integers.
template <typename T>
void SumLikeDouble(ReduceOp op, const T* x, const Shape& xs, const Shape& ks, int64_t count, T* y) {
  const int64_t n = NumElements(ks);
  std::vector<double> acc(static_cast<size_t>(n), op == ReduceOp::kProd ? 1.0 : 0.0);
  std::vector<double> shift;
  if (op == ReduceOp::kLogSumExp) {
    // Subtract the per-output maximum so exp() cannot overflow.
    std::vector<T> mx(static_cast<size_t>(n));
    MaxMin(true, x, xs, ks, mx.data());
    shift.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) shift[i] = std::isfinite(double(mx[i])) ? double(mx[i]) : 0.0;
  }
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kMean:
    case ReduceOp::kLogSum:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] += double(v); });
      break;
    case ReduceOp::kProd:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] *= double(v); });
      break;
    case ReduceOp::kL1:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] += std::abs(double(v)); });
      break;
    case ReduceOp::kL2:
    case ReduceOp::kSumSquare:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] += double(v) * double(v); });
      break;
    case ReduceOp::kLogSumExp:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] += std::exp(double(v) - shift[o]); });
      break;
    default:
      assert(false && "not a sum-like reduction");
  }
  for (int64_t i = 0; i < n; ++i) {
    double r = acc[i];
    switch (op) {
      case ReduceOp::kMean:
        r /= static_cast<double>(count);
        break;
      case ReduceOp::kL2:
        r = std::sqrt(r);
        break;
      case ReduceOp::kLogSum:
        r = std::log(r);
        break;
      case ReduceOp::kLogSumExp:
        r = std::log(r) + shift[i];
        break;
      default:
        break;
    }
    y[i] = ConvertValue<T>(r);
  }
}

// Integer sums and products wrap in 64 bits (two's complement).
template <typename T>
void SumLikeInt(ReduceOp op, const T* x, const Shape& xs, const Shape& ks, int64_t count, T* y) {
  const int64_t n = NumElements(ks);
  std::vector<uint64_t> acc(static_cast<size_t>(n), op == ReduceOp::kProd ? 1 : 0);
  auto u = [](T v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); };
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kMean:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] += u(v); });
      break;
    case ReduceOp::kProd:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] *= u(v); });
      break;
    case ReduceOp::kL1:
      Walk(x, xs, ks, [&](int64_t o, T v) {
        if constexpr (std::is_signed_v<T>) {
          if (v < T(0)) {
            acc[o] -= u(v);
            return;
          }
        }
        acc[o] += u(v);
      });
      break;
    case ReduceOp::kSumSquare:
      Walk(x, xs, ks, [&](int64_t o, T v) { acc[o] += u(v) * u(v); });
      break;
    default:
      assert(false && "not an integer sum-like reduction");
  }
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_signed_v<T>) {
      int64_t r = static_cast<int64_t>(acc[i]);
      if (op == ReduceOp::kMean && count > 0) r /= count;
      y[i] = static_cast<T>(r);
    } else {
      uint64_t r = acc[i];
      if (op == ReduceOp::kMean && count > 0) r /= static_cast<uint64_t>(count);
      y[i] = static_cast<T>(r);
    }
  }
}

}  // namespace

template <typename T>
void Reduce(ReduceOp op, const T* x, const Shape& xs, const std::vector<bool>& reduce_axis, T* y) {
  assert(reduce_axis.size() == xs.size());
  Shape ks = xs;
  int64_t count = 1;
  for (size_t d = 0; d < xs.size(); ++d) {
    if (reduce_axis[d]) {
      count *= xs[d];
      ks[d] = 1;
    }
  }
  if (op == ReduceOp::kMax || op == ReduceOp::kMin)
    return MaxMin(op == ReduceOp::kMax, x, xs, ks, y);
  const bool int_exact = std::is_integral_v<T> && op != ReduceOp::kL2 && op != ReduceOp::kLogSum &&
                         op != ReduceOp::kLogSumExp;
  if constexpr (std::is_integral_v<T>) {
    if (int_exact) return SumLikeInt(op, x, xs, ks, count, y);
  }
  SumLikeDouble(op, x, xs, ks, count, y);
}

template <typename T>
void ArgReduce(bool is_max, bool select_last, const T* x, const Shape& xs, int axis, int64_t* y) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= xs[d];
  for (size_t d = axis + 1; d < xs.size(); ++d) inner *= xs[d];
  const int64_t len = xs[axis];
  assert(len > 0);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* p = x + o * len * inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < len; ++k) {
        const T v = p[k * inner], b = p[best * inner];
        const bool better =
            is_max ? (select_last ? v >= b : v > b) : (select_last ? v <= b : v < b);
        if (better) best = k;
      }
      y[o * inner + i] = best;
    }
  }
}

#define WBS_INSTANTIATE(T)                                                                 \
  template void Reduce<T>(ReduceOp, const T*, const Shape&, const std::vector<bool>&, T*); \
  template void ArgReduce<T>(bool, bool, const T*, const Shape&, int, int64_t*);
WBS_INSTANTIATE(float)
WBS_INSTANTIATE(double)
WBS_INSTANTIATE(int8_t)
WBS_INSTANTIATE(uint8_t)
WBS_INSTANTIATE(int16_t)
WBS_INSTANTIATE(uint16_t)
WBS_INSTANTIATE(int32_t)
WBS_INSTANTIATE(uint32_t)
WBS_INSTANTIATE(int64_t)
WBS_INSTANTIATE(uint64_t)
#undef WBS_INSTANTIATE

}  // namespace wbs::kernels::ref

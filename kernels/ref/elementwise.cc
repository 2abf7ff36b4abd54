#include "kernels/ref/elementwise.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/ref/activation.h"
#include "kernels/ref/broadcast.h"
#include "kernels/ref/convert.h"

namespace wbs::kernels::ref {

namespace {

// Integer arithmetic wraps (two's complement) instead of being undefined on
// overflow: computed in an unsigned type at least as wide as int, so that
// small types do not promote to a signed int that could overflow.
template <typename T>
using WrapType =
    std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;

template <typename T>
T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapType<T>>(a) + static_cast<WrapType<T>>(b));
  else
    return a + b;
}
template <typename T>
T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapType<T>>(a) - static_cast<WrapType<T>>(b));
  else
    return a - b;
}
template <typename T>
T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<T>(static_cast<WrapType<T>>(a) * static_cast<WrapType<T>>(b));
  else
    return a * b;
}
template <typename T>
T WrapNeg(T a) {
  return WrapSub(T(0), a);
}

template <typename T>
constexpr bool kHasSign = std::is_signed_v<T> || std::is_floating_point_v<T>;

template <typename T>
bool IsNegative(T v) {
  if constexpr (kHasSign<T>)
    return v < T(0);
  else
    return false;
}

template <typename T, typename F>
void Map(const T* x, T* y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// The fused-activation ops go through Activate() so a fused graph and the
// unfused one compute bit-identical results (kernels/ref/activation.h).
template <typename T>
void Act(ActivationKind kind, float alpha, float beta, const T* x, T* y, int64_t n) {
  Activation a;
  a.kind = kind;
  a.alpha = alpha;
  a.beta = beta;
  if (x != y) std::copy(x, x + n, y);
  ApplyActivation(a, y, n);
}

template <typename T>
void UnaryFloat(UnaryOp op, const UnaryParams& p, const T* x, T* y, int64_t n) {
  const T alpha = static_cast<T>(p.alpha), gamma = static_cast<T>(p.gamma);
  switch (op) {
    case UnaryOp::kLeakyRelu:
      return Act(ActivationKind::kLeakyRelu, p.alpha, 0.0f, x, y, n);
    case UnaryOp::kSigmoid:
      return Act(ActivationKind::kSigmoid, 0.0f, 0.0f, x, y, n);
    case UnaryOp::kHardSigmoid:
      return Act(ActivationKind::kHardSigmoid, p.alpha, p.beta, x, y, n);
    case UnaryOp::kTanh:
      return Act(ActivationKind::kTanh, 0.0f, 0.0f, x, y, n);
    case UnaryOp::kExp:
      return Map(x, y, n, [](T v) { return std::exp(v); });
    case UnaryOp::kLog:
      return Map(x, y, n, [](T v) { return std::log(v); });
    case UnaryOp::kSqrt:
      return Map(x, y, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::kReciprocal:
      return Map(x, y, n, [](T v) { return T(1) / v; });
    case UnaryOp::kCeil:
      return Map(x, y, n, [](T v) { return std::ceil(v); });
    case UnaryOp::kFloor:
      return Map(x, y, n, [](T v) { return std::floor(v); });
    case UnaryOp::kRound:
      return Map(x, y, n, [](T v) { return std::nearbyint(v); });
    case UnaryOp::kErf:
      return Map(x, y, n, [](T v) { return std::erf(v); });
    case UnaryOp::kSin:
      return Map(x, y, n, [](T v) { return std::sin(v); });
    case UnaryOp::kCos:
      return Map(x, y, n, [](T v) { return std::cos(v); });
    case UnaryOp::kTan:
      return Map(x, y, n, [](T v) { return std::tan(v); });
    case UnaryOp::kAsin:
      return Map(x, y, n, [](T v) { return std::asin(v); });
    case UnaryOp::kAcos:
      return Map(x, y, n, [](T v) { return std::acos(v); });
    case UnaryOp::kAtan:
      return Map(x, y, n, [](T v) { return std::atan(v); });
    case UnaryOp::kSinh:
      return Map(x, y, n, [](T v) { return std::sinh(v); });
    case UnaryOp::kCosh:
      return Map(x, y, n, [](T v) { return std::cosh(v); });
    case UnaryOp::kAsinh:
      return Map(x, y, n, [](T v) { return std::asinh(v); });
    case UnaryOp::kAcosh:
      return Map(x, y, n, [](T v) { return std::acosh(v); });
    case UnaryOp::kAtanh:
      return Map(x, y, n, [](T v) { return std::atanh(v); });
    case UnaryOp::kElu:
      return Map(x, y, n, [=](T v) { return v < T(0) ? alpha * (std::exp(v) - T(1)) : v; });
    case UnaryOp::kSelu:
      return Map(x, y, n,
                 [=](T v) { return v > T(0) ? gamma * v : gamma * (alpha * std::exp(v) - alpha); });
    case UnaryOp::kCelu:
      return Map(x, y, n, [=](T v) {
        return std::max(T(0), v) + std::min(T(0), alpha * (std::exp(v / alpha) - T(1)));
      });
    case UnaryOp::kSoftplus:
      return Map(x, y, n, [](T v) { return std::log(std::exp(v) + T(1)); });
    case UnaryOp::kSoftsign:
      return Map(x, y, n, [](T v) { return v / (T(1) + std::abs(v)); });
    case UnaryOp::kThresholdedRelu:
      return Map(x, y, n, [=](T v) { return v > alpha ? v : T(0); });
    case UnaryOp::kHardSwish:
      return Map(x, y, n,
                 [](T v) { return v * std::max(T(0), std::min(T(1), v / T(6) + T(0.5))); });
    default:
      assert(false && "not a float unary op");
  }
}

}  // namespace

bool UnaryOpAcceptsIntegers(UnaryOp op) { return op < UnaryOp::kLeakyRelu; }

template <typename T>
void Unary(UnaryOp op, const UnaryParams& p, const T* x, T* y, int64_t n) {
  switch (op) {
    case UnaryOp::kNeg:
      return Map(x, y, n, [](T v) { return WrapNeg(v); });
    case UnaryOp::kAbs:
      return Map(x, y, n, [](T v) { return IsNegative(v) ? WrapNeg(v) : v; });
    case UnaryOp::kSign:
      return Map(x, y, n, [](T v) { return v > T(0) ? T(1) : IsNegative(v) ? WrapNeg(T(1)) : v; });
    case UnaryOp::kRelu:
      return Map(x, y, n, [](T v) { return IsNegative(v) ? T(0) : v; });
    case UnaryOp::kShrink: {
      const double lambd = p.alpha, bias = p.beta;
      return Map(x, y, n, [=](T v) {
        const double d = static_cast<double>(v);
        if (d < -lambd) return static_cast<T>(d + bias);
        if (d > lambd) return static_cast<T>(d - bias);
        return T(0);
      });
    }
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    UnaryFloat(op, p, x, y, n);
  } else {
    assert(false && "float-only unary op on an integer type");
  }
}

template <typename T>
void Clip(const T* x, T* y, int64_t n, T lo, T hi) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], lo), hi);
}

namespace {

template <typename T>
T Div(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == T(0)) return T(0);
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return WrapNeg(a);  // INT_MIN / -1 traps on x86
    }
    return static_cast<T>(a / b);
  } else {
    return a / b;
  }
}

template <typename T>
T Fmod(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == T(0)) return T(0);
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return T(0);
    }
    return static_cast<T>(a % b);
  } else {
    return std::fmod(a, b);
  }
}

template <typename T>
T Mod(T a, T b) {
  T r = Fmod(a, b);
  if constexpr (kHasSign<T>) {
    if (r != T(0) && ((r < T(0)) != (b < T(0)))) r = static_cast<T>(r + b);
  }
  return r;
}

template <typename T>
bool IsNaNValue(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(v);
  else
    return false;
}

}  // namespace

template <typename T>
void Binary(BinaryOp op, const T* a, const Shape& as, const T* b, const Shape& bs, T* out,
            const Shape& os) {
  switch (op) {
    case BinaryOp::kAdd:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return WrapAdd(x, y); });
    case BinaryOp::kSub:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return WrapSub(x, y); });
    case BinaryOp::kMul:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return WrapMul(x, y); });
    case BinaryOp::kDiv:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return Div(x, y); });
    case BinaryOp::kMod:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return Mod(x, y); });
    case BinaryOp::kFmod:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return Fmod(x, y); });
    case BinaryOp::kMax:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) {
        if (IsNaNValue(x) || IsNaNValue(y)) return IsNaNValue(x) ? x : y;
        return std::max(x, y);
      });
    case BinaryOp::kMin:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) {
        if (IsNaNValue(x) || IsNaNValue(y)) return IsNaNValue(x) ? x : y;
        return std::min(x, y);
      });
    case BinaryOp::kPRelu:
      return BroadcastBinary(a, as, b, bs, out, os,
                             [](T x, T y) { return IsNegative(x) ? WrapMul(x, y) : x; });
    case BinaryOp::kCount:
      break;
  }
  assert(false && "bad BinaryOp");
}

template <typename T>
void Pow(const T* a, const Shape& as, const double* b, const Shape& bs, T* out, const Shape& os) {
  BroadcastBinary(a, as, b, bs, out, os, [](T x, double y) {
    return ConvertValue<T>(std::pow(static_cast<double>(x), y));
  });
}

template <typename T>
void Compare(CompareOp op, const T* a, const Shape& as, const T* b, const Shape& bs, bool* out,
             const Shape& os) {
  switch (op) {
    case CompareOp::kEqual:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return x == y; });
    case CompareOp::kLess:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return x < y; });
    case CompareOp::kLessOrEqual:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return x <= y; });
    case CompareOp::kGreater:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return x > y; });
    case CompareOp::kGreaterOrEqual:
      return BroadcastBinary(a, as, b, bs, out, os, [](T x, T y) { return x >= y; });
    case CompareOp::kCount:
      break;
  }
  assert(false && "bad CompareOp");
}

void Logical(LogicalOp op, const bool* a, const Shape& as, const bool* b, const Shape& bs,
             bool* out, const Shape& os) {
  switch (op) {
    case LogicalOp::kAnd:
      return BroadcastBinary(a, as, b, bs, out, os, [](bool x, bool y) { return x && y; });
    case LogicalOp::kOr:
      return BroadcastBinary(a, as, b, bs, out, os, [](bool x, bool y) { return x || y; });
    case LogicalOp::kXor:
      return BroadcastBinary(a, as, b, bs, out, os, [](bool x, bool y) { return x != y; });
    case LogicalOp::kCount:
      break;
  }
  assert(false && "bad LogicalOp");
}

void Not(const bool* x, bool* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = !x[i];
}

namespace {
template <typename E>
void WhereTyped(const bool* c, const Shape& cs, const void* x, const Shape& xs, const void* y,
                const Shape& ys, void* out, const Shape& os) {
  BroadcastTernary(c, cs, static_cast<const E*>(x), xs, static_cast<const E*>(y), ys,
                   static_cast<E*>(out), os, [](bool cond, E a, E b) { return cond ? a : b; });
}
}  // namespace

void Where(const bool* c, const Shape& cs, const void* x, const Shape& xs, const void* y,
           const Shape& ys, void* out, const Shape& os, size_t elem_size) {
  switch (elem_size) {
    case 1:
      return WhereTyped<uint8_t>(c, cs, x, xs, y, ys, out, os);
    case 2:
      return WhereTyped<uint16_t>(c, cs, x, xs, y, ys, out, os);
    case 4:
      return WhereTyped<uint32_t>(c, cs, x, xs, y, ys, out, os);
    case 8:
      return WhereTyped<uint64_t>(c, cs, x, xs, y, ys, out, os);
    default:
      assert(false && "bad element size");
  }
}

template <typename T>
void IsNaN(const T* x, bool* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::isnan(x[i]);
}

template <typename T>
void IsInf(const T* x, bool* y, int64_t n, bool detect_negative, bool detect_positive) {
  for (int64_t i = 0; i < n; ++i)
    y[i] = std::isinf(x[i]) && (x[i] > T(0) ? detect_positive : detect_negative);
}

bool Convert(DType from, const void* x, DType to, void* y, int64_t n) {
  bool ok_to = false;
  const bool ok_from = VisitDType(from, [&]<typename S>() {
    const S* s = static_cast<const S*>(x);
    ok_to = VisitDType(to, [&]<typename D>() {
      D* d = static_cast<D*>(y);
      for (int64_t i = 0; i < n; ++i) d[i] = ConvertValue<D>(s[i]);
    });
  });
  return ok_from && ok_to;
}

#define WBS_INSTANTIATE_NUMERIC(T)                                                             \
  template void Unary<T>(UnaryOp, const UnaryParams&, const T*, T*, int64_t);                  \
  template void Clip<T>(const T*, T*, int64_t, T, T);                                          \
  template void Binary<T>(BinaryOp, const T*, const Shape&, const T*, const Shape&, T*,        \
                          const Shape&);                                                       \
  template void Pow<T>(const T*, const Shape&, const double*, const Shape&, T*, const Shape&); \
  template void Compare<T>(CompareOp, const T*, const Shape&, const T*, const Shape&, bool*,   \
                           const Shape&);
WBS_INSTANTIATE_NUMERIC(float)
WBS_INSTANTIATE_NUMERIC(double)
WBS_INSTANTIATE_NUMERIC(int8_t)
WBS_INSTANTIATE_NUMERIC(uint8_t)
WBS_INSTANTIATE_NUMERIC(int16_t)
WBS_INSTANTIATE_NUMERIC(uint16_t)
WBS_INSTANTIATE_NUMERIC(int32_t)
WBS_INSTANTIATE_NUMERIC(uint32_t)
WBS_INSTANTIATE_NUMERIC(int64_t)
WBS_INSTANTIATE_NUMERIC(uint64_t)
#undef WBS_INSTANTIATE_NUMERIC
template void Compare<bool>(CompareOp, const bool*, const Shape&, const bool*, const Shape&, bool*,
                            const Shape&);
template void IsNaN<float>(const float*, bool*, int64_t);
template void IsNaN<double>(const double*, bool*, int64_t);
template void IsInf<float>(const float*, bool*, int64_t, bool, bool);
template void IsInf<double>(const double*, bool*, int64_t, bool, bool);

}  // namespace wbs::kernels::ref

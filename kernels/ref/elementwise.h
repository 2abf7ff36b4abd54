// Reference elementwise kernels in ONNX semantics: unary maps, numpy-
// broadcasting binary ops, comparisons, logical ops, Where, Clip, Pow and
// type conversion.
//
// Buffers are dense and row-major; shapes are in elements. Callers (the
// operators) have validated dtypes and shapes: these functions assert, they
// do not report errors. Every function is instantiated for the numeric C++
// types of core/dtype.h (float, double, int8..int64, uint8..uint64) unless
// noted; bool only where stated.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace wbs::kernels::ref {

enum class UnaryOp : int32_t {
  // Any numeric type.
  kNeg,
  kAbs,
  kSign,
  kRelu,
  kShrink,  // alpha: lambd, beta: bias
  // Floating point only.
  kLeakyRelu,  // alpha
  kSigmoid,
  kHardSigmoid,  // alpha, beta
  kTanh,
  kExp,
  kLog,
  kSqrt,
  kReciprocal,
  kCeil,
  kFloor,
  kRound,  // half to even
  kErf,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kAsinh,
  kAcosh,
  kAtanh,
  kElu,   // alpha
  kSelu,  // alpha, gamma
  kCelu,  // alpha
  kSoftplus,
  kSoftsign,
  kThresholdedRelu,  // alpha
  kHardSwish,
  kCount,
};

// True for ops defined on integer types (the ones listed before kLeakyRelu).
bool UnaryOpAcceptsIntegers(UnaryOp op);

struct UnaryParams {
  float alpha = 0.0f;
  float beta = 0.0f;
  float gamma = 0.0f;
};

// y[i] = op(x[i]) for i in [0, n); y may equal x. Precondition: T is
// floating point unless UnaryOpAcceptsIntegers(op).
template <typename T>
void Unary(UnaryOp op, const UnaryParams& p, const T* x, T* y, int64_t n);

// y[i] = min(max(x[i], lo), hi): with lo > hi every element becomes hi (ONNX
// Clip). NaN propagates.
template <typename T>
void Clip(const T* x, T* y, int64_t n, T lo, T hi);

enum class BinaryOp : int32_t {
  kAdd,
  kSub,
  kMul,
  kDiv,    // integers truncate toward zero; x / 0 gives 0 (operators reject it first)
  kMod,    // result has the sign of the divisor (Python %); x mod 0 gives 0
  kFmod,   // C fmod / %: result has the sign of the dividend
  kMax,    // NaN propagates
  kMin,    // NaN propagates
  kPRelu,  // a < 0 ? a * b : a
  kCount,
};

// out = op(a, b) with numpy broadcasting of both inputs onto out_shape. out
// may alias an input whose shape equals out_shape.
template <typename T>
void Binary(BinaryOp op, const T* a, const Shape& a_shape, const T* b, const Shape& b_shape, T* out,
            const Shape& out_shape);

// out = a ** b with broadcasting, computed in double and converted to T
// (integer bases truncate like a C cast).
template <typename T>
void Pow(const T* a, const Shape& a_shape, const double* b, const Shape& b_shape, T* out,
         const Shape& out_shape);

enum class CompareOp : int32_t { kEqual, kLess, kLessOrEqual, kGreater, kGreaterOrEqual, kCount };

// out (bool) = a op b with broadcasting. Also instantiated for bool (Equal).
template <typename T>
void Compare(CompareOp op, const T* a, const Shape& a_shape, const T* b, const Shape& b_shape,
             bool* out, const Shape& out_shape);

enum class LogicalOp : int32_t { kAnd, kOr, kXor, kCount };

void Logical(LogicalOp op, const bool* a, const Shape& a_shape, const bool* b, const Shape& b_shape,
             bool* out, const Shape& out_shape);
void Not(const bool* x, bool* y, int64_t n);

// out = cond ? x : y with three-way broadcasting; elements are moved as raw
// bytes of `elem_size` (1, 2, 4 or 8), so any dtype works.
void Where(const bool* cond, const Shape& cond_shape, const void* x, const Shape& x_shape,
           const void* y, const Shape& y_shape, void* out, const Shape& out_shape,
           size_t elem_size);

// y = (bool) isnan(x) / isinf(x) (with sign selection) for float types.
template <typename T>
void IsNaN(const T* x, bool* y, int64_t n);
template <typename T>
void IsInf(const T* x, bool* y, int64_t n, bool detect_negative, bool detect_positive);

// Element conversion with ONNX Cast semantics: to bool is x != 0; from bool
// is 0/1; float to integer truncates toward zero and saturates at the
// target's range (NaN gives 0), so no input is undefined behaviour. Returns
// false if either type has no C++ type (f16, bf16, string).
bool Convert(DType from, const void* x, DType to, void* y, int64_t n);

}  // namespace wbs::kernels::ref

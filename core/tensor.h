// Tensor: a dense, row-major (C order) n-d array with shared storage.
//
// Copying a Tensor shares its storage (like a shared_ptr); Clone() deep-copies.
// Storage is 64-byte aligned so every kernel may use aligned vector loads on
// the first element. A default-constructed Tensor is "undefined".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace wbs {

using Shape = std::vector<int64_t>;

// Product of dims (1 for a scalar). Dims must be >= 0.
int64_t NumElements(const Shape& shape);
// "[1,3,224,224]"; unknown dims (< 0) print as "?".
std::string ShapeToString(const Shape& shape);
// Row-major strides in elements.
std::vector<int64_t> StridesOf(const Shape& shape);

inline constexpr size_t kTensorAlignment = 64;

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-initialised storage.
  Tensor(DType dtype, Shape shape);
  // A view over memory owned by `owner` (e.g. an activation arena).
  static Tensor Wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner);
  // A tensor filled from a vector.
  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& v);
  template <typename T>
  static Tensor Scalar(T v) { return FromVector<T>({}, {v}); }

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + rank() : i]; }
  int64_t numel() const { return NumElements(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  template <typename T> T* data() { return static_cast<T*>(data_); }
  template <typename T> const T* data() const { return static_cast<const T*>(data_); }
  // Copies the elements out, converted to T (numeric types only).
  template <typename T> std::vector<T> ToVector() const;

  Tensor Clone() const;
  // Same storage, new shape with the same element count.
  Result<Tensor> Reshaped(Shape shape) const;
  // Bitwise equality of dtype, shape and bytes.
  bool Identical(const Tensor& other) const;
  // Equality is bitwise identity (used when comparing attributes).
  bool operator==(const Tensor& other) const { return Identical(other); }
  // Returns a tensor of `to` type with each element converted (C++ casts,
  // bool = value != 0). Not for f16/bf16.
  Result<Tensor> CastTo(DType to) const;
  // Human-readable "f32[1,3,4,4]".
  std::string Describe() const;

 private:
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
};

template <typename T>
Tensor Tensor::FromVector(Shape shape, const std::vector<T>& v) {
  Tensor t(DTypeOf<T>::value, std::move(shape));
  assert(static_cast<int64_t>(v.size()) == t.numel());
  T* d = t.data<T>();
  for (size_t i = 0; i < v.size(); ++i) d[i] = v[i];
  return t;
}

template <typename T>
std::vector<T> Tensor::ToVector() const {
  std::vector<T> out(static_cast<size_t>(numel()));
  VisitDType(dtype_, [&]<typename S>() {
    const S* s = data<S>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(s[i]);
  });
  return out;
}

}  // namespace wbs

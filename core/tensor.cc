#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

namespace wbs {

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += shape[i] < 0 ? std::string("?") : std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<int64_t> StridesOf(const Shape& shape) {
  std::vector<int64_t> st(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * shape[i + 1];
  return st;
}

namespace {
std::shared_ptr<void> AllocateAligned(size_t bytes) {
  size_t rounded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  if (rounded == 0) rounded = kTensorAlignment;
  void* p = std::aligned_alloc(kTensorAlignment, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  assert(IsSupported(dtype));
  storage_ = AllocateAligned(nbytes());
  data_ = storage_.get();
}

Tensor Tensor::Wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.storage_ = std::move(owner);
  t.data_ = data;
  return t;
}

Tensor Tensor::Clone() const {
  if (!defined()) return Tensor();
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  return t;
}

Result<Tensor> Tensor::Reshaped(Shape shape) const {
  if (NumElements(shape) != numel()) {
    return InvalidArgument("cannot reshape {} to {}", Describe(), ShapeToString(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

bool Tensor::Identical(const Tensor& other) const {
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  if (!defined()) return true;
  return nbytes() == 0 || std::memcmp(data_, other.data_, nbytes()) == 0;
}

Result<Tensor> Tensor::CastTo(DType to) const {
  Tensor out(to, shape_);
  const int64_t n = numel();
  bool ok_from = VisitDType(dtype_, [&]<typename S>() {
    const S* s = data<S>();
    bool ok_to = VisitDType(to, [&]<typename D>() {
      D* d = out.data<D>();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<D, bool>) d[i] = s[i] != S(0);
        else d[i] = static_cast<D>(s[i]);
      }
    });
    (void)ok_to;
  });
  if (!ok_from || !VisitDType(to, []<typename>() {})) {
    return Unimplemented("cast from {} to {}", DTypeName(dtype_), DTypeName(to));
  }
  return out;
}

std::string Tensor::Describe() const {
  return std::string(DTypeName(dtype_)) + ShapeToString(shape_);
}

}  // namespace wbs

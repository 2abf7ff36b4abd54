// Element types. The numeric values equal ONNX TensorProto::DataType so the
// importer maps them one to one; wbs computes on a subset (see IsSupported).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace wbs {

enum class DType : int32_t {
  kUndefined = 0,
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kString = 8,
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kBF16 = 16,
};

// Bytes per element; 0 for kUndefined and kString.
size_t DTypeSize(DType t);
// Lower-case short name: "f32", "i64", ...
const char* DTypeName(DType t);
// True for the types a wbs Tensor can hold (all fixed-size numeric types).
bool IsSupported(DType t);
bool IsFloat(DType t);    // f16, bf16, f32, f64
bool IsInteger(DType t);  // signed and unsigned ints (not bool)

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kF64; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kI8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kI16; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::kU16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::kU32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::kU64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };

// Calls f.template operator()<T>() with T the C++ type of `t` for the numeric
// types above (bool included). Returns false if `t` has no C++ type here
// (f16, bf16, string, undefined).
template <typename F>
bool VisitDType(DType t, F&& f) {
  switch (t) {
    case DType::kF32: f.template operator()<float>(); return true;
    case DType::kF64: f.template operator()<double>(); return true;
    case DType::kI8: f.template operator()<int8_t>(); return true;
    case DType::kU8: f.template operator()<uint8_t>(); return true;
    case DType::kI16: f.template operator()<int16_t>(); return true;
    case DType::kU16: f.template operator()<uint16_t>(); return true;
    case DType::kI32: f.template operator()<int32_t>(); return true;
    case DType::kU32: f.template operator()<uint32_t>(); return true;
    case DType::kI64: f.template operator()<int64_t>(); return true;
    case DType::kU64: f.template operator()<uint64_t>(); return true;
    case DType::kBool: f.template operator()<bool>(); return true;
    default: return false;
  }
}

}  // namespace wbs

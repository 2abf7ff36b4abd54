// Conversion between wbs Tensors and onnx.TensorProto (internal to onnx/).
//
// Everything read from a file is validated before anything is allocated:
// dims must be >= 0, the element count must stay below kMaxElements, and the
// stored data must hold exactly as many elements as the dims declare, so an
// allocation is never larger than the input that asked for it.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace wbs::onnxio {

// Limits on declared shapes (tensors and graph inputs); anything beyond is
// treated as a corrupt file rather than a model.
inline constexpr int kMaxRank = 64;
inline constexpr int64_t kMaxElements = int64_t{1} << 40;

// Validates dims (>= 0, rank <= kMaxRank, product of the non-zero dims <=
// kMaxElements, so no partial product overflows) and returns the product.
// Errors start with `what`, e.g. "model.onnx: tensor 'W'".
Result<int64_t> CheckedNumElements(const Shape& shape, const std::string& what);

// "[2,-1,3]" (unlike ShapeToString, keeps negative dims visible).
std::string DimsToString(const Shape& shape);

// Element type for an onnx.TensorProto.DataType; Unimplemented for string,
// complex and unknown codes.
Result<DType> DTypeFromOnnx(int32_t data_type, const std::string& what);

// Reads raw_data or the typed field that matches the data type. f16/bf16 are
// kept as raw 16-bit patterns; bool is normalised to 0/1. String tensors,
// external data and segments are Unimplemented.
Result<Tensor> TensorFromProto(const ::onnx::TensorProto& proto, const std::string& what);

// Writes dims, data type and raw_data (little-endian, as ONNX requires).
Status TensorToProto(const Tensor& tensor, const std::string& name, ::onnx::TensorProto* proto);

}  // namespace wbs::onnxio

#include "onnx/tensor_proto.h"

#include <bit>
#include <cstring>
#include <exception>

#include "onnx/file_io.h"
#include "onnx/model_io.h"

namespace wbs::onnxio {

// raw_data is little-endian; a memcpy is only right on a little-endian host.
static_assert(std::endian::native == std::endian::little, "wbs assumes a little-endian host");

using ::onnx::TensorProto;

std::string DimsToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Result<int64_t> CheckedNumElements(const Shape& shape, const std::string& what) {
  if (shape.size() > static_cast<size_t>(kMaxRank)) {
    return InvalidArgument("{}: rank {} exceeds the limit of {}", what, shape.size(), kMaxRank);
  }
  int64_t n = 1;
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("{}: negative dim in shape {}", what, DimsToString(shape));
    if (d == 0) {
      has_zero = true;
      continue;
    }
    if (n > kMaxElements / d) {
      return InvalidArgument("{}: shape {} has more than {} elements", what, DimsToString(shape),
                             kMaxElements);
    }
    n *= d;
  }
  return has_zero ? 0 : n;
}

Result<DType> DTypeFromOnnx(int32_t data_type, const std::string& what) {
  switch (data_type) {
    case TensorProto::FLOAT:
      return DType::kF32;
    case TensorProto::UINT8:
      return DType::kU8;
    case TensorProto::INT8:
      return DType::kI8;
    case TensorProto::UINT16:
      return DType::kU16;
    case TensorProto::INT16:
      return DType::kI16;
    case TensorProto::INT32:
      return DType::kI32;
    case TensorProto::INT64:
      return DType::kI64;
    case TensorProto::BOOL:
      return DType::kBool;
    case TensorProto::FLOAT16:
      return DType::kF16;
    case TensorProto::DOUBLE:
      return DType::kF64;
    case TensorProto::UINT32:
      return DType::kU32;
    case TensorProto::UINT64:
      return DType::kU64;
    case TensorProto::BFLOAT16:
      return DType::kBF16;
    case TensorProto::STRING:
      return Unimplemented("{}: string tensors are not supported", what);
    case TensorProto::UNDEFINED:
      return InvalidArgument("{}: element type is undefined", what);
    default:
      if (TensorProto::DataType_IsValid(data_type)) {
        return Unimplemented(
            "{}: element type {} is not supported", what,
            TensorProto::DataType_Name(static_cast<TensorProto::DataType>(data_type)));
      }
      return InvalidArgument("{}: unknown element type code {}", what, data_type);
  }
}

namespace {

// Copies a typed repeated field (already checked to hold t.numel()
// elements) into `t`; `conv` maps a field element to a stored element.
template <typename Stored, typename Field, typename Conv>
void CopyTyped(const Field& field, Tensor& t, Conv conv) {
  Stored* d = static_cast<Stored*>(t.raw());
  for (int i = 0; i < field.size(); ++i) d[i] = conv(field.Get(i));
}

template <typename T>
auto Cast() {
  return [](auto v) { return static_cast<T>(v); };
}

}  // namespace

Result<Tensor> TensorFromProto(const TensorProto& p, const std::string& what) {
  if (p.data_location() == TensorProto::EXTERNAL || p.external_data_size() > 0) {
    return Unimplemented("{}: external data is not supported", what);
  }
  if (p.has_segment()) return Unimplemented("{}: segmented tensors are not supported", what);
  WBS_ASSIGN_OR_RETURN(DType dtype, DTypeFromOnnx(p.data_type(), what));
  Shape shape(p.dims().begin(), p.dims().end());
  WBS_ASSIGN_OR_RETURN(int64_t n, CheckedNumElements(shape, what));
  const size_t esize = DTypeSize(dtype);
  const int64_t typed_count = int64_t{0} + p.float_data_size() + p.int32_data_size() +
                              p.int64_data_size() + p.double_data_size() + p.uint64_data_size();

  if (p.has_raw_data()) {
    if (typed_count > 0) return InvalidArgument("{}: has both raw_data and typed data", what);
    const std::string& raw = p.raw_data();
    if (raw.size() != static_cast<size_t>(n) * esize) {
      return InvalidArgument("{}: raw_data has {} bytes, {}{} needs {}", what, raw.size(),
                             DTypeName(dtype), DimsToString(shape), static_cast<size_t>(n) * esize);
    }
    Tensor t(dtype, std::move(shape));
    if (!raw.empty()) std::memcpy(t.raw(), raw.data(), raw.size());
    if (dtype == DType::kBool) {
      uint8_t* b = static_cast<uint8_t*>(t.raw());
      for (int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
    }
    return t;
  }

  // Typed fields: the field that matches the data type must hold exactly n
  // elements; the tensor is allocated only after that check.
  Tensor t;
  auto check_then_make = [&](int64_t count, const char* field) -> Status {
    if (count != n) {
      return InvalidArgument("{}: {} has {} elements, {}{} needs {}", what, field, count,
                             DTypeName(dtype), DimsToString(shape), n);
    }
    t = Tensor(dtype, shape);
    return Status::Ok();
  };
  switch (dtype) {
    case DType::kF32:
      WBS_RETURN_IF_ERROR(check_then_make(p.float_data_size(), "float_data"));
      CopyTyped<float>(p.float_data(), t, Cast<float>());
      break;
    case DType::kF64:
      WBS_RETURN_IF_ERROR(check_then_make(p.double_data_size(), "double_data"));
      CopyTyped<double>(p.double_data(), t, Cast<double>());
      break;
    case DType::kI64:
      WBS_RETURN_IF_ERROR(check_then_make(p.int64_data_size(), "int64_data"));
      CopyTyped<int64_t>(p.int64_data(), t, Cast<int64_t>());
      break;
    case DType::kU32:
      WBS_RETURN_IF_ERROR(check_then_make(p.uint64_data_size(), "uint64_data"));
      CopyTyped<uint32_t>(p.uint64_data(), t, Cast<uint32_t>());
      break;
    case DType::kU64:
      WBS_RETURN_IF_ERROR(check_then_make(p.uint64_data_size(), "uint64_data"));
      CopyTyped<uint64_t>(p.uint64_data(), t, Cast<uint64_t>());
      break;
    default: {
      // int32_data carries every narrower integer type, bool, and the bit
      // patterns of f16/bf16.
      WBS_RETURN_IF_ERROR(check_then_make(p.int32_data_size(), "int32_data"));
      const auto& f = p.int32_data();
      switch (dtype) {
        case DType::kI32:
          CopyTyped<int32_t>(f, t, Cast<int32_t>());
          break;
        case DType::kI16:
          CopyTyped<int16_t>(f, t, Cast<int16_t>());
          break;
        case DType::kU16:
          CopyTyped<uint16_t>(f, t, Cast<uint16_t>());
          break;
        case DType::kI8:
          CopyTyped<int8_t>(f, t, Cast<int8_t>());
          break;
        case DType::kU8:
          CopyTyped<uint8_t>(f, t, Cast<uint8_t>());
          break;
        case DType::kF16:
        case DType::kBF16:
          CopyTyped<uint16_t>(f, t, Cast<uint16_t>());
          break;
        case DType::kBool:
          CopyTyped<uint8_t>(f, t, [](int32_t v) { return static_cast<uint8_t>(v != 0); });
          break;
        default:
          return Internal("{}: no typed field for {}", what, DTypeName(dtype));
      }
    }
  }
  return t;
}

Status TensorToProto(const Tensor& t, const std::string& name, TensorProto* p) {
  if (!t.defined() || !IsSupported(t.dtype())) {
    return InvalidArgument("tensor '{}': {} tensors cannot be written", name, DTypeName(t.dtype()));
  }
  p->Clear();
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(t.raw(), t.nbytes());
  return Status::Ok();
}

Result<Tensor> ReadTensorProtoFromBytes(const std::string& bytes, const std::string& source_name) {
  const std::string& path = source_name;
  if (bytes.empty()) return ParseError("{}: not a valid TensorProto (empty file)", path);
  if (bytes.size() > kMaxFileBytes) {
    return ParseError("{}: not a valid TensorProto (larger than the 2 GiB protobuf limit)", path);
  }
  try {
    TensorProto proto;
    if (!proto.ParseFromString(bytes)) {
      return ParseError("{}: not a valid TensorProto (protobuf parse failed)", path);
    }
    std::string what =
        proto.name().empty() ? path : fmt::format("{}: tensor '{}'", path, proto.name());
    return TensorFromProto(proto, what);
  } catch (const std::bad_alloc&) {
    return InvalidArgument("{}: out of memory while reading the tensor", path);
  } catch (const std::exception& e) {
    return Internal("{}: unexpected error while reading the tensor: {}", path, e.what());
  }
}

Result<Tensor> ReadTensorProtoFile(const std::string& path) {
  WBS_ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
  return ReadTensorProtoFromBytes(bytes, path);
}

Status WriteTensorProtoFile(const Tensor& t, const std::string& path) {
  TensorProto proto;
  WBS_RETURN_IF_ERROR(TensorToProto(t, "", &proto).WithContext(path));
  if (proto.ByteSizeLong() > kMaxFileBytes) {
    return InvalidArgument("{}: tensor {} exceeds the 2 GiB protobuf limit", path, t.Describe());
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) return Internal("{}: cannot serialize the tensor", path);
  return WriteFileAtomically(path, bytes);
}

}  // namespace wbs::onnxio

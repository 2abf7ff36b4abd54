// libFuzzer target for TensorProto files (the backend tests' *.pb inputs and
// `wbs run` inputs): any byte string must give a tensor or an error Status.
#include <cstddef>
#include <cstdint>
#include <string>

#include "onnx/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto t = wbs::onnxio::ReadTensorProtoFromBytes(bytes, "fuzz.pb");
  (void)t;
  return 0;
}

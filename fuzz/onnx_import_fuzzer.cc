// libFuzzer target for the ONNX importer: any byte string must give a model
// or an error Status, never a crash, hang or sanitizer report. Models that
// import are exported again, which exercises the exporter and libonnx's
// checker on whatever the importer accepted.
#include <cstddef>
#include <cstdint>
#include <string>

#include "onnx/model_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto graph = wbs::onnxio::ImportModelFromBytes(bytes, "fuzz.onnx");
  if (graph.ok()) {
    auto exported = wbs::onnxio::ExportModelToBytes(**graph);
    (void)exported;
  }
  return 0;
}

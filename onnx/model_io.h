// ONNX import and export through libonnx's protobuf classes (opsets 7..17;
// import also takes opsets 1..6, normalised to opset 7, see onnx/legacy_opset.h).
//
// Import maps a ModelProto to an ir::Graph one to one: initializers and
// Constant nodes become constant Values, unknown input dims are resolved
// (user shapes by name, else a leading unknown dim = batch 1), and shapes are
// inferred so a shape mismatch is reported at import with the node's name.
// Where inference cannot tell a shape (data-dependent), the model's declared
// type (graph output / value_info) is kept. Every error is a one-line Status
// that starts with the file name: ParseError for bytes that are not a model,
// Unimplemented for valid but unsupported content (opset, domain, op, string
// tensors, external data, subgraphs), InvalidArgument for inconsistent
// content. Declared sizes are checked against the data before anything is
// allocated (see onnx/tensor_proto.h for the limits).
//
// Export writes a model that passes onnx::checker, atomically (temp file,
// then rename): a failed export leaves no file behind and an existing target
// untouched. Graph outputs without a dtype are typed by running shape
// inference on a copy; fused activations become separate nodes.
//
// Namespace `wbs::onnxio` avoids a clash with libonnx's `::onnx`.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace wbs::onnxio {

// The opsets wbs's IR speaks; export writes at least kMinOpset.
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 17;
// Import also accepts opsets kMinImportOpset..kMinOpset-1: their models are
// rewritten into opset-7 form (graph and node opsets become 7), or refused
// (Unimplemented) where a legacy meaning has no exact opset-7 form.
inline constexpr int64_t kMinImportOpset = 1;

struct ImportOptions {
  // Shapes for graph inputs, by name (replaces the model's declared shape;
  // must agree with its known dims).
  std::map<std::string, Shape> input_shapes;
  // Reject NaN/Inf in initializers/constants.
  bool reject_non_finite = true;
  // Run ir::InferShapes after import (needs every op to be supported).
  bool infer_shapes = true;
};

// `path` is used in error messages ("model.onnx: node 'conv1' (Conv): ...").
Result<std::unique_ptr<ir::Graph>> ImportModel(const std::string& path,
                                               const ImportOptions& options = {});
Result<std::unique_ptr<ir::Graph>> ImportModelFromBytes(const std::string& bytes,
                                                        const std::string& source_name,
                                                        const ImportOptions& options = {});

struct ExportOptions {
  bool run_checker = true;
  std::string producer_name = "wbs";
};
Status ExportModel(const ir::Graph& graph, const std::string& path,
                   const ExportOptions& options = {});
Result<std::string> ExportModelToBytes(const ir::Graph& graph, const ExportOptions& options = {});

// A serialized onnx.TensorProto file (the backend tests' input_N.pb/output_N.pb).
Result<Tensor> ReadTensorProtoFile(const std::string& path);
// The same from serialized bytes; `source_name` starts error messages.
Result<Tensor> ReadTensorProtoFromBytes(const std::string& bytes, const std::string& source_name);
Status WriteTensorProtoFile(const Tensor& t, const std::string& path);

}  // namespace wbs::onnxio

// Op schemas: per-op arity and shape/type inference, shared by the IR passes,
// the runtime (which allocates outputs from inferred shapes) and later stages.
//
// An inference function sees, per input, its dtype, shape (if known) and
// contents (if constant), and fills dtype and shape of every output. It must
// validate attributes and input shapes and return a one-line InvalidArgument
// naming the node on bad input. Data-dependent shapes (e.g. Reshape with a
// non-constant shape input) leave has_shape = false; the runtime calls the
// same function again with the actual input tensors as `value`.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace wbs::ir {

struct ValueInfo {
  DType dtype = DType::kUndefined;
  Shape shape;
  bool has_shape = false;
  const Tensor* value = nullptr;  // known contents, or nullptr
  bool present = true;            // false for an omitted optional input

  static ValueInfo FromValue(const Value* v);
  static ValueInfo FromTensor(const Tensor* t);
  int rank() const { return static_cast<int>(shape.size()); }
};

using InferFn = Status (*)(const Node& node, const std::vector<ValueInfo>& inputs,
                           std::vector<ValueInfo>& outputs);

struct OpSchema {
  std::string op_type;
  int min_inputs = 1;
  int max_inputs = 1;
  int min_outputs = 1;
  int max_outputs = 1;
  InferFn infer = nullptr;
};

// Registers (or replaces) a schema. Thread-compatible: register at start-up.
void RegisterSchema(const OpSchema& schema);
// The schema for an ai.onnx op type, or nullptr if wbs does not support it.
const OpSchema* FindSchema(const std::string& op_type);
// All registered op types, sorted.
std::vector<std::string> SupportedOps();

// Checks arity against the schema and runs its inference function.
// Errors name the node and op.
Status InferNode(const Node& node, const std::vector<ValueInfo>& inputs,
                 std::vector<ValueInfo>& outputs);

// Infers dtype and shape of every node output in topological order (sorts
// the graph first). Graph inputs must have dtype and shape set.
Status InferShapes(Graph& graph);

// Shape-rule groups, one file each; called once by the registry.
void RegisterNnSchemas();      // ir/schemas_nn.cc
void RegisterTensorSchemas();  // ir/schemas_tensor.cc
void RegisterQuantSchemas();   // ir/schemas_quant.cc: Q/DQ and the integer ops

// Helpers for inference functions.
// Numpy-style multidirectional broadcast of two shapes.
Result<Shape> BroadcastShapes(const Shape& a, const Shape& b);
// Normalises a possibly negative axis into [0, rank); error if out of range.
Result<int> NormalizeAxis(int64_t axis, int rank, const Node& node);

}  // namespace wbs::ir

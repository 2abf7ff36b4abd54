// The wbs graph IR, shared by the importer, runtime, trainer, quantizer, AIE
// compiler and simulator.
//
// A Graph owns Values (edges) and Nodes (ops). Every Value has at most one
// producer; graph inputs and initializers have none. A Value may hold a
// constant Tensor (weights, folded constants) and annotations that later
// stages attach: a block mask (sparsity) and quantization parameters.
// Node/Value pointers stay valid until the node/value is erased.
//
// Op types and attribute names follow ONNX (default domain), so the importer
// and exporter are one-to-one; wbs-internal annotations use attribute names
// beginning with "wbs." and are never exported as ONNX attributes.
//
// Fused activations (set by the fuse-activation pass on Conv, ConvTranspose,
// Gemm, MatMul): "wbs.activation" = the activation's ONNX op type (Relu,
// LeakyRelu, Clip, Sigmoid, HardSigmoid, Tanh); "wbs.activation_alpha" and
// "wbs.activation_beta" = its parameters (LeakyRelu alpha; Clip min, max;
// HardSigmoid alpha, beta). The operator applies it to its output; the
// exporter writes it back as a separate node.
//
// Fused residual (set by the fuse-residual pass on Conv only): "wbs.residual"
// = 1 and a 4th input R (the bias slot, input 2, may then be omitted) with
// exactly the output's dtype and shape. The node computes
//   Y = act(conv(X, W) + B + R)
// i.e. R is added after the bias and before the fused activation, if any. The
// Conv shape rule accepts a 4th input only with this attribute; the exporter
// writes the Add back as a separate node (Conv -> Add -> activation).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/block_mask.h"
#include "core/status.h"
#include "core/tensor.h"

namespace wbs::ir {

class Node;

struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;               // dims < 0 are unknown
  bool has_shape = false;    // false: rank unknown
  Node* producer = nullptr;  // nullptr for graph inputs and constants
  int producer_output = -1;
  std::vector<Node*> users;  // one entry per use (a node may appear twice)
  Tensor constant;           // defined for initializers / folded constants
  std::shared_ptr<BlockMask> block_mask;
  std::shared_ptr<QuantParams> quant;

  bool is_constant() const { return constant.defined(); }
  bool shape_is_static() const;
  std::string Describe() const;  // "name: f32[1,3,?,?]"
};

using Attribute = std::variant<int64_t, float, std::string, Tensor, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>>;

class Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;  // "" = ai.onnx
  // ai.onnx opset of the model this node came from (some ops changed meaning
  // across opsets, e.g. Softmax at 13). Builders in wbs use the latest (17).
  int64_t opset = 17;
  std::vector<Value*> inputs;   // nullptr = omitted optional input
  std::vector<Value*> outputs;
  std::map<std::string, Attribute> attrs;

  bool Has(const std::string& attr) const { return attrs.count(attr) != 0; }
  int64_t GetInt(const std::string& attr, int64_t def) const;
  float GetFloat(const std::string& attr, float def) const;
  std::string GetString(const std::string& attr, const std::string& def) const;
  std::vector<int64_t> GetInts(const std::string& attr, std::vector<int64_t> def = {}) const;
  std::vector<float> GetFloats(const std::string& attr, std::vector<float> def = {}) const;
  const Tensor* GetTensor(const std::string& attr) const;

  // Input i if present (non-null), else nullptr.
  Value* input(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  size_t num_inputs() const { return inputs.size(); }
  // "Conv 'conv1'" — for error messages.
  std::string Describe() const;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  std::string name;
  int64_t opset = 17;
  // Free-form key/value metadata, exported as ONNX metadata_props.
  std::map<std::string, std::string> metadata;
  std::vector<Value*> inputs;   // runtime inputs (no initializers)
  std::vector<Value*> outputs;

  // Creates a value with a unique name (a suffix is added if `name` is taken;
  // an empty name gets a generated one).
  Value* AddValue(const std::string& name);
  Value* AddConstant(const std::string& name, Tensor t);
  Value* AddInput(const std::string& name, DType dtype, Shape shape);
  // Appends a node; wires producer/users. `outputs` are created if the
  // value pointers are not given.
  Node* AddNode(const std::string& op_type, std::vector<Value*> inputs,
                std::vector<Value*> outputs, const std::string& name = "");
  Node* AddNode(const std::string& op_type, std::vector<Value*> inputs, int num_outputs,
                const std::string& name = "");

  // Removes a node; its outputs lose their producer. Values are kept.
  void EraseNode(Node* n);
  // Removes values that are not used, produced, nor graph inputs/outputs.
  void EraseDeadValues();
  // Removes nodes whose outputs reach no graph output.
  void EraseDeadNodes();
  // Every use of `from` (node inputs and graph outputs) becomes `to`.
  void ReplaceAllUses(Value* from, Value* to);
  void SetInput(Node* n, size_t i, Value* v);

  Value* FindValue(const std::string& name) const;
  // True if `v` is one of the graph outputs.
  bool IsOutput(const Value* v) const;
  // Renames a value; error if another value already has the name.
  Status RenameValue(Value* v, const std::string& name);
  // Nodes in insertion order; TopologicalSort() makes it topological.
  const std::list<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  std::vector<Value*> values() const;
  size_t num_nodes() const { return nodes_.size(); }
  // Sorts nodes topologically (stable w.r.t. insertion order); error on cycles.
  Status TopologicalSort();
  // Checks structural invariants (producer/user links, unique names, inputs
  // defined before use after sorting). An error names the node.
  Status Verify() const;
  std::unique_ptr<Graph> Clone() const;

 private:
  std::list<std::unique_ptr<Node>> nodes_;
  std::list<std::unique_ptr<Value>> values_;
  std::map<std::string, Value*> by_name_;
  int64_t next_id_ = 0;
};

// Resolves unknown (< 0) input dims: user shapes by name replace the
// declared shape (known dims must agree); otherwise a leading unknown dim
// becomes 1 (batch); any other unknown dim is an InvalidArgument naming the
// input. Unknown names in `shapes` are an error.
Status ResolveInputShapes(Graph& graph, const std::map<std::string, Shape>& shapes);

// Structural equality: same inputs/outputs, nodes in topological order with
// equal op types, attributes and wiring (by position), equal constants
// (bitwise), dtypes and shapes. On mismatch returns false and fills `diff`.
bool GraphsEqual(const Graph& a, const Graph& b, std::string* diff);

}  // namespace wbs::ir

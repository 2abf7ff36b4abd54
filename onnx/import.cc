// ONNX ModelProto -> ir::Graph.
//
// The importer maps names one to one: every ONNX value name becomes an
// ir::Value of that name, so error messages and exported files use the names
// the user knows. All named values (inputs, initializers, Constant outputs,
// node outputs) are created before any node, so the names the graph
// generates for omitted outputs can never take a name the model uses later.
// Models of opsets 1..6 are rewritten into opset-7 form once the graph is
// built and sorted (onnx/legacy_opset.h).
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <set>

#include "ir/op_schema.h"
#include "onnx/file_io.h"
#include "onnx/legacy_opset.h"
#include "onnx/mask_metadata.h"
#include "onnx/model_io.h"
#include "onnx/tensor_proto.h"

namespace wbs::onnxio {
namespace {

using ir::Value;
using ::onnx::AttributeProto;
using ::onnx::GraphProto;
using ::onnx::ModelProto;
using ::onnx::NodeProto;
using ::onnx::ValueInfoProto;

// "node 'conv1' (Conv)", or "node #3 (Conv)" for an unnamed node.
std::string NodeWhere(const NodeProto& n, int index) {
  if (n.name().empty()) return fmt::format("node #{} ({})", index, n.op_type());
  return fmt::format("node '{}' ({})", n.name(), n.op_type());
}

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// Index of the first NaN/Inf element of a floating-point tensor, or -1.
int64_t FirstNonFinite(const Tensor& t) {
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::kF32:
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(t.data<float>()[i])) return i;
      return -1;
    case DType::kF64:
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(t.data<double>()[i])) return i;
      return -1;
    case DType::kF16:
    case DType::kBF16: {
      // All-ones exponent means Inf or NaN in both 16-bit formats.
      const uint16_t mask = t.dtype() == DType::kF16 ? 0x7C00 : 0x7F80;
      const uint16_t* d = static_cast<const uint16_t*>(t.raw());
      for (int64_t i = 0; i < n; ++i)
        if ((d[i] & mask) == mask) return i;
      return -1;
    }
    default:
      return -1;
  }
}

Result<ir::Attribute> AttributeFromProto(const AttributeProto& a, const std::string& where) {
  const std::string what = fmt::format("{}: attribute '{}'", where, a.name());
  AttributeProto::AttributeType type = a.type();
  if (type == AttributeProto::UNDEFINED) {
    // Models from IR version 1 leave the type out; it follows from the field.
    if (a.has_f())
      type = AttributeProto::FLOAT;
    else if (a.has_i())
      type = AttributeProto::INT;
    else if (a.has_s())
      type = AttributeProto::STRING;
    else if (a.has_t())
      type = AttributeProto::TENSOR;
    else if (a.has_g())
      type = AttributeProto::GRAPH;
    else if (a.floats_size())
      type = AttributeProto::FLOATS;
    else if (a.ints_size())
      type = AttributeProto::INTS;
    else if (a.strings_size())
      type = AttributeProto::STRINGS;
    else
      return InvalidArgument("{} has no type and no value", what);
  }
  switch (type) {
    case AttributeProto::FLOAT:
      return ir::Attribute(a.f());
    case AttributeProto::INT:
      return ir::Attribute(static_cast<int64_t>(a.i()));
    case AttributeProto::STRING:
      return ir::Attribute(a.s());
    case AttributeProto::TENSOR: {
      WBS_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(a.t(), what));
      return ir::Attribute(std::move(t));
    }
    case AttributeProto::FLOATS:
      return ir::Attribute(std::vector<float>(a.floats().begin(), a.floats().end()));
    case AttributeProto::INTS:
      return ir::Attribute(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case AttributeProto::STRINGS:
      return ir::Attribute(std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case AttributeProto::GRAPH:
    case AttributeProto::GRAPHS:
      return Unimplemented("{}: subgraph attributes are not supported", what);
    case AttributeProto::SPARSE_TENSOR:
    case AttributeProto::SPARSE_TENSORS:
      return Unimplemented("{}: sparse tensor attributes are not supported", what);
    default:
      return Unimplemented("{}: attributes of type {} are not supported", what,
                           AttributeProto::AttributeType_Name(type));
  }
}

class Importer {
 public:
  Importer(const std::string& path, const ImportOptions& options)
      : path_(path), options_(options) {}

  Result<std::unique_ptr<ir::Graph>> Run(const ModelProto& model);

 private:
  Status ReadOpset(const ModelProto& model);
  Result<Value*> NewValue(const std::string& name, const std::string& kind);
  Status DeclaredType(const ValueInfoProto& vi, const std::string& kind, DType* dtype, Shape* shape,
                      bool* has_shape);
  Status AddInputs(const GraphProto& g);
  Status AddConstantNode(const NodeProto& n, const std::string& where);
  Status CheckAndDeclareNode(const NodeProto& n, int index);
  Status AddNode(const NodeProto& n, int index);
  Status AddOutputs(const GraphProto& g);
  Status ReadDeclaredTypes(const GraphProto& g);
  void ApplyDeclaredTypes();
  Status CheckFinite();

  const std::string& path_;
  const ImportOptions& options_;
  std::unique_ptr<ir::Graph> graph_ = std::make_unique<ir::Graph>();
  int64_t opset_ = 0;
  struct Declared {
    DType dtype = DType::kUndefined;
    Shape shape;
    bool has_shape = false;
  };
  std::map<Value*, Declared> declared_;
  // "node 'conv1' (Conv)" / "node #3 (Conv)" per node, for the legacy rewrites.
  std::map<const ir::Node*, std::string> where_;
};

Status Importer::ReadOpset(const ModelProto& model) {
  bool found = false;
  for (const auto& op : model.opset_import()) {
    if (!IsDefaultDomain(op.domain())) continue;
    if (found) return InvalidArgument("{}: the ai.onnx opset is imported twice", path_);
    found = true;
    opset_ = op.version();
  }
  if (!found) {
    return Unimplemented("{}: model imports no ai.onnx opset (wbs supports opsets {}..{})", path_,
                         kMinImportOpset, kMaxOpset);
  }
  if (opset_ < kMinImportOpset || opset_ > kMaxOpset) {
    return Unimplemented("{}: ai.onnx opset {} is not supported (wbs supports {}..{})", path_,
                         opset_, kMinImportOpset, kMaxOpset);
  }
  return Status::Ok();
}

Result<ir::Value*> Importer::NewValue(const std::string& name, const std::string& kind) {
  if (name.empty()) return InvalidArgument("{}: {} has an empty name", path_, kind);
  if (graph_->FindValue(name)) {
    return InvalidArgument("{}: {} '{}' reuses a name that is already defined", path_, kind, name);
  }
  return graph_->AddValue(name);
}

Status Importer::DeclaredType(const ValueInfoProto& vi, const std::string& kind, DType* dtype,
                              Shape* shape, bool* has_shape) {
  const std::string what = fmt::format("{}: {} '{}'", path_, kind, vi.name());
  if (!vi.has_type() || !vi.type().has_tensor_type()) {
    return Unimplemented("{}: only tensor values are supported", what);
  }
  const auto& tt = vi.type().tensor_type();
  WBS_ASSIGN_OR_RETURN(*dtype, DTypeFromOnnx(tt.elem_type(), what));
  *has_shape = tt.has_shape();
  shape->clear();
  if (!tt.has_shape()) return Status::Ok();
  if (tt.shape().dim_size() > kMaxRank) {
    return InvalidArgument("{}: rank {} exceeds the limit of {}", what, tt.shape().dim_size(),
                           kMaxRank);
  }
  Shape known;
  for (const auto& d : tt.shape().dim()) {
    if (d.has_dim_value()) {
      if (d.dim_value() < 0) {
        return InvalidArgument("{}: negative dim {} in its shape", what, d.dim_value());
      }
      shape->push_back(d.dim_value());
      known.push_back(d.dim_value());
    } else {
      shape->push_back(-1);  // dim_param or nothing: unknown
    }
  }
  return CheckedNumElements(known, what).status();
}

Status Importer::AddInputs(const GraphProto& g) {
  // Old exporters list initializers among the inputs; those are weights, not
  // runtime inputs.
  std::set<std::string> init_names;
  for (const auto& t : g.initializer()) init_names.insert(t.name());
  for (const auto& vi : g.input()) {
    if (init_names.count(vi.name())) continue;
    DType dtype;
    Shape shape;
    bool has_shape = false;
    WBS_RETURN_IF_ERROR(DeclaredType(vi, "graph input", &dtype, &shape, &has_shape));
    WBS_ASSIGN_OR_RETURN(Value * v, NewValue(vi.name(), "graph input"));
    v->dtype = dtype;
    v->shape = std::move(shape);
    v->has_shape = has_shape;
    graph_->inputs.push_back(v);
  }
  if (g.sparse_initializer_size() > 0) {
    return Unimplemented("{}: sparse initializer '{}' is not supported", path_,
                         g.sparse_initializer(0).values().name());
  }
  for (const auto& t : g.initializer()) {
    std::string what = fmt::format("{}: tensor '{}'", path_, t.name());
    WBS_ASSIGN_OR_RETURN(Tensor tensor, TensorFromProto(t, what));
    WBS_ASSIGN_OR_RETURN(Value * v, NewValue(t.name(), "initializer"));
    v->dtype = tensor.dtype();
    v->shape = tensor.shape();
    v->has_shape = true;
    v->constant = std::move(tensor);
  }
  return Status::Ok();
}

Status Importer::AddConstantNode(const NodeProto& n, const std::string& where) {
  if (n.output_size() != 1 || n.output(0).empty()) {
    return InvalidArgument("{}: {}: a Constant needs exactly one named output", path_, where);
  }
  if (n.attribute_size() != 1) {
    return InvalidArgument("{}: {}: a Constant needs exactly one value attribute, has {}", path_,
                           where, n.attribute_size());
  }
  const AttributeProto& a = n.attribute(0);
  const std::string what = fmt::format("{}: {}", path_, where);
  Tensor t;
  if (a.name() == "value") {
    WBS_ASSIGN_OR_RETURN(t,
                         TensorFromProto(a.t(), fmt::format("{}: tensor '{}'", what, n.output(0))));
  } else if (a.name() == "value_float") {
    t = Tensor::Scalar<float>(a.f());
  } else if (a.name() == "value_int") {
    t = Tensor::Scalar<int64_t>(a.i());
  } else if (a.name() == "value_floats") {
    t = Tensor::FromVector<float>({a.floats_size()},
                                  std::vector<float>(a.floats().begin(), a.floats().end()));
  } else if (a.name() == "value_ints") {
    t = Tensor::FromVector<int64_t>({a.ints_size()},
                                    std::vector<int64_t>(a.ints().begin(), a.ints().end()));
  } else {
    return Unimplemented("{}: Constant attribute '{}' is not supported", what, a.name());
  }
  WBS_ASSIGN_OR_RETURN(Value * v, NewValue(n.output(0), fmt::format("{} output", where)));
  v->dtype = t.dtype();
  v->shape = t.shape();
  v->has_shape = true;
  v->constant = std::move(t);
  return Status::Ok();
}

// Checks domain and op support and creates the node's named outputs.
Status Importer::CheckAndDeclareNode(const NodeProto& n, int index) {
  const std::string where = NodeWhere(n, index);
  if (!IsDefaultDomain(n.domain())) {
    return Unimplemented("{}: {}: domain '{}' is not supported", path_, where, n.domain());
  }
  if (n.op_type() == "Constant") return AddConstantNode(n, where);
  if (!ir::FindSchema(n.op_type())) {
    return Unimplemented("{}: {}: op '{}' is not supported", path_, where, n.op_type());
  }
  for (const std::string& out : n.output()) {
    if (out.empty()) continue;  // omitted optional output
    WBS_RETURN_IF_ERROR(NewValue(out, fmt::format("{} output", where)).status());
  }
  return Status::Ok();
}

Status Importer::AddNode(const NodeProto& n, int index) {
  if (n.op_type() == "Constant") return Status::Ok();
  const std::string where = NodeWhere(n, index);
  std::vector<Value*> inputs;
  for (const std::string& in : n.input()) {
    if (in.empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    Value* v = graph_->FindValue(in);
    if (!v) {
      return InvalidArgument("{}: {}: input '{}' is not a graph input, initializer or node output",
                             path_, where, in);
    }
    inputs.push_back(v);
  }
  // Trailing omitted outputs are dropped; an omitted output in the middle
  // gets a generated name so later outputs keep their positions.
  int num_outputs = n.output_size();
  while (num_outputs > 0 && n.output(num_outputs - 1).empty()) --num_outputs;
  std::vector<Value*> outputs;
  for (int i = 0; i < num_outputs; ++i) {
    outputs.push_back(n.output(i).empty() ? nullptr : graph_->FindValue(n.output(i)));
  }
  std::map<std::string, ir::Attribute> attrs;
  for (const AttributeProto& a : n.attribute()) {
    if (a.name().empty())
      return InvalidArgument("{}: {}: attribute with an empty name", path_, where);
    if (a.name().rfind("wbs.", 0) == 0) {
      return InvalidArgument("{}: {}: attribute '{}' uses the reserved prefix 'wbs.'", path_, where,
                             a.name());
    }
    WBS_ASSIGN_OR_RETURN(ir::Attribute attr,
                         AttributeFromProto(a, fmt::format("{}: {}", path_, where)));
    if (!attrs.emplace(a.name(), std::move(attr)).second) {
      return InvalidArgument("{}: {}: attribute '{}' appears twice", path_, where, a.name());
    }
  }
  ir::Node* node = graph_->AddNode(n.op_type(), std::move(inputs), std::move(outputs), n.name());
  node->opset = opset_;
  node->attrs = std::move(attrs);
  where_[node] = where;
  return Status::Ok();
}

Status Importer::AddOutputs(const GraphProto& g) {
  for (const auto& vi : g.output()) {
    if (vi.name().empty()) return InvalidArgument("{}: graph output has an empty name", path_);
    Value* v = graph_->FindValue(vi.name());
    if (!v) return InvalidArgument("{}: graph output '{}' is never produced", path_, vi.name());
    graph_->outputs.push_back(v);
  }
  return Status::Ok();
}

// Declared types of node outputs (graph outputs, value_info) are applied
// before inference, for graphs imported without it, and again after it where
// inference could not tell (data-dependent shapes): the declaration is all
// that is known then, and ONNX requires graph outputs to carry a shape.
Status Importer::ReadDeclaredTypes(const GraphProto& g) {
  auto read = [&](const ValueInfoProto& vi, const char* kind) -> Status {
    Value* v = graph_->FindValue(vi.name());
    if (!v || !v->producer) return Status::Ok();
    if (!vi.has_type() || !vi.type().has_tensor_type() ||
        vi.type().tensor_type().elem_type() == 0) {
      return Status::Ok();  // declared types are optional
    }
    Declared d;
    WBS_RETURN_IF_ERROR(DeclaredType(vi, kind, &d.dtype, &d.shape, &d.has_shape));
    declared_[v] = std::move(d);
    return Status::Ok();
  };
  for (const auto& vi : g.value_info()) WBS_RETURN_IF_ERROR(read(vi, "value_info"));
  for (const auto& vi : g.output()) WBS_RETURN_IF_ERROR(read(vi, "graph output"));
  return Status::Ok();
}

void Importer::ApplyDeclaredTypes() {
  for (auto& [v, d] : declared_) {
    if (v->dtype == DType::kUndefined) v->dtype = d.dtype;
    if (!v->has_shape && d.has_shape && v->dtype == d.dtype) {
      v->shape = d.shape;
      v->has_shape = true;
    }
  }
}

Status Importer::CheckFinite() {
  for (Value* v : graph_->values()) {
    if (!v->is_constant()) continue;
    int64_t i = FirstNonFinite(v->constant);
    if (i < 0) continue;
    std::string user;
    if (!v->users.empty()) {
      const ir::Node* u = v->users.front();
      user = fmt::format(", used by node '{}' ({})", u->name, u->op_type);
    }
    return InvalidArgument("{}: tensor '{}' has a NaN or Inf at element {}{}", path_, v->name, i,
                           user);
  }
  return Status::Ok();
}

Result<std::unique_ptr<ir::Graph>> Importer::Run(const ModelProto& model) {
  WBS_RETURN_IF_ERROR(ReadOpset(model));
  const GraphProto& g = model.graph();
  graph_->name = g.name();
  graph_->opset = opset_;
  for (const auto& p : model.metadata_props()) graph_->metadata[p.key()] = p.value();

  WBS_RETURN_IF_ERROR(AddInputs(g));
  for (int i = 0; i < g.node_size(); ++i) WBS_RETURN_IF_ERROR(CheckAndDeclareNode(g.node(i), i));
  for (int i = 0; i < g.node_size(); ++i) WBS_RETURN_IF_ERROR(AddNode(g.node(i), i));
  WBS_RETURN_IF_ERROR(AddOutputs(g));
  WBS_RETURN_IF_ERROR(ReadDeclaredTypes(g));
  ApplyDeclaredTypes();
  if (options_.reject_non_finite) WBS_RETURN_IF_ERROR(CheckFinite());

  WBS_RETURN_IF_ERROR(ir::ResolveInputShapes(*graph_, options_.input_shapes).WithContext(path_));
  for (Value* in : graph_->inputs) {
    WBS_RETURN_IF_ERROR(
        CheckedNumElements(in->shape, fmt::format("{}: graph input '{}'", path_, in->name))
            .status());
  }
  WBS_RETURN_IF_ERROR(graph_->TopologicalSort().WithContext(path_));
  WBS_RETURN_IF_ERROR(graph_->Verify().WithContext(path_));
  if (opset_ < kMinOpset) {
    WBS_RETURN_IF_ERROR(NormalizeLegacyOpset(*graph_, opset_, path_, where_));
    WBS_RETURN_IF_ERROR(graph_->TopologicalSort().WithContext(path_));
    WBS_RETURN_IF_ERROR(graph_->Verify().WithContext(path_));
  }
  WBS_RETURN_IF_ERROR(RestoreBlockMasks(*graph_, path_));
  if (options_.infer_shapes) {
    WBS_RETURN_IF_ERROR(ir::InferShapes(*graph_).WithContext(path_));
    ApplyDeclaredTypes();
  }
  return std::move(graph_);
}

}  // namespace

Result<std::unique_ptr<ir::Graph>> ImportModelFromBytes(const std::string& bytes,
                                                        const std::string& source_name,
                                                        const ImportOptions& options) {
  const std::string& path = source_name;
  if (bytes.empty()) return ParseError("{}: not a valid ONNX model (empty file)", path);
  if (bytes.size() > kMaxFileBytes) {
    return ParseError("{}: not a valid ONNX model (larger than the 2 GiB protobuf limit)", path);
  }
  // protobuf and libonnx may throw (e.g. bad_alloc on a hostile length);
  // nothing may escape this boundary.
  try {
    ModelProto model;
    if (!model.ParseFromString(bytes)) {
      return ParseError("{}: not a valid ONNX model (protobuf parse failed)", path);
    }
    if (!model.has_graph()) return ParseError("{}: not a valid ONNX model (no graph)", path);
    return Importer(path, options).Run(model);
  } catch (const std::bad_alloc&) {
    return InvalidArgument("{}: out of memory while importing the model", path);
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    return Internal("{}: unexpected error while importing the model: {}", path, what);
  }
}

Result<std::unique_ptr<ir::Graph>> ImportModel(const std::string& path,
                                               const ImportOptions& options) {
  WBS_ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
  return ImportModelFromBytes(bytes, path, options);
}

}  // namespace wbs::onnxio

// ir::Graph -> ONNX ModelProto.
//
// The exporter works on a clone of the graph, sorted topologically (ONNX
// requires producers before users) and, when the graph carries no types yet
// (e.g. straight from a builder), with shapes inferred, so every graph input
// and output can be declared with its element type. Fused residuals
// ("wbs.residual") and activations ("wbs.activation", see ir/graph.h) are
// written back as separate nodes (Conv -> Add -> activation), so the file is
// plain ONNX; no other "wbs.*" annotation reaches the file. Block masks of
// the initializers become metadata_props (onnx/mask_metadata.h).
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <exception>
#include <set>
#include <string_view>
#include <type_traits>

#include "ir/op_schema.h"
#include "ir/pass.h"
#include "onnx/file_io.h"
#include "onnx/mask_metadata.h"
#include "onnx/model_io.h"
#include "onnx/tensor_proto.h"

namespace wbs::onnxio {
namespace {

using ir::Node;
using ir::Value;
using ::onnx::AttributeProto;
using ::onnx::GraphProto;
using ::onnx::ModelProto;
using ::onnx::NodeProto;
using ::onnx::ValueInfoProto;

// IR version 8 is what libonnx 1.12 writes for opsets up to 17.
constexpr int64_t kExportIrVersion = 8;
// From this opset on, Clip takes min/max as inputs instead of attributes.
constexpr int64_t kClipInputsOpset = 11;
constexpr const char* kInternalPrefix = "wbs.";
constexpr const char* kActivationAttr = "wbs.activation";
constexpr const char* kActivationAlpha = "wbs.activation_alpha";
constexpr const char* kActivationBeta = "wbs.activation_beta";
constexpr const char* kResidualAttr = "wbs.residual";
// Input index of a fused residual (ir/graph.h).
constexpr size_t kResidualInput = 3;

// The checker's messages span several lines; Status messages are one line.
std::string OneLine(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Hands out value names not used by the graph or by earlier calls.
class FreshNames {
 public:
  explicit FreshNames(const ir::Graph& g) {
    for (const Value* v : g.values()) taken_.insert(v->name);
  }
  std::string Make(const std::string& base) {
    std::string name = base;
    for (int i = 1; taken_.count(name); ++i) name = base + "_" + std::to_string(i);
    taken_.insert(name);
    return name;
  }

 private:
  std::set<std::string> taken_;
};

Status SetValueInfo(const Value& v, const char* kind, ValueInfoProto* vi) {
  if (!IsSupported(v.dtype)) {
    return InvalidArgument("{} '{}' has element type {}, which ONNX export cannot declare", kind,
                           v.name, DTypeName(v.dtype));
  }
  if (!v.has_shape && std::string_view(kind) != "value") {
    return InvalidArgument(
        "{} '{}' has unknown rank; ONNX requires a shape for graph inputs and outputs", kind,
        v.name);
  }
  vi->set_name(v.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.dtype));
  if (v.has_shape) {
    auto* shape = tt->mutable_shape();
    for (int64_t d : v.shape) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d);  // unknown dims stay unset
    }
  }
  return Status::Ok();
}

Status AttrToProto(const std::string& name, const ir::Attribute& attr, const Node& n,
                   AttributeProto* a) {
  a->set_name(name);
  return std::visit(
      [&](const auto& v) -> Status {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          a->set_type(AttributeProto::INT);
          a->set_i(v);
        } else if constexpr (std::is_same_v<T, float>) {
          a->set_type(AttributeProto::FLOAT);
          a->set_f(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          a->set_type(AttributeProto::STRING);
          a->set_s(v);
        } else if constexpr (std::is_same_v<T, Tensor>) {
          a->set_type(AttributeProto::TENSOR);
          WBS_RETURN_IF_ERROR(
              TensorToProto(v, "", a->mutable_t())
                  .WithContext(fmt::format("{}: attribute '{}'", n.Describe(), name)));
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          a->set_type(AttributeProto::INTS);
          for (int64_t x : v) a->add_ints(x);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          a->set_type(AttributeProto::FLOATS);
          for (float x : v) a->add_floats(x);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>, "unhandled attribute type");
          a->set_type(AttributeProto::STRINGS);
          for (const std::string& x : v) a->add_strings(x);
        }
        return Status::Ok();
      },
      attr);
}

class Exporter {
 public:
  Exporter(const ir::Graph& g, const ExportOptions& options)
      : g_(g), options_(options), names_(g), opset_(std::max<int64_t>(g.opset, kMinOpset)) {}
  Result<ModelProto> Run();

 private:
  Status EmitInitializer(const Value& v);
  Status EmitNode(const Node& n);
  Status EmitActivation(const Node& n, const std::string& from, const Value& out);
  // Declares `name` as a value of `like`'s type (an intermediate the
  // exporter introduces).
  Status DeclareLike(const Value& like, const std::string& name);

  const ir::Graph& g_;
  const ExportOptions& options_;
  FreshNames names_;
  const int64_t opset_;
  ModelProto model_;
  GraphProto* gp_ = model_.mutable_graph();
  std::set<const Value*> inputs_;
  std::set<const Value*> emitted_;
};

Status Exporter::EmitInitializer(const Value& v) {
  if (!emitted_.insert(&v).second) return Status::Ok();
  return TensorToProto(v.constant, v.name, gp_->add_initializer());
}

Status Exporter::DeclareLike(const Value& like, const std::string& name) {
  if (!IsSupported(like.dtype)) return Status::Ok();
  Value v = like;
  v.name = name;
  return SetValueInfo(v, "value", gp_->add_value_info());
}

Status Exporter::EmitNode(const Node& n) {
  const bool residual = n.GetInt(kResidualAttr, 0) == 1;
  const bool activation = n.Has(kActivationAttr);
  if ((residual || activation) && (n.outputs.size() != 1 || !n.outputs[0])) {
    return InvalidArgument("{}: a fused {} needs exactly one output", n.Describe(),
                           residual ? "residual" : "activation");
  }
  if (residual &&
      (n.op_type != "Conv" || n.inputs.size() != kResidualInput + 1 || !n.inputs[kResidualInput])) {
    return InvalidArgument("{}: wbs.residual=1 needs a Conv with the residual as input {}",
                           n.Describe(), kResidualInput);
  }
  NodeProto* p = gp_->add_node();
  p->set_name(n.name);
  p->set_op_type(n.op_type);
  if (!n.domain.empty() && n.domain != "ai.onnx") p->set_domain(n.domain);
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const Value* in = n.inputs[i];
    if (in && !in->producer && !inputs_.count(in)) {
      if (!in->is_constant()) {
        return InvalidArgument("{}: input {} '{}' is not a graph input, constant or node output",
                               n.Describe(), i, in->name);
      }
      WBS_RETURN_IF_ERROR(EmitInitializer(*in));
    }
    if (residual && i == kResidualInput) break;  // goes to the Add below
    p->add_input(in ? in->name : "");
  }
  if (residual) {
    // An omitted bias is a trailing empty input: drop it.
    while (p->input_size() > 0 && p->input(p->input_size() - 1).empty())
      p->mutable_input()->RemoveLast();
  }
  for (const Value* out : n.outputs) p->add_output(out ? out->name : "");
  for (const auto& [name, attr] : n.attrs) {
    if (name.rfind(kInternalPrefix, 0) == 0) continue;
    WBS_RETURN_IF_ERROR(AttrToProto(name, attr, n, p->add_attribute()));
  }
  if (!residual && !activation) return Status::Ok();

  // The fused node writes fresh intermediates; the last node of the chain
  // writes the original output, so users and graph outputs keep their names.
  const Value& out = *n.outputs[0];
  std::string from;
  if (residual) {
    from = names_.Make(out.name + "_preadd");
    p->set_output(0, from);
    WBS_RETURN_IF_ERROR(DeclareLike(out, from));
    NodeProto* add = gp_->add_node();
    add->set_name(n.name + "/Add");
    add->set_op_type("Add");
    add->add_input(from);
    add->add_input(n.inputs[kResidualInput]->name);
    if (!activation) {
      add->add_output(out.name);
      return Status::Ok();
    }
    from = names_.Make(out.name + "_preact");
    add->add_output(from);
  } else {
    from = names_.Make(out.name + "_preact");
    p->set_output(0, from);
  }
  WBS_RETURN_IF_ERROR(DeclareLike(out, from));
  return EmitActivation(n, from, out);
}

Status Exporter::EmitActivation(const Node& n, const std::string& from, const Value& out) {
  const std::string act = n.GetString(kActivationAttr, "");
  const bool has_alpha = n.Has(kActivationAlpha);
  const bool has_beta = n.Has(kActivationBeta);
  const float alpha = n.GetFloat(kActivationAlpha, 0.0f);
  const float beta = n.GetFloat(kActivationBeta, 0.0f);
  NodeProto* a = gp_->add_node();
  a->set_name(n.name + "/" + act);
  a->set_op_type(act);
  a->add_input(from);
  a->add_output(out.name);
  auto float_attr = [&](const char* name, float v) {
    AttributeProto* attr = a->add_attribute();
    attr->set_name(name);
    attr->set_type(AttributeProto::FLOAT);
    attr->set_f(v);
  };
  if (act == "Relu" || act == "Sigmoid" || act == "Tanh") return Status::Ok();
  if (act == "LeakyRelu") {
    if (has_alpha) float_attr("alpha", alpha);
    return Status::Ok();
  }
  if (act == "HardSigmoid") {
    if (has_alpha) float_attr("alpha", alpha);
    if (has_beta) float_attr("beta", beta);
    return Status::Ok();
  }
  if (act != "Clip") {
    return InvalidArgument("{}: unknown fused activation '{}'", n.Describe(), act);
  }
  if (opset_ < kClipInputsOpset) {
    if (has_alpha) float_attr("min", alpha);
    if (has_beta) float_attr("max", beta);
    return Status::Ok();
  }
  // min/max inputs have the element type of the clipped tensor.
  auto bound = [&](const char* suffix, float v) -> Result<std::string> {
    Tensor t;
    if (out.dtype == DType::kF32) {
      t = Tensor::Scalar<float>(v);
    } else if (out.dtype == DType::kF64) {
      t = Tensor::Scalar<double>(v);
    } else {
      return Unimplemented("{}: fused Clip on {} output '{}' cannot be exported", n.Describe(),
                           DTypeName(out.dtype), out.name);
    }
    std::string name = names_.Make(n.name + "_clip_" + suffix);
    WBS_RETURN_IF_ERROR(TensorToProto(t, name, gp_->add_initializer()));
    return name;
  };
  if (has_alpha) {
    WBS_ASSIGN_OR_RETURN(std::string name, bound("min", alpha));
    a->add_input(name);
  } else if (has_beta) {
    a->add_input("");
  }
  if (has_beta) {
    WBS_ASSIGN_OR_RETURN(std::string name, bound("max", beta));
    a->add_input(name);
  }
  return Status::Ok();
}

Result<ModelProto> Exporter::Run() {
  model_.set_ir_version(kExportIrVersion);
  model_.set_producer_name(options_.producer_name);
  auto* opset = model_.add_opset_import();
  opset->set_domain("");
  opset->set_version(opset_);
  for (const auto& [key, value] : g_.metadata) {
    if (IsMaskMetadataKey(key)) continue;  // written from Value::block_mask below
    auto* prop = model_.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  }
  gp_->set_name(g_.name.empty() ? "wbs" : g_.name);  // the checker requires a name

  for (const Value* v : g_.inputs) {
    WBS_RETURN_IF_ERROR(SetValueInfo(*v, "graph input", gp_->add_input()));
    inputs_.insert(v);
  }
  std::set<const Value*> outputs(g_.outputs.begin(), g_.outputs.end());
  for (const auto& n : g_.nodes()) {
    WBS_RETURN_IF_ERROR(EmitNode(*n));
    for (const Value* out : n->outputs) {
      if (out && !outputs.count(out) && IsSupported(out->dtype)) {
        WBS_RETURN_IF_ERROR(SetValueInfo(*out, "value", gp_->add_value_info()));
      }
    }
  }
  for (const Value* v : g_.outputs) {
    if (!v->producer && !inputs_.count(v)) {
      if (!v->is_constant()) return InvalidArgument("graph output '{}' is never produced", v->name);
      WBS_RETURN_IF_ERROR(EmitInitializer(*v));
    }
    WBS_RETURN_IF_ERROR(SetValueInfo(*v, "graph output", gp_->add_output()));
  }
  // Block masks of the initializers written (onnx/mask_metadata.h).
  WBS_ASSIGN_OR_RETURN(auto masks, MaskMetadata({emitted_.begin(), emitted_.end()}));
  for (const auto& [key, value] : masks) {
    auto* prop = model_.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  }
  return std::move(model_);
}

// Builders may leave node outputs untyped; the file must declare the types
// of graph outputs and of fused-Clip bounds.
bool NeedsInference(const ir::Graph& g) {
  for (const Value* v : g.outputs)
    if (v->dtype == DType::kUndefined) return true;
  for (const auto& n : g.nodes())
    if (n->Has(kActivationAttr))
      for (const Value* out : n->outputs)
        if (out && out->dtype == DType::kUndefined) return true;
  return false;
}

}  // namespace

Result<std::string> ExportModelToBytes(const ir::Graph& graph, const ExportOptions& options) {
  try {
    std::unique_ptr<ir::Graph> g = graph.Clone();
    WBS_RETURN_IF_ERROR(g->TopologicalSort());
    // The quantized IR's integer ops are written in ONNX QDQ form.
    if (ir::HasIntegerOps(*g)) WBS_RETURN_IF_ERROR(ir::ExpandQdq(*g).WithContext("QDQ export"));
    if (NeedsInference(*g)) {
      WBS_RETURN_IF_ERROR(ir::InferShapes(*g).WithContext("inferring types for export"));
    }
    WBS_ASSIGN_OR_RETURN(ModelProto model, Exporter(*g, options).Run());
    if (options.run_checker) {
      try {
        ::onnx::checker::check_model(model);
      } catch (const ::onnx::checker::ValidationError& e) {
        return InvalidArgument("onnx checker rejected the exported model: {}", OneLine(e.what()));
      }
    }
    if (model.ByteSizeLong() > kMaxFileBytes) {
      return InvalidArgument("model is {} bytes, more than the 2 GiB protobuf limit",
                             model.ByteSizeLong());
    }
    std::string bytes;
    if (!model.SerializeToString(&bytes)) return Internal("protobuf could not serialize the model");
    return bytes;
  } catch (const std::bad_alloc&) {
    return InvalidArgument("out of memory while exporting the model");
  } catch (const std::exception& e) {
    return Internal("unexpected error while exporting the model: {}", OneLine(e.what()));
  }
}

Status ExportModel(const ir::Graph& graph, const std::string& path, const ExportOptions& options) {
  Result<std::string> bytes = ExportModelToBytes(graph, options);
  if (!bytes.ok()) return bytes.status().WithContext(path);
  return WriteFileAtomically(path, *bytes);
}

}  // namespace wbs::onnxio

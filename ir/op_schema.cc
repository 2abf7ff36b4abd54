#include "ir/op_schema.h"

#include <map>
#include <mutex>

namespace wbs::ir {

ValueInfo ValueInfo::FromValue(const Value* v) {
  ValueInfo info;
  if (!v) {
    info.present = false;
    return info;
  }
  info.dtype = v->dtype;
  info.shape = v->shape;
  info.has_shape = v->has_shape;
  info.value = v->is_constant() ? &v->constant : nullptr;
  return info;
}

ValueInfo ValueInfo::FromTensor(const Tensor* t) {
  ValueInfo info;
  if (!t || !t->defined()) {
    info.present = false;
    return info;
  }
  info.dtype = t->dtype();
  info.shape = t->shape();
  info.has_shape = true;
  info.value = t;
  return info;
}

namespace {
std::map<std::string, OpSchema>& Registry() {
  static std::map<std::string, OpSchema> registry;
  return registry;
}
void EnsureBuiltins() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterNnSchemas();
    RegisterTensorSchemas();
    RegisterQuantSchemas();
  });
}
}  // namespace

void RegisterSchema(const OpSchema& schema) { Registry()[schema.op_type] = schema; }

const OpSchema* FindSchema(const std::string& op_type) {
  EnsureBuiltins();
  auto it = Registry().find(op_type);
  return it == Registry().end() ? nullptr : &it->second;
}

std::vector<std::string> SupportedOps() {
  EnsureBuiltins();
  std::vector<std::string> ops;
  for (auto& [k, v] : Registry()) ops.push_back(k);
  return ops;
}

Status InferNode(const Node& node, const std::vector<ValueInfo>& inputs,
                 std::vector<ValueInfo>& outputs) {
  if (!node.domain.empty() && node.domain != "ai.onnx") {
    return Unimplemented("{}: op domain '{}' is not supported", node.Describe(), node.domain);
  }
  const OpSchema* s = FindSchema(node.op_type);
  if (!s) return Unimplemented("{}: op '{}' is not supported", node.Describe(), node.op_type);
  // Trailing omitted inputs do not count.
  int n_in = static_cast<int>(inputs.size());
  while (n_in > 0 && !inputs[n_in - 1].present) --n_in;
  if (n_in < s->min_inputs || n_in > s->max_inputs) {
    return InvalidArgument("{}: has {} inputs, expected {}..{}", node.Describe(), n_in,
                           s->min_inputs, s->max_inputs);
  }
  for (int i = 0; i < s->min_inputs; ++i)
    if (!inputs[i].present)
      return InvalidArgument("{}: required input {} is missing", node.Describe(), i);
  int n_out = static_cast<int>(node.outputs.size());
  if (n_out < s->min_outputs || n_out > s->max_outputs) {
    return InvalidArgument("{}: has {} outputs, expected {}..{}", node.Describe(), n_out,
                           s->min_outputs, s->max_outputs);
  }
  outputs.assign(node.outputs.size(), ValueInfo());
  Status st = s->infer(node, inputs, outputs);
  if (!st.ok() && st.message().find(node.name) == std::string::npos)
    return st.WithContext(node.Describe());
  return st;
}

Status InferShapes(Graph& graph) {
  WBS_RETURN_IF_ERROR(graph.TopologicalSort());
  for (auto& n : graph.nodes()) {
    std::vector<ValueInfo> ins;
    for (Value* v : n->inputs) ins.push_back(ValueInfo::FromValue(v));
    std::vector<ValueInfo> outs;
    WBS_RETURN_IF_ERROR(InferNode(*n, ins, outs));
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value* o = n->outputs[i];
      if (!o) continue;
      o->dtype = outs[i].dtype;
      o->has_shape = outs[i].has_shape;
      o->shape = outs[i].shape;
    }
  }
  return Status::Ok();
}

Result<Shape> BroadcastShapes(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1) out[i] = da;
    else if (da == 1) out[i] = db;
    else if (da < 0 || db < 0) out[i] = -1;
    else return InvalidArgument("shapes {} and {} do not broadcast", ShapeToString(a), ShapeToString(b));
  }
  return out;
}

Result<int> NormalizeAxis(int64_t axis, int rank, const Node& node) {
  if (axis < -rank || (axis >= rank && !(rank == 0 && axis == 0))) {
    return InvalidArgument("{}: axis {} out of range for rank {}", node.Describe(), axis, rank);
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

}  // namespace wbs::ir

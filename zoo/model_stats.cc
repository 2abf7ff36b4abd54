#include "zoo/model_stats.h"

#include <set>

namespace wbs::zoo {

namespace {

bool IsMacOp(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

Result<Shape> StaticShape(const ir::Node& node, const ir::Value* v, const char* role) {
  if (!v || !v->shape_is_static())
    return InvalidArgument("{}: counting MACs needs a static {} shape, got {}", node.Describe(),
                           role, v ? v->Describe() : std::string("no value"));
  return v->shape;
}

int64_t ProductFrom(const Shape& s, size_t first) {
  int64_t p = 1;
  for (size_t i = first; i < s.size(); ++i) p *= s[i];
  return p;
}

}  // namespace

const Tensor* ConstantSource(const ir::Value* v) {
  // Bounded walk: a malformed graph cannot loop us forever.
  for (int hops = 0; v && hops < 64; ++hops) {
    if (v->is_constant()) return &v->constant;
    if (!v->producer || v->producer->op_type != "Identity") return nullptr;
    v = v->producer->input(0);
  }
  return nullptr;
}

Result<int64_t> CountMacs(const ir::Node& node) {
  const std::string& op = node.op_type;
  if (!IsMacOp(op)) return int64_t{0};
  if (node.num_inputs() < 2 || node.outputs.empty())
    return InvalidArgument("{}: expected at least 2 inputs and 1 output", node.Describe());
  WBS_ASSIGN_OR_RETURN(Shape x, StaticShape(node, node.input(0), "input"));
  WBS_ASSIGN_OR_RETURN(Shape w, StaticShape(node, node.input(1), "weight"));
  WBS_ASSIGN_OR_RETURN(Shape y, StaticShape(node, node.outputs[0], "output"));
  if (op == "Conv") return NumElements(y) * ProductFrom(w, 1);
  if (op == "ConvTranspose") return NumElements(x) * ProductFrom(w, 1);
  int64_t k = 0;
  if (op == "Gemm") {
    if (x.size() != 2)
      return InvalidArgument("{}: A must be 2-D, got {}", node.Describe(), ShapeToString(x));
    k = x[node.GetInt("transA", 0) ? 0 : 1];
  } else {  // MatMul: a 1-D A is a row vector
    if (x.empty()) return InvalidArgument("{}: A must have rank >= 1", node.Describe());
    k = x.back();
  }
  return NumElements(y) * k;
}

bool IsBlockable(const ir::Node& node, int64_t block) {
  const std::string& op = node.op_type;
  if (op != "Conv" && op != "Gemm" && op != "MatMul") return false;
  const Tensor* w = ConstantSource(node.input(1));
  if (!w) return false;
  int64_t cout = 0, cin = 0;
  if (op == "Conv") {
    if (node.GetInt("group", 1) != 1 || w->rank() < 2) return false;
    cout = w->dim(0);
    cin = w->dim(1);
  } else {
    if (w->rank() != 2) return false;
    const bool trans = op == "Gemm" && node.GetInt("transB", 0) != 0;
    cout = trans ? w->dim(0) : w->dim(1);
    cin = trans ? w->dim(1) : w->dim(0);
  }
  return cout >= block && cin >= block;
}

Result<ModelStats> ComputeModelStats(const ir::Graph& graph) {
  ModelStats stats;
  std::set<const Tensor*> seen_constants;
  for (const auto& n : graph.nodes()) {
    LayerStats l;
    l.name = n->name;
    l.op_type = n->op_type;
    if (const ir::Value* in = n->input(0); in && in->has_shape) l.input_shape = in->shape;
    if (!n->outputs.empty() && n->outputs[0] && n->outputs[0]->has_shape)
      l.output_shape = n->outputs[0]->shape;
    if (IsMacOp(n->op_type) && n->input(1) && n->input(1)->has_shape)
      l.weight_shape = n->input(1)->shape;
    WBS_ASSIGN_OR_RETURN(l.macs, CountMacs(*n));
    for (const ir::Value* in : n->inputs) {
      const Tensor* c = ConstantSource(in);
      if (!c) continue;
      l.params += c->numel();
      if (seen_constants.insert(c).second) {
        stats.num_parameters += c->numel();
        stats.parameter_bytes += static_cast<int64_t>(c->nbytes());
      }
    }
    l.blockable = IsBlockable(*n);
    stats.total_macs += l.macs;
    if (l.blockable) {
      stats.blockable_macs += l.macs;
      ++stats.num_blockable;
    }
    ++stats.op_histogram[n->op_type];
    stats.layers.push_back(std::move(l));
  }
  return stats;
}

}  // namespace wbs::zoo

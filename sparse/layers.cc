#include "sparse/layers.h"

#include <map>
#include <utility>

namespace wbs::sparse {
namespace {

// Bounded walk through Identity chains, so a malformed graph cannot loop.
constexpr int kMaxIdentityHops = 64;

ir::Value* ConstantValue(ir::Value* v) {
  for (int hops = 0; v && hops < kMaxIdentityHops; ++hops) {
    if (v->is_constant()) return v;
    if (!v->producer || v->producer->op_type != "Identity") return nullptr;
    v = v->producer->input(0);
  }
  return nullptr;
}

bool IsWeightedOp(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

}  // namespace

Result<LayerRules> MakeLayerRules(const std::string& block, bool include_first,
                                  std::vector<std::string> exclude) {
  WBS_ASSIGN_OR_RETURN(auto shape, ParseBlockShape(block));
  LayerRules r;
  r.block_rows = shape.first;
  r.block_cols = shape.second;
  r.include_first = include_first;
  r.exclude = std::move(exclude);
  return r;
}

Result<std::vector<Layer>> FindLayers(const ir::Graph& graph, const LayerRules& rules) {
  std::vector<std::regex> patterns;
  for (const std::string& p : rules.exclude) {
    try {
      patterns.emplace_back(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgument("--exclude '{}': invalid regular expression ({})", p, e.what());
    }
  }
  auto excluded = [&](const std::string& name) {
    for (size_t i = 0; i < patterns.size(); ++i)
      if (name == rules.exclude[i] || std::regex_match(name, patterns[i])) return true;
    return false;
  };

  std::vector<Layer> layers;
  std::map<const ir::Value*, std::string> claimed_by;
  bool seen_conv = false;
  for (const auto& up : graph.nodes()) {
    ir::Node* n = up.get();
    if (!IsWeightedOp(n->op_type)) continue;
    Layer l;
    l.node = n;
    const bool first_conv = n->op_type == "Conv" && !seen_conv;
    seen_conv |= n->op_type == "Conv";
    l.weight = ConstantValue(n->input(1));
    auto decide = [&]() -> std::string {
      if (!l.weight) return "weight is not a constant";
      if (n->op_type == "ConvTranspose") return "ConvTranspose stays dense";
      const Shape& s = l.weight->constant.shape();
      if (n->op_type == "Conv") {
        if (n->GetInt("group", 1) != 1) return "grouped conv stays dense";
        if (s.size() < 2) return "weight rank < 2";
        l.layout = MaskLayout::kOutIn;
      } else {
        if (s.size() != 2) return "weight is not 2-D";
        const bool trans_b = n->op_type == "Gemm" && n->GetInt("transB", 0) != 0;
        l.layout = trans_b ? MaskLayout::kOutIn : MaskLayout::kInOut;
      }
      Result<WeightView> v = MakeWeightView(s, l.layout, "");
      if (!v.ok()) return "weight shape";
      l.view = *v;
      if (l.view.cout < rules.block_rows || l.view.cin < rules.block_cols)
        return fmt::format("smaller than one {}x{} block", rules.block_rows, rules.block_cols);
      if (auto it = claimed_by.find(l.weight); it != claimed_by.end())
        return fmt::format("weight shared with '{}'", it->second);
      if (first_conv && !rules.include_first) return "first conv";
      if (excluded(n->name) || excluded(l.weight->name)) return "excluded by --exclude";
      return "";
    };
    l.reason = decide();
    l.blockable = l.reason.empty();
    if (l.weight && !claimed_by.count(l.weight)) claimed_by[l.weight] = n->name;
    layers.push_back(std::move(l));
  }
  return layers;
}

}  // namespace wbs::sparse

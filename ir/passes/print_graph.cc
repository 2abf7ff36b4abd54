#include <sstream>

#include "ir/pass.h"

namespace wbs::ir {
namespace {

std::string AttrToString(const Attribute& a) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) return std::to_string(v);
        else if constexpr (std::is_same_v<T, float>) return fmt::format("{}", v);
        else if constexpr (std::is_same_v<T, std::string>) return "\"" + v + "\"";
        else if constexpr (std::is_same_v<T, Tensor>) return "tensor " + v.Describe();
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) return fmt::format("[{}]", fmt::join(v, ","));
        else return fmt::format("[{}]", fmt::join(v, ","));
      },
      a);
}

std::string TypeOf(const Value* v) {
  return std::string(DTypeName(v->dtype)) + (v->has_shape ? ShapeToString(v->shape) : "[?]");
}

}  // namespace

std::string PrintGraph(const Graph& g) {
  std::ostringstream os;
  os << "graph " << (g.name.empty() ? "<unnamed>" : g.name) << " (opset " << g.opset << ")\n";
  for (const Value* in : g.inputs) os << "  input %" << in->name << " : " << TypeOf(in) << "\n";
  for (auto& n : g.nodes()) {
    os << "  ";
    for (size_t i = 0; i < n->outputs.size(); ++i)
      os << (i ? ", " : "") << (n->outputs[i] ? "%" + n->outputs[i]->name : "_");
    os << " = " << n->op_type << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Value* v = n->inputs[i];
      os << (i ? ", " : "");
      if (!v) os << "_";
      else if (v->is_constant()) os << "$" << v->name << ":" << v->constant.Describe();
      else os << "%" << v->name;
    }
    os << ")";
    if (!n->attrs.empty()) {
      os << " {";
      bool first = true;
      for (auto& [k, a] : n->attrs) {
        os << (first ? "" : ", ") << k << "=" << AttrToString(a);
        first = false;
      }
      os << "}";
    }
    if (!n->outputs.empty() && n->outputs[0]) os << " : " << TypeOf(n->outputs[0]);
    os << "  # " << n->name << "\n";
  }
  for (const Value* o : g.outputs) os << "  output %" << o->name << "\n";
  return os.str();
}

}  // namespace wbs::ir

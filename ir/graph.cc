#include "ir/graph.h"

#include <algorithm>
#include <deque>
#include <set>
#include <unordered_map>

namespace wbs::ir {

bool Value::shape_is_static() const {
  if (!has_shape) return false;
  return std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d >= 0; });
}

std::string Value::Describe() const {
  return "'" + name + "': " + DTypeName(dtype) + (has_shape ? ShapeToString(shape) : "[rank ?]");
}

int64_t Node::GetInt(const std::string& attr, int64_t def) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return def;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  return def;
}
float Node::GetFloat(const std::string& attr, float def) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return def;
  if (auto* v = std::get_if<float>(&it->second)) return *v;
  if (auto* i = std::get_if<int64_t>(&it->second)) return static_cast<float>(*i);
  return def;
}
std::string Node::GetString(const std::string& attr, const std::string& def) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return def;
  if (auto* v = std::get_if<std::string>(&it->second)) return *v;
  return def;
}
std::vector<int64_t> Node::GetInts(const std::string& attr, std::vector<int64_t> def) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return def;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  if (auto* i = std::get_if<int64_t>(&it->second)) return {*i};
  return def;
}
std::vector<float> Node::GetFloats(const std::string& attr, std::vector<float> def) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return def;
  if (auto* v = std::get_if<std::vector<float>>(&it->second)) return *v;
  if (auto* f = std::get_if<float>(&it->second)) return {*f};
  return def;
}
const Tensor* Node::GetTensor(const std::string& attr) const {
  auto it = attrs.find(attr);
  if (it == attrs.end()) return nullptr;
  return std::get_if<Tensor>(&it->second);
}
std::string Node::Describe() const { return op_type + " node '" + name + "'"; }

Value* Graph::AddValue(const std::string& name) {
  std::string n = name;
  if (n.empty()) n = "v" + std::to_string(next_id_++);
  while (by_name_.count(n)) n = name + "_" + std::to_string(next_id_++);
  auto v = std::make_unique<Value>();
  v->name = n;
  Value* p = v.get();
  values_.push_back(std::move(v));
  by_name_[n] = p;
  return p;
}

Value* Graph::AddConstant(const std::string& name, Tensor t) {
  Value* v = AddValue(name);
  v->dtype = t.dtype();
  v->shape = t.shape();
  v->has_shape = true;
  v->constant = std::move(t);
  return v;
}

Value* Graph::AddInput(const std::string& name, DType dtype, Shape shape) {
  Value* v = AddValue(name);
  v->dtype = dtype;
  v->shape = std::move(shape);
  v->has_shape = true;
  inputs.push_back(v);
  return v;
}

Node* Graph::AddNode(const std::string& op_type, std::vector<Value*> ins, std::vector<Value*> outs,
                     const std::string& name) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name.empty() ? op_type + "_" + std::to_string(next_id_++) : name;
  n->inputs = std::move(ins);
  n->outputs = std::move(outs);
  Node* p = n.get();
  for (Value* in : p->inputs)
    if (in) in->users.push_back(p);
  for (size_t i = 0; i < p->outputs.size(); ++i) {
    if (!p->outputs[i]) p->outputs[i] = AddValue(p->name + "_out" + std::to_string(i));
    p->outputs[i]->producer = p;
    p->outputs[i]->producer_output = static_cast<int>(i);
  }
  nodes_.push_back(std::move(n));
  return p;
}

Node* Graph::AddNode(const std::string& op_type, std::vector<Value*> ins, int num_outputs,
                     const std::string& name) {
  return AddNode(op_type, std::move(ins), std::vector<Value*>(num_outputs, nullptr), name);
}

static void RemoveOneUse(Value* v, Node* n) {
  auto it = std::find(v->users.begin(), v->users.end(), n);
  if (it != v->users.end()) v->users.erase(it);
}

void Graph::EraseNode(Node* n) {
  for (Value* in : n->inputs)
    if (in) RemoveOneUse(in, n);
  for (Value* out : n->outputs)
    if (out && out->producer == n) {
      out->producer = nullptr;
      out->producer_output = -1;
    }
  nodes_.remove_if([n](const std::unique_ptr<Node>& p) { return p.get() == n; });
}

void Graph::EraseDeadValues() {
  std::set<const Value*> keep(inputs.begin(), inputs.end());
  keep.insert(outputs.begin(), outputs.end());
  for (auto it = values_.begin(); it != values_.end();) {
    Value* v = it->get();
    if (!keep.count(v) && v->users.empty() && !v->producer) {
      by_name_.erase(v->name);
      it = values_.erase(it);
    } else {
      ++it;
    }
  }
}

void Graph::EraseDeadNodes() {
  std::set<const Node*> live;
  std::deque<Value*> work(outputs.begin(), outputs.end());
  while (!work.empty()) {
    Value* v = work.front();
    work.pop_front();
    if (!v || !v->producer || live.count(v->producer)) continue;
    live.insert(v->producer);
    for (Value* in : v->producer->inputs) work.push_back(in);
  }
  std::vector<Node*> dead;
  for (auto& n : nodes_)
    if (!live.count(n.get())) dead.push_back(n.get());
  for (Node* n : dead) EraseNode(n);
  EraseDeadValues();
}

void Graph::ReplaceAllUses(Value* from, Value* to) {
  std::vector<Node*> users = from->users;
  for (Node* u : users)
    for (size_t i = 0; i < u->inputs.size(); ++i)
      if (u->inputs[i] == from) SetInput(u, i, to);
  for (Value*& o : outputs)
    if (o == from) o = to;
}

void Graph::SetInput(Node* n, size_t i, Value* v) {
  if (i >= n->inputs.size()) n->inputs.resize(i + 1, nullptr);
  if (n->inputs[i]) RemoveOneUse(n->inputs[i], n);
  n->inputs[i] = v;
  if (v) v->users.push_back(n);
}

Value* Graph::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

bool Graph::IsOutput(const Value* v) const {
  return std::find(outputs.begin(), outputs.end(), v) != outputs.end();
}

Status Graph::RenameValue(Value* v, const std::string& name) {
  if (v->name == name) return Status::Ok();
  if (by_name_.count(name)) return InvalidArgument("cannot rename '{}' to '{}': name taken", v->name, name);
  by_name_.erase(v->name);
  v->name = name;
  by_name_[name] = v;
  return Status::Ok();
}

std::vector<Value*> Graph::values() const {
  std::vector<Value*> out;
  for (auto& v : values_) out.push_back(v.get());
  return out;
}

Status Graph::TopologicalSort() {
  // Kahn's algorithm; ties keep insertion order so sorting is stable.
  std::unordered_map<const Node*, int> pending;
  std::unordered_map<const Node*, size_t> order;
  size_t idx = 0;
  for (auto& n : nodes_) {
    order[n.get()] = idx++;
    int deps = 0;
    for (Value* in : n->inputs)
      if (in && in->producer) ++deps;
    pending[n.get()] = deps;
  }
  auto cmp = [&](const Node* a, const Node* b) { return order[a] > order[b]; };
  std::vector<Node*> ready;
  for (auto& n : nodes_)
    if (pending[n.get()] == 0) ready.push_back(n.get());
  std::make_heap(ready.begin(), ready.end(), cmp);
  std::vector<Node*> sorted;
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), cmp);
    Node* n = ready.back();
    ready.pop_back();
    sorted.push_back(n);
    for (Value* out : n->outputs) {
      if (!out) continue;
      for (Node* u : out->users) {
        if (--pending[u] == 0) {
          ready.push_back(u);
          std::push_heap(ready.begin(), ready.end(), cmp);
        }
      }
    }
  }
  if (sorted.size() != nodes_.size()) {
    for (auto& n : nodes_)
      if (pending[n.get()] > 0) return InvalidArgument("graph has a cycle through {}", n->Describe());
  }
  std::unordered_map<const Node*, size_t> pos;
  for (size_t i = 0; i < sorted.size(); ++i) pos[sorted[i]] = i;
  nodes_.sort([&](const std::unique_ptr<Node>& a, const std::unique_ptr<Node>& b) {
    return pos[a.get()] < pos[b.get()];
  });
  return Status::Ok();
}

Status Graph::Verify() const {
  std::set<std::string> node_names;
  std::set<const Value*> defined(inputs.begin(), inputs.end());
  for (auto& v : values_)
    if (v->is_constant()) defined.insert(v.get());
  for (auto& n : nodes_) {
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Value* in = n->inputs[i];
      if (!in) continue;
      if (!defined.count(in)) {
        return InvalidArgument("{} input {} '{}' is not produced before use (missing graph input?)",
                               n->Describe(), i, in->name);
      }
      if (std::find(in->users.begin(), in->users.end(), n.get()) == in->users.end())
        return Internal("{} is not listed as a user of '{}'", n->Describe(), in->name);
    }
    for (Value* out : n->outputs) {
      if (!out) continue;
      if (out->producer != n.get())
        return Internal("{} output '{}' has another producer", n->Describe(), out->name);
      defined.insert(out);
    }
  }
  for (Value* o : outputs)
    if (!defined.count(o)) return InvalidArgument("graph output '{}' is never produced", o->name);
  return Status::Ok();
}

std::unique_ptr<Graph> Graph::Clone() const {
  auto g = std::make_unique<Graph>();
  g->name = name;
  g->opset = opset;
  g->metadata = metadata;
  std::unordered_map<const Value*, Value*> map;
  for (auto& v : values_) {
    Value* c = g->AddValue(v->name);
    c->dtype = v->dtype;
    c->shape = v->shape;
    c->has_shape = v->has_shape;
    c->constant = v->constant;  // weights are shared; passes replace, never mutate in place
    c->block_mask = v->block_mask;
    c->quant = v->quant;
    map[v.get()] = c;
  }
  for (auto& n : nodes_) {
    std::vector<Value*> ins, outs;
    for (Value* in : n->inputs) ins.push_back(in ? map[in] : nullptr);
    for (Value* out : n->outputs) outs.push_back(out ? map[out] : nullptr);
    Node* c = g->AddNode(n->op_type, ins, outs, n->name);
    c->domain = n->domain;
    c->opset = n->opset;
    c->attrs = n->attrs;
  }
  for (Value* v : inputs) g->inputs.push_back(map[v]);
  for (Value* v : outputs) g->outputs.push_back(map[v]);
  return g;
}

namespace {
bool AttrEqual(const Attribute& a, const Attribute& b) {
  if (a.index() != b.index()) return false;
  if (auto* ta = std::get_if<Tensor>(&a)) return ta->Identical(std::get<Tensor>(b));
  return a == b;
}
bool ValueMetaEqual(const Value* a, const Value* b, std::string* diff) {
  if (!a || !b) {
    if (a != b) *diff = "optional input present in one graph only";
    return a == b;
  }
  if (a->dtype != b->dtype || a->has_shape != b->has_shape || (a->has_shape && a->shape != b->shape)) {
    *diff = "value " + a->Describe() + " vs " + b->Describe();
    return false;
  }
  if (a->is_constant() != b->is_constant() ||
      (a->is_constant() && !a->constant.Identical(b->constant))) {
    *diff = "constant '" + a->name + "' differs";
    return false;
  }
  bool ma = a->block_mask != nullptr, mb = b->block_mask != nullptr;
  if (ma != mb || (ma && !(*a->block_mask == *b->block_mask))) {
    *diff = "block mask of '" + a->name + "' differs";
    return false;
  }
  return true;
}
}  // namespace

bool GraphsEqual(const Graph& a, const Graph& b, std::string* diff) {
  std::string scratch;
  if (!diff) diff = &scratch;
  if (a.inputs.size() != b.inputs.size() || a.outputs.size() != b.outputs.size()) {
    *diff = "different number of graph inputs or outputs";
    return false;
  }
  if (a.num_nodes() != b.num_nodes()) {
    *diff = fmt::format("{} nodes vs {}", a.num_nodes(), b.num_nodes());
    return false;
  }
  // Map values of a to values of b by position of production.
  std::unordered_map<const Value*, const Value*> map;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    if (!ValueMetaEqual(a.inputs[i], b.inputs[i], diff)) return false;
    map[a.inputs[i]] = b.inputs[i];
  }
  auto ia = a.nodes().begin();
  auto ib = b.nodes().begin();
  for (; ia != a.nodes().end(); ++ia, ++ib) {
    const Node& na = **ia;
    const Node& nb = **ib;
    if (na.op_type != nb.op_type || na.domain != nb.domain ||
        na.inputs.size() != nb.inputs.size() || na.outputs.size() != nb.outputs.size()) {
      *diff = na.Describe() + " vs " + nb.Describe();
      return false;
    }
    if (na.attrs.size() != nb.attrs.size()) {
      *diff = na.Describe() + ": attribute count differs";
      return false;
    }
    for (auto& [k, v] : na.attrs) {
      auto it = nb.attrs.find(k);
      if (it == nb.attrs.end() || !AttrEqual(v, it->second)) {
        *diff = na.Describe() + ": attribute '" + k + "' differs";
        return false;
      }
    }
    for (size_t i = 0; i < na.inputs.size(); ++i) {
      const Value* va = na.inputs[i];
      const Value* vb = nb.inputs[i];
      if (!ValueMetaEqual(va, vb, diff)) return false;
      if (!va) continue;
      auto it = map.find(va);
      if (it != map.end()) {
        if (it->second != vb) {
          *diff = na.Describe() + ": input " + std::to_string(i) + " wired differently";
          return false;
        }
      } else if (va->is_constant()) {
        map[va] = vb;
      } else {
        *diff = na.Describe() + ": input '" + va->name + "' unknown";
        return false;
      }
    }
    for (size_t i = 0; i < na.outputs.size(); ++i) {
      if (!ValueMetaEqual(na.outputs[i], nb.outputs[i], diff)) return false;
      map[na.outputs[i]] = nb.outputs[i];
    }
  }
  for (size_t i = 0; i < a.outputs.size(); ++i) {
    auto it = map.find(a.outputs[i]);
    if (it == map.end() && a.outputs[i]->is_constant() && !a.outputs[i]->producer) {
      // A constant that is a graph output but feeds no node.
      if (!ValueMetaEqual(a.outputs[i], b.outputs[i], diff)) return false;
      continue;
    }
    if (it == map.end() || it->second != b.outputs[i]) {
      *diff = "graph output " + std::to_string(i) + " differs";
      return false;
    }
  }
  return true;
}

}  // namespace wbs::ir

namespace wbs::ir {

Status ResolveInputShapes(Graph& graph, const std::map<std::string, Shape>& shapes) {
  for (auto& [name, shape] : shapes) {
    bool found = false;
    for (Value* in : graph.inputs) found |= in->name == name;
    if (!found) return InvalidArgument("--input-shape names '{}', which is not a graph input", name);
  }
  for (Value* in : graph.inputs) {
    auto it = shapes.find(in->name);
    if (it != shapes.end()) {
      const Shape& s = it->second;
      if (in->has_shape) {
        if (in->shape.size() != s.size())
          return InvalidArgument("input '{}': given shape {} has rank {}, model declares {}", in->name,
                                 ShapeToString(s), s.size(), ShapeToString(in->shape));
        for (size_t i = 0; i < s.size(); ++i)
          if (in->shape[i] >= 0 && in->shape[i] != s[i])
            return InvalidArgument("input '{}': given shape {} disagrees with declared {}", in->name,
                                   ShapeToString(s), ShapeToString(in->shape));
      }
      for (int64_t d : s)
        if (d < 0) return InvalidArgument("input '{}': given shape {} has a negative dim", in->name, ShapeToString(s));
      in->shape = s;
      in->has_shape = true;
      continue;
    }
    if (!in->has_shape)
      return InvalidArgument("input '{}' has unknown rank; give --input-shape {}=d0,d1,...", in->name, in->name);
    for (size_t i = 0; i < in->shape.size(); ++i) {
      if (in->shape[i] >= 0) continue;
      if (i == 0) {
        in->shape[i] = 1;
      } else {
        return InvalidArgument("input '{}' has unknown dim {} in {}; give --input-shape {}=...", in->name, i,
                               ShapeToString(in->shape), in->name);
      }
    }
  }
  return Status::Ok();
}

}  // namespace wbs::ir

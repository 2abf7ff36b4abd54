#include "train/module.h"

#include <fmt/format.h>

#include <set>
#include <stdexcept>

#include "ir/pass.h"
#include "sparse/layers.h"
#include "train/torch_ops.h"

namespace wbs::train {
namespace {

// Bounded walk through Identity chains (torch.onnx's shared initializers),
// as in sparse/layers.cc.
constexpr int kMaxIdentityHops = 64;

const ir::Value* ConstantBehind(const ir::Value* v) {
  for (int hops = 0; v && hops < kMaxIdentityHops; ++hops) {
    if (v->is_constant()) return v;
    if (!v->producer || v->producer->op_type != "Identity") return nullptr;
    v = v->producer->input(0);
  }
  return nullptr;
}

bool IsTrainableF32(const ir::Value* v) { return v && v->constant.dtype() == DType::kF32; }

// register_parameter/register_buffer reject '.' and empty names.
std::string TorchName(const std::string& ir_name, std::set<std::string>* taken) {
  std::string s = ir_name.empty() ? "_" : ir_name;
  for (char& c : s)
    if (c == '.') c = '_';
  std::string name = s;
  for (int i = 1; taken->count(name); ++i) name = fmt::format("{}_{}", s, i);
  taken->insert(name);
  return name;
}

std::string What(const std::exception& e) {
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

}  // namespace

struct GraphModule::Impl {
  std::unique_ptr<ir::Graph> graph;
  ModuleOptions options;

  // Where a maskable weight's COUT x CIN view lies (from sparse::FindLayers).
  struct LayerInfo {
    MaskLayout layout = MaskLayout::kOutIn;
    WeightView view;
    std::string reason;  // why it cannot carry a mask; empty if it can
  };
  std::map<std::string, LayerInfo> layers;

  std::vector<std::string> weight_names, blockable, buffer_names;
  std::map<std::string, torch::Tensor> params, buffers;
  std::map<std::string, std::string> torch_names;  // IR name -> registered name

  struct MaskState {
    BlockMask mask;
    torch::Tensor expanded;  // 0/1, the weight's shape
  };
  std::map<std::string, MaskState> masks;
  std::map<std::string, Gate> gates;

  // Execution plan: one slot per value; constants are loaded into their slots
  // at the start of forward (parameters through their gate and mask).
  struct Step {
    const ir::Node* node = nullptr;
    std::vector<int> in, out;
    std::vector<int> release;  // slots whose last reader is this step (in forward)
    bool for_first = false;    // forward (first output only) runs it
    internal::TorchOp fn;
  };
  std::vector<Step> steps;
  std::vector<std::pair<int, std::string>> param_slots, buffer_slots;
  std::vector<std::pair<int, torch::Tensor>> fixed_slots;
  int num_slots = 0;
  std::vector<int> input_slots, output_slots;

  // Runs the steps (all, or only those the first output needs) on `inputs`.
  std::vector<torch::Tensor> Execute(const std::vector<torch::Tensor>& inputs, bool all,
                                     bool training) const;

  // The weight as forward uses it: gate(W) ⊙ expand(Γ).
  torch::Tensor Effective(const std::string& name) const {
    torch::Tensor w = params.at(name);
    if (auto g = gates.find(name); g != gates.end()) w = g->second(w);
    if (auto m = masks.find(name); m != masks.end()) w = w * m->second.expanded;
    return w;
  }
};

Result<std::shared_ptr<GraphModule>> GraphModule::Create(const ir::Graph& graph,
                                                         const ModuleOptions& options) {
  std::shared_ptr<GraphModule> module(new GraphModule());
  module->impl_ = std::make_shared<Impl>();
  Impl& m = *module->impl_;
  m.options = options;
  m.graph = graph.Clone();
  ir::Graph& g = *m.graph;
  WBS_RETURN_IF_ERROR(g.TopologicalSort());
  WBS_RETURN_IF_ERROR(g.Verify());
  const std::string gname = g.name.empty() ? "graph" : g.name;
  if (g.outputs.empty()) return InvalidArgument("{}: graph has no outputs", gname);

  // Maskable weights and their views. A mask's block shape may differ from
  // options' (it carries its own); the view does not depend on it.
  sparse::LayerRules rules;
  rules.block_rows = options.block_rows;
  rules.block_cols = options.block_cols;
  WBS_ASSIGN_OR_RETURN(std::vector<sparse::Layer> layers, sparse::FindLayers(g, rules));
  for (const sparse::Layer& l : layers) {
    if (!l.weight || m.layers.count(l.weight->name)) continue;
    Impl::LayerInfo info{l.layout, l.view, l.reason};
    if (l.view.cout == 0)
      info.reason = l.reason.empty() ? "no weight view" : l.reason;
    else if (l.reason.rfind("smaller than", 0) == 0 || l.reason == "first conv" ||
             l.reason == "excluded by --exclude")
      info.reason.clear();  // excluded by policy only: an explicit SetMask may still mask it
    m.layers[l.weight->name] = info;
    if (l.blockable) m.blockable.push_back(l.weight->name);
  }

  // Nodes that reach an output (the rest, e.g. Dropout masks, never run),
  // and the subset forward() needs for the first output.
  auto reaching = [](std::vector<const ir::Value*> work) {
    std::set<const ir::Node*> nodes;
    while (!work.empty()) {
      const ir::Value* v = work.back();
      work.pop_back();
      if (!v || !v->producer || nodes.count(v->producer)) continue;
      nodes.insert(v->producer);
      for (const ir::Value* in : v->producer->inputs) work.push_back(in);
    }
    return nodes;
  };
  const std::set<const ir::Node*> live =
      reaching(std::vector<const ir::Value*>(g.outputs.begin(), g.outputs.end()));
  const std::set<const ir::Node*> first = reaching({g.outputs[0]});

  // Trainable constants: Conv/ConvTranspose/Gemm weights and biases, MatMul
  // constant operands, an Add bias right after a MatMul/Gemm, BN scale/bias;
  // BN running statistics are buffers.
  std::map<const ir::Value*, bool> role;  // true = parameter, false = buffer
  auto mark = [&](const ir::Value* v, bool param) {
    v = ConstantBehind(v);
    if (!IsTrainableF32(v)) return;
    auto [it, inserted] = role.emplace(v, param);
    if (!inserted && it->second != param) it->second = false;  // used as a statistic somewhere
  };
  for (const auto& up : g.nodes()) {
    const ir::Node* n = up.get();
    if (!live.count(n)) continue;
    const std::string& op = n->op_type;
    if (op == "Conv" || op == "ConvTranspose" || op == "Gemm") {
      mark(n->input(1), true);
      mark(n->input(2), true);
      if (op == "Gemm") mark(n->input(0), true);
    } else if (op == "MatMul") {
      mark(n->input(0), true);
      mark(n->input(1), true);
    } else if (op == "BatchNormalization") {
      mark(n->input(1), true);
      mark(n->input(2), true);
      mark(n->input(3), false);
      mark(n->input(4), false);
    } else if (op == "Add" && n->num_inputs() == 2) {
      for (int i = 0; i < 2; ++i) {
        const ir::Value* other = n->input(1 - i);
        if (other && other->producer &&
            (other->producer->op_type == "MatMul" || other->producer->op_type == "Gemm"))
          mark(n->input(i), true);
      }
    }
  }

  std::map<const ir::Value*, int> slot;
  auto slot_of = [&](const ir::Value* v) {
    auto [it, inserted] = slot.emplace(v, m.num_slots);
    if (inserted) ++m.num_slots;
    return it->second;
  };
  std::set<std::string> taken;
  auto load_constant = [&](const ir::Value* v) -> Status {
    if (slot.count(v)) return Status::Ok();
    const int s = slot_of(v);
    WBS_ASSIGN_OR_RETURN(torch::Tensor t, internal::ToTorch(v->constant, options.device));
    auto r = role.find(v);
    if (r == role.end()) {
      m.fixed_slots.emplace_back(s, t);
      return Status::Ok();
    }
    const std::string tname = TorchName(v->name, &taken);
    m.torch_names[v->name] = tname;
    try {
      if (r->second) {
        m.params[v->name] = module->register_parameter(tname, t, /*requires_grad=*/true);
        m.weight_names.push_back(v->name);
        m.param_slots.emplace_back(s, v->name);
      } else {
        m.buffers[v->name] = module->register_buffer(tname, t);
        m.buffer_names.push_back(v->name);
        m.buffer_slots.emplace_back(s, v->name);
      }
    } catch (const std::exception& e) {
      return InvalidArgument("{}: constant '{}': {}", gname, v->name, What(e));
    }
    return Status::Ok();
  };

  for (const ir::Value* v : g.inputs) m.input_slots.push_back(slot_of(v));
  for (const auto& up : g.nodes()) {
    const ir::Node* n = up.get();
    if (!live.count(n)) continue;
    Impl::Step step;
    step.node = n;
    step.for_first = first.count(n) != 0;
    for (const ir::Value* v : n->inputs) {
      if (!v) {
        step.in.push_back(-1);
        continue;
      }
      if (v->is_constant())
        WBS_RETURN_IF_ERROR(load_constant(v));
      else if (!slot.count(v))
        return InvalidArgument("{}: {} reads '{}', which nothing computes", gname, n->Describe(),
                               v->name);
      step.in.push_back(slot.at(v));
    }
    for (const ir::Value* v : n->outputs) step.out.push_back(slot_of(v));
    Result<internal::TorchOp> fn = internal::MakeTorchOp(g, *n);
    if (!fn.ok()) return fn.status().WithContext(gname);
    step.fn = std::move(*fn);
    m.steps.push_back(std::move(step));
  }
  for (const ir::Value* out : g.outputs) {
    if (out->is_constant()) WBS_RETURN_IF_ERROR(load_constant(out));
    if (!slot.count(out))
      return InvalidArgument("{}: output '{}' is never computed", gname, out->name);
    m.output_slots.push_back(slot.at(out));
  }

  // forward() frees activations after their last reader (autograd keeps
  // what backward needs); Run() keeps everything (it may return any value).
  std::vector<int> last(m.num_slots, -1);
  for (size_t i = 0; i < m.steps.size(); ++i)
    if (m.steps[i].for_first)
      for (int s : m.steps[i].in)
        if (s >= 0) last[s] = static_cast<int>(i);
  for (int s = 0; s < m.num_slots; ++s)
    if (last[s] >= 0 && s != m.output_slots[0]) m.steps[last[s]].release.push_back(s);

  // Masks the graph already carries (wbs sparsify, an earlier export).
  for (const std::string& name : m.weight_names) {
    const ir::Value* v = g.FindValue(name);
    if (v && v->block_mask)
      WBS_RETURN_IF_ERROR(module->SetMask(name, *v->block_mask).WithContext(gname));
  }
  return module;
}

std::vector<torch::Tensor> GraphModule::Impl::Execute(const std::vector<torch::Tensor>& inputs,
                                                      bool all, bool training) const {
  if (inputs.size() != input_slots.size())
    throw std::invalid_argument(
        fmt::format("{} inputs given, the graph has {}", inputs.size(), input_slots.size()));
  std::vector<torch::Tensor> env(num_slots);
  for (size_t i = 0; i < inputs.size(); ++i)
    env[input_slots[i]] =
        inputs[i].device() == options.device ? inputs[i] : inputs[i].to(options.device);
  for (const auto& [s, name] : param_slots) env[s] = Effective(name);
  for (const auto& [s, name] : buffer_slots) env[s] = buffers.at(name);
  for (const auto& [s, t] : fixed_slots) env[s] = t;
  std::vector<torch::Tensor> in;
  for (const Step& step : steps) {
    if (!all && !step.for_first) continue;
    in.clear();
    for (int s : step.in) in.push_back(s >= 0 ? env[s] : torch::Tensor());
    std::vector<torch::Tensor> out;
    try {
      out = step.fn(in, training);
    } catch (const std::exception& e) {
      std::string shapes;
      for (const torch::Tensor& t : in)
        shapes += (shapes.empty() ? "" : ", ") +
                  (t.defined() ? fmt::format("{}", fmt::join(t.sizes(), "x")) : std::string("-"));
      throw std::runtime_error(
          fmt::format("{} (inputs {}): {}", step.node->Describe(), shapes, What(e)));
    }
    for (size_t i = 0; i < out.size() && i < step.out.size(); ++i)
      env[step.out[i]] = std::move(out[i]);
    if (!all)
      for (int s : step.release) env[s] = torch::Tensor();
  }
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < (all ? output_slots.size() : 1); ++i) {
    if (!env[output_slots[i]].defined())
      throw std::runtime_error(
          fmt::format("output '{}' was not computed", graph->outputs[i]->name));
    outs.push_back(env[output_slots[i]]);
  }
  return outs;
}

torch::Tensor GraphModule::forward(const torch::Tensor& x) {
  return impl_->Execute({x}, /*all=*/false, is_training())[0];
}

Result<torch::Tensor> GraphModule::Forward(const torch::Tensor& x) {
  try {
    return forward(x);
  } catch (const std::exception& e) {
    const std::string gname = impl_->graph->name.empty() ? "graph" : impl_->graph->name;
    return InvalidArgument("{}: {}", gname, What(e));
  }
}

Result<std::vector<torch::Tensor>> GraphModule::Run(const std::vector<torch::Tensor>& inputs) {
  try {
    return impl_->Execute(inputs, /*all=*/true, is_training());
  } catch (const std::exception& e) {
    const std::string gname = impl_->graph->name.empty() ? "graph" : impl_->graph->name;
    return InvalidArgument("{}: {}", gname, What(e));
  }
}

const std::vector<std::string>& GraphModule::weight_names() const { return impl_->weight_names; }
const std::vector<std::string>& GraphModule::blockable_weights() const { return impl_->blockable; }
const std::vector<std::string>& GraphModule::buffer_names() const { return impl_->buffer_names; }

torch::Tensor& GraphModule::weight(const std::string& name) {
  auto it = impl_->params.find(name);
  if (it == impl_->params.end())
    throw std::out_of_range(fmt::format("no trainable weight '{}'", name));
  return it->second;
}

torch::Tensor& GraphModule::buffer(const std::string& name) {
  auto it = impl_->buffers.find(name);
  if (it == impl_->buffers.end()) throw std::out_of_range(fmt::format("no buffer '{}'", name));
  return it->second;
}

std::string GraphModule::torch_name(const std::string& name) const {
  auto it = impl_->torch_names.find(name);
  return it == impl_->torch_names.end() ? std::string() : it->second;
}

Status GraphModule::SetMask(const std::string& name, const BlockMask& mask) {
  Impl& m = *impl_;
  auto p = m.params.find(name);
  auto l = m.layers.find(name);
  if (p == m.params.end() || l == m.layers.end())
    return InvalidArgument("weight '{}': not a Conv/Gemm/MatMul weight of the module", name);
  const Impl::LayerInfo& info = l->second;
  if (!info.reason.empty())
    return InvalidArgument("weight '{}': cannot carry a block mask ({})", name, info.reason);
  if (mask.layout != info.layout)
    return InvalidArgument("weight '{}': mask layout {} but the weight is {}", name,
                           mask.layout == MaskLayout::kOutIn ? "oi" : "io",
                           info.layout == MaskLayout::kOutIn ? "oi" : "io");
  if (mask.block_rows < kMinBlockEdge || mask.block_rows > kMaxBlockEdge ||
      mask.block_cols < kMinBlockEdge || mask.block_cols > kMaxBlockEdge)
    return InvalidArgument("weight '{}': block {}x{} out of range", name, mask.block_rows,
                           mask.block_cols);
  const WeightView& v = info.view;
  const int64_t rows = (v.cout + mask.block_rows - 1) / mask.block_rows;
  const int64_t cols = (v.cin + mask.block_cols - 1) / mask.block_cols;
  if (mask.rows != rows || mask.cols != cols ||
      static_cast<int64_t>(mask.keep.size()) != rows * cols)
    return InvalidArgument("weight '{}': {}x{} mask of {}x{} blocks, the {}x{} weight needs {}x{}",
                           name, mask.rows, mask.cols, mask.block_rows, mask.block_cols, v.cout,
                           v.cin, rows, cols);
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor& w = p->second;
    std::vector<float> keep(mask.keep.begin(), mask.keep.end());
    torch::Tensor e = torch::tensor(keep).reshape({rows, cols});
    e = e.repeat_interleave(mask.block_rows, 0).repeat_interleave(mask.block_cols, 1);
    e = e.slice(0, 0, v.cout).slice(1, 0, v.cin);  // ragged last block row/column
    if (info.layout == MaskLayout::kInOut) {
      e = e.t();
    } else {
      std::vector<int64_t> shape(w.dim(), 1);
      shape[0] = v.cout;
      shape[1] = v.cin;
      e = e.reshape(shape);
    }
    e = e.expand(w.sizes()).contiguous().to(w.options().requires_grad(false));
    m.masks[name] = Impl::MaskState{mask, e};
  } catch (const std::exception& e) {
    return Internal("weight '{}': {}", name, What(e));
  }
  return Status::Ok();
}

std::optional<BlockMask> GraphModule::mask(const std::string& name) const {
  auto it = impl_->masks.find(name);
  if (it == impl_->masks.end()) return std::nullopt;
  return it->second.mask;
}

void GraphModule::ClearMasks() { impl_->masks.clear(); }

void GraphModule::ApplyMasks() {
  torch::NoGradGuard no_grad;
  for (auto& [name, state] : impl_->masks) impl_->params.at(name).mul_(state.expanded);
}

Status GraphModule::SetGate(const std::string& name, Gate gate) {
  if (!impl_->params.count(name))
    return InvalidArgument("weight '{}': not a trainable weight of the module", name);
  if (gate)
    impl_->gates[name] = std::move(gate);
  else
    impl_->gates.erase(name);
  return Status::Ok();
}

Result<std::unique_ptr<ir::Graph>> GraphModule::ExportGraph(bool fold_bn) const {
  const Impl& m = *impl_;
  std::unique_ptr<ir::Graph> out = m.graph->Clone();
  const std::string gname = out->name.empty() ? "graph" : out->name;
  try {
    torch::NoGradGuard no_grad;
    auto write = [&](const std::string& name, const torch::Tensor& t) -> Status {
      ir::Value* v = out->FindValue(name);
      if (!v || !v->is_constant())
        return Internal("{}: export: constant '{}' is missing from the graph", gname, name);
      WBS_ASSIGN_OR_RETURN(Tensor value, internal::FromTorch(t));
      if (value.shape() != v->constant.shape())
        return Internal("{}: export: '{}' changed shape to {}", gname, name,
                        ShapeToString(value.shape()));
      v->constant = std::move(value);
      return Status::Ok();
    };
    for (const std::string& name : m.weight_names)
      WBS_RETURN_IF_ERROR(write(name, m.Effective(name)));
    for (const std::string& name : m.buffer_names)
      WBS_RETURN_IF_ERROR(write(name, m.buffers.at(name)));
  } catch (const std::exception& e) {
    return Internal("{}: export: {}", gname, What(e));
  }
  for (const auto& [name, state] : m.masks) {
    ir::Value* v = out->FindValue(name);
    WBS_RETURN_IF_ERROR(
        CheckMaskAgainstWeight(state.mask, v->constant, fmt::format("weight '{}'", name)));
    v->block_mask = std::make_shared<BlockMask>(state.mask);
  }
  if (fold_bn) {
    std::set<std::string> before;
    for (const ir::Value* v : out->values()) before.insert(v->name);
    ir::PassManager pm;
    pm.Add(ir::CreateFoldBatchNormPass());
    pm.Add(ir::CreateDeadCodeEliminationPass());
    WBS_RETURN_IF_ERROR(pm.Run(*out));
    // The pass names the constants it creates "<w>_bnfolded" and
    // "<conv>.bias_bnfolded"; give them back their natural names
    // (torchvision's "<conv>.weight", "<conv>.bias") when free, so masks and
    // weights map across files. Constants the source graph had keep theirs.
    const std::string suffix = "_bnfolded";
    for (ir::Value* v : out->values()) {
      if (!v->is_constant() || before.count(v->name) || v->name.size() <= suffix.size() ||
          v->name.compare(v->name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string natural = v->name.substr(0, v->name.size() - suffix.size());
      if (!out->FindValue(natural)) WBS_RETURN_IF_ERROR(out->RenameValue(v, natural));
    }
  }
  WBS_RETURN_IF_ERROR(out->Verify());
  return out;
}

const ir::Graph& GraphModule::graph() const { return *impl_->graph; }

}  // namespace wbs::train

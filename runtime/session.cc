#include "runtime/session.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "core/env.h"
#include "core/logging.h"
#include "runtime/memory_plan.h"

namespace wbs::runtime {

namespace {

// Where a value's tensor comes from at run time.
enum class SlotKind { kConstant, kInput, kPlanned, kDynamic };

struct Slot {
  ir::Value* value = nullptr;
  SlotKind kind = SlotKind::kDynamic;
  int input_index = -1;
  size_t offset = 0;  // in the arena, for kPlanned
  int def = -1;       // step producing it
  int last_use = -1;  // last step reading it (-1: none)
  bool is_output = false;
  int shares = -1;  // kPlanned: the slot whose arena buffer it takes over (in-place output)
};

struct Step {
  ir::Node* node = nullptr;
  std::unique_ptr<Operator> op;
  std::vector<int> inputs;   // slot index or -1
  std::vector<int> outputs;  // slot index or -1
  std::vector<int> release;  // slots whose last reader is this step
};

}  // namespace

struct Session::Impl {
  std::unique_ptr<ir::Graph> graph;
  SessionOptions options;
  std::vector<Slot> slots;
  std::vector<Step> steps;
  std::vector<int> output_slots;
  std::vector<ActivationLayout> layouts;  // per slot, after NegotiateLayouts()
  std::shared_ptr<void> arena;
  MemoryPlanStats stats;
  // WBS_PROFILE_STEPS=1: per step, each Run()'s time of the operator
  // (last column: the whole Run()), printed when the session is destroyed.
  std::vector<std::vector<float>> step_us;
  std::vector<float> gap_us;  // per Run(): its time minus its operators' times

  ~Impl();
  Status Prepare();
  Status NegotiateLayouts();
  void ShareInPlaceOutputs();
  Status PlanMemory();
};

namespace {

// WBS_PROPAGATE_LAYOUTS=0 keeps every tensor plain (A/B measurements).
bool LayoutPropagationEnabled() {
  static const bool enabled = EnvSwitchOn(
      "WBS_PROPAGATE_LAYOUTS", "WBS_PROPAGATE_LAYOUTS=0: operators exchange plain tensors only");
  return enabled;
}

// WBS_INPLACE=0 gives every planned tensor its own buffer (no in-place
// outputs, see ShareInPlaceOutputs). Read at each session's creation, so
// wbs_bench_models --variants=WBS_INPLACE=0,1 compares both in one process.
bool InPlaceEnabled() {
  const char* v = std::getenv("WBS_INPLACE");
  return v == nullptr || std::string(v) != "0";
}

// WBS_PROFILE_STEPS=1 times every operator inside the running model (its
// caches and neighbours as in production, unlike bench --profile_nodes,
// which runs each node alone) and prints, when the session is destroyed,
// "step_profile<TAB>index<TAB>node<TAB>op:impl<TAB>runs<TAB>median us<TAB>
// min us" per
// step, then "step_profile<TAB>total<TAB>sum of step medians<TAB>median
// Run() us<TAB>median gap us", the gap being each Run()'s time minus its
// operators' (the session's own work between operators: output tensors,
// releases). Under load the sum of medians drops the preempted samples
// that every whole run contains, so only the gap compares runs; the
// minimum approximates an operator's time on a quiet machine.
bool StepProfileEnabled() {
  static const bool on = EnvFlagSet("WBS_PROFILE_STEPS");
  return on;
}

float MedianOf(std::vector<float> v) {
  if (v.empty()) return 0.0f;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

Session::Impl::~Impl() {
  if (step_us.empty() || step_us.back().empty()) return;
  double sum = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const float med = MedianOf(step_us[i]);
    sum += med;
    const ir::Node& n = *steps[i].node;
    const float least =
        step_us[i].empty() ? 0.0f : *std::min_element(step_us[i].begin(), step_us[i].end());
    std::fprintf(stderr, "step_profile\t%zu\t%s\t%s:%s\t%zu\t%.1f\t%.1f\n", i,
                 n.name.empty() ? n.Describe().c_str() : n.name.c_str(), n.op_type.c_str(),
                 steps[i].op->impl_name().c_str(), step_us[i].size(), med, least);
  }
  std::fprintf(stderr, "step_profile\ttotal\t%.1f\t%.1f\t%.1f\n", sum, MedianOf(step_us.back()),
               MedianOf(gap_us));
}

Status Session::Impl::Prepare() {
  ir::Graph& g = *graph;
  WBS_RETURN_IF_ERROR(ir::ResolveInputShapes(g, options.input_shapes));
  WBS_RETURN_IF_ERROR(ir::InferShapes(g));
  if (options.optimize) {
    auto evaluator = CreateReferenceEvaluator();
    ir::PassManager pm;
    ir::AddDefaultPasses(pm, evaluator.get());
    WBS_RETURN_IF_ERROR(pm.Run(g));
  }
  WBS_RETURN_IF_ERROR(g.TopologicalSort());
  WBS_RETURN_IF_ERROR(ir::InferShapes(g));
  WBS_RETURN_IF_ERROR(g.Verify());

  // Fast operators specialise on the thread count when created (oneDNN
  // primitives), so it must be in force before they are built.
  omp_set_num_threads(options.num_threads);
  std::unordered_map<const ir::Value*, int> slot_of;
  auto slot_for = [&](ir::Value* v) -> int {
    auto it = slot_of.find(v);
    if (it != slot_of.end()) return it->second;
    Slot s;
    s.value = v;
    if (v->is_constant()) s.kind = SlotKind::kConstant;
    slots.push_back(s);
    slot_of[v] = static_cast<int>(slots.size()) - 1;
    return static_cast<int>(slots.size()) - 1;
  };
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    int s = slot_for(g.inputs[i]);
    slots[s].kind = SlotKind::kInput;
    slots[s].input_index = static_cast<int>(i);
  }
  for (auto& n : g.nodes()) {
    Step step;
    step.node = n.get();
    int idx = static_cast<int>(steps.size());
    OpCreateArgs args;
    args.node = n.get();
    args.backend = options.backend;
    for (ir::Value* v : n->inputs) {
      args.inputs.push_back(ir::ValueInfo::FromValue(v));
      if (!v) {
        step.inputs.push_back(-1);
        continue;
      }
      int s = slot_for(v);
      slots[s].last_use = idx;
      step.inputs.push_back(s);
    }
    for (ir::Value* v : n->outputs) {
      args.outputs.push_back(ir::ValueInfo::FromValue(v));
      if (!v) {
        step.outputs.push_back(-1);
        continue;
      }
      int s = slot_for(v);
      slots[s].def = idx;
      slots[s].kind = v->shape_is_static() ? SlotKind::kPlanned : SlotKind::kDynamic;
      step.outputs.push_back(s);
    }
    WBS_ASSIGN_OR_RETURN(step.op, CreateOperator(args));
    WBS_LOG_DEBUG("{} -> {}", n->Describe(), step.op->impl_name());
    steps.push_back(std::move(step));
  }
  for (ir::Value* v : g.outputs) {
    int s = slot_for(v);
    slots[s].is_output = true;
    // Graph outputs are handed to the caller: never placed in the arena.
    if (slots[s].kind == SlotKind::kPlanned) slots[s].kind = SlotKind::kDynamic;
    output_slots.push_back(s);
  }
  for (size_t s = 0; s < slots.size(); ++s) {
    const Slot& sl = slots[s];
    if (sl.kind == SlotKind::kConstant || sl.kind == SlotKind::kInput || sl.is_output) continue;
    if (sl.last_use >= 0)
      steps[sl.last_use].release.push_back(static_cast<int>(s));
    else if (sl.def >= 0)
      steps[sl.def].release.push_back(static_cast<int>(s));  // unused output
  }
  WBS_RETURN_IF_ERROR(NegotiateLayouts());
  ShareInPlaceOutputs();
  return PlanMemory();
}

// In-place outputs. An operator may let output 0 take over one input's
// buffer (Operator::InPlaceInput: a block-sparse Conv's fused residual).
// The session does so when that input is a planned arena tensor read last
// by this step and by no other input slot of it, and output 0 is a planned
// tensor of the same size and layout: the memory plan then sees one buffer
// living from the input's producer to the output's last reader. For
// ResNet-50's conv3 + residual this writes y into lines the conv has just
// read (the residual's), where a buffer of its own would be another
// 0.2-3.2 MB whose lines come from L3 or DRAM to be overwritten
// (docs/BENCHMARKS.md "AVX2 in-model gap, h_avx2m").
void Session::Impl::ShareInPlaceOutputs() {
  if (!InPlaceEnabled()) return;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    const int k = step.op->InPlaceInput();
    if (k < 0 || static_cast<size_t>(k) >= step.inputs.size() || step.outputs.empty()) continue;
    const int in = step.inputs[static_cast<size_t>(k)], out = step.outputs[0];
    if (in < 0 || out < 0 || in == out) continue;
    const Slot& si = slots[in];
    const Slot& so = slots[out];
    if (si.kind != SlotKind::kPlanned || so.kind != SlotKind::kPlanned || si.is_output ||
        so.is_output || si.last_use != static_cast<int>(i) || layouts[in] != layouts[out] ||
        si.value->dtype != so.value->dtype ||
        NumElements(si.value->shape) != NumElements(so.value->shape))
      continue;
    if (std::count(step.inputs.begin(), step.inputs.end(), in) != 1) continue;
    slots[out].shares = si.shares >= 0 ? si.shares : in;
    WBS_LOG_DEBUG("{}: output '{}' in place of '{}'", step.node->Describe(), so.value->name,
                  si.value->name);
  }
}

// A tensor travels in its producer's proposed layout when every reader
// accepts it and it stays inside the arena (graph outputs and inputs,
// constants and data-dependent shapes are plain). Proposals depend on the
// inputs' layouts, so operators are visited in execution order.
Status Session::Impl::NegotiateLayouts() {
  layouts.assign(slots.size(), ActivationLayout::kPlain);
  if (!options.negotiate_layouts || !LayoutPropagationEnabled()) return Status::Ok();
  std::vector<std::vector<std::pair<int, size_t>>> readers(slots.size());  // (step, input)
  for (size_t i = 0; i < steps.size(); ++i)
    for (size_t k = 0; k < steps[i].inputs.size(); ++k)
      if (steps[i].inputs[k] >= 0) readers[steps[i].inputs[k]].emplace_back(static_cast<int>(i), k);
  for (Step& step : steps) {
    std::vector<ActivationLayout> in;
    for (int s : step.inputs) in.push_back(s < 0 ? ActivationLayout::kPlain : layouts[s]);
    std::vector<ActivationLayout> out = step.op->ProposeOutputLayouts(in);
    out.resize(step.outputs.size(), ActivationLayout::kPlain);
    for (size_t o = 0; o < out.size(); ++o) {
      const int s = step.outputs[o];
      if (out[o] == ActivationLayout::kPlain) continue;
      bool ok = s >= 0 && slots[s].kind == SlotKind::kPlanned && !slots[s].is_output &&
                !readers[s].empty() && LayoutFits(out[o], slots[s].value->shape);
      for (size_t r = 0; ok && r < readers[s].size(); ++r)
        ok = steps[readers[s][r].first].op->AcceptsInputLayout(readers[s][r].second, out[o]);
      if (ok) {
        layouts[s] = out[o];
        WBS_LOG_DEBUG("{}: output '{}' stays {}", step.node->Describe(), slots[s].value->name,
                      ActivationLayoutName(out[o]));
      } else {
        out[o] = ActivationLayout::kPlain;
      }
    }
    WBS_RETURN_IF_ERROR(step.op->SetOutputLayouts(out).WithContext(step.node->Describe()));
  }
  return Status::Ok();
}

Status Session::Impl::PlanMemory() {
  std::vector<BufferRequest> requests;
  std::vector<int> planned;
  stats = MemoryPlanStats();
  stats.fully_static = true;
  // A buffer shared by in-place outputs (ShareInPlaceOutputs) lives until
  // the last reader of any of its tensors.
  std::vector<int> last(slots.size(), -1);
  for (size_t s = 0; s < slots.size(); ++s) {
    const Slot& sl = slots[s];
    if (sl.kind != SlotKind::kPlanned) continue;
    const size_t owner = sl.shares >= 0 ? static_cast<size_t>(sl.shares) : s;
    last[owner] = std::max({last[owner], sl.last_use, sl.def});
  }
  size_t num_planned = 0;
  for (size_t s = 0; s < slots.size(); ++s) {
    Slot& sl = slots[s];
    if (sl.kind == SlotKind::kDynamic && !sl.is_output) stats.fully_static = false;
    if (sl.kind != SlotKind::kPlanned) continue;
    ++num_planned;
    if (sl.shares >= 0) ++stats.num_in_place;
    const size_t bytes =
        static_cast<size_t>(NumElements(sl.value->shape)) * DTypeSize(sl.value->dtype);
    stats.unplanned_bytes += bytes;
    if (sl.shares >= 0) continue;
    BufferRequest r;
    r.bytes = bytes;
    r.first = sl.def;
    r.last = last[s];
    requests.push_back(r);
    planned.push_back(static_cast<int>(s));
  }
  MemoryPlan plan = runtime::PlanMemory(requests, kTensorAlignment);
  for (size_t i = 0; i < planned.size(); ++i) slots[planned[i]].offset = plan.offsets[i];
  for (Slot& sl : slots)
    if (sl.kind == SlotKind::kPlanned && sl.shares >= 0) sl.offset = slots[sl.shares].offset;
  stats.arena_bytes = plan.arena_bytes;
  stats.num_planned = num_planned;
  if (plan.arena_bytes > 0) {
    Tensor arena_tensor(DType::kU8, {static_cast<int64_t>(plan.arena_bytes)});
    // Keep the storage alive through a tensor copy captured by the deleter.
    auto holder = std::make_shared<Tensor>(std::move(arena_tensor));
    arena = std::shared_ptr<void>(holder->raw(), [holder](void*) {});
  }
  WBS_LOG_DEBUG("memory plan: {} buffers, arena {} bytes (without reuse {} bytes)",
                stats.num_planned, stats.arena_bytes, stats.unplanned_bytes);
  return Status::Ok();
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::Create(const ir::Graph& graph,
                                                 const SessionOptions& options) {
  if (options.num_threads < 1)
    return InvalidArgument("num_threads must be >= 1, got {}", options.num_threads);
  auto impl = std::make_unique<Impl>();
  impl->graph = graph.Clone();
  impl->options = options;
  WBS_RETURN_IF_ERROR(impl->Prepare());
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const ir::Graph& Session::graph() const { return *impl_->graph; }
const MemoryPlanStats& Session::memory_stats() const { return impl_->stats; }

std::vector<std::pair<std::string, ActivationLayout>> Session::NonPlainValues() const {
  std::vector<std::pair<std::string, ActivationLayout>> out;
  for (size_t s = 0; s < impl_->slots.size(); ++s)
    if (impl_->layouts[s] != ActivationLayout::kPlain)
      out.emplace_back(impl_->slots[s].value->name, impl_->layouts[s]);
  return out;
}

std::vector<std::string> Session::NodeImplementations() const {
  std::vector<std::string> out;
  for (auto& s : impl_->steps) out.push_back(s.node->op_type + ":" + s.op->impl_name());
  return out;
}

Result<std::vector<Tensor>> Session::Run(const std::vector<Tensor>& inputs) {
  Impl& im = *impl_;
  const ir::Graph& g = *im.graph;
  if (inputs.size() != g.inputs.size())
    return InvalidArgument("model has {} inputs, {} given", g.inputs.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value* v = g.inputs[i];
    if (!inputs[i].defined()) return InvalidArgument("input '{}' is missing", v->name);
    if (inputs[i].dtype() != v->dtype || inputs[i].shape() != v->shape)
      return InvalidArgument("input '{}': expected {}{}, got {}", v->name, DTypeName(v->dtype),
                             ShapeToString(v->shape), inputs[i].Describe());
  }
  omp_set_num_threads(im.options.num_threads);
  ExecContext ctx;
  ctx.num_threads = im.options.num_threads;

  std::vector<Tensor> values(im.slots.size());
  for (size_t s = 0; s < im.slots.size(); ++s) {
    const Slot& sl = im.slots[s];
    if (sl.kind == SlotKind::kConstant)
      values[s] = sl.value->constant;
    else if (sl.kind == SlotKind::kInput)
      values[s] = inputs[sl.input_index];
  }
  std::vector<const Tensor*> in_ptrs;
  std::vector<Tensor*> out_ptrs;
  std::vector<ir::ValueInfo> in_infos, out_infos;
  const bool profile = StepProfileEnabled();
  using Clock = std::chrono::steady_clock;
  const Clock::time_point run_start = profile ? Clock::now() : Clock::time_point();
  if (profile) im.step_us.resize(im.steps.size() + 1);
  float ops_us = 0;  // this Run()'s operator time, when profiling
  for (size_t si = 0; si < im.steps.size(); ++si) {
    Step& step = im.steps[si];
    in_ptrs.clear();
    for (int s : step.inputs) in_ptrs.push_back(s < 0 ? nullptr : &values[s]);
    bool need_infer = false;
    for (int s : step.outputs)
      if (s >= 0 && !im.slots[s].value->shape_is_static()) need_infer = true;
    if (need_infer) {
      in_infos.clear();
      for (const Tensor* t : in_ptrs) in_infos.push_back(ir::ValueInfo::FromTensor(t));
      WBS_RETURN_IF_ERROR(ir::InferNode(*step.node, in_infos, out_infos));
    }
    out_ptrs.clear();
    for (size_t o = 0; o < step.outputs.size(); ++o) {
      int s = step.outputs[o];
      if (s < 0) {
        out_ptrs.push_back(nullptr);
        continue;
      }
      const Slot& sl = im.slots[s];
      const ir::Value* v = sl.value;
      if (sl.kind == SlotKind::kPlanned) {
        values[s] = Tensor::Wrap(v->dtype, v->shape, static_cast<char*>(im.arena.get()) + sl.offset,
                                 im.arena);
      } else if (v->shape_is_static()) {
        values[s] = Tensor(v->dtype, v->shape);
      } else {
        const ir::ValueInfo& info = out_infos[o];
        if (!info.has_shape)
          return Internal("{}: output {} shape unknown at run time", step.node->Describe(), o);
        values[s] = Tensor(info.dtype, info.shape);
      }
      out_ptrs.push_back(&values[s]);
    }
    const Clock::time_point t0 = profile ? Clock::now() : Clock::time_point();
    Status st = step.op->Run(in_ptrs, out_ptrs, ctx);
    if (profile) {
      im.step_us[si].push_back(std::chrono::duration<float, std::micro>(Clock::now() - t0).count());
      ops_us += im.step_us[si].back();
    }
    if (!st.ok()) {
      if (st.message().find(step.node->name) == std::string::npos)
        return st.WithContext(step.node->Describe());
      return st;
    }
    for (int s : step.release) values[s] = Tensor();
  }
  std::vector<Tensor> outputs;
  for (int s : im.output_slots) {
    const Slot& sl = im.slots[s];
    // Inputs and constants returned as outputs are copied so callers own them.
    outputs.push_back(sl.kind == SlotKind::kConstant || sl.kind == SlotKind::kInput
                          ? values[s].Clone()
                          : values[s]);
  }
  if (profile) {
    im.step_us.back().push_back(
        std::chrono::duration<float, std::micro>(Clock::now() - run_start).count());
    im.gap_us.push_back(im.step_us.back().back() - ops_us);
  }
  return outputs;
}

namespace {
class ReferenceEvaluator : public ir::NodeEvaluator {
 public:
  Result<std::vector<Tensor>> Evaluate(const ir::Node& node,
                                       const std::vector<const Tensor*>& inputs) override {
    std::vector<ir::ValueInfo> in_infos, out_infos;
    for (const Tensor* t : inputs) in_infos.push_back(ir::ValueInfo::FromTensor(t));
    WBS_RETURN_IF_ERROR(ir::InferNode(node, in_infos, out_infos));
    OpCreateArgs args;
    args.node = &node;
    args.backend = Backend::kReference;
    args.inputs = in_infos;
    args.outputs = out_infos;
    WBS_ASSIGN_OR_RETURN(auto op, CreateOperator(args));
    std::vector<Tensor> outs;
    std::vector<Tensor*> out_ptrs;
    outs.reserve(out_infos.size());
    for (auto& info : out_infos) {
      if (!info.has_shape)
        return Internal("{}: cannot fold, output shape unknown", node.Describe());
      outs.emplace_back(info.dtype, info.shape);
    }
    for (auto& t : outs) out_ptrs.push_back(&t);
    ExecContext ctx;
    WBS_RETURN_IF_ERROR(op->Run(inputs, out_ptrs, ctx));
    return outs;
  }
};
}  // namespace

std::unique_ptr<ir::NodeEvaluator> CreateReferenceEvaluator() {
  return std::make_unique<ReferenceEvaluator>();
}

}  // namespace wbs::runtime

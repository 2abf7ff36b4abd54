// The pass pipeline (aie/passes/compiler.h).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>

#include "aie/passes/cache.h"
#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {
struct Pass {
  const char* name;
  Status (*run)(CompileState&);
  std::string (*dump)(const CompileState&);
};
// Order: subvolume picks the core tile from the per-core share the split
// rule gives, split places it, balance fixes the channel ranges.
const Pass kPasses[] = {
    {"schedule", RunSchedule, DumpSchedule}, {"subvolume", RunSubvolume, DumpSubvolume},
    {"split", RunSplit, DumpSplit},          {"balance", RunBalance, DumpBalance},
    {"compact", RunCompact, DumpCompact},    {"memplan", RunMemPlan, DumpMemPlan},
    {"fusion", RunFusion, DumpFusion},       {"codegen", RunCodegen, DumpCodegen},
    {"time", RunTimeModel, DumpTimeModel},
};
}  // namespace

const std::vector<std::string>& PassNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Pass& p : kPasses) v.push_back(p.name);
    return v;
  }();
  return names;
}

namespace {
Status RunPasses(CompileState& s, const std::string& print_after, std::string* printed) {
  for (const Pass& p : kPasses) {
    Status st = p.run(s);
    if (!st.ok()) return st.WithContext(fmt::format("aie pass {}", p.name));
    if (printed && print_after == p.name) *printed += p.dump(s);
  }
  return Status::Ok();
}
}  // namespace

namespace {
Status CompileOnce(CompileState& s, const std::string& print_after, std::string* printed);

// A fresh state for a trial compile of the same graph on the same target.
CompileState TrialOf(const CompileState& s, const CompileOptions& options) {
  CompileState b;
  b.target = s.target;
  b.graph = s.graph;
  b.options = options;
  b.cache = s.cache;
  return b;
}

// Turns off the Compile() trials that compare whole programs, for a compile
// of the kept program with one more choice set.
void KeptProgramOnly(CompileOptions& o) {
  o.try_spread = o.try_wide = o.try_resident_min_w = false;
  o.try_replicate = o.try_resident_partial = o.try_sparse_w = false;
  o.try_permute = o.try_w_double = o.try_in_stay = o.try_stay_rows = false;
  o.try_add_partner = o.try_partial_kept = o.try_replica_in_place = false;
  o.try_post_conv = false;
}

// The kept program once more with `change` applied to its options and every
// trial off (CompileOnce), keeping the faster of the two.
Status KeepFasterWith(CompileState& s, std::string& text, const std::string& print_after,
                      const std::function<void(CompileOptions&)>& change) {
  CompileState b = TrialOf(s, s.options);
  KeptProgramOnly(b.options);
  change(b.options);
  std::string tb;
  WBS_RETURN_IF_ERROR(CompileOnce(b, print_after, &tb));
  if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
  return Status::Ok();
}

// A per-layer choice by trial: compile with `force` applied to every layer
// of `on`, then to only the layers that got faster (layers' times are
// nearly additive), and keep the fastest of `s` and the two programs.
// `force(options, layers)` sets the choice in a trial's options and turns
// off the trials that already ran.
template <typename Force>
Status KeepFasterPerLayer(CompileState& s, std::string& text, const std::map<std::string, bool>& on,
                          const std::string& print_after, Force force, bool refine = false) {
  if (on.empty()) return Status::Ok();
  auto trial = [&](const std::map<std::string, bool>& forced, CompileState* r, std::string* t) {
    *r = TrialOf(s, s.options);
    force(r->options, forced);
    return CompileOnce(*r, print_after, t);
  };
  CompileState b;
  std::string tb;
  WBS_RETURN_IF_ERROR(trial(on, &b, &tb));
  std::map<std::string, bool> mixed;
  for (size_t i = 0; i < s.layers.size() && i < b.layers.size(); ++i)
    if (on.count(s.layers[i].name) && b.layers[i].time_s < s.layers[i].time_s)
      mixed[s.layers[i].name] = true;
  CompileState c;
  std::string tc;
  const bool tried_c = !mixed.empty() && mixed.size() < on.size();
  if (tried_c) WBS_RETURN_IF_ERROR(trial(mixed, &c, &tc));
  // `refine`: once more with only the layers that were faster in that
  // second program too (a choice can lose next to its neighbours' choices).
  CompileState d;
  std::string td;
  bool tried_d = false;
  if (refine && tried_c) {
    std::map<std::string, bool> kept;
    for (size_t i = 0; i < s.layers.size() && i < c.layers.size(); ++i)
      if (mixed.count(s.layers[i].name) && c.layers[i].time_s < s.layers[i].time_s)
        kept[s.layers[i].name] = true;
    tried_d = !kept.empty() && kept.size() < mixed.size();
    if (tried_d) WBS_RETURN_IF_ERROR(trial(kept, &d, &td));
  }
  if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
  if (tried_c && c.total_s < s.total_s) s = std::move(c), text = std::move(tc);
  if (tried_d && d.total_s < s.total_s) s = std::move(d), text = std::move(td);
  return Status::Ok();
}
}  // namespace

Status CompileTrials(CompileState& s, const std::string& print_after, std::string* printed,
                     const std::function<void(const CompileState&)>& after_first = {});

namespace {

// Threads for concurrent trial compiles: CompileOptions::threads, else
// WBS_AIE_THREADS, else the machine's hardware threads.
int TrialThreads(const CompileOptions& o) {
  if (o.threads > 0) return o.threads;
  if (const char* e = std::getenv("WBS_AIE_THREADS")) {
    const int n = std::atoi(e);
    if (n > 0) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// A whole CompileTrials() run on its own thread (joined at the latest when
// this goes out of scope, so an early error return never leaves it running).
class TrialThread {
 public:
  TrialThread() = default;
  TrialThread(const TrialThread&) = delete;
  TrialThread& operator=(const TrialThread&) = delete;
  ~TrialThread() {
    if (thread_.joinable()) thread_.join();
  }
  void Start(CompileState* s, const std::string& print_after, std::string* printed) {
    thread_ = std::thread(
        [this, s, &print_after, printed] { status_ = CompileTrials(*s, print_after, printed); });
  }
  bool started() const { return thread_.joinable() || joined_; }
  Status Join() {
    if (thread_.joinable()) thread_.join(), joined_ = true;
    return status_;
  }

 private:
  std::thread thread_;
  bool joined_ = false;
  Status status_ = Status::Ok();
};

}  // namespace

Status Compile(CompileState& s, const std::string& print_after, std::string* printed) {
  if (!print_after.empty()) {
    bool known = false;
    for (const Pass& p : kPasses) known |= print_after == p.name;
    if (!known)
      return InvalidArgument("--print-after: unknown pass '{}' (passes: {})", print_after,
                             fmt::join(PassNames(), ", "));
  }
  // Replicated residency (fusion.cc PlanReplicas) adds WRITEFM traffic into
  // the neighbours' memtiles and takes memtile room the layers' slabs were
  // not sized around, and it changes which choices the trials below keep
  // (ResNet-50 8x8 50%: 0.719 -> 0.733 ms when only the first compile was
  // compared). Where it replicated anything, run every trial once more
  // without it and keep the faster program, so it never makes one slower.
  const bool own_cache = !s.cache;
  if (own_cache) s.cache = std::make_shared<CompileCache>();
  const bool trace = s.options.trace;
  s.options.trace = false;
  const CompileOptions opts = s.options;
  std::string text;
  // The compile without replication is independent of the one with it:
  // with more than one thread it starts as soon as the first program of
  // the trials below replicated something (a guess: it is used only when
  // the kept program replicates, and computed here when the guess missed),
  // and runs beside them. The programs are chosen in the same order either
  // way, so the result does not depend on the thread count.
  CompileState b = TrialOf(s, opts);
  b.options.replicate = false;
  std::string tb;
  TrialThread no_repl;
  auto after_first = [&](const CompileState& first) {
    bool any = false;
    for (const ActTensor& x : first.tensors) any |= x.replicated;
    if (any && opts.try_replicate && TrialThreads(opts) > 1) no_repl.Start(&b, print_after, &tb);
  };
  WBS_RETURN_IF_ERROR(CompileTrials(s, print_after, &text, after_first));
  bool saw = s.saw_partial;
  bool replicated = false;
  for (const ActTensor& x : s.tensors) replicated |= x.replicated;
  if (no_repl.started()) {
    const Status st = no_repl.Join();
    if (replicated) WBS_RETURN_IF_ERROR(st);
  }
  if (opts.try_replicate && replicated) {
    if (!no_repl.started()) WBS_RETURN_IF_ERROR(CompileTrials(b, print_after, &tb));
    saw |= b.saw_partial;
    if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
  }
  // Weight buffers sized for the sparse chunks (CompileOptions::sparse_w):
  // compile with them on every sparse conv, then with each layer's faster
  // choice, and keep the fastest (ResNet-50 4x4 50%: layer3.0.downsample.0
  // 42 -> 33 us, layer2.0.downsample.0 20 -> 16 us; other layers pick
  // slower tiles with them). The kept state's options reproduce its
  // program, so the trials above are not rerun.
  if (opts.try_sparse_w) {
    std::map<std::string, bool> on;
    for (const Layer& l : s.layers)
      if (l.kind == LayerKind::kConv && l.groups == 1 && l.macs < l.macs_dense &&
          !s.options.sparse_w.count(l.name))
        on[l.name] = true;
    WBS_RETURN_IF_ERROR(
        KeepFasterPerLayer(s, text, on, print_after, [](CompileOptions& o, const auto& forced) {
          o.try_spread = o.try_wide = o.try_resident_min_w = false;
          o.try_replicate = o.try_resident_partial = o.try_sparse_w = false;
          for (const auto& [k, v] : forced) o.sparse_w[k] = v;
        }));
  }
  // Two core weight halves on multi-block layers that did not get them
  // (CompileOptions::w_double): compile with them forced on every such
  // conv, then with each layer's faster choice, and keep the fastest
  // (ResNet-50 4x4 50%: layer3.1-3.5.conv3 take 8 block rows per chunk
  // instead of 16, 15.4 -> 14.7 us each: the blob no longer waits behind
  // the COMP, but the input now streams to the cores twice as often, which
  // binds; dense, every layer's choice is slower or the total is).
  if (opts.try_w_double) {
    std::map<std::string, bool> on;
    for (const Layer& l : s.layers) {
      if (l.kind != LayerKind::kConv || l.weights_per_iteration || l.w_double ||
          s.options.w_double.count(l.name))
        continue;
      int64_t wchunks = 0;
      for (const CoreWork& w : l.cores)
        wchunks = std::max(wchunks, (w.x1 - w.x0 + l.ow_t - 1) / std::max<int64_t>(1, l.ow_t));
      if (l.chunks * wchunks > 1) on[l.name] = true;
    }
    WBS_RETURN_IF_ERROR(
        KeepFasterPerLayer(s, text, on, print_after, [](CompileOptions& o, const auto& forced) {
          o.try_spread = o.try_wide = o.try_resident_min_w = false;
          o.try_replicate = o.try_resident_partial = o.try_sparse_w = false;
          o.try_w_double = false;
          for (const auto& [k, v] : forced) o.w_double[k] = v;
        }));
  }
  // Input-stationary core tiles (CompileOptions::in_stay): compile with
  // them preferred on every conv without groups that did not get one, then
  // with each layer's faster choice, and keep the fastest. A layer whose
  // input tile fits a core beside two weight halves then streams its input
  // to the cores once instead of once per channel chunk. A layer's tile
  // changes its neighbours' schedule (ResNet-50 4x4 50%: layer1.0.conv3
  // input-stationary made its fused-Add partner layer1.0.downsample.0 10.6
  // -> 13.8 us), so the layers faster in that second program are tried
  // once more alone (`refine`).
  if (opts.try_in_stay) {
    std::map<std::string, bool> on;
    for (const Layer& l : s.layers)
      if (l.kind == LayerKind::kConv && l.groups == 1 && !l.in_stay && !s.options.in_stay.count(l.name))
        on[l.name] = true;
    WBS_RETURN_IF_ERROR(
        KeepFasterPerLayer(s, text, on, print_after, [](CompileOptions& o, const auto& forced) {
          o.try_spread = o.try_wide = o.try_resident_min_w = false;
          o.try_replicate = o.try_resident_partial = o.try_sparse_w = false;
          o.try_w_double = o.try_in_stay = false;
          for (const auto& [k, v] : forced) o.in_stay[k] = v;
        }, /*refine=*/true));
  }
  // Input-stationary tiles in row pieces (Layer::stay_pieces): the first
  // COMP waits for its piece of the input only, the last chunk's first
  // rows leave while the rest computes. Tried on the kept program's
  // input-stationary tiles, then per layer where faster (with the pieces
  // in every trial, the input-stationary choices moved and dense lost:
  // ResNet-50 4x4 1.7294 -> 1.7309 ms).
  if (opts.try_stay_rows) {
    std::map<std::string, bool> on;
    for (const Layer& l : s.layers)
      if (l.in_stay && l.chunks > 1 && !s.options.stay_rows.count(l.name)) on[l.name] = true;
    WBS_RETURN_IF_ERROR(
        KeepFasterPerLayer(s, text, on, print_after, [](CompileOptions& o, const auto& forced) {
          o.try_spread = o.try_wide = o.try_resident_min_w = false;
          o.try_replicate = o.try_resident_partial = o.try_sparse_w = false;
          o.try_w_double = o.try_in_stay = o.try_stay_rows = false;
          for (const auto& [k, v] : forced) o.stay_rows[k] = v;
        }, /*refine=*/true));
  }
  // The permuted output channels (balance.cc) even out the producer's
  // chunks and parts but reshuffle its readers' CIN parts, which can land
  // worse on the readers' cores (ResNet-50 8x8 50%: layer4.1/4.2.conv2,
  // one block row per core, +3.5 us each; 0.719 -> 0.729 ms): compile the
  // kept program once more without them and keep the faster.
  bool permuted = false;
  for (const Layer& l : s.layers) permuted |= l.permuted;
  if (opts.try_permute && s.options.permute_channels && permuted)
    WBS_RETURN_IF_ERROR(KeepFasterWith(s, text, print_after,
                                       [](CompileOptions& o) { o.permute_channels = false; }));
  // The weight slab rings (Layer::w_ring) let a layer's DDR blob stream
  // run ahead, which can delay another layer's activation loads on the
  // shared shim channels (ResNet-50 5x5 50%: 0.9115 -> 0.9127 ms with
  // them): compile the kept program once more without them and keep the
  // faster.
  bool ringed = false;
  for (const Layer& l : s.layers) ringed |= l.w_ring > 2;
  if (opts.try_w_ring && s.options.w_ring && ringed)
    WBS_RETURN_IF_ERROR(
        KeepFasterWith(s, text, print_after, [](CompileOptions& o) { o.w_ring = false; }));
  // An Add left unfused (the conv before it could not take it: ResNet-50
  // layer4.0.downsample.0 has CIN parts) with its other input's conv moved
  // right before it (CompileOptions::add_partner), so it fuses there.
  if (opts.try_add_partner && opts.fuse_add) {
    std::map<std::string, bool> on;
    for (size_t i = 1; i < s.layers.size(); ++i) {
      const Layer& a = s.layers[i];
      if (a.kind != LayerKind::kAdd || a.fused_into >= 0 || a.inputs.size() != 2 ||
          s.options.add_partner.count(a.name))
        continue;
      for (const int t : a.inputs) {
        const ActTensor& x = s.tensors[static_cast<size_t>(t)];
        if (x.producer >= 0 && static_cast<size_t>(x.producer) + 1 < i && x.consumers.size() == 1 &&
            s.layers[static_cast<size_t>(x.producer)].kind == LayerKind::kConv)
          on[a.name] = true;
      }
    }
    if (!on.empty())
      WBS_RETURN_IF_ERROR(KeepFasterWith(s, text, print_after, [&on](CompileOptions& o) {
        for (const auto& [k, v] : on) o.add_partner[k] = v;
      }));
  }
  // A fused Add's replicated output in place of its replicated shortcut
  // (CompileOptions::replica_in_place), on the kept program only (one
  // compile, not the trial sequence): ResNet-50 4x4 layer4.0's block output
  // finds no room beside the downsample shortcut in layer4.0.conv3 and went
  // through DDR (layer4.1.conv1 read it twice: 26.5 -> 24.0 us at 50%).
  bool replicates = false;
  for (const ActTensor& x : s.tensors) replicates |= x.replicated;
  if (opts.try_replica_in_place && !s.options.replica_in_place && replicates)
    WBS_RETURN_IF_ERROR(KeepFasterWith(s, text, print_after,
                                       [](CompileOptions& o) { o.replica_in_place = true; }));
  // Partial residency on the kept program (CompileOptions::try_partial_kept):
  // one compile with it, every trial's choice kept, instead of the opt-in
  // whole compile below (which doubles the compile time). ResNet-50 4x4:
  // layer3.5's output stays in the memtiles for layer4.0.conv1, which read
  // it from DDR once per channel chunk.
  if (opts.try_partial_kept && opts.resident && !s.options.resident_partial)
    WBS_RETURN_IF_ERROR(KeepFasterWith(s, text, print_after,
                                       [](CompileOptions& o) { o.resident_partial = true; }));
  // BUILD pair fusion (postconv.cc, Layer::post_conv, h_aie26) on the kept
  // program: every candidate pair on, then each pair kept only where the
  // pair's layer beat the two layers' summed times (the second's is 0 in a
  // pair); the fastest program is kept. A trial that finds no room for a
  // pair's buffers (the memory plan) is dropped like a slower one. Pairs
  // take height slices (CompileOptions::pair_ys); the kept program is
  // compiled once more without them, and the faster kept.
  if (opts.try_post_conv && opts.fuse_add) {
    std::map<std::string, bool> on;
    for (size_t i = 0; i < s.layers.size(); ++i)
      if (!s.options.post_conv.count(s.layers[i].name) && PostConvCandidate(s, i) >= 0)
        on[s.layers[i].name] = true;
    auto trial = [&](const std::map<std::string, bool>& pairs, CompileState* r, std::string* t) {
      *r = TrialOf(s, s.options);
      KeptProgramOnly(r->options);
      for (const auto& [k, v] : pairs) r->options.post_conv[k] = v;
      return CompileOnce(*r, print_after, t);
    };
    CompileState b;
    std::string tb;
    if (!on.empty() && trial(on, &b, &tb).ok()) {
      std::map<std::string, bool> mixed;
      bool any_on = false, any_off = false;
      for (size_t i = 0; i < s.layers.size() && i < b.layers.size(); ++i) {
        if (!on.count(s.layers[i].name)) continue;
        const int q = b.layers[i].post_conv;
        const bool faster = q >= 0 && b.layers[i].time_s < s.layers[i].time_s +
                                                             s.layers[static_cast<size_t>(q)].time_s;
        mixed[s.layers[i].name] = faster;
        any_on |= faster, any_off |= !faster;
      }
      CompileState c;
      std::string tc;
      const bool tried_c = any_on && any_off && trial(mixed, &c, &tc).ok();
      if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
      if (tried_c && c.total_s < s.total_s) s = std::move(c), text = std::move(tc);
    }
    // The kept pairs' height slices (Layer::wide_ys) against width slices
    // only, once on the kept program.
    bool ys = false;
    for (const Layer& l : s.layers) ys |= l.post_conv >= 0 && l.wide_ys > 1;
    if (ys)
      WBS_RETURN_IF_ERROR(
          KeepFasterWith(s, text, print_after, [](CompileOptions& o) { o.pair_ys = false; }));
  }
  // Partial residency (CompileOptions::resident_partial) keeps regions the
  // slabs of the layers in between lose, the writers' DDR copies are extra
  // traffic, and it changes which choices the trials keep (Inception-v3
  // 5x5 dense: 1.904 -> 1.908 ms when each trial only kept the faster of
  // with and without it): where any trial kept a tensor partially
  // resident, compile everything once more without it and keep the faster
  // (last, so both sides have had every trial: the opt-in program is never
  // slower than the default one).
  if (opts.try_resident_partial && opts.resident_partial && saw) {
    CompileState b = TrialOf(s, opts);
    b.options.resident_partial = false;
    std::string tb;
    WBS_RETURN_IF_ERROR(Compile(b, print_after, &tb));
    if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
  }
  // The kept program's trace: its time model once more, with the events
  // (the same schedule, so every time it sets is unchanged).
  s.options.trace = trace;
  if (trace) WBS_RETURN_IF_ERROR(RunTimeModel(s));
  if (own_cache) s.cache.reset();
  if (printed) *printed += text;
  return Status::Ok();
}

Status CompileTrials(CompileState& s, const std::string& print_after, std::string* printed,
                     const std::function<void(const CompileState&)>& after_first) {
  std::string text;
  if (Status st = CompileOnce(s, print_after, &text); !st.ok()) {
    // A fused pool's tile (no CIN parts) may find no room beside the
    // resident activations: then compile with every pair apart.
    bool fused = false;
    for (const Layer& l : s.layers) fused |= l.post_pool.on || l.pre_pool.on;
    if (!fused) return st;
    CompileState b = TrialOf(s, s.options);
    b.options.pool_fuse = false;
    text.clear();
    WBS_RETURN_IF_ERROR(CompileOnce(b, print_after, &text));
    s = std::move(b);
  }
  if (after_first) after_first(s);
  bool saw = s.saw_partial;
  // Sibling fusion (siblings.cc) per group: the fused layer streams the
  // shared input once, but its output slabs and the outputs' longer
  // lifetimes take memtile room, and a compute-bound group gains nothing.
  // Compile with every group apart, then with each group fused only where
  // the fused layer beat its siblings' summed times (nearly additive);
  // keep the fastest program. Later trials keep the choice.
  if (s.options.try_hfuse && s.options.hfuse) {
    std::map<std::string, bool> off;
    for (const Layer& l : s.layers)
      if (l.multi_out()) off[l.name] = false;
    if (!off.empty()) {
      auto trial = [&](const std::map<std::string, bool>& groups, CompileState* r, std::string* t) {
        *r = TrialOf(s, s.options);
        for (const auto& [k, v] : groups) r->options.hfuse_groups[k] = v;
        return CompileOnce(*r, print_after, t);
      };
      CompileState b;
      std::string tb;
      WBS_RETURN_IF_ERROR(trial(off, &b, &tb));
      std::map<std::string, double> apart;  // sibling name -> its time without fusion
      for (const Layer& l : b.layers) apart[l.name] = l.time_s;
      std::map<std::string, bool> mixed;
      bool any_on = false;
      for (const Layer& l : s.layers) {
        if (!l.multi_out()) continue;
        double sum = 0;
        for (const Layer::OutSlice& o : l.out_slices) sum += apart[o.layer];
        mixed[l.name] = l.time_s < sum;
        any_on |= mixed[l.name];
      }
      saw |= b.saw_partial;
      CompileState c;
      std::string tc;
      const bool tried_c = any_on && std::any_of(mixed.begin(), mixed.end(),
                                                 [](const auto& kv) { return !kv.second; });
      if (tried_c) {
        WBS_RETURN_IF_ERROR(trial(mixed, &c, &tc));
        saw |= c.saw_partial;
      }
      if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
      if (tried_c && c.total_s < s.total_s) s = std::move(c), text = std::move(tc);
    }
  }
  // Pool fusion (poolfuse.cc) per pair: the fused layer saves the middle
  // tensor's round trip through the memtiles, but a max pool's conv
  // recomputes the windows' overlap and has no CIN parts, and an average
  // pool's conv reads the pool's halo and keeps a scratch tile. Compile with every
  // pair apart, then with each pair fused only where the fused layer beat
  // the conv's and the pool's summed times; keep the fastest program. The
  // compile apart skips the spread trials (they choose for the
  // channels-over-every-core layers, not for these; ResNet-50 compiles one
  // pass pipeline more instead of three).
  if (s.options.try_pool_fuse && s.options.pool_fuse) {
    std::map<std::string, bool> off;
    for (const Layer& l : s.layers)
      if (l.post_pool.on || l.pre_pool.on) off[l.name] = false;
    if (!off.empty()) {
      auto trial = [&](const std::map<std::string, bool>& pairs, CompileState* r, std::string* t,
                       bool spread_trials) {
        *r = TrialOf(s, s.options);
        for (const auto& [k, v] : pairs) r->options.pool_fuse_pairs[k] = v;
        r->options.try_spread = r->options.try_spread && spread_trials;
        return CompileOnce(*r, print_after, t);
      };
      CompileState b;
      std::string tb;
      WBS_RETURN_IF_ERROR(trial(off, &b, &tb, false));
      std::map<std::string, double> apart;
      for (const Layer& l : b.layers) apart[l.name] = l.time_s;
      std::map<std::string, bool> mixed;
      bool any_on = false, any_off = false;
      for (const Layer& l : s.layers) {
        if (!l.post_pool.on && !l.pre_pool.on) continue;
        const bool on = l.post_pool.on ? l.time_s < apart[l.post_pool.conv] + apart[l.post_pool.pool]
                                       : l.time_s < apart[l.pre_pool.pool] + apart[l.pre_pool.conv];
        mixed[l.name] = on;
        any_on |= on, any_off |= !on;
      }
      saw |= b.saw_partial;
      CompileState c;
      std::string tc;
      const bool tried_c = any_on && any_off;
      if (tried_c) {
        WBS_RETURN_IF_ERROR(trial(mixed, &c, &tc, true));
        saw |= c.saw_partial;
      }
      // The later trials start from the kept state's options: spread trials as asked.
      b.options.try_spread = s.options.try_spread;
      if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
      if (tried_c && c.total_s < s.total_s) s = std::move(c), text = std::move(tc);
    }
  }
  // Residency for the wider channels-over-every-core layers too: a layer
  // whose own best tile spreads channels over every core may still gain
  // when its neighbours' activations stay in the memtiles (ResNet-50 4x4
  // 50%: layer3 1.137 -> 1.122 ms; dense it loses, 1.788 -> 1.826 ms, and
  // layer4 loses both), which the per-layer probe cannot see: compile once
  // more with it and keep the faster program.
  if (s.options.try_resident_min_w && s.options.resident && s.options.resident_min_w == 0) {
    CompileState b = TrialOf(s, s.options);
    b.options.resident_min_w = 2 * int64_t{s.target.cols};
    std::string tb;
    WBS_RETURN_IF_ERROR(CompileOnce(b, print_after, &tb));
    saw |= b.saw_partial;
    if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
  }
  // Width over every core where the activation broadcast binds: pass 2's
  // cost underrates it for some layers (ResNet-50 4x4 50%: layer2.0.conv1
  // 25.7 -> 21.0 us and layer1.0.downsample.0 15.3 -> 10.6 us when forced,
  // while layer2.1.conv1 gains nothing). Compile with it forced on every
  // 2-D conv bound by memtile->core, then with each layer's faster choice
  // (layers' times are nearly additive); keep the fastest program.
  if (s.options.try_wide) {
    std::map<std::string, bool> on;
    for (const Layer& l : s.layers)
      if (l.kind == LayerKind::kConv && l.groups == 1 && !l.cout_only && !l.wide &&
          l.stream_in_over_macs && !s.options.wide.count(l.name))
        on[l.name] = true;
    if (!on.empty()) {
      auto trial = [&](const std::map<std::string, bool>& forced, CompileState* r, std::string* t) {
        r->target = s.target;
        r->graph = s.graph;
        r->cache = s.cache;
        r->options = s.options;
        r->options.try_wide = false;
        r->options.try_resident_min_w = false;
        for (const auto& [k, v] : forced) r->options.wide[k] = v;
        return CompileOnce(*r, print_after, t);
      };
      CompileState b;
      std::string tb;
      WBS_RETURN_IF_ERROR(trial(on, &b, &tb));
      std::map<std::string, bool> mixed;
      for (size_t i = 0; i < s.layers.size() && i < b.layers.size(); ++i) {
        const Layer& l = s.layers[i];
        if (on.count(l.name) && b.layers[i].wide && b.layers[i].time_s < l.time_s)
          mixed[l.name] = true;
      }
      CompileState c;
      std::string tc;
      const bool tried_c = !mixed.empty() && mixed.size() < on.size();
      if (tried_c) WBS_RETURN_IF_ERROR(trial(mixed, &c, &tc));
      saw |= b.saw_partial || (tried_c && c.saw_partial);
      if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
      if (tried_c && c.total_s < s.total_s) s = std::move(c), text = std::move(tc);
    }
  }
  s.saw_partial = saw;
  if (printed) *printed += text;
  return Status::Ok();
}

namespace {
Status CompileOnce(CompileState& s, const std::string& print_after, std::string* printed) {
  const CompileOptions opts = s.options;
  std::string text;
  WBS_RETURN_IF_ERROR(RunPasses(s, print_after, &text));
  bool saw = false;
  for (const ActTensor& x : s.tensors) saw |= x.resident_ddr;
  // Spreading a channels-over-every-core layer's input (one LOAD per
  // serving memtile, broadcast to several columns) cuts its DDR reads, but
  // the broadcast makes the cores of those columns wait for each other
  // every CIN part, which the cost of pass 2 does not see: where pass 2
  // chose it, compile again without it, and once more with each layer's
  // faster choice (layers' times are nearly additive); keep the fastest.
  bool any = false;
  for (const Layer& l : s.layers) any |= l.spread_input;
  if (opts.try_spread && any) {
    auto trial = [&](const std::map<std::string, bool>& forced, CompileState* r, std::string* t) {
      r->target = s.target;
      r->graph = s.graph;
      r->cache = s.cache;
      r->options = opts;
      r->options.try_spread = false;
      for (const auto& [k, v] : forced) r->options.spread_input[k] = v;
      return RunPasses(*r, print_after, t);
    };
    std::map<std::string, bool> off;
    for (const Layer& l : s.layers)
      if (l.spread_input) off[l.name] = false;
    CompileState b;
    std::string tb;
    WBS_RETURN_IF_ERROR(trial(off, &b, &tb));
    std::map<std::string, bool> mixed;
    bool differs = false;
    for (size_t i = 0; i < s.layers.size() && i < b.layers.size(); ++i) {
      const Layer& l = s.layers[i];
      if (!l.spread_input) continue;
      mixed[l.name] = l.time_s < b.layers[i].time_s;
      differs |= mixed[l.name];
    }
    CompileState c;
    std::string tc;
    const bool tried_c = differs && mixed.size() > 1;
    if (tried_c) WBS_RETURN_IF_ERROR(trial(mixed, &c, &tc));
    for (const CompileState* r : {&b, &c})
      for (const ActTensor& x : r->tensors) saw |= x.resident_ddr;
    if (b.total_s < s.total_s) s = std::move(b), text = std::move(tb);
    if (tried_c && c.total_s < s.total_s) s = std::move(c), text = std::move(tc);
  }
  s.saw_partial = saw;
  if (printed) *printed += text;
  return Status::Ok();
}
}  // namespace

}  // namespace wbs::aie

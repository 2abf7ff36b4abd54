// Pass 7: depth-wise tiling / fusion decisions.
//
// Done: activation functions (Relu, Clip) are fused into the conv's clamp and
// a residual Add -> Relu into QAdd's clamp by the quantizer already; a
// QConcat whose inputs share its quantization is fused away (its producers
// write straight into their channel slots, pass 1); within a layer the
// weights of channel chunk k+1 are prefetched from DDR into the other half of
// the memtile weight slab while chunk k computes (`prefetch_weights`; the
// time model's schedule starts that LOADW as soon as its memtile half and a
// shim channel are free, which is under chunk k's compute).
// A residual Add right after the conv that produces one of its inputs (and
// is that tensor's only consumer) is computed in the conv's blocks
// (PlanAddFusion, before pass 2 sizes the tile): the conv's COMP writes its
// u8 tile to a core scratch buffer, an Add COMP combines it with the other
// input's tile (loaded like any second input) and only the sum goes to the
// memtile and DDR — the conv output never leaves the core, the Add layer
// emits nothing.
// Activations stay in memtiles between layers where the data allow
// (PlanResidency, before pass 2 too): a tensor whose producer and every
// consumer keep the 2-D split (output width over columns) and whose every
// consumer is a conv (groups 1) reading, in each column, only shares of
// memtiles that reach it (its own; a 3x3's halo column from the
// neighbour's) or the fused residual Add's other input, is written by the
// producer's WRITEFMs straight into a per-column region at the top of each
// memtile and read from there by the consumers' LOADFMs (one piece per
// share touched; padding from the source patterns' bounds): no WRITE, no
// LOAD, 2 x its bytes less DDR traffic. Regions are placed first fit over their lifetimes
// (producer to last consumer) below a cap that leaves every layer
// `min_slab_bytes` for its own slabs; what does not fit goes through DDR.
// Replicated residency (PlanReplicas, after the memory plan) keeps the
// output of a channels-over-every-core producer in every memtile; a fused
// Add's output takes its replicated other input's region when that input
// dies in the Add (in place, as for the 2-D regions), so a bottleneck
// block's shortcut and output need one region (ResNet-50 layer4.0's output
// now stays on chip for layer4.1, h_aie23).
// A BUILD pair's second conv (postconv.cc, Layer::post_into) writes its
// output in the first conv's layer: its region lives from there.
// Not done yet (docs/AIE_COMPILER.md): pools, depthwise convs and Gemm as
// consumers, fusing a conv with a following pool.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "aie/passes/compiler.h"

namespace wbs::aie {

void PlanAddFusion(CompileState& s) {
  for (Layer& l : s.layers) l.fused_add = l.fused_into = -1;
  if (!s.options.fuse_add) return;
  for (size_t ai = 1; ai < s.layers.size(); ++ai) {
    Layer& a = s.layers[ai];
    Layer& c = s.layers[ai - 1];
    if (a.kind != LayerKind::kAdd || c.kind != LayerKind::kConv || c.groups != 1 ||
        c.fused_into >= 0 || c.multi_out())
      continue;
    const ActTensor& y = s.tensors[static_cast<size_t>(c.output)];
    const bool feeds = a.inputs.size() == 2 && (a.inputs[0] == c.output || a.inputs[1] == c.output);
    const int other = feeds ? (a.inputs[0] == c.output ? a.inputs[1] : a.inputs[0]) : -1;
    if (!feeds || other == c.output || y.consumers.size() != 1 || y.alias_of >= 0 || y.elem != 1)
      continue;
    if (std::find(s.outputs.begin(), s.outputs.end(), c.output) != s.outputs.end()) continue;
    const ActTensor& o = s.tensors[static_cast<size_t>(other)];
    const ActTensor& z = s.tensors[static_cast<size_t>(a.output)];
    if (o.elem != 1 || z.elem != 1 || o.c != y.c || o.h != y.h || o.w != y.w || z.c != y.c ||
        z.h != y.h || z.w != y.w)
      continue;
    c.fused_add = static_cast<int>(ai);
    a.fused_into = static_cast<int>(ai - 1);
  }
}

void MoveAddPartners(CompileState& s) {
  if (s.options.add_partner.empty()) return;
  for (size_t ai = 2; ai < s.layers.size(); ++ai) {
    const Layer& a = s.layers[ai];
    const auto it = s.options.add_partner.find(a.name);
    if (a.kind != LayerKind::kAdd || it == s.options.add_partner.end() || !it->second ||
        a.inputs.size() != 2)
      continue;
    const int prev_out = s.layers[ai - 1].output;
    if (a.inputs[0] != prev_out && a.inputs[1] != prev_out) continue;
    const int other = a.inputs[0] == prev_out ? a.inputs[1] : a.inputs[0];
    const ActTensor& o = s.tensors[static_cast<size_t>(other)];
    const int p = o.producer;
    // The other input's conv, read by the Add alone: nothing between it and
    // the Add reads its output, and it reads nothing they write (it came
    // first in a topological order), so it may run right before the Add.
    if (p < 0 || static_cast<size_t>(p) + 1 >= ai || o.consumers.size() != 1 ||
        s.layers[static_cast<size_t>(p)].kind != LayerKind::kConv ||
        s.layers[static_cast<size_t>(p)].multi_out())
      continue;
    std::rotate(s.layers.begin() + p, s.layers.begin() + p + 1,
                s.layers.begin() + static_cast<std::ptrdiff_t>(ai));
    s.RelinkTensors();
  }
}

int ActMemtile(const Target& t, int col);
void GrowWeightRings(CompileState& s);  // memplan.cc

namespace {
// Indices of `tensors`, largest first; equal sizes keep program order.
std::vector<size_t> LargestFirst(const std::vector<ActTensor>& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tensors[a].bytes() > tensors[b].bytes(); });
  return order;
}
}  // namespace

void PlanResidency(CompileState& s, bool enable) {
  for (Layer& l : s.layers) {
    l.in_resident = l.in2_resident = l.out_resident = l.force_2d = false;
    l.mt_reserved = 0;
  }
  for (ActTensor& x : s.tensors) {
    x.resident = false;
    x.mt_addr = x.mt_w = x.mt_bytes = 0;
    x.res_first = x.res_last = -1;
    x.res_x0.clear();
    x.in_place_of = -1;
    x.resident_ddr = false;
  }
  const Target& t = s.target;
  if (!enable) return;
  // Every column its own memtile (the per-column region is addressed alike in each).
  std::set<int> mts;
  for (int c = 0; c < t.cols; ++c) mts.insert(ActMemtile(t, c));
  if (static_cast<int>(mts.size()) != t.cols) return;
  const int64_t cap = t.memtile.bytes - s.options.min_slab_bytes;
  if (cap <= 0) return;
  auto cols_of = [&](const Layer& l) { return std::min<int64_t>(t.cols, l.ow); };
  auto is_io = [&](int i) { return s.IsNetworkIo(i); };
  const std::vector<bool> hosts = s.AliasHosts();  // some tensor is aliased into it
  struct Placed {
    int first, last;
    int64_t off, end;  // offsets from the top of the memtile
  };
  std::vector<Placed> placed;
  std::vector<int> placed_of(s.tensors.size(), -1);  // tensor -> its entry in `placed`
  // Largest first (first fit decreasing): a large tensor saves as much
  // DDR traffic per byte as a small one but fragments worse when placed
  // late. Equal sizes keep program order (an in-place Add output after the
  // input it replaces).
  for (const size_t ti : LargestFirst(s.tensors)) {
    ActTensor& x = s.tensors[ti];
    if (x.alias_of >= 0 || x.elem != 1 || is_io(static_cast<int>(ti)) || x.consumers.empty())
      continue;
    // A concat's output (a host of aliased tensors, Inception's Mixed
    // blocks): each input's producer (a branch conv, pool or rescale)
    // writes its channel slot of the host's region; the region lives from
    // the first of them. Hosts with a producer of their own (a Flatten's
    // tensor aliased onto a conv output) stay in DDR.
    std::vector<int> writers;
    if (hosts[ti]) {
      if (x.producer >= 0) continue;
      for (const ActTensor& a : s.tensors) {
        if (a.alias_of != static_cast<int>(ti)) continue;
        if (a.producer < 0 || !a.consumers.empty() || a.elem != 1)
          writers.push_back(-1);
        else
          writers.push_back(a.producer);
      }
    } else if (x.producer >= 0) {
      writers.push_back(x.producer);
    }
    if (writers.empty() || std::find(writers.begin(), writers.end(), -1) != writers.end()) continue;
    bool writers_ok = true;
    for (int& w : writers) {
      const Layer& wl = s.layers[static_cast<size_t>(w)];
      // A conv's own output consumed by its fused Add never leaves the core.
      if (wl.fused_add >= 0) writers_ok = false;
      w = wl.fused_into >= 0 ? wl.fused_into : w;
      const Layer& pl = s.layers[static_cast<size_t>(w)];
      // A rescale layer has no 2-D split to share; only a host's slot writer may be one.
      if ((pl.kind == LayerKind::kRescale && !hosts[ti]) || pl.ow != x.w || pl.oh != x.h ||
          pl.prefers_cout_only)
        writers_ok = false;
    }
    if (!writers_ok) continue;
    // A conv computed in the blocks of the conv before it (Layer::post_into,
    // postconv.cc) writes its output there: the region lives from that layer.
    int p = *std::min_element(writers.begin(), writers.end());
    for (const int w : writers)
      if (const int pi = s.layers[static_cast<size_t>(w)].post_into; pi >= 0) p = std::min(p, pi);
    const int p_last = *std::max_element(writers.begin(), writers.end());
    const Layer& prod = s.layers[static_cast<size_t>(hosts[ti] ? p : x.producer)];
    const Layer& pl = s.layers[static_cast<size_t>(p)];
    const int64_t pc = cols_of(pl);
    bool ok = true;
    bool ddr_too = false;  // some consumer reads it from DDR (partial residency)
    const bool partial = s.options.resident_partial;
    int last = p_last;
    std::vector<std::pair<int, int>> uses;  // (layer, 0: input 0, 1: fused Add's other input)
    for (int ci : x.consumers) {
      const Layer& cl = s.layers[static_cast<size_t>(ci)];
      if (cl.fused_into >= 0) {
        // The Add computed in conv f: its other input, tiled like f's output.
        const Layer& f = s.layers[static_cast<size_t>(cl.fused_into)];
        if (f.output == static_cast<int>(ti)) ok = false;
        if (f.ow != x.w || f.oh != x.h || f.prefers_cout_only) {
          if (partial) {
            ddr_too = true;
            continue;
          }
          ok = false;
        }
        uses.push_back({cl.fused_into, 1});
        last = std::max(last, cl.fused_into);
        continue;
      }
      // Convs (any groups) and pools read their input tile alike (one
      // window of rows x columns per slab); Add and Rescale layers read
      // theirs as a second tile, not handled here.
      // (A rescale, a concat input's requantization, reads its tile as a
      // 1x1 window of its one input.)
      const bool windowed = cl.kind == LayerKind::kConv || cl.kind == LayerKind::kMaxPool ||
                            cl.kind == LayerKind::kAvgPool || cl.kind == LayerKind::kRescale;
      if (!windowed || cl.inputs[0] != static_cast<int>(ti) || cl.prefers_cout_only) {
        if (partial) {
          ddr_too = true;
          continue;
        }
        ok = false;
        break;
      }
      // Column c reads input columns [a, b) (its share, its halo, padding):
      // every column share they touch must be in a memtile reaching c.
      const int64_t cc = cols_of(cl);
      for (int64_t c = 0; c < cc && ok; ++c) {
        const int64_t xo0 = cl.ow * c / cc, xo1 = cl.ow * (c + 1) / cc;
        const int64_t a = std::max<int64_t>(0, xo0 * cl.sw - cl.pad_l);
        const int64_t b = std::min(x.w, (xo1 - 1) * cl.sw - cl.pad_l + (cl.kw - 1) * cl.dw + 1);
        for (int64_t j = 0; j < pc; ++j) {
          const int64_t x0 = x.w * j / pc, x1 = x.w * (j + 1) / pc;
          if (x0 < b && a < x1 &&
              !t.memtile_reaches(
                  t.memtile.columns[static_cast<size_t>(ActMemtile(t, static_cast<int>(j)))],
                  static_cast<int>(c)))
            ok = false;
        }
      }
      uses.push_back({ci, 0});
      last = std::max(last, ci);
    }
    if (!ok || last <= p_last) continue;
    std::vector<int64_t> x0;
    int64_t mw = 0;
    for (int64_t c = 0; c < pc; ++c) {
      x0.push_back(x.w * c / pc);
      mw = std::max(mw, x.w * (c + 1) / pc - x.w * c / pc);
    }
    const int64_t bytes = (x.c * x.h * mw + 63) / 64 * 64;
    // A fused Add's output takes its other input's region when that input
    // is resident, laid out alike and dies in the Add: the Add reads each
    // tile of it right before writing the same positions of the output
    // (the residual shortcut of a bottleneck block then needs one region,
    // not two, while conv3 runs).
    int in_place = -1;
    if (!hosts[ti] && prod.fused_into >= 0) {
      const int other = prod.inputs[0] == pl.output ? prod.inputs[1] : prod.inputs[0];
      const ActTensor& o = s.tensors[static_cast<size_t>(other)];
      const int e = placed_of[static_cast<size_t>(other)];
      if (o.resident && e >= 0 && o.res_last == p && o.c == x.c && o.h == x.h && o.w == x.w &&
          o.res_x0 == x0 && o.mt_bytes == bytes) {
        in_place = other;
        for (size_t qi = 0; qi < placed.size(); ++qi) {
          const Placed& q = placed[qi];
          if (static_cast<int>(qi) != e && q.first <= last && p < q.last &&
              q.off < placed[static_cast<size_t>(e)].end &&
              placed[static_cast<size_t>(e)].off < q.end)
            in_place = -1;  // the region is taken after the Add
        }
      }
    }
    int64_t off = 0;
    if (in_place >= 0) {
      // One region for the whole chain of block outputs (each in place of the last).
      placed_of[ti] = placed_of[static_cast<size_t>(in_place)];
      Placed& q = placed[static_cast<size_t>(placed_of[ti])];
      q.last = std::max(q.last, last);
      off = q.off;
      x.in_place_of = in_place;
    } else {
      // First fit (from the top) among the regions live at the same time.
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (const Placed& q : placed)
        if (q.first <= last && p <= q.last) busy.emplace_back(q.off, q.end);
      std::sort(busy.begin(), busy.end());
      for (const auto& b : busy) {
        if (off + bytes <= b.first) break;
        off = std::max(off, b.second);
      }
      if (off + bytes > cap) continue;
      placed_of[ti] = static_cast<int>(placed.size());
      placed.push_back({p, last, off, off + bytes});
    }
    x.resident = true;
    x.resident_ddr = ddr_too;
    x.mt_addr = t.memtile.bytes - off - bytes;
    x.mt_w = mw;
    x.mt_bytes = bytes;
    x.res_first = p, x.res_last = last;
    x.res_x0 = x0;
    for (const int w : writers) {
      Layer& pw = s.layers[static_cast<size_t>(w)];
      pw.force_2d = true;
      // Fused siblings (Layer::out_slices): set below, once every slice's tensor is placed.
      if (!pw.multi_out()) pw.out_resident = true;
    }
    for (const auto& [li, kind] : uses) {
      Layer& u = s.layers[static_cast<size_t>(li)];
      (kind == 0 ? u.in_resident : u.in2_resident) = true;
      u.force_2d = true;
    }
  }
  // A fused sibling layer needs no output slab only when every slice's
  // tensor (or the concat it lives in) is resident; codegen writes each
  // slice where its tensor lives.
  for (Layer& l : s.layers) {
    if (!l.multi_out()) continue;
    bool all = true;
    for (const Layer::OutSlice& o : l.out_slices) {
      const ActTensor& y = s.tensors[static_cast<size_t>(o.tensor)];
      const ActTensor& r = y.alias_of >= 0 ? s.tensors[static_cast<size_t>(y.alias_of)] : y;
      all &= r.resident;
    }
    l.out_resident = all;
  }
  for (const Placed& q : placed)
    for (int li = q.first; li <= q.last; ++li) {
      Layer& l = s.layers[static_cast<size_t>(li)];
      l.mt_reserved = std::max(l.mt_reserved, q.end);
    }
}

int MemtileSlot(const Target& t, int col);

// Replicated residency (ActTensor::replicated), after the memory plan so the
// layers' slabs are known: a tensor produced by a conv with channels over
// every core (ResNet-50 layer4: no column holds a width share, so the 2-D
// residency above cannot keep it) and read by convs or pools through their
// input slab path, or as a fused Add's other input, gets a region of its
// full size in every memtile over its lifetime, above every slab of the
// layers it lives through and clear of the resident regions live then;
// largest first, what does not fit stays in DDR.
void PlanReplicas(CompileState& s) {
  for (Layer& l : s.layers) l.in_repl = l.in2_repl = l.out_repl = false;
  for (ActTensor& x : s.tensors) {
    x.replicated = false;
    if (!x.resident) x.in_place_of = -1;
  }
  const Target& t = s.target;
  if (!s.options.replicate || !s.options.resident || t.num_memtiles() != t.cols || t.cols < 2)
    return;
  auto is_io = [&](int i) { return s.IsNetworkIo(i); };
  const std::vector<bool> hosts = s.AliasHosts();  // some tensor is aliased into it
  // Slabs of every memtile end below this per layer (columns sharing a memtile stack theirs).
  auto slab_top = [&](const Layer& l) {
    int64_t top = 0;
    for (int c = 0; c < t.cols; ++c) top = std::max(top, (MemtileSlot(t, c) + 1) * l.mt_col_bytes);
    return top;
  };
  for (const size_t ti : LargestFirst(s.tensors)) {
    ActTensor& x = s.tensors[ti];
    if (x.resident || x.alias_of >= 0 || hosts[ti] || x.elem != 1 || is_io(static_cast<int>(ti)) ||
        x.producer < 0 || x.consumers.empty() || x.symbol < 0)
      continue;
    const Layer& prod = s.layers[static_cast<size_t>(x.producer)];
    if (prod.fused_add >= 0) continue;  // never leaves the core
    const int p = prod.fused_into >= 0 ? prod.fused_into : x.producer;
    const Layer& pl = s.layers[static_cast<size_t>(p)];
    if (pl.kind != LayerKind::kConv || !pl.cout_only || pl.out_resident || pl.cols_used < 2)
      continue;
    bool ok = true;
    int last = p;
    std::vector<std::pair<int, int>> uses;
    for (int ci : x.consumers) {
      const Layer& cl = s.layers[static_cast<size_t>(ci)];
      if (cl.fused_into >= 0) {
        const Layer& f = s.layers[static_cast<size_t>(cl.fused_into)];
        if (f.output == static_cast<int>(ti) || f.in2_resident) ok = false;
        uses.push_back({cl.fused_into, 1});
        last = std::max(last, cl.fused_into);
        continue;
      }
      const bool windowed = cl.kind == LayerKind::kConv || cl.kind == LayerKind::kMaxPool ||
                            cl.kind == LayerKind::kAvgPool;
      if (!windowed || cl.inputs[0] != static_cast<int>(ti) || cl.in_resident || ci <= p)
        ok = false;
      uses.push_back({ci, 0});
      last = std::max(last, ci);
    }
    if (!ok || last <= p) continue;
    const int64_t bytes = (x.bytes() + 63) / 64 * 64;
    int64_t floor = 0;
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int li = p; li <= last; ++li)
      floor = std::max(floor, slab_top(s.layers[static_cast<size_t>(li)]));
    for (const ActTensor& y : s.tensors)
      if ((y.resident || y.replicated) && y.res_first <= last && p <= y.res_last)
        busy.emplace_back(y.mt_addr, y.mt_addr + y.mt_bytes);
    // A fused Add's output in place of its other input (as PlanResidency's
    // in_place_of): when that input is replicated, laid out alike and dies
    // in the Add, each core reads its channel range of it right before
    // writing the same range of the output, and no other core reads that
    // range (the Add is element-wise, every core on its own channels). In
    // the memtiles the input was never written to, the output fills the
    // range; where the input stays stale, no consumer reads the output
    // (a consumer reads a range only from memtiles its producer column
    // reaches). ResNet-50 layer4.0.add: the downsample shortcut and the
    // block output are both live in layer4.0.conv3, and two 100 KB regions
    // do not fit above its slabs, so the output went through DDR and
    // layer4.1.conv1 read it from DDR once per serving memtile.
    int in_place = -1;
    if (s.options.replica_in_place && prod.fused_into >= 0 && prod.inputs.size() == 2) {
      const int other = prod.inputs[0] == pl.output ? prod.inputs[1] : prod.inputs[0];
      const ActTensor& o = s.tensors[static_cast<size_t>(other)];
      if (other != static_cast<int>(ti) && o.replicated && o.res_last == p && o.c == x.c &&
          o.h == x.h && o.w == x.w && o.mt_bytes == bytes && o.mt_addr >= floor) {
        in_place = other;
        for (const ActTensor& y : s.tensors)
          if (&y != &o && (y.resident || y.replicated) && y.res_first <= last && p <= y.res_last &&
              y.mt_addr < o.mt_addr + bytes && o.mt_addr < y.mt_addr + y.mt_bytes)
            in_place = -1;  // the region is taken after the Add
      }
    }
    // Highest free range: move down below every region it would overlap.
    int64_t top = t.memtile.bytes;
    if (in_place >= 0) {
      top = s.tensors[static_cast<size_t>(in_place)].mt_addr + bytes;
    } else {
      for (bool moved = true; moved && top - bytes >= floor;) {
        moved = false;
        for (const auto& [lo, hi] : busy)
          if (lo < top && top - bytes < hi) top = lo, moved = true;
      }
      if (top - bytes < floor) continue;
    }
    x.replicated = true;
    x.in_place_of = in_place;
    x.mt_addr = top - bytes;
    x.mt_w = x.w;
    x.mt_bytes = bytes;
    x.res_first = p, x.res_last = last;
    x.res_x0.clear();
    s.layers[static_cast<size_t>(p)].out_repl = true;
    for (const auto& [li, kind] : uses)
      (kind == 0 ? s.layers[static_cast<size_t>(li)].in_repl
                 : s.layers[static_cast<size_t>(li)].in2_repl) = true;
  }
}

Status RunFusion(CompileState& s) {
  for (Layer& l : s.layers)
    l.prefetch_weights = l.kind == LayerKind::kConv && !l.weights_per_iteration;
  PlanReplicas(s);
  GrowWeightRings(s);
  return Status::Ok();
}

std::string DumpFusion(const CompileState& s) {
  std::string r =
      "# fusion: weight prefetch per layer, memtile-resident activations; aliased (fused) concat "
      "inputs\n";
  for (const Layer& l : s.layers) {
    r += fmt::format("{:<28} prefetch_weights {}", l.name, l.prefetch_weights ? 1 : 0);
    if (l.fused_add >= 0)
      r += fmt::format(" computes {}", s.layers[static_cast<size_t>(l.fused_add)].name);
    if (l.fused_into >= 0)
      r += fmt::format(" computed_in {}", s.layers[static_cast<size_t>(l.fused_into)].name);
    // A BUILD pair (postconv.cc).
    if (l.post_conv >= 0)
      r += fmt::format(" then {}", s.layers[static_cast<size_t>(l.post_conv)].name);
    if (l.post_into >= 0)
      r += fmt::format(" computed_after {}", s.layers[static_cast<size_t>(l.post_into)].name);
    if (l.in_resident || l.in2_resident || l.out_resident)
      r += fmt::format(" memtile{}{}{} reserved {}", l.in_resident ? " in" : "",
                       l.in2_resident ? " in2" : "", l.out_resident ? " out" : "", l.mt_reserved);
    if (l.in_repl || l.in2_repl || l.out_repl)
      r += fmt::format(" replicated{}{}{}", l.in_repl ? " in" : "", l.in2_repl ? " in2" : "",
                       l.out_repl ? " out" : "");
    if (l.w_ring > 2) r += fmt::format(" w_ring {}", l.w_ring);
    r += "\n";
  }
  for (const ActTensor& t : s.tensors)
    if (t.resident)
      r += fmt::format("resident {} memtile [{}, {}) layers {}..{}{}{}\n", t.name, t.mt_addr,
                       t.mt_addr + t.mt_bytes, s.layers[static_cast<size_t>(t.res_first)].name,
                       s.layers[static_cast<size_t>(t.res_last)].name,
                       t.in_place_of >= 0
                           ? " in place of " + s.tensors[static_cast<size_t>(t.in_place_of)].name
                           : "",
                       t.resident_ddr ? " and DDR" : "");
  for (const ActTensor& t : s.tensors)
    if (t.replicated)
      r += fmt::format("replicated {} memtile [{}, {}) layers {}..{}{}\n", t.name, t.mt_addr,
                       t.mt_addr + t.mt_bytes, s.layers[static_cast<size_t>(t.res_first)].name,
                       s.layers[static_cast<size_t>(t.res_last)].name,
                       t.in_place_of >= 0
                           ? " in place of " + s.tensors[static_cast<size_t>(t.in_place_of)].name
                           : "");
  for (const ActTensor& t : s.tensors)
    if (t.alias_of >= 0)
      r += fmt::format("alias {} -> {} at channel {}\n", t.name,
                       s.tensors[static_cast<size_t>(t.alias_of)].name, t.channel_offset);
  return r;
}

}  // namespace wbs::aie

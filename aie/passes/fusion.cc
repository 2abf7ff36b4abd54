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
// Not done yet (docs/AIE_COMPILER.md): keeping activations in memtiles across
// consecutive layers (every other activation goes through DDR), fusing a conv
// with a following pool.
#include <fmt/format.h>

#include <algorithm>

#include "aie/passes/compiler.h"

namespace wbs::aie {

void PlanAddFusion(CompileState& s) {
  for (Layer& l : s.layers) l.fused_add = l.fused_into = -1;
  if (!s.options.fuse_add) return;
  for (size_t ai = 1; ai < s.layers.size(); ++ai) {
    Layer& a = s.layers[ai];
    Layer& c = s.layers[ai - 1];
    if (a.kind != LayerKind::kAdd || c.kind != LayerKind::kConv || c.groups != 1 || c.fused_into >= 0) continue;
    const ActTensor& y = s.tensors[static_cast<size_t>(c.output)];
    const bool feeds = a.inputs.size() == 2 && (a.inputs[0] == c.output || a.inputs[1] == c.output);
    const int other = feeds ? (a.inputs[0] == c.output ? a.inputs[1] : a.inputs[0]) : -1;
    if (!feeds || other == c.output || y.consumers.size() != 1 || y.alias_of >= 0 || y.elem != 1) continue;
    if (std::find(s.outputs.begin(), s.outputs.end(), c.output) != s.outputs.end()) continue;
    const ActTensor& o = s.tensors[static_cast<size_t>(other)];
    const ActTensor& z = s.tensors[static_cast<size_t>(a.output)];
    if (o.elem != 1 || z.elem != 1 || o.c != y.c || o.h != y.h || o.w != y.w || z.c != y.c || z.h != y.h || z.w != y.w) continue;
    c.fused_add = static_cast<int>(ai);
    a.fused_into = static_cast<int>(ai - 1);
  }
}

Status RunFusion(CompileState& s) {
  for (Layer& l : s.layers) l.prefetch_weights = l.kind == LayerKind::kConv && !l.weights_per_iteration;
  return Status::Ok();
}

std::string DumpFusion(const CompileState& s) {
  std::string r = "# fusion: weight prefetch per layer; aliased (fused) concat inputs\n";
  for (const Layer& l : s.layers) {
    r += fmt::format("{:<28} prefetch_weights {}", l.name, l.prefetch_weights ? 1 : 0);
    if (l.fused_add >= 0) r += fmt::format(" computes {}", s.layers[static_cast<size_t>(l.fused_add)].name);
    if (l.fused_into >= 0) r += fmt::format(" computed_in {}", s.layers[static_cast<size_t>(l.fused_into)].name);
    r += "\n";
  }
  for (const ActTensor& t : s.tensors)
    if (t.alias_of >= 0) r += fmt::format("alias {} -> {} at channel {}\n", t.name, s.tensors[static_cast<size_t>(t.alias_of)].name, t.channel_offset);
  return r;
}

}  // namespace wbs::aie

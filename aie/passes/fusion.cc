// Pass 7: depth-wise tiling / fusion decisions.
//
// Done: activation functions (Relu, Clip) are fused into the conv's clamp and
// a residual Add -> Relu into QAdd's clamp by the quantizer already; a
// QConcat whose inputs share its quantization is fused away (its producers
// write straight into their channel slots, pass 1); within a layer the
// weights of channel chunk k+1 are prefetched from DDR into the other half of
// the memtile weight slab while chunk k computes (`prefetch_weights`; the
// time model hides that LOADW behind the previous block).
// Not done yet (docs/AIE_COMPILER.md): keeping activations in memtiles across
// consecutive layers (every activation goes through DDR), fusing a conv with
// the following pool or residual add, prefetching the next layer's weights.
#include <fmt/format.h>

#include "aie/passes/compiler.h"

namespace wbs::aie {

Status RunFusion(CompileState& s) {
  for (Layer& l : s.layers) l.prefetch_weights = l.kind == LayerKind::kConv && !l.weights_per_iteration;
  return Status::Ok();
}

std::string DumpFusion(const CompileState& s) {
  std::string r = "# fusion: weight prefetch per layer; aliased (fused) concat inputs\n";
  for (const Layer& l : s.layers)
    r += fmt::format("{:<28} prefetch_weights {}\n", l.name, l.prefetch_weights ? 1 : 0);
  for (const ActTensor& t : s.tensors)
    if (t.alias_of >= 0) r += fmt::format("alias {} -> {} at channel {}\n", t.name, s.tensors[static_cast<size_t>(t.alias_of)].name, t.channel_offset);
  return r;
}

}  // namespace wbs::aie

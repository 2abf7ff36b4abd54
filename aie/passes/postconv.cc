// BUILD pair fusion (h_aie26; docs/AIE_COMPILER.md, pass 7 "fusion"): a
// conv with a fused residual Add (fusion.cc PlanAddFusion) and the 1x1
// stride-1 conv right after that Add, reading only the Add's output (a
// ResNet bottleneck's conv3 or downsample + Add, then the next block's
// conv1), become one tile: each core computes the first conv, the Add, and
// then the second conv on the Add's output buffer still in the core
// (Layer::post_conv on the first, Layer::post_into on the second). The
// block output is still written out for its other readers (the next Add's
// shortcut), but never read back into the cores for the second conv, whose
// own output goes from its own buffer pair to its resident region.
//
// What each pass does with a pair: PlanPostConv here, right after every
// PlanAddFusion (before the residency plan: the second conv's output region
// lives from the first conv's layer, where it is written); subvolume tiles
// the first conv with width over every core (every output channel of both
// convs on each core) and counts the second's blob and output buffers,
// then gives the second conv the same tile (and unpairs where no tile
// fits); memplan puts the second conv's core buffers above the first's and
// its blob's memtile slabs after the first's; codegen emits the second
// conv's weights before the first's rows, its COMP after the Add COMP and
// its WRITEFM after the block output's. `Compile()` keeps a pair only
// where it beat the two layers' summed times.
#include <algorithm>

#include "aie/passes/compiler.h"

namespace wbs::aie {

int PostConvCandidate(const CompileState& s, size_t ai) {
  if (ai >= s.layers.size()) return -1;
  const Layer& a = s.layers[ai];
  if (a.kind != LayerKind::kConv || a.fused_add < 0 || a.groups != 1 || a.multi_out() ||
      a.post_pool.on || a.pre_pool.on)
    return -1;
  const Layer& f = s.layers[static_cast<size_t>(a.fused_add)];
  const size_t bi = static_cast<size_t>(a.fused_add) + 1;
  if (bi >= s.layers.size()) return -1;
  const Layer& b = s.layers[bi];
  if (b.kind != LayerKind::kConv || b.groups != 1 || b.kh != 1 || b.kw != 1 || b.sh != 1 ||
      b.sw != 1 || b.pad_t != 0 || b.pad_l != 0 || b.pad_b != 0 || b.pad_r != 0 ||
      b.multi_out() || b.post_pool.on || b.pre_pool.on || b.fused_add >= 0 ||
      b.inputs.size() != 1 || b.inputs[0] != f.output || b.oh != a.oh || b.ow != a.ow)
    return -1;
  const ActTensor& x = s.tensors[static_cast<size_t>(f.output)];
  const ActTensor& y = s.tensors[static_cast<size_t>(b.output)];
  if (b.c != x.c || x.elem != 1 || y.elem != 1 || y.alias_of >= 0 || y.consumers.empty() ||
      s.IsNetworkIo(b.output) || s.IsNetworkIo(f.output) || s.AliasHosts()[static_cast<size_t>(b.output)])
    return -1;
  return static_cast<int>(bi);
}

void PlanPostConv(CompileState& s) {
  for (Layer& l : s.layers) l.post_conv = l.post_into = -1, l.post_w_bytes = 0;
  for (size_t ai = 0; ai < s.layers.size(); ++ai) {
    const auto it = s.options.post_conv.find(s.layers[ai].name);
    if (it == s.options.post_conv.end() || !it->second) continue;
    const int bi = PostConvCandidate(s, ai);
    if (bi < 0) continue;
    Layer& a = s.layers[ai];
    Layer& b = s.layers[static_cast<size_t>(bi)];
    a.post_conv = bi;
    b.post_into = static_cast<int>(ai);
    // The second conv's whole blob (every output channel on each core).
    BlobHeader h;
    h.br = b.br, h.bc = b.bc, h.kh = 1, h.kw = 1;
    h.block_rows = static_cast<int32_t>(b.block_rows);
    int64_t nnz = 0;
    for (const int64_t n : b.row_nnz) nnz += n;
    h.nnz = static_cast<int32_t>(nnz);
    a.post_w_bytes = (BlobBytes(h) + 63) / 64 * 64;
  }
}

}  // namespace wbs::aie

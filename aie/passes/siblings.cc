// Horizontal fusion of sibling convs (the end of pass 1, schedule).
//
// Convs that read the same input tensor with the same kernel, stride,
// dilation and padding (Inception's parallel 1x1 branch convs: Mixed_6b's
// branch1x1, branch7x7_1 and branch7x7dbl_1 each read the 17x17x768 block
// input) become one conv layer with the concatenated output channels, so the
// input streams from the memtiles to the cores once instead of once per
// sibling: the memtile->core broadcast that bounds those convs is shared and
// what is left scales with the weights (and so with sparsity). Each sibling
// keeps its own bias and per-channel requantization (the blob holds them
// per channel) and its own destination: Layer::out_slices maps output
// channel ranges to the siblings' tensors, and codegen writes each core
// tile's channels piece by piece to the tensor (DDR, resident region,
// concat slot) they belong to. One COMP covers a tile that spans siblings,
// so they must share the output clamp and zero point (true for ReLU
// outputs); a sibling's channels must be whole 8-row blocks so no weight
// block straddles two. The fused layer takes the first sibling's place in
// the schedule (every consumer of a sibling comes after it).
// Groups named in CompileOptions::hfuse_groups as false stay apart
// (pipeline.cc tries each group both ways).
#include <fmt/format.h>

#include <algorithm>

#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {

bool SameConv(const Layer& a, const Layer& b) {
  return a.kind == LayerKind::kConv && b.kind == LayerKind::kConv && a.op == "QConv" &&
         b.op == "QConv" && a.groups == 1 && b.groups == 1 && a.inputs == b.inputs && a.c == b.c &&
         a.h == b.h && a.w == b.w && a.oh == b.oh && a.ow == b.ow && a.kh == b.kh && a.kw == b.kw &&
         a.sh == b.sh && a.sw == b.sw && a.dh == b.dh && a.dw == b.dw && a.pad_t == b.pad_t &&
         a.pad_l == b.pad_l && a.pad_b == b.pad_b && a.pad_r == b.pad_r && a.br == b.br &&
         a.bc == b.bc && a.out_zero == b.out_zero && a.lo == b.lo && a.hi == b.hi;
}

// The fused layer's name: the first sibling's, then the others' without the
// prefix (up to a '.') they share with it ("Mixed_6b.branch1x1.conv+branch7x7_1.conv").
std::string FusedName(const std::vector<const Layer*>& g) {
  std::string r = g.front()->name;
  for (size_t i = 1; i < g.size(); ++i) {
    const std::string& a = g.front()->name;
    const std::string& b = g[i]->name;
    size_t cut = 0;
    for (size_t k = 0; k < std::min(a.size(), b.size()) && a[k] == b[k]; ++k)
      if (a[k] == '.') cut = k + 1;
    r.push_back('+');
    r.append(b, cut, std::string::npos);
  }
  return r;
}

}  // namespace

void FuseSiblings(CompileState& s) {
  if (!s.options.hfuse) return;
  auto is_io = [&](int i) { return s.IsNetworkIo(i); };
  auto eligible = [&](const Layer& l) {
    if (l.kind != LayerKind::kConv || l.op != "QConv" || l.groups != 1 || l.m % l.br != 0)
      return false;
    const ActTensor& y = s.tensors[static_cast<size_t>(l.output)];
    return y.elem == 1 && !is_io(l.output) && !s.dequant_scales.count(l.output);
  };
  const size_t n = s.layers.size();
  std::vector<int> group_of(n, -1);   // layer -> index of its group's first layer
  std::vector<bool> taken(n, false);  // in a group (fused or kept apart)
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < n; ++i) {
    if (taken[i] || !eligible(s.layers[i])) continue;
    std::vector<size_t> g{i};
    for (size_t j = i + 1; j < n; ++j)
      if (!taken[j] && eligible(s.layers[j]) && SameConv(s.layers[i], s.layers[j]) &&
          s.tensors[static_cast<size_t>(s.layers[j].output)].type ==
              s.tensors[static_cast<size_t>(s.layers[i].output)].type)
        g.push_back(j);
    if (g.size() < 2) continue;
    std::vector<const Layer*> members;
    for (size_t j : g) members.push_back(&s.layers[j]);
    // A group kept apart stays apart whole (its later members do not regroup).
    for (size_t j : g) taken[j] = true;
    const auto it = s.options.hfuse_groups.find(FusedName(members));
    if (it != s.options.hfuse_groups.end() && !it->second) continue;
    for (size_t j : g) group_of[j] = static_cast<int>(i);
    groups.push_back(std::move(g));
  }
  if (groups.empty()) return;
  std::vector<Layer> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (group_of[i] >= 0 && group_of[i] != static_cast<int>(i))
      continue;  // merged into its group's first
    if (group_of[i] < 0) {
      out.push_back(std::move(s.layers[i]));
      continue;
    }
    const std::vector<size_t>& g =
        *std::find_if(groups.begin(), groups.end(), [&](const auto& v) { return v.front() == i; });
    std::vector<const Layer*> members;
    for (size_t j : g) members.push_back(&s.layers[j]);
    Layer f = s.layers[i];
    f.name = FusedName(members);
    f.m = 0;
    f.weight.clear(), f.bias.clear(), f.mult.clear(), f.shift.clear(), f.row_nnz.clear();
    f.block_rows = 0, f.macs = 0, f.macs_dense = 0;
    std::vector<int8_t> weight;
    for (const Layer* m : members) {
      f.out_slices.push_back({m->output, f.m, f.m + m->m, m->name});
      f.m += m->m;
      weight.insert(weight.end(), m->weight.begin(), m->weight.end());
      f.bias.insert(f.bias.end(), m->bias.begin(), m->bias.end());
      f.mult.insert(f.mult.end(), m->mult.begin(), m->mult.end());
      f.shift.insert(f.shift.end(), m->shift.begin(), m->shift.end());
      // Whole blocks (m % br == 0): the block rows concatenate.
      f.row_nnz.insert(f.row_nnz.end(), m->row_nnz.begin(), m->row_nnz.end());
      f.block_rows += m->block_rows;
      f.macs += m->macs;
      f.macs_dense += m->macs_dense;
    }
    f.weight = std::move(weight);
    out.push_back(std::move(f));
  }
  s.layers = std::move(out);
  // Producers and consumers by the new layer indices (program order, as pass 1 made them).
  s.RelinkTensors();
}

}  // namespace wbs::aie

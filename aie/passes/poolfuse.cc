// Pool fusion (the end of pass 1, after sibling fusion).
//
// A conv whose output only a max pool reads (ResNet-50 conv1 -> maxpool,
// Inception-v3's Conv2d_2b -> maxpool1 and Conv2d_4a -> maxpool2, VGG-16's
// conv -> 2x2 pools) becomes one layer: each core computes the conv tile
// its pooled output tile needs into core scratch and pools it there
// (Layer::post_pool). The conv's output plane then never crosses the
// core -> memtile -> core links (ResNet-50: 802 KB out and back in, the
// pool layer's fill and drain), and the memtiles hold no slab for it.
// Where pool windows overlap (3x3 s2) the shared conv row and column of
// neighbouring tiles are recomputed: (2 oh + 1) x (2 ow + 1) conv outputs
// for an oh x ow pooled tile. The pool's padding is not a DMA property any
// more (the scratch is the conv's output): the pool COMP skips taps outside
// the conv's output plane (what padding with the type minimum does), and
// the conv computes whatever its padded input gives there.
//
// The fused layer keeps the conv's weights, requantization and output clamp;
// its output, oh and ow are the pool's; kh/kw/sh/sw/pads are the composite
// window on the conv's input (every input-side pass tiles it as a conv with
// that window). Pairs named false in CompileOptions::pool_fuse_pairs stay
// apart (pipeline.cc tries each pair both ways).
#include <algorithm>

#include "aie/passes/compiler.h"

namespace wbs::aie {

std::string PoolFusedName(const std::string& first, const std::string& second) {
  return first + "+" + second;
}

void FusePostPools(CompileState& s);
void FusePrePools(CompileState& s);

int64_t PostPoolPositions(const Layer& l) {
  if (!l.post_pool.on || l.cores.empty() || l.oh_t <= 0 || l.ow_t <= 0) return 0;
  int64_t rows = 0;
  for (int64_t y = 0; y < l.oh; y += l.oh_t) rows += l.post_pool.rows(std::min(l.oh_t, l.oh - y));
  // Every channel is computed once per column share (2-D: its row's core in
  // each column; wide: each core of a column a slice; channels over every
  // core: one core, the whole width): the cores holding core 0's channels.
  int64_t cols = 0;
  const CoreWork& w0 = l.cores.front();
  for (const CoreWork& w : l.cores) {
    if (w.m0 != w0.m0 || w.m1 != w0.m1) continue;
    for (int64_t x = w.x0; x < w.x1; x += l.ow_t)
      cols += l.post_pool.cols(std::min(l.ow_t, w.x1 - x));
  }
  return rows * cols;
}

void FusePools(CompileState& s) {
  FusePostPools(s);
  FusePrePools(s);
}

void FusePostPools(CompileState& s) {
  if (!s.options.pool_fuse) return;
  auto is_io = [&](int i) { return s.IsNetworkIo(i); };
  const std::vector<bool> hosts = s.AliasHosts();  // some tensor is aliased into it
  const size_t n = s.layers.size();
  std::vector<int> pool_of(n, -1);  // conv -> the pool fused into it
  std::vector<bool> gone(n, false);
  for (size_t i = 0; i < n; ++i) {
    const Layer& c = s.layers[i];
    if (c.kind != LayerKind::kConv || c.op != "QConv" || c.groups != 1 || c.multi_out() ||
        c.dh != 1 || c.dw != 1)
      continue;
    const ActTensor& y = s.tensors[static_cast<size_t>(c.output)];
    if (y.elem != 1 || y.alias_of >= 0 || hosts[static_cast<size_t>(c.output)] || is_io(c.output) ||
        s.dequant_scales.count(c.output) || y.consumers.size() != 1)
      continue;
    const int pi = y.consumers.front();
    const Layer& p = s.layers[static_cast<size_t>(pi)];
    if (p.kind != LayerKind::kMaxPool || p.inputs.size() != 1 || p.inputs[0] != c.output ||
        p.dh != 1 || p.dw != 1 || p.c != c.m || p.h != c.oh || p.w != c.ow)
      continue;
    const ActTensor& z = s.tensors[static_cast<size_t>(p.output)];
    if (z.elem != 1 || z.type != y.type) continue;
    const auto it = s.options.pool_fuse_pairs.find(PoolFusedName(c.name, p.name));
    if (it != s.options.pool_fuse_pairs.end() && !it->second) continue;
    // The fused tile has no CIN parts (the scratch holds the requantized
    // conv tile): the smallest one (a block row, one pooled pixel, every
    // input channel) must fit half the core's buffers, the rest left to
    // larger tiles and the memory plan (VGG-16's 512-channel convs do not).
    {
      const int64_t kh = (p.kh - 1) * c.sh + c.kh, kw = (p.kw - 1) * c.sw + c.kw;
      BlobHeader h;
      h.br = c.br, h.bc = c.bc, h.kh = static_cast<int32_t>(c.kh),
      h.kw = static_cast<int32_t>(c.kw);
      h.block_rows = 1;
      h.nnz = static_cast<int32_t>((c.c + c.bc - 1) / c.bc);
      h.cin = static_cast<int32_t>(c.c);
      const int64_t need = 2 * c.c * kh * kw + BlobBytes(h) + 2 * c.br + c.br * p.kh * p.kw;
      if (2 * need > s.target.core_buffer_bytes()) continue;
    }
    pool_of[i] = pi;
    gone[static_cast<size_t>(pi)] = true;
  }
  if (std::none_of(gone.begin(), gone.end(), [](bool g) { return g; })) return;
  std::vector<Layer> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (gone[i]) continue;
    if (pool_of[i] < 0) {
      out.push_back(std::move(s.layers[i]));
      continue;
    }
    Layer f = std::move(s.layers[i]);
    const Layer& p = s.layers[static_cast<size_t>(pool_of[i])];
    Layer::PostPool& q = f.post_pool;
    q.on = true;
    q.conv = f.name, q.pool = p.name;
    q.conv_out = f.output;
    q.pkh = p.kh, q.pkw = p.kw, q.psh = p.sh, q.psw = p.sw, q.ppad_t = p.pad_t, q.ppad_l = p.pad_l;
    q.ckh = f.kh, q.ckw = f.kw, q.csh = f.sh, q.csw = f.sw;
    q.coh = f.oh, q.cow = f.ow;
    f.name = PoolFusedName(f.name, p.name);
    f.output = p.output;
    f.oh = p.oh, f.ow = p.ow;
    // Pooled pixel (y, x) reads conv rows y * psh - ppad_t + [0, pkh), i.e.
    // input rows (y * psh - ppad_t) * csh - pad_t + [0, (pkh - 1) * csh + ckh).
    f.pad_t = q.ppad_t * q.csh + f.pad_t, f.pad_l = q.ppad_l * q.csw + f.pad_l;
    f.kh = (q.pkh - 1) * q.csh + q.ckh, f.kw = (q.pkw - 1) * q.csw + q.ckw;
    f.sh = q.psh * q.csh, f.sw = q.psw * q.csw;
    f.pad_b = std::max<int64_t>(0, (f.oh - 1) * f.sh + f.kh - f.pad_t - f.h);
    f.pad_r = std::max<int64_t>(0, (f.ow - 1) * f.sw + f.kw - f.pad_l - f.w);
    out.push_back(std::move(f));
  }
  s.layers = std::move(out);
  s.RelinkTensors();
}

void FusePrePools(CompileState& s) {
  if (!s.options.pool_fuse) return;
  auto is_io = [&](int i) { return s.IsNetworkIo(i); };
  const std::vector<bool> hosts = s.AliasHosts();  // some tensor is aliased into it
  const size_t n = s.layers.size();
  std::vector<int> conv_of(n, -1);  // pool -> the conv it is fused into
  for (size_t i = 0; i < n; ++i) {
    const Layer& p = s.layers[i];
    if (p.kind != LayerKind::kAvgPool || p.op != "QAveragePool" || p.inputs.size() != 1 ||
        p.dh != 1 || p.dw != 1)
      continue;
    const ActTensor& x = s.tensors[static_cast<size_t>(p.inputs[0])];
    const ActTensor& y = s.tensors[static_cast<size_t>(p.output)];
    // The pool COMP keeps the quantization (in_zero is the output's zero point).
    if (y.elem != 1 || x.elem != 1 || y.type != x.type || y.zero_point != x.zero_point ||
        y.alias_of >= 0 || hosts[static_cast<size_t>(p.output)] || is_io(p.output) ||
        y.consumers.size() != 1)
      continue;
    const int ci = y.consumers.front();
    const Layer& c = s.layers[static_cast<size_t>(ci)];
    if (c.kind != LayerKind::kConv || c.op != "QConv" || c.groups != 1 || c.multi_out() ||
        c.post_pool.on || c.inputs.size() != 1 || c.inputs[0] != p.output || c.kh != 1 ||
        c.kw != 1 || c.sh != 1 || c.sw != 1 || c.pad_t != 0 || c.pad_l != 0 || c.pad_b != 0 ||
        c.pad_r != 0 || c.h != p.oh || c.w != p.ow)
      continue;
    const auto it = s.options.pool_fuse_pairs.find(PoolFusedName(p.name, c.name));
    if (it != s.options.pool_fuse_pairs.end() && !it->second) continue;
    conv_of[i] = ci;
  }
  if (std::all_of(conv_of.begin(), conv_of.end(), [](int v) { return v < 0; })) return;
  for (size_t i = 0; i < n; ++i) {
    if (conv_of[i] < 0) continue;
    const Layer& p = s.layers[i];
    Layer& f = s.layers[static_cast<size_t>(conv_of[i])];
    Layer::PrePool& q = f.pre_pool;
    q.on = true;
    q.pool = p.name, q.conv = f.name;
    q.pool_out = p.output;
    q.pool_pad_b = p.pool_pad_b, q.pool_pad_r = p.pool_pad_r;
    q.count_include_pad = p.count_include_pad;
    q.lo = p.lo, q.hi = p.hi;
    f.name = PoolFusedName(p.name, f.name);
    f.inputs = p.inputs;
    f.h = p.h, f.w = p.w;
    // A 1x1 stride-1 conv on the pooled plane reads the pool's window.
    f.kh = p.kh, f.kw = p.kw, f.sh = p.sh, f.sw = p.sw;
    f.pad_t = p.pad_t, f.pad_l = p.pad_l, f.pad_b = p.pad_b, f.pad_r = p.pad_r;
  }
  std::vector<Layer> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (conv_of[i] < 0) out.push_back(std::move(s.layers[i]));
  s.layers = std::move(out);
  s.RelinkTensors();
}

}  // namespace wbs::aie

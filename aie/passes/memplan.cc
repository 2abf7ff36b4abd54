// Pass 6: memory plan.
//
// DDR: one symbol per activation tensor that is not aliased into another (a
// QConcat output holds its inputs' channel slots), the network inputs and
// outputs, and one constant per conv layer with its weight blobs (identical
// blobs — a row's cores in the 2-D split share one — stored once).
// Scratch activation symbols are coloured by lifetime (first producer to last
// consumer layer): a DDR range is reused once its tensor is dead.
//
// Core and memtile: layers run one after another (a block boundary is a
// barrier for core buffers), so each layer's buffers are laid out from 0:
// core  [in ping|pong][in2 ping|pong][w (x2 with CIN parts)][out ping|pong][acc]
// memtile (per column)  [in slabs][in2 slabs][weight slabs][out slabs]
// where activations slabs are ping/pong per row group (one shared input slab
// when every row reads the same channels) and weight slabs hold the blobs of
// the rows this memtile broadcasts to (see WeightServers). Capacities are
// checked here; pass 2 chose tiles so they fit. A BUILD pair's second conv
// (Layer::post_into, postconv.cc) runs in the first's blocks: its core
// buffers (blob, output ping|pong) follow the first's, its blob's memtile
// slabs (one per row parity) follow the first's slabs (Layer::mt_post_w).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string_view>
#include <unordered_map>

#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {
int64_t Align(int64_t v) { return (v + 63) / 64 * 64; }
}  // namespace

// Memtiles that broadcast weights along the rows: each serves the core
// columns it reaches; chosen greedily from the left. Returns, per core
// column, the memtile index serving it.
std::vector<int> WeightServers(const Target& t, int cols_used) {
  std::vector<int> server(static_cast<size_t>(cols_used), -1);
  const auto& mcols = t.memtile.columns;
  int c = 0;
  while (c < cols_used) {
    // The memtile furthest right that still reaches column c.
    int best = -1;
    for (size_t i = 0; i < mcols.size(); ++i)
      if (t.memtile_reaches(mcols[i], c)) best = static_cast<int>(i);
    if (best < 0) best = 0;
    for (int x = c; x < cols_used && t.memtile_reaches(mcols[static_cast<size_t>(best)], x); ++x)
      server[static_cast<size_t>(x)] = best;
    if (server[static_cast<size_t>(c)] < 0) server[static_cast<size_t>(c)] = best;
    while (c < cols_used && server[static_cast<size_t>(c)] >= 0) ++c;
  }
  return server;
}

// As WeightServers, greedy from the right (the memtile furthest left that
// still reaches the rightmost unserved column): on 4 columns memtiles 2
// and 0 where WeightServers picks 1 and 3.
std::vector<int> MirroredServers(const Target& t, int cols_used) {
  std::vector<int> server(static_cast<size_t>(cols_used), -1);
  const auto& mcols = t.memtile.columns;
  for (int c = cols_used - 1; c >= 0;) {
    int best = -1;
    for (size_t i = mcols.size(); i-- > 0;)
      if (t.memtile_reaches(mcols[i], c)) best = static_cast<int>(i);
    if (best < 0) return WeightServers(t, cols_used);
    for (int x = c; x >= 0 && t.memtile_reaches(mcols[static_cast<size_t>(best)], x); --x)
      server[static_cast<size_t>(x)] = best;
    while (c >= 0 && server[static_cast<size_t>(c)] >= 0) --c;
  }
  return server;
}

// The memtile holding column c's activation slabs: the nearest one reaching it.
int ActMemtile(const Target& t, int col) {
  const auto m = t.memtiles_for_column(col);
  const int mcol = m.empty() ? t.memtile.columns.front() : m.front();
  const auto& mc = t.memtile.columns;
  return static_cast<int>(std::find(mc.begin(), mc.end(), mcol) - mc.begin());
}

// Whether a column's cores read the same input tile (one slab per column,
// broadcast down it); not with channel-wise layers or width over every core.
bool SharedInput(const Layer& l) { return l.kind == LayerKind::kConv && l.groups == 1 && !l.wide; }
int64_t MemtileFootprint(const Layer& l, int64_t rows, int64_t in, int64_t in2, int64_t w,
                         int64_t out, int64_t w_slabs);

// Slot of column c among the columns sharing its memtile (slabs are offset by slot * mt_col_bytes).
int MemtileSlot(const Target& t, int col) {
  int slot = 0;
  for (int c = 0; c < col; ++c) slot += ActMemtile(t, c) == ActMemtile(t, col);
  return slot;
}

Status RunMemPlan(CompileState& s) {
  const Target& t = s.target;
  Program& p = s.program;
  p = Program{};
  p.target = t.name, p.rows = t.rows, p.cols = t.cols, p.memtiles = t.num_memtiles();
  p.memtile_bytes = t.memtile.bytes, p.core_bytes = t.core.data_memory_bytes;
  // ---- DDR ----
  int64_t top = 0;
  // Lifetimes of root tensors (layer indices).
  const int n = static_cast<int>(s.tensors.size());
  auto root = [&](int i) {
    while (s.tensors[static_cast<size_t>(i)].alias_of >= 0)
      i = s.tensors[static_cast<size_t>(i)].alias_of;
    return i;
  };
  std::vector<int> first(static_cast<size_t>(n), INT32_MAX), last(static_cast<size_t>(n), -1);
  for (size_t li = 0; li < s.layers.size(); ++li) {
    const Layer& l = s.layers[li];
    // A fused Add runs inside its conv (fusion.cc): its output is written
    // while the conv still reads its own input, so it is born there.
    const int at = l.fused_into >= 0 ? l.fused_into : static_cast<int>(li);
    auto touch = [&](int ti) {
      const int r = root(ti);
      first[static_cast<size_t>(r)] = std::min(first[static_cast<size_t>(r)], at);
      last[static_cast<size_t>(r)] = std::max(last[static_cast<size_t>(r)], at);
    };
    for (int ti : l.inputs) touch(ti);
    touch(l.output);
    for (const Layer::OutSlice& o : l.out_slices) touch(o.tensor);  // fused siblings write them all
  }
  auto is_io = [&](int i) { return s.IsNetworkIo(i); };
  // I/O first (fixed), then scratch by interval colouring (first fit on address).
  struct Live {
    int64_t addr, size;
    int last;
  };
  std::vector<Live> live;
  std::vector<int> order;
  for (int i = 0; i < n; ++i)
    if (s.tensors[static_cast<size_t>(i)].alias_of < 0) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return is_io(a) > is_io(b); });
  int64_t io_top = 0;
  for (int i : order) {
    ActTensor& x = s.tensors[static_cast<size_t>(i)];
    DdrSymbol y;
    y.name = x.name;
    y.size = Align(x.bytes());
    y.type = x.type;
    y.scale = x.scale;
    y.zero_point = x.zero_point;
    y.shape = {1, x.c, x.h, x.w};
    if (std::find(s.inputs.begin(), s.inputs.end(), i) != s.inputs.end())
      y.kind = DdrSymbol::Kind::kInput;
    else if (std::find(s.outputs.begin(), s.outputs.end(), i) != s.outputs.end())
      y.kind = DdrSymbol::Kind::kOutput;
    else
      y.kind = DdrSymbol::Kind::kScratch;
    if (const auto it = s.dequant_scales.find(i); it != s.dequant_scales.end())
      y.scales = it->second;
    if (is_io(i)) {
      y.addr = io_top;
      io_top += y.size;
    } else {
      // First fit among ranges whose tensors are dead before this one is born.
      const int born = first[static_cast<size_t>(i)];
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (const Live& v : live)
        if (v.last >= born) busy.emplace_back(v.addr, v.addr + v.size);
      std::sort(busy.begin(), busy.end());
      int64_t a = 0;
      for (const auto& b : busy) {
        if (a + y.size <= b.first) break;
        a = std::max(a, b.second);
      }
      y.addr = a;  // relative to the scratch base, fixed up below
      live.push_back({a, y.size, last[static_cast<size_t>(i)]});
    }
    x.symbol = static_cast<int>(p.symbols.size());
    p.symbols.push_back(std::move(y));
  }
  for (DdrSymbol& y : p.symbols)
    if (y.kind == DdrSymbol::Kind::kScratch) y.addr += io_top, top = std::max(top, y.addr + y.size);
  top = std::max(top, io_top);
  // Aliased tensors: offset inside their root.
  for (int i = 0; i < n; ++i) {
    ActTensor& x = s.tensors[static_cast<size_t>(i)];
    int64_t off = 0;
    int j = i;
    while (s.tensors[static_cast<size_t>(j)].alias_of >= 0) {
      const ActTensor& a = s.tensors[static_cast<size_t>(j)];
      const ActTensor& host = s.tensors[static_cast<size_t>(a.alias_of)];
      off += a.channel_offset * host.h * host.w * host.elem;
      j = a.alias_of;
    }
    x.symbol = s.tensors[static_cast<size_t>(j)].symbol;
    x.ddr_offset = off;
  }
  // Weight blobs.
  for (Layer& l : s.layers) {
    if (l.kind != LayerKind::kConv) continue;
    DdrSymbol y;
    y.name = l.name + ".w";
    y.kind = DdrSymbol::Kind::kConst;
    y.addr = Align(top);
    // Keys view the blobs' bytes (l.blobs outlives the map): no copy.
    std::unordered_map<std::string_view, int64_t> seen;
    l.blob_offset.assign(l.blobs.size(), -1);
    size_t bytes = 0;
    for (const auto& b : l.blobs) bytes += static_cast<size_t>(Align(static_cast<int64_t>(b.size())));
    y.data.reserve(bytes);
    for (size_t b = 0; b < l.blobs.size(); ++b) {
      if (l.blobs[b].empty()) continue;
      const std::string_view key(reinterpret_cast<const char*>(l.blobs[b].data()), l.blobs[b].size());
      const auto it = seen.find(key);
      if (it != seen.end()) {
        l.blob_offset[b] = it->second;
        continue;
      }
      const int64_t off = static_cast<int64_t>(y.data.size());
      y.data.insert(y.data.end(), l.blobs[b].begin(), l.blobs[b].end());
      y.data.resize(static_cast<size_t>(Align(static_cast<int64_t>(y.data.size()))), 0);
      seen.emplace(key, off);
      l.blob_offset[b] = off;
    }
    y.size = static_cast<int64_t>(y.data.size());
    top = y.addr + y.size;
    l.blob_symbol = static_cast<int>(p.symbols.size());
    p.symbols.push_back(std::move(y));
  }
  p.ddr_bytes = Align(top);
  // ---- Core and memtile buffers per layer ----
  int per_mt = 1;
  {
    std::map<int, int> count;
    for (int c = 0; c < t.cols; ++c) per_mt = std::max(per_mt, ++count[ActMemtile(t, c)]);
  }
  for (Layer& l : s.layers) {
    // A BUILD pair's second conv (Layer::post_into, postconv.cc): its blob
    // and output buffer pair above the first conv's buffers in the core;
    // its input is the first's output buffer, its blob's memtile slabs are
    // the first's (mt_post_w), its output is resident: no slab of its own.
    if (l.post_into >= 0) {
      const Layer& a = s.layers[static_cast<size_t>(l.post_into)];
      l.w_double = false, l.in_bufs = 2, l.w_bufs = 2, l.w_ring = 2;
      int64_t a_end = a.core_scratch + a.scratch_bytes;
      l.core_in = l.core_in2 = a_end;
      l.core_w = a_end, a_end += l.w_bytes;
      l.core_out = a_end, a_end += 2 * l.out_bytes;
      l.core_acc = l.core_scratch = a_end;
      if (a_end > t.core_buffer_bytes())
        return Internal("{}: core buffers with {} need {} bytes, {} available", l.name, a.name, a_end,
                        t.core_buffer_bytes());
      l.mt_in = l.mt_in2 = l.mt_w = l.mt_out = l.mt_col_bytes = 0;
      l.mt_in_bytes = l.mt_in2_bytes = l.mt_w_bytes = l.mt_out_bytes = 0;
      continue;
    }
    // The second conv of a BUILD pair (Layer::post_conv) after this one's buffers.
    const Layer* post = l.post_conv >= 0 ? &s.layers[static_cast<size_t>(l.post_conv)] : nullptr;
    const int64_t post_core = post ? post->w_bytes + 2 * post->out_bytes : 0;
    // A second core weight half when the layer has more than one weight
    // block and it fits beside the tile (pass 2 sized the tile without it).
    {
      int64_t wchunks = 0;
      for (const CoreWork& w : l.cores)
        wchunks = std::max(wchunks, (w.x1 - w.x0 + l.ow_t - 1) / std::max<int64_t>(1, l.ow_t));
      // An input-stationary tile (Layer::in_stay) has one input buffer.
      const int64_t need = (l.in_stay ? 1 : 2) * l.in_bytes + 2 * l.in2_bytes + 2 * l.w_bytes +
                           2 * l.out_bytes + l.acc_bytes + l.scratch_bytes + post_core;
      l.w_double = l.kind == LayerKind::kConv && !l.weights_per_iteration &&
                   l.chunks * wchunks > 1 && need <= t.core_buffer_bytes();
    }
    // Extra input and weight buffers for sparse CIN parts where they fit
    // (Layer::in_bufs, Layer::w_bufs; the input's lock ids need a core with
    // 16 locks, the weights are ordered by their addresses). A column's
    // cores share each part's input (one broadcast) and a row's cores each
    // part's blob, so with two of either a core runs at most one part ahead
    // of the slowest core sharing it. Dense parts are alike on every core:
    // nothing to even out, and the extra buffer moved some dense layers
    // later (VGG-16 7x7 features.12 +2 us).
    l.in_bufs = l.in_stay ? 1 : 2;
    l.w_bufs = 2;
    if (l.kind == LayerKind::kConv && l.parts > 1 && l.macs < l.macs_dense && t.core.locks >= 16) {
      const int64_t rest = 2 * l.in2_bytes + 2 * l.out_bytes + l.acc_bytes + l.scratch_bytes;
      // Not a count leaving one part over (parts % k == 1): then an
      // iteration's last part and the next one's first take the same
      // buffer and serialize (VGG-16 features.10, 4 parts in 3 buffers:
      // 117 -> 126 us).
      auto ok = [&](int64_t k) { return k == 2 || (k <= l.parts && l.parts % k != 1); };
      // The most buffers of the scarcer kind first, then weight buffers,
      // then input buffers (Inception-v3 4x4 50%: Mixed_6a.branch3x3, 36
      // parts, 3 + 3 58.6 -> 51.9 us, 4 + 2 as before, 2 + 4 53.6; the 7x7
      // convs with 10 parts, whose blobs outweigh their input tiles, 2 + 4
      // 0.3-0.8 us faster than 4 + 2; 1.3200 -> 1.3071 ms in all).
      auto rank = [](int64_t ki, int64_t kw) { return std::min(ki, kw) * 100 + kw * 10 + ki; };
      for (int64_t ki = 2; ki <= 4; ++ki)
        for (int64_t kw = 2; kw <= 4; ++kw)
          if (ok(ki) && ok(kw) &&
              ki * l.in_bytes + kw * l.w_bytes + rest <= t.core_buffer_bytes() &&
              rank(ki, kw) > rank(l.in_bufs, l.w_bufs))
            l.in_bufs = ki, l.w_bufs = kw;
    }
    int64_t a = 0;
    l.core_in = a, a += l.in_bufs * l.in_bytes;
    l.core_in2 = a, a += 2 * l.in2_bytes;
    l.core_w = a, a += l.core_w_halves() * l.w_bytes;
    l.core_out = a, a += 2 * l.out_bytes;
    l.core_acc = a, a += l.acc_bytes;
    l.core_scratch = a, a += l.scratch_bytes;
    if (a > t.core_buffer_bytes())
      return Internal("{}: core buffers need {} bytes, {} available", l.name, a,
                      t.core_buffer_bytes());
    // Resident inputs and outputs (fusion.cc) have no slab: they are read
    // from / written to their region at the top of the memtile.
    l.w_ring = 2;  // GrowWeightRings (after the replicas) may deepen it
    int64_t m = 0;
    l.mt_in_bytes = l.in_resident ? 0 : l.in_bytes, l.mt_in = m,
    m += (l.in_stay ? 1 : 2) * (SharedInput(l) ? 1 : l.rows_used) * l.mt_in_bytes;
    l.mt_in2_bytes = l.in2_resident ? 0 : l.in2_bytes, l.mt_in2 = m,
    m += 2 * l.rows_used * l.mt_in2_bytes;
    l.mt_w_bytes = l.w_bytes, l.mt_w = m, m += l.mt_w_slabs() * l.rows_used * l.w_bytes;
    l.mt_out_bytes = l.out_resident ? 0 : l.out_bytes, l.mt_out = m,
    m += 2 * l.rows_used * l.mt_out_bytes;
    l.mt_post_w = m, m += post ? 2 * l.post_w_bytes : 0;
    l.mt_col_bytes = m;
    if (m != MemtileFootprint(l, l.rows_used, l.in_bytes, l.in2_bytes, l.w_bytes, l.out_bytes,
                              l.mt_w_slabs()))
      return Internal("{}: memtile footprint mismatch", l.name);
    m *= per_mt;
    if (m > t.memtile.bytes - l.mt_reserved) {
      return FailedPrecondition(
          "{}: memtile slabs need {} bytes, a memtile has {} ({} of them hold resident "
          "activations; tile in {} out {} w {})",
          l.name, m, t.memtile.bytes, l.mt_reserved, l.in_bytes, l.out_bytes, l.w_bytes);
    }
  }
  return Status::Ok();
}

// A ring of memtile weight slabs for sparse convs (Layer::w_ring) with more
// than two weight blocks (CIN parts, or channel and width chunks), up to 8
// slabs per row: after the replicated regions are placed (fusion.cc
// PlanReplicas places them above the slabs of the layers they live
// through, so a ring planned before them would take their room), where
// the deeper slabs still end below every region live during the layer.
// The output slabs move up behind the weight slabs.
void GrowWeightRings(CompileState& s) {
  const Target& t = s.target;
  if (!s.options.w_ring) return;
  int per_mt = 1;
  {
    std::map<int, int> count;
    for (int c = 0; c < t.cols; ++c) per_mt = std::max(per_mt, ++count[ActMemtile(t, c)]);
  }
  for (size_t li = 0; li < s.layers.size(); ++li) {
    Layer& l = s.layers[li];
    if (l.kind != LayerKind::kConv || l.w_kept || l.macs >= l.macs_dense || l.post_conv >= 0 ||
        l.post_into >= 0)
      continue;
    // Weight blocks the ring rotates over: the parts, or the channel and width chunks.
    int64_t blocks = l.parts;
    if (!l.weights_per_iteration) {
      int64_t wchunks = 0;
      for (const CoreWork& w : l.cores)
        wchunks = std::max(wchunks, (w.x1 - w.x0 + l.ow_t - 1) / std::max<int64_t>(1, l.ow_t));
      blocks = l.chunks * wchunks;
    }
    int64_t top = t.memtile.bytes;
    for (const ActTensor& x : s.tensors)
      if ((x.resident || x.replicated) && x.res_first <= static_cast<int>(li) &&
          x.res_last >= static_cast<int>(li))
        top = std::min(top, x.mt_addr);
    for (int64_t k = std::min<int64_t>(8, blocks); k > 2; --k) {
      l.w_ring = k;
      const int64_t m = MemtileFootprint(l, l.rows_used, l.in_bytes, l.in2_bytes, l.w_bytes,
                                         l.out_bytes, l.mt_w_slabs());
      if (per_mt * m <= top) {
        l.mt_out = l.mt_w + l.mt_w_slabs() * l.rows_used * l.mt_w_bytes;
        l.mt_col_bytes = m;
        break;
      }
      l.w_ring = 2;
    }
  }
}

std::string DumpMemPlan(const CompileState& s) {
  std::string r = "# memplan: DDR symbols\n";
  for (const DdrSymbol& y : s.program.symbols) {
    static const char* kinds[] = {"input", "output", "const", "scratch"};
    r += fmt::format("ddr {:>10} {:>9} {:<8} {}\n", y.addr, y.size, kinds[static_cast<int>(y.kind)],
                     y.name);
  }
  r += "# per layer: core [in in2 w out acc] and memtile [in in2 w out] addresses\n";
  for (const Layer& l : s.layers) {
    r += fmt::format("{:<28} core {} {} {} {} {}  mt {} {} {} {}\n", l.name, l.core_in, l.core_in2,
                     l.core_w, l.core_out, l.core_acc, l.mt_in, l.mt_in2, l.mt_w, l.mt_out);
  }
  return r;
}

}  // namespace wbs::aie

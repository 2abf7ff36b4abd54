// Pass 2: core subvolume. For each layer, the core tile: output channels
// (mt_rows block rows of br channels; channel-wise layers: mt_rows channels),
// output width ow_t, output rows oh_t (streamed, ping/pong), input channels
// per CIN part ct. Every candidate whose buffers fit the core's buffer banks
// (Target::core_buffer_bytes: ping/pong input and output, the weight blob —
// once when it stays for a whole block, twice when CIN parts reload it every
// iteration — and an s32 accumulator with CIN parts) is scored with the
// per-core steady-state cost iterations x max(input load, weight load,
// compute, output store) + one weight load per chunk, against the layer's DDR
// traffic on the memtiles' channels (weights per serving memtile, inputs
// re-read per channel chunk, outputs), and the cheapest is kept. Both splits
// are tried: the 2-D one (channels over rows, width over columns) and
// channels over every core (pass 3 applies the chosen one). A BUILD pair's
// first conv (Layer::post_conv, postconv.cc) takes only width over every
// core with one chunk of every block row, its buffers counting the second
// conv's blob and output pair; the second conv gets the same tile (the
// pair is undone where none fits).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Sizes {
  int64_t in = 0, in2 = 0, w = 0, out = 0, acc = 0, scr = 0;
  int64_t w_dense = 0;  // the blob of a dense chunk (traffic scales it by the density)
  // A BUILD pair's second conv (Layer::post_conv): its blob and output buffer pair.
  int64_t post_w = 0, post_out = 0;
  int64_t total(bool w_twice) const {
    return 2 * in + 2 * in2 + (w_twice ? 2 : 1) * w + 2 * out + acc + scr + post_w + 2 * post_out;
  }
};

// Undoes a BUILD pair (postconv.cc): each conv is tiled on its own.
void Unpair(Layer& first, Layer& second) {
  second.post_into = -1, first.post_conv = -1, first.post_w_bytes = 0;
}

}  // namespace

int ActMemtile(const Target& t, int col);
bool SharedInput(const Layer& l);
int64_t WideHeightSlices(const Layer& l, int64_t cols_used, int64_t rows, bool allow);
void PlanAddFusion(CompileState& s);
void PlanResidency(CompileState& s, bool enable);

// Bytes of one column's memtile slabs (memplan lays them out the same way):
// ping/pong input (shared by the column's rows, or one per row), add's
// second input, two weight slabs per row (prefetch / CIN parts; every part's
// when they are kept), output per row.
// A resident input, second input or output (fusion.cc) needs no slab.
// `w_slabs` weight slabs per row: 2 (ping/pong), or every CIN part's when
// the parts' blobs stay for the whole chunk (Layer::w_kept).
// An input-stationary tile (Layer::in_stay) loads its input once: one input slab.
int64_t MemtileFootprint(const Layer& l, int64_t rows, int64_t in, int64_t in2, int64_t w, int64_t out, int64_t w_slabs) {
  if (l.in_resident) in = 0;
  if (l.in2_resident) in2 = 0;
  if (l.out_resident) out = 0;
  // (A BUILD pair's second blob: one slab per row parity, Layer::mt_post_w.)
  return (l.in_stay ? 1 : 2) * (SharedInput(l) ? 1 : rows) * in + 2 * rows * in2 + w_slabs * rows * w + 2 * rows * out +
         (l.post_conv >= 0 ? 2 * l.post_w_bytes : 0);
}

// Input channels a conv tile of output block rows [.., + mt_rows) reads (ct per part).
int64_t TileInChannels(const Layer& l, int64_t mt_rows, int64_t ct) {
  if (l.kind != LayerKind::kConv) return mt_rows;
  if (l.groups == 1) return ct;
  const int64_t mpg = l.m / l.groups, cpg = l.c / l.groups;
  // A chunk may straddle one more group than its size suggests.
  return std::min(l.c, (CeilDiv(mt_rows * l.br, mpg) + 1) * cpg);
}

// `fused`: the conv also computes a residual Add (fusion.cc): the other
// input's tile in in2, the conv's own u8 tile in the scratch buffer (acc),
// the sum (y is the Add's output) in out.
// `top_nnz[k]`: the most non-zero blocks any k block rows hold (the sum of
// the k largest row counts; empty: assume dense). A chunk's blob without
// CIN parts never holds more, whichever rows balance gives it (it may
// permute them), so its buffers need no room for a dense chunk: at 50% a
// chunk of twice the rows fits, and the layer's input is streamed to the
// cores half as often. (With CIN parts a part's block columns move when
// the producer's channels are permuted, so parts keep the dense bound.)
static Sizes TileSizes(const Layer& l, const ActTensor& y, int64_t mt_rows, int64_t ow_t, int64_t oh_t, int64_t ct,
                       int64_t parts, bool fused = false, const std::vector<int64_t>& top_nnz = {},
                       const Layer* post = nullptr) {
  Sizes s;
  const int64_t ih = (oh_t - 1) * l.tile_sh() + (l.kh - 1) * l.dh + 1;
  const int64_t iw = (ow_t - 1) * l.tile_sw() + (l.kw - 1) * l.dw + 1;
  const int64_t ch = l.kind == LayerKind::kConv ? mt_rows * l.br : mt_rows;
  s.in = TileInChannels(l, mt_rows, ct) * ih * iw;
  if (l.kind == LayerKind::kAdd) s.in2 = ch * oh_t * ow_t;
  if (l.kind == LayerKind::kConv) {
    BlobHeader h;
    h.br = l.br, h.bc = l.bc, h.kh = static_cast<int32_t>(l.wkh()), h.kw = static_cast<int32_t>(l.wkw());
    h.block_rows = static_cast<int32_t>(mt_rows);
    h.nnz = static_cast<int32_t>(mt_rows * CeilDiv(l.groups == 1 ? ct : l.c / l.groups, l.bc));
    s.w_dense = BlobBytes(h);
    if (parts == 1 && l.groups == 1 && !top_nnz.empty())
      h.nnz = static_cast<int32_t>(std::min<int64_t>(
          h.nnz, top_nnz[static_cast<size_t>(std::min<int64_t>(mt_rows, static_cast<int64_t>(top_nnz.size()) - 1))]));
    s.w = BlobBytes(h);
  }
  s.out = ch * oh_t * ow_t * y.elem;
  if (parts > 1) s.acc = ch * oh_t * ow_t * 4;
  if (fused) s.in2 = ch * oh_t * ow_t, s.acc = ch * oh_t * ow_t;
  // A fused pool's conv tile (u8 scratch; no CIN parts).
  if (l.post_pool.on) s.acc = ch * l.post_pool.rows(oh_t) * l.post_pool.cols(ow_t);
  // A fused pre-pool's pooled input tile (one CIN part).
  if (l.pre_pool.on) s.scr = TileInChannels(l, mt_rows, ct) * oh_t * ow_t;
  // Buffers are 64-byte aligned by the memory plan.
  auto al = [](int64_t v) { return (v + 63) / 64 * 64; };
  if (post) s.post_w = l.post_w_bytes, s.post_out = al(post->m * oh_t * ow_t);
  s.in = al(s.in), s.in2 = al(s.in2), s.w = al(s.w), s.out = al(s.out), s.acc = al(s.acc), s.scr = al(s.scr);
  s.w_dense = al(s.w_dense);
  return s;
}

namespace {

Status TileLayers(CompileState& s) {
  const Target& t = s.target;
  const int64_t budget = t.core_buffer_bytes();
  const double eff = s.options.mac_efficiency > 0 ? s.options.mac_efficiency : t.core.mac_efficiency;
  const double mac_rate = t.macs_per_cycle() * eff;                           // per cycle
  const double in_bpc = t.link_gbps(Link::kMemtileToCore) / t.clock_ghz;    // bytes per cycle
  const double out_bpc = t.link_gbps(Link::kCoreToMemtile) / t.clock_ghz;
  // Columns sharing one memtile split it.
  int per_mt = 1;
  {
    std::map<int, int> count;
    for (int c = 0; c < t.cols; ++c) per_mt = std::max(per_mt, ++count[ActMemtile(t, c)]);
  }
  const double ddr_bpc = t.ddr.channel_gbps / t.clock_ghz;
  for (Layer& l : s.layers) {
  retry_layer:
    // A BUILD pair's second conv (Layer::post_into, postconv.cc): the
    // first conv's tile, every output channel on each core; its input is
    // the first's output buffer (no buffer of its own), its blob the whole.
    if (l.post_into >= 0) {
      const Layer& a = s.layers[static_cast<size_t>(l.post_into)];
      l.subsample = false;
      l.mt_rows = l.block_rows, l.ow_t = a.ow_t, l.oh_t = a.oh_t, l.ct = l.c, l.parts = 1;
      l.in_bytes = l.in2_bytes = l.acc_bytes = l.scratch_bytes = 0;
      l.w_bytes = a.post_w_bytes, l.out_bytes = (l.m * a.oh_t * a.ow_t + 63) / 64 * 64;
      l.weights_per_iteration = l.cout_only = l.w_kept = l.spread_input = l.in_stay = false;
      l.wide = true;
      l.wide_ys = a.wide_ys;
      continue;
    }
    Layer* post = l.post_conv >= 0 ? &s.layers[static_cast<size_t>(l.post_conv)] : nullptr;
    // The second conv's output goes to its resident region (no slab of its own).
    if (post && (!post->out_resident || s.tensors[static_cast<size_t>(post->output)].resident_ddr)) {
      Unpair(l, *post);
      post = nullptr;
    }
    const int64_t mt_budget = (t.memtile.bytes - l.mt_reserved) / per_mt;
    l.subsample = l.kind == LayerKind::kConv && l.kh == 1 && l.kw == 1 && (l.sh > 1 || l.sw > 1) && l.pad_t == 0 &&
                  l.pad_l == 0 && l.pad_b == 0 && l.pad_r == 0;
    struct Pick {
      double cost = INFINITY;
      int64_t mt_rows = 0, ow_t = 0, oh_t = 0, ct = 0, parts = 1;
      Sizes z;
      bool cout_only = false;
      bool w_kept = false;
      bool spread = false;
      bool wide = false;
      bool in_stay = false;
      int64_t wide_ys = 1;
    };
    // [0]: with the fused Add (its tiles next to the conv's, no CIN split),
    // [1]: the conv alone.
    Pick picks[2];
    std::vector<int64_t> top_nnz;  // TileSizes
    const auto sw_it = s.options.sparse_w.find(l.name);
    // (A BUILD pair's one chunk of every row: its blob's exact size.)
    if (l.kind == LayerKind::kConv && l.macs < l.macs_dense &&
        ((sw_it != s.options.sparse_w.end() && sw_it->second) || post)) {
      std::vector<int64_t> r = l.row_nnz;
      std::sort(r.rbegin(), r.rend());
      top_nnz.assign(1, 0);
      for (const int64_t v : r) top_nnz.push_back(top_nnz.back() + v);
    }
    const auto wd_it = s.options.w_double.find(l.name);
    const bool want_w_double =
        l.kind == LayerKind::kConv && wd_it != s.options.w_double.end() && wd_it->second;
    const auto st_it = s.options.in_stay.find(l.name);
    // (Not for a fused pool: its scratch tile is per row block.)
    const bool want_in_stay = l.kind == LayerKind::kConv && !l.post_pool.on && !l.pre_pool.on && !post &&
                              st_it != s.options.in_stay.end() && st_it->second;
    for (const bool fused : {true, false}) {
    if (fused && l.fused_add < 0) continue;
    if (!fused && post) continue;  // a BUILD pair keeps its Add
    Pick& pick = picks[fused ? 0 : 1];
    double& best = pick.cost;
    const ActTensor& y = s.tensors[static_cast<size_t>(fused ? s.layers[static_cast<size_t>(l.fused_add)].output : l.output)];
    const int64_t shortcut_bytes = fused && !l.in2_resident ? y.bytes() : 0;
    // Modes: 0 the 2-D split, 1 width over every core (Layer::wide), 2
    // channels over every core (cout_only).
    for (const int mode : {0, 1, 2}) {
    const bool cout_only = mode == 2, wide = mode == 1;
    if (post && !wide) continue;  // a BUILD pair: width over every core
    if (cout_only && l.force_2d) continue;
    const auto forced_wide = s.options.wide.find(l.name);
    const bool prefer_wide = forced_wide != s.options.wide.end() && forced_wide->second;
    if (wide && forced_wide != s.options.wide.end() && !forced_wide->second) continue;
    const int64_t units = l.kind == LayerKind::kConv ? l.block_rows : l.m;
    const int64_t cols_used = cout_only ? std::min<int64_t>(t.cols, CeilDiv(std::min<int64_t>(units, int64_t{t.rows} * t.cols), t.rows))
                                        : std::min<int64_t>(t.cols, l.ow);
    // Wide: the rows split each column's share (split.cc), at least one output column each.
    int64_t wide_rows = 0;
    if (wide) {
      if (l.kind != LayerKind::kConv || l.groups != 1 || t.rows < 2) continue;
      int64_t narrowest = l.ow;
      for (int64_t c = 0; c < cols_used; ++c) narrowest = std::min(narrowest, l.ow * (c + 1) / cols_used - l.ow * c / cols_used);
      wide_rows = std::min<int64_t>(t.rows, narrowest);
      if (wide_rows < 2) continue;
    }
    l.wide = wide;  // SharedInput (the footprint) depends on it
    // Wide: rows / ys width slices x ys height slices per column share
    // (Layer::wide_ys; BUILD pairs only: h_aie22 measured it on every wide
    // layer, where dense gained more).
    const int64_t wide_ys = wide && post ? WideHeightSlices(l, cols_used, wide_rows, s.options.pair_ys) : 1;
    const int64_t share_h = l.oh / wide_ys;  // output rows per core
    const int64_t cap_rows = cout_only ? CeilDiv(units, int64_t{t.rows} * t.cols) : wide ? units : CeilDiv(units, t.rows);
    const int64_t cap_w = cout_only ? l.ow : wide ? CeilDiv(CeilDiv(l.ow, cols_used), wide_rows / wide_ys) : CeilDiv(l.ow, cols_used);
    // Weight broadcast: 2-D loads each row's blob into every serving memtile;
    // wide loads every blob once per serving memtile and row parity
    // (codegen: even rows through one set of servers, odd rows the mirrored one).
    const int64_t servers = cout_only ? 1 : CeilDiv(cols_used, 2 * int64_t{t.memtile.reach} + 1) * (wide ? 2 : 1);
    // Channels over every core: every column reads the whole input, from
    // DDR once per serving memtile (codegen InputColumn; needs one memtile
    // per column) or per column.
    const bool can_spread = cout_only && SharedInput(l) && t.num_memtiles() == t.cols && cols_used > 1;
    const int64_t spread_copies = CeilDiv(cols_used, 2 * int64_t{t.memtile.reach} + 1);
    const ActTensor& x = s.tensors[static_cast<size_t>(l.inputs[0])];
    const int64_t cpg = l.kind == LayerKind::kConv ? l.c / l.groups : 1;
    const double density = l.macs_dense > 0 ? static_cast<double>(l.macs) / l.macs_dense : 1.0;
    std::vector<int64_t> cts;
    if (l.kind == LayerKind::kConv && l.groups == 1) {
      for (int64_t ct = cpg;; ct = CeilDiv(CeilDiv(ct, 2), l.bc) * l.bc) {
        cts.push_back(ct);
        if (ct <= l.bc) break;
      }
    } else {
      cts.push_back(cpg);
    }
    std::vector<int64_t> mts, ows;
    for (int64_t v = cap_rows; v >= 1; v = v == 1 ? 0 : CeilDiv(v, 2)) mts.push_back(v);
    // Fused siblings (many block rows per core): every chunk count up to
    // 8, not only halvings (Mixed_6e's 18 block rows per row: 6 = 3 chunks
    // fit where 9 does not; 5 would stream the input 4 times).
    if (l.multi_out())
      for (int64_t n = 3; n <= 8; ++n)
        if (const int64_t v = CeilDiv(cap_rows, n); std::find(mts.begin(), mts.end(), v) == mts.end()) mts.push_back(v);
    for (int64_t v = cap_w; v >= 1; v = v == 1 ? 0 : CeilDiv(v, 2)) ows.push_back(v);
    for (int64_t ct : cts) {
      const int64_t parts = CeilDiv(cpg, ct);
      if ((fused || l.post_pool.on) && parts > 1) continue;
      for (int64_t mt : mts) {
        // A BUILD pair's second conv reads every channel of each pixel: one chunk.
        if (post && mt != cap_rows) continue;
        for (int64_t ow : ows) {
         // Input-stationary (Layer::in_stay): the whole output plane of the
         // core's share, every CIN channel, several channel chunks; the
         // input buffer once, two weight halves.
         for (const bool stay : {false, true}) {
          if (stay && !(want_in_stay && parts == 1 && ow == cap_w)) continue;
          l.in_stay = stay;  // MemtileFootprint depends on it
          // Two core weight halves: CIN parts always; with w_double, a
          // tile of more than one weight block (channel or width chunks).
          const bool w_twice =
              parts > 1 || stay || (want_w_double && CeilDiv(cap_rows, mt) * CeilDiv(cap_w, ow) > 1);
          auto fits = [&](const Sizes& z) {
            return (stay ? z.total(true) - z.in : z.total(w_twice)) <= budget &&
                   MemtileFootprint(l, t.rows, z.in, z.in2, z.w, z.out, 2) <= mt_budget;
          };
          // The largest oh_t that fits (the size grows with oh_t).
          int64_t lo = 0, hi = share_h;
          if (stay) {
            lo = fits(TileSizes(l, y, mt, ow, share_h, ct, parts, fused, top_nnz, post)) ? share_h : 0;
          } else {
            while (lo < hi) {
              const int64_t mid = (lo + hi + 1) / 2;
              if (fits(TileSizes(l, y, mt, ow, mid, ct, parts, fused, top_nnz, post))) lo = mid;
              else hi = mid - 1;
            }
          }
          if (lo == 0) continue;
          // A fused pool's tile also tries fewer rows: its blocks are few
          // (a block per channel chunk, each exposing its first input tile
          // and last output tile), and the largest tile leaves too few
          // iterations to hide them (ResNet-50 conv1+maxpool 4x4: 19 rows,
          // 3 iterations per chunk, 40.2 us; 7 rows 35.2 us).
          std::vector<int64_t> ohs{lo};
          if (l.post_pool.on && !stay)
            for (int64_t n = CeilDiv(l.oh, lo) + 1; n <= CeilDiv(l.oh, lo) + 8; ++n)
              if (const int64_t v = CeilDiv(l.oh, n); v < ohs.back()) ohs.push_back(v);
          for (const int64_t oh : ohs) {
          const Sizes z = TileSizes(l, y, mt, ow, oh, ct, parts, fused, top_nnz, post);
          const int64_t chunks = CeilDiv(cap_rows, mt);
          const int64_t iters = chunks * CeilDiv(cap_w, ow) * CeilDiv(share_h, oh) * parts;
          const int64_t ch = l.kind == LayerKind::kConv ? mt * l.br : mt;
          // A fused pool's conv computes its window's rows and columns (overlaps recomputed).
          double comp = l.kind == LayerKind::kConv
                            ? ch * (l.post_pool.on ? l.post_pool.rows(oh) * l.post_pool.cols(ow) : oh * ow) * ct *
                                  l.wkh() * l.wkw() * density / mac_rate
                            : 0.0;
          // A BUILD pair: the second conv's MACs on the same pixels.
          if (post)
            comp += static_cast<double>(post->macs) / static_cast<double>(post->oh * post->ow) * oh * ow / mac_rate;
          const double w_cycles = z.w / in_bpc;
          // The input tile goes in channel halves over both core input
          // channels (codegen), which CIN-part weight reloads share.
          const double in_ch = std::max(1, t.core.dma_in_channels);
          // The output tile leaves in channel halves over both core output channels (codegen).
          const double out_ch = parts == 1 ? std::max(1, t.core.dma_out_channels) : 1;
          double step = std::max({(z.in + z.in2 + (parts > 1 ? z.w : 0)) / (in_ch * in_bpc), comp,
                                  (z.out + z.post_out) / (out_ch * out_bpc)});
          // Wide: a column's memtile sends each row its own tile (no
          // broadcast) over its output DMA channels.
          if (wide)
            step = std::max(step, wide_rows * (z.in + z.in2) / (std::max(1, t.memtile.dma_out_channels) * in_bpc));
          // Codegen alternates the input and weight halves by part: with an
          // odd part count the last part and the next iteration's first
          // share a half, so once per iteration that part's tile and blob
          // load after the previous COMP instead of under it.
          const double odd = parts > 1 && parts % 2 == 1 ? (z.in + z.w) / (in_ch * in_bpc) : 0.0;
          // Without parts every weight block's blob loads before its
          // compute; with two halves only the first waits, the others load
          // under the previous block's compute (a block no shorter than its load).
          const int64_t wblocks = chunks * CeilDiv(cap_w, ow);
          const double block_comp = static_cast<double>(iters / wblocks) * step;
          const double blocks_cost = parts > 1 ? iters * step
                                     : w_twice ? w_cycles + wblocks * std::max(block_comp, w_cycles)
                                               : iters * step + wblocks * w_cycles;
          // A fused pool's blocks expose their fill and drain (above).
          const double fill = l.post_pool.on ? static_cast<double>(wblocks) * (z.in / (in_ch * in_bpc) + z.out / (out_ch * out_bpc)) : 0.0;
          double core_cost = blocks_cost + (iters / parts) * odd + fill;
          if (stay) {
            // The input once, then per chunk the larger of its compute, its
            // output store, and the next blob plus its shortcut tile on the
            // core's input channels (shared).
            const double blk = std::max({comp, (z.w + z.in2) / (in_ch * in_bpc), z.out / (out_ch * out_bpc)});
            // Each chunk also costs a switch: its blob goes to every core
            // of a row (several columns) and into the half the chunk
            // before last frees, so the row's cores wait for each other
            // (0.2-0.5 us per chunk in ResNet-50 layer2.x.conv1 /
            // layer3.x.conv3 at 50%; charging it keeps pass 2 from the
            // smallest chunks: layer3.x.conv3 1 -> 4 block rows, 12.2 -> 11.7 us).
            constexpr double kChunkSwitch = 400;  // cycles
            core_cost = (z.in + z.w) / (in_ch * in_bpc) + chunks * (blk + kChunkSwitch);
            if (wide)
              core_cost = std::max(core_cost, wide_rows * (z.in + chunks * z.in2) /
                                                  (std::max(1, t.memtile.dma_out_channels) * in_bpc));
          }
          // DDR traffic of the whole layer on the memtiles' channels.
          const int64_t wchunks = CeilDiv(cap_w, ow), row_iters = CeilDiv(share_h, oh);
          // CIN parts' blobs stay in the memtile for the chunk when they
          // all fit there: one DDR load per part instead of per iteration.
          // The score still counts the per-iteration loads: the kept loads
          // all come in the chunk's first iteration, and scoring them as
          // spread picked tiles whose first iteration waits for every part
          // (ResNet-50 4x4 dense 2.00 -> 2.10 ms; as a bonus after the
          // choice it gives 2.00 -> 1.97).
          const bool kept = parts > 1 && MemtileFootprint(l, t.rows, z.in, z.in2, z.w, z.out, parts) <= mt_budget;
          const double w_total = static_cast<double>(z.w_dense) * density * CeilDiv(units, mt) * wchunks *
                                 (parts > 1 ? row_iters * parts : 1) * servers;
          // (A subsampled input reads 1 / (sh x sw) of the tensor.)
          const double halo = l.subsample ? 1.0 / static_cast<double>(l.sh * l.sw)
                                          : static_cast<double>((oh - 1) * l.sh + (l.kh - 1) * l.dh + 1) / std::max<int64_t>(1, oh * l.sh);
          // Wide: each core's slice also reads its own horizontal halo.
          const double halo_x = wide ? static_cast<double>((ow - 1) * l.tile_sw() + (l.kw - 1) * l.dw + 1) / (ow * l.tile_sw()) : 1.0;
          // (An input-stationary tile reads it once for every chunk.)
          const double in_once =
              l.in_resident ? 0.0 : static_cast<double>(x.bytes()) * halo * halo_x * (stay ? 1 : chunks);
          const double in_total = in_once * (cout_only ? cols_used : 1) + static_cast<double>(shortcut_bytes);
          // Activation and weight loads share every read channel of the
          // used memtiles (each takes whichever is free first).
          const double rd_rate = cols_used * ddr_bpc * std::max(1, t.ddr.read_channels_per_memtile);
          const double out_rate = cols_used * ddr_bpc * t.ddr.write_channels_per_memtile;
          const ActTensor& yr = y.alias_of >= 0 ? s.tensors[static_cast<size_t>(y.alias_of)] : y;
          double wr_cost = l.out_resident && !yr.resident_ddr ? 0.0 : y.bytes() / out_rate;
          if (l.multi_out()) {
            // Fused siblings: the slices whose tensors go to DDR.
            double bytes = 0;
            for (const Layer::OutSlice& o : l.out_slices) {
              const ActTensor& ys = s.tensors[static_cast<size_t>(o.tensor)];
              const ActTensor& rs = ys.alias_of >= 0 ? s.tensors[static_cast<size_t>(ys.alias_of)] : ys;
              if (!rs.resident || rs.resident_ddr) bytes += static_cast<double>(ys.bytes());
            }
            wr_cost = bytes / out_rate;
          }
          double cost = std::max({core_cost, (w_total + in_total) / rd_rate, wr_cost});
          // Channels over every core, DDR-read bound: the input once per
          // serving memtile (codegen SpreadInput). Not when compute or the
          // writes bind: the broadcast to every column's cores makes them
          // wait for each other (measured: VGG-16's compute-bound 14x14
          // layers 3-8% slower with it).
          bool spread = false;
          const auto forced = s.options.spread_input.find(l.name);
          if (can_spread && (forced != s.options.spread_input.end() ? forced->second
                                                                     : (w_total + in_total) / rd_rate > std::max(core_cost, wr_cost))) {
            spread = true;
            cost = std::max({core_cost, (w_total + in_total - in_once * (cols_used - spread_copies)) / rd_rate, wr_cost});
          }
          // A preferred wide split beats any other tile (which stays the fallback when no wide tile fits).
          if (prefer_wide && !wide) cost = cost * 1e6 + 1e12;
          // Likewise a preferred input-stationary tile.
          if (want_in_stay && !stay) cost = cost * 1e6 + 1e12;
          if (cost < best) pick = {cost, mt, ow, oh, ct, parts, z, cout_only, kept, spread, wide, stay, wide_ys};
          }
         }
        }
      }
    }
    }
    }
    // Without fusion the Add runs as a layer of its own: two tensor reads
    // and one write at the array's DDR rates on top of the conv.
    double add_cost = 0;
    // Resident tensors were planned with the Add fused (its output and other input).
    if (l.fused_add >= 0 && !l.out_resident && !l.in2_resident) {
      const double yb = static_cast<double>(s.tensors[static_cast<size_t>(s.layers[static_cast<size_t>(l.fused_add)].output)].bytes());
      const double cols = static_cast<double>(std::min<int64_t>(t.cols, l.ow));
      add_cost = std::max(2 * yb / (cols * ddr_bpc * std::max(1, t.ddr.read_channels_per_memtile)),
                          yb / (cols * ddr_bpc * std::max(1, t.ddr.write_channels_per_memtile)));
      if (!(picks[0].cost <= picks[1].cost + add_cost)) {
        s.layers[static_cast<size_t>(l.fused_add)].fused_into = -1;
        l.fused_add = -1;
      }
    }
    const Pick& pick = picks[l.fused_add >= 0 ? 0 : 1];
    const double best = pick.cost;
    if (std::isfinite(best)) {
      l.mt_rows = pick.mt_rows, l.ow_t = pick.ow_t, l.oh_t = pick.oh_t, l.ct = pick.ct, l.parts = pick.parts;
      l.in_bytes = pick.z.in, l.in2_bytes = pick.z.in2, l.w_bytes = pick.z.w, l.out_bytes = pick.z.out, l.acc_bytes = pick.z.acc;
      l.scratch_bytes = pick.z.scr;
      l.weights_per_iteration = pick.parts > 1;
      l.cout_only = pick.cout_only;
      l.w_kept = pick.w_kept;
      l.spread_input = pick.spread;
    }
    l.wide = std::isfinite(best) && pick.wide;
    l.wide_ys = l.wide ? pick.wide_ys : 1;
    l.in_stay = std::isfinite(best) && pick.in_stay;
    if (!std::isfinite(best) && post) {
      // No tile holds the pair: each conv on its own.
      Unpair(l, *post);
      goto retry_layer;
    }
    if (!std::isfinite(best)) {
      return FailedPrecondition("{}: no core tile fits {} bytes of core buffers (one output row of one block row, {} input channels)",
                               l.name, budget, l.bc);
    }
  }
  return Status::Ok();
}

}  // namespace

Status RunSubvolume(CompileState& s) {
  // A probe without resident tensors first: a layer whose best tile spreads
  // channels over every core (narrow late layers, Gemm) would lose more by
  // the 2-D split that residency needs than the DDR traffic it saves.
  PlanAddFusion(s);
  PlanPostConv(s);
  PlanResidency(s, false);
  if (s.options.resident) {
    WBS_RETURN_IF_ERROR(TileLayers(s));
    for (Layer& l : s.layers)
      l.prefers_cout_only = l.cout_only && !(s.options.resident_min_w > 0 && l.ow >= s.options.resident_min_w) &&
                            !(l.multi_out() && l.ow > 2 * int64_t{s.target.cols});
    PlanAddFusion(s);
    PlanPostConv(s);
    PlanResidency(s, true);
  }
  Status st = TileLayers(s);
  bool any = false;
  for (const Layer& l : s.layers) any |= l.mt_reserved > 0;
  if (st.ok() || !any) return st;
  // A layer found no tile beside the resident activations: everything through DDR.
  PlanAddFusion(s);
  PlanPostConv(s);
  PlanResidency(s, false);
  return TileLayers(s);
}

std::string DumpSubvolume(const CompileState& s) {
  std::string r = fmt::format("# subvolume: core tile per layer (budget {} bytes per core)\n", s.target.core_buffer_bytes());
  for (const Layer& l : s.layers) {
    r += fmt::format("{:<28} mt_rows {:4} ow_t {:4} oh_t {:4} ct {:5} parts {:2}  in {} in2 {} w {}{} out {} acc {}{}{}{}\n",
                     l.name, l.mt_rows, l.ow_t, l.oh_t, l.ct, l.parts, l.in_bytes, l.in2_bytes, l.w_bytes,
                     l.weights_per_iteration ? "x2" : "", l.out_bytes, l.acc_bytes, l.cout_only ? (l.spread_input ? "  cout-only spread" : "  cout-only") : "",
                     l.subsample ? "  subsampled" : "", l.in_stay ? "  in-stay" : "");
  }
  return r;
}

}  // namespace wbs::aie

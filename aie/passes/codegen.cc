// Pass 8: code generation. Per layer, per channel chunk k and output-width
// chunk: a 1-iteration weight block (LOADW DDR -> the serving memtile,
// LOADWM broadcast along the row), then the row-streaming block(s): each
// iteration produces oh_t output rows on every busy core:
//   [per CIN part: (LOADW, LOADWM when weights change every iteration)
//    LOAD DDR -> memtile slab (padding/halo from the source pattern's bounds),
//    LOADFM memtile -> cores (broadcast down the column when the rows share
//    the input), COMP]  WRITEFM core -> memtile, WRITE memtile -> DDR
// with ping/pong core buffers guarded by lock pairs (docs/AIE_PROGRAM.md).
// With CIN parts the input and weight halves alternate by part, not by
// iteration, so part p+1's tile and blob move in while part p computes;
// weight blocks of successive chunks alternate memtile halves (and core
// halves when memplan found room: Layer::w_double); kept CIN parts
// (Layer::w_kept) load from DDR in the chunk's first iteration only. A
// weight blob goes in two byte halves over both channels of each link.
// Output rows that do not fill a whole iteration get a second block of one
// iteration with the remainder. A BUILD pair (Layer::post_conv,
// postconv.cc): the second conv's blob in a block of its own before the
// first conv's rows, its COMP right after the Add COMP on the Add's output
// buffer, its WRITEFM (lock pair kPostOut*) into its resident region after
// the block output's.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "aie/passes/compiler.h"

namespace wbs::aie {

void ChunkRows(const Layer& l, const CoreWork& w, int64_t k, int64_t* first, int64_t* last);
void PartChannels(const Layer& l, int64_t p, int64_t* k0, int64_t* k1);
std::vector<int> WeightServers(const Target& t, int cols_used);
std::vector<int> MirroredServers(const Target& t, int cols_used);
int ActMemtile(const Target& t, int col);
int MemtileSlot(const Target& t, int col);
bool SharedInput(const Layer& l);

namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Lock ids in a core (pairs: id and id + 1 for ping/pong); the third and
// fourth input buffers (Layer::in_bufs) take the pairs from kInEmpty3.
constexpr int kInEmpty = 0, kInFull = 2, kIn2Empty = 4, kIn2Full = 6, kOutEmpty = 8, kOutFull = 10;
constexpr int kInEmpty3 = 12, kInFull3 = 14;
// A BUILD pair's second conv's output buffer (Layer::post_conv; its first
// conv has no CIN parts, so never a third input buffer).
constexpr int kPostOutEmpty = kInEmpty3, kPostOutFull = kInFull3;
constexpr int kCoreLocks = 16;

LockOp L(MemSpace tile, int id) { return LockOp{tile, id, 1, true}; }
// The input buffer's lock (`full`: the full one, else the empty one):
// ping/pong by iteration, or with CIN parts the buffer of part `part`
// (part mod in_bufs, fixed per instruction).
LockOp InLock(MemSpace tile, bool full, const Layer& l, int64_t part) {
  if (l.parts == 1) return L(tile, full ? kInFull : kInEmpty);
  const int sel = static_cast<int>(part % l.in_bufs);
  const int id =
      sel < 2 ? (full ? kInFull : kInEmpty) + sel : (full ? kInFull3 : kInEmpty3) + sel - 2;
  return LockOp{tile, id, 1, false};
}

// Channels [c0, c0 + cn) of a transfer whose patterns have channels in
// dimension 2 (a DDR tensor pattern or a contiguous [c][h][w] tile); the
// slice keeps the acquires (`first`) and/or the releases (`last`) of a lock
// pair, so a transfer split in slices takes its buffer once and hands it on
// once (the slices between are ordered by their data).
Instruction ChannelSlice(const Instruction& in, int64_t c0, int64_t cn, bool first, bool last) {
  Instruction r = in;
  for (AccessPattern* ap : {&r.src_ap, &r.dst_ap}) {
    ap->base += c0 * ap->stride[2];
    ap->size[2] = cn;
  }
  if (!first) r.acquire.clear();
  if (!last) r.release.clear();
  return r;
}

// A contiguous [c][h][w] pattern of `elem`-byte elements at base (+ pong).
AccessPattern Contig(int64_t base, int64_t pong, int64_t c, int64_t h, int64_t w, int elem = 1) {
  AccessPattern ap;
  ap.base = base, ap.pong = pong, ap.elem = elem;
  ap.size = {w, h, c, 1};
  ap.stride = {elem, w * elem, h * w * elem, 0};
  return ap;
}

// A weight blob of `bytes` goes in two byte halves (cut on a 64-byte
// boundary), one on each DDR read channel of the memtile and each input DMA
// channel of the cores, as an activation tile does (on one channel, a 32 KB
// blob would hold the COMPs back twice as long while the second channel
// idles). LOADW: DDR ddr_addr -> memtile mt at slab (when `load`); LOADWM:
// that slab -> `cores` at core_addr (when `move`).
void EmitBlobHalves(std::vector<Instruction>& out, int layer, int64_t bytes, int64_t ddr_addr,
                    int mt, int64_t slab, const std::vector<MemSpace>& cores, int64_t core_addr,
                    bool load, bool move) {
  const int64_t cut = std::min(bytes, (bytes / 2 + 63) / 64 * 64);
  const std::pair<int64_t, int64_t> halves[] = {{0, cut}, {cut, bytes - cut}};
  for (const auto& [o, n] : halves) {
    if (n <= 0 || !load) continue;
    Instruction lw;
    lw.op = Opcode::kLoadW;
    lw.layer = layer;
    lw.src = MemSpace::Ddr();
    lw.src_ap = Contig(ddr_addr + o, 0, 1, 1, n);
    lw.dst = {MemSpace::Memtile(mt)};
    lw.dst_ap = Contig(slab + o, 0, 1, 1, n);
    out.push_back(lw);
  }
  for (const auto& [o, n] : halves) {
    if (n <= 0 || !move) continue;
    Instruction wm;
    wm.op = Opcode::kLoadWm;
    wm.layer = layer;
    wm.src = MemSpace::Memtile(mt);
    wm.src_ap = Contig(slab + o, 0, 1, 1, n);
    wm.dst = cores;
    wm.dst_ap = Contig(core_addr + o, 0, 1, 1, n);
    out.push_back(wm);
  }
}

// Effective MACs per output pixel of layer l's blob bi (from its header and index).
int64_t BlobMacs(const Layer& l, size_t bi) {
  const std::vector<uint8_t>& blob = l.blobs[bi].vec();
  if (blob.empty()) return 0;
  auto I = [&](size_t i) {
    int32_t v;
    std::memcpy(&v, blob.data() + 4 * i, 4);
    return v;
  };
  // Count real weights: rows < m, channels < part end.
  const int64_t rows = I(5), nnz = I(6), cin = I(7);
  (void)nnz;
  const size_t ci = bi / static_cast<size_t>(l.parts * l.chunks);
  const int64_t k = static_cast<int64_t>(bi / static_cast<size_t>(l.parts)) % l.chunks;
  int64_t r0 = 0, r1 = 0;
  ChunkRows(l, l.cores[ci], k, &r0, &r1);
  int64_t macs = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t real_rows =
        std::max<int64_t>(0, std::min(l.m, (r0 + i + 1) * l.br) - (r0 + i) * l.br);
    const size_t rp = kBlobHeaderInts + static_cast<size_t>(i);  // row_ptr[i]
    for (int32_t j = I(rp); j < I(rp + 1); ++j) {
      const int64_t col =
          I(kBlobHeaderInts + static_cast<size_t>(rows) + 1 + static_cast<size_t>(j));
      const int64_t real_cols =
          std::max<int64_t>(0, std::min(cin, (col + 1) * l.bc) - col * l.bc);
      macs += real_rows * real_cols * l.wkh() * l.wkw();
    }
  }
  return macs;
}

struct Gen {
  CompileState& s;
  const Target& t;
  Program& p;
  Layer& l;
  int li;
  std::vector<int> servers, servers_r;  // memtile per column, greedy from the left / from the right
  int64_t wblocks = 0, w_half = 0;      // weight blocks emitted; the current one's half
  int64_t w_slab = 0;                   // the current block's memtile slab (of w_ring)
  // Kept CIN parts: the (row, blob offset, memtile, part) slabs loaded in chunk kept_chunk.
  std::set<std::tuple<int, int64_t, int, int64_t>> kept_loaded;
  int64_t kept_chunk = -1;
  // Input-stationary layers (Layer::in_stay): each channel chunk is one
  // one-iteration block, so ping/pong by iteration would give every chunk
  // the same halves; the output and shortcut tiles (core buffers, memtile
  // slabs, their locks) alternate halves by chunk instead: half_ = k % 2
  // (-1: by iteration). last_k_: per core, the last chunk it computes.
  int64_t half_ = -1;
  std::vector<int64_t> last_k_;

  LockOp PL(MemSpace tile, int id) const {
    return half_ < 0 ? L(tile, id) : LockOp{tile, id + static_cast<int>(half_), 1, false};
  }
  BufRef PB(int64_t addr, int64_t bytes) const {
    return half_ < 0 ? BufRef{addr, bytes} : BufRef{addr + half_ * bytes, 0};
  }
  AccessPattern PC(int64_t base, int64_t bytes, int64_t c, int64_t h, int64_t w, int elem = 1) const {
    return half_ < 0 ? Contig(base, bytes, c, h, w, elem) : Contig(base + half_ * bytes, 0, c, h, w, elem);
  }
  size_t CoreIndex(const CoreWork* w) const { return static_cast<size_t>(w - l.cores.data()); }

  const ActTensor& T(int i) const { return s.tensors[static_cast<size_t>(i)]; }
  int64_t SymAddr(int ti) const {
    const ActTensor& x = T(ti);
    return p.symbols[static_cast<size_t>(x.symbol)].addr + x.ddr_offset;
  }
  int64_t MtBase(int col) const { return MemtileSlot(t, col) * l.mt_col_bytes; }

  // With channels over every core each column reads the whole input, so
  // one LOAD into a memtile can feed the cores of every column it reaches
  // (one broadcast LOADFM, as the weights go along a row in the 2-D split):
  // the input comes from DDR once per serving memtile instead of once per
  // column. The two channel halves of the tile go through two disjoint
  // sets of serving memtiles (greedy from the left and from the right:
  // memtiles 1, 3 and 0, 2 on 4 columns), so every shim carries its share
  // of the input next to its column's weights. Needs one memtile per
  // column (a server's slab is its own column's).
  bool SpreadInput() const {
    return l.spread_input && l.cout_only && SharedInput(l) && !l.in_resident && !l.in_repl &&
           t.num_memtiles() == t.cols && l.cols_used > 1;
  }
  // The column whose memtile slab holds channel half `half` of column col's input.
  int InputColumn(int col, int half) const {
    return t.memtile
        .columns[static_cast<size_t>((half == 0 ? servers : servers_r)[static_cast<size_t>(col)])];
  }

  // The DDR pattern of tensor ti: channels [c0, c0 + cn), rows from y0
  // (stepping ystep per iteration), cols from x0; with bounds when `bounded`.
  AccessPattern TensorAp(int ti, int64_t c0, int64_t cn, int64_t y0, int64_t hn, int64_t ystep,
                         int64_t x0, int64_t wn, bool bounded, int32_t pad) const {
    const ActTensor& x = T(ti);
    // An aliased tensor lives in a host with the same plane size.
    AccessPattern ap;
    ap.base = SymAddr(ti);
    ap.elem = static_cast<int>(x.elem);
    ap.size = {wn, hn, cn, 1};
    ap.stride = {x.elem, x.w * x.elem, x.h * x.w * x.elem, 0};
    ap.start = {x0, y0, c0, 0};
    ap.step = {0, ystep, 0, 0};
    if (bounded) ap.bound = {x.w, x.h, 0, 0};
    ap.pad_value = pad;
    return ap;
  }

  // Column col's share of a memtile-resident tensor ti (fusion.cc):
  // channels [c0, c0 + cn), rows from y0 (stepping ystep per iteration),
  // image columns from x (inside the column's share).
  AccessPattern ResidentAp(int ti, int col, int64_t c0, int64_t cn, int64_t y0, int64_t hn,
                           int64_t ystep, int64_t x, int64_t wn) const {
    // A concat input lives in its channel slot of the host's region.
    if (T(ti).alias_of >= 0) c0 += T(ti).channel_offset, ti = T(ti).alias_of;
    const ActTensor& r = T(ti);
    AccessPattern ap;
    ap.base = r.mt_addr;
    ap.size = {wn, hn, cn, 1};
    ap.stride = {1, r.mt_w, r.h * r.mt_w, 0};
    ap.start = {x - r.res_x0[static_cast<size_t>(col)], y0, c0, 0};
    ap.step = {0, ystep, 0, 0};
    return ap;
  }

  // Replicated tensors (fusion.cc PlanReplicas). The memtile reaching
  // core columns a and b (a's own first), or -1 when none does.
  int CommonMemtile(int a, int b) const {
    const int own = ActMemtile(t, a);
    auto both = [&](int m) {
      const int mc = t.memtile.columns[static_cast<size_t>(m)];
      return t.memtile_reaches(mc, a) && t.memtile_reaches(mc, b);
    };
    if (both(own)) return own;
    for (int m = 0; m < t.num_memtiles(); ++m)
      if (both(m)) return m;
    return -1;
  }
  // Memtiles a core of column col writes its replicated output tile to.
  std::vector<MemSpace> ReachMemtiles(int col) const {
    std::vector<MemSpace> r;
    for (int m = 0; m < t.num_memtiles(); ++m)
      if (t.memtile_reaches(t.memtile.columns[static_cast<size_t>(m)], col))
        r.push_back(MemSpace::Memtile(m));
    return r;
  }
  // Whether producer column j must also WRITE its channels to DDR: some
  // column shares no memtile with it.
  bool ColumnWritesDdr(int j) const {
    for (int c = 0; c < t.cols; ++c)
      if (CommonMemtile(c, j) < 0) return true;
    return false;
  }
  // Channels [c0, c0 + cn) of replicated tensor ti as read by column col:
  // (first channel, count, memtile holding them or -1 for DDR) per
  // producer column range they touch.
  std::vector<std::tuple<int64_t, int64_t, int>> ReplicaPieces(int ti, int col, int64_t c0,
                                                               int64_t cn) const {
    const ActTensor& x = T(ti);
    const Layer& pl = s.layers[static_cast<size_t>(x.res_first)];
    // A fused sibling layer's (Layer::out_slices) channels of this tensor: [s0, s1).
    int64_t s0 = 0, s1 = pl.m;
    for (const Layer::OutSlice& o : pl.out_slices)
      if (o.tensor == ti) s0 = o.m0, s1 = o.m1;
    std::map<int, std::pair<int64_t, int64_t>> range;  // producer column -> channels
    for (const CoreWork& cw : pl.cores) {
      CoreWork w = cw;
      w.m0 = std::max(w.m0, s0) - s0, w.m1 = std::min(w.m1, s1) - s0;
      if (w.m1 <= w.m0) continue;
      auto [it, fresh] = range.emplace(w.col, std::make_pair(w.m0, w.m1));
      if (!fresh)
        it->second.first = std::min(it->second.first, w.m0),
        it->second.second = std::max(it->second.second, w.m1);
    }
    std::vector<std::tuple<int64_t, int64_t, int>> r;
    for (const auto& [j, mr] : range) {
      const int64_t a = std::max(c0, mr.first), b = std::min(c0 + cn, mr.second);
      if (a < b) r.emplace_back(a, b - a, CommonMemtile(col, j));
    }
    std::sort(r.begin(), r.end());
    return r;
  }
  // A DDR pattern of replicated tensor ti moved to its memtile region (same layout).
  AccessPattern ToReplica(int ti, AccessPattern ap) const {
    ap.base += T(ti).mt_addr - SymAddr(ti);
    return ap;
  }
  // Channel pieces of a tile read from replicated tensor ti by column col:
  // `ld` (DDR -> slab) and `fm` (slab -> cores), channels [c0, c0 + cn) of
  // the tensor at tile channel 0; pieces held in a reachable memtile go
  // straight from its region, the rest through the slab. Each piece goes as
  // two channel halves; the first takes the cores' buffer, the last hands it on.
  void EmitReplicaRead(Block& b, int ti, int col, int64_t c0, int64_t cn, const Instruction& ld,
                       const Instruction& fm) {
    std::vector<Instruction> out;
    for (const auto& [a, n, mt] : ReplicaPieces(ti, col, c0, cn)) {
      const int64_t h = n >= 2 ? n / 2 : n;
      for (const auto& [o, k] : {std::pair<int64_t, int64_t>{a - c0, h}, {a - c0 + h, n - h}}) {
        if (k <= 0) continue;
        Instruction f = ChannelSlice(fm, o, k, false, false);
        if (mt >= 0) {
          f.src = MemSpace::Memtile(mt);
          f.src_ap = ToReplica(ti, ChannelSlice(ld, o, k, false, false).src_ap);
        } else {
          out.push_back(ChannelSlice(ld, o, k, true, true));
        }
        out.push_back(std::move(f));
      }
    }
    bool first = true;
    size_t last_fm = 0;
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i].op == Opcode::kLoadFm) last_fm = i;
    for (size_t i = 0; i < out.size(); ++i) {
      Instruction& in = out[i];
      if (in.op == Opcode::kLoadFm) {
        if (first) in.acquire = fm.acquire;
        if (i == last_fm) in.release = fm.release;
        first = false;
      }
      b.instrs.push_back(std::move(in));
    }
  }

  struct CoreTile {
    const CoreWork* w = nullptr;
    int64_t r0 = 0, r1 = 0;     // chunk rows (block rows or channels)
    int64_t m0 = 0, mc = 0;     // output channels
    int64_t xo = 0, ow = 0;     // output columns
    int64_t yo = 0;             // the core's first output row (CoreWork::y0)
    int64_t cin0 = 0, cin = 0;  // input channels of the tile (grouped / channel-wise)
    int64_t groups = 1;
  };

  Status Emit() {
    l.first_block = static_cast<int>(p.blocks.size());
    if (l.fused_into >= 0 || l.post_into >= 0) {  // computed in a conv's blocks (fusion.cc, postconv.cc)
      l.num_blocks = 0;
      return Status::Ok();
    }
    servers = WeightServers(t, l.cols_used);
    servers_r = MirroredServers(t, l.cols_used);
    const int64_t unit = l.kind == LayerKind::kConv ? l.br : 1;
    int64_t wchunks = 0;
    for (const CoreWork& w : l.cores) wchunks = std::max(wchunks, CeilDiv(w.x1 - w.x0, l.ow_t));
    l.stay_pieces = 1;
    if (l.in_stay && l.kind == LayerKind::kConv && l.groups == 1 &&
        !l.post_pool.on && !l.pre_pool.on && !l.multi_out() && (l.kh - 1) * l.dh == 0)
      // (A single chunk's tile is the streaming tile of one iteration
      // unless it is cut: always in pieces, unless the option says not.)
      if (const auto it = s.options.stay_rows.find(l.name);
          it != s.options.stay_rows.end() ? it->second : l.chunks == 1)
        l.stay_pieces = std::min(CompileOptions::kStayPieces, l.share_h());
    if (l.in_stay) {
      if (wchunks != 1 || l.oh_t < l.share_h() || l.parts != 1)
        return Internal("{}: an input-stationary tile must cover the core's share ({} width chunks, {} of {} rows, {} parts)",
                        l.name, wchunks, l.oh_t, l.share_h(), l.parts);
      last_k_.assign(l.cores.size(), -1);
      for (size_t ci = 0; ci < l.cores.size(); ++ci)
        for (int64_t k = 0; k < l.chunks; ++k) {
          int64_t r0 = 0, r1 = 0;
          ChunkRows(l, l.cores[ci], k, &r0, &r1);
          if (std::min(l.m, r1 * unit) > r0 * unit && l.cores[ci].x1 > l.cores[ci].x0) last_k_[ci] = k;
        }
    }
    for (int64_t k = 0; k < l.chunks; ++k) {
      half_ = l.in_stay ? k % 2 : -1;
      for (int64_t wc = 0; wc < wchunks; ++wc) {
        std::vector<CoreTile> tiles;
        for (size_t ci = 0; ci < l.cores.size(); ++ci) {
          const CoreWork& w = l.cores[ci];
          CoreTile ct;
          ct.w = &w;
          ChunkRows(l, w, k, &ct.r0, &ct.r1);
          ct.m0 = ct.r0 * unit;
          ct.mc = std::min(l.m, ct.r1 * unit) - ct.m0;
          ct.xo = w.x0 + wc * l.ow_t;
          ct.ow = std::min(l.ow_t, w.x1 - ct.xo);
          ct.yo = w.y0;
          if (w.y1 - w.y0 != l.share_h())
            return Internal("{}: core ({}, {}) has output rows [{}, {}), not {} like every core", l.name, w.row,
                            w.col, w.y0, w.y1, l.share_h());
          if (ct.mc <= 0 || ct.ow <= 0) continue;
          if (l.kind == LayerKind::kConv && l.groups > 1) {
            const int64_t mpg = l.m / l.groups, cpg = l.c / l.groups;
            ct.groups = ct.mc / mpg;
            ct.cin0 = ct.m0 / mpg * cpg;
            ct.cin = ct.groups * cpg;
          } else if (l.kind != LayerKind::kConv) {
            ct.cin0 = ct.m0, ct.cin = ct.mc, ct.groups = ct.mc;
          }
          tiles.push_back(ct);
        }
        if (tiles.empty()) continue;
        if (l.kind == LayerKind::kConv && !l.weights_per_iteration) {
          w_slab = wblocks % l.w_ring;
          w_half = wblocks++ % 2;
          EmitWeights(tiles, k, 0, /*in_loop=*/nullptr);
          if (l.post_conv >= 0 && k == 0 && wc == 0) WBS_RETURN_IF_ERROR(EmitPostWeights(tiles));
        }
        if (k != kept_chunk) kept_loaded.clear(), kept_chunk = k;
        // Every core streams its own rows (the same number on each).
        const int64_t full = l.share_h() / l.oh_t, rem = l.share_h() % l.oh_t;
        // Kept CIN parts (Layer::w_kept) come from DDR in the chunk's first
        // block only, part by part beside the input tiles (a block of every
        // part's LOADW first would hold the first COMP back until all had
        // arrived); the later blocks (and width chunks) only move them to
        // the cores. So the first iteration is a block of its own.
        const int64_t peel = l.weights_per_iteration && l.w_kept && full > 1 ? 1 : 0;
        if (peel > 0) WBS_RETURN_IF_ERROR(EmitRows(tiles, k, 0, l.oh_t, 1));
        if (full > peel)
          WBS_RETURN_IF_ERROR(EmitRows(tiles, k, peel * l.oh_t, l.oh_t, full - peel));
        if (rem > 0) WBS_RETURN_IF_ERROR(EmitRows(tiles, k, full * l.oh_t, rem, 1));
      }
    }
    l.num_blocks = static_cast<int>(p.blocks.size()) - l.first_block;
    return Status::Ok();
  }

  size_t BlobIndex(const CoreWork* w, int64_t k, int64_t part) const {
    const size_t ci = static_cast<size_t>(w - l.cores.data());
    return (ci * static_cast<size_t>(l.chunks) + static_cast<size_t>(k)) *
               static_cast<size_t>(l.parts) +
           static_cast<size_t>(part);
  }

  // LOADW (`loads`) + LOADWM (`moves`) of chunk k, part `part` for every
  // tile (into `in_loop`, or a new 1-iteration block).
  void EmitWeights(const std::vector<CoreTile>& tiles, int64_t k, int64_t part, Block* in_loop,
                   bool loads = true, bool moves = true) {
    Block own;
    own.label = fmt::format("{}.w{}", l.name, k);
    Block& b = in_loop ? *in_loop : own;
    const DdrSymbol& ws = p.symbols[static_cast<size_t>(l.blob_symbol)];
    // CIN parts reload the weights every part: parts alternate between the
    // two core halves and the two memtile halves, so part p+1's blob moves
    // in while part p computes (a half taken by iteration parity would make
    // every part of an iteration wait for the previous part's COMP).
    // Without parts, weight blocks alternate between the memtile halves (the
    // next block's LOADW runs under this one's compute) and, with w_double,
    // between the core halves too. With parts the core may have more than
    // two weight buffers (Layer::w_bufs, rotated by part like the input's;
    // the memtile slabs rotate over Layer::w_ring).
    const int64_t wsel = in_loop ? part % 2 : w_half;
    const int64_t core_half = in_loop      ? (part % l.w_bufs) * l.w_bytes
                              : l.w_double ? wsel * l.w_bytes
                                           : 0;
    // Group cores by (row, blob offset, serving memtile): one LOADW + one broadcast LOADWM each.
    std::map<std::tuple<int, int64_t, int>, std::vector<MemSpace>> groups;
    std::map<std::tuple<int, int64_t, int>, int64_t> sizes;
    for (const CoreTile& ct : tiles) {
      const size_t bi = BlobIndex(ct.w, k, part);
      // 2-D split: every row's blob goes to every column, through two
      // memtiles on 4 columns; odd rows use the mirrored servers, so the
      // copies spread over every shim instead of two (memtiles 1, 3 for
      // even rows, 0, 2 for odd ones).
      const int mt =
          l.cout_only ? ActMemtile(t, ct.w->col)
                      : (ct.w->row % 2 == 0 ? servers : servers_r)[static_cast<size_t>(ct.w->col)];
      // Width over every core: every core has the same blobs, so one copy
      // per serving memtile feeds the cores of every row of its parity.
      const auto key = std::make_tuple(l.wide ? ct.w->row % 2 : ct.w->row, l.blob_offset[bi], mt);
      groups[key].push_back(MemSpace::Core(ct.w->row, ct.w->col));
      sizes[key] = static_cast<int64_t>(l.blobs[bi].size());
    }
    for (const auto& [key, cores] : groups) {
      const auto [row, off, mt] = key;
      const int64_t bytes = sizes[key];
      // Weight slab of `row` in the memtile (slot of the first served column in cout-only mode).
      // Kept CIN parts (Layer::w_kept) each have a slab of their own.
      const int64_t slab = (l.cout_only ? MemtileSlot(t, cores.front().col) * l.mt_col_bytes : 0) +
                           l.mt_w +
                           (row * l.mt_w_slabs() + (l.w_kept  ? part
                                                    : in_loop ? part % l.w_ring
                                                              : w_slab)) *
                               l.mt_w_bytes;
      // A kept part's blob is loaded from DDR once per chunk.
      const bool load = loads && (!l.w_kept || kept_loaded.insert({row, off, mt, part}).second);
      EmitBlobHalves(b.instrs, li, bytes, ws.addr + off, mt, slab, cores, l.core_w + core_half,
                     load, moves);
    }
    if (!in_loop) p.blocks.push_back(std::move(own));
  }

  Status EmitRows(const std::vector<CoreTile>& tiles, int64_t k, int64_t yb, int64_t oh,
                  int64_t iters) {
    Block b;
    b.iterations = iters;
    b.label = fmt::format("{}.k{}.y{}", l.name, k, yb);
    const int64_t ih = (oh - 1) * l.tile_sh() + (l.kh - 1) * l.dh + 1;
    const int64_t ystep = l.oh_t * l.tile_sh();
    const ActTensor& x = T(l.inputs[0]);
    const Layer* fa = l.fused_add >= 0 ? &s.layers[static_cast<size_t>(l.fused_add)] : nullptr;
    const int out_t = fa ? fa->output : l.output;
    const ActTensor& y = T(out_t);
    const int32_t pad =
        l.kind == LayerKind::kMaxPool ? (x.type == OutType::kS8 ? -128 : 0) : x.zero_point;
    const int32_t pad_byte = x.type == OutType::kS8 ? (pad & 0xff) : pad;
    // Instruction ranges SplitStayRows cuts into row pieces.
    size_t in_lo = 0, in_hi = 0, comp_lo = 0, comp_hi = 0;
    for (int64_t part = 0; part < l.parts; ++part) {
      if (l.kind == LayerKind::kConv && l.weights_per_iteration) EmitWeights(tiles, k, part, &b);
      // The input halves (core buffer, its lock pair, the memtile slab)
      // alternate by iteration, or with CIN parts by part: part p+1's tile
      // moves in while part p computes (by iteration, every part of an
      // iteration would wait for the previous part's COMP).
      const bool in_pong = l.parts == 1 && !l.in_stay;
      const int64_t in_sel = in_pong ? 0 : part % l.in_bufs;
      const int64_t mt_sel = in_pong ? 0 : part % 2;  // the memtile slab keeps two halves
      int64_t k0 = 0, k1 = 0;
      if (l.kind == LayerKind::kConv) PartChannels(l, part, &k0, &k1);
      // Inputs: one slab per column (shared) or per core.
      // Spread (channels over every core): one slab per serving memtile
      // and channel half, key (server column, -1 - half).
      std::map<std::pair<int, int>, std::vector<const CoreTile*>> slabs;  // (col, row or -1)
      const bool spread = SpreadInput();
      for (int half = 0; half < (spread ? 2 : 1); ++half)
        for (const CoreTile& ct : tiles)
          slabs[{spread ? InputColumn(ct.w->col, half) : ct.w->col, spread           ? -1 - half
                                                                    : SharedInput(l) ? -1
                                                                                     : ct.w->row}]
              .push_back(&ct);
      // Per-core tiles (pools, channel-wise layers) go row by row across
      // the columns, so every memtile's output channels start on their own
      // column's tiles before its neighbours' halo pieces book them.
      in_lo = b.instrs.size();
      std::vector<std::pair<std::pair<int, int>, std::vector<const CoreTile*>>> order(slabs.begin(), slabs.end());
      if (!SharedInput(l) && !spread)
        std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
          return std::make_pair(a.first.second, a.first.first) < std::make_pair(b.first.second, b.first.first);
        });
      for (const auto& [key, group] : order) {
        if (l.in_stay && k > 0) break;  // the input stays in the cores from chunk 0
        const CoreTile& ct = *group.front();
        const int col = key.first;
        const int mt = ActMemtile(t, col);
        const int64_t cin0 = l.kind == LayerKind::kConv && l.groups == 1 ? k0 : ct.cin0;
        const int64_t cin = l.kind == LayerKind::kConv && l.groups == 1 ? k1 - k0 : ct.cin;
        const int64_t iw = (ct.ow - 1) * l.tile_sw() + (l.kw - 1) * l.dw + 1;
        const int64_t slab =
            MtBase(col) + l.mt_in + (key.second < 0 ? 0 : (l.in_stay ? 1 : 2) * key.second * l.mt_in_bytes);
        Instruction ld;
        ld.op = Opcode::kLoad;
        ld.layer = li;
        ld.src = MemSpace::Ddr();
        ld.src_ap = TensorAp(l.inputs[0], cin0, cin, (yb + ct.yo) * l.tile_sh() - l.pad_t, ih, ystep,
                             ct.xo * l.tile_sw() - l.pad_l, iw, true, pad_byte);
        if (l.subsample) {
          // Indices count subsampled pixels: every sw-th column of every sh-th row.
          ld.src_ap.stride[0] *= l.sw, ld.src_ap.stride[1] *= l.sh;
          ld.src_ap.bound = {CeilDiv(x.w, l.sw), CeilDiv(x.h, l.sh), 0, 0};
        }
        ld.dst = {MemSpace::Memtile(mt)};
        ld.dst_ap = Contig(slab + mt_sel * l.mt_in_bytes, in_pong ? l.mt_in_bytes : 0, cin, ih, iw);
        if (ld.src_ap.bytes() > l.in_bytes)
          return Internal("{}: input tile {} > slab {}", l.name, ld.src_ap.bytes(), l.in_bytes);
        Instruction fm;
        fm.op = Opcode::kLoadFm;
        fm.layer = li;
        fm.src = MemSpace::Memtile(mt);
        fm.src_ap = ld.dst_ap;
        for (const CoreTile* g : group) {
          const MemSpace c = MemSpace::Core(g->w->row, g->w->col);
          fm.dst.push_back(c);
          fm.acquire.push_back(InLock(c, false, l, part));
          fm.release.push_back(InLock(c, true, l, part));
        }
        fm.dst_ap = Contig(l.core_in + in_sel * l.in_bytes, in_pong ? l.in_bytes : 0, cin, ih, iw);
        // The tile goes as two channel halves, one on each DDR read channel
        // of the memtile and each input DMA channel of the cores (the
        // weights' channels are idle while the tile streams; their loads
        // take whichever is free first).
        if (l.in_resident) {
          // Straight from the resident input: one piece per column share
          // the tile's input columns [a, a + iw) touch (the first and last
          // shares extended over the image border, delivered as padding
          // by the bounds, as are rows outside the image).
          const ActTensor& r = T(l.inputs[0]);
          const int64_t a = ct.xo * l.tile_sw() - l.pad_l,
                        nc = static_cast<int64_t>(r.res_x0.size());
          std::vector<Instruction> pieces;
          for (int64_t j = 0; j < nc; ++j) {
            const int64_t x0 = r.res_x0[static_cast<size_t>(j)],
                          x1 = j + 1 < nc ? r.res_x0[static_cast<size_t>(j + 1)] : r.w;
            if (l.subsample) {
              // Tile columns count subsampled pixels (image column sw * i,
              // never outside the image: 1x1, no padding); share j holds
              // those with sw * i in [x0, x1).
              const int64_t lo = std::max(a, CeilDiv(x0, l.sw)),
                            hi = std::min(a + iw, CeilDiv(x1, l.sw));
              if (lo >= hi) continue;
              Instruction pc = fm;
              pc.src = MemSpace::Memtile(ActMemtile(t, static_cast<int>(j)));
              pc.src_ap = ResidentAp(l.inputs[0], static_cast<int>(j), cin0, cin, (yb + ct.yo), ih, ystep,
                                     lo * l.sw, hi - lo);
              pc.src_ap.base += pc.src_ap.start[0];
              pc.src_ap.start[0] = 0;
              pc.src_ap.stride[0] *= l.sw, pc.src_ap.stride[1] *= l.sh;
              pc.dst_ap.base += lo - a;
              pc.dst_ap.size[0] = hi - lo;
              pieces.push_back(std::move(pc));
              continue;
            }
            const int64_t lo = std::max(a, j == 0 ? a : x0),
                          hi = std::min(a + iw, j + 1 == nc ? a + iw : x1);
            if (lo >= hi) continue;
            Instruction pc = fm;
            pc.src = MemSpace::Memtile(ActMemtile(t, static_cast<int>(j)));
            pc.src_ap = ResidentAp(l.inputs[0], static_cast<int>(j), cin0, cin, (yb + ct.yo) * l.sh - l.pad_t,
                                   ih, ystep, lo, hi - lo);
            pc.src_ap.bound = {x1 - x0, r.h, 0, 0};
            pc.src_ap.pad_value = pad_byte;
            pc.dst_ap.base += lo - a;
            pc.dst_ap.size[0] = hi - lo;
            pieces.push_back(std::move(pc));
          }
          for (size_t i = 0; i < pieces.size(); ++i) {
            const bool first = i == 0, last = i + 1 == pieces.size();
            if (cin >= 2) {
              const int64_t h = cin / 2;
              b.instrs.push_back(ChannelSlice(pieces[i], 0, h, first, false));
              b.instrs.push_back(ChannelSlice(pieces[i], h, cin - h, false, last));
            } else {
              b.instrs.push_back(ChannelSlice(pieces[i], 0, cin, first, last));
            }
          }
          continue;
        }
        if (l.in_repl) {
          EmitReplicaRead(b, l.inputs[0], col, cin0, cin, ld, fm);
          continue;
        }
        if (spread) {
          // This slab's channel half only: the first half takes each core's
          // buffer, the second hands it on (a 1-channel tile goes whole).
          const int half = -1 - key.second;
          const int64_t h = cin >= 2 ? cin / 2 : cin;
          if (half == 1 && cin < 2) continue;
          const int64_t c0 = half == 0 ? 0 : h, cn = half == 0 ? h : cin - h;
          b.instrs.push_back(ChannelSlice(ld, c0, cn, true, true));
          b.instrs.push_back(ChannelSlice(fm, c0, cn, half == 0, half == 1 || cin < 2));
        } else if (cin >= 2) {
          const int64_t h = cin / 2;
          b.instrs.push_back(ChannelSlice(ld, 0, h, true, true));
          b.instrs.push_back(ChannelSlice(ld, h, cin - h, true, true));
          b.instrs.push_back(ChannelSlice(fm, 0, h, true, false));
          b.instrs.push_back(ChannelSlice(fm, h, cin - h, false, true));
        } else {
          b.instrs.push_back(ld);
          b.instrs.push_back(fm);
        }
        if (l.kind == LayerKind::kAdd) {
          const int64_t slab2 = MtBase(col) + l.mt_in2 + 2 * ct.w->row * l.mt_in2_bytes;
          Instruction ld2 = ld;
          ld2.src_ap =
              TensorAp(l.inputs[1], ct.cin0, ct.cin, (yb + ct.yo), oh, l.oh_t, ct.xo, ct.ow, false, 0);
          ld2.dst_ap = PC(slab2, l.mt_in2_bytes, ct.cin, oh, ct.ow);
          b.instrs.push_back(ld2);
          Instruction fm2;
          fm2.op = Opcode::kLoadFm;
          fm2.layer = li;
          fm2.src = MemSpace::Memtile(mt);
          fm2.src_ap = ld2.dst_ap;
          const MemSpace c = MemSpace::Core(ct.w->row, ct.w->col);
          fm2.dst = {c};
          fm2.dst_ap = PC(l.core_in2, l.in2_bytes, ct.cin, oh, ct.ow);
          fm2.acquire = {PL(c, kIn2Empty)};
          fm2.release = {PL(c, kIn2Full)};
          b.instrs.push_back(fm2);
        }
      }
      in_hi = b.instrs.size();
      // A fused Add's other input: one tile per core, as an Add layer loads it.
      if (fa && part == l.parts - 1) {
        const int other = fa->inputs[0] == l.output ? fa->inputs[1] : fa->inputs[0];
        for (const CoreTile& ct : tiles) {
          const int mt = ActMemtile(t, ct.w->col);
          const int64_t slab2 = MtBase(ct.w->col) + l.mt_in2 + 2 * ct.w->row * l.mt_in2_bytes;
          Instruction ld2;
          ld2.op = Opcode::kLoad;
          ld2.layer = li;
          ld2.src = MemSpace::Ddr();
          ld2.src_ap = TensorAp(other, ct.m0, ct.mc, (yb + ct.yo), oh, l.oh_t, ct.xo, ct.ow, false, 0);
          ld2.dst = {MemSpace::Memtile(mt)};
          ld2.dst_ap = PC(slab2, l.mt_in2_bytes, ct.mc, oh, ct.ow);
          if (!l.in2_resident && !l.in2_repl) b.instrs.push_back(ld2);
          Instruction fm2;
          fm2.op = Opcode::kLoadFm;
          fm2.layer = li;
          fm2.src = MemSpace::Memtile(mt);
          fm2.src_ap = l.in2_resident ? ResidentAp(other, ct.w->col, ct.m0, ct.mc, (yb + ct.yo), oh, l.oh_t,
                                                   ct.xo, ct.ow)
                                      : ld2.dst_ap;
          const MemSpace c = MemSpace::Core(ct.w->row, ct.w->col);
          fm2.dst = {c};
          fm2.dst_ap = PC(l.core_in2, l.in2_bytes, ct.mc, oh, ct.ow);
          fm2.acquire = {PL(c, kIn2Empty)};
          fm2.release = {PL(c, kIn2Full)};
          if (l.in2_repl) {
            EmitReplicaRead(b, other, ct.w->col, ct.m0, ct.mc, ld2, fm2);
            continue;
          }
          b.instrs.push_back(fm2);
        }
      }
      // COMPs.
      comp_lo = b.instrs.size();
      for (const CoreTile& ct : tiles) {
        const MemSpace c = MemSpace::Core(ct.w->row, ct.w->col);
        Instruction cp;
        cp.op = Opcode::kComp;
        cp.layer = li;
        cp.cores = {c};
        CompParams& q = cp.comp;
        const int64_t iw = (ct.ow - 1) * l.tile_sw() + (l.kw - 1) * l.dw + 1;
        q.in_h = static_cast<int32_t>(ih), q.in_w = static_cast<int32_t>(iw);
        q.out_c = static_cast<int32_t>(ct.mc), q.out_h = static_cast<int32_t>(oh),
        q.out_w = static_cast<int32_t>(ct.ow);
        q.kh = static_cast<int32_t>(l.kh), q.kw = static_cast<int32_t>(l.kw);
        q.sh = static_cast<int32_t>(l.tile_sh()), q.sw = static_cast<int32_t>(l.tile_sw());
        q.dh = static_cast<int32_t>(l.dh), q.dw = static_cast<int32_t>(l.dw);
        q.in = {l.core_in + in_sel * l.in_bytes, in_pong ? l.in_bytes : 0};
        q.in_type = x.type;
        q.in_zero = x.zero_point;
        q.out_zero = l.out_zero, q.lo = l.lo, q.hi = l.hi;
        q.out_type = y.type;
        q.out = PB(l.core_out, l.out_bytes);
        const bool last_part = part == l.parts - 1;
        cp.acquire = {InLock(c, true, l, part)};
        // An input-stationary tile hands its input on to the next chunk's
        // COMP; the core's last chunk frees it.
        cp.release = {InLock(c, l.in_stay && k < last_k_[CoreIndex(ct.w)], l, part)};
        const Layer::PostPool& pp = l.post_pool;
        if (fa) {
          // The conv's own u8 tile goes to the scratch buffer for the Add
          // COMP right after it on the same core (program order orders them).
          const ActTensor& yc = T(l.output);
          q.out = {l.core_acc, 0};
          q.out_type = yc.type;
        } else if (pp.on) {
          // A fused pool: the conv tile its pooled tile reads goes to the
          // scratch buffer, the pool COMP right after it writes the output.
          q.out = {l.core_acc, 0};
          q.out_type = T(pp.conv_out).type;
          q.out_h = static_cast<int32_t>(pp.rows(oh)), q.out_w = static_cast<int32_t>(pp.cols(ct.ow));
          q.kh = static_cast<int32_t>(pp.ckh), q.kw = static_cast<int32_t>(pp.ckw);
          q.sh = static_cast<int32_t>(pp.csh), q.sw = static_cast<int32_t>(pp.csw);
        } else if (last_part) {
          cp.acquire.push_back(PL(c, kOutEmpty));
          cp.release.push_back(PL(c, kOutFull));
        }
        switch (l.kind) {
          case LayerKind::kConv: {
            q.kind = CompKind::kConv;
            q.in_c = static_cast<int32_t>(l.groups == 1 ? k1 - k0 : ct.cin);
            q.groups = static_cast<int32_t>(ct.groups);
            q.weights = {l.core_w + (l.weights_per_iteration ? part % l.w_bufs
                                     : l.w_double            ? w_half
                                                             : 0) *
                                        l.w_bytes,
                         0};
            if (l.parts > 1) {
              q.accumulate = part > 0;
              q.in2 = {l.core_acc, 0};
              q.in2_type = OutType::kS32;
              if (!last_part) q.out = {l.core_acc, 0}, q.out_type = OutType::kS32;
            }
            const size_t bi = BlobIndex(ct.w, k, part);
            // The whole blob is the COMP's read footprint: the next LOADWM
            // into this buffer (the next chunk's blob, or the part after
            // next) must wait for the COMP, not only for the header.
            q.weights_bytes = static_cast<int64_t>(l.blobs[bi].size());
            const int64_t mpp = BlobMacs(l, bi);
            const int64_t pixels = int64_t{q.out_h} * q.out_w;
            q.macs = mpp * pixels;
            q.macs_dense = ct.mc * (k1 - k0) * l.wkh() * l.wkw() * pixels;
            break;
          }
          case LayerKind::kAdd:
            q.kind = CompKind::kAdd;
            q.in_c = static_cast<int32_t>(ct.cin);
            q.in2 = PB(l.core_in2, l.in2_bytes);
            q.in2_type = T(l.inputs[1]).type;
            q.in2_zero = T(l.inputs[1]).zero_point;
            q.mult = l.amult, q.mult2 = l.amult2, q.shift = l.ashift;
            cp.acquire.push_back(PL(c, kIn2Full));
            cp.release.push_back(PL(c, kIn2Empty));
            break;
          case LayerKind::kMaxPool:
          case LayerKind::kAvgPool:
            q.kind = l.kind == LayerKind::kMaxPool ? CompKind::kMaxPool : CompKind::kAvgPool;
            q.in_c = static_cast<int32_t>(ct.cin);
            q.count_include_pad = l.count_include_pad;
            q.img_h = static_cast<int32_t>(l.h), q.img_w = static_cast<int32_t>(l.w);
            q.y0 = static_cast<int32_t>((yb + ct.yo) * l.sh - l.pad_t),
            q.x0 = static_cast<int32_t>(ct.xo * l.sw - l.pad_l);
            q.y_step = static_cast<int32_t>(ystep);
            q.pad_begin_h = static_cast<int32_t>(l.pad_t),
            q.pad_begin_w = static_cast<int32_t>(l.pad_l);
            q.pad_end_h = static_cast<int32_t>(l.pool_pad_b),
            q.pad_end_w = static_cast<int32_t>(l.pool_pad_r);
            break;
          case LayerKind::kRescale:
            q.kind = CompKind::kRescale;
            q.in_c = static_cast<int32_t>(ct.cin);
            q.mult = l.amult, q.shift = l.ashift;
            break;
        }
        if (l.pre_pool.on) {
          // A fused pre-pool: the input tile (the pool's window) is pooled
          // into the scratch buffer, which the 1x1 conv reads; the pool
          // COMP holds the input buffer's locks, the conv only its own.
          const Layer::PrePool& pr = l.pre_pool;
          const ActTensor& yp = T(pr.pool_out);
          Instruction pl;
          pl.op = Opcode::kComp;
          pl.layer = li;
          pl.cores = {c};
          CompParams& a = pl.comp;
          a.kind = CompKind::kAvgPool;
          a.in_c = a.out_c = q.in_c;
          a.in_h = q.in_h, a.in_w = q.in_w;
          a.out_h = static_cast<int32_t>(oh), a.out_w = static_cast<int32_t>(ct.ow);
          a.kh = static_cast<int32_t>(l.kh), a.kw = static_cast<int32_t>(l.kw);
          a.sh = static_cast<int32_t>(l.sh), a.sw = static_cast<int32_t>(l.sw);
          a.in = q.in;
          a.in_type = x.type, a.in_zero = x.zero_point;
          a.out = {l.core_scratch, 0};
          a.out_type = yp.type, a.out_zero = yp.zero_point;
          a.lo = pr.lo, a.hi = pr.hi;
          a.count_include_pad = pr.count_include_pad;
          a.img_h = static_cast<int32_t>(l.h), a.img_w = static_cast<int32_t>(l.w);
          a.y0 = static_cast<int32_t>((yb + ct.yo) * l.sh - l.pad_t);
          a.x0 = static_cast<int32_t>(ct.xo * l.sw - l.pad_l);
          a.y_step = static_cast<int32_t>(ystep);
          a.pad_begin_h = static_cast<int32_t>(l.pad_t), a.pad_begin_w = static_cast<int32_t>(l.pad_l);
          a.pad_end_h = static_cast<int32_t>(pr.pool_pad_b), a.pad_end_w = static_cast<int32_t>(pr.pool_pad_r);
          pl.acquire = {cp.acquire.front()};
          pl.release = {cp.release.front()};
          cp.acquire.erase(cp.acquire.begin());
          cp.release.erase(cp.release.begin());
          q.in = {l.core_scratch, 0};
          q.in_h = static_cast<int32_t>(oh), q.in_w = static_cast<int32_t>(ct.ow);
          q.kh = q.kw = q.sh = q.sw = 1;
          q.in_type = yp.type, q.in_zero = yp.zero_point;
          b.instrs.push_back(pl);
        }
        b.instrs.push_back(cp);
        if (pp.on) {
          // The pool on the scratch tile: taps outside the conv's output
          // plane are skipped (the pool's own padding), so the values the
          // conv computed there from padded input never count.
          const ActTensor& yc = T(pp.conv_out);
          Instruction pl;
          pl.op = Opcode::kComp;
          pl.layer = li;
          pl.cores = {c};
          CompParams& a = pl.comp;
          a.kind = CompKind::kMaxPool;
          a.in_c = a.out_c = static_cast<int32_t>(ct.mc);
          a.in_h = q.out_h, a.in_w = q.out_w;
          a.out_h = static_cast<int32_t>(oh), a.out_w = static_cast<int32_t>(ct.ow);
          a.kh = static_cast<int32_t>(pp.pkh), a.kw = static_cast<int32_t>(pp.pkw);
          a.sh = static_cast<int32_t>(pp.psh), a.sw = static_cast<int32_t>(pp.psw);
          a.in = {l.core_acc, 0};
          a.in_type = yc.type, a.in_zero = yc.zero_point;
          a.out = PB(l.core_out, l.out_bytes);
          a.out_type = y.type, a.out_zero = y.zero_point;
          a.lo = l.lo, a.hi = l.hi;
          a.img_h = static_cast<int32_t>(pp.coh), a.img_w = static_cast<int32_t>(pp.cow);
          a.y0 = static_cast<int32_t>((yb + ct.yo) * pp.psh - pp.ppad_t);
          a.x0 = static_cast<int32_t>(ct.xo * pp.psw - pp.ppad_l);
          a.y_step = static_cast<int32_t>(l.oh_t * pp.psh);
          pl.acquire = {PL(c, kOutEmpty)};
          pl.release = {PL(c, kOutFull)};
          b.instrs.push_back(pl);
        }
        if (fa && last_part) {
          // The fused Add: conv tile (scratch) + the other input's tile -> out.
          const bool conv_first = fa->inputs[0] == l.output;
          const ActTensor& yc = T(l.output);
          const ActTensor& o = T(conv_first ? fa->inputs[1] : fa->inputs[0]);
          Instruction ad;
          ad.op = Opcode::kComp;
          ad.layer = li;
          ad.cores = {c};
          CompParams& a = ad.comp;
          a.kind = CompKind::kAdd;
          a.in_c = a.out_c = static_cast<int32_t>(ct.mc);
          a.in_h = a.out_h = static_cast<int32_t>(oh);
          a.in_w = a.out_w = static_cast<int32_t>(ct.ow);
          a.in = {l.core_acc, 0};
          a.in_type = yc.type, a.in_zero = yc.zero_point;
          a.in2 = PB(l.core_in2, l.in2_bytes);
          a.in2_type = o.type, a.in2_zero = o.zero_point;
          // RequantizeAdd is symmetric in its operands: the conv's tile takes its multiplier.
          a.mult = conv_first ? fa->amult : fa->amult2;
          a.mult2 = conv_first ? fa->amult2 : fa->amult;
          a.shift = fa->ashift;
          a.out = PB(l.core_out, l.out_bytes);
          a.out_type = y.type, a.out_zero = fa->out_zero, a.lo = fa->lo, a.hi = fa->hi;
          ad.acquire = {PL(c, kIn2Full), PL(c, kOutEmpty)};
          ad.release = {PL(c, kIn2Empty), PL(c, kOutFull)};
          b.instrs.push_back(ad);
          if (l.post_conv >= 0) b.instrs.push_back(PostComp(ct, fa->output, oh));
        }
      }
      comp_hi = b.instrs.size();
    }
    // Outputs.
    const size_t out_lo = b.instrs.size();
    for (const CoreTile& ct : tiles) {
      if (l.multi_out()) {
        EmitSliceOutputs(b, ct, (yb + ct.yo), oh);
        continue;
      }
      const MemSpace c = MemSpace::Core(ct.w->row, ct.w->col);
      const int mt = ActMemtile(t, ct.w->col);
      const int64_t slab = MtBase(ct.w->col) + l.mt_out + 2 * ct.w->row * l.mt_out_bytes;
      const int e = static_cast<int>(y.elem);
      Instruction wf;
      wf.op = Opcode::kWriteFm;
      wf.layer = li;
      wf.src = c;
      wf.src_ap = PC(l.core_out, l.out_bytes, ct.mc, oh, ct.ow, e);
      wf.dst = {MemSpace::Memtile(mt)};
      wf.dst_ap = PC(slab, l.mt_out_bytes, ct.mc, oh, ct.ow, e);
      wf.acquire = {PL(c, kOutFull)};
      wf.release = {PL(c, kOutEmpty)};
      // The tile leaves as two channel halves, one on each output DMA
      // channel of the core (and each DDR write channel of the memtile), as
      // input tiles arrive: the first half takes the buffer, the second
      // hands it back (on one channel a layer with a large output, e.g.
      // ResNet-50 layer1's conv3, waits on it while the other channel idles).
      const int64_t oh_c = ct.mc >= 2 ? ct.mc / 2 : ct.mc;
      auto push_wf = [&](const Instruction& f) {
        b.instrs.push_back(ChannelSlice(f, 0, oh_c, true, ct.mc < 2));
        if (ct.mc >= 2) b.instrs.push_back(ChannelSlice(f, oh_c, ct.mc - oh_c, false, true));
      };
      // The tile from memtile `mt` (at `src_ap`) to its place in DDR, in the
      // same two channel halves.
      auto push_write = [&](const AccessPattern& src_ap) {
        Instruction wr;
        wr.op = Opcode::kWrite;
        wr.layer = li;
        wr.src = MemSpace::Memtile(mt);
        wr.src_ap = src_ap;
        wr.dst = {MemSpace::Ddr()};
        wr.dst_ap = TensorAp(out_t, ct.m0, ct.mc, (yb + ct.yo), oh, l.oh_t, ct.xo, ct.ow, false, 0);
        b.instrs.push_back(ChannelSlice(wr, 0, oh_c, true, true));
        if (ct.mc >= 2) b.instrs.push_back(ChannelSlice(wr, oh_c, ct.mc - oh_c, true, true));
      };
      if (l.out_repl) {
        // Into the replicated output's region of every memtile the column
        // reaches; to DDR too (from its own memtile's copy) only when some
        // column reaches none of them.
        wf.dst = ReachMemtiles(ct.w->col);
        wf.dst_ap =
            ToReplica(out_t, TensorAp(out_t, ct.m0, ct.mc, (yb + ct.yo), oh, l.oh_t, ct.xo, ct.ow, false, 0));
        push_wf(wf);
        if (ColumnWritesDdr(ct.w->col)) push_write(wf.dst_ap);
        continue;
      }
      if (l.out_resident) {
        // Into the column's share of the resident output; to DDR too (from
        // that share) only when some consumer reads it from there.
        wf.dst_ap = ResidentAp(out_t, ct.w->col, ct.m0, ct.mc, (yb + ct.yo), oh, l.oh_t, ct.xo, ct.ow);
        push_wf(wf);
        const ActTensor& rt = T(out_t).alias_of >= 0 ? T(T(out_t).alias_of) : T(out_t);
        if (rt.resident_ddr) push_write(wf.dst_ap);
        continue;
      }
      push_wf(wf);
      push_write(wf.dst_ap);
    }
    // A BUILD pair's second conv: its tile to its resident region.
    if (l.post_conv >= 0)
      for (const CoreTile& ct : tiles) EmitPostOutput(b, ct, yb + ct.yo, oh);
    if (l.stay_pieces > 1) SplitStayRows(b, in_lo, in_hi, comp_lo, comp_hi, out_lo);
    p.blocks.push_back(std::move(b));
    return Status::Ok();
  }

  // An input-stationary 1x1 tile in row pieces (Layer::stay_pieces): the
  // core's input, shortcut, scratch and output tiles are laid out piece
  // after piece ([c][rows of the piece][w] each), and every transfer of the
  // tile and every COMP is cut into one per piece, piece-major. Chunk 0's
  // first COMP then waits only for its piece's rows (the 3.6 us input
  // phase of ResNet-50 50% layer2.x.conv1 was all exposed), and a chunk's
  // first rows leave while its later rows compute. Only the first piece
  // takes the lock pairs (and hands the output's full token on); the last
  // frees the input, shortcut and output buffers; the pieces between are
  // ordered by their data, as the channel halves of a tile are.
  void SplitStayRows(Block& b, size_t in_lo, size_t in_hi, size_t comp_lo, size_t comp_hi,
                     size_t out_lo) const {
    const int64_t n = l.stay_pieces, oh = l.share_h(), tsh = l.tile_sh();
    auto rows = [&](int64_t j) { return oh * j / n; };  // first output row of piece j
    auto in_rows = [&](int64_t j) { return (rows(j + 1) - rows(j) - 1) * tsh + 1; };
    auto in_first = [&](int64_t j) {  // the core input tile's first row of piece j
      int64_t r = 0;
      for (int64_t i = 0; i < j; ++i) r += in_rows(i);
      return r;
    };
    // A core pattern of tile [C][H][W] (elem e) at `tile` moved to piece j,
    // whose rows start at row r0 of the piece-major layout.
    auto relayout = [](AccessPattern& ap, int64_t tile, int64_t H, int64_t W, int64_t C,
                       int64_t r0, int64_t hj) {
      const int64_t off = ap.base - tile, plane = H * W * ap.elem;
      ap.base = tile + C * W * ap.elem * r0 + off / plane * hj * W * ap.elem + off % plane;
      ap.stride[2] = hj * W * ap.elem;
      ap.size[1] = hj;
    };
    auto shift = [](AccessPattern& ap, int64_t r0, int64_t hj) {
      ap.start[1] += r0;
      ap.size[1] = hj;
    };
    // The tile at `addr` among `halves` tiles of `bytes` from `base` (PB).
    auto tile_of = [](int64_t addr, int64_t base, int64_t bytes) {
      return addr - (addr - base) % std::max<int64_t>(1, bytes);
    };
    int64_t k0 = 0, k1 = 0;
    PartChannels(l, 0, &k0, &k1);
    // Each core's output channels (its COMP's).
    std::map<MemSpace, int64_t> mc;
    for (size_t i = comp_lo; i < comp_hi; ++i) mc[b.instrs[i].cores.front()] = b.instrs[i].comp.out_c;
    std::vector<Instruction> out(b.instrs.begin(), b.instrs.begin() + static_cast<long>(in_lo));
    // Inputs (chunk 0 only: the tile stays for the others) and a fused
    // Add's shortcut tiles (output rows).
    for (int64_t j = 0; j < n; ++j)
      for (size_t i = in_lo; i < comp_lo; ++i) {
        Instruction in = b.instrs[i];
        const bool in2 = i >= in_hi;
        const int64_t r0 = in2 ? rows(j) : rows(j) * tsh,
                      hj = in2 ? rows(j + 1) - rows(j) : in_rows(j);
        if (in.op == Opcode::kLoadFm) {
          const int64_t H = in.dst_ap.size[1], W = in.dst_ap.stride[1] / in.dst_ap.elem;
          if (in2)
            relayout(in.dst_ap, tile_of(in.dst_ap.base, l.core_in2, l.in2_bytes), H, W,
                     mc.at(in.dst.front()), rows(j), hj);
          else
            relayout(in.dst_ap, l.core_in, H, W, k1 - k0, in_first(j), hj);
        } else {
          shift(in.dst_ap, r0, hj);
        }
        shift(in.src_ap, r0, hj);
        if (j > 0) in.acquire.clear(), in.release.clear();
        out.push_back(std::move(in));
      }
    // COMPs: per core, piece by piece (a fused Add's piece right after its conv's).
    std::map<MemSpace, std::vector<size_t>> by_core;
    std::vector<MemSpace> core_order;
    for (size_t i = comp_lo; i < comp_hi; ++i) {
      const MemSpace c = b.instrs[i].cores.front();
      if (by_core[c].empty()) core_order.push_back(c);
      by_core[c].push_back(i);
    }
    for (const MemSpace& c : core_order)
      for (int64_t j = 0; j < n; ++j)
        for (const size_t i : by_core[c]) {
          const Instruction& src = b.instrs[i];
          const CompParams& q = src.comp;
          Instruction pc = src;
          CompParams& a = pc.comp;
          const int64_t r0 = rows(j), rn = rows(j + 1) - r0;
          auto at_row = [&](BufRef& r, int64_t ch, int64_t w, OutType ty) {
            r.addr += ch * w * OutTypeBytes(ty) * r0;
          };
          if (q.kind == CompKind::kConv) {
            a.in.addr = l.core_in + int64_t{q.in_c} * q.in_w * in_first(j);
            a.in_h = static_cast<int32_t>(in_rows(j));
          } else {  // the fused Add: the conv's scratch tile and the shortcut tile
            at_row(a.in, q.in_c, q.in_w, q.in_type);
            a.in_h = static_cast<int32_t>(rn);
            at_row(a.in2, q.in_c, q.in_w, q.in2_type);
          }
          at_row(a.out, q.out_c, q.out_w, q.out_type);
          a.out_h = static_cast<int32_t>(rn);
          a.macs = q.macs / oh * rn, a.macs_dense = q.macs_dense / oh * rn;
          pc.acquire.clear(), pc.release.clear();
          if (j == 0) pc.acquire = src.acquire;
          for (const LockOp& lk : src.release) {
            const bool out_full = lk.id == kOutFull || lk.id == kOutFull + 1;
            if (out_full ? j == 0 : j + 1 == n) pc.release.push_back(lk);
          }
          out.push_back(std::move(pc));
        }
    out.insert(out.end(), b.instrs.begin() + static_cast<long>(comp_hi),
               b.instrs.begin() + static_cast<long>(out_lo));
    // Outputs: the first piece takes the output's full token, the last
    // piece hands the empty one back.
    for (int64_t j = 0; j < n; ++j)
      for (size_t i = out_lo; i < b.instrs.size(); ++i) {
        Instruction in = b.instrs[i];
        const int64_t r0 = rows(j), rn = rows(j + 1) - r0;
        if (in.op == Opcode::kWriteFm)
          relayout(in.src_ap, tile_of(in.src_ap.base, l.core_out, l.out_bytes), oh,
                   in.src_ap.stride[1] / in.src_ap.elem, mc.at(in.src), r0, rn);
        else
          shift(in.src_ap, r0, rn);
        shift(in.dst_ap, r0, rn);
        if (j > 0) in.acquire.clear();
        if (j + 1 < n) in.release.clear();
        out.push_back(std::move(in));
      }
    b.instrs = std::move(out);
  }

  // Fused siblings (Layer::out_slices): the core tile's channels go piece
  // by piece to the tensor of the slice they belong to, each piece where
  // that tensor lives (its resident or replicated region, or the output
  // slab and DDR) and in two channel halves as a whole tile goes; the first
  // WRITEFM takes the core's output buffer, the last hands it back.
  void EmitSliceOutputs(Block& b, const CoreTile& ct, int64_t y0, int64_t oh) {
    const int col = ct.w->col;
    const MemSpace c = MemSpace::Core(ct.w->row, col);
    const int mt = ActMemtile(t, col);
    const int64_t slab = MtBase(col) + l.mt_out + 2 * ct.w->row * l.mt_out_bytes;
    const size_t first = b.instrs.size();
    size_t last_wf = first;
    for (const Layer::OutSlice& o : l.out_slices) {
      const int64_t a = std::max(ct.m0, o.m0), e = std::min(ct.m0 + ct.mc, o.m1);
      if (a >= e) continue;
      const int tt = o.tensor;
      const int64_t off = a - ct.m0, c0 = a - o.m0, n = e - a;
      const ActTensor& yt = T(tt);
      const ActTensor& rt = yt.alias_of >= 0 ? T(yt.alias_of) : yt;
      Instruction wf;
      wf.op = Opcode::kWriteFm;
      wf.layer = li;
      wf.src = c;
      wf.src_ap = PC(l.core_out, l.out_bytes, ct.mc, oh, ct.ow);
      wf.src_ap.base += off * wf.src_ap.stride[2];
      wf.src_ap.size[2] = n;
      const AccessPattern ddr = TensorAp(tt, c0, n, y0, oh, l.oh_t, ct.xo, ct.ow, false, 0);
      bool write = true;
      if (yt.replicated) {
        wf.dst = ReachMemtiles(col);
        wf.dst_ap = ToReplica(tt, ddr);
        write = ColumnWritesDdr(col);
      } else if (rt.resident) {
        wf.dst = {MemSpace::Memtile(mt)};
        wf.dst_ap = ResidentAp(tt, col, c0, n, y0, oh, l.oh_t, ct.xo, ct.ow);
        write = rt.resident_ddr;
      } else {
        wf.dst = {MemSpace::Memtile(mt)};
        wf.dst_ap = PC(slab, l.mt_out_bytes, ct.mc, oh, ct.ow);
        wf.dst_ap.base += off * wf.dst_ap.stride[2];
        wf.dst_ap.size[2] = n;
      }
      const int64_t h = n >= 2 ? n / 2 : n;
      b.instrs.push_back(ChannelSlice(wf, 0, h, false, false));
      if (n >= 2) b.instrs.push_back(ChannelSlice(wf, h, n - h, false, false));
      last_wf = b.instrs.size() - 1;
      if (!write) continue;
      Instruction wr;
      wr.op = Opcode::kWrite;
      wr.layer = li;
      wr.src = MemSpace::Memtile(mt);
      wr.src_ap = wf.dst_ap;
      wr.dst = {MemSpace::Ddr()};
      wr.dst_ap = ddr;
      b.instrs.push_back(ChannelSlice(wr, 0, h, true, true));
      if (n >= 2) b.instrs.push_back(ChannelSlice(wr, h, n - h, true, true));
    }
    if (b.instrs.size() == first) return;
    b.instrs[first].acquire = {PL(c, kOutFull)};
    b.instrs[last_wf].release = {PL(c, kOutEmpty)};
  }

  // ---- A BUILD pair's second conv (Layer::post_conv, postconv.cc) ----
  // Its layer, and its blob for core tile ct (its cores are the first's:
  // the same wide split of the same output plane).
  Layer& Post() const { return s.layers[static_cast<size_t>(l.post_conv)]; }
  size_t PostBlob(const CoreTile& ct) const { return CoreIndex(ct.w); }

  // Its blob, once before the first conv's rows: one LOADW per serving
  // memtile and row parity (as a wide layer's, in two byte halves) into
  // the first conv's slab for it (Layer::mt_post_w), broadcast to the
  // cores of that parity.
  Status EmitPostWeights(const std::vector<CoreTile>& tiles) {
    Layer& q = Post();
    // (The second conv reads every channel of the first's output tile: one chunk, no CIN parts.)
    if (q.cores.size() != l.cores.size() || q.chunks != 1 || q.parts != 1 || q.blobs.size() != l.cores.size() ||
        l.chunks != 1 || l.parts != 1)
      return Internal("{}: its BUILD pair {} is not tiled alike", l.name, q.name);
    for (size_t i = 0; i < q.cores.size(); ++i)
      if (q.cores[i].row != l.cores[i].row || q.cores[i].col != l.cores[i].col ||
          q.cores[i].x0 != l.cores[i].x0 || q.cores[i].x1 != l.cores[i].x1)
        return Internal("{}: its BUILD pair {} is not tiled alike", l.name, q.name);
    Block own;
    own.label = fmt::format("{}.w", q.name);
    const DdrSymbol& ws = p.symbols[static_cast<size_t>(q.blob_symbol)];
    std::map<std::tuple<int, int64_t, int>, std::vector<MemSpace>> groups;
    std::map<std::tuple<int, int64_t, int>, int64_t> sizes;
    for (const CoreTile& ct : tiles) {
      const size_t bi = PostBlob(ct);
      const int mt = (ct.w->row % 2 == 0 ? servers : servers_r)[static_cast<size_t>(ct.w->col)];
      const auto key = std::make_tuple(ct.w->row % 2, q.blob_offset[bi], mt);
      groups[key].push_back(MemSpace::Core(ct.w->row, ct.w->col));
      sizes[key] = static_cast<int64_t>(q.blobs[bi].size());
      if (sizes[key] > l.post_w_bytes || sizes[key] > q.w_bytes)
        return Internal("{}: blob {} > {}", q.name, sizes[key], l.post_w_bytes);
    }
    const int pli = l.post_conv;
    for (const auto& [key, cores] : groups) {
      const auto [parity, off, mt] = key;
      const int64_t bytes = sizes[key];
      const int64_t slab = l.mt_post_w + parity * l.post_w_bytes;
      EmitBlobHalves(own.instrs, pli, bytes, ws.addr + off, mt, slab, cores, q.core_w, true, true);
    }
    p.blocks.push_back(std::move(own));
    return Status::Ok();
  }

  // Its COMP on core tile ct: the block output the Add COMP just wrote to
  // the first conv's output buffer (tensor `x`, oh rows) is its input.
  Instruction PostComp(const CoreTile& ct, int x, int64_t oh) const {
    const Layer& q = Post();
    const MemSpace c = MemSpace::Core(ct.w->row, ct.w->col);
    Instruction cp;
    cp.op = Opcode::kComp;
    cp.layer = l.post_conv;
    cp.cores = {c};
    CompParams& a = cp.comp;
    a.kind = CompKind::kConv;
    a.in_c = static_cast<int32_t>(q.c);
    a.in_h = a.out_h = static_cast<int32_t>(oh);
    a.in_w = a.out_w = static_cast<int32_t>(ct.ow);
    a.out_c = static_cast<int32_t>(q.m);
    a.in = PB(l.core_out, l.out_bytes);
    a.in_type = T(x).type, a.in_zero = T(x).zero_point;
    a.weights = {q.core_w, 0};
    const size_t bi = PostBlob(ct);
    a.weights_bytes = static_cast<int64_t>(q.blobs[bi].size());
    a.out = PB(q.core_out, q.out_bytes);
    a.out_type = T(q.output).type, a.out_zero = q.out_zero, a.lo = q.lo, a.hi = q.hi;
    const int64_t pixels = oh * ct.ow;
    a.macs = BlobMacs(q, bi) * pixels;
    a.macs_dense = q.m * q.c * pixels;
    cp.acquire = {PL(c, kPostOutEmpty)};
    cp.release = {PL(c, kPostOutFull)};
    return cp;
  }

  // Its output tile from its buffer to its resident region, in two channel halves.
  void EmitPostOutput(Block& b, const CoreTile& ct, int64_t y0, int64_t oh) const {
    const Layer& q = Post();
    const MemSpace c = MemSpace::Core(ct.w->row, ct.w->col);
    Instruction wf;
    wf.op = Opcode::kWriteFm;
    wf.layer = l.post_conv;
    wf.src = c;
    wf.src_ap = PC(q.core_out, q.out_bytes, q.m, oh, ct.ow);
    wf.dst = {MemSpace::Memtile(ActMemtile(t, ct.w->col))};
    wf.dst_ap = ResidentAp(q.output, ct.w->col, 0, q.m, y0, oh, l.oh_t, ct.xo, ct.ow);
    wf.acquire = {PL(c, kPostOutFull)};
    wf.release = {PL(c, kPostOutEmpty)};
    const int64_t h = q.m >= 2 ? q.m / 2 : q.m;
    b.instrs.push_back(ChannelSlice(wf, 0, h, true, q.m < 2));
    if (q.m >= 2) b.instrs.push_back(ChannelSlice(wf, h, q.m - h, false, true));
  }

};

}  // namespace

Status RunCodegen(CompileState& s) {
  Program& p = s.program;
  p.blocks.clear();
  p.layers.clear();
  p.locks.clear();
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const Layer& l = s.layers[i];
    p.layers.push_back({l.name, l.op, l.macs_dense, l.macs});
  }
  // Every core's "empty" locks start at 1 (both halves); those of the third
  // and fourth input buffers only where a layer has them.
  bool more_in = false;
  for (const Layer& l : s.layers) more_in = more_in || l.in_bufs > 2 || l.post_conv >= 0;
  for (int r = 0; r < s.target.rows; ++r)
    for (int c = 0; c < s.target.cols; ++c)
      for (int id : {kInEmpty, kIn2Empty, kOutEmpty, kInEmpty3})
        if (id != kInEmpty3 || more_in)
          for (int h = 0; h < 2; ++h) p.locks.push_back({MemSpace::Core(r, c), id + h, 1});
  static_assert(kCoreLocks <= 16);
  for (size_t i = 0; i < s.layers.size(); ++i) {
    Gen g{s, s.target, p, s.layers[i], static_cast<int>(i), {}, {}, 0, 0, 0, {}, -1, -1, {}};
    WBS_RETURN_IF_ERROR(g.Emit());
  }
  return Status::Ok();
}

std::string DumpCodegen(const CompileState& s) {
  std::string r = fmt::format("# codegen: {} blocks, {} instructions\n", s.program.blocks.size(),
                              s.program.instruction_count());
  r += s.program.ToText(/*with_data=*/false);
  return r;
}

}  // namespace wbs::aie

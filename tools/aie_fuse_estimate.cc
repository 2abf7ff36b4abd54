// h_aie25: a time-model-only estimate of fusing ResNet-50 layer1 layers in
// core memory (docs/AIE_COMPILER.md "Not done yet / next", h_aie25). Not part
// of the build and not a compiler pass: it loads a compiled program, replaces
// the blocks of the named layers with synthetic per-core blocks (real
// transfers, COMP durations from aie::CompCycles, core and memtile addresses
// that fit, ordering by data hazards instead of locks), and re-runs
// aie::Timeline, the schedule the compiler and the simulator time with.
// Nothing is executed: the numbers are what the fused program would be
// estimated at if built as described, not a measured program.
//
// Two forms, both for the paper-4x4 layout of ResNet-50 layer1 (56 x 56
// planes in per-column resident regions of 14-wide column shares, 784 bytes
// per channel; the region addresses are those of the h_aie25 base compile):
//   layer1.1 layer1.2         the whole bottleneck block on a 14x14 tile per
//                             core (conv1 on the 16x16 halo tile, conv2 from a
//                             3-row ring in scratch, conv3 + Add per 128-channel
//                             half); options split_in=, split_out=, nocopy (no
//                             residual copy: does not fit), nowm (weights
//                             already in the cores: a bound)
//   pair:X:Y[:in:out:cout]    conv X with its block's fused Add and the next
//                             block's 1x1 conv1 Y in one tile: each core px=
//                             pixels (4, 7, 14) of its 14 rows of the column
//                             share per iteration; X's input and shortcut in,
//                             the Add's output out (as now) and Y's COMP on
//                             that same core buffer, Y's output out to its
//                             region (in, out: X's input and Y's output
//                             regions, cout: Y's channels); dens=1 for the
//                             dense program; wide_cols: the cores of a column
//                             take 224 / 224 / 168 / 168 pixels (the wide
//                             split's 4, 4, 3, 3 columns of the share)
//
// Build (after the wbs target, from the worktree root):
//   g++ -O2 -std=c++20 -DFMT_SHARED -I. tools/aie_fuse_estimate.cc -o /tmp/aie_fuse_estimate
//       build/<dir>/libwbs_aie.a build/<dir>/libwbs_core.a -lfmt
// Run (the h_aie25 numbers):
//   wbs compile --zoo resnet50 --sparsity 0.5 --target configs/aie/paper-4x4.json -o /tmp/r50_50
//   /tmp/aie_fuse_estimate /tmp/r50_50/program.bin configs/aie/paper-4x4.json px=7
//       pair:layer1.0.downsample.0:layer1.1.conv1:273408:273408:64
//       pair:layer1.1.conv3:layer1.2.conv1 pair:layer1.2.conv3:layer2.0.conv1:223232:223232:128
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "aie/program.h"
#include "aie/target.h"
#include "aie/timeline.h"

using namespace wbs::aie;

static Program Load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto r = Program::FromBinary(bytes, path);
  if (!r.ok()) { std::fprintf(stderr, "load failed\n"); std::exit(1); }
  return std::move(r).value();
}

struct Opt {
  int in_reg = 323584, out_reg = 122880;  // memtile regions (per column share)
  int w_slab = 0;                          // memtile weight slab
  double density = 0.5;
  int split_in = 2;    // conv1 CIN parts (input row chunks)
  int split_out = 2;   // conv3 output chunks
  bool copy_res = true;
  int cout_mid = 64, cin = 256, cout = 256;
  int H = 56, W = 56, R = 4, C = 4;
  int pieces = 2;      // LOADWM pieces per blob
  bool nowm = false, nohalo = false;
};

static AccessPattern AP(int64_t base, std::array<int64_t, 4> size, std::array<int64_t, 4> stride,
                        std::array<int64_t, 4> start = {0, 0, 0, 0},
                        std::array<int64_t, 4> step = {0, 0, 0, 0},
                        std::array<int64_t, 4> bound = {0, 0, 0, 0}) {
  AccessPattern a;
  a.base = base;
  a.size = size;
  a.stride = stride;
  a.start = start;
  a.step = step;
  a.bound = bound;
  return a;
}

// Builds the fused block's program blocks. layer: program layer index to tag.
static std::vector<Block> Fused(const Opt& o, int layer, int64_t ddr_w) {
  const int th = o.H / o.R, tw = o.W / o.C;  // output tile 14x14
  const int iw = o.nohalo ? tw : tw + 2;                      // input row width with halo
  const int share = o.W / o.C;                // memtile share width
  const int64_t plane = int64_t{o.H} * share;
  const double d = o.density;
  // Blob sizes (exact formula, 8x8 blocks, 50%).
  auto blob = [&](int cout, int cin, int taps, bool bias, bool rq) {
    const int64_t br = cout / 8, nnz = static_cast<int64_t>(br * (cin / 8) * d + 0.5);
    return 36 + 4 * (br + 1) + 4 * nnz + (bias ? 32 * br : 0) + (rq ? 64 * br : 0) + nnz * 64 * taps;
  };
  std::vector<int64_t> w1, w3;
  for (int p = 0; p < o.split_in; ++p)
    w1.push_back(blob(o.cout_mid, o.cin / o.split_in, 1, p == 0, p == o.split_in - 1));
  const int64_t w2 = blob(o.cout_mid, o.cout_mid, 9, true, true);
  for (int p = 0; p < o.split_out; ++p) w3.push_back(blob(o.cout / o.split_out, o.cout_mid, 1, true, true));
  std::vector<int64_t> blobs = w1;
  blobs.push_back(w2);
  for (auto b : w3) blobs.push_back(b);
  int64_t wtot = 0;
  std::vector<int64_t> waddr;
  for (auto b : blobs) { waddr.push_back(wtot); wtot += (b + 63) / 64 * 64; }
  const int cpart = o.cin / o.split_in, opart = o.cout / o.split_out;
  const int64_t inb = wtot, in_part = int64_t{cpart} * iw;
  const int64_t outb = inb + 2 * in_part;  // parts alternate two buffers
  const int64_t out_part = int64_t{opart} * tw;
  const int64_t buf_end = outb + 2 * out_part;
  std::fprintf(stderr, "layer %d: blobs %lld B (", layer, (long long)wtot);
  for (auto b : blobs) std::fprintf(stderr, " %lld", (long long)b);
  std::fprintf(stderr, " ), core buffers end %lld of 49152\n", (long long)buf_end);
  const int64_t scratch = 49152;
  const int64_t acc = scratch, ring = acc + int64_t{o.cout_mid} * iw * 4, c2 = ring + 3 * o.cout_mid * iw,
                res = c2 + o.cout_mid * tw, c3 = acc;  // c3 reuses acc
  std::vector<Block> out;
  // Weights: DDR -> every memtile -> its column's cores.
  Block wb;
  wb.label = "fused.w";
  for (int c = 0; c < o.C; ++c) {
    for (size_t b = 0; b < blobs.size(); ++b) {
      Instruction in;
      in.op = Opcode::kLoadW;
      in.layer = layer;
      in.src = MemSpace::Ddr();
      in.src_ap = AP(ddr_w + waddr[b], {blobs[b], 1, 1, 1}, {1, 0, 0, 0});
      in.dst = {MemSpace::Memtile(c)};
      in.dst_ap = AP(o.w_slab + waddr[b], {blobs[b], 1, 1, 1}, {1, 0, 0, 0});
      wb.instrs.push_back(in);
    }
    for (size_t b = 0; b < (o.nowm ? 0 : blobs.size()); ++b) {
      const int64_t piece = (blobs[b] + o.pieces - 1) / o.pieces;
      for (int k = 0; k < o.pieces; ++k) {
        const int64_t lo = k * piece, n = std::min(piece, blobs[b] - lo);
        Instruction in;
        in.op = Opcode::kLoadWm;
        in.layer = layer;
        in.src = MemSpace::Memtile(c);
        in.src_ap = AP(o.w_slab + waddr[b] + lo, {n, 1, 1, 1}, {1, 0, 0, 0});
        for (int r = 0; r < o.R; ++r) in.dst.push_back(MemSpace::Core(r, c));
        in.dst_ap = AP(waddr[b] + lo, {n, 1, 1, 1}, {1, 0, 0, 0});
        wb.instrs.push_back(in);
      }
    }
  }
  out.push_back(wb);
  // Row blocks: prologue (tile rows 0, 1: conv1 only) and main (14 rows).
  for (int phase = 0; phase < 2; ++phase) {
    Block b;
    b.label = phase == 0 ? "fused.pro" : "fused.rows";
    b.iterations = phase == 0 ? 2 : th;
    for (int r = 0; r < o.R; ++r)
      for (int c = 0; c < o.C; ++c) {
        const MemSpace core = MemSpace::Core(r, c);
        const int y0 = r * th - 1 + (phase == 0 ? 0 : 2);  // image row of the input row loaded
        // Input row, per CIN part: center from own memtile, halo columns from neighbours.
        for (int p = 0; p < o.split_in; ++p) {
          const int64_t dst = inb + (p & 1) * in_part;
          auto piece = [&](int mt, int64_t xsrc, int n, int64_t xdst) {
            Instruction in;
            in.op = Opcode::kLoadFm;
            in.layer = layer;
            in.src = MemSpace::Memtile(mt);
            in.src_ap = AP(o.in_reg + int64_t{p} * cpart * plane + xsrc, {n, cpart, 1, 1},
                           {1, plane, share, 0}, {0, 0, y0, 0}, {0, 0, 1, 0}, {0, 0, o.H, 0});
            in.src_ap.pad_value = 0;
            in.dst = {core};
            in.dst_ap = AP(dst + xdst, {n, cpart, 1, 1}, {1, iw, 0, 0});
            b.instrs.push_back(in);
          };
          piece(c, 0, tw, 1);
          if (c > 0) piece(c - 1, share - 1, 1, 0);
          if (c + 1 < o.C) piece(c + 1, 0, 1, iw - 1);
          Instruction k;
          k.op = Opcode::kComp;
          k.layer = layer;
          k.cores = {core};
          CompParams& q = k.comp;
          q.kind = CompKind::kConv;
          q.in_c = cpart, q.in_h = 1, q.in_w = iw;
          q.out_c = o.cout_mid, q.out_h = 1, q.out_w = iw;
          q.in = {dst, 0};
          q.weights = {waddr[static_cast<size_t>(p)], 0};
          q.weights_bytes = w1[static_cast<size_t>(p)];
          q.accumulate = p > 0;
          q.out_type = p == o.split_in - 1 ? OutType::kU8 : OutType::kS32;
          q.out = p == o.split_in - 1 ? BufRef{ring, o.cout_mid * iw} : BufRef{acc, 0};
          if (p == o.split_in - 1 && p > 0) q.in2 = {acc, 0};
          q.macs_dense = int64_t{iw} * cpart * o.cout_mid;
          q.macs = static_cast<int64_t>(q.macs_dense * d);
          b.instrs.push_back(k);
          if (o.copy_res) {  // the row's center into the residual ring (identity rescale)
            Instruction cp;
            cp.op = Opcode::kComp;
            cp.layer = layer;
            cp.cores = {core};
            CompParams& e = cp.comp;
            e.kind = CompKind::kRescale;
            e.in_c = cpart, e.in_h = 1, e.in_w = iw;
            e.out_c = cpart, e.out_h = 1, e.out_w = tw;
            e.in = {dst, 0};
            e.out = {res + int64_t{p} * cpart * tw, int64_t{o.cin} * tw};
            b.instrs.push_back(cp);
          }
        }
        if (phase == 0) continue;
        // conv2 on the ring's three rows.
        {
          Instruction k;
          k.op = Opcode::kComp;
          k.layer = layer;
          k.cores = {core};
          CompParams& q = k.comp;
          q.kind = CompKind::kConv;
          q.in_c = o.cout_mid, q.in_h = 3, q.in_w = iw, q.kh = 3, q.kw = 3;
          q.out_c = o.cout_mid, q.out_h = 1, q.out_w = tw;
          q.in = {ring, 0};
          q.weights = {waddr[w1.size()], 0};
          q.weights_bytes = w2;
          q.out = {c2, 0};
          q.macs_dense = int64_t{tw} * o.cout_mid * o.cout_mid * 9;
          q.macs = static_cast<int64_t>(q.macs_dense * d);
          b.instrs.push_back(k);
        }
        for (int p = 0; p < o.split_out; ++p) {
          Instruction k;
          k.op = Opcode::kComp;
          k.layer = layer;
          k.cores = {core};
          CompParams& q = k.comp;
          q.kind = CompKind::kConv;
          q.in_c = o.cout_mid, q.in_h = 1, q.in_w = tw;
          q.out_c = opart, q.out_h = 1, q.out_w = tw;
          q.in = {c2, 0};
          q.weights = {waddr[w1.size() + 1 + static_cast<size_t>(p)], 0};
          q.weights_bytes = w3[static_cast<size_t>(p)];
          q.out = {c3, 0};
          q.macs_dense = int64_t{tw} * o.cout_mid * opart;
          q.macs = static_cast<int64_t>(q.macs_dense * d);
          b.instrs.push_back(k);
          Instruction a;
          a.op = Opcode::kComp;
          a.layer = layer;
          a.cores = {core};
          CompParams& e = a.comp;
          e.kind = CompKind::kAdd;
          e.in_c = opart, e.in_h = 1, e.in_w = tw;
          e.out_c = opart, e.out_h = 1, e.out_w = tw;
          e.in = {c3, 0};
          e.in2 = {res + int64_t{p} * opart * tw, int64_t{o.cin} * tw};
          const int64_t ob = outb + (p & 1) * out_part;
          e.out = {ob, 0};
          b.instrs.push_back(a);
          Instruction w;
          w.op = Opcode::kWriteFm;
          w.layer = layer;
          w.src = core;
          w.src_ap = AP(ob, {tw, opart, 1, 1}, {1, tw, 0, 0});
          w.dst = {MemSpace::Memtile(c)};
          w.dst_ap = AP(o.out_reg + int64_t{p} * opart * plane, {tw, opart, 1, 1}, {1, plane, share, 0},
                        {0, 0, r * th, 0}, {0, 0, 1, 0});
          b.instrs.push_back(w);
        }
      }
    out.push_back(b);
  }
  return out;
}


// Pair fusion: conv3 (+ fused add) of one block and conv1 of the next, per core
// rows of its column share, `px` pixels per iteration (1x1 convs: no halo).
struct PairOpt {
  int in64 = 223232, res = 323584, c1 = 273408;
  double density = 0.5;
  int px = 14;
  bool nowm = false;
  int mid = 64, c1out = 64;
  // The wide split's pixels: the 4 cores of a column take 4, 4, 3, 3 of the
  // share's 14 columns (224 / 168 pixels) instead of 196 each.
  bool wide_cols = false;
};
static std::vector<Block> Pair(const PairOpt& o, int layer, int64_t ddr_w) {
  const int R = 4, C = 4, H = 56, share = 14, mid = o.mid, wide = 256, c1o = o.c1out;
  const int64_t plane = int64_t{H} * share;
  const double d = o.density;
  auto blob = [&](int cout, int cin) {
    const int64_t br = cout / 8, nnz = static_cast<int64_t>(br * (cin / 8) * d + 0.5);
    return 36 + 4 * (br + 1) + 4 * nnz + 32 * br + 64 * br + nnz * 64;
  };
  const int64_t w3 = blob(wide, mid), w1 = blob(c1o, wide);
  const int64_t a3 = 0, a1 = (w3 + 63) / 64 * 64, wend = a1 + (w1 + 63) / 64 * 64;
  const int pxm = o.px + (o.wide_cols ? 1 : 0);  // the largest per-iteration tile
  const int64_t inb = wend, resb = inb + 2 * mid * pxm, outb = resb + 2 * wide * pxm,
                c1b = outb + 2 * wide * pxm, end = c1b + 2 * c1o * pxm;
  std::fprintf(stderr, "pair layer %d: blobs %lld + %lld, buffers end %lld of 49152\n", layer,
               (long long)w3, (long long)w1, (long long)end);
  const int64_t s3 = 49152;
  std::vector<Block> out;
  Block wb;
  wb.label = "pair.w";
  const int64_t blobs[2] = {w3, w1}, wa[2] = {a3, a1};
  for (int c = 0; c < C; ++c)
    for (int b = 0; b < 2; ++b) {
      Instruction in;
      in.op = Opcode::kLoadW;
      in.layer = layer;
      in.src = MemSpace::Ddr();
      in.src_ap = AP(ddr_w + wa[b], {blobs[b], 1, 1, 1}, {1, 0, 0, 0});
      in.dst = {MemSpace::Memtile(c)};
      in.dst_ap = AP(wa[b], {blobs[b], 1, 1, 1}, {1, 0, 0, 0});
      wb.instrs.push_back(in);
      if (o.nowm) continue;
      for (int k = 0; k < 2; ++k) {
        const int64_t piece = (blobs[b] + 1) / 2, lo = k * piece, n = std::min(piece, blobs[b] - lo);
        Instruction m;
        m.op = Opcode::kLoadWm;
        m.layer = layer;
        m.src = MemSpace::Memtile(c);
        m.src_ap = AP(wa[b] + lo, {n, 1, 1, 1}, {1, 0, 0, 0});
        for (int r = 0; r < R; ++r) m.dst.push_back(MemSpace::Core(r, c));
        m.dst_ap = AP(wa[b] + lo, {n, 1, 1, 1}, {1, 0, 0, 0});
        wb.instrs.push_back(m);
      }
    }
  out.push_back(wb);
  Block b;
  b.label = "pair.rows";
  b.iterations = H / R * share / o.px;  // px pixels of the core's 14 rows x 14 columns
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      const MemSpace core = MemSpace::Core(r, c);
      // With wide_cols, px +- 1 per iteration (8 / 6 for px=7: 224 / 168 pixels).
      const int px = o.wide_cols ? (r < 2 ? o.px + 1 : o.px - 1) : o.px;
      const int64_t pix0 =
          o.wide_cols ? (r < 2 ? r * (o.px + 1) : 2 * (o.px + 1) + (r - 2) * (o.px - 1)) * b.iterations
                      : int64_t{r} * (H / R) * share;  // first pixel of the core's rows
      auto load = [&](int64_t reg, int ch, int64_t dst) {
        Instruction in;
        in.op = Opcode::kLoadFm;
        in.layer = layer;
        in.src = MemSpace::Memtile(c);
        in.src_ap = AP(reg + pix0, {px, ch, 1, 1}, {1, plane, 0, 0}, {0, 0, 0, 0}, {px, 0, 0, 0});
        in.dst = {core};
        in.dst_ap = AP(dst, {px, ch, 1, 1}, {1, px, 0, 0});
        in.dst_ap.pong = int64_t{ch} * px;
        b.instrs.push_back(in);
      };
      auto write = [&](int64_t src, int ch, int64_t reg) {
        Instruction in;
        in.op = Opcode::kWriteFm;
        in.layer = layer;
        in.src = core;
        in.src_ap = AP(src, {px, ch, 1, 1}, {1, px, 0, 0});
        in.src_ap.pong = int64_t{ch} * px;
        in.dst = {MemSpace::Memtile(c)};
        in.dst_ap = AP(reg + pix0, {px, ch, 1, 1}, {1, plane, 0, 0}, {0, 0, 0, 0}, {px, 0, 0, 0});
        b.instrs.push_back(in);
      };
      auto conv = [&](int64_t in, int cin, int64_t w, int64_t wb, int cout, BufRef outr) {
        Instruction k;
        k.op = Opcode::kComp;
        k.layer = layer;
        k.cores = {core};
        CompParams& q = k.comp;
        q.kind = CompKind::kConv;
        q.in_c = cin, q.in_h = 1, q.in_w = px;
        q.out_c = cout, q.out_h = 1, q.out_w = px;
        q.in = {in, int64_t{cin} * px};
        q.weights = {w, 0};
        q.weights_bytes = wb;
        q.out = outr;
        q.macs_dense = int64_t{px} * cin * cout;
        q.macs = static_cast<int64_t>(q.macs_dense * d);
        b.instrs.push_back(k);
      };
      load(o.in64, mid, inb);
      load(o.res, wide, resb);
      conv(inb, mid, a3, w3, wide, BufRef{s3, 0});
      Instruction a;
      a.op = Opcode::kComp;
      a.layer = layer;
      a.cores = {core};
      a.comp.kind = CompKind::kAdd;
      a.comp.in_c = wide, a.comp.in_h = 1, a.comp.in_w = px;
      a.comp.out_c = wide, a.comp.out_h = 1, a.comp.out_w = px;
      a.comp.in = {s3, 0};
      a.comp.in2 = {resb, int64_t{wide} * px};
      a.comp.out = {outb, int64_t{wide} * px};
      b.instrs.push_back(a);
      write(outb, wide, o.res);
      conv(outb, wide, a1, w1, c1o, BufRef{c1b, int64_t{c1o} * px});
      write(c1b, c1o, o.c1);
    }
  out.push_back(b);
  return out;
}

// "a:b:c" -> {a, b, c}
static std::vector<std::string> Fields(const std::string& s) {
  std::vector<std::string> f(1);
  for (const char ch : s) {
    if (ch == ':') f.emplace_back();
    else f.back() += ch;
  }
  return f;
}

int main(int argc, char** argv) {
  // Any DDR range for the synthetic LOADWs (reads only: no hazard with anything).
  constexpr int64_t kDdrW = 3238464;
  if (argc < 3) { std::fprintf(stderr, "usage: fuse_hack program.bin target.json [block_prefix...] [--opt k=v]\n"); return 1; }
  Program p = Load(argv[1]);
  auto tr = Target::Load(argv[2]);
  if (!tr.ok()) return 1;
  const Target& t = tr.value();
  std::vector<std::string> fuse, pairs;
  Opt o;
  PairOpt po;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("split_in=", 0) == 0) o.split_in = std::stoi(a.substr(9));
    else if (a.rfind("split_out=", 0) == 0) o.split_out = std::stoi(a.substr(10));
    else if (a.rfind("w_slab=", 0) == 0) o.w_slab = std::stoi(a.substr(7));
    else if (a.rfind("pieces=", 0) == 0) o.pieces = std::stoi(a.substr(7));
    else if (a == "nocopy") o.copy_res = false;
    else if (a == "nowm") o.nowm = true;
    else if (a == "nohalo") o.nohalo = true;
    else if (a.rfind("pair:", 0) == 0) pairs.push_back(a.substr(5));
    else if (a.rfind("px=", 0) == 0) po.px = std::stoi(a.substr(3));
    else if (a.rfind("dens=", 0) == 0) po.density = std::stod(a.substr(5));
    else if (a == "pnowm") po.nowm = true;
    else if (a == "wide_cols") po.wide_cols = true;
    else fuse.push_back(a);
  }
  // Layers of each fused block.
  std::map<int, int> layer_group;  // program layer -> fused block index
  for (size_t b = 0; b < fuse.size(); ++b)
    for (size_t l = 0; l < p.layers.size(); ++l)
      if (p.layers[l].name.rfind(fuse[b] + ".conv", 0) == 0 || p.layers[l].name == fuse[b] + ".add")
        layer_group[static_cast<int>(l)] = static_cast<int>(b);
  std::map<int, int> pair_of;  // program layer -> pair index
  for (size_t b = 0; b < pairs.size(); ++b) {
    const std::vector<std::string> f = Fields(pairs[b]);
    const std::string x = f[0], y = f[1];
    const std::string blk = x.substr(0, x.find('.', x.find('.') + 1));
    for (size_t l = 0; l < p.layers.size(); ++l)
      if (p.layers[l].name == x || p.layers[l].name == y || p.layers[l].name == blk + ".add")
        pair_of[static_cast<int>(l)] = static_cast<int>(b);
  }
  std::vector<Block> blocks;
  std::set<int> done, pdone;
  bool flip = false;
  for (const Block& b : p.blocks) {
    int l = -1;
    for (const auto& in : b.instrs) if (in.layer >= 0) { l = in.layer; break; }
    auto pg = pair_of.find(l);
    if (pg != pair_of.end()) {
      if (pdone.insert(pg->second).second)
      {
        PairOpt q = po;
        const std::vector<std::string> f = Fields(pairs[static_cast<size_t>(pg->second)]);
        if (f.size() >= 5) q.in64 = std::stoi(f[2]), q.c1 = std::stoi(f[3]), q.c1out = std::stoi(f[4]);
        for (auto& nb : Pair(q, l, kDdrW)) blocks.push_back(nb);
      }
      continue;
    }
    auto g = layer_group.find(l);
    if (g == layer_group.end()) { blocks.push_back(b); continue; }
    if (done.count(g->second)) continue;
    done.insert(g->second);
    Opt oo = o;
    if (flip) std::swap(oo.in_reg, oo.out_reg);  // chain: 1.1 writes B, 1.2 reads B writes A
    flip = !flip;
    for (auto& nb : Fused(oo, l, kDdrW)) blocks.push_back(nb);
  }
  p.blocks = blocks;
  Timeline tl(t, 1.0, p);
  std::vector<double> end(p.layers.size(), 0);
  std::vector<int> ids;
  double frontier = 0;
  int cur = -2;
  std::map<int, double> tim;
  for (const Block& b : p.blocks) {
    int l = -1;
    for (const auto& in : b.instrs) if (in.layer >= 0) { l = in.layer; break; }
    if (l != cur) {
      if (cur >= 0) { tim[cur] += std::max(0.0, end[cur] - frontier); frontier = std::max(frontier, end[cur]); }
      cur = l;
    }
    for (int64_t it = 0; it < b.iterations; ++it)
      for (const auto& in : b.instrs) {
        double s = 0, e = 0;
        tl.Schedule(in, it, &s, &e, &ids);
        if (l >= 0) end[l] = std::max(end[l], e);
      }
  }
  if (cur >= 0) { tim[cur] += std::max(0.0, end[cur] - frontier); }
  std::printf("total %.4f ms\n", tl.horizon() / t.clock_ghz / 1e6);
  for (auto& [l, v] : tim)
    if (l < 32) std::printf("%-28s %8.3f us\n", p.layers[l].name.c_str(), v / t.clock_ghz / 1e3);
  return 0;
}

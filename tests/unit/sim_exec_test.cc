// The AIE2 simulator on hand-written programs: a single-core conv, a 2x2
// split with broadcasts, a ping/pong row stream with locks; outputs checked
// against the scalar integer reference (kernels/ref/int8.h); timing of
// simple transfers against bytes / bandwidth.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "aie/program.h"
#include "aie/target.h"
#include "aie/timeline.h"
#include "kernels/ref/int8.h"
#include "sim/simulator.h"

namespace wbs::sim {
namespace {

using aie::AccessPattern;
using aie::Instruction;
using aie::MemSpace;
using aie::Opcode;

// A conv layer's integers: W [M][C][kh][kw], B_q, requant per channel.
struct ConvData {
  int64_t m = 0, c = 0, kh = 1, kw = 1;
  std::vector<int8_t> w;
  std::vector<int32_t> bias;
  std::vector<Requant> rq;
};

ConvData RandomConv(int64_t m, int64_t c, int64_t k, uint32_t seed,
                    const std::vector<std::pair<int, int>>& zero_blocks) {
  ConvData d{m, c, k, k, {}, {}, {}};
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> wd(-127, 127), bd(-2000, 2000);
  d.w.resize(static_cast<size_t>(m * c * k * k));
  for (auto& v : d.w) v = static_cast<int8_t>(wd(rng));
  for (auto [bi, bj] : zero_blocks)
    for (int64_t o = bi * 8; o < bi * 8 + 8; ++o)
      for (int64_t i = bj * 8; i < bj * 8 + 8; ++i)
        for (int64_t t = 0; t < k * k; ++t) d.w[static_cast<size_t>((o * c + i) * k * k + t)] = 0;
  for (int64_t o = 0; o < m; ++o) {
    d.bias.push_back(bd(rng));
    d.rq.push_back(QuantizeMultiplier(0.0007 + 0.0001 * static_cast<double>(o % 5)));
  }
  return d;
}

void Put32(std::vector<uint8_t>& b, int32_t v) {
  uint8_t x[4];
  std::memcpy(x, &v, 4);
  b.insert(b.end(), x, x + 4);
}

// The blob (docs/AIE_PROGRAM.md) for output channels [m0, m0 + mc), input
// channels [k0, k1) (k1 < 0: all; a CIN-split part) and u8 input with zero
// point zx; all-zero 8x8 blocks are not stored. The bias (over every input
// channel) and (M, S) are stored as `flags` says.
std::vector<uint8_t> MakeBlob(const ConvData& d, int64_t m0, int64_t mc, int32_t zx, int64_t k0 = 0,
                              int64_t k1 = -1, int32_t flags = aie::kBlobBias | aie::kBlobRequant) {
  if (k1 < 0) k1 = d.c;
  const int64_t taps = d.kh * d.kw, brs = (mc + 7) / 8, bcs = (k1 - k0 + 7) / 8;
  auto W = [&](int64_t o, int64_t i, int64_t t) -> int32_t {  // i relative to k0
    if (o >= mc || k0 + i >= k1) return 0;
    return d.w[static_cast<size_t>(((m0 + o) * d.c + k0 + i) * taps + t)];
  };
  std::vector<int32_t> row_ptr{0}, col_idx;
  for (int64_t bi = 0; bi < brs; ++bi) {
    for (int64_t bj = 0; bj < bcs; ++bj) {
      bool nz = false;
      for (int64_t o = 0; o < 8; ++o)
        for (int64_t i = 0; i < 8; ++i)
          for (int64_t t = 0; t < taps; ++t) nz |= W(bi * 8 + o, bj * 8 + i, t) != 0;
      if (nz) col_idx.push_back(static_cast<int32_t>(bj));
    }
    row_ptr.push_back(static_cast<int32_t>(col_idx.size()));
  }
  std::vector<uint8_t> b;
  for (int32_t v : {aie::kBlobMagic, 8, 8, static_cast<int32_t>(d.kh), static_cast<int32_t>(d.kw),
                    static_cast<int32_t>(brs), static_cast<int32_t>(col_idx.size()),
                    static_cast<int32_t>(k1 - k0), flags})
    Put32(b, v);
  for (int32_t v : row_ptr) Put32(b, v);
  for (int32_t v : col_idx) Put32(b, v);
  if (flags & aie::kBlobBias)
    for (int64_t o = 0; o < brs * 8; ++o) {
      int64_t row_sum = 0;
      for (int64_t i = 0; o < mc && i < d.c; ++i)
        for (int64_t t = 0; t < taps; ++t)
          row_sum += d.w[static_cast<size_t>(((m0 + o) * d.c + i) * taps + t)];
      Put32(b,
            o < mc ? static_cast<int32_t>(d.bias[static_cast<size_t>(m0 + o)] - zx * row_sum) : 0);
    }
  if (flags & aie::kBlobRequant) {
    for (int64_t o = 0; o < brs * 8; ++o)
      Put32(b, o < mc ? d.rq[static_cast<size_t>(m0 + o)].multiplier : 0);
    for (int64_t o = 0; o < brs * 8; ++o)
      Put32(b, o < mc ? d.rq[static_cast<size_t>(m0 + o)].shift : 0);
  }
  for (int64_t bi = 0; bi < brs; ++bi)
    for (int32_t j = row_ptr[static_cast<size_t>(bi)]; j < row_ptr[static_cast<size_t>(bi + 1)];
         ++j)
      for (int64_t qq = 0; qq < 2; ++qq)
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t r = 0; r < 8; ++r)
            for (int64_t l = 0; l < 4; ++l)
              b.push_back(static_cast<uint8_t>(static_cast<int8_t>(
                  W(bi * 8 + r, col_idx[static_cast<size_t>(j)] * 8 + qq * 4 + l, t))));
  while (b.size() % 4) b.push_back(0);
  aie::BlobHeader h;
  h.kh = static_cast<int32_t>(d.kh), h.kw = static_cast<int32_t>(d.kw);
  h.block_rows = static_cast<int32_t>(brs), h.nnz = static_cast<int32_t>(col_idx.size());
  h.flags = flags;
  EXPECT_EQ(static_cast<int64_t>(b.size()), aie::BlobBytes(h));
  return b;
}

std::vector<uint8_t> RefConv(const ConvData& d, const std::vector<uint8_t>& x, int64_t h, int64_t w,
                             int64_t pad, int32_t zx, int32_t zy) {
  kernels::ref::ConvParams p;
  p.in_channels = d.c;
  p.out_channels = d.m;
  p.in = {1, h, w};
  p.out = {1, h + 2 * pad - d.kh + 1, w + 2 * pad - d.kw + 1};
  p.kernel = {1, d.kh, d.kw};
  p.pad_begin = {0, pad, pad};
  p.pad_end = {0, pad, pad};
  kernels::ref::QuantOutput q;
  q.requant = d.rq.data();
  q.zero_point = zy;
  std::vector<uint8_t> y(static_cast<size_t>(d.m * p.out[1] * p.out[2]));
  kernels::ref::QConv<uint8_t, uint8_t>(p, x.data(), zx, d.w.data(), d.bias.data(), q, y.data());
  return y;
}

AccessPattern Linear(int64_t base, int64_t n, int64_t pong = 0) {
  AccessPattern a;
  a.base = base;
  a.pong = pong;
  a.size = {n, 1, 1, 1};
  a.stride = {1, 0, 0, 0};
  return a;
}

Instruction Xfer(Opcode op, MemSpace src, AccessPattern sap, std::vector<MemSpace> dst,
                 AccessPattern dap) {
  Instruction in;
  in.op = op;
  in.layer = 0;
  in.src = src;
  in.src_ap = sap;
  in.dst = std::move(dst);
  in.dst_ap = dap;
  return in;
}

aie::Program BaseProgram(int rows, int cols, int64_t ddr) {
  aie::Program p;
  p.target = "test";
  p.rows = rows;
  p.cols = cols;
  p.memtiles = cols;
  p.ddr_bytes = ddr;
  p.memtile_bytes = 512 * 1024;
  p.core_bytes = 64 * 1024;
  p.layers.push_back({"conv", "QConv", 0, 0});
  return p;
}

aie::DdrSymbol Sym(const std::string& name, aie::DdrSymbol::Kind k, int64_t addr, int64_t size) {
  aie::DdrSymbol s;
  s.name = name;
  s.kind = k;
  s.addr = addr;
  s.size = size;
  return s;
}

std::vector<uint8_t> RandomImage(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> x(static_cast<size_t>(n));
  for (auto& v : x) v = static_cast<uint8_t>(rng() & 0xff);
  return x;
}

// Runs through the text form (what tools exchange), returns the output symbol.
std::vector<uint8_t> RunProgram(const aie::Program& p, const aie::Target& t,
                                const std::vector<uint8_t>& x, SimStats* stats = nullptr) {
  auto parsed = aie::Program::FromText(p.ToText(), "test");
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  auto sim = Simulator::Create(*parsed, t);
  EXPECT_TRUE(sim.ok()) << sim.status().message();
  EXPECT_TRUE(sim->SetInput("in", x).ok());
  const Status st = sim->Run();
  EXPECT_TRUE(st.ok()) << st.message();
  if (stats) *stats = sim->stats();
  auto y = sim->ReadSymbol("out");
  EXPECT_TRUE(y.ok()) << y.status().message();
  return y.ok() ? *y : std::vector<uint8_t>{};
}

constexpr int32_t kZx = 7, kZy = 3;

TEST(SimExec, SingleCoreConvMatchesReference) {
  const int64_t C = 16, H = 6, W = 6, M = 16;
  const ConvData d = RandomConv(M, C, 3, 1, {{0, 1}, {1, 0}});
  const std::vector<uint8_t> blob = MakeBlob(d, 0, M, kZx);
  const int64_t blob_addr = 1024, out_addr = blob_addr + static_cast<int64_t>(blob.size());
  aie::Program p = BaseProgram(2, 2, out_addr + M * H * W);
  p.symbols.push_back(Sym("in", aie::DdrSymbol::Kind::kInput, 0, C * H * W));
  aie::DdrSymbol ws =
      Sym("w", aie::DdrSymbol::Kind::kConst, blob_addr, static_cast<int64_t>(blob.size()));
  ws.data = blob;
  p.symbols.push_back(ws);
  p.symbols.push_back(Sym("out", aie::DdrSymbol::Kind::kOutput, out_addr, M * H * W));
  aie::Block b;
  const int64_t nb = static_cast<int64_t>(blob.size());
  b.instrs.push_back(Xfer(Opcode::kLoad, MemSpace::Ddr(), Linear(0, C * H * W),
                          {MemSpace::Memtile(0)}, Linear(0, C * H * W)));
  b.instrs.push_back(Xfer(Opcode::kLoadW, MemSpace::Ddr(), Linear(blob_addr, nb),
                          {MemSpace::Memtile(0)}, Linear(8192, nb)));
  // The padded window (H+2) x (W+2) per channel; the DMA delivers z_x at borders.
  AccessPattern win;
  win.size = {W + 2, H + 2, C, 1};
  win.stride = {1, W, H * W, 0};
  win.start = {-1, -1, 0, 0};
  win.bound = {W, H, 0, 0};
  win.pad_value = kZx;
  b.instrs.push_back(Xfer(Opcode::kLoadFm, MemSpace::Memtile(0), win, {MemSpace::Core(0, 0)},
                          Linear(0, C * (H + 2) * (W + 2))));
  b.instrs.push_back(Xfer(Opcode::kLoadWm, MemSpace::Memtile(0), Linear(8192, nb),
                          {MemSpace::Core(0, 0)}, Linear(4096, nb)));
  Instruction comp;
  comp.op = Opcode::kComp;
  comp.layer = 0;
  comp.cores = {MemSpace::Core(0, 0)};
  aie::CompParams& c = comp.comp;
  c.in_c = C, c.in_h = H + 2, c.in_w = W + 2, c.out_c = M, c.out_h = H, c.out_w = W, c.kh = 3,
  c.kw = 3;
  c.in.addr = 0, c.weights.addr = 4096, c.out.addr = 16384;
  c.weights_bytes = nb;
  c.out_zero = kZy, c.lo = 0, c.hi = 255;
  c.macs_dense = c.macs = M * C * 9 * H * W;
  b.instrs.push_back(comp);
  b.instrs.push_back(Xfer(Opcode::kWriteFm, MemSpace::Core(0, 0), Linear(16384, M * H * W),
                          {MemSpace::Memtile(0)}, Linear(65536, M * H * W)));
  b.instrs.push_back(Xfer(Opcode::kWrite, MemSpace::Memtile(0), Linear(65536, M * H * W),
                          {MemSpace::Ddr()}, Linear(out_addr, M * H * W)));
  p.blocks.push_back(b);
  const std::vector<uint8_t> x = RandomImage(C * H * W, 2);
  SimStats st;
  const std::vector<uint8_t> y = RunProgram(p, aie::Target::Paper(2, 2), x, &st);
  EXPECT_EQ(y, RefConv(d, x, H, W, 1, kZx, kZy));
  // Not a saturated output (the comparison would be weak).
  EXPECT_GT(std::set<uint8_t>(y.begin(), y.end()).size(), 50u);
  EXPECT_EQ(st.instructions, 7);
  EXPECT_GT(st.total_cycles, 0);
}

// A CIN split in two parts (docs/AIE_PROGRAM.md, format 2): part 0's blob
// has only the bias (over all input channels) and writes the s32 partial,
// part 1's only (M, S) and accumulates, then requantizes. Bit-exact with the
// unsplit reference; a requantizing COMP on a blob without (M, S) faults.
TEST(SimExec, CinSplitBlobsCarryBiasAndRequantOnce) {
  const int64_t C = 16, H = 5, W = 5, M = 16, K = 8;  // two parts of K input channels
  const ConvData d = RandomConv(M, C, 3, 5, {{0, 0}, {1, 1}});
  const std::vector<uint8_t> b0 = MakeBlob(d, 0, M, kZx, 0, K, aie::kBlobBias);
  const std::vector<uint8_t> b1 = MakeBlob(d, 0, M, kZx, K, C, aie::kBlobRequant);
  const std::vector<uint8_t> full = MakeBlob(d, 0, M, kZx);
  // Each per-channel word is stored once over the two parts.
  EXPECT_LT(b0.size() + b1.size(), full.size() + 2 * 4 * (aie::kBlobHeaderInts + 3));
  const int64_t n0 = static_cast<int64_t>(b0.size()), n1 = static_cast<int64_t>(b1.size());
  const int64_t w0 = 1024, w1 = w0 + n0, out_addr = w1 + n1;
  aie::Program p = BaseProgram(2, 2, out_addr + M * H * W);
  p.symbols.push_back(Sym("in", aie::DdrSymbol::Kind::kInput, 0, C * H * W));
  aie::DdrSymbol ws = Sym("w", aie::DdrSymbol::Kind::kConst, w0, n0 + n1);
  ws.data = b0;
  ws.data.insert(ws.data.end(), b1.begin(), b1.end());
  p.symbols.push_back(ws);
  p.symbols.push_back(Sym("out", aie::DdrSymbol::Kind::kOutput, out_addr, M * H * W));
  aie::Block b;
  b.instrs.push_back(Xfer(Opcode::kLoad, MemSpace::Ddr(), Linear(0, C * H * W),
                          {MemSpace::Memtile(0)}, Linear(0, C * H * W)));
  b.instrs.push_back(Xfer(Opcode::kLoadW, MemSpace::Ddr(), Linear(w0, n0 + n1),
                          {MemSpace::Memtile(0)}, Linear(8192, n0 + n1)));
  const int64_t win_bytes = K * (H + 2) * (W + 2);
  const MemSpace core = MemSpace::Core(0, 0);
  for (int part = 0; part < 2; ++part) {
    AccessPattern win;
    win.base = part * K * H * W;
    win.size = {W + 2, H + 2, K, 1};
    win.stride = {1, W, H * W, 0};
    win.start = {-1, -1, 0, 0};
    win.bound = {W, H, 0, 0};
    win.pad_value = kZx;
    b.instrs.push_back(
        Xfer(Opcode::kLoadFm, MemSpace::Memtile(0), win, {core}, Linear(part * 2048, win_bytes)));
  }
  b.instrs.push_back(Xfer(Opcode::kLoadWm, MemSpace::Memtile(0), Linear(8192, n0 + n1), {core},
                          Linear(4096, n0 + n1)));
  Instruction comp;
  comp.op = Opcode::kComp;
  comp.layer = 0;
  comp.cores = {core};
  aie::CompParams& c = comp.comp;
  c.in_c = K, c.in_h = H + 2, c.in_w = W + 2, c.out_c = M, c.out_h = H, c.out_w = W, c.kh = 3,
  c.kw = 3;
  c.out_zero = kZy, c.lo = 0, c.hi = 255;
  c.macs_dense = c.macs = M * K * 9 * H * W;
  c.in2 = {16384, 0};
  c.in2_type = aie::OutType::kS32;
  Instruction p0 = comp, p1 = comp;
  p0.comp.in.addr = 0, p0.comp.weights.addr = 4096, p0.comp.weights_bytes = n0;
  p0.comp.out = {16384, 0}, p0.comp.out_type = aie::OutType::kS32;
  p1.comp.in.addr = 2048, p1.comp.weights.addr = 4096 + n0, p1.comp.weights_bytes = n1;
  p1.comp.accumulate = true;
  p1.comp.out = {24576, 0};
  b.instrs.push_back(p0);
  b.instrs.push_back(p1);
  b.instrs.push_back(Xfer(Opcode::kWriteFm, core, Linear(24576, M * H * W), {MemSpace::Memtile(0)},
                          Linear(65536, M * H * W)));
  b.instrs.push_back(Xfer(Opcode::kWrite, MemSpace::Memtile(0), Linear(65536, M * H * W),
                          {MemSpace::Ddr()}, Linear(out_addr, M * H * W)));
  p.blocks.push_back(b);
  const std::vector<uint8_t> x = RandomImage(C * H * W, 6);
  const std::vector<uint8_t> y = RunProgram(p, aie::Target::Paper(2, 2), x);
  EXPECT_EQ(y, RefConv(d, x, H, W, 1, kZx, kZy));
  EXPECT_GT(std::set<uint8_t>(y.begin(), y.end()).size(), 40u);
  // Part 0's blob cannot requantize.
  aie::Program bad = p;
  aie::Instruction& last = bad.blocks[0].instrs[6];
  ASSERT_EQ(last.op, Opcode::kComp);
  last.comp.weights.addr = 4096, last.comp.weights_bytes = n0;
  auto sim = Simulator::Create(bad, aie::Target::Paper(2, 2));
  ASSERT_TRUE(sim.ok());
  ASSERT_TRUE(sim->SetInput("in", x).ok());
  const Status st = sim->Run();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("has no mult/shift"), std::string::npos) << st.message();
}

TEST(SimExec, TwoByTwoSplitWithBroadcastMatchesReference) {
  // Rows split output channels (weights broadcast along a row), columns split
  // output columns (activations broadcast down a column).
  const int64_t C = 16, H = 6, W = 6, M = 16, OW = 3;
  const ConvData d = RandomConv(M, C, 3, 3, {{0, 1}, {1, 0}});
  std::vector<std::vector<uint8_t>> blobs{MakeBlob(d, 0, 8, kZx), MakeBlob(d, 8, 8, kZx)};
  const int64_t blob_addr = 4096;
  int64_t out_addr = blob_addr;
  for (const auto& bl : blobs) out_addr += static_cast<int64_t>(bl.size());
  aie::Program p = BaseProgram(2, 2, out_addr + M * H * W);
  p.symbols.push_back(Sym("in", aie::DdrSymbol::Kind::kInput, 0, C * H * W));
  int64_t a = blob_addr;
  for (size_t r = 0; r < 2; ++r) {
    aie::DdrSymbol ws = Sym(fmt::format("w{}", r), aie::DdrSymbol::Kind::kConst, a,
                            static_cast<int64_t>(blobs[r].size()));
    ws.data = blobs[r];
    p.symbols.push_back(ws);
    a += ws.size;
  }
  p.symbols.push_back(Sym("out", aie::DdrSymbol::Kind::kOutput, out_addr, M * H * W));
  aie::Block b;
  b.instrs.push_back(Xfer(Opcode::kLoad, MemSpace::Ddr(), Linear(0, C * H * W),
                          {MemSpace::Memtile(0), MemSpace::Memtile(1)}, Linear(0, C * H * W)));
  a = blob_addr;
  for (int r = 0; r < 2; ++r) {
    const int64_t nb = static_cast<int64_t>(blobs[static_cast<size_t>(r)].size());
    b.instrs.push_back(Xfer(Opcode::kLoadW, MemSpace::Ddr(), Linear(a, nb), {MemSpace::Memtile(r)},
                            Linear(8192, nb)));
    b.instrs.push_back(Xfer(Opcode::kLoadWm, MemSpace::Memtile(r), Linear(8192, nb),
                            {MemSpace::Core(r, 0), MemSpace::Core(r, 1)}, Linear(8192, nb)));
    a += nb;
  }
  for (int col = 0; col < 2; ++col) {
    AccessPattern win;
    win.size = {OW + 2, H + 2, C, 1};
    win.stride = {1, W, H * W, 0};
    win.start = {col * OW - 1, -1, 0, 0};
    win.bound = {W, H, 0, 0};
    win.pad_value = kZx;
    b.instrs.push_back(Xfer(Opcode::kLoadFm, MemSpace::Memtile(col), win,
                            {MemSpace::Core(0, col), MemSpace::Core(1, col)},
                            Linear(0, C * (H + 2) * (OW + 2))));
  }
  Instruction comp;
  comp.op = Opcode::kComp;
  comp.layer = 0;
  comp.cores = {MemSpace::Core(0, 0), MemSpace::Core(0, 1), MemSpace::Core(1, 0),
                MemSpace::Core(1, 1)};
  aie::CompParams& c = comp.comp;
  c.in_c = C, c.in_h = H + 2, c.in_w = OW + 2, c.out_c = 8, c.out_h = H, c.out_w = OW, c.kh = 3,
  c.kw = 3;
  c.in.addr = 0, c.weights.addr = 8192, c.out.addr = 16384;
  // The rows' blobs differ in length: the footprint is the longer one.
  c.weights_bytes = static_cast<int64_t>(std::max(blobs[0].size(), blobs[1].size()));
  c.out_zero = kZy, c.lo = 0, c.hi = 255;
  c.macs_dense = 8 * C * 9 * H * OW;
  c.macs = c.macs_dense / 2;
  b.instrs.push_back(comp);
  for (int r = 0; r < 2; ++r)
    for (int col = 0; col < 2; ++col) {
      AccessPattern dst;
      dst.base = 65536;
      dst.size = {OW, H, 8, 1};
      dst.stride = {1, W, H * W, 0};
      dst.start = {col * OW, 0, r * 8, 0};
      b.instrs.push_back(Xfer(Opcode::kWriteFm, MemSpace::Core(r, col), Linear(16384, 8 * H * OW),
                              {MemSpace::Memtile(0)}, dst));
    }
  b.instrs.push_back(Xfer(Opcode::kWrite, MemSpace::Memtile(0), Linear(65536, M * H * W),
                          {MemSpace::Ddr()}, Linear(out_addr, M * H * W)));
  p.blocks.push_back(b);
  const std::vector<uint8_t> x = RandomImage(C * H * W, 4);
  EXPECT_EQ(RunProgram(p, aie::Target::Paper(2, 2), x), RefConv(d, x, H, W, 1, kZx, kZy));
}

// A 1x1 conv streamed row by row through ping/pong core buffers guarded by
// producer/consumer locks; returns the program (used by the timing test too).
aie::Program PingPongProgram(const ConvData& d, int64_t H, int64_t W) {
  const int64_t C = d.c, M = d.m;
  const std::vector<uint8_t> blob = MakeBlob(d, 0, M, kZx);
  const int64_t blob_addr = 4096, out_addr = blob_addr + static_cast<int64_t>(blob.size()),
                nb = static_cast<int64_t>(blob.size());
  aie::Program p = BaseProgram(2, 2, out_addr + M * H * W);
  p.symbols.push_back(Sym("in", aie::DdrSymbol::Kind::kInput, 0, C * H * W));
  aie::DdrSymbol ws = Sym("w", aie::DdrSymbol::Kind::kConst, blob_addr, nb);
  ws.data = blob;
  p.symbols.push_back(ws);
  p.symbols.push_back(Sym("out", aie::DdrSymbol::Kind::kOutput, out_addr, M * H * W));
  const MemSpace core = MemSpace::Core(0, 0);
  // Locks of c0.0: 0/1 input empty (ping/pong), 2/3 input full, 4/5 output empty, 6/7 output full.
  for (int id : {0, 1, 4, 5}) p.locks.push_back({core, id, 1});
  aie::Block pre;
  pre.instrs.push_back(Xfer(Opcode::kLoad, MemSpace::Ddr(), Linear(0, C * H * W),
                            {MemSpace::Memtile(0)}, Linear(0, C * H * W)));
  pre.instrs.push_back(Xfer(Opcode::kLoadW, MemSpace::Ddr(), Linear(blob_addr, nb),
                            {MemSpace::Memtile(0)}, Linear(65536, nb)));
  pre.instrs.push_back(
      Xfer(Opcode::kLoadWm, MemSpace::Memtile(0), Linear(65536, nb), {core}, Linear(8192, nb)));
  p.blocks.push_back(pre);
  aie::Block rows;
  rows.iterations = H;
  rows.label = "rows";
  AccessPattern row;  // channel c, row it: c*H*W + it*W + x
  row.size = {W, C, 1, 1};
  row.stride = {1, H * W, W, 0};
  row.step = {0, 0, 1, 0};
  Instruction ld = Xfer(Opcode::kLoadFm, MemSpace::Memtile(0), row, {core}, Linear(0, C * W, 2048));
  ld.acquire = {{core, 0, 1, true}};
  ld.release = {{core, 2, 1, true}};
  rows.instrs.push_back(ld);
  Instruction comp;
  comp.op = Opcode::kComp;
  comp.layer = 0;
  comp.cores = {core};
  aie::CompParams& c = comp.comp;
  c.in_c = C, c.in_h = 1, c.in_w = W, c.out_c = M, c.out_h = 1, c.out_w = W;
  c.in = {0, 2048};
  c.weights.addr = 8192;
  c.weights_bytes = nb;
  c.out = {16384, 4096};
  c.out_zero = kZy, c.lo = 0, c.hi = 255;
  c.macs_dense = c.macs = M * C * W;
  comp.acquire = {{core, 2, 1, true}, {core, 4, 1, true}};
  comp.release = {{core, 0, 1, true}, {core, 6, 1, true}};
  rows.instrs.push_back(comp);
  AccessPattern orow = row;
  orow.base = 131072;
  orow.size = {W, M, 1, 1};
  Instruction wr =
      Xfer(Opcode::kWriteFm, core, Linear(16384, M * W, 4096), {MemSpace::Memtile(0)}, orow);
  wr.acquire = {{core, 6, 1, true}};
  wr.release = {{core, 4, 1, true}};
  rows.instrs.push_back(wr);
  p.blocks.push_back(rows);
  aie::Block post;
  post.instrs.push_back(Xfer(Opcode::kWrite, MemSpace::Memtile(0), Linear(131072, M * H * W),
                             {MemSpace::Ddr()}, Linear(out_addr, M * H * W)));
  p.blocks.push_back(post);
  return p;
}

TEST(SimExec, PingPongWithLocksMatchesReference) {
  const int64_t C = 16, H = 8, W = 16, M = 24;
  const ConvData d = RandomConv(M, C, 1, 5, {{1, 1}, {2, 0}});
  const aie::Program p = PingPongProgram(d, H, W);
  const std::vector<uint8_t> x = RandomImage(C * H * W, 6);
  SimStats st;
  EXPECT_EQ(RunProgram(p, aie::Target::Paper(2, 2), x, &st), RefConv(d, x, H, W, 0, kZx, kZy));
  // Ping/pong overlaps LOADFM, COMP and WRITEFM of different rows: faster than
  // the instructions one after another.
  const aie::Target t = aie::Target::Paper(2, 2);
  const double serial_rows =
      static_cast<double>(H) * (t.transfer_cycles(aie::Link::kMemtileToCore, C * W) +
                                static_cast<double>(M * C * W) / t.macs_per_cycle() +
                                t.transfer_cycles(aie::Link::kCoreToMemtile, M * W));
  const double pre_post = t.transfer_cycles(aie::Link::kDdrToMemtile, C * H * W) +
                          t.transfer_cycles(aie::Link::kMemtileToDdr, M * H * W);
  EXPECT_LT(st.total_cycles, serial_rows + pre_post + 1e6);  // sanity
  EXPECT_GT(st.total_cycles, pre_post);
  ASSERT_EQ(st.layers.size(), 1u);
  EXPECT_GT(st.layers[0].estimate, 0);
}

TEST(SimExec, TransferTimeIsBytesOverBandwidth) {
  const aie::Target t = aie::Target::Paper(2, 2);
  const int64_t n = 40000;
  aie::Program p = BaseProgram(2, 2, n);
  p.symbols.push_back(Sym("in", aie::DdrSymbol::Kind::kInput, 0, n));
  // Three loads into memtile 0, each behind its own initialised lock (so only
  // the DMA channels order them): two shim channels -> the third waits.
  for (int id = 0; id < 3; ++id) p.locks.push_back({MemSpace::Memtile(0), id, 1});
  aie::Block b;
  for (int id = 0; id < 3; ++id) {
    Instruction in = Xfer(Opcode::kLoad, MemSpace::Ddr(), Linear(0, n), {MemSpace::Memtile(0)},
                          Linear(id * n, n));
    in.acquire = {{MemSpace::Memtile(0), id, 1, false}};
    b.instrs.push_back(in);
  }
  p.blocks.push_back(b);
  auto sim = Simulator::Create(p, t);
  ASSERT_TRUE(sim.ok()) << sim.status().message();
  ASSERT_TRUE(sim->SetInput("in", std::vector<uint8_t>(static_cast<size_t>(n), 1)).ok());
  ASSERT_TRUE(sim->Run().ok());
  const double one =
      static_cast<double>(n) / (t.ddr.channel_gbps / t.clock_ghz);  // bytes / (bytes per cycle)
  EXPECT_DOUBLE_EQ(t.transfer_cycles(aie::Link::kDdrToMemtile, n), one);
  EXPECT_DOUBLE_EQ(sim->stats().total_cycles, 2 * one);
  ASSERT_EQ(sim->trace().size(), 3u);
  EXPECT_DOUBLE_EQ(sim->trace()[0].end - sim->trace()[0].start, one);
  EXPECT_DOUBLE_EQ(sim->trace()[1].start, 0);
  EXPECT_DOUBLE_EQ(sim->trace()[2].start, one);
  const std::string json = sim->TraceJson();
  EXPECT_NE(json.find("\"traceEvents\""), std::string::npos);
  EXPECT_NE(json.find("shim0.mm2s1"), std::string::npos);
  EXPECT_NE(sim->Report().find("total:"), std::string::npos);
  EXPECT_EQ(sim->trace()[0].resource, "shim0.mm2s0");
  EXPECT_EQ(sim->trace()[1].resource, "shim0.mm2s1");
  EXPECT_EQ(sim->trace()[2].resource, "shim0.mm2s0");
  // The layer's critical path: two LOADs, the second after its channel.
  const LayerStats& L = sim->stats().layers.at(0);
  EXPECT_DOUBLE_EQ(L.incremental, 2 * one);
  ASSERT_EQ(L.critical.size(), 1u);
  EXPECT_EQ(L.critical[0].op, "LOAD");
  EXPECT_DOUBLE_EQ(L.critical[0].cycles, 2 * one);
  EXPECT_DOUBLE_EQ(L.critical[0].after[static_cast<int>(WaitKind::kResource)], one);
  EXPECT_EQ(L.critical[0].resource, "shim0.mm2s0");
  // The report JSON carries the same numbers.
  const std::string rj = sim->ReportJson();
  EXPECT_NE(rj.find("\"after_channel\": 10000"), std::string::npos) << rj;
}

// A two-chunk layer with one core weight buffer (codegen without w_double):
// chunk 1's blob is loaded (two byte halves, as codegen emits them) into the
// buffer chunk 0's COMP reads. The COMP's footprint is its whole blob
// (CompParams::weights_bytes), so both halves of the next LOADWM start after
// that COMP ends, in the compiler's time model and in the simulation alike.
// With the old header-only footprint the second half was timed under the
// COMP (and, on hardware, would overwrite the blob's tail while it is read);
// the simulator now rejects such a program: its COMP reads past what it
// declares.
aie::Program TwoChunkProgram(const std::vector<std::vector<uint8_t>>& blobs, int64_t C, int64_t W,
                             int64_t declared) {
  const int64_t in_bytes = C * W, chunk_out = 8 * W;
  const int64_t blob_addr = in_bytes;
  int64_t out_addr = blob_addr;
  for (const auto& bl : blobs) out_addr += static_cast<int64_t>(bl.size());
  aie::Program p = BaseProgram(2, 2, out_addr + 2 * chunk_out);
  p.symbols.push_back(Sym("in", aie::DdrSymbol::Kind::kInput, 0, in_bytes));
  aie::DdrSymbol ws = Sym("w", aie::DdrSymbol::Kind::kConst, blob_addr, out_addr - blob_addr);
  for (const auto& bl : blobs) ws.data.insert(ws.data.end(), bl.begin(), bl.end());
  p.symbols.push_back(ws);
  p.symbols.push_back(Sym("out", aie::DdrSymbol::Kind::kOutput, out_addr, 2 * chunk_out));
  const MemSpace mt = MemSpace::Memtile(0), core = MemSpace::Core(0, 0);
  const int64_t core_w = in_bytes, core_out = core_w + 2048;  // one weight buffer
  int64_t ddr_w = blob_addr;
  for (int k = 0; k < 2; ++k) {
    const int64_t nb = static_cast<int64_t>(blobs[static_cast<size_t>(k)].size());
    const int64_t slab = 65536 + k * 4096;  // memtile weight halves by chunk
    aie::Block w;
    w.label = fmt::format("w{}", k);
    const int64_t cut = std::min(nb, (nb / 2 + 63) / 64 * 64);
    for (const auto& [o, n] : {std::pair<int64_t, int64_t>{0, cut}, {cut, nb - cut}})
      w.instrs.push_back(
          Xfer(Opcode::kLoadW, MemSpace::Ddr(), Linear(ddr_w + o, n), {mt}, Linear(slab + o, n)));
    for (const auto& [o, n] : {std::pair<int64_t, int64_t>{0, cut}, {cut, nb - cut}})
      w.instrs.push_back(
          Xfer(Opcode::kLoadWm, mt, Linear(slab + o, n), {core}, Linear(core_w + o, n)));
    p.blocks.push_back(w);
    ddr_w += nb;
    aie::Block b;
    b.label = fmt::format("k{}", k);
    if (k == 0) {  // the input stays in the core for both chunks
      b.instrs.push_back(
          Xfer(Opcode::kLoad, MemSpace::Ddr(), Linear(0, in_bytes), {mt}, Linear(0, in_bytes)));
      b.instrs.push_back(
          Xfer(Opcode::kLoadFm, mt, Linear(0, in_bytes), {core}, Linear(0, in_bytes)));
    }
    Instruction comp;
    comp.op = Opcode::kComp;
    comp.layer = 0;
    comp.cores = {core};
    aie::CompParams& c = comp.comp;
    c.in_c = static_cast<int32_t>(C), c.in_h = 1, c.in_w = static_cast<int32_t>(W);
    c.out_c = 8, c.out_h = 1, c.out_w = static_cast<int32_t>(W);
    c.in = {0, 0};
    c.weights = {core_w, 0};
    c.weights_bytes = declared > 0 ? declared : nb;
    c.out = {core_out + k * chunk_out, 0};
    c.out_zero = kZy, c.lo = 0, c.hi = 255;
    c.macs_dense = c.macs = 8 * C * W;
    b.instrs.push_back(comp);
    b.instrs.push_back(Xfer(Opcode::kWriteFm, core, Linear(core_out + k * chunk_out, chunk_out),
                            {mt}, Linear(131072 + k * chunk_out, chunk_out)));
    b.instrs.push_back(Xfer(Opcode::kWrite, mt, Linear(131072 + k * chunk_out, chunk_out),
                            {MemSpace::Ddr()}, Linear(out_addr + k * chunk_out, chunk_out)));
    p.blocks.push_back(b);
  }
  return p;
}

// The start of chunk 1's two LOADWM halves and the end of chunk 0's COMP:
// by the compiler's time model (Timeline) and by the simulator (its trace).
struct ChunkTimes {
  double est_loads[2] = {0, 0}, est_comp_end = 0;
  double sim_loads[2] = {0, 0}, sim_comp_end = 0;
  double sim_total = 0, estimate = 0;
};

ChunkTimes TimeTwoChunks(const aie::Program& p, const aie::Target& t) {
  ChunkTimes r;
  aie::Timeline tl(t, 0, p);
  int wm = 0, comps = 0;
  for (const aie::Block& b : p.blocks)
    for (const Instruction& in : b.instrs) {
      const aie::Timeline::Slot s = tl.Schedule(in, 0);
      if (in.op == Opcode::kLoadWm && wm++ >= 2) r.est_loads[wm - 3] = s.start;
      if (in.op == Opcode::kComp && comps++ == 0) r.est_comp_end = s.end;
    }
  SimOptions o;
  o.functional = false;  // the old footprint's program faults when run functionally
  auto sim = Simulator::Create(p, t, o);
  EXPECT_TRUE(sim.ok()) << sim.status().message();
  if (!sim.ok()) return r;
  EXPECT_TRUE(sim->Run().ok());
  // Trace events: one per resource (a LOADWM has two: memtile MM2S, core S2MM).
  wm = 0, comps = 0;
  for (const TraceEvent& e : sim->trace()) {
    if (e.name.rfind("LOADWM", 0) == 0 && e.resource.find("mm2s") != std::string::npos && wm++ >= 2)
      r.sim_loads[wm - 3] = e.start;
    if (e.name.rfind("COMP", 0) == 0 && comps++ == 0) r.sim_comp_end = e.end;
  }
  EXPECT_EQ(wm, 4);
  r.sim_total = sim->stats().total_cycles;
  r.estimate = sim->stats().estimate_cycles;
  return r;
}

TEST(SimExec, NextBlobLoadWaitsForTheCompReadingTheBuffer) {
  const aie::Target t = aie::Target::Paper(2, 2);
  const int64_t C = 64, W = 256, M = 16;
  const ConvData d = RandomConv(M, C, 1, 9, {});
  const std::vector<std::vector<uint8_t>> blobs{MakeBlob(d, 0, 8, kZx), MakeBlob(d, 8, 8, kZx)};
  // Long enough that the header is in the first half only.
  ASSERT_GT(static_cast<int64_t>(blobs[0].size()), 2 * aie::kBlobHeaderBytes);
  const aie::Program p = TwoChunkProgram(blobs, C, W, 0);
  const std::vector<uint8_t> x = RandomImage(C * W, 10);
  EXPECT_EQ(RunProgram(p, t, x), RefConv(d, x, 1, W, 0, kZx, kZy));
  const ChunkTimes now = TimeTwoChunks(p, t);
  EXPECT_GT(now.est_comp_end, 0);
  for (int h = 0; h < 2; ++h) {
    EXPECT_GE(now.est_loads[h], now.est_comp_end) << "half " << h;
    EXPECT_GE(now.sim_loads[h], now.sim_comp_end) << "half " << h;
  }
  EXPECT_DOUBLE_EQ(now.sim_comp_end, now.est_comp_end);
  EXPECT_DOUBLE_EQ(now.sim_total, now.estimate);
  // The old footprint (the blob header only): the second half is timed
  // under the COMP still reading it, and the simulator faults on the read.
  const aie::Program old = TwoChunkProgram(blobs, C, W, aie::kBlobHeaderBytes);
  const ChunkTimes was = TimeTwoChunks(old, t);
  EXPECT_GE(was.est_loads[0], was.est_comp_end);
  EXPECT_LT(was.est_loads[1], was.est_comp_end);
  EXPECT_LT(was.sim_loads[1], was.sim_comp_end);
  auto sim = Simulator::Create(old, t);
  ASSERT_TRUE(sim.ok()) << sim.status().message();
  ASSERT_TRUE(sim->SetInput("in", x).ok());
  const Status st = sim->Run();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("fault: undeclared read"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("declares only 36 bytes"), std::string::npos) << st.message();
}

// The estimate is the compiler's time model run on the same program
// (aie::Timeline): on a compiled model it equals the compile's total, and the
// simulated time (the same rule, implemented independently here) agrees.
TEST(SimExec, EstimateIsTheCompilersTimeModel) {
  const aie::Target t = aie::Target::Paper(2, 2);
  const int64_t n = 40000;
  aie::Program p = BaseProgram(2, 2, n);
  p.symbols.push_back(Sym("y", aie::DdrSymbol::Kind::kOutput, 0, n));
  aie::Block b;
  Instruction f;
  f.op = Opcode::kFill;
  f.dst = {MemSpace::Memtile(0)};
  f.dst_ap = Linear(0, n);
  b.instrs.push_back(f);
  b.instrs.push_back(
      Xfer(Opcode::kWrite, MemSpace::Memtile(0), Linear(0, n), {MemSpace::Ddr()}, Linear(0, n)));
  p.blocks.push_back(b);
  auto sim = Simulator::Create(p, t);
  ASSERT_TRUE(sim.ok()) << sim.status().message();
  ASSERT_TRUE(sim->Run().ok());
  const double one = t.transfer_cycles(aie::Link::kMemtileToDdr, n);
  EXPECT_DOUBLE_EQ(sim->stats().total_cycles, one);
  EXPECT_DOUBLE_EQ(sim->stats().estimate_cycles, one);
  EXPECT_DOUBLE_EQ(sim->stats().layers.at(0).estimate, one);
  // Given per-layer estimates replace it (and must match the layer count).
  auto again = Simulator::Create(p, t);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->SetLayerEstimates({1.0, 2.0}, "x").ok());
  ASSERT_TRUE(again->SetLayerEstimates({2 * one}, "layers.tsv").ok());
  ASSERT_TRUE(again->Run().ok());
  EXPECT_DOUBLE_EQ(again->stats().estimate_cycles, 2 * one);
  EXPECT_NE(again->Report().find("sim/est 0.500"), std::string::npos) << again->Report();
}

}  // namespace
}  // namespace wbs::sim

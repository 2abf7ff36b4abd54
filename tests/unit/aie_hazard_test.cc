// Data hazards on exact footprints (aie/program.h Overlaps, aie/timeline.h
// HazardTracker): strided patterns that interleave without sharing a byte
// do not order each other, ones that share a byte do, in the compiler's
// time model and in the simulator alike; and the CIN-split weight blob
// format (bias in the first part, mult/shift in the last).
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <set>

#include "aie/program.h"
#include "aie/target.h"
#include "aie/timeline.h"
#include "sim/simulator.h"

namespace wbs::aie {
namespace {

// The bytes of a pattern in iteration `it`, by walking every element
// (bounded dimensions skip their out-of-bound elements).
std::set<int64_t> Walk(const AccessPattern& ap, int64_t it) {
  std::set<int64_t> s;
  int64_t i[4];
  for (i[3] = 0; i[3] < ap.size[3]; ++i[3])
    for (i[2] = 0; i[2] < ap.size[2]; ++i[2])
      for (i[1] = 0; i[1] < ap.size[1]; ++i[1])
        for (i[0] = 0; i[0] < ap.size[0]; ++i[0]) {
          int64_t a = ap.base + (it & 1) * ap.pong;
          bool in = true;
          for (int d = 0; d < 4; ++d) {
            const int64_t v = ap.start[d] + it * ap.step[d] + i[d];
            if (ap.bound[d] > 0 && (v < 0 || v >= ap.bound[d])) in = false;
            a += v * ap.stride[d];
          }
          if (!in) continue;
          for (int b = 0; b < ap.elem; ++b) s.insert(a + b);
        }
  return s;
}

std::set<int64_t> Walk(const Footprint& f) {
  std::set<int64_t> s;
  int64_t i[4] = {0, 0, 0, 0};
  std::function<void(int, int64_t)> rec = [&](int d, int64_t a) {
    if (d == f.nd) {
      for (int64_t b = 0; b < f.run; ++b) s.insert(a + b);
      return;
    }
    for (i[d] = 0; i[d] < f.count[static_cast<size_t>(d)]; ++i[d])
      rec(d + 1, a + i[d] * f.stride[static_cast<size_t>(d)]);
  };
  if (!f.empty()) rec(0, f.lo);
  return s;
}

// The [c][y][x0, x0 + w) tile of a C x H x W byte tensor at `base`.
AccessPattern Tile(int64_t base, int64_t c, int64_t h, int64_t width, int64_t x0, int64_t w) {
  AccessPattern a;
  a.base = base + x0;
  a.size = {w, h, c, 1};
  a.stride = {1, width, h * width, 0};
  return a;
}

TEST(AieHazard, InterleavedColumnTilesDoNotOverlapAHaloDoes) {
  const AccessPattern c0 = Tile(0, 16, 7, 28, 0, 14), c1 = Tile(0, 16, 7, 28, 14, 14);
  const Footprint f0 = c0.Bytes(0), f1 = c1.Bytes(0);
  // The bounding ranges meet, the bytes do not.
  EXPECT_LT(f1.lo, f0.hi());
  EXPECT_FALSE(Overlaps(f0, f1));
  EXPECT_FALSE(Overlaps(f1, f0));
  // One column of halo: they share 16 x 7 bytes.
  const Footprint halo = Tile(0, 16, 7, 28, 13, 15).Bytes(0);
  EXPECT_TRUE(Overlaps(f0, halo));
  EXPECT_TRUE(Overlaps(halo, f0));
  // Full rows fold into one contiguous run.
  const Footprint whole = Tile(0, 16, 7, 7, 0, 7).Bytes(0);
  EXPECT_EQ(whole.nd, 0);
  EXPECT_EQ(whole.run, 16 * 7 * 7);
  // Different strides (an s32 tile over a u8 one in the same bytes).
  AccessPattern s32 = Tile(0, 4, 7, 28, 0, 2);
  s32.elem = 4;
  s32.stride[0] = 4;
  EXPECT_TRUE(Overlaps(s32.Bytes(0), f0));
  EXPECT_FALSE(Overlaps(s32.Bytes(0), Tile(0, 16, 7, 28, 8, 6).Bytes(0)));
}

TEST(AieHazard, FootprintsAndOverlapsMatchEnumeratedBytes) {
  std::mt19937 rng(20261127);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto random_ap = [&]() {
    AccessPattern a;
    a.base = pick(0, 40);
    a.pong = pick(0, 1) ? pick(1, 30) : 0;
    a.elem = pick(0, 3) ? 1 : 4;
    const int dims = pick(1, 3);
    int64_t extent = a.elem;
    for (int d = 0; d < dims; ++d) {
      a.size[d] = pick(1, 5);
      // Mostly nested strides (tensor tiles), sometimes arbitrary or negative.
      const int kind = pick(0, 5);
      a.stride[d] = kind < 3    ? extent + pick(0, 6)
                    : kind == 3 ? pick(1, 9)
                    : kind == 4 ? 0
                                : -pick(1, 9);
      extent = std::abs(a.stride[d]) * a.size[d] + extent;
      a.start[d] = pick(-2, 2);
      a.step[d] = pick(0, 1);
      if (pick(0, 2) == 0) a.bound[d] = pick(1, 6);
    }
    a.base += 200;  // negative strides stay at non-negative addresses
    return a;
  };
  int overlapping = 0, interleaved = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const AccessPattern a = random_ap(), b = random_ap();
    const int64_t it = pick(0, 3);
    const Footprint fa = a.Bytes(it), fb = b.Bytes(it);
    const std::set<int64_t> sa = Walk(a, it), sb = Walk(b, it);
    ASSERT_EQ(Walk(fa), sa) << "trial " << trial;
    bool meet = false;
    for (int64_t x : sa) meet = meet || sb.count(x);
    ASSERT_EQ(Overlaps(fa, fb), meet) << "trial " << trial;
    ASSERT_EQ(Overlaps(fb, fa), meet) << "trial " << trial;
    overlapping += meet;
    interleaved += !meet && !sa.empty() && !sb.empty() && fa.lo < fb.hi() && fb.lo < fa.hi();
  }
  // Both outcomes are exercised, including disjoint sets whose bounds meet.
  EXPECT_GT(overlapping, 300);
  EXPECT_GT(interleaved, 100);
}

Instruction Write(int mt, const AccessPattern& src, const AccessPattern& dst) {
  Instruction in;
  in.op = Opcode::kWrite;
  in.layer = 0;
  in.src = MemSpace::Memtile(mt);
  in.src_ap = src;
  in.dst = {MemSpace::Ddr()};
  in.dst_ap = dst;
  return in;
}

AccessPattern Linear(int64_t base, int64_t n) {
  AccessPattern a;
  a.base = base;
  a.size = {n, 1, 1, 1};
  a.stride = {1, 0, 0, 0};
  return a;
}

// Two memtiles write their column tiles of one DDR tensor (no locks: only
// data hazards order them). Disjoint tiles run at the same time; tiles that
// share a column serialize (write after write). The simulator, which also
// checks the bytes, times it exactly as the compiler's Timeline.
void TwoColumnWrites(int64_t w0, int64_t x1, double* second_start, double* sim_total,
                     double* estimate) {
  const Target t = Target::Paper(2, 2);
  const int64_t c = 8, h = 6, width = 16, w1 = width - x1;
  Program p;
  p.target = t.name;
  p.rows = p.cols = p.memtiles = 2;
  p.ddr_bytes = c * h * width;
  p.memtile_bytes = 512 * 1024;
  p.core_bytes = 64 * 1024;
  p.layers.push_back({"out", "Identity", 0, 0});
  DdrSymbol y;
  y.name = "y";
  y.kind = DdrSymbol::Kind::kOutput;
  y.size = p.ddr_bytes;
  y.shape = {1, c, h, width};
  p.symbols.push_back(y);
  Block b;
  for (int mt = 0; mt < 2; ++mt) {
    Instruction f;
    f.op = Opcode::kFill;
    f.layer = 0;
    f.dst = {MemSpace::Memtile(mt)};
    f.dst_ap = Linear(0, c * h * width);
    f.fill_value = 10 + mt;
    b.instrs.push_back(f);
  }
  b.instrs.push_back(Write(0, Linear(0, c * h * w0), Tile(0, c, h, width, 0, w0)));
  b.instrs.push_back(Write(1, Linear(0, c * h * w1), Tile(0, c, h, width, x1, w1)));
  p.blocks.push_back(b);
  Timeline tl(t, 1.0, p);
  for (const Instruction& in : p.blocks[0].instrs) {
    const Timeline::Slot s = tl.Schedule(in, 0);
    if (&in == &p.blocks[0].instrs.back()) *second_start = s.start;
  }
  auto sim = sim::Simulator::Create(p, t);
  ASSERT_TRUE(sim.ok()) << sim.status().message();
  ASSERT_TRUE(sim->Run().ok());
  *sim_total = sim->stats().total_cycles;
  *estimate = sim->stats().estimate_cycles;
  EXPECT_DOUBLE_EQ(tl.horizon(), *estimate);
  // The bytes: the second memtile's tile from column x1 on; in a shared
  // column the later write (program order) wins.
  auto out = sim->ReadSymbol("y");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[static_cast<size_t>(x1 - 1)], 10);
  EXPECT_EQ((*out)[static_cast<size_t>(x1)], 11);
}

TEST(AieHazard, DisjointStridedWritesOverlapInTimeSharedBytesSerialize) {
  const Target t = Target::Paper(2, 2);
  double start = -1, total = 0, est = 0;
  TwoColumnWrites(8, 8, &start, &total, &est);
  const double one = t.transfer_cycles(Link::kMemtileToDdr, 8 * 6 * 8);
  EXPECT_DOUBLE_EQ(start, 0.0);  // no false write-after-write
  EXPECT_DOUBLE_EQ(total, one);
  EXPECT_DOUBLE_EQ(est, total);
  // A one-column overlap is a real hazard: the second waits for the first.
  TwoColumnWrites(9, 8, &start, &total, &est);
  const double first = t.transfer_cycles(Link::kMemtileToDdr, 8 * 6 * 9);
  EXPECT_DOUBLE_EQ(start, first);
  EXPECT_DOUBLE_EQ(total, first + one);
  EXPECT_DOUBLE_EQ(est, total);
}

TEST(AieHazard, HazardTrackerReadAfterWriteIsExact) {
  HazardTracker h;
  const MemSpace mt = MemSpace::Memtile(0);
  h.Record(mt, Tile(0, 4, 4, 8, 0, 4).Bytes(0), 100, /*write=*/true, 7);
  // A read of the other column's bytes does not wait; one of a shared byte does.
  EXPECT_DOUBLE_EQ(h.Conflict(mt, Tile(0, 4, 4, 8, 4, 4).Bytes(0), false).end, 0);
  const HazardTracker::Wait w = h.Conflict(mt, Tile(0, 4, 4, 8, 3, 2).Bytes(0), false);
  EXPECT_DOUBLE_EQ(w.end, 100);
  EXPECT_EQ(w.by, 7);
  // Another space is independent; a read after a read never waits.
  EXPECT_DOUBLE_EQ(h.Conflict(MemSpace::Memtile(1), Tile(0, 4, 4, 8, 0, 4).Bytes(0), true).end, 0);
  h.Record(mt, Footprint::Range(1000, 1100), 50, /*write=*/false, 8);
  EXPECT_DOUBLE_EQ(h.Conflict(mt, Footprint::Range(1050, 1060), false).end, 0);
  EXPECT_DOUBLE_EQ(h.Conflict(mt, Footprint::Range(1050, 1060), true).end, 50);
}

// Past the exact history, old accesses fold into ranges, not one floor: an
// old write delays a later access of its bytes, not one of another tensor.
TEST(AieHazard, OldAccessesFoldIntoRangesNotAFloor) {
  HazardTracker h;
  const MemSpace ddr = MemSpace::Ddr();
  h.Record(ddr, Footprint::Range(0, 100), 1000, /*write=*/true, 1);
  h.Record(ddr, Footprint::Range(100000, 100100), 10, /*write=*/false, 2);
  for (size_t i = 0; i < 3 * HazardTracker::kHistory; ++i)  // push both out of the history
    h.Record(ddr,
             Footprint::Range(200000 + 64 * static_cast<int64_t>(i),
                              200000 + 64 * static_cast<int64_t>(i) + 32),
             5,
             /*write=*/true, 3);
  EXPECT_DOUBLE_EQ(h.Conflict(ddr, Footprint::Range(50, 60), false).end, 1000);
  EXPECT_EQ(h.Conflict(ddr, Footprint::Range(50, 60), false).by, 1);
  EXPECT_DOUBLE_EQ(h.Conflict(ddr, Footprint::Range(5000, 5100), true).end, 0);
  EXPECT_DOUBLE_EQ(h.Conflict(ddr, Footprint::Range(100050, 100060), false).end,
                   0);  // read after read
  EXPECT_DOUBLE_EQ(h.Conflict(ddr, Footprint::Range(100050, 100060), true).end, 10);
}

}  // namespace
}  // namespace wbs::aie

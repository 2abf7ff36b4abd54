// The AIE compiler (aie/passes/): golden output of every pass on a small
// quantized model, the program's text and binary round trips, and the
// invariant checker (no overlap, no capacity exceeded, no read of unwritten
// bytes, locks never block, MAC totals) on several targets, dense and sparse.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "aie/passes/compiler.h"
#include "aie/timeline.h"
#include "ir/op_schema.h"
#include "quant/ptq.h"
#include "sparse/sparsify.h"
#include "tests/unit/aie_sim_test_util.h"
#include "tests/unit/golden.h"
#include "zoo/builder.h"
#include "zoo/zoo.h"

namespace wbs::aie {
namespace {

// fmnist_resnet (28x28), seeded weights, optional L2 block masks, PTQ on
// seeded random calibration data, batch 1 with static shapes.
std::unique_ptr<ir::Graph> Int8Model(const std::string& name, double sparsity) {
  zoo::ZooOptions zo;
  zo.seed = 3;
  auto g = zoo::BuildModel(name, zo);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return QuantizeForAie<std::mt19937>(**g, sparsity, 7);
}

std::unique_ptr<ir::Graph> SmallInt8Model(double sparsity) {
  return Int8Model("fmnist_resnet", sparsity);
}

const ir::Graph& Dense() {
  static const auto g = SmallInt8Model(0.0);
  return *g;
}
const ir::Graph& Sparse() {
  static const auto g = SmallInt8Model(0.5);
  return *g;
}

CompileState CompileOn(const ir::Graph& g, const Target& t) {
  CompileState s;
  s.target = t;
  s.graph = &g;
  const Status st = Compile(s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

TEST(AieCompiler, GoldenPerPass) {
  for (const std::string& pass : PassNames()) {
    CompileState s;
    s.target = Target::Paper(2, 2);
    s.target.name = "paper-2x2";
    s.graph = &Sparse();
    std::string printed;
    ASSERT_TRUE(Compile(s, pass, &printed).ok());
    if (pass == "codegen") {
      // The first 300 lines: header, symbols, the first layers' blocks.
      size_t pos = 0;
      for (int i = 0; i < 300 && pos != std::string::npos; ++i) pos = printed.find('\n', pos + 1);
      if (pos != std::string::npos) printed.resize(pos + 1);
    }
    testing::ExpectMatchesGolden("aie_" + pass, printed);
  }
}

TEST(AieCompiler, InvariantsHoldOnEveryTargetDenseAndSparse) {
  for (const char* preset : {"paper-2x2", "paper-4x4", "paper-8x8", "phoenix"}) {
    auto t = Target::Load(preset);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    for (const ir::Graph* g : {&Dense(), &Sparse()}) {
      CompileState s = CompileOn(*g, *t);
      const Status st = CheckProgram(s);
      EXPECT_TRUE(st.ok()) << preset << ": " << st.ToString();
      EXPECT_GT(s.total_s, 0.0);
      // A layer's span never beats its roofline (a lower bound); the
      // increments (layers overlap) sum to the total.
      double sum = 0;
      for (const Layer& l : s.layers) {
        EXPECT_GE(l.span_s * (1 + 1e-9), l.bound_s) << preset << " " << l.name;
        EXPECT_LE(l.time_s, l.span_s * (1 + 1e-9)) << preset << " " << l.name;
        sum += l.time_s;
      }
      EXPECT_NEAR(sum, s.total_s, 1e-9 * s.total_s) << preset;
    }
  }
}

TEST(AieCompiler, SparseDoesFewerMacsAndIsFaster) {
  const Target t = Target::Paper(4, 4);
  CompileState d = CompileOn(Dense(), t), s = CompileOn(Sparse(), t);
  int64_t md = 0, ms = 0;
  for (const Layer& l : d.layers) md += l.macs;
  for (const Layer& l : s.layers) ms += l.macs;
  EXPECT_LT(ms, md);
  EXPECT_LT(s.total_s, d.total_s);
}

// The ideal bound is a lower bound of every roofline and estimate: its
// compute term is the effective MACs at the array's peak, its DDR read term
// every weight byte at least once (the program's LOADW bytes can only be
// more: per-core blobs repeat headers and indices, rows load copies).
TEST(AieCompiler, IdealBoundIsBelowRooflineAndEstimate) {
  for (const char* preset : {"paper-2x2", "paper-4x4"}) {
    auto t = Target::Load(preset);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    double dense_weight = 0;
    for (const ir::Graph* g : {&Dense(), &Sparse()}) {
      const CompileState s = CompileOn(*g, *t);
      const CompileState::Ideal& b = s.ideal;
      int64_t macs = 0, loadw = 0;
      for (const Layer& l : s.layers) macs += l.macs;
      for (const Block& blk : s.program.blocks)
        for (const Instruction& in : blk.instrs)
          if (in.op == Opcode::kLoadW) loadw += in.bytes() * blk.iterations;
      EXPECT_NEAR(b.compute_s, static_cast<double>(macs) / t->peak_macs_per_second(), 1e-12)
          << preset;
      EXPECT_GT(b.weight_bytes, 0) << preset;
      EXPECT_LE(b.weight_bytes, loadw) << preset;
      EXPECT_GT(b.input_bytes, 0) << preset;
      EXPECT_GT(b.output_bytes, 0) << preset;
      EXPECT_EQ(b.total_s, std::max({b.compute_s, b.read_s, b.write_s})) << preset;
      EXPECT_LE(b.total_s, b.layers_s + 1e-12) << preset;
      EXPECT_LE(b.layers_s, s.bound_s + 1e-12) << preset;
      EXPECT_LE(s.bound_s, s.total_s + 1e-12) << preset;
      if (g == &Dense())
        dense_weight = static_cast<double>(b.weight_bytes);
      else
        EXPECT_LT(static_cast<double>(b.weight_bytes), 0.7 * dense_weight) << preset;
    }
  }
}

// Width over every core (Layer::wide): the small model's 3x3 compile puts
// layer1.x.conv1 and conv2 in it. Every core has
// every output channel and its own slice of its column's width share (the
// column's cores cover the share exactly once), gets its own input tile
// (no broadcast down the column), and the program stays valid.
TEST(AieCompiler, WidthOverEveryCoreSlicesTheColumnShares) {
  const Target t = Target::Paper(3, 3);
  const CompileState s = CompileOn(Sparse(), t);
  ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
  int wide = 0;
  for (const Layer& l : s.layers) {
    if (!l.wide) continue;
    ++wide;
    EXPECT_FALSE(l.cout_only) << l.name;
    for (int c = 0; c < l.cols_used; ++c) {
      int64_t x = l.ow * c / l.cols_used;  // the 2-D split's share [x, ..)
      for (int r = 0; r < l.rows_used; ++r) {
        const CoreWork* w = nullptr;
        for (const CoreWork& cw : l.cores)
          if (cw.row == r && cw.col == c) w = &cw;
        ASSERT_NE(w, nullptr) << l.name;
        EXPECT_EQ(w->x0, x) << l.name;
        EXPECT_GT(w->x1, w->x0) << l.name;
        EXPECT_EQ(w->m0, 0) << l.name;
        EXPECT_EQ(w->m1, l.m) << l.name;
        x = w->x1;
      }
      EXPECT_EQ(x, l.ow * (c + 1) / l.cols_used) << l.name;
    }
    int64_t macs = 0;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      const Block& b = s.program.blocks[static_cast<size_t>(bi)];
      for (const Instruction& in : b.instrs) {
        if (in.op == Opcode::kLoadFm) {
          EXPECT_EQ(in.dst.size(), 1u) << l.name;
        }
        if (in.op == Opcode::kComp) macs += in.comp.macs * b.iterations;
      }
    }
    EXPECT_EQ(macs, l.macs) << l.name;
  }
  EXPECT_GT(wide, 0);
}

// 1x1 strided convs (the downsample shortcuts) read only the pixels they
// use: their COMPs run stride 1 on tiles the size of their output, and the
// input transfers step by the stride (from DDR or a resident input).
TEST(AieCompiler, StridedOneByOneConvsReadASubsampledInput) {
  for (const Target& t : {Target::Paper(2, 2), Target::Paper(4, 4)}) {
    const CompileState s = CompileOn(Sparse(), t);
    ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
    int n = 0;
    for (const Layer& l : s.layers) {
      const bool strided_1x1 =
          l.kind == LayerKind::kConv && l.kh == 1 && l.kw == 1 && l.sh * l.sw > 1;
      EXPECT_EQ(l.subsample, strided_1x1) << l.name;
      if (!l.subsample) continue;
      ++n;
      int stepped = 0;
      for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
        for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs) {
          if (in.op == Opcode::kComp && in.comp.kind == CompKind::kConv) {
            EXPECT_EQ(in.comp.sh, 1) << l.name;
            EXPECT_EQ(in.comp.in_h, in.comp.out_h) << l.name;
            EXPECT_EQ(in.comp.in_w, in.comp.out_w) << l.name;
          }
          const bool from_input = (in.op == Opcode::kLoad && in.src.kind == MemKind::kDdr) ||
                                  (in.op == Opcode::kLoadFm && l.in_resident);
          if (from_input && in.src_ap.stride[0] == l.sw) ++stepped;
        }
      }
      EXPECT_GT(stepped, 0) << l.name;
    }
    EXPECT_GT(n, 0);
  }
}

// Compile() also tries residency for the wider channels-over-every-core
// layers (CompileOptions::resident_min_w) and keeps the faster program: never
// slower than either compile alone, and on the small model's 2x2 compile
// the sparse model's trial wins (layer2.1.conv1 keeps the 2-D split).
TEST(AieCompiler, ResidencyTrialKeepsTheFasterProgram) {
  const Target t = Target::Paper(2, 2);
  for (const ir::Graph* g : {&Dense(), &Sparse()}) {
    CompileState both, plain, forced;
    both.target = plain.target = forced.target = t;
    both.graph = plain.graph = forced.graph = g;
    // (Without the wide trial, which runs after this one.)
    both.options.try_wide = plain.options.try_wide = forced.options.try_wide = false;
    ASSERT_TRUE(Compile(both).ok());
    plain.options.try_resident_min_w = false;
    forced.options.resident_min_w = 2 * t.cols;
    ASSERT_TRUE(Compile(plain).ok());
    ASSERT_TRUE(Compile(forced).ok());
    EXPECT_EQ(both.total_s, std::min(plain.total_s, forced.total_s));
    EXPECT_TRUE(CheckProgram(forced).ok()) << CheckProgram(forced).ToString();
    if (g == &Sparse()) {
      EXPECT_LT(forced.total_s, plain.total_s);
    }
  }
}

// CompileOptions::wide forces the wide split on a layer (when a wide tile
// fits) or excludes it; Compile()'s trial with it on the memtile->core
// bound layers never returns a slower program than without the trial.
TEST(AieCompiler, WideTrialAndForcedWideSplits) {
  const Target t = Target::Paper(2, 2);
  for (const ir::Graph* g : {&Dense(), &Sparse()}) {
    const CompileState both = CompileOn(*g, t);
    CompileState plain;
    plain.target = t;
    plain.graph = g;
    plain.options.try_wide = false;
    ASSERT_TRUE(Compile(plain).ok());
    EXPECT_LE(both.total_s, plain.total_s);
    // Force it on every 2-D 1x1 conv of the plain compile that is not wide.
    CompileState forced;
    forced.target = t;
    forced.graph = g;
    forced.options = plain.options;
    std::vector<std::string> names;
    for (const Layer& l : plain.layers)
      if (l.kind == LayerKind::kConv && l.groups == 1 && l.kh == 1 && !l.cout_only && !l.wide &&
          l.ow >= 2 * t.cols)
        names.push_back(l.name), forced.options.wide[l.name] = true;
    ASSERT_FALSE(names.empty());
    ASSERT_TRUE(Compile(forced).ok());
    EXPECT_TRUE(CheckProgram(forced).ok()) << CheckProgram(forced).ToString();
    for (const Layer& l : forced.layers)
      if (std::find(names.begin(), names.end(), l.name) != names.end()) {
        EXPECT_TRUE(l.wide) << l.name;
      }
  }
}

TEST(AieCompiler, ProgramRoundTripsTextAndBinary) {
  CompileState s = CompileOn(Sparse(), Target::Paper(2, 2));
  const std::string text = s.program.ToText();
  auto back = Program::FromText(text, "mem");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToText(), text);
  const auto bin = s.program.ToBinary();
  auto b2 = Program::FromBinary(bin, "bin");
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  EXPECT_EQ(b2->ToText(), text);
  auto bad = bin;
  bad[4] = 99;  // version
  auto e = Program::FromBinary(bad, "bad.bin");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("bad.bin: program version 99"), std::string::npos);
  auto e2 = Program::FromText("wbs-aie-program " + std::to_string(kProgramVersion) +
                                  "\nblock 1 x\n  LOAD L0 src=ddr\nend\n",
                              "t.txt");
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.status().message().find("t.txt:3:"), std::string::npos) << e2.status().message();
}

TEST(AieCompiler, CheckerCatchesAMissingTransferAndABadLock) {
  CompileState s = CompileOn(Dense(), Target::Paper(2, 2));
  ASSERT_TRUE(CheckProgram(s).ok());
  {
    CompileState bad = s;
    // Drop the first LOADFM: its COMP reads bytes nobody wrote (or its lock blocks).
    for (Block& b : bad.program.blocks) {
      auto it = std::find_if(b.instrs.begin(), b.instrs.end(),
                             [](const Instruction& i) { return i.op == Opcode::kLoadFm; });
      if (it != b.instrs.end()) {
        b.instrs.erase(it);
        break;
      }
    }
    EXPECT_FALSE(CheckProgram(bad).ok());
  }
  {
    CompileState bad = s;
    for (Block& b : bad.program.blocks)
      for (Instruction& i : b.instrs)
        if (i.op == Opcode::kComp) i.comp.macs += 1;
    const Status st = CheckProgram(bad);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("effective MACs"), std::string::npos) << st.message();
  }
}

TEST(AieCompiler, BalanceEqualizesNonZeroBlocks) {
  CompileState s = CompileOn(Sparse(), Target::Paper(4, 4));
  for (const Layer& l : s.layers) {
    if (l.kind != LayerKind::kConv) continue;
    int64_t total = 0;
    for (int64_t v : l.row_nnz) total += v;
    EXPECT_GE(l.imbalance, 0.0);
    // Contiguous ranges: the largest group exceeds the mean by at most one block row.
    int64_t mx_row = 0;
    for (int64_t v : l.row_nnz) mx_row = std::max(mx_row, v);
    const double mean =
        static_cast<double>(total) / std::max(1, l.rows_used * (l.cout_only ? l.cols_used : 1));
    EXPECT_LE(l.imbalance * mean, mx_row + 1e-9) << l.name;
  }
}

TEST(AieCompiler, ResidualAddIsFusedIntoTheConvBeforeIt) {
  const Target t = Target::Paper(4, 4);
  CompileState fused = CompileOn(Dense(), t);
  CompileState plain;
  plain.target = t;
  plain.graph = &Dense();
  plain.options.fuse_add = false;
  ASSERT_TRUE(Compile(plain).ok());
  int n = 0;
  for (const Layer& l : fused.layers) {
    if (l.fused_into < 0) continue;
    ++n;
    const Layer& c = fused.layers[static_cast<size_t>(l.fused_into)];
    EXPECT_EQ(c.fused_add, static_cast<int>(&l - fused.layers.data()));
    EXPECT_EQ(l.num_blocks, 0) << l.name;
    EXPECT_EQ(l.time_s, 0.0) << l.name;
    EXPECT_EQ(c.parts, 1) << c.name;
    // The conv's blocks compute the Add and write the Add's output, never the conv's own.
    int adds = 0;
    for (int bi = c.first_block; bi < c.first_block + c.num_blocks; ++bi)
      for (const Instruction& in : fused.program.blocks[static_cast<size_t>(bi)].instrs)
        adds += in.op == Opcode::kComp && in.comp.kind == CompKind::kAdd;
    EXPECT_GT(adds, 0) << c.name;
  }
  EXPECT_GT(n, 0);
  for (const Layer& l : plain.layers) EXPECT_LT(l.fused_into, 0);
  const Status st = CheckProgram(fused);
  EXPECT_TRUE(st.ok()) << st.ToString();
  int64_t wf = 0, wp = 0;
  for (const Layer& l : fused.layers) wf += l.ddr_write_bytes;
  for (const Layer& l : plain.layers) wp += l.ddr_write_bytes;
  EXPECT_LT(wf, wp);  // the fused convs' outputs never go to DDR
}

TEST(AieCompiler, ActivationsStayInMemtilesBetweenLayers) {
  const Target t = Target::Paper(4, 4);
  for (const ir::Graph* g : {&Dense(), &Sparse()}) {
    CompileState on = CompileOn(*g, t);
    CompileState off;
    off.target = t;
    off.graph = g;
    off.options.resident = false;
    ASSERT_TRUE(Compile(off).ok());
    ASSERT_TRUE(CheckProgram(on).ok()) << CheckProgram(on).ToString();
    int resident = 0;
    for (const ActTensor& x : on.tensors) {
      if (!x.resident) continue;
      ++resident;
      // Written by WRITEFMs into the memtile region, never by a WRITE to DDR.
      const Layer& p = on.layers[static_cast<size_t>(x.res_first)];
      EXPECT_TRUE(p.out_resident) << x.name;
      for (int bi = p.first_block; bi < p.first_block + p.num_blocks; ++bi)
        for (const Instruction& in : on.program.blocks[static_cast<size_t>(bi)].instrs)
          EXPECT_NE(in.op, Opcode::kWrite) << p.name;
    }
    EXPECT_GT(resident, 0);
    for (const ActTensor& x : off.tensors) EXPECT_FALSE(x.resident);
    int64_t rd_on = 0, rd_off = 0, wr_on = 0, wr_off = 0;
    for (const Layer& l : on.layers) rd_on += l.ddr_read_bytes, wr_on += l.ddr_write_bytes;
    for (const Layer& l : off.layers) rd_off += l.ddr_read_bytes, wr_off += l.ddr_write_bytes;
    EXPECT_LT(rd_on + wr_on, rd_off + wr_off);
    // The checker catches a resident tensor placed over a layer's slabs.
    for (const ActTensor& x : on.tensors) {
      if (!x.resident) continue;
      CompileState bad = on;
      bad.tensors[static_cast<size_t>(&x - on.tensors.data())].mt_addr = 0;
      const Status st = CheckProgram(bad);
      ASSERT_FALSE(st.ok());
      EXPECT_NE(st.message().find("overlap"), std::string::npos) << st.message();
      break;
    }
  }
}

// A residual block's output written in place of its resident shortcut
// (fusion.cc; per-column regions, or replicated ones when the block's last
// conv spreads channels over every core, CompileOptions::replica_in_place),
// and channels-over-every-core inputs loaded once per serving memtile
// (codegen SpreadInput): every memtile -> core transfer stays within the
// memtile's reach, and the checker rejects the shared region when the
// hand-over is not declared.
TEST(AieCompiler, InPlaceShortcutsAndSpreadInputs) {
  const Target t = Target::Paper(4, 4);
  CompileState s;
  s.target = t;
  s.graph = &Sparse();
  // In every trial, not only on the kept program (the default), so the
  // replicated hand-over is in the program this test checks.
  s.options.replica_in_place = true;
  ASSERT_TRUE(Compile(s).ok());
  ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
  int in_place = 0, in_place_replicated = 0;
  for (const ActTensor& x : s.tensors) {
    if (x.in_place_of < 0) continue;
    ++in_place;
    const ActTensor& o = s.tensors[static_cast<size_t>(x.in_place_of)];
    EXPECT_TRUE((x.resident && o.resident) || (x.replicated && o.replicated)) << x.name;
    in_place_replicated += x.replicated;
    EXPECT_EQ(x.mt_addr, o.mt_addr) << x.name;
    EXPECT_EQ(x.mt_bytes, o.mt_bytes) << x.name;
    EXPECT_EQ(o.res_last, x.res_first) << x.name;  // handed over in the Add's layer
  }
  EXPECT_GT(in_place, 0);
  EXPECT_GT(in_place_replicated, 0);
  int spread = 0, multi_column = 0;
  for (const Layer& l : s.layers) {
    spread += l.spread_input;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi)
      for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs) {
        if (in.op != Opcode::kLoadFm && in.op != Opcode::kLoadWm) continue;
        std::set<int> cols;
        for (const MemSpace& d : in.dst) {
          cols.insert(d.col);
          EXPECT_TRUE(
              t.memtile_reaches(t.memtile.columns[static_cast<size_t>(in.src.index)], d.col))
              << l.name << ": " << MemSpaceName(in.src) << " -> " << MemSpaceName(d);
        }
        if (l.spread_input && in.op == Opcode::kLoadFm) multi_column += cols.size() > 1;
      }
  }
  EXPECT_GT(spread, 0);
  EXPECT_GT(multi_column, 0);
  for (const bool replicated : {false, true})
    for (const ActTensor& x : s.tensors) {
      if (x.in_place_of < 0 || x.replicated != replicated) continue;
      CompileState bad = s;
      bad.tensors[static_cast<size_t>(&x - s.tensors.data())].in_place_of = -1;
      const Status st = CheckProgram(bad);
      ASSERT_FALSE(st.ok()) << x.name;
      EXPECT_NE(st.message().find("overlap"), std::string::npos) << st.message();
      break;
    }
}

// Replicated residency (fusion.cc PlanReplicas): a channels-over-every-core
// producer writes each output tile to every memtile its column reaches; a
// consumer column reads from DDR only the channels of producer columns it
// shares no memtile with (on 4 columns, columns 0 and 3 each other's), so
// only those producer columns WRITE to DDR; Compile() keeps the faster of
// the programs with and without it.
TEST(AieCompiler, ReplicatedResidencyForChannelSplitTensors) {
  const Target t = Target::Paper(4, 4);
  CompileState on, off;
  on.target = off.target = t;
  on.graph = off.graph = &Sparse();
  on.options.try_replicate = false;
  off.options.replicate = false;
  // The input-stationary trial runs after the replication choice, from
  // whichever program that kept: off on all three compared here.
  on.options.try_in_stay = off.options.try_in_stay = false;
  ASSERT_TRUE(Compile(on).ok());
  ASSERT_TRUE(Compile(off).ok());
  ASSERT_TRUE(CheckProgram(on).ok()) << CheckProgram(on).ToString();
  int replicated = 0;
  for (const ActTensor& x : on.tensors) replicated += x.replicated;
  ASSERT_GT(replicated, 0);
  int64_t repl_loads = 0;
  for (const Layer& l : on.layers) {
    if (!l.out_repl && !l.in_repl && !l.in2_repl) continue;
    EXPECT_TRUE(l.cout_only || !l.out_repl) << l.name;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi)
      for (const Instruction& in : on.program.blocks[static_cast<size_t>(bi)].instrs) {
        if (l.out_repl && in.op == Opcode::kWriteFm) {
          // Every memtile reaching the core's column (3 for the middle columns).
          const int col = in.src.col;
          EXPECT_EQ(in.dst.size(), static_cast<size_t>(col == 0 || col == 3 ? 2 : 3)) << l.name;
          for (const MemSpace& d : in.dst) {
            EXPECT_TRUE(t.memtile_reaches(t.memtile.columns[static_cast<size_t>(d.index)], col));
          }
        }
        if (l.out_repl && in.op == Opcode::kWrite) {
          EXPECT_TRUE(in.src.index == 0 || in.src.index == 3) << l.name;
        }
        if ((l.in_repl || l.in2_repl) && in.op == Opcode::kLoad) ++repl_loads;
        if (in.op == Opcode::kLoadFm) {
          for (const MemSpace& d : in.dst) {
            EXPECT_TRUE(
                t.memtile_reaches(t.memtile.columns[static_cast<size_t>(in.src.index)], d.col))
                << l.name;
          }
        }
      }
  }
  EXPECT_GT(repl_loads, 0);  // columns 0 and 3 still read the far column's channels
  int64_t ddr_on = 0, ddr_off = 0;
  for (const Layer& l : on.layers) ddr_on += l.ddr_read_bytes + l.ddr_write_bytes;
  for (const Layer& l : off.layers) ddr_off += l.ddr_read_bytes + l.ddr_write_bytes;
  EXPECT_LT(ddr_on, ddr_off);
  CompileState both;
  both.target = t;
  both.graph = &Sparse();
  both.options.try_in_stay = false;
  ASSERT_TRUE(Compile(both).ok());
  EXPECT_LE(both.total_s, std::min(on.total_s, off.total_s) * (1 + 1e-12));
  // A replica placed over a layer's slabs is caught.
  for (size_t i = 0; i < on.tensors.size(); ++i) {
    if (!on.tensors[i].replicated) continue;
    CompileState bad = on;
    bad.tensors[i].mt_addr = 0;
    const Status st = CheckProgram(bad);
    ASSERT_FALSE(st.ok());
    break;
  }
}

// A transfer as one contiguous run of n bytes.
Instruction Xfer(Opcode op, MemSpace src, int64_t src_addr, MemSpace dst, int64_t dst_addr,
                 int64_t n, int64_t pong = 0) {
  Instruction in;
  in.op = op;
  in.src = src;
  in.src_ap.base = src_addr, in.src_ap.pong = pong;
  in.src_ap.size = {n, 1, 1, 1};
  in.src_ap.stride = {1, 0, 0, 0};
  in.dst = {dst};
  in.dst_ap = in.src_ap;
  in.dst_ap.base = dst_addr;
  return in;
}

TEST(AieTimeline, ChannelsLocksAndPingPong) {
  const Target t = Target::Paper(1, 1);
  const MemSpace mt = MemSpace::Memtile(0), core = MemSpace::Core(0, 0);
  const int64_t n = 4000;
  const double load = t.transfer_cycles(Link::kDdrToMemtile, n);
  ASSERT_GT(load, 0);
  // Three independent DDR loads, two shim read channels: the third waits for one.
  {
    Program p;
    Timeline tl(t, 1.0, p);
    for (int i = 0; i < 3; ++i) {
      const Timeline::Slot s =
          tl.Schedule(Xfer(Opcode::kLoad, MemSpace::Ddr(), 0, mt, i * n, n), 0);
      EXPECT_DOUBLE_EQ(s.start, i < 2 ? 0.0 : load) << i;
    }
    EXPECT_DOUBLE_EQ(tl.horizon(), 2 * load);
  }
  // A ping/pong block (memtile -> core tile, COMP) whose compute is longer
  // than its load: the first load, then one compute per iteration.
  {
    Program p;
    for (int h = 0; h < 2; ++h) p.locks.push_back({core, h, 1});  // empty halves
    Timeline tl(t, 1.0, p);
    Instruction fm = Xfer(Opcode::kLoadFm, mt, 0, core, 0, n, n);
    fm.acquire = {{core, 0, 1, true}};
    fm.release = {{core, 2, 1, true}};
    Instruction cp;
    cp.op = Opcode::kComp;
    cp.cores = {core};
    cp.comp.in_c = 1, cp.comp.in_h = 1, cp.comp.in_w = static_cast<int32_t>(n);
    cp.comp.in = {0, n};
    cp.comp.weights = {4 * n, 0};
    cp.comp.out_c = cp.comp.out_h = cp.comp.out_w = 1;
    cp.comp.out = {3 * n, 64};
    cp.comp.macs = 256 * 3000;
    cp.acquire = {{core, 2, 1, true}};
    cp.release = {{core, 0, 1, true}};
    const double l = t.transfer_cycles(Link::kMemtileToCore, n), c = 3000;
    ASSERT_LT(l, c);
    const int iters = 4;
    for (int it = 0; it < iters; ++it) {
      tl.Schedule(fm, it);
      tl.Schedule(cp, it);
    }
    EXPECT_DOUBLE_EQ(tl.horizon(), l + iters * c);
  }
}

// Partial residency (CompileOptions::resident_partial): a tensor some of
// whose consumers cannot read the per-column shares stays resident for the
// others; its producer also WRITEs each tile from its memtile region to DDR,
// where the other consumers LOAD it. Compile() keeps the faster of the
// programs with and without it.
TEST(AieCompiler, PartialResidencyWritesDdrForTheOtherConsumers) {
  int found = 0;
  for (const Target& t : {Target::Paper(2, 2), Target::Paper(3, 3), Target::Paper(4, 4)})
    for (const ir::Graph* g : {&Dense(), &Sparse()}) {
      CompileState on, off;
      on.target = off.target = t;
      on.graph = off.graph = g;
      on.options.resident_partial = true;  // opt-in (the default is off)
      on.options.try_resident_partial = false;
      off.options.resident_partial = false;
      off.options.try_partial_kept = false;
      ASSERT_TRUE(Compile(on).ok());
      ASSERT_TRUE(Compile(off).ok());
      ASSERT_TRUE(CheckProgram(on).ok()) << CheckProgram(on).ToString();
      for (const ActTensor& x : off.tensors) EXPECT_FALSE(x.resident_ddr) << x.name;
      for (size_t ti = 0; ti < on.tensors.size(); ++ti) {
        const ActTensor& x = on.tensors[ti];
        if (!x.resident_ddr) continue;
        ++found;
        EXPECT_TRUE(x.resident) << x.name;
        const Layer& pl = on.layers[static_cast<size_t>(x.res_first)];
        EXPECT_TRUE(pl.out_resident) << x.name;
        int writes = 0;
        for (int bi = pl.first_block; bi < pl.first_block + pl.num_blocks; ++bi)
          for (const Instruction& in : on.program.blocks[static_cast<size_t>(bi)].instrs)
            if (in.op == Opcode::kWrite && in.src.kind == MemKind::kMemtile &&
                in.src_ap.base >= x.mt_addr && in.src_ap.base < x.mt_addr + x.mt_bytes)
              ++writes;
        EXPECT_GT(writes, 0) << x.name;
        // Some consumer reads it from DDR, not from the region.
        int ddr_readers = 0;
        for (const int ci : x.consumers) {
          const Layer& cl = on.layers[static_cast<size_t>(ci)];
          const Layer& rl = cl.fused_into >= 0 ? on.layers[static_cast<size_t>(cl.fused_into)] : cl;
          const bool second = cl.fused_into >= 0;
          ddr_readers += second ? !rl.in2_resident : !rl.in_resident;
        }
        EXPECT_GT(ddr_readers, 0) << x.name;
      }
      CompileState both;
      both.target = t;
      both.graph = g;
      both.options.resident_partial = true;
      ASSERT_TRUE(Compile(both).ok());
      EXPECT_LE(both.total_s, std::min(on.total_s, off.total_s) * (1 + 1e-12)) << t.name;
    }
  EXPECT_GT(found, 0);
}

// Without the opt-in, Compile() compiles the kept program once more with
// partial residency (CompileOptions::try_partial_kept) and keeps the faster:
// never slower than without that trial, and faster where it kept a tensor
// partially resident.
TEST(AieCompiler, PartialResidencyTriedOnTheKeptProgram) {
  int kept = 0;
  for (const Target& t : {Target::Paper(2, 2), Target::Paper(3, 3), Target::Paper(4, 4)})
    for (const ir::Graph* g : {&Dense(), &Sparse()}) {
      CompileState def, no;
      def.target = no.target = t;
      def.graph = no.graph = g;
      no.options.try_partial_kept = false;
      ASSERT_TRUE(Compile(def).ok());
      ASSERT_TRUE(Compile(no).ok());
      EXPECT_LE(def.total_s, no.total_s) << t.name;
      for (const ActTensor& x : no.tensors) EXPECT_FALSE(x.resident_ddr) << x.name;
      bool partial = false;
      for (const ActTensor& x : def.tensors) partial |= x.resident_ddr;
      if (!partial) continue;
      ++kept;
      EXPECT_LT(def.total_s, no.total_s) << t.name;
      const Status st = CheckProgram(def);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
  EXPECT_GT(kept, 0);
}

// An Add whose other input's conv is moved right before it
// (CompileOptions::add_partner) fuses into that conv instead of the one
// before it in the graph's order (ResNet-50 layer4.0.add: its downsample
// conv has CIN parts, which a fused tile cannot have; conv3 has none).
TEST(AieCompiler, AddFusesIntoItsOtherInputsConvWhenMoved) {
  for (const ir::Graph* g : {&Dense(), &Sparse()}) {
    CompileState def, moved;
    def.target = moved.target = Target::Paper(2, 2);
    def.graph = moved.graph = g;
    def.options.try_add_partner = moved.options.try_add_partner = false;
    moved.options.add_partner["layer2.0.add"] = true;
    ASSERT_TRUE(Compile(def).ok());
    ASSERT_TRUE(Compile(moved).ok());
    auto index = [](const CompileState& s, const std::string& name) {
      for (size_t i = 0; i < s.layers.size(); ++i)
        if (s.layers[i].name == name) return static_cast<int>(i);
      return -1;
    };
    const int add = index(def, "layer2.0.add");
    ASSERT_GE(add, 0);
    // The graph's order: conv2, downsample, add; the Add in the downsample.
    EXPECT_EQ(index(def, "layer2.0.downsample.0"), add - 1);
    EXPECT_EQ(def.layers[static_cast<size_t>(add)].fused_into, add - 1);
    // Moved: downsample, conv2, add; the Add in conv2.
    EXPECT_EQ(index(moved, "layer2.0.add"), add);
    EXPECT_EQ(index(moved, "layer2.0.conv2"), add - 1);
    EXPECT_LT(index(moved, "layer2.0.downsample.0"), add - 1);
    EXPECT_EQ(moved.layers[static_cast<size_t>(add)].fused_into, add - 1);
    EXPECT_EQ(moved.layers[static_cast<size_t>(add - 1)].fused_add, add);
    // Every tensor's producer precedes its consumers.
    for (const ActTensor& x : moved.tensors)
      for (const int c : x.consumers) EXPECT_LT(x.producer, c) << x.name;
    const Status st = CheckProgram(moved);
    EXPECT_TRUE(st.ok()) << st.ToString();
    ExpectSimBitExact<std::mt19937>(moved, *g, 11, "add partner");
  }
}

// With CIN parts, part p+1's input tile and weight blob go to the other
// core half than part p's (by iteration, every part of an iteration would
// share one half and wait for the previous part's COMP).
TEST(AieCompiler, CinPartsAlternateInputAndWeightHalves) {
  CompileState s = CompileOn(Sparse(), Target::Paper(2, 2));
  ASSERT_TRUE(CheckProgram(s).ok());
  int split_layers = 0;
  for (const Layer& l : s.layers) {
    if (l.parts < 2) continue;
    ++split_layers;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      std::map<MemSpace, const Instruction*> prev;  // the core's previous conv COMP in the block
      for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs) {
        if (in.op != Opcode::kComp || in.comp.kind != CompKind::kConv) continue;
        const MemSpace core = in.cores.at(0);
        if (const auto it = prev.find(core); it != prev.end()) {
          const CompParams& a = it->second->comp;
          EXPECT_NE(a.weights.addr, in.comp.weights.addr) << l.name;
          EXPECT_NE(a.in.addr, in.comp.in.addr) << l.name;
          EXPECT_NE(it->second->acquire.at(0).id, in.acquire.at(0).id) << l.name;
        }
        prev[core] = &in;
      }
    }
  }
  EXPECT_GT(split_layers, 0);
}

// The rows of a 2-D split take their weights from two disjoint server
// covers in turn, so every memtile's DDR read channels carry weights (one
// cover on 4 columns uses memtiles 1 and 3 only).
TEST(AieCompiler, WeightLoadsUseEveryMemtile) {
  CompileState s = CompileOn(Sparse(), Target::Paper(4, 4));
  std::map<int, int64_t> bytes;
  for (const Layer& l : s.layers) {
    if (l.cout_only || l.rows_used < 2 || l.cols_used != 4) continue;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      const Block& b = s.program.blocks[static_cast<size_t>(bi)];
      for (const Instruction& in : b.instrs)
        if (in.op == Opcode::kLoadW) bytes[in.dst.at(0).index] += in.bytes() * b.iterations;
    }
  }
  for (int m = 0; m < 4; ++m) EXPECT_GT(bytes[m], 0) << "memtile " << m;
}

// Kept CIN parts (Layer::w_kept): each part's blob comes from DDR in the
// chunk's first (peeled) row iteration only; the iterated blocks after it
// move blobs memtile -> core (LOADWM) but load none (LOADW).
TEST(AieCompiler, KeptCinPartsLoadWeightsOncePerChunk) {
  // ResNet-18's 56x56 layers stream several row iterations per chunk
  // (fmnist_resnet's maps fit one iteration).
  const auto g = Int8Model("resnet18", 0.5);
  const CompileState s = CompileOn(*g, Target::Paper(4, 4));
  int iterated = 0;
  for (const Layer& l : s.layers) {
    if (!l.w_kept) continue;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      const Block& b = s.program.blocks[static_cast<size_t>(bi)];
      int loadw = 0, loadwm = 0;
      for (const Instruction& in : b.instrs)
        loadw += in.op == Opcode::kLoadW, loadwm += in.op == Opcode::kLoadWm;
      EXPECT_GT(loadwm, 0) << b.label;
      if (b.iterations > 1) {
        ++iterated;
        EXPECT_EQ(loadw, 0) << b.label;
      }
    }
  }
  EXPECT_GT(iterated, 0);
}

// Balance permutes a conv's output channels (8-channel block rows) where
// only convs read them (through pools), so each channel chunk and CIN part
// is balanced over the cores sharing its input; the readers' weight columns
// move with them (the network's result is unchanged: SimE2E checks it bit
// for bit). Rows are only reordered, never changed, and a conv whose output
// something else reads (a fused Add, the graph output) keeps its order.
TEST(AieCompiler, BalancePermutesOutputChannelsOnlyWhereConvsReadThem) {
  const Target t = Target::Paper(4, 4);
  CompileState a;
  a.target = t;
  a.graph = &Sparse();
  a.options.try_permute = false;  // keep the permuted program even where it is slower
  ASSERT_TRUE(Compile(a).ok());
  CompileState b;
  b.target = t;
  b.graph = &Sparse();
  b.options.permute_channels = false;
  ASSERT_TRUE(Compile(b).ok());
  ASSERT_EQ(a.layers.size(), b.layers.size());
  int permuted = 0;
  double imb_a = 0, imb_b = 0;
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const Layer& x = a.layers[i];
    const Layer& y = b.layers[i];
    if (x.kind != LayerKind::kConv) continue;
    std::vector<int64_t> nx = x.row_nnz, ny = y.row_nnz;
    EXPECT_EQ(x.macs, y.macs) << x.name;
    std::sort(nx.begin(), nx.end());
    std::sort(ny.begin(), ny.end());
    EXPECT_EQ(nx, ny) << x.name;
    const bool fixed = x.fused_add >= 0 ||
                       std::find(a.outputs.begin(), a.outputs.end(), x.output) != a.outputs.end();
    if (fixed) {
      EXPECT_EQ(x.bias, y.bias) << x.name;
      EXPECT_EQ(x.row_nnz, y.row_nnz) << x.name;
    }
    if (x.bias != y.bias) {
      EXPECT_TRUE(x.permuted) << x.name;
    }
    if (x.bias != y.bias) {
      ++permuted;
      // Same multiset of (bias, mult, shift) per channel: a permutation.
      std::vector<std::tuple<int32_t, int32_t, int32_t>> px, py;
      for (size_t c = 0; c < x.bias.size(); ++c) {
        px.emplace_back(x.bias[c], x.mult[c], x.shift[c]);
        py.emplace_back(y.bias[c], y.mult[c], y.shift[c]);
      }
      std::sort(px.begin(), px.end());
      std::sort(py.begin(), py.end());
      EXPECT_EQ(px, py) << x.name;
      imb_a += x.imbalance, imb_b += y.imbalance;
    }
  }
  EXPECT_GT(permuted, 0);
  EXPECT_LE(imb_a, imb_b);
}

// Weight buffers sized for the most non-zero blocks a chunk can hold
// (CompileOptions::sparse_w): every blob still fits its slot (compact
// checks it), the checker passes, and some chunk without CIN parts gets a
// buffer smaller than a dense chunk's blob.
TEST(AieCompiler, SparseWeightBuffersHoldEveryChunk) {
  CompileState s;
  s.target = Target::Paper(4, 4);
  s.graph = &Sparse();
  s.options.try_sparse_w = false;
  {
    CompileState probe = CompileOn(Sparse(), s.target);
    for (const Layer& l : probe.layers)
      if (l.kind == LayerKind::kConv) s.options.sparse_w[l.name] = true;
  }
  ASSERT_TRUE(Compile(s).ok());
  ASSERT_TRUE(CheckProgram(s).ok());
  int smaller = 0;
  for (const Layer& l : s.layers) {
    if (l.kind != LayerKind::kConv || l.parts != 1 || l.groups != 1) continue;
    BlobHeader h;
    h.br = l.br, h.bc = l.bc, h.kh = static_cast<int32_t>(l.kh), h.kw = static_cast<int32_t>(l.kw);
    h.block_rows = static_cast<int32_t>(l.mt_rows);
    h.nnz = static_cast<int32_t>(l.mt_rows * ((l.c + l.bc - 1) / l.bc));
    const int64_t dense = (BlobBytes(h) + 63) / 64 * 64;
    EXPECT_LE(l.w_bytes, dense) << l.name;
    smaller += l.w_bytes < dense;
    for (const auto& blob : l.blobs)
      EXPECT_LE(static_cast<int64_t>(blob.size()), l.w_bytes) << l.name;
  }
  EXPECT_GT(smaller, 0);
}

// Two core weight halves forced on every conv (CompileOptions::w_double):
// pass 2 picks tiles with room for them, so every conv without CIN parts
// and with more than one weight block gets them (memplan would fail
// otherwise), the checker passes, and Compile()'s trial keeps a program
// no slower than without it.
TEST(AieCompiler, DoubleWeightBuffersForcedOnMultiBlockConvs) {
  const Target t = Target::Paper(2, 2);
  CompileState s;
  s.target = t;
  s.graph = &Sparse();
  s.options.try_w_double = false;
  s.options.try_in_stay = false;  // a later trial, which starts from this one's choice
  CompileState plain = s;
  ASSERT_TRUE(Compile(plain).ok());
  for (const Layer& l : plain.layers)
    if (l.kind == LayerKind::kConv) s.options.w_double[l.name] = true;
  ASSERT_TRUE(Compile(s).ok());
  ASSERT_TRUE(CheckProgram(s).ok());
  int doubled = 0, newly = 0;
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const Layer& l = s.layers[i];
    if (l.kind != LayerKind::kConv || l.parts != 1) continue;
    int64_t wchunks = 0;
    for (const CoreWork& w : l.cores)
      wchunks = std::max(wchunks, (w.x1 - w.x0 + l.ow_t - 1) / l.ow_t);
    if (l.chunks * wchunks < 2) continue;
    EXPECT_TRUE(l.w_double) << l.name;
    EXPECT_EQ(l.core_w_halves(), 2) << l.name;
    doubled += l.w_double;
    newly += l.w_double && !plain.layers[i].w_double;
  }
  EXPECT_GT(doubled, 0);
  EXPECT_GT(newly, 0);
  CompileState tried;
  tried.target = t;
  tried.graph = &Sparse();
  tried.options.try_in_stay = false;
  ASSERT_TRUE(Compile(tried).ok());
  EXPECT_LE(tried.total_s, plain.total_s);
}

// Input-stationary core tiles forced on every conv (CompileOptions::in_stay):
// where such a tile fits, the layer's input reaches each core once (only
// chunk 0's block moves it) however many channel chunks follow, the weight
// blobs alternate two core halves, the checker passes, and the program
// simulates bit-exactly in the estimated cycles (dense and 50% sparse).
TEST(AieCompiler, InputStationaryTilesLoadTheInputOnce) {
  int single = 0;  // single-chunk 1x1 tiles
  for (const Target& t : {Target::Paper(2, 2), Target::Paper(4, 4)}) {
    for (const ir::Graph* g : {&Dense(), &Sparse()}) {
      CompileState s;
      s.target = t;
      s.graph = g;
      s.options.try_in_stay = false;
      {
        const CompileState probe = CompileOn(*g, t);
        for (const Layer& l : probe.layers)
          if (l.kind == LayerKind::kConv) s.options.in_stay[l.name] = true;
      }
      ASSERT_TRUE(Compile(s).ok());
      ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
      int stay = 0;
      for (const Layer& l : s.layers) {
        if (!l.in_stay) continue;
        ++stay;
        EXPECT_EQ(l.oh_t, l.oh) << l.name;
        EXPECT_EQ(l.parts, 1) << l.name;
        EXPECT_EQ(l.in_bufs, 1) << l.name;
        // Two weight halves for several chunks; a single chunk's tile
        // (one block) is cut into row pieces instead (below).
        if (l.chunks > 1) {
          EXPECT_TRUE(l.w_double) << l.name;
        }
        // Blocks whose transfers write the cores' input buffer.
        int loading = 0;
        for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
          bool any = false;
          for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs)
            any |= in.op == Opcode::kLoadFm && in.dst_ap.base >= l.core_in &&
                   in.dst_ap.base < l.core_in + l.in_bytes;
          loading += any;
        }
        EXPECT_EQ(loading, 1) << l.name;
        // A single chunk's input-stationary 1x1 tile is the streaming tile
        // of one iteration unless it is cut: in row pieces without being
        // asked (CompileOptions::stay_rows not set here).
        if (l.chunks == 1 && l.kh == 1 && l.kw == 1 && !l.post_pool.on && !l.pre_pool.on &&
            !l.multi_out()) {
          ++single;
          EXPECT_EQ(l.stay_pieces, std::min(CompileOptions::kStayPieces, l.oh)) << l.name;
        } else if (l.chunks > 1) {
          EXPECT_EQ(l.stay_pieces, 1) << l.name;
        }
      }
      EXPECT_GT(stay, 0) << t.name;
      ExpectSimBitExact<std::mt19937>(s, *g, 11, "in_stay on " + t.name);
    }
  }
  EXPECT_GT(single, 0);
}

// Input-stationary tiles in row pieces (CompileOptions::stay_rows): every
// 1x1 input-stationary tile is computed as kStayPieces (at most its rows)
// COMPs per core and chunk, each on its own rows of the input (laid out
// piece after piece), the checker passes, the program simulates
// bit-exactly in the estimated cycles, and Compile()'s trial keeps a
// program no slower than without it.
TEST(AieCompiler, InputStationaryRowPieces) {
  for (const Target& t : {Target::Paper(2, 2), Target::Paper(4, 4)}) {
    for (const ir::Graph* g : {&Dense(), &Sparse()}) {
      CompileState s;
      s.target = t;
      s.graph = g;
      s.options.try_in_stay = s.options.try_stay_rows = false;
      {
        const CompileState probe = CompileOn(*g, t);
        for (const Layer& l : probe.layers)
          if (l.kind == LayerKind::kConv) s.options.in_stay[l.name] = s.options.stay_rows[l.name] = true;
      }
      ASSERT_TRUE(Compile(s).ok());
      ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
      int cut = 0;
      for (const Layer& l : s.layers) {
        if (!l.in_stay || l.kh != 1) continue;
        EXPECT_EQ(l.stay_pieces, std::min(CompileOptions::kStayPieces, l.oh)) << l.name;
        if (l.stay_pieces < 2) continue;
        ++cut;
        for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
          std::map<MemSpace, int> convs;
          for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs) {
            if (in.op != Opcode::kComp || in.comp.kind != CompKind::kConv) continue;
            ++convs[in.cores.front()];
            EXPECT_LT(in.comp.out_h, l.oh) << l.name;
            EXPECT_EQ(in.comp.in_h, (in.comp.out_h - 1) * l.tile_sh() + 1) << l.name;  // 1x1
          }
          for (const auto& [c, n] : convs) EXPECT_EQ(n, l.stay_pieces) << l.name;
        }
      }
      EXPECT_GT(cut, 0) << t.name;
      ExpectSimBitExact<std::mt19937>(s, *g, 13, "stay_rows on " + t.name);
    }
  }
  for (const ir::Graph* g : {&Dense(), &Sparse()}) {
    CompileState with, without;
    with.target = without.target = Target::Paper(4, 4);
    with.graph = without.graph = g;
    without.options.try_stay_rows = false;
    ASSERT_TRUE(Compile(with).ok());
    ASSERT_TRUE(Compile(without).ok());
    EXPECT_LE(with.total_s, without.total_s);
  }
}

// input 3x7x7 -> 3x3 conv to 512 -> 3x3 conv 512 -> 512 -> 1x1 conv to 1024
// -> GAP -> fc: the 3x3's CIN parts' blobs do not all fit a memtile
// (ResNet-50 layer4.x.conv2's shape), so they stream from DDR part by
// part; the 1x1 streams its channel chunks' blobs.
std::unique_ptr<ir::Graph> WidePartsModel(double sparsity) {
  auto g = std::make_unique<ir::Graph>();
  zoo::NetBuilder b(*g, 21);
  const float eps = 1e-3f;
  ir::Value* x = b.Input(1, 3, 7);
  x = b.BasicConv2d(x, "a", zoo::ConvK(512, 3, 1, 1), eps);
  x = b.BasicConv2d(x, "b", zoo::ConvK(512, 3, 1, 1), eps);
  x = b.BasicConv2d(x, "c", zoo::ConvK(1024, 1, 1, 0), eps);
  ir::Value* y = b.Flatten(b.GlobalAveragePool(x, "gap"), "flatten");
  g->outputs.push_back(b.Linear(y, "fc", 10, g->AddValue("logits")));
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  return QuantizeForAie<std::mt19937>(*g, sparsity, 9);
}

// Memtile weight slab rings for sparse multi-block convs (Layer::w_ring,
// memplan.cc GrowWeightRings): weight block b's blob (CIN part or channel
// chunk) goes to slab b % w_ring of its row, so a ring layer's LOADWs
// write w_ring distinct slabs per row (both kinds occur); the slabs stay
// below every resident or replicated region live during the layer
// (checker), and the program simulates bit-exactly in the estimated
// cycles. Dense layers and the option off keep two slabs.
TEST(AieCompiler, SparsePartsRotateOverAWeightSlabRing) {
  const auto dense = WidePartsModel(0.0), sparse = WidePartsModel(0.5);
  ASSERT_TRUE(dense && sparse);
  for (const Target& t : {Target::Paper(2, 2), Target::Paper(4, 4)}) {
    for (const bool ring : {true, false}) {
      for (const ir::Graph* g : {dense.get(), sparse.get()}) {
        const bool is_sparse = g == sparse.get();
        const std::string what =
            t.name + (ring ? " ring" : " no ring") + (is_sparse ? " sparse" : " dense");
        CompileState s;
        s.target = t;
        s.graph = g;
        s.options.w_ring = ring;
        s.options.try_w_ring = false;  // the schedule itself, not the trial's pick
        ASSERT_TRUE(Compile(s).ok()) << what;
        ASSERT_TRUE(CheckProgram(s).ok()) << what << ": " << CheckProgram(s).ToString();
        int part_rings = 0, chunk_rings = 0;
        for (const Layer& l : s.layers) {
          if (!ring || !is_sparse || l.w_kept || l.macs >= l.macs_dense) {
            EXPECT_EQ(l.w_ring, 2) << what << " " << l.name;
            continue;
          }
          if (l.w_ring <= 2) continue;
          ++(l.weights_per_iteration ? part_rings : chunk_rings);
          EXPECT_LE(l.w_ring, 8) << what << " " << l.name;
          if (l.weights_per_iteration) {
            EXPECT_LE(l.w_ring, l.parts) << what << " " << l.name;
          }
          // Ring positions the layer's LOADWs write (slab index within its row).
          std::set<int64_t> pos;
          for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi)
            for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs)
              if (in.op == Opcode::kLoadW)
                pos.insert((in.dst_ap.base - l.mt_w) / l.mt_w_bytes % l.w_ring);
          EXPECT_EQ(static_cast<int64_t>(pos.size()), l.w_ring) << what << " " << l.name;
          EXPECT_GE(l.mt_out, l.mt_w + l.w_ring * l.rows_used * l.mt_w_bytes)
              << what << " " << l.name;
        }
        if (ring && is_sparse) {
          EXPECT_GT(part_rings, 0) << what;
          EXPECT_GT(chunk_rings, 0) << what;
        }
        // Under a sanitizer only the ring schedules (sparse, option on) simulate.
        if (!kUnderSanitizer || (ring && is_sparse)) ExpectSimBitExact<std::mt19937>(s, *g, 17, what);
      }
    }
  }
}

// Sparse CIN parts get a third or fourth core weight buffer where it fits
// (memplan, Layer::w_bufs): a core's COMPs in a block rotate over w_bufs
// distinct blob addresses by part, every buffer inside the layer's weight
// area, never a count leaving one part over; the checker passes and the
// program simulates bit-exactly in the estimated cycles.
TEST(AieCompiler, SparseCinPartsRotateOverExtraWeightBuffers) {
  const auto g = Int8Model("resnet18", 0.5);
  const CompileState s = CompileOn(*g, Target::Paper(4, 4));
  ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
  int extra = 0;
  for (const Layer& l : s.layers) {
    if (l.parts < 2) continue;
    EXPECT_GE(l.w_bufs, 2) << l.name;
    EXPECT_EQ(l.core_w_halves(), l.w_bufs) << l.name;
    if (l.w_bufs == 2) continue;
    ++extra;
    EXPECT_LT(l.macs, l.macs_dense) << l.name;
    EXPECT_NE(l.parts % l.w_bufs, 1) << l.name;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      std::map<MemSpace, std::vector<int64_t>> addrs;  // per core, its conv COMPs' blob addresses
      for (const Instruction& in : s.program.blocks[static_cast<size_t>(bi)].instrs)
        if (in.op == Opcode::kComp && in.comp.kind == CompKind::kConv)
          addrs[in.cores.at(0)].push_back(in.comp.weights.addr);
      // Part p (COMPs in part order, parts per tile) reads buffer p mod w_bufs.
      for (const auto& [core, a] : addrs) {
        EXPECT_EQ(static_cast<int64_t>(a.size()) % l.parts, 0) << l.name;
        for (size_t i = 0; i < a.size(); ++i)
          EXPECT_EQ(a[i], l.core_w + (static_cast<int64_t>(i) % l.parts % l.w_bufs) * l.w_bytes)
              << l.name << " block " << bi << " COMP " << i;
      }
    }
  }
  EXPECT_GT(extra, 0);
  ExpectSimBitExact<std::mt19937>(s, *g, 13, "w_bufs on resnet18 paper-4x4");
}

// A sparse conv whose output is a concat slot (Inception's branch convs)
// may permute its output block rows too: its readers are the convs reading
// the concat (directly, through pools, or as a fused pool + conv), whose
// weight columns move at the slot's block offset. A small Inception-like
// block: both branches' last convs are permuted, the checker passes and
// the program simulates bit-exactly in the estimated cycles.
TEST(AieCompiler, ConcatSlotsPermuteTheirWritersOutputChannels) {
  auto f = std::make_unique<ir::Graph>();
  zoo::NetBuilder b(*f, 17);
  const float eps = 1e-3f;
  ir::Value* x = b.Input(3, 12, 12);
  ir::Value* stem = b.BasicConv2d(x, "stem", zoo::ConvK(32, 3, 1, 1), eps);
  ir::Value* b1 = b.BasicConv2d(stem, "mix.branch1x1", zoo::ConvK(32, 1), eps);
  ir::Value* b3 = b.BasicConv2d(stem, "mix.branch3x3_1", zoo::ConvK(32, 1), eps);
  b3 = b.BasicConv2d(b3, "mix.branch3x3_2", zoo::ConvK(64, 3, 1, 1), eps);
  ir::Value* b5 = b.BasicConv2d(stem, "mix.branch5x5_1", zoo::ConvK(16, 1), eps);
  b5 = b.BasicConv2d(b5, "mix.branch5x5_2", zoo::ConvK(64, 5, 1, 2), eps);
  ir::Value* cat = b.Concat({b1, b3, b5}, "mix.cat");
  ir::Value* r = b.BasicConv2d(cat, "next.branch1x1", zoo::ConvK(32, 1), eps);
  ir::Value* p = b.AveragePool(cat, "next.avg_pool", 3, 1, 1);
  p = b.BasicConv2d(p, "next.branch_pool", zoo::ConvK(32, 1), eps);
  ir::Value* y = b.Flatten(b.GlobalAveragePool(b.Concat({r, p}, "next.cat"), "gap"), "flatten");
  f->outputs.push_back(b.Linear(y, "fc", 10, f->AddValue("logits")));
  ASSERT_TRUE(b.status().ok()) << b.status().ToString();
  const auto g = QuantizeForAie<std::mt19937>(*f, 0.5, 9);
  ASSERT_TRUE(g);
  const CompileState s = CompileOn(*g, Target::Paper(4, 4));
  ASSERT_TRUE(CheckProgram(s).ok()) << CheckProgram(s).ToString();
  int slots = 0;
  for (const Layer& l : s.layers) {
    if (l.kind != LayerKind::kConv || !l.permuted) continue;
    // Its output, or the rescale's it feeds, lives in a concat.
    const ActTensor& o = s.tensors[static_cast<size_t>(l.output)];
    bool slot = o.alias_of >= 0;
    for (const int ci : o.consumers)
      slot |=
          s.layers[static_cast<size_t>(ci)].kind == LayerKind::kRescale &&
          s.tensors[static_cast<size_t>(s.layers[static_cast<size_t>(ci)].output)].alias_of >= 0;
    slots += slot;
  }
  EXPECT_GT(slots, 0);
  ExpectSimBitExact<std::mt19937>(s, *g, 19, "concat slots permuted on paper-4x4");
}

// BUILD pair fusion (postconv.cc, h_aie26): ResNet-50 at 96x96, 50%
// block-sparse, paper-4x4. layer1.0's downsample conv + Add and
// layer1.1.conv1 become one tile: conv1 emits nothing of its own, its COMPs
// (its own layer index) read the block output from the first conv's output
// buffer right after the Add COMP wrote it, and its output goes to its
// resident region; the block output is still written out for layer1.1's
// shortcut. The pair's tile is cut in equal height x width slices per
// column share (Layer::wide_ys: layer1's 24 columns over 4 core columns are
// 6 wide, over 4 core rows 1/2/1/2 wide; 2 x 2 slices of 3 x 12 are equal).
// Bit-exact in the simulator; the trial never keeps a slower program.
TEST(AieCompiler, BuildPairComputesTheNextConvOnTheBlockOutput) {
  zoo::ZooOptions zo;
  zo.seed = 3;
  zo.image_size = 96;
  auto f = zoo::BuildModel("resnet50", zo);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const auto g = QuantizeForAie<std::mt19937>(**f, 0.5, 7);
  ASSERT_NE(g, nullptr);
  const Target t = Target::Paper(4, 4);
  CompileState plain, paired, trial;
  plain.target = paired.target = trial.target = t;
  plain.graph = paired.graph = trial.graph = g.get();
  plain.options.try_post_conv = paired.options.try_post_conv = false;
  paired.options.post_conv["layer1.0.downsample.0"] = true;
  ASSERT_TRUE(Compile(plain).ok());
  std::string printed;
  ASSERT_TRUE(Compile(paired, "fusion", &printed).ok());
  // The default trial (every pair candidate compiled) is the slow part; the
  // sanitizer build checks the forced pair only.
  if (!kUnderSanitizer) {
    ASSERT_TRUE(Compile(trial).ok());
  }
  // The pair in the fusion pass's print (then / computed_after), with the
  // residency it relies on (layer1.1.conv1's output region from the first
  // conv's layer).
  testing::ExpectMatchesGolden("aie_build_pair", printed);
  if (!kUnderSanitizer) {
    EXPECT_LE(trial.total_s, plain.total_s);
  }
  auto index = [](const CompileState& s, const std::string& name) {
    for (size_t i = 0; i < s.layers.size(); ++i)
      if (s.layers[i].name == name) return static_cast<int>(i);
    return -1;
  };
  const int a = index(paired, "layer1.0.downsample.0"), b = index(paired, "layer1.1.conv1");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  const Layer& la = paired.layers[static_cast<size_t>(a)];
  const Layer& lb = paired.layers[static_cast<size_t>(b)];
  ASSERT_EQ(la.post_conv, b);
  EXPECT_EQ(lb.post_into, a);
  EXPECT_EQ(plain.layers[static_cast<size_t>(a)].post_conv, -1);
  EXPECT_TRUE(la.wide);
  EXPECT_EQ(la.chunks, 1);
  EXPECT_EQ(la.wide_ys, 2);
  EXPECT_EQ(lb.wide_ys, 2);
  for (const CoreWork& w : la.cores) {
    EXPECT_EQ(w.x1 - w.x0, 3) << w.row << "," << w.col;
    EXPECT_EQ(w.y1 - w.y0, 12) << w.row << "," << w.col;
  }
  EXPECT_EQ(lb.num_blocks, 0);
  EXPECT_TRUE(lb.out_resident);
  // The second conv's buffers sit above the first's.
  EXPECT_GE(lb.core_w, la.core_scratch + la.scratch_bytes);
  EXPECT_LE(lb.core_out + 2 * lb.out_bytes, t.core_buffer_bytes());
  // Its instructions are in the first conv's blocks: its blob's loads, its
  // COMPs on the first conv's output buffer, its WRITEFMs; no LOADFM.
  int64_t comps = 0, wfs = 0, fms = 0, macs = 0;
  for (int bi = la.first_block; bi < la.first_block + la.num_blocks; ++bi) {
    const Block& blk = paired.program.blocks[static_cast<size_t>(bi)];
    for (size_t ii = 0; ii < blk.instrs.size(); ++ii) {
      const Instruction& in = blk.instrs[ii];
      if (in.layer != b) continue;
      if (in.op == Opcode::kLoadFm) ++fms;
      if (in.op == Opcode::kWriteFm) ++wfs;
      if (in.op == Opcode::kComp) {
        ++comps;
        macs += in.comp.macs * static_cast<int64_t>(in.cores.size()) * blk.iterations;
        EXPECT_EQ(in.comp.in.addr, la.core_out);
        EXPECT_EQ(in.comp.in_c, lb.c);
        // Right after the Add COMP on the same core.
        ASSERT_GT(ii, 0u);
        EXPECT_EQ(blk.instrs[ii - 1].comp.kind, CompKind::kAdd);
        EXPECT_EQ(blk.instrs[ii - 1].cores, in.cores);
      }
    }
  }
  EXPECT_GT(comps, 0);
  EXPECT_GT(wfs, 0);
  EXPECT_EQ(fms, 0);
  EXPECT_EQ(macs, lb.macs);
  const Status st = CheckProgram(paired);
  EXPECT_TRUE(st.ok()) << st.ToString();
  ExpectSimBitExact<std::mt19937>(paired, *g, 23, "BUILD pair");
  if (!kUnderSanitizer) ExpectSimBitExact<std::mt19937>(trial, *g, 23, "BUILD pair trial");
  // Without the slices: width slices only, also bit-exact.
  CompileState cols;
  cols.target = t;
  cols.graph = g.get();
  cols.options = paired.options;
  cols.options.pair_ys = false;
  ASSERT_TRUE(Compile(cols).ok());
  EXPECT_EQ(cols.layers[static_cast<size_t>(a)].post_conv, b);
  EXPECT_EQ(cols.layers[static_cast<size_t>(a)].wide_ys, 1);
  EXPECT_TRUE(CheckProgram(cols).ok()) << CheckProgram(cols).ToString();
  if (!kUnderSanitizer) ExpectSimBitExact<std::mt19937>(cols, *g, 23, "BUILD pair, width slices");
}

}  // namespace
}  // namespace wbs::aie

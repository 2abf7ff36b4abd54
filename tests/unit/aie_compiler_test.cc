// The AIE compiler (aie/passes/): golden output of every pass on a small
// quantized model, the program's text and binary round trips, and the
// invariant checker (no overlap, no capacity exceeded, no read of unwritten
// bytes, locks never block, MAC totals) on several targets, dense and sparse.
#include <gtest/gtest.h>

#include <random>

#include "aie/passes/compiler.h"
#include "ir/op_schema.h"
#include "quant/ptq.h"
#include "sparse/sparsify.h"
#include "tests/unit/golden.h"
#include "zoo/zoo.h"

namespace wbs::aie {
namespace {

// fmnist_resnet (28x28), seeded weights, optional L2 block masks, PTQ on
// seeded random calibration data, batch 1 with static shapes.
std::unique_ptr<ir::Graph> SmallInt8Model(double sparsity) {
  zoo::ZooOptions zo;
  zo.seed = 3;
  auto g = zoo::BuildModel("fmnist_resnet", zo);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  if (sparsity > 0) {
    sparse::SparsifyOptions so;
    so.sparsity = sparsity;
    EXPECT_TRUE(sparse::Sparsify(**g, so).ok());
  }
  auto prepared = quant::PrepareFloatGraph(**g);
  EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
  Shape shape = (*prepared)->inputs.at(0)->shape;
  if (shape[0] < 0) shape[0] = 1;
  Tensor x(DType::kF32, shape);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  quant::PtqOptions po;
  auto cal = quant::Calibrate(**prepared, {x}, po);
  EXPECT_TRUE(cal.ok()) << cal.status().ToString();
  quant::PtqReport rep;
  auto q = quant::BuildQuantizedGraph(**prepared, *cal, po, &rep);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  for (ir::Value* v : (*q)->inputs)
    if (v->shape[0] < 0) v->shape[0] = 1;
  EXPECT_TRUE(ir::InferShapes(**q).ok());
  return std::move(*q);
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
  auto e2 = Program::FromText("wbs-aie-program 1\nblock 1 x\n  LOAD L0 src=ddr\nend\n", "t.txt");
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
      auto it = std::find_if(b.instrs.begin(), b.instrs.end(), [](const Instruction& i) { return i.op == Opcode::kLoadFm; });
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
    const double mean = static_cast<double>(total) / std::max(1, l.rows_used * (l.cout_only ? l.cols_used : 1));
    EXPECT_LE(l.imbalance * mean, mx_row + 1e-9) << l.name;
  }
}

}  // namespace
}  // namespace wbs::aie

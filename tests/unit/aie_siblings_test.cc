// Horizontal fusion of sibling convs (aie/passes/siblings.cc): a small
// Inception-like block whose three parallel 1x1 branch convs read the same
// tensor compiles to one multi-output conv layer; its slices land in their
// own tensors (a concat slot, the inputs of the next convs), the program
// passes the invariant checker and the simulator reproduces the CPU int8
// runtime bit for bit.
#include <gtest/gtest.h>

#include <random>

#include "aie/passes/compiler.h"
#include "ir/op_schema.h"
#include "tests/unit/aie_sim_test_util.h"
#include "zoo/builder.h"

namespace wbs::aie {
namespace {

// stem 3x3 -> {branch1x1, branch5x5_1 -> 5x5_2, branch3x3dbl_1 -> dbl_2,
// avg_pool -> branch_pool} -> concat -> GAP -> fc.
std::unique_ptr<ir::Graph> BlockModel(double sparsity) {
  auto g = std::make_unique<ir::Graph>();
  zoo::NetBuilder b(*g, 11);
  const float eps = 1e-3f;
  ir::Value* x = b.Input(1, 8, 12);
  ir::Value* stem = b.BasicConv2d(x, "stem", zoo::ConvK(32, 3, 1, 1), eps);
  ir::Value* b1 = b.BasicConv2d(stem, "mix.branch1x1", zoo::ConvK(24, 1), eps);
  ir::Value* b5 = b.BasicConv2d(stem, "mix.branch5x5_1", zoo::ConvK(16, 1), eps);
  b5 = b.BasicConv2d(b5, "mix.branch5x5_2", zoo::ConvK(16, 3, 1, 1), eps);
  ir::Value* b3 = b.BasicConv2d(stem, "mix.branch3x3dbl_1", zoo::ConvK(32, 1), eps);
  b3 = b.BasicConv2d(b3, "mix.branch3x3dbl_2", zoo::ConvK(24, 3, 1, 1), eps);
  ir::Value* bp = b.AveragePool(stem, "mix.avg_pool", 3, 1, 1);
  bp = b.BasicConv2d(bp, "mix.branch_pool", zoo::ConvK(16, 1), eps);
  ir::Value* cat = b.Concat({b1, b5, b3, bp}, "mix.cat");
  ir::Value* y = b.Flatten(b.GlobalAveragePool(cat, "gap"), "flatten");
  g->outputs.push_back(b.Linear(y, "fc", 10, g->AddValue("logits")));
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  return QuantizeForAie<std::mt19937>(*g, sparsity, 5);
}

TEST(AieSiblings, ParallelOneByOneConvsCompileAsOneBitExactLayer) {
  for (const double sparsity : {0.0, 0.5}) {
    const auto g = BlockModel(sparsity);
    for (const char* preset : {"paper-2x2", "paper-4x4"}) {
      auto t = Target::Load(preset);
      ASSERT_TRUE(t.ok());
      // Every group fused (no per-group trial), and every group apart.
      CompileState on, off;
      on.target = off.target = *t;
      on.graph = off.graph = g.get();
      on.options.try_hfuse = false;
      off.options.hfuse = false;
      const Status son = Compile(on), soff = Compile(off);
      ASSERT_TRUE(son.ok()) << son.ToString();
      ASSERT_TRUE(soff.ok()) << soff.ToString();
      // branch1x1, branch5x5_1 and branch3x3dbl_1 (the pool's 1x1 reads the pool's output).
      int fused = 0;
      for (const Layer& l : on.layers) {
        if (!l.multi_out()) continue;
        ++fused;
        EXPECT_EQ(l.name, "mix.branch1x1.conv+branch5x5_1.conv+branch3x3dbl_1.conv");
        ASSERT_EQ(l.out_slices.size(), 3u);
        EXPECT_EQ(l.out_slices[1].m0, 24);
        EXPECT_EQ(l.out_slices[2].m1, 72);
        EXPECT_EQ(l.m, 72);
      }
      EXPECT_EQ(fused, 1) << preset;
      EXPECT_EQ(on.layers.size() + 2, off.layers.size()) << preset;
      int64_t macs_on = 0, macs_off = 0;
      for (const Layer& l : on.layers) macs_on += l.macs;
      for (const Layer& l : off.layers) macs_off += l.macs;
      EXPECT_EQ(macs_on, macs_off);
      // Every tensor through DDR too: each slice's DDR range must stay
      // live from the fused layer on (the memory plan reuses dead ranges).
      CompileState ddr;
      ddr.target = *t;
      ddr.graph = g.get();
      ddr.options.try_hfuse = false;
      ddr.options.resident = false;
      ASSERT_TRUE(Compile(ddr).ok());
      for (const CompileState* s : {&on, &off, &ddr}) {
        const Status st = CheckProgram(*s);
        EXPECT_TRUE(st.ok()) << preset << ": " << st.ToString();
        ExpectSimBitExact<std::mt19937>(*s, *g, 9);
      }
      // The per-group trial keeps the faster of fused and apart (the other
      // trials, which start from its choice, off on all three).
      CompileState one[3];
      for (int i = 0; i < 3; ++i) {
        one[i].target = *t;
        one[i].graph = g.get();
        one[i].options.try_wide = one[i].options.try_resident_min_w = one[i].options.try_replicate =
            false;
        one[i].options.try_in_stay = false;
      }
      one[0].options.try_hfuse = false;
      one[1].options.hfuse = false;
      for (CompileState& s : one) ASSERT_TRUE(Compile(s).ok());
      EXPECT_LE(one[2].total_s, std::min(one[0].total_s, one[1].total_s) * (1 + 1e-12)) << preset;
      // The default compile (every trial) is bit-exact too.
      CompileState best;
      best.target = *t;
      best.graph = g.get();
      ASSERT_TRUE(Compile(best).ok());
      ExpectSimBitExact<std::mt19937>(best, *g, 9);
    }
  }
}

}  // namespace
}  // namespace wbs::aie

// Pool fusion (aie/passes/poolfuse.cc): a conv whose output only a max pool
// reads compiles to one layer that pools its conv tile in core scratch —
// ResNet's stem (7x7 s2 conv, 3x3 s2 pad 1 pool: overlapping windows and a
// padded border), Inception's (3x3 s2 pool without padding) and VGG's (2x2
// s2 pool) — and an average pool whose output only a 1x1 conv reads
// (Inception's avg_pool -> branch_pool) one layer that pools each input
// tile before the conv. The fused programs pass the invariant checker (a
// max pool's conv COMPs do the recomputed MACs exactly) and the simulator
// reproduces the CPU int8 runtime bit for bit, with simulated cycles equal
// to the estimate.
#include <gtest/gtest.h>

#include <random>

#include "aie/passes/compiler.h"
#include "aie/timeline.h"
#include "tests/unit/aie_sim_test_util.h"
#include "zoo/builder.h"

namespace wbs::aie {
namespace {

// input 3x`size`^2 -> stem conv -> max pool -> 3x3 conv -> GAP -> fc.
std::unique_ptr<ir::Graph> StemModel(const zoo::ConvSpec& stem, int64_t pk, int64_t ps, int64_t pp,
                                     int64_t size, double sparsity) {
  auto g = std::make_unique<ir::Graph>();
  zoo::NetBuilder b(*g, 13);
  const float eps = 1e-3f;
  ir::Value* x = b.Input(1, 3, size);
  x = b.BasicConv2d(x, "stem", stem, eps);
  x = b.MaxPool(x, "pool", pk, ps, pp);
  x = b.BasicConv2d(x, "next", zoo::ConvK(32, 3, 1, 1), eps);
  ir::Value* y = b.Flatten(b.GlobalAveragePool(x, "gap"), "flatten");
  g->outputs.push_back(b.Linear(y, "fc", 10, g->AddValue("logits")));
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  return QuantizeForAie<std::mt19937>(*g, sparsity, 5);
}

TEST(AiePoolFusion, ConvAndMaxPoolCompileAsOneBitExactLayer) {
  struct Case {
    const char* what;
    zoo::ConvSpec stem;
    int64_t pk, ps, pp, size;
  };
  const Case cases[] = {
      {"resnet stem", zoo::ConvK(16, 7, 2, 3), 3, 2, 1, 30},
      {"inception stem", zoo::ConvK(24, 3, 1, 0), 3, 2, 0, 21},
      {"vgg pool", zoo::ConvK(16, 3, 1, 1), 2, 2, 0, 18},
  };
  for (const Case& k : cases) {
    for (const double sparsity : {0.0, 0.5}) {
      const auto g = StemModel(k.stem, k.pk, k.ps, k.pp, k.size, sparsity);
      ASSERT_TRUE(g);
      for (const char* preset : {"paper-2x2", "paper-4x4"}) {
        auto t = Target::Load(preset);
        ASSERT_TRUE(t.ok());
        const std::string what =
            std::string(k.what) + " " + preset + (sparsity > 0 ? " 50%" : " dense");
        // The pair fused (no per-pair trial), and apart.
        CompileState on, off;
        on.target = off.target = *t;
        on.graph = off.graph = g.get();
        on.options.try_pool_fuse = false;
        off.options.pool_fuse = false;
        const Status son = Compile(on), soff = Compile(off);
        ASSERT_TRUE(son.ok()) << what << ": " << son.ToString();
        ASSERT_TRUE(soff.ok()) << what << ": " << soff.ToString();
        int fused = 0;
        for (const Layer& l : on.layers) {
          if (!l.post_pool.on) continue;
          ++fused;
          EXPECT_EQ(l.name, "stem.conv+pool") << what;
          EXPECT_EQ(l.parts, 1) << what;
          // The conv's scratch tile: its window's rows and columns.
          EXPECT_GE(l.acc_bytes, l.post_pool.rows(l.oh_t) * l.post_pool.cols(l.ow_t)) << what;
        }
        EXPECT_EQ(fused, 1) << what;
        EXPECT_EQ(on.layers.size() + 1, off.layers.size()) << what;
        for (const CompileState* s : {&on, &off}) {
          const Status st = CheckProgram(*s);
          EXPECT_TRUE(st.ok()) << what << ": " << st.ToString();
          ExpectSimBitExact<std::mt19937>(*s, *g, 9, what);
        }
        // Every tensor through DDR too (the fused layer reads its input
        // from DDR with the composite window).
        CompileState ddr;
        ddr.target = *t;
        ddr.graph = g.get();
        ddr.options.try_pool_fuse = false;
        ddr.options.resident = false;
        ASSERT_TRUE(Compile(ddr).ok()) << what;
        EXPECT_TRUE(CheckProgram(ddr).ok()) << what;
        ExpectSimBitExact<std::mt19937>(ddr, *g, 9, what);
        // The per-pair trial keeps the faster of fused and apart (the other
        // trials, which start from its choice, off on all three).
        CompileState one[3];
        for (CompileState& o : one) {
          o.target = *t;
          o.graph = g.get();
          o.options.try_wide = o.options.try_resident_min_w = o.options.try_replicate = false;
        }
        one[0].options.try_pool_fuse = false;
        one[1].options.pool_fuse = false;
        for (CompileState& o : one) ASSERT_TRUE(Compile(o).ok()) << what;
        EXPECT_LE(one[2].total_s, std::min(one[0].total_s, one[1].total_s) * (1 + 1e-12)) << what;
      }
    }
  }
}

// A COMP with no MACs is not free: a max pool costs its window compares on
// the vector unit, ceil(out elements x taps / core.vector_ops_per_cycle)
// cycles (aie/comp_cost.h), in the time model and in the simulator alike;
// fewer vector lanes make it and the whole program slower.
TEST(AiePoolFusion, PoolCompsCostVectorCycles) {
  const auto g = StemModel(zoo::ConvK(16, 7, 2, 3), 3, 2, 1, 30, 0.0);
  ASSERT_TRUE(g);
  for (const bool fuse : {false, true}) {
    const std::string what = fuse ? "fused" : "apart";
    CompileState full, half;
    full.target = half.target = Target::Paper(2, 2);
    half.target.core.vector_ops_per_cycle = full.target.core.vector_ops_per_cycle / 2;
    full.graph = half.graph = g.get();
    full.options.pool_fuse = half.options.pool_fuse = fuse;
    full.options.try_pool_fuse = half.options.try_pool_fuse = false;
    ASSERT_TRUE(Compile(full).ok()) << what;
    ASSERT_TRUE(Compile(half).ok()) << what;
    const Timeline tf(full.target, 0, full.program), th(half.target, 0, full.program);
    int pools = 0;
    for (const Block& b : full.program.blocks) {
      for (const Instruction& in : b.instrs) {
        if (in.op != Opcode::kComp || in.comp.kind != CompKind::kMaxPool) continue;
        ++pools;
        const CompParams& c = in.comp;
        EXPECT_EQ(c.macs, 0) << what;
        const int64_t ops = int64_t{c.out_c} * c.out_h * c.out_w * c.kh * c.kw;
        ASSERT_GT(ops, 0) << what;
        EXPECT_EQ(tf.Duration(in), static_cast<double>((ops + 63) / 64)) << what;
        EXPECT_EQ(th.Duration(in), static_cast<double>((ops + 31) / 32)) << what;
        EXPECT_GT(th.Duration(in), tf.Duration(in)) << what;
      }
    }
    EXPECT_GT(pools, 0) << what;
    EXPECT_GT(half.total_s, full.total_s) << what;
    if (!fuse) {
      // The roofline's compute term counts the vector cycles too: with one
      // lane per cycle the lone pool layer becomes compute-bound (with the
      // MAC-only roofline a pool's compute term was 0).
      CompileState one;
      one.target = Target::Paper(2, 2);
      one.target.core.vector_ops_per_cycle = 1;
      one.graph = g.get();
      one.options = full.options;
      ASSERT_TRUE(Compile(one).ok());
      int pool_layers = 0;
      for (size_t li = 0; li < one.layers.size(); ++li) {
        if (one.layers[li].kind != LayerKind::kMaxPool) continue;
        ++pool_layers;
        EXPECT_EQ(one.layers[li].binding, "compute") << one.layers[li].name;
        EXPECT_GT(one.layers[li].bound_s, full.layers[li].bound_s) << one.layers[li].name;
      }
      EXPECT_GT(pool_layers, 0);
    }
    // The simulator charges the same: cycles = estimate at either width.
    ExpectSimBitExact<std::mt19937>(full, *g, 9, what);
    ExpectSimBitExact<std::mt19937>(half, *g, 9, what + " half lanes");
  }
}

// input 3x15^2 -> 3x3 conv (`c` channels) -> avg pool 3x3 s1 p1 -> 1x1 conv
// -> GAP -> fc. With `c` = 96 the 1x1 conv splits its input channels into
// CIN parts on 2x2, each part pooled on its own.
std::unique_ptr<ir::Graph> BranchPoolModel(int64_t c, bool count_include_pad, double sparsity) {
  auto g = std::make_unique<ir::Graph>();
  zoo::NetBuilder b(*g, 17);
  const float eps = 1e-3f;
  ir::Value* x = b.Input(1, 3, 15);
  x = b.BasicConv2d(x, "stem", zoo::ConvK(c, 3, 1, 1), eps);
  x = b.AveragePool(x, "avg_pool", 3, 1, 1, count_include_pad);
  x = b.BasicConv2d(x, "branch_pool", zoo::ConvK(24, 1), eps);
  ir::Value* y = b.Flatten(b.GlobalAveragePool(x, "gap"), "flatten");
  g->outputs.push_back(b.Linear(y, "fc", 10, g->AddValue("logits")));
  EXPECT_TRUE(b.status().ok()) << b.status().ToString();
  return QuantizeForAie<std::mt19937>(*g, sparsity, 5);
}

TEST(AiePoolFusion, AvgPoolAndOneByOneConvCompileAsOneBitExactLayer) {
  bool saw_parts = false;  // some case pools CIN part by part
  for (const int64_t c : {32, 96}) {
    for (const bool cip : {true, false}) {
      for (const double sparsity : {0.0, 0.5}) {
        const auto g = BranchPoolModel(c, cip, sparsity);
        ASSERT_TRUE(g);
        for (const char* preset : {"paper-2x2", "paper-4x4"}) {
          auto t = Target::Load(preset);
          ASSERT_TRUE(t.ok());
          const std::string what = std::to_string(c) + (cip ? " include-pad " : " exclude-pad ") +
                                   preset + (sparsity > 0 ? " 50%" : " dense");
          CompileState on, off, ddr;
          on.target = off.target = ddr.target = *t;
          on.graph = off.graph = ddr.graph = g.get();
          on.options.try_pool_fuse = ddr.options.try_pool_fuse = false;
          off.options.pool_fuse = false;
          ddr.options.resident = false;
          for (CompileState* s : {&on, &off, &ddr}) {
            const Status st = Compile(*s);
            ASSERT_TRUE(st.ok()) << what << ": " << st.ToString();
          }
          int fused = 0;
          for (const Layer& l : on.layers) {
            if (!l.pre_pool.on) continue;
            ++fused;
            EXPECT_EQ(l.name, "avg_pool+branch_pool.conv") << what;
            EXPECT_EQ(l.kh, 3) << what;  // the pool's window on the conv's input
            EXPECT_GE(l.scratch_bytes, l.ct * l.oh_t * l.ow_t) << what;
            saw_parts |= l.parts > 1;
          }
          EXPECT_EQ(fused, 1) << what;
          EXPECT_EQ(on.layers.size() + 1, off.layers.size()) << what;
          for (const CompileState* s : {&on, &off, &ddr}) {
            const Status st = CheckProgram(*s);
            EXPECT_TRUE(st.ok()) << what << ": " << st.ToString();
            ExpectSimBitExact<std::mt19937>(*s, *g, 9, what);
          }
        }
      }
    }
  }
  EXPECT_TRUE(saw_parts);
}

}  // namespace
}  // namespace wbs::aie

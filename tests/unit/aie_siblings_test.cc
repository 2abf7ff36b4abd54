// Horizontal fusion of sibling convs (aie/passes/siblings.cc): a small
// Inception-like block whose three parallel 1x1 branch convs read the same
// tensor compiles to one multi-output conv layer; its slices land in their
// own tensors (a concat slot, the inputs of the next convs), the program
// passes the invariant checker and the simulator reproduces the CPU int8
// runtime bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "aie/passes/compiler.h"
#include "ir/op_schema.h"
#include "quant/ptq.h"
#include "runtime/session.h"
#include "sim/simulator.h"
#include "sparse/sparsify.h"
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
  if (sparsity > 0) {
    sparse::SparsifyOptions so;
    so.sparsity = sparsity;
    EXPECT_TRUE(sparse::Sparsify(*g, so).ok());
  }
  auto prepared = quant::PrepareFloatGraph(*g);
  EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
  Shape shape = (*prepared)->inputs.at(0)->shape;
  shape[0] = 1;
  Tensor cal(DType::kF32, shape);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < cal.numel(); ++i) cal.data<float>()[i] = nd(rng);
  quant::PtqOptions po;
  auto c = quant::Calibrate(**prepared, {cal}, po);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  quant::PtqReport rep;
  auto q = quant::BuildQuantizedGraph(**prepared, *c, po, &rep);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  for (ir::Value* v : (*q)->inputs)
    if (v->shape[0] < 0) v->shape[0] = 1;
  EXPECT_TRUE(ir::InferShapes(**q).ok());
  return std::move(*q);
}

// Simulates the program on a seeded input; the logits must equal the CPU int8 runtime's.
void ExpectBitExact(const CompileState& s, const ir::Graph& g) {
  const DdrSymbol* in = nullptr;
  const DdrSymbol* out = nullptr;
  for (const DdrSymbol& y : s.program.symbols) {
    if (y.kind == DdrSymbol::Kind::kInput) in = &y;
    if (y.kind == DdrSymbol::Kind::kOutput) out = &y;
  }
  ASSERT_TRUE(in && out);
  Tensor x(DType::kF32, Shape(in->shape.begin(), in->shape.end()));
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint8_t> qx(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.data<float>()[i] = nd(rng);
    const float q = std::nearbyint(x.data<float>()[i] / in->scale) + static_cast<float>(in->zero_point);
    qx[static_cast<size_t>(i)] = static_cast<uint8_t>(std::min(255.f, std::max(0.f, q)));
  }
  auto sim = sim::Simulator::Create(s.program, s.target);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  ASSERT_TRUE(sim->SetInput(in->name, qx).ok());
  ASSERT_TRUE(sim->Run().ok());
  auto bytes = sim->ReadSymbol(out->name);
  ASSERT_TRUE(bytes.ok());
  runtime::SessionOptions so;
  so.num_threads = 1;
  auto session = runtime::Session::Create(g, so);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  auto ref = (*session)->Run({x});
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  const Tensor& r = ref->at(0);
  ASSERT_EQ(r.numel() * 4, static_cast<int64_t>(bytes->size()));
  int64_t diff = 0;
  for (int64_t i = 0; i < r.numel(); ++i) {
    int32_t acc;
    std::memcpy(&acc, bytes->data() + 4 * i, 4);
    const float v = static_cast<float>(acc) * out->scales.at(static_cast<size_t>(i));
    if (std::memcmp(&v, &r.data<float>()[i], 4) != 0) ++diff;
  }
  EXPECT_EQ(diff, 0);
  // The simulator times with the compiler's rule: cycles = estimate.
  EXPECT_NEAR(static_cast<double>(sim->stats().total_cycles), s.total_s * s.target.clock_ghz * 1e9, 1.0);
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
        ExpectBitExact(*s, *g);
      }
      // The per-group trial keeps the faster of fused and apart (the other
      // trials, which start from its choice, off on all three).
      CompileState one[3];
      for (int i = 0; i < 3; ++i) {
        one[i].target = *t;
        one[i].graph = g.get();
        one[i].options.try_wide = one[i].options.try_resident_min_w = one[i].options.try_replicate = false;
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
      ExpectBitExact(best, *g);
    }
  }
}

}  // namespace
}  // namespace wbs::aie

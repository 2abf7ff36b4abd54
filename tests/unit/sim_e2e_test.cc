// End to end: fmnist_resnet (seeded, PTQ on random data) -> AIE compiler ->
// simulator; the logits read back from DDR must equal the CPU int8
// runtime's bit for bit (docs/int8.md, docs/SIMULATOR.md).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "aie/passes/compiler.h"
#include "ir/op_schema.h"
#include "quant/ptq.h"
#include "runtime/session.h"
#include "sim/simulator.h"
#include "sparse/sparsify.h"
#include "zoo/zoo.h"

namespace wbs::sim {
namespace {

std::unique_ptr<ir::Graph> Int8Model(const std::string& name, double sparsity) {
  zoo::ZooOptions zo;
  zo.seed = 1;
  auto g = zoo::BuildModel(name, zo);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (sparsity > 0) {
    sparse::SparsifyOptions so;
    so.sparsity = sparsity;
    so.score = sparse::Score::kL2;
    EXPECT_TRUE(sparse::Sparsify(**g, so).ok());
  }
  auto prepared = quant::PrepareFloatGraph(**g);
  EXPECT_TRUE(prepared.ok()) << prepared.status().message();
  Shape shape = (*prepared)->inputs.at(0)->shape;
  shape[0] = 1;
  Tensor x(DType::kF32, shape);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  quant::PtqOptions po;
  auto cal = quant::Calibrate(**prepared, {x}, po);
  EXPECT_TRUE(cal.ok()) << cal.status().message();
  quant::PtqReport report;
  auto q = quant::BuildQuantizedGraph(**prepared, *cal, po, &report);
  EXPECT_TRUE(q.ok()) << q.status().message();
  for (ir::Value* v : (*q)->inputs)
    if (v->has_shape && !v->shape.empty() && v->shape[0] < 0) v->shape[0] = 1;
  EXPECT_TRUE(ir::InferShapes(**q).ok());
  return std::move(*q);
}

void CheckBitExact(const std::string& model, const std::string& preset, double sparsity) {
  std::unique_ptr<ir::Graph> g = Int8Model(model, sparsity);
  aie::CompileState s;
  auto t = aie::Target::Load(preset);
  ASSERT_TRUE(t.ok()) << t.status().message();
  s.target = *t;
  s.graph = g.get();
  const Status cs = aie::Compile(s);
  ASSERT_TRUE(cs.ok()) << cs.message();
  const aie::DdrSymbol* in = nullptr;
  const aie::DdrSymbol* out = nullptr;
  for (const aie::DdrSymbol& y : s.program.symbols) {
    if (y.kind == aie::DdrSymbol::Kind::kInput) in = &y;
    if (y.kind == aie::DdrSymbol::Kind::kOutput) out = &y;
  }
  ASSERT_TRUE(in && out);
  ASSERT_EQ(out->type, aie::OutType::kS32);
  // An f32 image, quantized as the graph's QuantizeLinear does.
  Shape shape(in->shape.begin(), in->shape.end());
  Tensor x(DType::kF32, shape);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint8_t> qx(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.data<float>()[i] = nd(rng);
    const float q =
        std::nearbyint(x.data<float>()[i] / in->scale) + static_cast<float>(in->zero_point);
    qx[static_cast<size_t>(i)] = static_cast<uint8_t>(std::min(255.f, std::max(0.f, q)));
  }
  auto sim = Simulator::Create(s.program, s.target);
  ASSERT_TRUE(sim.ok()) << sim.status().message();
  ASSERT_TRUE(sim->SetInput(in->name, qx).ok());
  const Status rs = sim->Run();
  ASSERT_TRUE(rs.ok()) << rs.message();
  auto bytes = sim->ReadSymbol(out->name);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();

  runtime::SessionOptions so;
  so.num_threads = 1;
  auto session = runtime::Session::Create(*g, so);
  ASSERT_TRUE(session.ok()) << session.status().message();
  auto ref = (*session)->Run({x});
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  const Tensor& r = ref->at(0);
  ASSERT_EQ(r.numel() * 4, static_cast<int64_t>(bytes->size()));
  int64_t diff = 0;
  for (int64_t i = 0; i < r.numel(); ++i) {
    int32_t acc;
    std::memcpy(&acc, bytes->data() + 4 * i, 4);
    const float v = static_cast<float>(acc) * out->scales.at(static_cast<size_t>(i));
    if (std::memcmp(&v, &r.data<float>()[i], 4) != 0) ++diff;
  }
  EXPECT_EQ(diff, 0) << model << " on " << preset << " sparsity " << sparsity;
  EXPECT_GT(sim->stats().total_cycles, 0);
}

TEST(SimE2E, FmnistResnetPaper2x2Dense) { CheckBitExact("fmnist_resnet", "paper-2x2", 0.0); }
TEST(SimE2E, FmnistResnetPaper2x2Sparse50) { CheckBitExact("fmnist_resnet", "paper-2x2", 0.5); }
TEST(SimE2E, FmnistResnetPaper4x4Sparse50) { CheckBitExact("fmnist_resnet", "paper-4x4", 0.5); }
// Every preset, dense and 50% sparse (a few seconds in all).
TEST(SimE2E, FmnistResnetEveryPreset) {
  for (const std::string& preset : aie::PresetNames())
    for (double sp : {0.0, 0.5}) CheckBitExact("fmnist_resnet", preset, sp);
}

}  // namespace
}  // namespace wbs::sim

// End to end: fmnist_resnet (seeded, PTQ on random data) -> AIE compiler ->
// simulator; the logits read back from DDR must equal the CPU int8
// runtime's bit for bit (docs/int8.md, docs/SIMULATOR.md).
#include <gtest/gtest.h>

#include <random>

#include "aie/passes/compiler.h"
#include "tests/unit/aie_sim_test_util.h"
#include "zoo/zoo.h"

namespace wbs::sim {
namespace {

std::unique_ptr<ir::Graph> Int8Model(const std::string& name, double sparsity) {
  zoo::ZooOptions zo;
  zo.seed = 1;
  auto g = zoo::BuildModel(name, zo);
  EXPECT_TRUE(g.ok()) << g.status().message();
  return aie::QuantizeForAie<std::mt19937_64>(**g, sparsity, 2);
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
  aie::ExpectSimBitExact<std::mt19937_64>(
      s, *g, 7, model + " on " + preset + " sparsity " + std::to_string(sparsity));
}

TEST(SimE2E, FmnistResnetPaper2x2Dense) { CheckBitExact("fmnist_resnet", "paper-2x2", 0.0); }
TEST(SimE2E, FmnistResnetPaper2x2Sparse50) { CheckBitExact("fmnist_resnet", "paper-2x2", 0.5); }
TEST(SimE2E, FmnistResnetPaper4x4Sparse50) { CheckBitExact("fmnist_resnet", "paper-4x4", 0.5); }
// Every preset, dense and 50% sparse (a few seconds in all). Under a
// sanitizer every preset runs once, dense and 50% in turn (kUnderSanitizer).
TEST(SimE2E, FmnistResnetEveryPreset) {
  size_t i = 0;
  for (const std::string& preset : aie::PresetNames()) {
    for (double sp : {0.0, 0.5})
      if (!aie::kUnderSanitizer || (i % 2 == 0) == (sp == 0.0)) CheckBitExact("fmnist_resnet", preset, sp);
    ++i;
  }
}

}  // namespace
}  // namespace wbs::sim

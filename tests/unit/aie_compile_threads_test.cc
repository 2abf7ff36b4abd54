// Compile() runs independent trial compiles on several threads and shares
// pure per-pass results between trials (aie/passes/cache.h): neither may
// change the program. Compares every output of a compile on 1 and 2 threads,
// and of a compile whose cache an earlier compile of the same graph filled.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "aie/passes/cache.h"
#include "aie/passes/compiler.h"
#include "tests/unit/aie_sim_test_util.h"
#include "zoo/zoo.h"

namespace wbs::aie {
namespace {

// fmnist_resnet at 50% on paper-4x4: some tensors are replicated, so the
// compile without replication runs beside the first one on 2 threads.
const ir::Graph& Model() {
  static const auto g = [] {
    zoo::ZooOptions zo;
    zo.seed = 5;
    auto f = zoo::BuildModel("fmnist_resnet", zo);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return QuantizeForAie<std::mt19937>(**f, 0.5, 11);
  }();
  return *g;
}

struct Outputs {
  std::string text, memory_map, layers, trace;
  std::vector<uint8_t> bin;
  double total_s = 0;
};

Outputs CompileWith(const CompileOptions& o, std::shared_ptr<CompileCache> cache = nullptr) {
  CompileState s;
  s.target = Target::Paper(4, 4);
  s.graph = &Model();
  s.options = o;
  s.cache = std::move(cache);
  const Status st = Compile(s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return {s.program.ToText(true), MemoryMap(s),         LayerTable(s),
          TraceJson(s),           s.program.ToBinary(), s.total_s};
}

void ExpectSame(const Outputs& a, const Outputs& b) {
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.bin, b.bin);
  EXPECT_EQ(a.memory_map, b.memory_map);
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.trace, b.trace);
  EXPECT_EQ(a.total_s, b.total_s);
}

TEST(AieCompileThreads, OneAndTwoThreadsGiveTheSameProgram) {
  {
    // The model replicates tensors (so 2 threads run two compiles at once).
    CompileState s;
    s.target = Target::Paper(4, 4);
    s.graph = &Model();
    s.options.try_replicate = false;
    ASSERT_TRUE(Compile(s).ok());
    int replicated = 0;
    for (const ActTensor& x : s.tensors) replicated += x.replicated;
    ASSERT_GT(replicated, 0);
  }
  CompileOptions one, two;
  one.threads = 1, two.threads = 2;
  const Outputs a = CompileWith(one), b = CompileWith(two);
  EXPECT_FALSE(a.text.empty());
  EXPECT_NE(a.trace.find("\"traceEvents\""), std::string::npos);
  ExpectSame(a, b);
}

TEST(AieCompileThreads, CacheFilledByAnotherCompileGivesTheSameProgram) {
  // A compile whose every pass result may come from the cache (filled by a
  // compile of the same graph with other options) against a fresh one.
  auto cache = std::make_shared<CompileCache>();
  CompileOptions fill;
  fill.threads = 1;
  CompileWith(fill, cache);
  EXPECT_NE(cache->scheduled, nullptr);
  EXPECT_FALSE(cache->blobs.empty());
  CompileOptions o;
  o.threads = 1;
  o.try_replicate = false;
  o.try_in_stay = false;
  ExpectSame(CompileWith(o, cache), CompileWith(o));
}

}  // namespace
}  // namespace wbs::aie

#include "runtime/memory_plan.h"

#include <gtest/gtest.h>

#include <random>

namespace wbs::runtime {
namespace {

TEST(MemoryPlanTest, ChainReusesBuffers) {
  // a -> b -> c -> d: each buffer is read only by the next step, so two
  // buffers suffice at any time.
  std::vector<BufferRequest> r = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}, {1000, 3, 4}};
  MemoryPlan p = PlanMemory(r, 64);
  EXPECT_TRUE(PlanIsValid(r, p));
  EXPECT_EQ(p.arena_bytes, 2 * 1024u);
}

TEST(MemoryPlanTest, RandomLifetimesNeverOverlap) {
  const unsigned seed = 1234;
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> r;
    int n = 1 + static_cast<int>(rng() % 40);
    size_t total = 0;
    for (int i = 0; i < n; ++i) {
      int first = static_cast<int>(rng() % 30);
      int last = first + static_cast<int>(rng() % 10);
      size_t bytes = 1 + rng() % 5000;
      r.push_back({bytes, first, last});
      total += (bytes + 63) / 64 * 64;
    }
    MemoryPlan p = PlanMemory(r, 64);
    ASSERT_TRUE(PlanIsValid(r, p)) << "seed " << seed << " trial " << trial;
    EXPECT_LE(p.arena_bytes, total);
    for (size_t o : p.offsets) EXPECT_EQ(o % 64, 0u);
  }
}

}  // namespace
}  // namespace wbs::runtime

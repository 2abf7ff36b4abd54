// NetBuilder::FillNormal (draws once, log/sincos on several threads)
// against the plain rule it speeds up: one Normal() call per element, in
// order. Random tensor sizes (odd and even, below and far above the parallel
// threshold), random interleaved single draws (so a fill starts with and
// leaves a spare value): every float and the state afterwards must match.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "ir/graph.h"
#include "zoo/builder.h"

namespace wbs::zoo {
namespace {

TEST(ZooNormal, FillMatchesSequentialDraws) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  ir::Graph ga, gb;
  NetBuilder fast(ga, seed), plain(gb, seed);
  for (int step = 0; step < 60; ++step) {
    if (rng() % 3 == 0) {
      const double a = fast.Normal(), b = plain.Normal();
      ASSERT_EQ(std::memcmp(&a, &b, sizeof a), 0) << "step " << step;
      continue;
    }
    const int64_t sizes[] = {0, 1, 2, 3, 63, 64, 1000, 32767, 32768, 32769, 70001, 300000};
    const int64_t n = rng() % 2 ? sizes[rng() % std::size(sizes)] : static_cast<int64_t>(rng() % 5000);
    const double stddev = 0.01 + static_cast<double>(rng() % 1000) * 1e-3;
    const double mean = rng() % 2 ? 0.0 : static_cast<double>(rng() % 100) * 0.01 - 0.5;
    std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
    fast.FillNormal(got.data(), n, stddev, mean);
    for (float& x : want) x = static_cast<float>(mean + stddev * plain.Normal());
    ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "step " << step << " n " << n;
  }
  const double a = fast.Normal(), b = plain.Normal();
  EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0);
}

}  // namespace
}  // namespace wbs::zoo

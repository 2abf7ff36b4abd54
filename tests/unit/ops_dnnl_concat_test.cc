// The fast backend's Concat (runtime/ops_dnnl_concat.cc) against the
// reference operator, byte for byte: every axis (negative too), 1-4 inputs,
// outputs below and above the threaded-copy size, 1 and 2 threads, and a
// run with shapes other than the creation's (the reference serves it).
#include <gtest/gtest.h>

#include <cstring>

#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

Result<Tensor> RunTensors(runtime::Operator& op, const std::vector<Tensor>& ins, const Shape& out,
                          int threads) {
  std::vector<const Tensor*> p;
  for (const Tensor& t : ins) p.push_back(&t);
  Tensor y(DType::kF32, out);
  runtime::ExecContext ctx;
  ctx.num_threads = threads;
  WBS_RETURN_IF_ERROR(op.Run(p, {&y}, ctx));
  return y;
}

TEST(OpsDnnlConcatTest, MatchesReferenceExactly) {
  Rng rng(TestSeed() + 80);
  for (int i = 0; i < 40; ++i) {
    const int rank = static_cast<int>(Uniform(rng, 1, 4));
    const int axis = static_cast<int>(Uniform(rng, 0, rank - 1));
    const bool big = i % 4 == 3;  // above the threaded-copy size
    Shape base(static_cast<size_t>(rank));
    for (int d = 0; d < rank; ++d) base[d] = Uniform(rng, 1, big ? 40 : 6);
    std::vector<Operand> ops;
    const int n = static_cast<int>(Uniform(rng, 1, 4));
    for (int k = 0; k < n; ++k) {
      Shape s = base;
      s[axis] = Uniform(rng, 1, big ? 48 : 5);
      ops.push_back({RandomTensor(s, rng)});
    }
    const int64_t attr_axis = Chance(rng, 0.3) ? axis - rank : axis;
    const Attrs attrs = {{"axis", attr_axis}};
    SCOPED_TRACE(fmt::format("seed {} case {}: rank {} axis {} inputs {}", TestSeed(), i, rank,
                             attr_axis, n));
    auto prep = Prepare("Concat", ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto fast = CreateOp(*prep, Backend::kFast);
    auto ref = CreateOp(*prep, Backend::kReference);
    ASSERT_TRUE(fast.ok() && ref.ok());
    EXPECT_EQ((*fast)->impl_name(), "wbs:concat");
    for (const int threads : {1, 2}) {
      auto yf = RunOp(**fast, ops, prep->out_shape, threads);
      auto yr = RunOp(**ref, ops, prep->out_shape);
      ASSERT_TRUE(yf.ok() && yr.ok());
      ASSERT_EQ(0, std::memcmp(yf->raw(), yr->raw(), yr->nbytes())) << threads << " threads";
    }
  }
}

// Created for [1,3,4] + [1,2,4] on axis 1; run on [2,3,4] + [2,2,4]: the
// reference operator serves the other shapes.
TEST(OpsDnnlConcatTest, OtherShapesAtRunTime) {
  Rng rng(TestSeed() + 81);
  const std::vector<Operand> ops = {{RandomTensor({1, 3, 4}, rng)}, {RandomTensor({1, 2, 4}, rng)}};
  auto prep = Prepare("Concat", ops, {{"axis", int64_t{1}}});
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  ASSERT_TRUE(fast.ok());
  const std::vector<Tensor> ins = {RandomTensor({2, 3, 4}, rng), RandomTensor({2, 2, 4}, rng)};
  auto y = RunTensors(**fast, ins, {2, 5, 4}, 2);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 5; ++c)
      for (int64_t w = 0; w < 4; ++w) {
        const float want = c < 3 ? ins[0].template data<float>()[(b * 3 + c) * 4 + w]
                                 : ins[1].data<float>()[(b * 2 + c - 3) * 4 + w];
        ASSERT_EQ(y->data<float>()[(b * 5 + c) * 4 + w], want);
      }
}

}  // namespace
}  // namespace wbs::dnnl_test

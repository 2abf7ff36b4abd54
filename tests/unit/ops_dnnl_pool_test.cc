// The oneDNN pooling fast paths (runtime/ops_dnnl_pool.cc,
// kernels/dnnl/pool.*) against the reference operators on random problems,
// every layout, two threads, and the declines.
#include <gtest/gtest.h>

#include <set>

#include "kernels/dnnl/pool.h"
#include "kernels/ref/pool.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

struct PoolCase {
  std::string op;
  Tensor x;
  Attrs attrs;
  std::string what;
};

// A random MaxPool or AveragePool: 1-3 spatial dims, kernels 1..5 (1..3 in
// 3-D), strides 1-3, MaxPool dilations, explicit asymmetric pads or
// auto_pad, ceil_mode, count_include_pad, channels below, at and above
// oneDNN's block of 16, batch 1 or 2.
PoolCase RandomPool(Rng& rng, int index) {
  PoolCase pc;
  pc.op = Chance(rng, 0.5) ? "MaxPool" : "AveragePool";
  const int sr = static_cast<int>(Chance(rng, 0.2) ? 3 : Uniform(rng, 1, 2));
  const int64_t batch = Chance(rng, 0.3) ? 2 : 1;
  static const int64_t kChannels[] = {1, 3, 16, 17, 32, 40};
  const int64_t c = kChannels[Uniform(rng, 0, 5)];
  std::vector<int64_t> k(sr), s(sr), d(sr), in(sr), pads(2 * sr, 0);
  const int64_t pad_mode = Uniform(rng, 0, 4);  // explicit, SAME_UPPER, SAME_LOWER, VALID, none
  for (int i = 0; i < sr; ++i) {
    k[i] = Uniform(rng, 1, sr == 3 ? 3 : 5);
    s[i] = Uniform(rng, 1, 3);
    d[i] = pc.op == "MaxPool" && Chance(rng, 0.2) ? 2 : 1;
    const int64_t dk = (k[i] - 1) * d[i] + 1;
    if (pad_mode == 0) {
      // ONNX pools want pads smaller than the kernel.
      pads[i] = Uniform(rng, 0, k[i] - 1);
      pads[i + sr] = Uniform(rng, 0, k[i] - 1);
    }
    const int64_t span = std::max<int64_t>(1, dk - pads[i] - pads[i + sr]);
    in[i] = span + Uniform(rng, 0, sr == 3 ? 4 : 12);
  }
  Shape x_shape = {batch, c};
  x_shape.insert(x_shape.end(), in.begin(), in.end());
  pc.x = RandomTensor(x_shape, rng);
  pc.attrs["kernel_shape"] = k;
  if (Chance(rng, 0.8))
    pc.attrs["strides"] = s;
  else
    s.assign(sr, 1);
  if (pc.op == "MaxPool") pc.attrs["dilations"] = d;
  static const char* kAutoPad[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"};
  if (pad_mode == 0) pc.attrs["pads"] = pads;
  if (pad_mode >= 1 && pad_mode <= 3) pc.attrs["auto_pad"] = std::string(kAutoPad[pad_mode]);
  const bool ceil = (pad_mode == 0 || pad_mode == 4) && Chance(rng, 0.3);
  if (ceil) pc.attrs["ceil_mode"] = int64_t{1};
  const bool include_pad = pc.op == "AveragePool" && Chance(rng, 0.5);
  if (include_pad) pc.attrs["count_include_pad"] = int64_t{1};
  pc.what = fmt::format(
      "case {}: {} X {} kernel {} strides {} dilations {} pads {} auto_pad {} ceil {} "
      "include_pad {}",
      index, pc.op, ShapeToString(x_shape), ShapeToString(k), ShapeToString(s), ShapeToString(d),
      ShapeToString(pads), kAutoPad[pad_mode], ceil, include_pad);
  return pc;
}

// Fast matches reference on every case; the fast path must serve most of
// them (it declines only windows outside oneDNN's semantics, see pool.h).
TEST(OpsDnnlPoolTest, PoolMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 20);
  constexpr int kCases = 150;
  int fast = 0;
  for (int i = 0; i < kCases; ++i) {
    PoolCase pc = RandomPool(rng, i);
    ExpectFastMatchesReference(pc.op, {{pc.x}}, pc.attrs, pc.what, /*may_decline=*/true);
    if (HasFatalFailure()) return;
    auto prep = Prepare(pc.op, {{pc.x}}, pc.attrs);
    ASSERT_TRUE(prep.ok());
    auto op = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(op.ok());
    fast += IsFast(**op);
  }
  EXPECT_GE(fast, kCases * 3 / 4) << "the fast path declined too often";
}

TEST(OpsDnnlPoolTest, GlobalPoolsMatchReference) {
  Rng rng(TestSeed() + 21);
  for (const Shape& shape : std::vector<Shape>{
           {1, 2048, 7, 7}, {2, 17, 5}, {1, 16, 3, 4, 5}, {3, 40, 1, 1}, {1, 1, 9, 13}}) {
    const Tensor x = RandomTensor(shape, rng);
    for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"})
      ExpectFastMatchesReference(op, {{x}}, {}, ShapeToString(shape));
    if (HasFatalFailure()) return;
  }
}

// The model shapes the fast path exists for.
TEST(OpsDnnlPoolTest, ModelPoolsAreFast) {
  Rng rng(TestSeed() + 22);
  const Attrs resnet_max = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                            {"strides", std::vector<int64_t>{2, 2}},
                            {"pads", std::vector<int64_t>{1, 1, 1, 1}}};
  ExpectFastMatchesReference("MaxPool", {{RandomTensor({1, 64, 112, 112}, rng)}}, resnet_max,
                             "ResNet-50 max pool");
  const Attrs inception_avg = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                               {"pads", std::vector<int64_t>{1, 1, 1, 1}},
                               {"count_include_pad", int64_t{1}}};
  ExpectFastMatchesReference("AveragePool", {{RandomTensor({1, 192, 35, 35}, rng)}}, inception_avg,
                             "Inception-v3 average pool");
  const Attrs inception_max = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                               {"strides", std::vector<int64_t>{2, 2}}};
  ExpectFastMatchesReference("MaxPool", {{RandomTensor({1, 64, 147, 147}, rng)}}, inception_max,
                             "Inception-v3 max pool");
  const Attrs ceil_max = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                          {"strides", std::vector<int64_t>{2, 2}},
                          {"ceil_mode", int64_t{1}}};
  ExpectFastMatchesReference("MaxPool", {{RandomTensor({1, 64, 112, 112}, rng)}}, ceil_max,
                             "GoogLeNet-style ceil_mode max pool");
}

TEST(OpsDnnlPoolTest, PoolWithTwoThreadsMatchesReference) {
  Rng rng(TestSeed() + 23);
  for (int i = 0; i < 8; ++i) {
    PoolCase pc = RandomPool(rng, i);
    ExpectFastMatchesReference(pc.op, {{pc.x}}, pc.attrs, pc.what, /*may_decline=*/true,
                               /*threads=*/2);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlPoolTest, PoolWithUnknownBatchBuildsPerShape) {
  Rng rng(TestSeed() + 24);
  std::vector<Operand> ops = {{RandomTensor({2, 16, 9, 9}, rng), false, /*dynamic_batch=*/true}};
  const Attrs attrs = {{"kernel_shape", std::vector<int64_t>{3, 3}},
                       {"strides", std::vector<int64_t>{2, 2}}};
  auto prep = Prepare("MaxPool", ops, attrs);
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok() && ref.ok());
  // The shape is unknown at creation, so the implementation is too.
  EXPECT_EQ((*fast)->impl_name(), "onednn");
  for (int64_t batch : {2, 3, 0, 2}) {
    ops[0].t = RandomTensor({batch, 16, 9, 9}, rng);
    const Shape out = {batch, 16, 4, 4};
    auto yf = RunOp(**fast, ops, out);
    auto yr = RunOp(**ref, ops, out);
    ASSERT_TRUE(yf.ok()) << yf.status().ToString();
    ASSERT_TRUE(yr.ok()) << yr.status().ToString();
    EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "batch " << batch;
  }
}

TEST(OpsDnnlPoolTest, PoolDeclinesWhatItDoesNotHandle) {
  Rng rng(TestSeed() + 25);
  auto expect_reference = [](const std::string& op, const Tensor& x, const Attrs& attrs,
                             const char* why) {
    SCOPED_TRACE(why);
    auto prep = Prepare(op, {{x}}, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok()) << fast.status().ToString();
    EXPECT_EQ((*fast)->impl_name(), "ref");
    // The declined operator still computes the reference result.
    ExpectFastMatchesReference(op, {{x}}, attrs, why, /*may_decline=*/true);
  };
  const Tensor x = RandomTensor({1, 16, 7, 7}, rng);
  auto x64 = x.CastTo(DType::kF64);
  ASSERT_TRUE(x64.ok());
  {
    auto prep = Prepare("MaxPool", {{*x64}}, {{"kernel_shape", std::vector<int64_t>{2, 2}}});
    ASSERT_TRUE(prep.ok());
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok());
    EXPECT_EQ((*fast)->impl_name(), "ref") << "f64";
  }
  // ceil_mode adds a window that reaches past the trailing pad: ONNX does not
  // count those positions, oneDNN's include-padding average would.
  expect_reference("AveragePool", x,
                   {{"kernel_shape", std::vector<int64_t>{2, 2}},
                    {"strides", std::vector<int64_t>{2, 2}},
                    {"ceil_mode", int64_t{1}},
                    {"count_include_pad", int64_t{1}}},
                   "include_pad with a ceil_mode window");
  // A dilated window whose taps all fall into the padding.
  expect_reference("MaxPool", RandomTensor({1, 4, 2, 2}, rng),
                   {{"kernel_shape", std::vector<int64_t>{2, 2}},
                    {"dilations", std::vector<int64_t>{3, 3}},
                    {"pads", std::vector<int64_t>{1, 1, 1, 1}}},
                   "a window entirely in the padding");

  // MaxPool with its Indices output.
  ir::Graph g;
  ir::Value* in = g.AddInput("x", DType::kF32, x.shape());
  ir::Node* n = g.AddNode("MaxPool", {in}, 2, "n0");
  n->attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  g.outputs = {n->outputs[0], n->outputs[1]};
  ASSERT_TRUE(ir::InferShapes(g).ok());
  runtime::OpCreateArgs args;
  args.node = n;
  args.inputs = {ir::ValueInfo::FromValue(in)};
  args.outputs = {ir::ValueInfo::FromValue(n->outputs[0]), ir::ValueInfo::FromValue(n->outputs[1])};
  auto with_indices = runtime::CreateOperator(args);
  ASSERT_TRUE(with_indices.ok()) << with_indices.status().ToString();
  EXPECT_EQ((*with_indices)->impl_name(), "ref") << "Indices requested";
}

// Each layout at the kernel level against the reference kernel.
TEST(OpsDnnlPoolTest, PoolPrimitiveEveryLayoutMatchesReferenceKernel) {
  namespace onednn = kernels::onednn;
  namespace ref = kernels::ref;
  Rng rng(TestSeed() + 26);
  std::set<onednn::PoolLayout> used;
  for (auto alg : {onednn::PoolAlgorithm::kMax, onednn::PoolAlgorithm::kAverageIncludePad,
                   onednn::PoolAlgorithm::kAverageExcludePad}) {
    ref::PoolParams p;
    p.batch = 2;
    p.channels = 24;
    p.in = {1, 11, 10};
    p.kernel = {1, 3, 3};
    p.stride = {1, 2, 1};
    p.pad_begin = {0, 1, 1};
    p.pad_end = {0, 1, 0};
    p.out = {1, 6, 9};
    p.count_include_pad = alg == onednn::PoolAlgorithm::kAverageIncludePad;
    const int64_t x_n = p.batch * p.channels * 11 * 10, y_n = p.batch * p.channels * 6 * 9;
    const Tensor x = RandomTensor({x_n}, rng);
    Tensor expect(DType::kF32, {y_n});
    if (alg == onednn::PoolAlgorithm::kMax)
      ref::MaxPool<float>(p, x.data<float>(), expect.data<float>(), nullptr);
    else
      ref::AveragePool<float>(p, x.data<float>(), expect.data<float>());
    onednn::PoolSpec spec;
    spec.algorithm = alg;
    spec.src_dims = {2, 24, 11, 10};
    spec.dst_dims = {2, 24, 6, 9};
    spec.kernel = {3, 3};
    spec.strides = {2, 1};
    spec.dilations = {1, 1};
    spec.pad_begin = {1, 1};
    spec.pad_end = {1, 0};
    spec.ceil_extra_end = {0, 0};
    for (auto layout :
         {onednn::PoolLayout::kPlain, onednn::PoolLayout::kBlocked, onednn::PoolLayout::kAuto}) {
      SCOPED_TRACE(fmt::format("seed {}: algorithm {} layout {}", TestSeed(), static_cast<int>(alg),
                               onednn::PoolLayoutName(layout)));
      auto prim = onednn::PoolPrimitive::Create(spec, layout);
      ASSERT_TRUE(prim.ok()) << prim.status().ToString();
      used.insert((*prim)->layout());
      Tensor y(DType::kF32, {y_n});
      ASSERT_TRUE((*prim)->Execute(x.data<float>(), y.data<float>()).ok());
      EXPECT_LE(MaxRelError(y, expect), kRelTol) << (*prim)->impl_name();
    }
  }
  // With AVX-512 oneDNN 2.6 pools plain tensors with a jit kernel, so both
  // explicit layouts run. With AVX2 it has only "simple_nchw" for plain
  // (slower than kernels/ref, so never used) and a plain request must fall
  // through to blocked nChw8c.
  if (onednn::NativeBlockedLayout() == ActivationLayout::kBlocked16) {
    EXPECT_EQ(used.size(), 2u) << "both explicit layouts ran";
  } else {
    EXPECT_EQ(used, std::set<onednn::PoolLayout>{onednn::PoolLayout::kBlocked})
        << "a plain request falls through to the blocked layout";
  }
}

}  // namespace
}  // namespace wbs::dnnl_test

// The oneDNN Conv/ConvTranspose fast paths (runtime/ops_dnnl_conv.cc,
// kernels/dnnl/conv.*) against the reference operators on random problems,
// every activation layout, sessions, and the declines and errors.
#include <gtest/gtest.h>

#include <set>

#include "kernels/dnnl/conv.h"
#include "kernels/ref/conv.h"
#include "runtime/session.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

struct ConvCase {
  std::vector<Operand> operands;
  Attrs attrs;
  std::string what;
  // A dim with dilation > 1 whose dilated kernel is longer than the input:
  // oneDNN's fused residual declines these (kernels/dnnl/conv.cc).
  bool dilated_overhang = false;
  // Any dilation > 1. Below AVX-512 oneDNN 2.6 has only its reference
  // implementation for some dilated convs (e.g. X [1,6,21,17], W 7x6,
  // dilations [3,2], SAME_LOWER: WBS_TEST_SEED=540851935 on a Zen 3), which
  // the operator declines, so the runtime runs them on kernels/ref.
  bool dilated = false;
  bool MayDecline() const {
    return dilated_overhang ||
           (dilated && kernels::onednn::NativeBlockedLayout() != ActivationLayout::kBlocked16);
  }
};

// A random Conv (or ConvTranspose) problem: groups incl. depthwise, strides
// 1-3, dilations, explicit asymmetric pads or auto_pad, kernels 1..7 (1..3
// in 3-D), 1-3 spatial dims, batch 1 or 3, optional bias, activation.
ConvCase RandomConv(Rng& rng, int index, bool transpose) {
  ConvCase cc;
  const int sr = static_cast<int>(Chance(rng, 0.2) ? 3 : Uniform(rng, 1, 2));
  const int64_t batch = Chance(rng, 0.3) ? 3 : 1;
  int64_t group = 1, cpg = 1, mpg = 1;
  const int64_t shape_kind = Uniform(rng, 0, 4);
  if (shape_kind == 0) {  // depthwise (channel multiplier 1 or 2)
    group = Uniform(rng, 1, 24);
    cpg = 1;
    mpg = Uniform(rng, 1, 2);
  } else if (shape_kind == 1) {  // grouped
    group = Uniform(rng, 2, 4);
    cpg = Uniform(rng, 1, 6);
    mpg = Uniform(rng, 1, 6);
  } else if (shape_kind == 2) {  // wide enough for blocked layouts
    cpg = Uniform(rng, 16, 40);
    mpg = Uniform(rng, 16, 40);
  } else {
    cpg = Uniform(rng, 1, 8);
    mpg = Uniform(rng, 1, 8);
  }
  const bool pointwise = Chance(rng, 0.2);
  std::vector<int64_t> k(sr), s(sr), d(sr), in(sr), pads(2 * sr, 0);
  for (int i = 0; i < sr; ++i) {
    k[i] = pointwise ? 1 : Uniform(rng, 1, sr == 3 ? 3 : 7);
    s[i] = Uniform(rng, 1, 3);
    d[i] = Chance(rng, 0.25) ? Uniform(rng, 2, 3) : 1;
  }
  const int64_t pad_mode = Uniform(rng, 0, 4);  // explicit, SAME_UPPER, SAME_LOWER, VALID, none
  // ConvTranspose: output_padding below the stride (see the decline test for
  // larger ones).
  std::vector<int64_t> op(sr, 0);
  for (int i = 0; i < sr; ++i) {
    if (transpose && Chance(rng, 0.3)) op[i] = Uniform(rng, 0, s[i] - 1);
  }
  for (int i = 0; i < sr; ++i) {
    const int64_t dk = (k[i] - 1) * d[i] + 1;
    if (transpose) {
      in[i] = Uniform(rng, 1, sr == 3 ? 4 : 8);
      // Pads may not consume the whole natural output.
      const int64_t natural = s[i] * (in[i] - 1) + op[i] + dk;
      if (pad_mode == 0) {
        pads[i] = Uniform(rng, 0, std::min(dk - 1, (natural - 1) / 2));
        pads[i + sr] = Uniform(rng, 0, std::min(dk - 1, (natural - 1) / 2));
      }
      continue;
    }
    if (pad_mode == 0) {
      pads[i] = Uniform(rng, 0, dk - 1);
      pads[i + sr] = Uniform(rng, 0, dk - 1);
    }
    const int64_t span = std::max<int64_t>(1, dk - pads[i] - pads[i + sr]);
    in[i] = span + Uniform(rng, 0, sr == 3 ? 3 : 7);
  }
  const int64_t c = group * cpg, m = group * mpg;
  Shape x_shape = {batch, c}, w_shape = transpose ? Shape{c, mpg} : Shape{m, cpg};
  x_shape.insert(x_shape.end(), in.begin(), in.end());
  w_shape.insert(w_shape.end(), k.begin(), k.end());
  cc.operands.push_back({RandomTensor(x_shape, rng)});
  cc.operands.push_back({RandomTensor(w_shape, rng), /*constant=*/true});
  const bool bias = Chance(rng, 0.5);
  if (bias) cc.operands.push_back({RandomTensor({m}, rng), Chance(rng, 0.7)});

  cc.attrs["strides"] = s;
  cc.attrs["dilations"] = d;
  for (size_t i = 0; i < d.size(); ++i)
    cc.dilated_overhang |= d[i] > 1 && in[i] < (k[i] - 1) * d[i] + 1;
  for (int64_t v : d) cc.dilated |= v > 1;
  if (group > 1) cc.attrs["group"] = group;
  if (Chance(rng, 0.5)) cc.attrs["kernel_shape"] = k;
  static const char* kAutoPad[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"};
  if (pad_mode == 0) cc.attrs["pads"] = pads;
  if (pad_mode >= 1 && pad_mode <= 3) cc.attrs["auto_pad"] = std::string(kAutoPad[pad_mode]);
  std::string extra;
  if (transpose) {
    if (std::any_of(op.begin(), op.end(), [](int64_t v) { return v != 0; })) {
      cc.attrs["output_padding"] = op;
      extra += " output_padding " + ShapeToString(op);
    }
    if (pad_mode == 4 && Chance(rng, 0.5)) {
      // output_shape at or a little below the natural size (larger ones
      // are in the decline test).
      std::vector<int64_t> os(sr);
      for (int i = 0; i < sr; ++i) {
        const int64_t natural = s[i] * (in[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1;
        os[i] = std::max<int64_t>(1, natural - Uniform(rng, 0, 2));
      }
      cc.attrs["output_shape"] = os;
      extra += " output_shape " + ShapeToString(os);
    }
  }
  const std::string act = AddActivation(index, rng, &cc.attrs);
  cc.what = fmt::format(
      "case {}: X {} W {} group {} strides {} dilations {} pads {} auto_pad {} bias {}{} act {}",
      index, ShapeToString(x_shape), ShapeToString(w_shape), group, ShapeToString(s),
      ShapeToString(d), ShapeToString(pads), kAutoPad[pad_mode], bias, extra, act);
  return cc;
}

TEST(OpsDnnlTest, ConvMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed());
  for (int i = 0; i < 120; ++i) {
    ConvCase cc = RandomConv(rng, i, /*transpose=*/false);
    ExpectFastMatchesReference("Conv", cc.operands, cc.attrs, cc.what, cc.MayDecline());
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlTest, ConvTransposeMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 1);
  for (int i = 0; i < 80; ++i) {
    ConvCase cc = RandomConv(rng, i, /*transpose=*/true);
    ExpectFastMatchesReference("ConvTranspose", cc.operands, cc.attrs, cc.what, cc.MayDecline());
    if (HasFatalFailure()) return;
  }
}

// A fused residual (ir/graph.h): random convs with a 4th input of the
// output's shape, with and without bias and activation.
TEST(OpsDnnlTest, ConvWithResidualMatchesReference) {
  Rng rng(TestSeed() + 13);
  for (int i = 0; i < 60; ++i) {
    ConvCase cc = RandomConv(rng, i, /*transpose=*/false);
    auto plain = Prepare("Conv", cc.operands, cc.attrs);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    cc.operands.resize(3);  // an absent bias stays an omitted input
    cc.operands.push_back({RandomTensor(plain->out_shape, rng), /*constant=*/Chance(rng, 0.2)});
    cc.attrs["wbs.residual"] = int64_t{1};
    ExpectFastMatchesReference("Conv", cc.operands, cc.attrs, cc.what + " + residual",
                               /*may_decline=*/cc.MayDecline(),
                               /*threads=*/i % 5 == 0 ? 2 : 1);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlTest, ConvWithTwoThreadsMatchesReference) {
  Rng rng(TestSeed() + 2);
  for (int i = 0; i < 6; ++i) {
    ConvCase cc = RandomConv(rng, i, /*transpose=*/i % 2 == 1);
    ExpectFastMatchesReference(i % 2 ? "ConvTranspose" : "Conv", cc.operands, cc.attrs, cc.what,
                               cc.MayDecline(), /*threads=*/2);
    if (HasFatalFailure()) return;
  }
}

// ResNet-50-like layers in every activation layout, at the kernel level: each
// layout must compute the reference result.
TEST(OpsDnnlTest, ConvPrimitiveEveryLayoutMatchesReferenceKernel) {
  namespace onednn = kernels::onednn;
  namespace ref = kernels::ref;
  Rng rng(TestSeed() + 3);
  struct Layer {
    int64_t c, m, group, hw, k, stride, spatial_rank;
  };
  const Layer layers[] = {{32, 32, 1, 9, 3, 1, 2},
                          {64, 16, 1, 7, 1, 1, 2},
                          {48, 48, 48, 8, 3, 2, 2},
                          {16, 32, 1, 5, 3, 1, 3},
                          {32, 32, 1, 11, 5, 2, 1}};
  std::set<onednn::ConvLayout> used;
  for (const Layer& l : layers) {
    ref::ConvParams p;
    p.batch = 2;
    p.in_channels = l.c;
    p.out_channels = l.m;
    p.group = l.group;
    p.spatial_rank = static_cast<int>(l.spatial_rank);
    for (int i = ref::kMaxConvSpatialRank - p.spatial_rank; i < ref::kMaxConvSpatialRank; ++i) {
      p.in[i] = l.hw;
      p.kernel[i] = l.k;
      p.stride[i] = l.stride;
      p.pad_begin[i] = l.k / 2;
      p.pad_end[i] = l.k / 2;
      p.out[i] = (l.hw + 2 * (l.k / 2) - l.k) / l.stride + 1;
    }
    p.activation.kind = ref::ActivationKind::kRelu;
    int64_t x_n = p.batch * p.in_channels, y_n = p.batch * p.out_channels, w_n = p.out_channels;
    w_n *= p.in_channels / p.group;
    for (int i = 0; i < ref::kMaxConvSpatialRank; ++i) {
      x_n *= p.in[i];
      y_n *= p.out[i];
      w_n *= p.kernel[i];
    }
    Tensor x = RandomTensor({x_n}, rng), w = RandomTensor({w_n}, rng), b = RandomTensor({l.m}, rng);
    Tensor expect(DType::kF32, {y_n});
    ref::Conv<float>(p, x.data<float>(), w.data<float>(), b.data<float>(), expect.data<float>());
    for (auto layout : {onednn::ConvLayout::kPlain, onednn::ConvLayout::kAny,
                        onednn::ConvLayout::kBlocked, onednn::ConvLayout::kAuto}) {
      SCOPED_TRACE(fmt::format("seed {}: c {} m {} group {} hw {} k {} stride {} rank {} layout {}",
                               TestSeed(), l.c, l.m, l.group, l.hw, l.k, l.stride, l.spatial_rank,
                               onednn::ConvLayoutName(layout)));
      // A layout oneDNN cannot serve falls through to the others.
      auto prim = onednn::ConvPrimitive::Create(p, false, true, layout);
      ASSERT_TRUE(prim.ok()) << prim.status().ToString();
      used.insert((*prim)->layout());
      auto packed = (*prim)->PackWeights(w.data<float>());
      ASSERT_TRUE(packed.ok()) << packed.status().ToString();
      Tensor y(DType::kF32, {y_n});
      ASSERT_TRUE(
          (*prim)->Execute(x.data<float>(), *packed, b.data<float>(), y.data<float>()).ok());
      EXPECT_LE(MaxRelError(y, expect), kRelTol) << (*prim)->impl_name();
    }
  }
  EXPECT_EQ(used.size(), 3u) << "every explicit layout ran on some layer";
}

TEST(OpsDnnlTest, ConvWithUnknownBatchBuildsPerShape) {
  Rng rng(TestSeed() + 4);
  std::vector<Operand> ops = {{RandomTensor({2, 8, 9, 9}, rng), false, /*dynamic_batch=*/true},
                              {RandomTensor({16, 8, 3, 3}, rng), true},
                              {RandomTensor({16}, rng), true}};
  Attrs attrs = {{"pads", std::vector<int64_t>{1, 0, 2, 1}}};
  auto prep = Prepare("Conv", ops, attrs);
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok() && ref.ok());
  ASSERT_TRUE(IsFast(**fast)) << (*fast)->impl_name();
  for (int64_t batch : {2, 3, 2}) {
    ops[0].t = RandomTensor({batch, 8, 9, 9}, rng);
    Shape out = {batch, 16, 10, 8};
    auto yf = RunOp(**fast, ops, out);
    auto yr = RunOp(**ref, ops, out);
    ASSERT_TRUE(yf.ok()) << yf.status().ToString();
    ASSERT_TRUE(yr.ok()) << yr.status().ToString();
    EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "batch " << batch;
  }
}

TEST(OpsDnnlTest, EmptyBatchRunsOnTheFallback) {
  Rng rng(TestSeed() + 11);
  std::vector<Operand> ops = {{RandomTensor({2, 3, 5, 5}, rng), false, /*dynamic_batch=*/true},
                              {RandomTensor({4, 3, 3, 3}, rng), true}};
  auto prep = Prepare("Conv", ops, {});
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  ASSERT_TRUE(fast.ok() && IsFast(**fast));
  ops[0].t = Tensor(DType::kF32, {0, 3, 5, 5});
  auto y = RunOp(**fast, ops, {0, 4, 3, 3});
  EXPECT_TRUE(y.ok()) << y.status().ToString();
  // The operator still serves non-empty batches afterwards.
  ops[0].t = RandomTensor({1, 3, 5, 5}, rng);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(ref.ok());
  auto yf = RunOp(**fast, ops, {1, 4, 3, 3});
  auto yr = RunOp(**ref, ops, {1, 4, 3, 3});
  ASSERT_TRUE(yf.ok() && yr.ok());
  EXPECT_LE(MaxRelError(*yf, *yr), kRelTol);
}

TEST(OpsDnnlTest, ConvDeclinesWhatItDoesNotHandle) {
  Rng rng(TestSeed() + 5);
  auto expect_reference = [](const std::string& op, const std::vector<Operand>& ops,
                             const Attrs& attrs, const char* why) {
    SCOPED_TRACE(why);
    auto prep = Prepare(op, ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok()) << fast.status().ToString();
    EXPECT_EQ((*fast)->impl_name(), "ref");
  };
  const Tensor x = RandomTensor({1, 4, 6, 6}, rng), w = RandomTensor({8, 4, 3, 3}, rng);
  expect_reference("Conv", {{x}, {w, /*constant=*/false}}, {}, "run-time weights");
  auto x64 = x.CastTo(DType::kF64), w64 = w.CastTo(DType::kF64);
  ASSERT_TRUE(x64.ok() && w64.ok());
  expect_reference("Conv", {{*x64}, {*w64, true}}, {}, "f64");
  expect_reference("ConvTranspose", {{x}, {RandomTensor({4, 2, 3, 3}, rng), false}}, {},
                   "run-time weights");
  // oneDNN accepts at most stride - 1 outputs past the natural size.
  const Tensor wt = RandomTensor({4, 2, 3, 3}, rng);
  const Attrs past_natural = {{"strides", std::vector<int64_t>{2, 2}},
                              {"output_shape", std::vector<int64_t>{15, 13}}};  // natural 13
  expect_reference("ConvTranspose", {{x}, {wt, true}}, past_natural, "output_shape > natural");
  ExpectFastMatchesReference("ConvTranspose", {{x}, {wt, true}}, past_natural,
                             "output_shape > natural", /*may_decline=*/true);
  const Attrs big_output_padding = {{"dilations", std::vector<int64_t>{3, 3}},
                                    {"output_padding", std::vector<int64_t>{2, 0}}};
  expect_reference("ConvTranspose", {{x}, {wt, true}}, big_output_padding,
                   "output_padding >= stride");
  // The declined operator still computes.
  ExpectFastMatchesReference("Conv", {{x}, {w, false}}, {}, "run-time weights",
                             /*may_decline=*/true);
}

TEST(OpsDnnlTest, ConvRunErrorsAreValues) {
  Rng rng(TestSeed() + 6);
  std::vector<Operand> ops = {{RandomTensor({1, 4, 6, 6}, rng)},
                              {RandomTensor({8, 4, 3, 3}, rng), true}};
  auto prep = Prepare("Conv", ops, {});
  ASSERT_TRUE(prep.ok());
  auto fast = CreateOp(*prep, Backend::kFast);
  ASSERT_TRUE(fast.ok() && IsFast(**fast));
  auto wrong_out = RunOp(**fast, ops, {1, 8, 5, 5});
  ASSERT_FALSE(wrong_out.ok());
  EXPECT_EQ(wrong_out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_out.status().message().find("n0"), std::string::npos)
      << wrong_out.status().message();
  ops[0].t = RandomTensor({1, 5, 6, 6}, rng);  // channels do not match W
  auto wrong_in = RunOp(**fast, ops, {1, 8, 4, 4});
  ASSERT_FALSE(wrong_in.ok());
  EXPECT_EQ(wrong_in.status().code(), StatusCode::kInvalidArgument);
}

// A small network through whole sessions: the fast session runs its convs on
// oneDNN (activations fused by the default passes) and agrees with the
// reference session.
TEST(OpsDnnlTest, FastSessionMatchesReferenceSession) {
  Rng rng(TestSeed() + 12);
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kF32, {-1, 8, 12, 12});
  ir::Value* w1 = g.AddConstant("w1", RandomTensor({16, 8, 3, 3}, rng));
  ir::Value* b1 = g.AddConstant("b1", RandomTensor({16}, rng));
  ir::Node* c1 = g.AddNode("Conv", {x, w1, b1}, 1, "conv1");
  c1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  ir::Node* r1 = g.AddNode("Relu", {c1->outputs[0]}, 1, "relu1");
  ir::Value* w2 = g.AddConstant("w2", RandomTensor({16, 1, 3, 3}, rng));
  ir::Node* c2 = g.AddNode("Conv", {r1->outputs[0], w2}, 1, "conv2_dw");
  c2->attrs["group"] = int64_t{16};
  c2->attrs["strides"] = std::vector<int64_t>{2, 2};
  ir::Value* lo = g.AddConstant("lo", Tensor::Scalar<float>(0.0f));
  ir::Value* hi = g.AddConstant("hi", Tensor::Scalar<float>(0.5f));
  ir::Node* clip = g.AddNode("Clip", {c2->outputs[0], lo, hi}, 1, "clip2");
  g.outputs.push_back(clip->outputs[0]);

  const Tensor input = RandomTensor({3, 8, 12, 12}, rng);
  std::vector<Tensor> outputs[2];
  for (Backend backend : {Backend::kFast, Backend::kReference}) {
    runtime::SessionOptions options;
    options.backend = backend;
    options.input_shapes["x"] = input.shape();
    auto session = runtime::Session::Create(g, options);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    int onednn_convs = 0;
    for (const std::string& impl : (*session)->NodeImplementations())
      onednn_convs += impl.rfind("Conv:onednn", 0) == 0;
    EXPECT_EQ(onednn_convs, backend == Backend::kFast ? 2 : 0);
    auto y = (*session)->Run({input});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    outputs[backend == Backend::kFast ? 0 : 1] = *y;
  }
  ASSERT_EQ(outputs[0].size(), 1u);
  ASSERT_EQ(outputs[0][0].shape(), (Shape{3, 16, 5, 5}));
  EXPECT_LE(MaxRelError(outputs[0][0], outputs[1][0]), kRelTol);
}

// Residual blocks through whole sessions: the default passes fuse
// Conv -> Add [-> Relu] into single oneDNN convs, and the result agrees with
// the unoptimized graph on the reference backend.
TEST(OpsDnnlTest, FusedResidualSessionMatchesUnfusedReference) {
  Rng rng(TestSeed() + 14);
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kF32, {-1, 16, 10, 10});
  // ResNet: relu(conv(x) + x).
  ir::Node* c1 = g.AddNode("Conv",
                           {x, g.AddConstant("w1", RandomTensor({16, 16, 3, 3}, rng)),
                            g.AddConstant("b1", RandomTensor({16}, rng))},
                           1, "conv1");
  c1->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  ir::Node* a1 = g.AddNode("Add", {c1->outputs[0], x}, 1, "add1");
  ir::Node* r1 = g.AddNode("Relu", {a1->outputs[0]}, 1, "relu1");
  // MobileNet-v2: r1 + conv(r1), no activation, no bias, residual first.
  ir::Node* c2 = g.AddNode(
      "Conv", {r1->outputs[0], g.AddConstant("w2", RandomTensor({16, 16, 1, 1}, rng))}, 1, "conv2");
  ir::Node* a2 = g.AddNode("Add", {r1->outputs[0], c2->outputs[0]}, 1, "add2");
  g.outputs.push_back(a2->outputs[0]);

  const Tensor input = RandomTensor({2, 16, 10, 10}, rng);
  struct Config {
    Backend backend;
    bool optimize;
  };
  std::vector<Tensor> results;
  for (Config c : {Config{Backend::kFast, true}, Config{Backend::kReference, true},
                   Config{Backend::kReference, false}}) {
    SCOPED_TRACE(fmt::format("{} optimize {}", runtime::BackendName(c.backend), c.optimize));
    runtime::SessionOptions options;
    options.backend = c.backend;
    options.optimize = c.optimize;
    options.input_shapes["x"] = input.shape();
    auto session = runtime::Session::Create(g, options);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    const std::vector<std::string> impls = (*session)->NodeImplementations();
    if (c.optimize) {
      EXPECT_EQ(impls.size(), 2u) << "both Adds and the Relu fused into the convs";
      for (const std::string& impl : impls)
        EXPECT_EQ(impl.rfind(c.backend == Backend::kFast ? "Conv:onednn" : "Conv:ref", 0), 0u)
            << impl;
    }
    auto y = (*session)->Run({input});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    results.push_back((*y)[0]);
  }
  EXPECT_LE(MaxRelError(results[0], results[2]), kRelTol);
  EXPECT_LE(MaxRelError(results[1], results[2]), kRelTol);
}

}  // namespace
}  // namespace wbs::dnnl_test

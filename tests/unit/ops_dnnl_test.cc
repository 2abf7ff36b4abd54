// The oneDNN fast paths (runtime/ops_dnnl*.cc, kernels/dnnl/) against the
// reference operators on random problems, plus the declines and errors.
//
// Random cases are reproducible: the seed is printed and WBS_TEST_SEED=<n>
// replays it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "kernels/dnnl/conv.h"
#include "kernels/ref/activation.h"
#include "kernels/ref/conv.h"
#include "runtime/operator.h"

namespace wbs::dnnl_test {
namespace {

using runtime::Backend;
using Attrs = std::map<std::string, ir::Attribute>;
using Rng = std::mt19937;

constexpr double kRelTol = 1e-4;

uint32_t TestSeed() {
  static const uint32_t seed = [] {
    const char* env = std::getenv("WBS_TEST_SEED");
    const uint32_t s = env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10))
                           : std::random_device{}();
    std::printf("ops_dnnl_test: seed %u (replay with WBS_TEST_SEED=%u)\n", s, s);
    return s;
  }();
  return seed;
}

int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
float UniformF(Rng& rng, float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}
bool Chance(Rng& rng, double p) { return std::bernoulli_distribution(p)(rng); }

Tensor RandomTensor(Shape shape, Rng& rng) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = UniformF(rng, -1.0f, 1.0f);
  return t;
}

// One operand of a test node: a run-time input (optionally with an unknown
// batch dim at creation) or a constant initializer.
struct Operand {
  Tensor t;
  bool constant = false;
  bool dynamic_batch = false;
};

// A one-node graph with its operator creation arguments.
struct Prepared {
  std::unique_ptr<ir::Graph> graph;
  ir::Node* node = nullptr;
  runtime::OpCreateArgs args;
  Shape out_shape;
};

Result<Prepared> Prepare(const std::string& op, const std::vector<Operand>& operands,
                         const Attrs& attrs) {
  Prepared p;
  p.graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *p.graph;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < operands.size(); ++i) {
    const Operand& o = operands[i];
    const std::string name = "in" + std::to_string(i);
    if (!o.t.defined()) {
      ins.push_back(nullptr);
    } else if (o.constant) {
      ins.push_back(g.AddConstant(name, o.t));
    } else {
      Shape s = o.t.shape();
      if (o.dynamic_batch) s[0] = -1;
      ins.push_back(g.AddInput(name, o.t.dtype(), s));
    }
  }
  p.node = g.AddNode(op, ins, 1, "n0");
  p.node->attrs = attrs;
  g.outputs.push_back(p.node->outputs[0]);
  WBS_RETURN_IF_ERROR(ir::InferShapes(g));
  p.args.node = p.node;
  for (ir::Value* v : ins) p.args.inputs.push_back(ir::ValueInfo::FromValue(v));
  p.args.outputs.push_back(ir::ValueInfo::FromValue(p.node->outputs[0]));
  // The run-time output shape, from the concrete operands.
  std::vector<ir::ValueInfo> concrete, out;
  for (const Operand& o : operands) concrete.push_back(ir::ValueInfo::FromTensor(&o.t));
  WBS_RETURN_IF_ERROR(ir::InferNode(*p.node, concrete, out));
  p.out_shape = out[0].shape;
  return p;
}

Result<std::unique_ptr<runtime::Operator>> CreateOp(const Prepared& p, Backend backend) {
  runtime::OpCreateArgs args = p.args;
  args.backend = backend;
  return runtime::CreateOperator(args);
}

Result<Tensor> RunOp(runtime::Operator& op, const std::vector<Operand>& operands,
                     const Shape& out_shape, int threads = 1) {
  std::vector<const Tensor*> ins;
  for (const Operand& o : operands) ins.push_back(o.t.defined() ? &o.t : nullptr);
  Tensor y(DType::kF32, out_shape);
  runtime::ExecContext ctx;
  ctx.num_threads = threads;
  WBS_RETURN_IF_ERROR(op.Run(ins, {&y}, ctx));
  return y;
}

// max_i |a_i - b_i| / max(1, |b_i|).
double MaxRelError(const Tensor& a, const Tensor& b) {
  double worst = 0.0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    const double x = a.data<float>()[i], r = b.data<float>()[i];
    worst = std::max(worst, std::abs(x - r) / std::max(1.0, std::abs(r)));
  }
  return worst;
}

bool IsFast(const runtime::Operator& op) { return op.impl_name().rfind("onednn", 0) == 0; }

// Creates the fast and the reference operator for the same node, expects the
// fast one to be oneDNN (unless `may_decline`), runs both and compares.
void ExpectFastMatchesReference(const std::string& op_type, const std::vector<Operand>& operands,
                                const Attrs& attrs, const std::string& what,
                                bool may_decline = false, int threads = 1) {
  SCOPED_TRACE(fmt::format("seed {}: {} {}", TestSeed(), op_type, what));
  auto prep = Prepare(op_type, operands, attrs);
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  if (!may_decline) {
    EXPECT_TRUE(IsFast(**fast)) << (*fast)->impl_name();
  }
  auto yf = RunOp(**fast, operands, prep->out_shape, threads);
  auto yr = RunOp(**ref, operands, prep->out_shape);
  ASSERT_TRUE(yf.ok()) << yf.status().ToString();
  ASSERT_TRUE(yr.ok()) << yr.status().ToString();
  EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "impl " << (*fast)->impl_name();
}

// A random fused activation (every kind, by `index`) as node attributes.
std::string AddActivation(int index, Rng& rng, Attrs* attrs) {
  using kernels::ref::ActivationKind;
  const auto kind =
      static_cast<ActivationKind>(index % static_cast<int>(ActivationKind::kCount));
  if (kind == ActivationKind::kNone) return "none";
  const std::string name = kernels::ref::ActivationName(kind);
  (*attrs)["wbs.activation"] = name;
  std::string params;
  if (kind == ActivationKind::kLeakyRelu || kind == ActivationKind::kHardSigmoid) {
    const float a = UniformF(rng, 0.05f, 0.4f);
    (*attrs)["wbs.activation_alpha"] = a;
    params += fmt::format(" alpha {}", a);
  }
  if (kind == ActivationKind::kHardSigmoid) {
    const float b = UniformF(rng, 0.3f, 0.7f);
    (*attrs)["wbs.activation_beta"] = b;
    params += fmt::format(" beta {}", b);
  }
  if (kind == ActivationKind::kClip) {
    // Either bound may be absent (then +-inf).
    if (Chance(rng, 0.8)) (*attrs)["wbs.activation_alpha"] = UniformF(rng, -1.0f, 0.0f);
    if (Chance(rng, 0.8)) (*attrs)["wbs.activation_beta"] = UniformF(rng, 0.0f, 1.0f);
  }
  return name + params;
}

// ---------------------------------------------------------------- Conv

struct ConvCase {
  std::vector<Operand> operands;
  Attrs attrs;
  std::string what;
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
    ExpectFastMatchesReference("Conv", cc.operands, cc.attrs, cc.what);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlTest, ConvTransposeMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 1);
  for (int i = 0; i < 80; ++i) {
    ConvCase cc = RandomConv(rng, i, /*transpose=*/true);
    ExpectFastMatchesReference("ConvTranspose", cc.operands, cc.attrs, cc.what);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlTest, ConvWithTwoThreadsMatchesReference) {
  Rng rng(TestSeed() + 2);
  for (int i = 0; i < 6; ++i) {
    ConvCase cc = RandomConv(rng, i, /*transpose=*/i % 2 == 1);
    ExpectFastMatchesReference(i % 2 ? "ConvTranspose" : "Conv", cc.operands, cc.attrs, cc.what,
                               false, /*threads=*/2);
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
  const Layer layers[] = {{32, 32, 1, 9, 3, 1, 2},  {64, 16, 1, 7, 1, 1, 2},
                          {48, 48, 48, 8, 3, 2, 2}, {16, 32, 1, 5, 3, 1, 3},
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
                               TestSeed(), l.c, l.m, l.group, l.hw, l.k, l.stride,
                               l.spatial_rank, onednn::ConvLayoutName(layout)));
      // A layout oneDNN cannot serve falls through to the others.
      auto prim = onednn::ConvPrimitive::Create(p, false, true, layout);
      ASSERT_TRUE(prim.ok()) << prim.status().ToString();
      used.insert((*prim)->layout());
      auto packed = (*prim)->PackWeights(w.data<float>());
      ASSERT_TRUE(packed.ok()) << packed.status().ToString();
      Tensor y(DType::kF32, {y_n});
      ASSERT_TRUE((*prim)->Execute(x.data<float>(), *packed, b.data<float>(), y.data<float>()).ok());
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

// ---------------------------------------------------------------- Gemm / MatMul

TEST(OpsDnnlTest, GemmMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 7);
  for (int i = 0; i < 80; ++i) {
    const int64_t m = Uniform(rng, 1, 40), k = Uniform(rng, 1, 70), n = Uniform(rng, 1, 50);
    const bool ta = Chance(rng, 0.4), tb = Chance(rng, 0.5);
    Attrs attrs;
    if (ta) attrs["transA"] = int64_t{1};
    if (tb) attrs["transB"] = int64_t{1};
    const float alpha = Chance(rng, 0.5) ? 1.0f : UniformF(rng, 0.25f, 2.0f);
    const float beta = Chance(rng, 0.5) ? 1.0f : UniformF(rng, -1.5f, 1.5f);
    if (alpha != 1.0f) attrs["alpha"] = alpha;
    if (beta != 1.0f) attrs["beta"] = beta;
    std::vector<Operand> ops = {{RandomTensor(ta ? Shape{k, m} : Shape{m, k}, rng)},
                                {RandomTensor(tb ? Shape{n, k} : Shape{k, n}, rng),
                                 Chance(rng, 0.7)}};
    // C: absent, scalar, [1], [N], [1, N], [M, 1], [M, N].
    const Shape c_shapes[] = {{}, {1}, {n}, {1, n}, {m, 1}, {m, n}};
    const int64_t c_kind = Uniform(rng, -1, 5);
    bool c_const = false;
    if (c_kind >= 0) {
      c_const = beta != 1.0f || Chance(rng, 0.5);  // run-time C with beta != 1 declines
      ops.push_back({RandomTensor(c_shapes[c_kind], rng), c_const});
    }
    const std::string act = AddActivation(i, rng, &attrs);
    const std::string what = fmt::format(
        "case {}: M {} K {} N {} transA {} transB {} alpha {} beta {} B const {} C {} const {} "
        "act {}",
        i, m, k, n, ta, tb, alpha, beta, ops[1].constant,
        c_kind >= 0 ? ShapeToString(c_shapes[c_kind]) : "none", c_const, act);
    // A run-time [M, 1] C declines when M > 1 and N > 1 (no per-row broadcast).
    const bool may_decline = c_kind == 4 && !c_const && m > 1 && n > 1;
    ExpectFastMatchesReference("Gemm", ops, attrs, what, may_decline);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlTest, MatMulMatchesReferenceOnRandomProblems) {
  Rng rng(TestSeed() + 8);
  for (int i = 0; i < 80; ++i) {
    const int64_t m = Uniform(rng, 1, 24), k = Uniform(rng, 1, 40), n = Uniform(rng, 1, 30);
    const int ra = static_cast<int>(Uniform(rng, 1, 4)), rb = static_cast<int>(Uniform(rng, 1, 4));
    // Batch dims: each 1 (broadcast) or the shared size, right-aligned.
    const int nb = std::max(ra, rb) - 2;
    std::vector<int64_t> batch;
    for (int j = 0; j < nb; ++j) batch.push_back(Uniform(rng, 2, 3));
    auto make = [&](int rank, Shape tail) {
      if (rank == 1) return Shape{k};  // 1-D operands are [K]
      Shape s;
      for (int j = nb - (rank - 2); j < nb; ++j) s.push_back(Chance(rng, 0.3) ? 1 : batch[j]);
      s.insert(s.end(), tail.begin(), tail.end());
      return s;
    };
    const Shape a_shape = make(ra, {m, k}), b_shape = make(rb, {k, n});
    std::vector<Operand> ops = {{RandomTensor(a_shape, rng)},
                                {RandomTensor(b_shape, rng), Chance(rng, 0.6)}};
    Attrs attrs;
    const std::string act = AddActivation(i, rng, &attrs);
    const std::string what = fmt::format("case {}: A {} B {} B const {} act {}", i,
                                         ShapeToString(a_shape), ShapeToString(b_shape),
                                         ops[1].constant, act);
    ExpectFastMatchesReference("MatMul", ops, attrs, what);
    if (HasFatalFailure()) return;
  }
}

TEST(OpsDnnlTest, MatMulWithUnknownBatchBuildsPerShape) {
  Rng rng(TestSeed() + 9);
  std::vector<Operand> ops = {{RandomTensor({2, 5, 12}, rng), false, /*dynamic_batch=*/true},
                              {RandomTensor({12, 7}, rng), true}};
  auto prep = Prepare("MatMul", ops, {{"wbs.activation", std::string("Tanh")}});
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok() && ref.ok());
  ASSERT_TRUE(IsFast(**fast)) << (*fast)->impl_name();
  for (int64_t batch : {2, 4, 1}) {
    ops[0].t = RandomTensor({batch, 5, 12}, rng);
    auto yf = RunOp(**fast, ops, {batch, 5, 7});
    auto yr = RunOp(**ref, ops, {batch, 5, 7});
    ASSERT_TRUE(yf.ok()) << yf.status().ToString();
    ASSERT_TRUE(yr.ok()) << yr.status().ToString();
    EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "batch " << batch;
  }
}

TEST(OpsDnnlTest, GemmAndMatMulDeclineWhatTheyDoNotHandle) {
  Rng rng(TestSeed() + 10);
  const Tensor a = RandomTensor({3, 4}, rng), b = RandomTensor({4, 5}, rng);
  auto expect_reference = [](const std::string& op, const std::vector<Operand>& ops,
                             const Attrs& attrs, const char* why) {
    SCOPED_TRACE(why);
    auto prep = Prepare(op, ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok()) << fast.status().ToString();
    EXPECT_EQ((*fast)->impl_name(), "ref");
  };
  expect_reference("Gemm", {{a}, {b, true}, {RandomTensor({3, 5}, rng)}},
                   {{"beta", 0.5f}}, "run-time C with beta != 1");
  expect_reference("Gemm", {{a}, {b, true}}, {{"alpha", 0.0f}}, "alpha 0");
  auto a64 = a.CastTo(DType::kF64), b64 = b.CastTo(DType::kF64);
  ASSERT_TRUE(a64.ok() && b64.ok());
  expect_reference("MatMul", {{*a64}, {*b64, true}}, {}, "f64");
  ExpectFastMatchesReference("Gemm", {{a}, {b, true}, {RandomTensor({3, 5}, rng)}},
                             {{"beta", 0.5f}}, "declined run-time C", /*may_decline=*/true);
}

}  // namespace
}  // namespace wbs::dnnl_test

// Conv / ConvTranspose reference operators.
// Expected values come from hand computation or from the direct ONNX
// formulas below (written per output element, independently of the loop
// nests in kernels/ref/), plus properties: grouping, depthwise, dilation as
// a zero-dilated kernel, and ConvTranspose as the adjoint of Conv.
#include <gtest/gtest.h>

#include "tests/unit/ops_nn_test_util.h"

namespace wbs::nn_test {
namespace {

using Ints = std::vector<int64_t>;

// ---------------------------------------------------------------------------
// Direct formulas (double precision).

// y[n,m,o] = b[m] + sum_{c in group(m), k} x[n,c,o*s - pb + k*d] * w[m,c',k].
std::vector<double> NaiveConv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t group,
                              const Ints& s, const Ints& d, const Ints& pads, const Shape& y_shape) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const size_t r = xs.size() - 2;
  const auto xv = x.ToVector<double>();
  const auto wv = w.ToVector<double>();
  const std::vector<double> bv = b ? b->ToVector<double>() : std::vector<double>();
  const int64_t mg = ws[0] / group, cg = ws[1];
  const Ints kdims(ws.begin() + 2, ws.end());
  std::vector<double> y(static_cast<size_t>(NumElements(y_shape)));
  ForEachIndex(y_shape, [&](const Ints& o) {
    const int64_t n = o[0], m = o[1], g = m / mg;
    double acc = b ? bv[m] : 0.0;
    for (int64_t ci = 0; ci < cg; ++ci) {
      ForEachIndex(kdims, [&](const Ints& k) {
        Ints xi = {n, g * cg + ci};
        for (size_t i = 0; i < r; ++i) {
          const int64_t pos = o[2 + i] * s[i] - pads[i] + k[i] * d[i];
          if (pos < 0 || pos >= xs[2 + i]) return;
          xi.push_back(pos);
        }
        Ints wi = {m, ci};
        wi.insert(wi.end(), k.begin(), k.end());
        acc += xv[Offset(xs, xi)] * wv[Offset(ws, wi)];
      });
    }
    y[Offset(y_shape, o)] = acc;
  });
  return y;
}

// Scatter form: y[n, g*Mg + m', j*s - pb + k*d] += x[n,c,j] * w[c,m',k]; + b.
std::vector<double> NaiveConvTranspose(const Tensor& x, const Tensor& w, const Tensor* b,
                                       int64_t group, const Ints& s, const Ints& d,
                                       const Ints& pad_begin, const Shape& y_shape) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const size_t r = xs.size() - 2;
  const auto xv = x.ToVector<double>();
  const auto wv = w.ToVector<double>();
  const int64_t cg = xs[1] / group, mg = ws[1];
  const Ints kdims(ws.begin() + 2, ws.end());
  std::vector<double> y(static_cast<size_t>(NumElements(y_shape)), 0.0);
  ForEachIndex(xs, [&](const Ints& j) {
    const int64_t n = j[0], c = j[1], g = c / cg;
    for (int64_t mi = 0; mi < mg; ++mi) {
      ForEachIndex(kdims, [&](const Ints& k) {
        Ints yi = {n, g * mg + mi};
        for (size_t i = 0; i < r; ++i) {
          const int64_t pos = j[2 + i] * s[i] - pad_begin[i] + k[i] * d[i];
          if (pos < 0 || pos >= y_shape[2 + i]) return;
          yi.push_back(pos);
        }
        Ints wi = {c, mi};
        wi.insert(wi.end(), k.begin(), k.end());
        y[Offset(y_shape, yi)] += xv[Offset(xs, j)] * wv[Offset(ws, wi)];
      });
    }
  });
  if (b) {
    const auto bv = b->ToVector<double>();
    const int64_t plane = NumElements(Shape(y_shape.begin() + 2, y_shape.end()));
    for (size_t i = 0; i < y.size(); ++i) y[i] += bv[(static_cast<int64_t>(i) / plane) % y_shape[1]];
  }
  return y;
}

double Dot(const Tensor& a, const Tensor& b) {
  const auto av = a.ToVector<double>(), bv = b.ToVector<double>();
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += av[i] * bv[i];
  return s;
}

// ---------------------------------------------------------------------------
// Conv.

TEST(ConvTest, HandComputed3x3OnIota4x4) {
  // x[i][j] = 4i + j; a 3x3 all-ones kernel sums a block whose mean is its
  // centre (the field is linear), so y[i][j] = 9 * (4(i+1) + (j+1)).
  const Tensor x = Iota({1, 1, 4, 4});
  const Tensor w = Tensor::FromVector<float>({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  auto y = RunNode("Conv", {x, w});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  ASSERT_EQ((*y)[0].shape(), (Shape{1, 1, 2, 2}));
  EXPECT_TRUE(AllClose((*y)[0], {9.0 * 5, 9.0 * 6, 9.0 * 9, 9.0 * 10}));

  // pads 1 and bias 0.5: corner (0,0) sums x[0..1][0..1] = 0+1+4+5.
  const Tensor b = Tensor::FromVector<float>({1}, {0.5f});
  y = RunNode("Conv", {x, w, b}, {{"pads", Ints{1, 1, 1, 1}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  ASSERT_EQ((*y)[0].shape(), (Shape{1, 1, 4, 4}));
  EXPECT_FLOAT_EQ((*y)[0].data<float>()[0], 10.5f);
  EXPECT_FLOAT_EQ((*y)[0].data<float>()[5], 9.0f * 5 + 0.5f);
  EXPECT_FLOAT_EQ((*y)[0].data<float>()[15], 10 + 11 + 14 + 15 + 0.5f);
}

struct ConvCase {
  Shape x, w;
  int64_t group;
  Ints strides, dilations, pads;
  bool bias;
};

std::string Describe(const ConvCase& c) {
  return "x " + ShapeToString(c.x) + " w " + ShapeToString(c.w) + " group " +
         std::to_string(c.group) + " strides " + ShapeToString(c.strides) + " dilations " +
         ShapeToString(c.dilations) + " pads " + ShapeToString(c.pads);
}

const std::vector<ConvCase>& ConvCases() {
  static const std::vector<ConvCase> cases = {
      {{2, 3, 9}, {4, 3, 3}, 1, {2}, {1}, {1, 2}, true},                        // 1-D
      {{1, 2, 11}, {2, 1, 4}, 2, {3}, {2}, {0, 3}, false},                      // 1-D grouped
      {{2, 3, 7, 6}, {5, 3, 3, 2}, 1, {1, 2}, {1, 1}, {1, 0, 2, 1}, true},      // 2-D asym pads
      {{1, 4, 8, 8}, {6, 2, 3, 3}, 2, {2, 2}, {2, 1}, {2, 1, 0, 1}, true},      // 2-D grouped
      {{1, 4, 6, 5}, {4, 1, 3, 3}, 4, {1, 1}, {1, 1}, {1, 1, 1, 1}, true},      // depthwise
      {{1, 4, 6, 5}, {8, 1, 3, 3}, 4, {2, 1}, {1, 2}, {1, 2, 1, 2}, false},     // multiplier 2
      {{1, 2, 5, 6, 4}, {3, 2, 2, 3, 2}, 1, {1, 2, 1}, {2, 1, 1}, {0, 1, 1, 1, 0, 0}, true},  // 3-D
      {{1, 1, 3, 3}, {1, 1, 5, 5}, 1, {1, 1}, {1, 1}, {2, 2, 2, 2}, false},     // kernel > input
  };
  return cases;
}

TEST(ConvTest, MatchesDirectFormula) {
  uint32_t seed = 100;
  for (const ConvCase& c : ConvCases()) {
    SCOPED_TRACE(Describe(c) + " seed " + std::to_string(seed));
    const Tensor x = Random(c.x, seed++);
    const Tensor w = Random(c.w, seed++);
    const Tensor b = c.bias ? Random({c.w[0]}, seed++) : Tensor();
    const Attrs attrs = {{"group", c.group}, {"strides", c.strides},
                         {"dilations", c.dilations}, {"pads", c.pads}};
    auto y = RunNode("Conv", {x, w, b}, attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    // Output dims from the ONNX formula, independently of ir/conv_geometry.
    Shape ys = {c.x[0], c.w[0]};
    const size_t r = c.x.size() - 2;
    for (size_t i = 0; i < r; ++i) {
      const int64_t dk = (c.w[2 + i] - 1) * c.dilations[i] + 1;
      ys.push_back((c.x[2 + i] + c.pads[i] + c.pads[r + i] - dk) / c.strides[i] + 1);
    }
    ASSERT_EQ((*y)[0].shape(), ys);
    EXPECT_TRUE(AllClose((*y)[0], NaiveConv(x, w, c.bias ? &b : nullptr, c.group, c.strides,
                                            c.dilations, c.pads, ys)));
    // f64 through the same operator.
    auto y64 = RunNode("Conv",
                       {*x.CastTo(DType::kF64), *w.CastTo(DType::kF64),
                        c.bias ? *b.CastTo(DType::kF64) : Tensor()},
                       attrs);
    ASSERT_TRUE(y64.ok()) << y64.status().ToString();
    EXPECT_EQ((*y64)[0].dtype(), DType::kF64);
    EXPECT_TRUE(AllClose((*y64)[0], NaiveConv(x, w, c.bias ? &b : nullptr, c.group, c.strides,
                                              c.dilations, c.pads, ys),
                         1e-12, 1e-12));
  }
}

TEST(ConvTest, ThreadsGiveIdenticalResults) {
  const Tensor x = Random({2, 4, 9, 9}, 7);
  const Tensor w = Random({6, 2, 3, 3}, 8);
  const Attrs attrs = {{"group", int64_t{2}}, {"pads", Ints{1, 1, 1, 1}}};
  auto one = RunNode("Conv", {x, w}, attrs);
  RunOptions o;
  o.num_threads = 2;
  auto two = RunNode("Conv", {x, w}, attrs, o);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_TRUE((*one)[0].Identical((*two)[0]));
}

TEST(ConvTest, GroupedEqualsConcatOfSeparateConvs) {
  const int64_t groups = 3, cg = 2, mg = 2;
  const Tensor x = Random({2, groups * cg, 7, 7}, 11);
  const Tensor w = Random({groups * mg, cg, 3, 3}, 12);
  const Attrs attrs = {{"strides", Ints{2, 1}}, {"pads", Ints{1, 0, 1, 1}}};
  Attrs grouped = attrs;
  grouped["group"] = groups;
  auto y = RunNode("Conv", {x, w}, grouped);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  const Tensor& yg = (*y)[0];
  const Shape& ys = yg.shape();
  const int64_t plane = ys[2] * ys[3], xplane = 7 * 7;
  for (int64_t g = 0; g < groups; ++g) {
    // Slice the group's input channels and filters.
    Tensor xg(DType::kF32, {2, cg, 7, 7});
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < cg * xplane; ++i)
        xg.data<float>()[n * cg * xplane + i] = x.data<float>()[(n * groups + g) * cg * xplane + i];
    Tensor wg(DType::kF32, {mg, cg, 3, 3});
    for (int64_t i = 0; i < wg.numel(); ++i) wg.data<float>()[i] = w.data<float>()[g * wg.numel() + i];
    auto part = RunNode("Conv", {xg, wg}, attrs);
    ASSERT_TRUE(part.ok());
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < mg * plane; ++i)
        EXPECT_EQ((*part)[0].data<float>()[n * mg * plane + i],
                  yg.data<float>()[(n * groups * mg + g * mg) * plane + i]);
  }
}

TEST(ConvTest, DepthwiseEqualsPerChannelConv) {
  const int64_t c = 3;
  const Tensor x = Random({1, c, 6, 6}, 21);
  const Tensor w = Random({c, 1, 3, 3}, 22);
  auto y = RunNode("Conv", {x, w}, {{"group", c}, {"pads", Ints{1, 1, 1, 1}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  for (int64_t ch = 0; ch < c; ++ch) {
    Tensor xc(DType::kF32, {1, 1, 6, 6}), wc(DType::kF32, {1, 1, 3, 3});
    for (int i = 0; i < 36; ++i) xc.data<float>()[i] = x.data<float>()[ch * 36 + i];
    for (int i = 0; i < 9; ++i) wc.data<float>()[i] = w.data<float>()[ch * 9 + i];
    auto yc = RunNode("Conv", {xc, wc}, {{"pads", Ints{1, 1, 1, 1}}});
    ASSERT_TRUE(yc.ok());
    for (int i = 0; i < 36; ++i)
      EXPECT_EQ((*yc)[0].data<float>()[i], (*y)[0].data<float>()[ch * 36 + i]);
  }
}

TEST(ConvTest, DilationEqualsZeroDilatedKernel) {
  const Tensor x = Random({1, 2, 10, 9}, 31);
  const Tensor w = Random({3, 2, 3, 2}, 32);
  const Ints d = {3, 2};
  // Dilated kernel: taps at k*d, zeros between.
  const int64_t kh = (3 - 1) * d[0] + 1, kw = (2 - 1) * d[1] + 1;
  Tensor wz(DType::kF32, {3, 2, kh, kw});
  for (int64_t o = 0; o < 6; ++o)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j)
        wz.data<float>()[(o * kh + i * d[0]) * kw + j * d[1]] = w.data<float>()[(o * 3 + i) * 2 + j];
  const Ints pads = {1, 2, 0, 1};
  auto yd = RunNode("Conv", {x, w}, {{"dilations", d}, {"pads", pads}});
  auto yz = RunNode("Conv", {x, wz}, {{"pads", pads}});
  ASSERT_TRUE(yd.ok() && yz.ok());
  EXPECT_TRUE(AllClose((*yd)[0], (*yz)[0], 1e-5, 1e-6));
}

TEST(ConvTest, AutoPadSameKeepsSpatialSize) {
  const Tensor x = Random({1, 2, 7, 8}, 41);
  const Tensor w = Random({2, 2, 4, 3}, 42);
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER"}) {
    auto y = RunNode("Conv", {x, w}, {{"auto_pad", std::string(mode)}});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    ASSERT_EQ((*y)[0].shape(), (Shape{1, 2, 7, 8}));
    // Height: total pad 3 -> UPPER (1, 2), LOWER (2, 1); width total 2 -> (1, 1).
    const bool upper = std::string(mode) == "SAME_UPPER";
    const Ints pads = {upper ? 1 : 2, 1, upper ? 2 : 1, 1};
    EXPECT_TRUE(AllClose((*y)[0], NaiveConv(x, w, nullptr, 1, {1, 1}, {1, 1}, pads,
                                            {1, 2, 7, 8})))
        << mode;
  }
}

TEST(ConvTest, FusedActivationsMatchUnfused) {
  const Tensor x = Random({1, 2, 5, 5}, 51);
  const Tensor w = Random({3, 2, 3, 3}, 52, -2.0, 2.0);
  auto plain = RunNode("Conv", {x, w});
  ASSERT_TRUE(plain.ok());
  const auto pv = (*plain)[0].ToVector<double>();
  struct Case {
    std::string op;
    float alpha, beta;
    double (*f)(double, double, double);
  };
  const std::vector<Case> cases = {
      {"Relu", 0, 0, [](double v, double, double) { return v < 0 ? 0.0 : v; }},
      {"LeakyRelu", 0.1f, 0, [](double v, double a, double) { return v < 0 ? a * v : v; }},
      {"Clip", -0.5f, 0.75f,
       [](double v, double lo, double hi) { return std::min(std::max(v, lo), hi); }},
      {"Sigmoid", 0, 0, [](double v, double, double) { return 1 / (1 + std::exp(-v)); }},
      {"HardSigmoid", 0.3f, 0.4f,
       [](double v, double a, double b) { return std::max(0.0, std::min(1.0, a * v + b)); }},
      {"Tanh", 0, 0, [](double v, double, double) { return std::tanh(v); }},
  };
  for (const Case& c : cases) {
    Attrs attrs = {{"wbs.activation", c.op},
                   {"wbs.activation_alpha", c.alpha},
                   {"wbs.activation_beta", c.beta}};
    auto y = RunNode("Conv", {x, w}, attrs);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    std::vector<double> expected;
    for (double v : pv) expected.push_back(c.f(v, c.alpha, c.beta));
    EXPECT_TRUE(AllClose((*y)[0], expected, 1e-5, 1e-6)) << c.op;
  }
  auto bad = RunNode("Conv", {x, w}, {{"wbs.activation", std::string("Gelu")}});
  EXPECT_TRUE(FailsWith(bad.status(), StatusCode::kInvalidArgument, {"'n0'", "Gelu"}));
}

TEST(ConvTest, ShapeErrorsNameTheNode) {
  const Tensor x = Random({1, 4, 6, 6}, 1);
  // Channel mismatch: W expects 3 * 1 = 3 input channels.
  EXPECT_TRUE(FailsWith(InferOnly("Conv", {x, Random({2, 3, 3, 3}, 2)}),
                        StatusCode::kInvalidArgument,
                        {"'bad_node'", "has 4 channels", "expects 3"}));
  // group does not divide the output channels.
  EXPECT_TRUE(FailsWith(InferOnly("Conv", {x, Random({3, 2, 3, 3}, 2)}, {{"group", int64_t{2}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "not divisible by group 2"}));
  EXPECT_TRUE(FailsWith(InferOnly("Conv", {x, Random({4, 4, 3, 3}, 2)}, {{"group", int64_t{0}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "group 0"}));
  // Bias length must equal the output channels.
  EXPECT_TRUE(FailsWith(InferOnly("Conv", {x, Random({2, 4, 3, 3}, 2), Random({3}, 3)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "bias B [3]", "[2]"}));
  EXPECT_TRUE(FailsWith(InferOnly("Conv", {x, Random({2, 4, 3}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "rank"}));
  EXPECT_TRUE(FailsWith(InferOnly("Conv", {x, Random<double>({2, 4, 3, 3}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "dtype f64"}));
}

TEST(ConvTest, UnknownShapesAreNotAnError) {
  ir::Graph g;
  ir::Value* x = g.AddValue("x");
  ir::Value* w = g.AddInput("w", DType::kF32, {8, 3, 3, 3});
  ir::Node* n = g.AddNode("Conv", {x, w}, 1, "c");
  n->attrs["strides"] = Ints{2, 2};
  ir::ValueInfo xi;  // rank unknown
  xi.dtype = DType::kF32;
  std::vector<ir::ValueInfo> outs;
  ASSERT_TRUE(ir::InferNode(*n, {xi, ir::ValueInfo::FromValue(w)}, outs).ok());
  EXPECT_FALSE(outs[0].has_shape);
  EXPECT_EQ(outs[0].dtype, DType::kF32);
  // Unknown batch and height: those output dims stay unknown.
  xi.has_shape = true;
  xi.shape = {-1, 3, -1, 9};
  ASSERT_TRUE(ir::InferNode(*n, {xi, ir::ValueInfo::FromValue(w)}, outs).ok());
  ASSERT_TRUE(outs[0].has_shape);
  EXPECT_EQ(outs[0].shape, (Shape{-1, 8, -1, 4}));
}

TEST(ConvTest, UnsupportedDTypeIsUnimplementedAtCreation) {
  const Tensor x(DType::kF16, {1, 1, 4, 4});
  const Tensor w(DType::kF16, {1, 1, 3, 3});
  auto y = RunNode("Conv", {x, w});
  EXPECT_TRUE(FailsWith(y.status(), StatusCode::kUnimplemented, {"'n0'", "f16"}));
}

TEST(ConvTest, RunRejectsInputsThatDifferFromThePlan) {
  // The operator is created for one shape; a run with an incompatible input
  // must fail with a value, not read out of bounds.
  ir::Graph g;
  ir::Value* xv = g.AddInput("x", DType::kF32, {1, 2, 5, 5});
  ir::Value* wv = g.AddInput("w", DType::kF32, {3, 2, 3, 3});
  ir::Node* n = g.AddNode("Conv", {xv, wv}, 1, "planned");
  std::vector<ir::ValueInfo> ins = {ir::ValueInfo::FromValue(xv), ir::ValueInfo::FromValue(wv)};
  std::vector<ir::ValueInfo> outs;
  ASSERT_TRUE(ir::InferNode(*n, ins, outs).ok());
  runtime::OpCreateArgs args;
  args.node = n;
  args.inputs = ins;
  args.outputs = outs;
  args.backend = runtime::Backend::kReference;
  auto op = runtime::CreateOperator(args);
  ASSERT_TRUE(op.ok());
  const Tensor x = Random({1, 3, 5, 5}, 1), w = Random({3, 2, 3, 3}, 2);
  Tensor y(DType::kF32, outs[0].shape);
  Status st = (*op)->Run({&x, &w}, {&y}, runtime::ExecContext{});
  EXPECT_TRUE(FailsWith(st, StatusCode::kInvalidArgument, {"'planned'", "channels"}));
}

// ---------------------------------------------------------------------------
// ConvTranspose.

TEST(ConvTransposeTest, HandComputedStride2) {
  // x = [1, 2], w = [1, 10, 100], s = 2: y[2j + k] += x[j] * w[k].
  const Tensor x = Tensor::FromVector<float>({1, 1, 2}, {1, 2});
  const Tensor w = Tensor::FromVector<float>({1, 1, 3}, {1, 10, 100});
  auto y = RunNode("ConvTranspose", {x, w}, {{"strides", Ints{2}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  ASSERT_EQ((*y)[0].shape(), (Shape{1, 1, 5}));
  EXPECT_TRUE(AllClose((*y)[0], {1, 10, 100 + 2, 20, 200}));
}

struct ConvTCase {
  Shape x, w;  // x [N, C, ...], w [C, M/group, k...]
  int64_t group;
  Ints strides, dilations, pads, output_padding;
  bool bias;
};

TEST(ConvTransposeTest, MatchesScatterFormula) {
  const std::vector<ConvTCase> cases = {
      {{1, 2, 5}, {2, 3, 3}, 1, {2}, {1}, {1, 0}, {1}, true},
      {{2, 4, 4, 3}, {4, 2, 3, 2}, 2, {2, 3}, {1, 2}, {1, 0, 0, 2}, {1, 0}, true},
      {{1, 3, 3, 3}, {3, 1, 3, 3}, 3, {1, 1}, {2, 2}, {0, 0, 0, 0}, {0, 0}, false},
      {{1, 2, 2, 3, 2}, {2, 2, 2, 2, 3}, 1, {2, 1, 2}, {1, 1, 1}, {0, 1, 0, 1, 0, 1}, {1, 0, 0}, true},
  };
  uint32_t seed = 200;
  for (const ConvTCase& c : cases) {
    SCOPED_TRACE("x " + ShapeToString(c.x) + " w " + ShapeToString(c.w));
    const Tensor x = Random(c.x, seed++), w = Random(c.w, seed++);
    const int64_t m = c.w[1] * c.group;
    const Tensor b = c.bias ? Random({m}, seed++) : Tensor();
    auto y = RunNode("ConvTranspose", {x, w, b},
                     {{"group", c.group}, {"strides", c.strides}, {"dilations", c.dilations},
                      {"pads", c.pads}, {"output_padding", c.output_padding}});
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    const size_t r = c.x.size() - 2;
    Shape ys = {c.x[0], m};
    for (size_t i = 0; i < r; ++i) {
      ys.push_back(c.strides[i] * (c.x[2 + i] - 1) + c.output_padding[i] +
                   (c.w[2 + i] - 1) * c.dilations[i] + 1 - c.pads[i] - c.pads[r + i]);
    }
    ASSERT_EQ((*y)[0].shape(), ys);
    EXPECT_TRUE(AllClose((*y)[0], NaiveConvTranspose(x, w, c.bias ? &b : nullptr, c.group,
                                                     c.strides, c.dilations,
                                                     Ints(c.pads.begin(), c.pads.begin() + r), ys)));
  }
}

// <conv(x), y> == <x, convT(y)> for the same weights and geometry: the
// transposed convolution is the adjoint of the convolution.
TEST(ConvTransposeTest, IsTheAdjointOfConv) {
  for (const ConvCase& c : ConvCases()) {
    SCOPED_TRACE(Describe(c));
    const Tensor x = Random(c.x, 301);
    const Tensor w = Random(c.w, 302);
    const Attrs attrs = {{"group", c.group}, {"strides", c.strides},
                         {"dilations", c.dilations}, {"pads", c.pads}};
    auto cy = RunNode("Conv", {x, w}, attrs);
    ASSERT_TRUE(cy.ok()) << cy.status().ToString();
    const Tensor y = Random((*cy)[0].shape(), 303);
    // output_padding recovers the input positions a strided conv skipped.
    const size_t r = c.x.size() - 2;
    Ints op(r);
    for (size_t i = 0; i < r; ++i) {
      const int64_t dk = (c.w[2 + i] - 1) * c.dilations[i] + 1;
      op[i] = (c.x[2 + i] + c.pads[i] + c.pads[r + i] - dk) % c.strides[i];
    }
    Attrs tattrs = attrs;
    tattrs["output_padding"] = op;
    auto tx = RunNode("ConvTranspose", {y, w}, tattrs);
    ASSERT_TRUE(tx.ok()) << tx.status().ToString();
    ASSERT_EQ((*tx)[0].shape(), x.shape());
    const double lhs = Dot((*cy)[0], y), rhs = Dot(x, (*tx)[0]);
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::abs(lhs)));
  }
}

TEST(ConvTransposeTest, OutputShapeAttributePadsAtTheEnd) {
  // Natural size 7 (3 inputs, stride 2, kernel 3); output_shape 8 appends a
  // zero (+bias) column, output_shape 6 drops the last one.
  const Tensor x = Random({1, 1, 3}, 401), w = Random({1, 1, 3}, 402);
  auto full = RunNode("ConvTranspose", {x, w}, {{"strides", Ints{2}}});
  ASSERT_TRUE(full.ok());
  const auto fv = (*full)[0].ToVector<double>();
  auto big = RunNode("ConvTranspose", {x, w}, {{"strides", Ints{2}}, {"output_shape", Ints{8}}});
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  std::vector<double> expected = fv;
  expected.push_back(0);
  EXPECT_TRUE(AllClose((*big)[0], expected));
  auto small = RunNode("ConvTranspose", {x, w},
                       {{"strides", Ints{2}}, {"output_shape", Ints{1, 1, 6}}});
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_TRUE(AllClose((*small)[0], std::vector<double>(fv.begin(), fv.end() - 1)));
}

TEST(ConvTransposeTest, ShapeErrorsNameTheNode) {
  const Tensor x = Random({1, 4, 3, 3}, 1);
  EXPECT_TRUE(FailsWith(InferOnly("ConvTranspose", {x, Random({3, 2, 3, 3}, 2)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "has 4 channels"}));
  EXPECT_TRUE(FailsWith(InferOnly("ConvTranspose", {x, Random({4, 2, 3, 3}, 2)},
                                  {{"group", int64_t{3}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "group 3"}));
  EXPECT_TRUE(FailsWith(InferOnly("ConvTranspose",
                                  {x, Random({4, 2, 3, 3}, 2), Random({2}, 3)},
                                  {{"group", int64_t{2}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "bias B [2]", "[4]"}));
  EXPECT_TRUE(FailsWith(InferOnly("ConvTranspose", {x, Random({4, 2, 3, 3}, 2)},
                                  {{"strides", Ints{2, 2}}, {"output_padding", Ints{2, 0}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "output_padding"}));
}

}  // namespace
}  // namespace wbs::nn_test

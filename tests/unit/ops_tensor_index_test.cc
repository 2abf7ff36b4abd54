// Indexing, padding, resampling and reduction ops: shape rules and reference
// operators against hand-computed values or loops written in the test.
#include <cmath>
#include <limits>

#include "ops_tensor_test_util.h"

namespace wbs::tensor_test {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Tensor Slice1D(const Tensor& x, int64_t start, int64_t end, int64_t step) {
  return Run1("Slice", {x, Ints1D({start}), Ints1D({end}), Ints1D({0}), Ints1D({step})});
}

TEST(Slice, ClampingAndNegativeSteps) {
  const Tensor x = Iota<int64_t>({10});
  EXPECT_TRUE(Near(Slice1D(x, 1, 1000, 1), I64({9}, {1, 2, 3, 4, 5, 6, 7, 8, 9})));
  EXPECT_TRUE(Near(Slice1D(x, -1000, 3, 1), I64({3}, {0, 1, 2})));
  EXPECT_TRUE(Near(Slice1D(x, -3, -1, 1), I64({2}, {7, 8})));
  EXPECT_TRUE(Near(Slice1D(x, 0, kMax, 3), I64({4}, {0, 3, 6, 9})));
  EXPECT_TRUE(Near(Slice1D(x, -1, kMin, -1), I64({10}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0})));
  EXPECT_TRUE(Near(Slice1D(x, 20, 0, -3), I64({3}, {9, 6, 3})));
  EXPECT_TRUE(Near(Slice1D(x, kMin, -1000, -1), I64({1}, {0})));
  EXPECT_TRUE(Near(Slice1D(x, 5, 5, 1), I64({0}, {})));
  EXPECT_TRUE(Near(Slice1D(x, 3, 7, -1), I64({0}, {})));
  EXPECT_TRUE(Near(Slice1D(x, 1000, 2000, 1), I64({0}, {})));
  EXPECT_TRUE(Near(Slice1D(x, 0, kMax, kMax), I64({1}, {0})));
  EXPECT_TRUE(Near(Slice1D(x, 9, kMin, kMin), I64({1}, {9})));
}

TEST(Slice, MultiAxisInputFormMatchesEnumeration) {
  const Tensor x = Iota({3, 4, 5});
  // axes (2, 0) out of order, default axis 1; steps (-2, 1).
  const Tensor y =
      Run1("Slice", {x, Ints1D({-1, 1}), Ints1D({0, 3}), Ints1D({2, -3}), Ints1D({-2, 1})});
  std::vector<float> want;
  for (int64_t i = 1; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 4; k > 0; k -= 2) want.push_back(static_cast<float>((i * 4 + j) * 5 + k));
  EXPECT_TRUE(Near(y, F32({2, 4, 2}, want)));
  // Default axes and steps.
  EXPECT_TRUE(
      Near(Run1("Slice", {Iota({2, 3}), Ints1D({0, 1}), Ints1D({1, 3})}), F32({1, 2}, {1, 2})));
  // int32 parameters.
  EXPECT_TRUE(Near(Run1("Slice", {Iota({4}), I32({1}, {1}), I32({1}, {3})}), F32({2}, {1, 2})));
}

TEST(Slice, AttributeFormBeforeOpset10) {
  const Tensor x = Iota({3, 4});
  const Attrs attrs = {{"starts", std::vector<int64_t>{1, 1}},
                       {"ends", std::vector<int64_t>{kMax, 3}},
                       {"axes", std::vector<int64_t>{0, 1}}};
  EXPECT_TRUE(Near(Run1("Slice", {x}, attrs, {.opset = 9}), F32({2, 2}, {5, 6, 9, 10})));
  EXPECT_TRUE(Near(
      Run1("Slice", {x}, {{"starts", std::vector<int64_t>{2}}, {"ends", std::vector<int64_t>{3}}},
           {.opset = 1}),
      F32({1, 4}, {8, 9, 10, 11})));
}

TEST(Slice, Errors) {
  const Tensor x = Iota({3, 4});
  auto r = RunNode("Slice", {x, Ints1D({0}), Ints1D({2}), Ints1D({0}), Ints1D({0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Slice node 'n0'", "step", "0"}));
  r = RunNode("Slice", {x, Ints1D({0, 0}), Ints1D({2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"Slice node", "entries"}));
  r = RunNode("Slice", {x, Ints1D({0, 0}), Ints1D({2, 2}), Ints1D({1, -1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"repeated"}));
  r = RunNode("Slice", {x, Ints1D({0}), Ints1D({2}), Ints1D({2})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"axis 2 out of range for rank 2"}));
}

TEST(Pad, ConstantInputAndAttributeForms) {
  const Tensor x = F32({2, 2}, {1, 2, 3, 4});
  const Tensor want = F32({3, 5}, {9, 9, 9, 9, 9, 9, 9, 1, 2, 9, 9, 9, 3, 4, 9});
  EXPECT_TRUE(Near(Run1("Pad", {x, Ints1D({1, 2, 0, 1}), F32({}, {9})}), want));
  EXPECT_TRUE(Near(
      Run1("Pad", {x}, {{"pads", std::vector<int64_t>{1, 2, 0, 1}}, {"value", 9.0f}}, {.opset = 2}),
      want));
  // Default fill is 0; the mode attribute defaults to constant.
  EXPECT_TRUE(Near(Run1("Pad", {x, Ints1D({0, 1, 0, 0})}), F32({2, 3}, {0, 1, 2, 0, 3, 4})));
  EXPECT_TRUE(Near(Run1("Pad", {I32({2}, {5, 6}), Ints1D({1, 1}), I32({}, {-1})}),
                   I32({4}, {-1, 5, 6, -1})));
  // Opset 18: axes input selects the padded axes.
  EXPECT_TRUE(Near(Run1("Pad", {x, Ints1D({1, 1}), F32({}, {7}), Ints1D({-1})}, {}, {.opset = 18}),
                   F32({2, 4}, {7, 1, 2, 7, 7, 3, 4, 7})));
}

TEST(Pad, ReflectEdgeWrapAndCrop) {
  const Tensor x = I64({3}, {1, 2, 3});
  auto pad = [&](const std::string& mode, std::vector<int64_t> pads) {
    return Run1("Pad", {x, Ints1D(pads)}, {{"mode", mode}});
  };
  EXPECT_TRUE(Near(pad("reflect", {2, 2}), I64({7}, {3, 2, 1, 2, 3, 2, 1})));
  EXPECT_TRUE(Near(pad("edge", {2, 2}), I64({7}, {1, 1, 1, 2, 3, 3, 3})));
  EXPECT_TRUE(Near(pad("wrap", {2, 2}), I64({7}, {2, 3, 1, 2, 3, 1, 2})));
  // Reflection keeps folding when the pad exceeds the axis (numpy's rule).
  EXPECT_TRUE(Near(pad("reflect", {4, 0}), I64({7}, {1, 2, 3, 2, 1, 2, 3})));
  // Negative pads crop, then the rest pads the cropped axis.
  EXPECT_TRUE(Near(pad("constant", {-1, 1}), I64({3}, {2, 3, 0})));
  EXPECT_TRUE(Near(pad("edge", {-2, 2}), I64({3}, {3, 3, 3})));
  EXPECT_TRUE(Near(pad("reflect", {1, -1}), I64({3}, {2, 1, 2})));
  // 2-D reflect on both axes.
  const Tensor m = Iota({2, 3});
  EXPECT_TRUE(Near(Run1("Pad", {m, Ints1D({1, 1, 0, 0})}, {{"mode", std::string("reflect")}}),
                   F32({3, 4}, {4, 3, 4, 5, 1, 0, 1, 2, 4, 3, 4, 5})));
}

TEST(Pad, Errors) {
  const Tensor x = Iota({2, 2});
  auto r = RunNode("Pad", {x, Ints1D({1, 1})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"Pad node 'n0'", "pads [1,1]", "[2,2]"}));
  r = RunNode("Pad", {x, Ints1D({-2, 0, -1, 0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"crop more than axis 0"}));
  r = RunNode("Pad", {x, Ints1D({0, 0, 0, 0})}, {{"mode", std::string("mirror")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"mode 'mirror'"}));
  r = RunNode("Pad", {Tensor(DType::kF32, {0, 2}), Ints1D({1, 0, 0, 0})},
              {{"mode", std::string("edge")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"empty axis 0"}));
  r = RunNode("Pad", {x, Ints1D({0, 0, 0, 0}), I32({}, {1})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"constant_value", "i32"}));
}

// Resize from opset 11 on: (X, roi, scales, sizes).
Tensor ResizeScales(const Tensor& x, std::vector<float> scales, const Attrs& attrs) {
  return Run1("Resize", {x, Tensor(), F32({static_cast<int64_t>(scales.size())}, scales)}, attrs);
}
Tensor ResizeSizes(const Tensor& x, std::vector<int64_t> sizes, const Attrs& attrs) {
  return Run1("Resize", {x, Tensor(), Tensor(), Ints1D(sizes)}, attrs);
}

TEST(Resize, NearestModes) {
  const Tensor x = F32({1, 1, 2, 2}, {1, 2, 3, 4});
  // half_pixel + round_prefer_floor (the defaults): sources -0.25, 0.25, 0.75, 1.25.
  EXPECT_TRUE(Near(ResizeScales(x, {1, 1, 2, 2}, {}),
                   F32({1, 1, 4, 4}, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4})));
  const Tensor v = F32({1, 4}, {10, 20, 30, 40});
  const Attrs asym = {{"coordinate_transformation_mode", std::string("asymmetric")}};
  // asymmetric, scale 2: sources 0, 0.5, 1, 1.5, ... ties go by nearest_mode.
  Attrs a = asym;
  EXPECT_TRUE(Near(ResizeScales(v, {1, 2}, a), F32({1, 8}, {10, 10, 20, 20, 30, 30, 40, 40})));
  a["nearest_mode"] = std::string("round_prefer_ceil");
  EXPECT_TRUE(Near(ResizeScales(v, {1, 2}, a), F32({1, 8}, {10, 20, 20, 30, 30, 40, 40, 40})));
  a["nearest_mode"] = std::string("ceil");
  EXPECT_TRUE(Near(ResizeSizes(v, {1, 3}, a), F32({1, 3}, {10, 30, 40})));  // sources 0, 4/3, 8/3
  a["nearest_mode"] = std::string("floor");
  EXPECT_TRUE(Near(ResizeSizes(v, {1, 3}, a), F32({1, 3}, {10, 20, 30})));
  // align_corners: sources 0, 1.5, 3 -> floor 0, 1, 3.
  EXPECT_TRUE(Near(ResizeSizes(v, {1, 3},
                               {{"coordinate_transformation_mode", std::string("align_corners")},
                                {"nearest_mode", std::string("floor")}}),
                   F32({1, 3}, {10, 20, 40})));
  // tf_half_pixel_for_nn: sources (o + 0.5) * 2 = 1, 3 -> round 1, 3.
  EXPECT_TRUE(
      Near(ResizeSizes(v, {1, 2},
                       {{"coordinate_transformation_mode", std::string("tf_half_pixel_for_nn")}}),
           F32({1, 2}, {20, 40})));
  // Nearest moves bytes: any dtype.
  EXPECT_TRUE(Near(ResizeSizes(I64({2}, {7, 8}), {4}, asym), I64({4}, {7, 7, 8, 8})));
}

TEST(Resize, LinearCoordinateModes) {
  const Tensor v = F32({2}, {1, 2});
  // half_pixel: sources -0.25, 0.25, 0.75, 1.25 clamp to [0, 1].
  EXPECT_TRUE(Near(ResizeScales(v, {2}, {{"mode", std::string("linear")}}),
                   F32({4}, {1, 1.25f, 1.75f, 2}), 1e-6));
  EXPECT_TRUE(Near(ResizeSizes(F32({2}, {0, 3}), {4},
                               {{"mode", std::string("linear")},
                                {"coordinate_transformation_mode", std::string("align_corners")}}),
                   F32({4}, {0, 1, 2, 3}), 1e-6));
  EXPECT_TRUE(
      Near(ResizeSizes(F32({3}, {5, 6, 7}), {1},
                       {{"mode", std::string("linear")},
                        {"coordinate_transformation_mode", std::string("pytorch_half_pixel")}}),
           F32({1}, {5})));
  // align_corners divides by in_len * scale - 1 = 1.4, not by the rounded
  // output length - 1 (ONNX reference): sources 0 and 3 / 1.4.
  EXPECT_TRUE(Near(ResizeScales(F32({4}, {1, 2, 3, 4}), {0.6f},
                                {{"mode", std::string("linear")},
                                 {"coordinate_transformation_mode", std::string("align_corners")}}),
                   F32({2}, {1, 1 + 3 / (4 * 0.6f - 1)}), 1e-6));
  // asymmetric downsample 4 -> 2 (scale 0.5): sources 0, 2.
  EXPECT_TRUE(Near(ResizeScales(F32({4}, {1, 2, 3, 4}), {0.5f},
                                {{"mode", std::string("linear")},
                                 {"coordinate_transformation_mode", std::string("asymmetric")}}),
                   F32({2}, {1, 3})));
}

TEST(Resize, BilinearReproducesALinearFunction) {
  // f(y, x) = 1 + 2y + x is reproduced exactly by bilinear interpolation at
  // the (clamped) source coordinates.
  const Tensor x = F32({1, 1, 2, 3}, {1, 2, 3, 3, 4, 5});
  const Tensor y = ResizeScales(x, {1, 1, 2, 1.5f}, {{"mode", std::string("linear")}});
  ASSERT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
  std::vector<float> want;
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      const double sy = std::clamp((r + 0.5) / 2 - 0.5, 0.0, 1.0);
      const double sx = std::clamp((c + 0.5) / 1.5 - 0.5, 0.0, 2.0);
      want.push_back(static_cast<float>(1 + 2 * sy + sx));
    }
  }
  EXPECT_TRUE(Near(y, F32({1, 1, 4, 4}, want), 1e-5));
  EXPECT_TRUE(Near(Run1("Resize", {T_<double>({2}, {1, 2}), Tensor(), F32({1}, {2})},
                        {{"mode", std::string("linear")}}),
                   T_<double>({4}, {1, 1.25, 1.75, 2}), 1e-12));
}

TEST(Resize, OldOpsetsAndUpsample) {
  const Tensor x = F32({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor want =
      F32({1, 1, 4, 6}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  const Tensor scales = F32({4}, {1, 1, 2, 3});
  // Resize-10 takes (X, scales) and is asymmetric + floor when upsampling.
  EXPECT_TRUE(Near(Run1("Resize", {x, scales}, {}, {.opset = 10}), want));
  EXPECT_TRUE(
      Near(Run1("Upsample", {x, scales}, {{"mode", std::string("nearest")}}, {.opset = 9}), want));
  EXPECT_TRUE(Near(
      Run1("Upsample", {x}, {{"scales", std::vector<float>{1, 1, 2, 3}}}, {.opset = 7}), want));
  // Resize-10 downsampling rounds the source coordinate up (as ONNX Runtime).
  EXPECT_TRUE(Near(Run1("Resize", {F32({4}, {1, 2, 3, 4}), F32({1}, {0.6f})}, {}, {.opset = 10}),
                   F32({2}, {1, 3})));
  EXPECT_TRUE(Near(Run1("Upsample", {F32({2}, {1, 3}), F32({1}, {2})},
                        {{"mode", std::string("linear")}}, {.opset = 9}),
                   F32({4}, {1, 2, 3, 3})));
}

TEST(Resize, Opset18AxesAndAspectRatio) {
  const Tensor x = Iota({1, 2, 4});
  // axes: scales/sizes for the listed axes only.
  EXPECT_TRUE(Near(Run1("Resize", {x, Tensor(), F32({1}, {2})},
                        {{"axes", std::vector<int64_t>{1}},
                         {"coordinate_transformation_mode", std::string("asymmetric")}},
                        {.opset = 18}),
                   F32({1, 4, 4}, {0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7})));
  // not_larger: one scale, the smallest of sizes / in = min(4/2, 4/4) = 1.
  const Attrs policy = {{"axes", std::vector<int64_t>{1, 2}},
                        {"keep_aspect_ratio_policy", std::string("not_larger")}};
  EXPECT_EQ(Run1("Resize", {x, Tensor(), Tensor(), Ints1D({4, 4})}, policy, {.opset = 18}).shape(),
            (Shape{1, 2, 4}));
  Attrs smaller = policy;
  smaller["keep_aspect_ratio_policy"] = std::string("not_smaller");
  EXPECT_EQ(Run1("Resize", {x, Tensor(), Tensor(), Ints1D({4, 4})}, smaller, {.opset = 18}).shape(),
            (Shape{1, 4, 8}));
}

TEST(Resize, UnsupportedAndInvalid) {
  const Tensor x = F32({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor s = F32({4}, {1, 1, 2, 2});
  auto r = RunNode("Resize", {x, Tensor(), s}, {{"mode", std::string("cubic")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"Resize node 'n0'", "cubic"}));
  r = RunNode("Resize", {x, F32({8}, {0, 0, 0, 0, 1, 1, 1, 1}), s},
              {{"coordinate_transformation_mode", std::string("tf_crop_and_resize")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"tf_crop_and_resize"}));
  r = RunNode("Resize", {x, Tensor(), s, Ints1D({1, 1, 4, 4})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"exactly one of scales and sizes"}));
  r = RunNode("Resize", {x, Tensor(), F32({2}, {2, 2})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"scales has 2 entries", "rank 4"}));
  r = RunNode("Resize", {x, Tensor(), F32({4}, {1, 1, 0, 2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"positive"}));
  r = RunNode("Resize", {I32({2}, {1, 2}), Tensor(), F32({1}, {2})},
              {{"mode", std::string("linear")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kUnimplemented, {"i32"}));
  r = RunNode("Resize", {x, Tensor(), s}, {{"nearest_mode", std::string("nearest")}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"nearest_mode"}));
}

// Sum of x over the axes in `mask`, computed by index arithmetic.
std::vector<double> LoopReduce(const Tensor& x, const std::vector<bool>& mask, double init,
                               double (*combine)(double, double)) {
  Shape kept = x.shape();
  for (size_t d = 0; d < kept.size(); ++d)
    if (mask[d]) kept[d] = 1;
  std::vector<double> acc(static_cast<size_t>(NumElements(kept)), init);
  const std::vector<double> v = x.ToVector<double>();
  size_t i = 0;
  ForEachIndex(x.shape(), [&](const std::vector<int64_t>& idx) {
    int64_t o = 0;
    for (size_t d = 0; d < idx.size(); ++d) o = o * kept[d] + (mask[d] ? 0 : idx[d]);
    acc[o] = combine(acc[o], v[i++]);
  });
  return acc;
}

TEST(Reduce, OpsAxesKeepdims) {
  const Tensor x = Iota({2, 3, 4}, -5.0, 0.5);
  const std::vector<bool> mask = {true, false, true};
  auto add = [](double a, double b) { return a + b; };
  const std::vector<double> sum = LoopReduce(x, mask, 0.0, add);
  const std::vector<double> sq =
      LoopReduce(x, mask, 0.0, [](double a, double b) { return a + b * b; });
  const std::vector<double> mx =
      LoopReduce(x, mask, -1e30, [](double a, double b) { return std::max(a, b); });
  const std::vector<double> mn =
      LoopReduce(x, mask, 1e30, [](double a, double b) { return std::min(a, b); });
  const std::vector<double> pr = LoopReduce(x, mask, 1.0, [](double a, double b) { return a * b; });
  const std::vector<double> l1 =
      LoopReduce(x, mask, 0.0, [](double a, double b) { return a + std::fabs(b); });
  const std::vector<double> ex =
      LoopReduce(x, mask, 0.0, [](double a, double b) { return a + std::exp(b); });
  auto map = [](const std::vector<double>& v, auto f) {
    std::vector<float> out;
    for (double e : v) out.push_back(static_cast<float>(f(e)));
    return out;
  };
  const Attrs axes = {{"axes", std::vector<int64_t>{0, -1}}};
  const Shape keep = {1, 3, 1};
  EXPECT_TRUE(Near(Run1("ReduceSum", {x, Ints1D({0, 2})}),
                   F32(keep, map(sum, [](double e) { return e; })), 1e-5));
  EXPECT_TRUE(Near(Run1("ReduceMean", {x}, axes),
                   F32(keep, map(sum, [](double e) { return e / 8; })), 1e-5));
  EXPECT_TRUE(Near(Run1("ReduceMax", {x}, axes), F32(keep, map(mx, [](double e) { return e; }))));
  EXPECT_TRUE(Near(Run1("ReduceMin", {x}, axes), F32(keep, map(mn, [](double e) { return e; }))));
  EXPECT_TRUE(
      Near(Run1("ReduceProd", {x}, axes), F32(keep, map(pr, [](double e) { return e; })), 0, 1e-5));
  EXPECT_TRUE(
      Near(Run1("ReduceL1", {x}, axes), F32(keep, map(l1, [](double e) { return e; })), 1e-5));
  EXPECT_TRUE(Near(Run1("ReduceL2", {x}, axes),
                   F32(keep, map(sq, [](double e) { return std::sqrt(e); })), 1e-5));
  EXPECT_TRUE(Near(Run1("ReduceSumSquare", {x}, axes),
                   F32(keep, map(sq, [](double e) { return e; })), 1e-4));
  EXPECT_TRUE(Near(Run1("ReduceLogSumExp", {x}, axes),
                   F32(keep, map(ex, [](double e) { return std::log(e); })), 1e-5));
  EXPECT_TRUE(Near(Run1("ReduceLogSum", {Iota({2, 2}, 1.0)}, {{"axes", std::vector<int64_t>{1}}}),
                   F32({2, 1}, {std::log(3.0f), std::log(7.0f)}), 1e-6));
  // keepdims = 0 drops the axes.
  EXPECT_TRUE(Near(Run1("ReduceSum", {x, Ints1D({0, 2})}, {{"keepdims", int64_t{0}}}),
                   F32({3}, map(sum, [](double e) { return e; })), 1e-5));
}

TEST(Reduce, DefaultAndEmptyAxes) {
  const Tensor x = Iota({2, 3});
  EXPECT_TRUE(Near(Run1("ReduceSum", {x}), F32({1, 1}, {15})));
  EXPECT_TRUE(Near(Run1("ReduceMean", {x}, {{"keepdims", int64_t{0}}}), F32({}, {2.5f})));
  EXPECT_TRUE(Near(Run1("ReduceSum", {x, I64({0}, {})}), F32({1, 1}, {15})));
  EXPECT_TRUE(
      Near(Run1("ReduceSum", {x, I64({0}, {})}, {{"noop_with_empty_axes", int64_t{1}}}), x));
  EXPECT_TRUE(
      Near(Run1("ReduceSum", {I32({2, 2}, {1, -2, 3, 4}), Ints1D({1})}), I32({2, 1}, {-1, 7})));
  EXPECT_TRUE(Near(Run1("ReduceMax", {T_<uint8_t>({3}, {3, 250, 7})}), T_<uint8_t>({1}, {250})));
  // log-sum-exp stays finite where exp overflows.
  EXPECT_TRUE(Near(Run1("ReduceLogSumExp", {F32({2}, {1000, 1000})}),
                   F32({1}, {1000 + std::log(2.0f)}), 1e-3));
  auto r = RunNode("ReduceSum", {x, Ints1D({2})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument,
                      {"ReduceSum node 'n0'", "axis 2 out of range"}));
  r = RunNode("ReduceMean", {x}, {{"axes", std::vector<int64_t>{1, -1}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"repeated"}));
}

TEST(ArgReduce, FirstAndLastIndex) {
  const Tensor x = F32({2, 4}, {1, 5, 5, 0, 2, 2, 0, 0});
  EXPECT_TRUE(Near(Run1("ArgMax", {x}, {{"axis", int64_t{1}}}), I64({2, 1}, {1, 0})));
  EXPECT_TRUE(Near(Run1("ArgMax", {x}, {{"axis", int64_t{1}}, {"select_last_index", int64_t{1}}}),
                   I64({2, 1}, {2, 1})));
  EXPECT_TRUE(Near(Run1("ArgMin", {x}, {{"axis", int64_t{-1}}, {"keepdims", int64_t{0}}}),
                   I64({2}, {3, 2})));
  EXPECT_TRUE(
      Near(Run1("ArgMin", {x}, {{"select_last_index", int64_t{1}}}), I64({1, 4}, {0, 1, 1, 1})));
}

TEST(Gather, AxesNegativeIndicesAndTypes) {
  const Tensor x = Iota({3, 4});
  EXPECT_TRUE(Near(Run1("Gather", {x, Ints1D({2, 0})}), F32({2, 4}, {8, 9, 10, 11, 0, 1, 2, 3})));
  EXPECT_TRUE(Near(Run1("Gather", {x, I32({2, 2}, {-1, 0, 1, 1})}, {{"axis", int64_t{1}}}),
                   F32({3, 2, 2}, {3, 0, 1, 1, 7, 4, 5, 5, 11, 8, 9, 9})));
  EXPECT_TRUE(Near(Run1("Gather", {x, I64({}, {1})}), F32({4}, {4, 5, 6, 7})));
  EXPECT_TRUE(Near(Run1("Gather", {I64({3}, {7, 8, 9}), I64({}, {-3})}), I64({}, {7})));
}

TEST(Gather, OutOfRangeIndexIsAnError) {
  const Tensor x = Iota({3, 4});
  auto r = RunNode("Gather", {x, Ints1D({0, 3})});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"Gather node 'n0'", "index 3", "size 3"}));
  r = RunNode("Gather", {x, Ints1D({-5})}, {{"axis", int64_t{1}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"index -5", "axis 1 of size 4"}));
  r = RunNode("Gather", {x, F32({1}, {0})});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"indices", "int64"}));
  r = RunNode("Gather", {x, Ints1D({0})}, {{"axis", int64_t{2}}});
  EXPECT_TRUE(IsError(r.status(), StatusCode::kInvalidArgument, {"axis 2 out of range"}));
}

TEST(GatherElements, AlongEachAxis) {
  const Tensor x = F32({2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(Near(Run1("GatherElements", {x, I64({2, 2}, {0, 0, 1, 0})}, {{"axis", int64_t{1}}}),
                   F32({2, 2}, {1, 1, 4, 3})));
  EXPECT_TRUE(Near(Run1("GatherElements", {Iota({3, 3}, 1), I64({2, 3}, {1, 2, 0, 2, 0, -3})}),
                   F32({2, 3}, {4, 8, 3, 7, 2, 3})));
  auto r = RunNode("GatherElements", {x, I64({2, 2}, {0, 2, 0, 0})}, {{"axis", int64_t{1}}});
  EXPECT_TRUE(
      IsError(r.status(), StatusCode::kInvalidArgument, {"GatherElements node", "index 2"}));
}

}  // namespace
}  // namespace wbs::tensor_test

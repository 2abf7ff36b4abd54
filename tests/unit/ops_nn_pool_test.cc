// Pooling reference operators: hand-computed cases and a direct
// per-output-element formula written independently of kernels/ref/pool.cc.
#include <gtest/gtest.h>

#include <limits>

#include "tests/unit/ops_nn_test_util.h"

namespace wbs::nn_test {
namespace {

using Ints = std::vector<int64_t>;

struct PoolCase {
  Shape x;
  Ints kernel, strides, dilations, pads;
  int ceil_mode;
};

// Windows of the ONNX definition: output o covers input positions
// o*s - pb + k*d; positions outside [0, in) are padding. Returns, per output
// element, max (ignoring padding) with its row-major flat index, the sum, the
// number of in-range taps and the number of taps inside [-pb, in + pe).
struct WindowStats {
  std::vector<double> max, sum;
  std::vector<int64_t> argmax, count, count_padded;
};

WindowStats NaiveWindows(const Tensor& x, const PoolCase& c, const Shape& y_shape) {
  const Shape& xs = x.shape();
  const size_t r = xs.size() - 2;
  const auto xv = x.ToVector<double>();
  WindowStats st;
  ForEachIndex(y_shape, [&](const Ints& o) {
    double best = -std::numeric_limits<double>::infinity(), sum = 0;
    int64_t arg = -1, count = 0, count_padded = 0;
    ForEachIndex(c.kernel, [&](const Ints& k) {
      Ints xi = {o[0], o[1]};
      bool inside = true, inside_padded = true;
      for (size_t i = 0; i < r; ++i) {
        const int64_t pos = o[2 + i] * c.strides[i] - c.pads[i] + k[i] * c.dilations[i];
        inside = inside && pos >= 0 && pos < xs[2 + i];
        inside_padded = inside_padded && pos >= -c.pads[i] && pos < xs[2 + i] + c.pads[r + i];
        xi.push_back(pos);
      }
      count_padded += inside_padded;
      if (!inside) return;
      const int64_t off = Offset(xs, xi);
      ++count;
      sum += xv[off];
      if (xv[off] > best) {
        best = xv[off];
        arg = off;
      }
    });
    st.max.push_back(best);
    st.argmax.push_back(arg);
    st.sum.push_back(sum);
    st.count.push_back(count);
    st.count_padded.push_back(count_padded);
  });
  return st;
}

Attrs PoolAttrs(const PoolCase& c) {
  return {{"kernel_shape", c.kernel}, {"strides", c.strides}, {"dilations", c.dilations},
          {"pads", c.pads}, {"ceil_mode", int64_t{c.ceil_mode}}};
}

const std::vector<PoolCase>& PoolCases() {
  static const std::vector<PoolCase> cases = {
      {{2, 3, 9}, {3}, {2}, {1}, {1, 1}, 0},
      {{1, 2, 7, 8}, {3, 2}, {2, 2}, {1, 1}, {1, 0, 1, 1}, 1},
      {{1, 2, 6, 6}, {2, 2}, {1, 1}, {2, 2}, {0, 0, 0, 0}, 0},
      {{1, 1, 5, 5}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1},  // ceil adds a partial window
      {{1, 2, 4, 5, 6}, {2, 3, 2}, {2, 1, 2}, {1, 1, 2}, {1, 0, 1, 0, 1, 0}, 1},
  };
  return cases;
}

TEST(MaxPoolTest, HandComputed2x2Stride2WithIndices) {
  const Tensor x = Iota({1, 1, 4, 4});
  RunOptions o;
  o.num_outputs = 2;
  auto y = RunNode("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}, o);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_TRUE(AllClose((*y)[0], {5, 7, 13, 15}));
  ASSERT_EQ((*y)[1].dtype(), DType::kI64);
  EXPECT_EQ((*y)[1].ToVector<int64_t>(), (std::vector<int64_t>{5, 7, 13, 15}));
  // storage_order = 1: column-major index h + w * H.
  y = RunNode("MaxPool", {x},
              {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}},
               {"storage_order", int64_t{1}}},
              o);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ((*y)[1].ToVector<int64_t>(), (std::vector<int64_t>{1 + 1 * 4, 1 + 3 * 4, 3 + 1 * 4,
                                                                3 + 3 * 4}));
}

TEST(MaxPoolTest, MatchesWindowFormulaWithIndices) {
  uint32_t seed = 500;
  for (const PoolCase& c : PoolCases()) {
    SCOPED_TRACE("x " + ShapeToString(c.x) + " k " + ShapeToString(c.kernel));
    const Tensor x = Random(c.x, seed++);
    RunOptions o;
    o.num_outputs = 2;
    auto y = RunNode("MaxPool", {x}, PoolAttrs(c), o);
    ASSERT_TRUE(y.ok()) << y.status().ToString();
    const WindowStats st = NaiveWindows(x, c, (*y)[0].shape());
    EXPECT_TRUE(AllClose((*y)[0], st.max, 0, 0));
    EXPECT_EQ((*y)[1].ToVector<int64_t>(), st.argmax);
  }
}

TEST(MaxPoolTest, Uint8AndF64) {
  const Tensor x = Tensor::FromVector<uint8_t>({1, 1, 2, 3}, {3, 200, 7, 9, 1, 255});
  auto y = RunNode("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}}});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ((*y)[0].ToVector<int>(), (std::vector<int>{200, 255}));
  auto y64 = RunNode("MaxPool", {*Iota({1, 1, 3, 3}).CastTo(DType::kF64)},
                     {{"kernel_shape", Ints{2, 2}}});
  ASSERT_TRUE(y64.ok());
  EXPECT_TRUE(AllClose((*y64)[0], {4, 5, 7, 8}));
}

TEST(AveragePoolTest, CountIncludePadHandComputed) {
  // 3x3 ones, kernel 3, pads 1: excluding pad every mean is 1; including it,
  // a corner window holds 4 of 9 real elements, an edge 6, the centre 9.
  const Tensor x = Tensor::FromVector<float>({1, 1, 3, 3}, std::vector<float>(9, 1.0f));
  const Attrs base = {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}};
  auto y = RunNode("AveragePool", {x}, base);
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_TRUE(AllClose((*y)[0], std::vector<double>(9, 1.0)));
  Attrs incl = base;
  incl["count_include_pad"] = int64_t{1};
  y = RunNode("AveragePool", {x}, incl);
  ASSERT_TRUE(y.ok());
  const double c = 4.0 / 9, e = 6.0 / 9;
  EXPECT_TRUE(AllClose((*y)[0], {c, e, c, e, 1, e, c, e, c}));
}

TEST(AveragePoolTest, MatchesWindowFormula) {
  uint32_t seed = 600;
  for (const PoolCase& c : PoolCases()) {
    for (int64_t include = 0; include <= 1; ++include) {
      SCOPED_TRACE("x " + ShapeToString(c.x) + " include_pad " + std::to_string(include));
      const Tensor x = Random(c.x, seed++);
      Attrs attrs = PoolAttrs(c);
      attrs["count_include_pad"] = include;
      auto y = RunNode("AveragePool", {x}, attrs);
      ASSERT_TRUE(y.ok()) << y.status().ToString();
      const WindowStats st = NaiveWindows(x, c, (*y)[0].shape());
      std::vector<double> expected;
      for (size_t i = 0; i < st.sum.size(); ++i)
        expected.push_back(st.sum[i] / static_cast<double>(include ? st.count_padded[i]
                                                                    : st.count[i]));
      EXPECT_TRUE(AllClose((*y)[0], expected));
    }
  }
}

TEST(AveragePoolTest, SameUpperAndLower) {
  // 1-D [1, 2, 3, 4], kernel 2, SAME: total pad 1 at the end (UPPER) or the
  // beginning (LOWER); padding is not counted.
  const Tensor x = Tensor::FromVector<float>({1, 1, 4}, {1, 2, 3, 4});
  auto up = RunNode("AveragePool", {x},
                    {{"kernel_shape", Ints{2}}, {"auto_pad", std::string("SAME_UPPER")}});
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_TRUE(AllClose((*up)[0], {1.5, 2.5, 3.5, 4}));
  auto low = RunNode("AveragePool", {x},
                     {{"kernel_shape", Ints{2}}, {"auto_pad", std::string("SAME_LOWER")}});
  ASSERT_TRUE(low.ok());
  EXPECT_TRUE(AllClose((*low)[0], {1, 1.5, 2.5, 3.5}));
}

TEST(GlobalPoolTest, MeanAndMaxPerPlane) {
  const Tensor x = Iota({2, 3, 2, 2});
  auto avg = RunNode("GlobalAveragePool", {x});
  ASSERT_TRUE(avg.ok()) << avg.status().ToString();
  ASSERT_EQ((*avg)[0].shape(), (Shape{2, 3, 1, 1}));
  // Plane p holds 4p .. 4p+3: mean 4p + 1.5, max 4p + 3.
  std::vector<double> mean, mx;
  for (int p = 0; p < 6; ++p) {
    mean.push_back(4 * p + 1.5);
    mx.push_back(4 * p + 3);
  }
  EXPECT_TRUE(AllClose((*avg)[0], mean));
  auto gmax = RunNode("GlobalMaxPool", {x});
  ASSERT_TRUE(gmax.ok());
  EXPECT_TRUE(AllClose((*gmax)[0], mx));
}

TEST(PoolTest, ErrorsNameTheNode) {
  const Tensor x = Random({1, 1, 4, 4}, 1);
  EXPECT_TRUE(FailsWith(InferOnly("MaxPool", {x}), StatusCode::kInvalidArgument,
                        {"'bad_node'", "kernel_shape is required"}));
  EXPECT_TRUE(FailsWith(InferOnly("MaxPool", {x}, {{"kernel_shape", Ints{5, 5}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "exceeds"}));
  EXPECT_TRUE(FailsWith(InferOnly("AveragePool", {x}, {{"kernel_shape", Ints{2}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "kernel_shape", "expected 2"}));
  EXPECT_TRUE(FailsWith(InferOnly("MaxPool", {x}, {{"kernel_shape", Ints{2, 2}},
                                                   {"storage_order", int64_t{2}}}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "storage_order"}));
  EXPECT_TRUE(FailsWith(InferOnly("GlobalAveragePool", {Random({2, 3}, 1)}),
                        StatusCode::kInvalidArgument, {"'bad_node'", "rank >= 3"}));
  auto y = RunNode("AveragePool", {Tensor(DType::kI32, {1, 1, 2, 2})},
                   {{"kernel_shape", Ints{2, 2}}});
  EXPECT_FALSE(y.ok());
}

}  // namespace
}  // namespace wbs::nn_test

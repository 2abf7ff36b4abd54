// The shared sliding-window geometry (ir/conv_geometry.h): output dims and
// effective pads against the ONNX formulas, computed here independently.
#include "ir/conv_geometry.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/ops_nn_test_util.h"

namespace wbs::nn_test {
namespace {

using Ints = std::vector<int64_t>;

ir::Node GeometryNode(const std::string& op, const Attrs& attrs) {
  ir::Node n;
  n.op_type = op;
  n.name = "geo";
  n.attrs = attrs;
  return n;
}

TEST(ConvGeometryTest, ExplicitPadsStridesDilations) {
  // out = floor((in + pb + pe - ((k - 1) * d + 1)) / s) + 1
  const ir::Node n = GeometryNode("Conv", {{"strides", Ints{2, 3}},
                                          {"dilations", Ints{1, 2}},
                                          {"pads", Ints{1, 0, 2, 1}}});
  auto a = ir::ParseWindowAttrs(n, 2, {3, 3});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto g = ir::ComputeWindowGeometry(n, *a, {10, 11});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->output, (Ints{(10 + 1 + 2 - 3) / 2 + 1, (11 + 0 + 1 - 5) / 3 + 1}));
  EXPECT_EQ(g->pad_begin, (Ints{1, 0}));
  EXPECT_EQ(g->pad_end, (Ints{2, 1}));
}

TEST(ConvGeometryTest, SameUpperAndLowerSplitTheOddPad) {
  // in 5, k 4, s 1: out 5, total pad 3 -> UPPER (1, 2), LOWER (2, 1).
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER"}) {
    const ir::Node n = GeometryNode("Conv", {{"auto_pad", std::string(mode)}});
    auto a = ir::ParseWindowAttrs(n, 1, {4});
    ASSERT_TRUE(a.ok());
    auto g = ir::ComputeWindowGeometry(n, *a, {5});
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->output, Ints{5});
    const bool upper = std::string(mode) == "SAME_UPPER";
    EXPECT_EQ(g->pad_begin, Ints{upper ? 1 : 2}) << mode;
    EXPECT_EQ(g->pad_end, Ints{upper ? 2 : 1}) << mode;
  }
  // Strided SAME: out = ceil(in / s) = ceil(7 / 2) = 4, total (4-1)*2 + 3 - 7 = 2.
  const ir::Node n = GeometryNode("Conv", {{"auto_pad", std::string("SAME_UPPER")},
                                          {"strides", Ints{2}}});
  auto g = ir::ComputeWindowGeometry(n, *ir::ParseWindowAttrs(n, 1, {3}), {7});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->output, Ints{4});
  EXPECT_EQ(g->pad_begin[0] + g->pad_end[0], 2);
}

TEST(ConvGeometryTest, ValidIgnoresPads) {
  const ir::Node n = GeometryNode("Conv", {{"auto_pad", std::string("VALID")},
                                          {"pads", Ints{3, 3}}});
  auto g = ir::ComputeWindowGeometry(n, *ir::ParseWindowAttrs(n, 1, {3}), {7});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->output, Ints{5});
  EXPECT_EQ(g->pad_begin, Ints{0});
}

// ONNX spec: output = ceil((in + pb + pe - dk) / s + 1) with ceil_mode,
// floor otherwise; since ONNX 1.16 (and in PyTorch) a ceil-mode window that
// would start in the trailing padding is dropped.
TEST(ConvGeometryTest, PoolCeilModeMatchesSpecFormula) {
  for (int64_t in = 1; in <= 12; ++in)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t pad = 0; pad < k; ++pad) {
          if (in + 2 * pad < k) continue;
          for (int ceil_mode = 0; ceil_mode <= 1; ++ceil_mode) {
            const ir::Node n = GeometryNode(
                "MaxPool", {{"kernel_shape", Ints{k}}, {"strides", Ints{s}},
                            {"pads", Ints{pad, pad}}, {"ceil_mode", int64_t{ceil_mode}}});
            auto a = ir::ParseWindowAttrs(n, 1, {});
            ASSERT_TRUE(a.ok());
            auto g = ir::ComputeWindowGeometry(n, *a, {in});
            ASSERT_TRUE(g.ok()) << g.status().ToString();
            const double q = static_cast<double>(in + 2 * pad - k) / static_cast<double>(s) + 1;
            int64_t expected = static_cast<int64_t>(ceil_mode ? std::ceil(q) : std::floor(q));
            if (ceil_mode && (expected - 1) * s >= in + pad) --expected;
            EXPECT_EQ(g->output[0], expected)
                << "in " << in << " k " << k << " s " << s << " pad " << pad << " ceil "
                << ceil_mode;
            // The implicit extension makes the floor formula exact.
            const int64_t span = in + 2 * pad + g->ceil_extra_end[0] - k;
            EXPECT_EQ(span / s + 1, g->output[0]);
          }
        }
}

TEST(ConvGeometryTest, ConvTransposeOutputShapeAndSame) {
  // natural = s * (in - 1) + output_padding + dk = 2 * 2 + 1 + 3 = 8
  const ir::Node n = GeometryNode("ConvTranspose", {{"strides", Ints{2}},
                                                   {"output_padding", Ints{1}},
                                                   {"pads", Ints{1, 2}}});
  auto g = ir::ComputeConvTransposeGeometry(n, *ir::ParseWindowAttrs(n, 1, {3}), {3});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->output, Ints{8 - 1 - 2});
  // output_shape 6 of natural 7: total pad 1, at the end (not SAME_LOWER).
  const ir::Node os = GeometryNode("ConvTranspose", {{"strides", Ints{2}},
                                                    {"output_shape", Ints{1, 1, 6}}});
  g = ir::ComputeConvTransposeGeometry(os, *ir::ParseWindowAttrs(os, 1, {3}), {3});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->output, Ints{6});
  EXPECT_EQ(g->pad_begin, Ints{0});
  EXPECT_EQ(g->pad_end, Ints{1});
  // SAME_LOWER: out = in * s = 6, odd pad at the beginning.
  const ir::Node lower = GeometryNode("ConvTranspose", {{"strides", Ints{2}},
                                                       {"auto_pad", std::string("SAME_LOWER")}});
  g = ir::ComputeConvTransposeGeometry(lower, *ir::ParseWindowAttrs(lower, 1, {3}), {3});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->output, Ints{6});
  EXPECT_EQ(g->pad_begin, Ints{1});
}

TEST(ConvGeometryTest, ErrorsNameNodeAndAttribute) {
  ir::Node n = GeometryNode("Conv", {{"auto_pad", std::string("SAME")}});
  EXPECT_TRUE(FailsWith(ir::ParseWindowAttrs(n, 2, {3, 3}).status(), StatusCode::kInvalidArgument,
                        {"'geo'", "auto_pad", "SAME"}));
  n = GeometryNode("Conv", {{"strides", Ints{1, 1, 1}}});
  EXPECT_TRUE(FailsWith(ir::ParseWindowAttrs(n, 2, {3, 3}).status(), StatusCode::kInvalidArgument,
                        {"'geo'", "strides", "expected 2"}));
  n = GeometryNode("Conv", {{"kernel_shape", Ints{5, 5}}});
  EXPECT_TRUE(FailsWith(ir::ParseWindowAttrs(n, 2, {3, 3}).status(), StatusCode::kInvalidArgument,
                        {"kernel_shape [5,5] does not match weight"}));
  n = GeometryNode("Conv", {});
  auto g = ir::ComputeWindowGeometry(n, *ir::ParseWindowAttrs(n, 2, {3, 3}), {2, 8});
  EXPECT_TRUE(FailsWith(g.status(), StatusCode::kInvalidArgument, {"'geo'", "exceeds"}));
  n = GeometryNode("MaxPool", {});
  EXPECT_TRUE(FailsWith(ir::ParseWindowAttrs(n, 2, {}).status(), StatusCode::kInvalidArgument,
                        {"kernel_shape is required"}));
}

}  // namespace
}  // namespace wbs::nn_test

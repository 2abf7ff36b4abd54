// The 3-channel plain -> channels-last interleave (kernels/x86/interleave_f32.h)
// and its use by the oneDNN conv operator for a plain RGB input.
#include "kernels/x86/interleave_f32.h"

#include <gtest/gtest.h>

#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

using kernels::x86::Interleave3Supported;
using kernels::x86::PlainToChannelsLast3;

TEST(Interleave3Test, MatchesScalarTranspose) {
  if (!Interleave3Supported()) GTEST_SKIP() << "no AVX-512";
  Rng rng(TestSeed() + 80);
  // Planes below, at and above one 16-pixel group, with tails, and the
  // 224 x 224 stem input; 1-3 threads, 1-2 images.
  for (int64_t plane : {1, 15, 16, 17, 47, 100, 224 * 224 + 5}) {
    for (int64_t images : {1, 2}) {
      const int threads = static_cast<int>(1 + (plane + images) % 3);
      SCOPED_TRACE(
          fmt::format("seed {} plane {} images {} threads {}", TestSeed(), plane, images, threads));
      const Tensor x = RandomTensor({images, 3, plane}, rng);
      Tensor y(DType::kF32, {images, plane, 3});
      PlainToChannelsLast3(x.data<float>(), y.data<float>(), images, plane, threads);
      for (int64_t n = 0; n < images; ++n)
        for (int64_t p = 0; p < plane; ++p)
          for (int64_t c = 0; c < 3; ++c)
            ASSERT_EQ(y.data<float>()[(n * plane + p) * 3 + c],
                      x.data<float>()[(n * 3 + c) * plane + p])
                << "image " << n << " pixel " << p << " channel " << c;
    }
  }
}

// A 7x7 stride-2 stem conv on a plain 3-channel input: once negotiated (the
// session's order), the operator interleaves the input itself when its
// primitive computes channels-last, and still matches the reference.
TEST(Interleave3Test, StemConvInterleavesPlainInput) {
  if (!Interleave3Supported()) GTEST_SKIP() << "no AVX-512";
  Rng rng(TestSeed() + 81);
  const Attrs attrs = {{"kernel_shape", std::vector<int64_t>{7, 7}},
                       {"strides", std::vector<int64_t>{2, 2}},
                       {"pads", std::vector<int64_t>{3, 3, 3, 3}},
                       {"wbs.activation", std::string("Relu")}};
  const std::vector<Operand> ops = {{RandomTensor({1, 3, 64, 61}, rng)},
                                    {RandomTensor({64, 3, 7, 7}, rng), true},
                                    {RandomTensor({64}, rng), true}};
  auto prep = Prepare("Conv", ops, attrs);
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  auto want = RunOp(**ref, ops, prep->out_shape);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  for (int threads : {1, 2}) {
    auto fast = CreateOp(*prep, Backend::kFast);
    ASSERT_TRUE(fast.ok()) << fast.status().ToString();
    (*fast)->ProposeOutputLayouts({ActivationLayout::kPlain});
    ASSERT_TRUE((*fast)->SetOutputLayouts({ActivationLayout::kPlain}).ok());
    const std::string impl = (*fast)->impl_name();
    if (impl.find("+interleave3") == std::string::npos)
      GTEST_SKIP() << "oneDNN computes this stem in " << impl << ", not channels-last";
    auto got = RunOp(**fast, ops, prep->out_shape, threads);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_LE(MaxRelError(*got, *want), kRelTol) << impl << ", " << threads << " threads";
  }
}

}  // namespace
}  // namespace wbs::dnnl_test

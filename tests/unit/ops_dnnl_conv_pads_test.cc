// oneDNN Conv over padding-heavy geometry: pads as large as the kernel's
// extent (output rows/columns that read only padding), asymmetric pads,
// strides, with and without a fused residual and activation. oneDNN 2.6's
// brgconv (avx512_core, channels-last) crashed or miscomputed on some of these
// with a sum post-op; the operator must never hand it such a problem.
#include <gtest/gtest.h>

#include "runtime/ops_sparse.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs {
namespace {

using dnnl_test::Attrs;
using dnnl_test::Operand;

class DenseOnly {  // the sparse operator must not take these dense convs
 public:
  DenseOnly() { runtime::SetSparseMode(runtime::SparseMode::kOff); }
  ~DenseOnly() { runtime::SetSparseMode(runtime::SparseMode::kAuto); }
};

TEST(OpsDnnlConvPadsTest, PaddingHeavyGeometryMatchesReference) {
  DenseOnly dense;
  dnnl_test::Rng rng(dnnl_test::TestSeed());
  for (int i = 0; i < 64; ++i) {
    const int64_t kh = dnnl_test::Uniform(rng, 1, 3), kw = dnnl_test::Uniform(rng, 1, 3);
    const int64_t s = dnnl_test::Uniform(rng, 1, 2);
    const int64_t cin = std::vector<int64_t>{3, 8, 16, 19}[i % 4];
    const int64_t cout = std::vector<int64_t>{8, 20, 32}[(i / 4) % 3];
    std::vector<int64_t> pads = {dnnl_test::Uniform(rng, 0, kh), dnnl_test::Uniform(rng, 0, kw),
                                 dnnl_test::Uniform(rng, 0, kh), dnnl_test::Uniform(rng, 0, kw)};
    const int64_t h = dnnl_test::Uniform(rng, kh, 11), w = dnnl_test::Uniform(rng, kw, 9);
    Attrs attrs = {{"kernel_shape", std::vector<int64_t>{kh, kw}},
                   {"strides", std::vector<int64_t>{s, s}},
                   {"pads", pads}};
    const bool residual = i % 2 == 0;
    std::string act = "none";
    if (i % 3 != 0) {
      attrs["wbs.activation"] = std::string("Relu");
      act = "Relu";
    }
    std::vector<Operand> ops = {{dnnl_test::RandomTensor({1, cin, h, w}, rng)},
                                {dnnl_test::RandomTensor({cout, cin, kh, kw}, rng), true},
                                {dnnl_test::RandomTensor({cout}, rng), true}};
    auto prep = dnnl_test::Prepare("Conv", ops, attrs);
    ASSERT_TRUE(prep.ok()) << prep.status().ToString();
    if (residual) {
      attrs["wbs.residual"] = int64_t{1};
      ops.push_back({dnnl_test::RandomTensor(prep->out_shape, rng)});
    }
    dnnl_test::ExpectFastMatchesReference(
        "Conv", ops, attrs,
        fmt::format("case {}: x [1,{},{},{}] w [{},{},{},{}] stride {} pads [{},{},{},{}] "
                    "residual {} act {}",
                    i, cin, h, w, cout, cin, kh, kw, s, pads[0], pads[1], pads[2], pads[3],
                    residual, act),
        /*may_decline=*/true, /*threads=*/1 + i % 2);
  }
}

}  // namespace
}  // namespace wbs

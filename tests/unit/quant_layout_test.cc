// The int8 runtime's nChw4c activation layout (core/layout.h kQuad4): the
// fast QConv (block-sparse and oneDNN kExact), QAdd, QMaxPool, QAveragePool
// and QGlobalAveragePool pass kQuad4 tensors to each other (runtime/session.cc
// negotiates), and a chain of them computes exactly the reference's bytes
// whatever mix of layouts the negotiation produced: channels that are not a
// multiple of 4 (those tensors stay plain), values that are also graph
// outputs (plain, so their readers see mixed layouts), s8 and u8
// activations, odd spatial sizes (tails), 1 and 2 threads, sparse forced,
// dense only, and the cost rule mixing both.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>

#include "core/layout.h"
#include "kernels/sparse/s8_dispatch.h"
#include "runtime/ops_sparse.h"
#include "runtime/session.h"
#include "tests/unit/int8_test_util.h"
#include "tests/unit/session_test_util.h"

namespace wbs {
namespace {

using runtime::SparseMode;

std::shared_ptr<QuantParams> QP(DType t, std::vector<float> s, std::vector<int32_t> z,
                                int axis = -1) {
  auto q = std::make_shared<QuantParams>();
  q->dtype = static_cast<int32_t>(t);
  q->scale = std::move(s);
  q->zero_point = std::move(z);
  q->axis = axis;
  return q;
}

std::shared_ptr<QuantParams> ActivationQP(DType t, float scale, std::mt19937_64& rng) {
  const int32_t z = t == DType::kU8 ? Uniform(rng, 0, 60) : Uniform(rng, -30, 30);
  return QP(t, {scale}, {z});
}

TEST(QuantLayout, Quad4FitsAndReorders) {
  EXPECT_STREQ(ActivationLayoutName(ActivationLayout::kQuad4), "quad4");
  EXPECT_TRUE(LayoutFits(ActivationLayout::kQuad4, {1, 8, 5, 3}));
  EXPECT_TRUE(LayoutFits(ActivationLayout::kQuad4, {2, 4, 7}));
  EXPECT_FALSE(LayoutFits(ActivationLayout::kQuad4, {1, 6, 5, 3}));  // C % 4 != 0
  EXPECT_FALSE(LayoutFits(ActivationLayout::kQuad4, {1, 8}));        // no spatial dims
  // Element (n, c, s) of plain [2, 8, 5] sits at ((n * 2 + c / 4) * 5 + s) * 4 + c % 4.
  std::vector<uint8_t> plain(80), quad(80), back(80);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 7 + 1);
  PlainToQuad4(plain.data(), quad.data(), 2, 8, 5);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 8; ++c)
      for (int s = 0; s < 5; ++s)
        ASSERT_EQ(quad[static_cast<size_t>(((n * 2 + c / 4) * 5 + s) * 4 + c % 4)],
                  plain[static_cast<size_t>((n * 8 + c) * 5 + s)]);
  Quad4ToPlain(quad.data(), back.data(), 2, 8, 5);
  EXPECT_EQ(back, plain);
}

// x -> conv1 (kxk) -> maxpool -> {conv2 (1x1), conv3 (3x3)} -> add -> avgpool
//   -> conv4 (1x1, stride s) -> gap; optionally conv3 is also a graph output
//   (plain: the add reads one plain and one quad4 input).
struct Chain {
  int64_t n = 1, c0 = 3, c1 = 8, c2 = 8, h = 13, w = 11, k1 = 3, s1 = 2, s4 = 1;
  int64_t pool_k = 3, pool_s = 2, pool_pad = 1, pool_dil = 1, avg_k = 3, avg_pad = 1;
  bool ceil = false, include_pad = false, conv3_output = false;
  DType x_type = DType::kU8, mid_type = DType::kU8;
  double sparsity[4] = {0.5, 0.5, 0.5, 0.5};
};

std::string Describe(const Chain& c) {
  return fmt::format(
      "n{} c{}/{}/{} {}x{} k1 {} s1 {} s4 {} maxpool k{} s{} p{} d{} ceil{} avg k{} p{} incl{} "
      "{}->{} conv3_out {} sparsity {}/{}/{}/{}",
      c.n, c.c0, c.c1, c.c2, c.h, c.w, c.k1, c.s1, c.s4, c.pool_k, c.pool_s, c.pool_pad, c.pool_dil,
      c.ceil, c.avg_k, c.avg_pad, c.include_pad, DTypeName(c.x_type), DTypeName(c.mid_type),
      c.conv3_output, c.sparsity[0], c.sparsity[1], c.sparsity[2], c.sparsity[3]);
}

ir::Value* AddConv(ir::Graph& g, const std::string& name, ir::Value* x, int64_t c, int64_t m,
                   int64_t k, int64_t stride, double sparsity, DType y_type, std::mt19937_64& rng) {
  ir::Value* w = g.AddConstant(name + ".w",
                               BlockSparseWeight({m, c, k, k}, sparsity, rng, /*keep_first=*/true));
  std::vector<float> sw(static_cast<size_t>(m));
  for (auto& s : sw) s = 0.0005f * float(1 + Uniform(rng, 0, 9));
  w->quant = QP(DType::kI8, sw, std::vector<int32_t>(static_cast<size_t>(m), 0), 0);
  Tensor b(DType::kI32, {m});
  for (int64_t i = 0; i < m; ++i) b.data<int32_t>()[i] = Uniform(rng, -20000, 20000);
  ir::Value* bv = g.AddConstant(name + ".b", b);
  ir::Value* y = g.AddValue(name);
  y->quant = ActivationQP(y_type, 0.05f + 0.01f * float(Uniform(rng, 0, 5)), rng);
  ir::Node* node = g.AddNode("QConv", {x, w, bv}, {y}, name);
  node->attrs["kernel_shape"] = std::vector<int64_t>{k, k};
  node->attrs["strides"] = std::vector<int64_t>{stride, stride};
  node->attrs["pads"] = std::vector<int64_t>(4, k / 2);
  if (Uniform(rng, 0, 1)) node->attrs["wbs.activation"] = std::string("Relu");
  return y;
}

std::unique_ptr<ir::Graph> BuildChain(const Chain& c, std::mt19937_64& rng, Tensor* x) {
  auto g = std::make_unique<ir::Graph>();
  const Shape xs = {c.n, c.c0, c.h, c.w};
  ir::Value* xv = g->AddInput("x", c.x_type, xs);
  xv->quant = ActivationQP(c.x_type, 0.02f, rng);
  ir::Value* v1 = AddConv(*g, "conv1", xv, c.c0, c.c1, c.k1, c.s1, c.sparsity[0], c.mid_type, rng);
  ir::Value* p = g->AddValue("maxpool");
  p->quant = v1->quant;
  ir::Node* mp = g->AddNode("QMaxPool", {v1}, {p}, "maxpool");
  mp->attrs["kernel_shape"] = std::vector<int64_t>{c.pool_k, c.pool_k};
  mp->attrs["strides"] = std::vector<int64_t>{c.pool_s, c.pool_s};
  mp->attrs["pads"] = std::vector<int64_t>(4, c.pool_pad);
  mp->attrs["dilations"] = std::vector<int64_t>{c.pool_dil, c.pool_dil};
  mp->attrs["ceil_mode"] = int64_t{c.ceil};
  ir::Value* v2 = AddConv(*g, "conv2", p, c.c1, c.c1, 1, 1, c.sparsity[1], c.mid_type, rng);
  ir::Value* v3 = AddConv(*g, "conv3", p, c.c1, c.c1, 3, 1, c.sparsity[2], RandomType(rng), rng);
  ir::Value* a = g->AddValue("add");
  a->quant = ActivationQP(c.mid_type, 0.08f, rng);
  ir::Node* add = g->AddNode("QAdd", {v2, v3}, {a}, "add");
  if (Uniform(rng, 0, 1)) add->attrs["wbs.activation"] = std::string("Relu");
  ir::Value* av = g->AddValue("avgpool");
  av->quant = a->quant;
  ir::Node* ap = g->AddNode("QAveragePool", {a}, {av}, "avgpool");
  ap->attrs["kernel_shape"] = std::vector<int64_t>{c.avg_k, c.avg_k};
  ap->attrs["strides"] = std::vector<int64_t>{1, 1};
  ap->attrs["pads"] = std::vector<int64_t>(4, c.avg_pad);
  ap->attrs["count_include_pad"] = int64_t{c.include_pad};
  ir::Value* v4 = AddConv(*g, "conv4", av, c.c1, c.c2, 1, c.s4, c.sparsity[3], c.mid_type, rng);
  ir::Value* gap = g->AddValue("gap");
  gap->quant = v4->quant;
  g->AddNode("QGlobalAveragePool", {v4}, {gap}, "gap");
  g->outputs.push_back(gap);
  if (c.conv3_output) g->outputs.push_back(v3);
  *x = Tensor(c.x_type, xs);
  for (int64_t i = 0; i < x->numel(); ++i)
    static_cast<uint8_t*>(x->raw())[i] = static_cast<uint8_t>(Uniform(rng, 0, 255));
  return g;
}

Chain RandomChain(std::mt19937_64& rng) {
  Chain c;
  const int64_t c0s[] = {3, 4, 8, 16}, c1s[] = {6, 8, 12, 16, 24}, c2s[] = {4, 8, 10, 20};
  c.n = Uniform(rng, 1, 2);
  c.c0 = c0s[Uniform(rng, 0, 3)];
  c.c1 = c1s[Uniform(rng, 0, 4)];
  c.c2 = c2s[Uniform(rng, 0, 3)];
  c.h = Uniform(rng, 9, 23);
  c.w = Uniform(rng, 9, 23);
  c.k1 = Uniform(rng, 0, 1) ? 3 : 1;
  c.s1 = Uniform(rng, 1, 2);
  c.s4 = Uniform(rng, 1, 2);
  c.pool_k = Uniform(rng, 2, 3);
  c.pool_s = Uniform(rng, 1, 2);
  c.pool_pad = Uniform(rng, 0, c.pool_k - 1);
  c.pool_dil = Uniform(rng, 0, 3) == 0 ? 2 : 1;
  c.ceil = Uniform(rng, 0, 1);
  c.avg_k = Uniform(rng, 1, 3);
  c.avg_pad = Uniform(rng, 0, c.avg_k - 1);
  c.include_pad = Uniform(rng, 0, 1);
  c.conv3_output = Uniform(rng, 0, 2) == 0;
  c.x_type = RandomType(rng);
  c.mid_type = RandomType(rng);
  for (double& s : c.sparsity) s = 0.45 * Uniform(rng, 0, 2);  // 0, 0.45, 0.9
  return c;
}

using Outcome = SessionRun;

Outcome RunChain(const ir::Graph& g, const Tensor& x, runtime::Backend backend, int threads,
                 bool negotiate = true) {
  return RunSession(g, {x}, backend, threads, negotiate);
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::equal(static_cast<const uint8_t*>(a.raw()),
                    static_cast<const uint8_t*>(a.raw()) + a.nbytes(),
                    static_cast<const uint8_t*>(b.raw()));
}

void CheckRandomChains(SparseMode mode, int count, uint64_t seed) {
  ModeGuard guard;
  runtime::SetSparseMode(mode);
  std::mt19937_64 rng(seed);
  int quad_values = 0, mixed_adds = 0;
  for (int i = 0; i < count; ++i) {
    const Chain c = RandomChain(rng);
    SCOPED_TRACE(Describe(c));
    Tensor x;
    auto g = BuildChain(c, rng, &x);
    const Outcome ref = RunChain(*g, x, runtime::Backend::kReference, 1);
    const int threads = 1 + i % 2;
    const Outcome fast = RunChain(*g, x, runtime::Backend::kFast, threads);
    const Outcome plain = RunChain(*g, x, runtime::Backend::kFast, threads, false);
    ASSERT_EQ(ref.y.size(), g->outputs.size());
    ASSERT_EQ(fast.y.size(), ref.y.size());
    ASSERT_EQ(plain.y.size(), ref.y.size());
    for (const std::string& impl : fast.impls)
      EXPECT_EQ(impl.find(":ref"), std::string::npos) << impl;
    for (size_t o = 0; o < ref.y.size(); ++o) {
      EXPECT_TRUE(SameBytes(ref.y[o], fast.y[o])) << "output " << o;
      EXPECT_TRUE(SameBytes(ref.y[o], plain.y[o])) << "output " << o << " (plain session)";
    }
    EXPECT_TRUE(plain.non_plain.empty());
    std::map<std::string, ActivationLayout> layout(fast.non_plain.begin(), fast.non_plain.end());
    for (const auto& [name, l] : layout) {
      EXPECT_EQ(l, ActivationLayout::kQuad4) << name;
      // Only 4-multiples of channels travel in quads; graph outputs never do.
      EXPECT_NE(name, "gap");
      EXPECT_FALSE(c.conv3_output && name == "conv3");
    }
    const bool c1_quads = c.c1 % 4 == 0;
    EXPECT_EQ(layout.count("conv1") == 1, c1_quads);
    EXPECT_EQ(layout.count("maxpool") == 1, c1_quads);
    EXPECT_EQ(layout.count("add") == 1, c1_quads);
    EXPECT_EQ(layout.count("avgpool") == 1, c1_quads);
    EXPECT_EQ(layout.count("conv4") == 1, c.c2 % 4 == 0);
    quad_values += static_cast<int>(layout.size());
    mixed_adds += c1_quads && c.conv3_output;
  }
  EXPECT_GT(quad_values, count);
  EXPECT_GT(mixed_adds, 0);
}

TEST(QuantLayout, ChainSparseForcedMatchesReference) {
  CheckRandomChains(SparseMode::kForce, 24, 101);
}
TEST(QuantLayout, ChainDenseOneDnnMatchesReference) {
  CheckRandomChains(SparseMode::kOff, 16, 102);
}
TEST(QuantLayout, ChainCostRuleMixMatchesReference) {
  CheckRandomChains(SparseMode::kAuto, 24, 103);
}

// QMaxPool on a kQuad4 input (a 1x1 QConv makes one) over wide rows, so the
// AVX-512 quad pool's 16-word vectors, tails, stride-2 even-word gathers,
// dilations, pads and ceil_mode windows all run; u8 and s8 with the whole
// byte range (no Relu on half the cases); exact against the reference.
TEST(QuantLayout, QuadMaxPoolMatchesReference) {
  ModeGuard guard;
  runtime::SetSparseMode(SparseMode::kAuto);
  std::mt19937_64 rng(105);
  int quad_runs = 0;
  for (int it = 0; it < 30; ++it) {
    const DType t = RandomType(rng);
    const int64_t n = Uniform(rng, 1, 2), c = 4 * Uniform(rng, 1, 4), h = Uniform(rng, 1, 12),
                  w = Uniform(rng, 1, 70);
    int64_t k[2], st[2], d[2], pb[2], pe[2];
    const int64_t extent[2] = {h, w};
    for (int a = 0; a < 2; ++a) {
      k[a] = Uniform(rng, 1, static_cast<int>(std::min<int64_t>(4, extent[a])));
      st[a] = Uniform(rng, 1, 3);
      d[a] = Uniform(rng, 1, 2);
      if ((k[a] - 1) * d[a] + 1 > extent[a]) d[a] = 1;
      pb[a] = Uniform(rng, 0, static_cast<int>(k[a] - 1));
      pe[a] = Uniform(rng, 0, static_cast<int>(k[a] - 1));
    }
    const bool ceil = Uniform(rng, 0, 1);
    ir::Graph g;
    const Shape xs = {n, c, h, w};
    ir::Value* xv = g.AddInput("x", t, xs);
    xv->quant = ActivationQP(t, 0.02f, rng);
    ir::Value* v = AddConv(g, "conv", xv, c, c, 1, 1, 0.0, t, rng);
    ir::Value* p = g.AddValue("maxpool");
    p->quant = v->quant;
    ir::Node* mp = g.AddNode("QMaxPool", {v}, {p}, "maxpool");
    mp->attrs["kernel_shape"] = std::vector<int64_t>{k[0], k[1]};
    mp->attrs["strides"] = std::vector<int64_t>{st[0], st[1]};
    mp->attrs["pads"] = std::vector<int64_t>{pb[0], pb[1], pe[0], pe[1]};
    mp->attrs["dilations"] = std::vector<int64_t>{d[0], d[1]};
    mp->attrs["ceil_mode"] = int64_t{ceil};
    g.outputs.push_back(p);
    Tensor x(t, xs);
    for (int64_t i = 0; i < x.numel(); ++i)
      static_cast<uint8_t*>(x.raw())[i] = static_cast<uint8_t>(Uniform(rng, 0, 255));
    SCOPED_TRACE(fmt::format("case {}: {} {} k{}x{} s{}x{} d{}x{} pads {},{},{},{} ceil {}", it,
                             DTypeName(t), ShapeToString(xs), k[0], k[1], st[0], st[1], d[0], d[1],
                             pb[0], pb[1], pe[0], pe[1], ceil));
    const Outcome ref = RunChain(g, x, runtime::Backend::kReference, 1);
    const Outcome fast = RunChain(g, x, runtime::Backend::kFast, 1 + it % 2);
    ASSERT_EQ(ref.y.size(), 1u);
    ASSERT_EQ(fast.y.size(), 1u);
    EXPECT_TRUE(SameBytes(ref.y[0], fast.y[0]));
    for (const std::string& impl : fast.impls) {
      EXPECT_EQ(impl.find(":ref"), std::string::npos) << impl;
      quad_runs += impl.find("QMaxPool:avx512_quad") != std::string::npos;
    }
  }
  // Every case fits the quad pool (strides 1 and 2 on columns) on an AVX-512 CPU.
  if (kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512) {
    EXPECT_GT(quad_runs, 10);
  }
}

// The negotiation itself on a fixed chain: every 4-multiple intermediate
// travels as quad4 (the 3-channel input and the graph outputs stay plain).
TEST(LayoutNegotiationTest, Int8ChainTravelsInQuads) {
  ModeGuard guard;
  runtime::SetSparseMode(SparseMode::kForce);
  std::mt19937_64 rng(104);
  Chain c;
  c.conv3_output = true;
  Tensor x;
  auto g = BuildChain(c, rng, &x);
  const Outcome fast = RunChain(*g, x, runtime::Backend::kFast, 1);
  std::vector<std::string> names;
  for (const auto& [name, l] : fast.non_plain) {
    EXPECT_EQ(l, ActivationLayout::kQuad4) << name;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"add", "avgpool", "conv1", "conv2", "conv4", "maxpool"}));
}

}  // namespace
}  // namespace wbs

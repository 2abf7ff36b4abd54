// The fast int8 QConv / QGemm operators (runtime/ops_quant_fast.cc) against
// the reference operators (runtime/ops_quant.cc): exact equality of every
// output byte over random geometries, 8-bit types, zero points, fused
// Relu/Clip, power-of-two scales and 8x8 block sparsities, on both fast paths
// (int8 block-sparse forced with SetSparseMode(kForce), oneDNN kExact with
// kOff); and a whole quantized fmnist_resnet (50% block-sparse, random
// calibration) run with kFast vs kReference.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "kernels/dnnl/conv_s8.h"
#include "kernels/sparse/s8_dispatch.h"
#include "quant/ptq.h"
#include "runtime/ops_sparse.h"
#include "runtime/session.h"
#include "sparse/sparsify.h"
#include "tests/unit/int8_test_util.h"
#include "tests/unit/session_test_util.h"
#include "zoo/zoo.h"

namespace wbs {
namespace {

using runtime::SparseMode;

std::shared_ptr<QuantParams> QP(DType t, std::vector<float> s, std::vector<int32_t> z,
                                int axis = -1, bool pot = false) {
  auto q = std::make_shared<QuantParams>();
  q->dtype = static_cast<int32_t>(t);
  q->scale = std::move(s);
  q->zero_point = std::move(z);
  q->axis = axis;
  q->power_of_two = pot;
  return q;
}

struct RunResult {
  Tensor y;
  std::string impl;
};

RunResult RunGraph(const ir::Graph& g, const Tensor& x, runtime::Backend backend, int threads) {
  SessionRun r = RunSession(g, {x}, backend, threads);
  if (r.y.empty()) return {};
  return {r.y[0], r.impls.empty() ? "" : r.impls[0]};
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::equal(static_cast<const uint8_t*>(a.raw()),
                    static_cast<const uint8_t*>(a.raw()) + a.nbytes(),
                    static_cast<const uint8_t*>(b.raw()));
}

struct Case {
  bool conv = true;
  int64_t n = 1, c = 8, m = 8, h = 8, w = 8, k = 3, stride = 1, pad = 1, dil = 1, group = 1;
  bool one_d = false;
  DType x_type = DType::kU8, y_type = DType::kU8;
  std::string act;  // "", "Relu", "Clip"
  bool pot = false, bias = true;
  double sparsity = 0.5;
};

std::string Describe(const Case& c) {
  return fmt::format(
      "{} n{} c{} m{} {}x{} k{} s{} p{} d{} g{}{} {}->{} act'{}' pot{} bias{} sparsity{:.2f}",
      c.conv ? "conv" : "gemm", c.n, c.c, c.m, c.h, c.w, c.k, c.stride, c.pad, c.dil, c.group,
      c.one_d ? " 1d" : "", DTypeName(c.x_type), DTypeName(c.y_type), c.act, c.pot, c.bias,
      c.sparsity);
}

// One QConv / QGemm graph for `c`, and a random input.
std::unique_ptr<ir::Graph> BuildCase(const Case& c, std::mt19937_64& rng, Tensor* x) {
  auto g = std::make_unique<ir::Graph>();
  const bool xs = c.x_type == DType::kI8, ys = c.y_type == DType::kI8;
  const float sx = c.pot ? 1.f / 32 : 0.02f, sy = c.pot ? 1.f / 8 : 0.07f;
  const int32_t zx = c.pot ? 0 : Uniform(rng, xs ? -20 : 0, xs ? 20 : 40);
  const int32_t zy = c.pot ? 0 : Uniform(rng, ys ? -30 : 0, ys ? 30 : 60);
  Shape xshape =
      c.conv ? (c.one_d ? Shape{c.n, c.c, c.w} : Shape{c.n, c.c, c.h, c.w}) : Shape{c.n, c.c};
  ir::Value* xv = g->AddInput("x", c.x_type, xshape);
  xv->quant = QP(c.x_type, {sx}, {zx}, -1, c.pot);
  Shape wshape = !c.conv   ? Shape{c.m, c.c}
                 : c.one_d ? Shape{c.m, c.c / c.group, c.k}
                           : Shape{c.m, c.c / c.group, c.k, c.k};
  Tensor wt = BlockSparseWeight(wshape, c.sparsity, rng);
  std::vector<float> sw(static_cast<size_t>(c.m));
  for (int64_t i = 0; i < c.m; ++i)
    sw[static_cast<size_t>(i)] =
        c.pot ? 1.f / float(1 << Uniform(rng, 6, 9)) : 0.0005f * float(1 + Uniform(rng, 0, 9));
  ir::Value* wv = g->AddConstant("w", wt);
  wv->quant = QP(DType::kI8, sw, std::vector<int32_t>(static_cast<size_t>(c.m), 0), 0, c.pot);
  std::vector<ir::Value*> ins = {xv, wv};
  if (c.bias) {
    Tensor bt(DType::kI32, {c.m});
    for (int64_t i = 0; i < c.m; ++i) bt.data<int32_t>()[i] = Uniform(rng, -20000, 20000);
    ins.push_back(g->AddConstant("b", bt));
  }
  ir::Value* yv = g->AddValue("y");
  yv->quant = QP(c.y_type, {sy}, {zy}, -1, c.pot);
  ir::Node* node = g->AddNode(c.conv ? "QConv" : "QGemm", ins, {yv}, "layer");
  if (c.conv) {
    const int r = c.one_d ? 1 : 2;
    node->attrs["kernel_shape"] = std::vector<int64_t>(r, c.k);
    node->attrs["strides"] = std::vector<int64_t>(r, c.stride);
    node->attrs["dilations"] = std::vector<int64_t>(r, c.dil);
    node->attrs["pads"] = std::vector<int64_t>(2 * r, c.pad);
    node->attrs["group"] = c.group;
  } else {
    node->attrs["transB"] = int64_t{1};
  }
  if (!c.act.empty()) node->attrs["wbs.activation"] = c.act;
  if (c.act == "Clip") {
    node->attrs["wbs.activation_alpha"] = 0.1f;
    node->attrs["wbs.activation_beta"] = 4.0f;
  }
  g->outputs.push_back(yv);
  *x = Tensor(c.x_type, xshape);
  for (int64_t i = 0; i < x->numel(); ++i)
    static_cast<uint8_t*>(x->raw())[i] = static_cast<uint8_t>(Uniform(rng, 0, 255));
  return g;
}

Case RandomCase(std::mt19937_64& rng, bool conv) {
  Case c;
  c.conv = conv;
  const int64_t chans[] = {3, 8, 16, 20, 32, 40, 64};
  c.n = Uniform(rng, 1, 2);
  c.c = chans[Uniform(rng, 0, 6)];
  c.m = chans[Uniform(rng, 1, 6)];
  c.x_type = Uniform(rng, 0, 1) ? DType::kI8 : DType::kU8;
  c.y_type = Uniform(rng, 0, 1) ? DType::kI8 : DType::kU8;
  const char* acts[] = {"", "Relu", "Clip"};
  c.act = acts[Uniform(rng, 0, 2)];
  c.pot = Uniform(rng, 0, 3) == 0;
  c.bias = Uniform(rng, 0, 4) != 0;
  c.sparsity = 0.25 * Uniform(rng, 0, 3) + (Uniform(rng, 0, 1) ? 0.1 : 0.0);
  if (!conv) {
    c.n = Uniform(rng, 0, 1) ? 1 : Uniform(rng, 2, 21);
    c.c = chans[Uniform(rng, 0, 6)] * Uniform(rng, 1, 3);
    return c;
  }
  c.one_d = Uniform(rng, 0, 5) == 0;
  c.h = Uniform(rng, 3, 14);
  c.w = Uniform(rng, 3, 14);
  const int64_t ks[] = {1, 3, 5};
  c.k = ks[Uniform(rng, 0, 2)];
  c.stride = Uniform(rng, 1, 2);
  c.pad = Uniform(rng, 0, (c.k - 1) / 2 + 1);
  c.dil = Uniform(rng, 0, 4) == 0 ? 2 : 1;
  if (c.one_d) c.h = 1;
  while ((c.one_d ? c.w : std::min(c.h, c.w)) + 2 * c.pad < c.dil * (c.k - 1) + 1) ++c.pad;
  const int g = Uniform(rng, 0, 5);
  if (g == 0) c.group = c.c;  // depthwise
  if (g == 1 && c.c % 2 == 0 && c.m % 2 == 0) c.group = 2;
  if (c.group == c.c) c.m = c.c * Uniform(rng, 1, 2);
  return c;
}

// Runs `count` random cases of one op under `mode`; every case must run a
// fast implementation (not the reference) and match the reference exactly.
void CheckRandomCases(bool conv, SparseMode mode, int count, uint64_t seed) {
  ModeGuard guard;
  runtime::SetSparseMode(mode);
  std::mt19937_64 rng(seed);
  int sparse_runs = 0;
  for (int i = 0; i < count; ++i) {
    const Case c = RandomCase(rng, conv);
    SCOPED_TRACE(Describe(c));
    Tensor x;
    auto g = BuildCase(c, rng, &x);
    const int threads = Uniform(rng, 1, 2);
    const RunResult ref = RunGraph(*g, x, runtime::Backend::kReference, threads);
    const RunResult fast = RunGraph(*g, x, runtime::Backend::kFast, threads);
    ASSERT_TRUE(ref.y.defined() && fast.y.defined());
    // The reference operator's impl is "<op>:ref" (oneDNN's reference int8,
    // "onednn_s8_exact:ref:any", is a fast-path choice).
    EXPECT_TRUE(ref.impl.ends_with(":ref")) << ref.impl;
    EXPECT_FALSE(fast.impl.ends_with(":ref")) << fast.impl;
    const bool sparse = fast.impl.find("sparse_s8") != std::string::npos;
    sparse_runs += sparse;
    if (mode == SparseMode::kOff) {
      // oneDNN kExact, unless its int8 jit is not exact here (no VNNI): then
      // group-1 layers run the int8 plan dense and grouped ones oneDNN's
      // reference int8.
      const bool jit_exact = kernels::onednn::OneDnnS8JitIsExact();
      EXPECT_NE(fast.impl.find(jit_exact || c.group > 1 ? "onednn_s8_exact" : "dense_s8:"),
                std::string::npos)
          << fast.impl;
      if (!jit_exact && c.group > 1) {
        EXPECT_NE(fast.impl.find("onednn_s8_exact:ref"), std::string::npos) << fast.impl;
      }
    }
    EXPECT_TRUE(SameBytes(ref.y, fast.y)) << fast.impl;
  }
  // Forced: every group-1 layer with a zero block went sparse; at least some did.
  if (mode == SparseMode::kForce) {
    EXPECT_GT(sparse_runs, count / 4);
  }
}

TEST(OpsQuantFast, QConvSparseForcedMatchesReference) {
  CheckRandomCases(true, SparseMode::kForce, 60, 1);
}
TEST(OpsQuantFast, QConvOneDnnExactMatchesReference) {
  CheckRandomCases(true, SparseMode::kOff, 40, 2);
}
TEST(OpsQuantFast, QGemmSparseForcedMatchesReference) {
  CheckRandomCases(false, SparseMode::kForce, 40, 3);
}
TEST(OpsQuantFast, QGemmOneDnnExactMatchesReference) {
  CheckRandomCases(false, SparseMode::kOff, 25, 4);
}

// The cost rule: auto picks sparse at 90% zero blocks and dense at 0%.
TEST(OpsQuantFast, CostRulePicksSparseOnlyWhenSparseEnough) {
  ModeGuard guard;
  runtime::SetSparseMode(SparseMode::kAuto);
  std::mt19937_64 rng(5);
  for (double sparsity : {0.0, 0.9}) {
    Case c;
    c.c = 64;
    c.m = 64;
    c.h = c.w = 14;
    c.sparsity = sparsity;
    Tensor x;
    auto g = BuildCase(c, rng, &x);
    const RunResult fast = RunGraph(*g, x, runtime::Backend::kFast, 1);
    EXPECT_EQ(fast.impl.find("sparse_s8") != std::string::npos, sparsity > 0.5) << fast.impl;
    // Dense: the int8 plan on VNNI (faster than oneDNN kExact) or where
    // oneDNN's int8 jit is not exact, else kExact.
    if (sparsity == 0.0) {
      const bool vnni = kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512Vnni;
      const bool plan = vnni || !kernels::onednn::OneDnnS8JitIsExact();
      EXPECT_NE(fast.impl.find(plan ? "dense_s8" : "onednn_s8_exact"), std::string::npos)
          << fast.impl;
    }
  }
}

// Dense convs on small output planes (runtime/ops_quant_fast.cc
// PlanBeatsOneDnnWhenDense): the plan when the plane has >= 48 positions, or
// >= 16 with K <= 256, or any size with K <= 128; else oneDNN kExact. Where
// oneDNN's int8 jit is not exact (no VNNI) every probe takes the plan. Both
// sides bit-exact with the reference.
TEST(OpsQuantFast, DenseSmallPlanesChooseByMeasuredRule) {
  ModeGuard guard;
  runtime::SetSparseMode(SparseMode::kAuto);
  const bool vnni = kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512Vnni;
  const bool jit_exact = kernels::onednn::OneDnnS8JitIsExact();
  std::mt19937_64 rng(8);
  struct Probe {
    int64_t c, hw, k;
    bool plan;  // expected on VNNI
  };
  for (const Probe& pr : {Probe{64, 1, 1, true},      // K = 64: any plane
                          Probe{256, 1, 1, false},    // K = 256 below 16 positions
                          Probe{256, 4, 1, true},     // K = 256 at 16 positions
                          Probe{512, 4, 1, false},    // K = 512 at 16 positions
                          Probe{64, 5, 3, false},     // K = 576 at 25 positions
                          Probe{64, 7, 3, true}}) {   // 49 positions
    Case c;
    c.c = pr.c;
    c.m = 16;
    c.h = c.w = pr.hw;
    c.k = pr.k;
    c.pad = pr.k / 2;
    c.sparsity = 0.0;
    Tensor x;
    auto g = BuildCase(c, rng, &x);
    const RunResult ref = RunGraph(*g, x, runtime::Backend::kReference, 1);
    const RunResult fast = RunGraph(*g, x, runtime::Backend::kFast, 1);
    const bool plan = (vnni && pr.plan) || !jit_exact;
    EXPECT_NE(fast.impl.find(plan ? "dense_s8" : "onednn_s8_exact"), std::string::npos)
        << Describe(c) << ": " << fast.impl;
    EXPECT_TRUE(SameBytes(ref.y, fast.y)) << Describe(c);
  }
}

// An f32 output (the dequantized logits): neither int8 kernel writes f32;
// the dot-product path (runtime/ops_quant_fast_ew.cc: vpdpbusd on VNNI,
// else int16) runs, bit-exact. K = 40 (one padded 64-byte step), 200 (a
// 128-byte step and a 64-byte tail) and 300 (two steps and a padded tail).
TEST(OpsQuantFast, FloatOutputRunsTheDotPath) {
  std::mt19937_64 rng(6);
  const bool vnni = kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512Vnni;
  for (DType xt : {DType::kU8, DType::kI8})
    for (int64_t n : {1, 3})
      for (int64_t k : {40, 200, 300})
        for (bool bias : {true, false}) {
          Case c;
          c.conv = false;
          c.n = n;
          c.c = k;
          c.m = 24;
          c.x_type = xt;
          c.bias = bias;
          Tensor x;
          auto g = BuildCase(c, rng, &x);
          g->FindValue("y")->quant.reset();
          const RunResult ref = RunGraph(*g, x, runtime::Backend::kReference, 1);
          for (int threads : {1, 2}) {
            const RunResult fast = RunGraph(*g, x, runtime::Backend::kFast, threads);
            EXPECT_EQ(fast.impl, vnni ? "QGemm:vnni_dot" : "QGemm:int16_dot") << Describe(c);
            EXPECT_TRUE(SameBytes(ref.y, fast.y)) << Describe(c) << " threads " << threads;
          }
        }
}

// A whole quantized model: fmnist_resnet at 50% block sparsity, quantized
// with random calibration images, run with kFast (sparse forced, then the
// cost rule) and kReference: identical logits.
TEST(OpsQuantFast, QuantizedFmnistResnetFastEqualsReference) {
  ModeGuard guard;
  auto g = zoo::BuildModel("fmnist_resnet");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  sparse::SparsifyOptions so;
  so.sparsity = 0.5;
  ASSERT_TRUE(sparse::Sparsify(**g, so).ok());
  auto prepared = quant::PrepareFloatGraph(**g);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  std::mt19937_64 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<Tensor> calib;
  for (int b = 0; b < 2; ++b) {
    Tensor t(DType::kF32, {8, 1, 28, 28});
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = nd(rng);
    calib.push_back(t);
  }
  for (DType act : {DType::kU8, DType::kI8}) {
    SCOPED_TRACE(DTypeName(act));
    quant::PtqOptions po;
    po.activation_type = act;
    auto cal = quant::Calibrate(**prepared, calib, po);
    ASSERT_TRUE(cal.ok()) << cal.status().ToString();
    auto q = quant::BuildQuantizedGraph(**prepared, *cal, po, nullptr);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    Tensor x(DType::kF32, {4, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
    runtime::SessionOptions o;
    o.input_shapes[(*q)->inputs[0]->name] = x.shape();
    o.backend = runtime::Backend::kReference;
    auto ref = runtime::Session::Create(**q, o);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    auto want = (*ref)->Run({x});
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    for (SparseMode mode : {SparseMode::kForce, SparseMode::kAuto}) {
      runtime::SetSparseMode(mode);
      o.backend = runtime::Backend::kFast;
      auto fast = runtime::Session::Create(**q, o);
      ASSERT_TRUE(fast.ok()) << fast.status().ToString();
      int fast_layers = 0;
      for (const std::string& s : (*fast)->NodeImplementations())
        fast_layers += (s.rfind("QConv:", 0) == 0 || s.rfind("QGemm:", 0) == 0) &&
                       s.find(":ref") == std::string::npos;
      EXPECT_GT(fast_layers, 0);
      auto got = (*fast)->Run({x});
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_EQ(got->size(), want->size());
      for (size_t i = 0; i < got->size(); ++i) EXPECT_TRUE(SameBytes((*want)[i], (*got)[i]));
    }
  }
}

}  // namespace
}  // namespace wbs

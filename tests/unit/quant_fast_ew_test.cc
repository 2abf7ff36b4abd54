// The fast int8 QAdd / QConcat / QMaxPool / QAveragePool / QGlobalAveragePool
// (runtime/ops_quant_fast_ew.cc) against the reference operators
// (runtime/ops_quant.cc): every output byte equal over random shapes, 8-bit
// types, scales, zero points, fused Relu/Clip, power-of-two scales, windows
// (kernel, stride, pads, dilation, count_include_pad) and thread counts; and
// the fast path must actually be the one that ran.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include "kernels/sparse/s8_dispatch.h"
#include "runtime/session.h"
#include "tests/unit/int8_test_util.h"
#include "tests/unit/session_test_util.h"

namespace wbs {
namespace {

std::shared_ptr<QuantParams> QP(DType t, float s, int32_t z, bool pot = false) {
  auto q = std::make_shared<QuantParams>();
  q->dtype = static_cast<int32_t>(t);
  q->scale = {s};
  q->zero_point = {z};
  q->power_of_two = pot;
  return q;
}

// Random parameters of an 8-bit type; power-of-two scales have zero point 0.
std::shared_ptr<QuantParams> RandomQP(DType t, std::mt19937_64& rng, bool pot) {
  if (pot) return QP(t, std::ldexp(1.f, -Uniform(rng, 2, 7)), 0, true);
  const float s = std::uniform_real_distribution<float>(0.005f, 0.2f)(rng);
  const int32_t z = t == DType::kU8 ? Uniform(rng, 0, 255) : Uniform(rng, -128, 127);
  return QP(t, s, z);
}

Tensor RandomBytes(DType t, const Shape& s, std::mt19937_64& rng) {
  Tensor x(t, s);
  uint8_t* b = static_cast<uint8_t*>(x.raw());
  for (int64_t i = 0; i < x.numel(); ++i) b[i] = static_cast<uint8_t>(rng());
  return x;
}

struct Out {
  Tensor y;
  std::string impl;
};

Out Run(const ir::Graph& g, const std::vector<Tensor>& in, runtime::Backend b, int threads) {
  SessionRun r = RunSession(g, in, b, threads);
  if (r.y.empty()) return {};
  return {r.y[0], r.impls.at(0)};
}

// Runs g both ways and compares bytes; the fast run must use `impl`.
void ExpectFastEqualsReference(const ir::Graph& g, const std::vector<Tensor>& in,
                               const std::string& impl, int threads, const std::string& what) {
  const Out r = Run(g, in, runtime::Backend::kReference, 1);
  const Out f = Run(g, in, runtime::Backend::kFast, threads);
  ASSERT_TRUE(r.y.defined() && f.y.defined()) << what;
  EXPECT_EQ(f.impl, impl) << what;
  ASSERT_EQ(r.y.dtype(), f.y.dtype()) << what;
  ASSERT_EQ(r.y.shape(), f.y.shape()) << what;
  const uint8_t* a = static_cast<const uint8_t*>(r.y.raw());
  const uint8_t* b = static_cast<const uint8_t*>(f.y.raw());
  const auto mismatch = std::mismatch(a, a + r.y.nbytes(), b);
  EXPECT_EQ(mismatch.first, a + r.y.nbytes())
      << what << ": first difference at byte " << (mismatch.first - a) << ": ref "
      << int(*mismatch.first) << " fast " << int(*mismatch.second);
}

void SetActivation(ir::Node* n, std::mt19937_64& rng) {
  const int act = Uniform(rng, 0, 2);
  if (act == 1) n->attrs["wbs.activation"] = std::string("Relu");
  if (act == 2) {
    n->attrs["wbs.activation"] = std::string("Clip");
    n->attrs["wbs.activation_alpha"] = -0.5f;
    n->attrs["wbs.activation_beta"] = 3.f;
  }
}

// A QAdd of two graph inputs of shape `s` with random types, quantization
// and fused activation; returns the inputs' types.
std::pair<DType, DType> AddRandomQAdd(ir::Graph& g, const Shape& s, bool pot,
                                      std::mt19937_64& rng) {
  ir::Value* a = g.AddInput("a", RandomType(rng), s);
  a->quant = RandomQP(a->dtype, rng, pot);
  ir::Value* b = g.AddInput("b", RandomType(rng), s);
  b->quant = RandomQP(b->dtype, rng, pot);
  ir::Value* y = g.AddValue("y");
  y->quant = RandomQP(RandomType(rng), rng, pot);
  ir::Node* n = g.AddNode("QAdd", {a, b}, {y}, "add");
  SetActivation(n, rng);
  g.outputs.push_back(y);
  return {a->dtype, b->dtype};
}

// The AVX-512 formula, or the table (WBS_ISA_CAP=avx2|ref, tests/CMakeLists.txt).
std::string QAddImpl() {
  return kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512 ? "QAdd:avx512"
                                                                           : "QAdd:lut";
}

TEST(QuantFastEw, QAddMatchesReference) {
  std::mt19937_64 rng(11);
  for (int it = 0; it < 40; ++it) {
    const bool pot = it % 5 == 4;
    const Shape s = {Uniform(rng, 1, 2), Uniform(rng, 1, 40), Uniform(rng, 1, 30),
                     Uniform(rng, 1, 30)};
    ir::Graph g;
    const auto [a, b] = AddRandomQAdd(g, s, pot, rng);
    const std::vector<Tensor> in = {RandomBytes(a, s, rng), RandomBytes(b, s, rng)};
    ExpectFastEqualsReference(g, in, QAddImpl(), 1 + it % 2, fmt::format("QAdd case {}", it));
  }
}

// Every (a, b) byte pair (a 256 x 256 tensor) for random scales, zero points
// and activations: an off-by-one in the limb forms' constants (the VNNI one
// folds the zero points into them) shows only near rounding boundaries,
// which random inputs rarely hit.
TEST(QuantFastEw, QAddEveryBytePairMatchesReference) {
  std::mt19937_64 rng(12);
  const Shape s = {1, 1, 256, 256};
  for (int it = 0; it < 24; ++it) {
    ir::Graph g;
    const auto [a, b] = AddRandomQAdd(g, s, /*pot=*/false, rng);
    std::vector<Tensor> in = {Tensor(a, s), Tensor(b, s)};
    for (int i = 0; i < 65536; ++i) {
      static_cast<uint8_t*>(in[0].raw())[i] = static_cast<uint8_t>(i >> 8);
      static_cast<uint8_t*>(in[1].raw())[i] = static_cast<uint8_t>(i & 0xff);
    }
    ExpectFastEqualsReference(g, in, QAddImpl(), 1 + it % 2,
                              fmt::format("QAdd all pairs case {}", it));
  }
}

TEST(QuantFastEw, QAddWithBroadcastFallsBackToReference) {
  std::mt19937_64 rng(12);
  ir::Graph g;
  ir::Value* a = g.AddInput("a", DType::kU8, {1, 4, 3, 3});
  a->quant = QP(DType::kU8, 0.1f, 3);
  ir::Value* b = g.AddInput("b", DType::kU8, {1, 4, 1, 1});
  b->quant = QP(DType::kU8, 0.05f, 7);
  ir::Value* y = g.AddValue("y");
  y->quant = QP(DType::kU8, 0.12f, 0);
  g.AddNode("QAdd", {a, b}, {y}, "add");
  g.outputs.push_back(y);
  const std::vector<Tensor> in = {RandomBytes(DType::kU8, {1, 4, 3, 3}, rng),
                                  RandomBytes(DType::kU8, {1, 4, 1, 1}, rng)};
  ExpectFastEqualsReference(g, in, "QAdd:ref", 2, "broadcast QAdd");
}

TEST(QuantFastEw, QConcatMatchesReference) {
  std::mt19937_64 rng(13);
  for (int it = 0; it < 30; ++it) {
    const bool pot = it % 5 == 4;
    const int rank = Uniform(rng, 2, 4);
    const int axis = Uniform(rng, 0, rank - 1);
    Shape base(static_cast<size_t>(rank));
    for (int64_t& d : base) d = Uniform(rng, 1, 12);
    const DType yt = RandomType(rng);
    ir::Graph g;
    std::vector<ir::Value*> ins;
    std::vector<Tensor> data;
    const int inputs = Uniform(rng, 1, 4);
    for (int i = 0; i < inputs; ++i) {
      Shape s = base;
      s[static_cast<size_t>(axis)] = Uniform(rng, 1, 9);
      // Every other case: some inputs share the output's parameters (the
      // copy path); the rest rescale.
      const bool same = it % 2 == 0 && Uniform(rng, 0, 1);
      ir::Value* x = g.AddInput(fmt::format("x{}", i), same ? yt : RandomType(rng), s);
      ins.push_back(x);
      data.push_back(RandomBytes(x->dtype, s, rng));
    }
    ir::Value* y = g.AddValue("y");
    y->quant = RandomQP(yt, rng, pot);
    for (ir::Value* x : ins)
      x->quant = x->dtype == yt && it % 2 == 0 && Uniform(rng, 0, 1) ? y->quant
                                                                     : RandomQP(x->dtype, rng, pot);
    ir::Node* n = g.AddNode("QConcat", ins, {y}, "cat");
    n->attrs["axis"] = int64_t{axis - (Uniform(rng, 0, 1) ? rank : 0)};  // negative axes too
    g.outputs.push_back(y);
    ExpectFastEqualsReference(g, data, "QConcat:lut", 1 + it % 2,
                              fmt::format("QConcat case {} rank {} axis {}", it, rank, axis));
  }
}

struct PoolCase {
  int64_t n, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool include_pad, ceil;
};

PoolCase RandomPool(std::mt19937_64& rng, bool average) {
  PoolCase p{};
  p.n = Uniform(rng, 1, 2);
  p.c = Uniform(rng, 1, 9);
  p.h = Uniform(rng, 1, 20);
  p.w = Uniform(rng, 1, 20);
  p.kh = Uniform(rng, 1, std::min<int64_t>(4, p.h));
  p.kw = Uniform(rng, 1, std::min<int64_t>(4, p.w));
  p.sh = Uniform(rng, 1, 3);
  p.sw = Uniform(rng, 1, 3);
  p.dh = average ? 1 : Uniform(rng, 1, 2);  // AveragePool-19 dilations: not in our opset
  p.dw = average ? 1 : Uniform(rng, 1, 2);
  if ((p.kh - 1) * p.dh + 1 > p.h) p.dh = 1;
  if ((p.kw - 1) * p.dw + 1 > p.w) p.dw = 1;
  p.pt = Uniform(rng, 0, p.kh - 1);
  p.pl = Uniform(rng, 0, p.kw - 1);
  p.pb = Uniform(rng, 0, p.kh - 1);
  p.pr = Uniform(rng, 0, p.kw - 1);
  p.include_pad = Uniform(rng, 0, 1);
  p.ceil = Uniform(rng, 0, 1);
  return p;
}

void PoolTest(const char* op, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const bool average = std::string(op) == "QAveragePool";
  for (int it = 0; it < 40; ++it) {
    const PoolCase p = RandomPool(rng, average);
    const DType t = RandomType(rng);
    const Shape s = {p.n, p.c, p.h, p.w};
    ir::Graph g;
    ir::Value* x = g.AddInput("x", t, s);
    x->quant = RandomQP(t, rng, it % 5 == 4);
    ir::Value* y = g.AddValue("y");
    y->quant = x->quant;
    ir::Node* n = g.AddNode(op, {x}, {y}, "pool");
    n->attrs["kernel_shape"] = std::vector<int64_t>{p.kh, p.kw};
    n->attrs["strides"] = std::vector<int64_t>{p.sh, p.sw};
    n->attrs["pads"] = std::vector<int64_t>{p.pt, p.pl, p.pb, p.pr};
    n->attrs["ceil_mode"] = int64_t{p.ceil};
    if (average)
      n->attrs["count_include_pad"] = int64_t{p.include_pad};
    else
      n->attrs["dilations"] = std::vector<int64_t>{p.dh, p.dw};
    g.outputs.push_back(y);
    const std::string what =
        fmt::format("{} case {}: {} x{} k{}x{} s{}x{} d{}x{} pads {},{},{},{} incl{} ceil{}", op,
                    it, DTypeName(t), ShapeToString(s), p.kh, p.kw, p.sh, p.sw, p.dh, p.dw, p.pt,
                    p.pl, p.pb, p.pr, p.include_pad, p.ceil);
    ExpectFastEqualsReference(g, {RandomBytes(t, s, rng)}, std::string(op) + ":rows", 1 + it % 2,
                              what);
  }
}

TEST(QuantFastEw, QMaxPoolMatchesReference) { PoolTest("QMaxPool", 14); }
TEST(QuantFastEw, QAveragePoolMatchesReference) { PoolTest("QAveragePool", 15); }

TEST(QuantFastEw, QGlobalAveragePoolMatchesReference) {
  std::mt19937_64 rng(16);
  for (int it = 0; it < 20; ++it) {
    const DType t = RandomType(rng);
    // Large planes too, so the parallel split runs.
    const Shape s = {Uniform(rng, 1, 3), Uniform(rng, 1, 70), Uniform(rng, 1, 30),
                     Uniform(rng, 1, 30)};
    ir::Graph g;
    ir::Value* x = g.AddInput("x", t, s);
    x->quant = RandomQP(t, rng, false);
    ir::Value* y = g.AddValue("y");
    y->quant = x->quant;
    g.AddNode("QGlobalAveragePool", {x}, {y}, "gap");
    g.outputs.push_back(y);
    ExpectFastEqualsReference(g, {RandomBytes(t, s, rng)}, "QGlobalAveragePool:rows", 1 + it % 2,
                              fmt::format("QGlobalAveragePool case {} {}", it, ShapeToString(s)));
  }
}

TEST(QuantFastEw, QuantizeLinearMatchesReference) {
  std::mt19937_64 rng(17);
  const std::string impl = kernels::sparse::S8ActiveIsa() >= kernels::sparse::S8Isa::kAvx512
                               ? "QuantizeLinear:avx512"
                               : "QuantizeLinear:rows";
  for (int it = 0; it < 16; ++it) {
    const DType t = RandomType(rng);
    const float s = std::uniform_real_distribution<float>(0.002f, 0.1f)(rng);
    const int32_t z = t == DType::kU8 ? Uniform(rng, 0, 255) : Uniform(rng, -128, 127);
    // Sizes off the 16-lane grid too; large ones take the threaded split.
    const Shape shape = {1, Uniform(rng, 1, 3), Uniform(rng, 1, 150), Uniform(rng, 1, 150)};
    Tensor x(DType::kF32, shape);
    std::normal_distribution<float> g(0.f, 3.f);
    for (int64_t i = 0; i < x.numel(); ++i) {
      float v = g(rng);
      switch (i % 11) {
        case 0:
          v = (std::round(v / s) + 0.5f) * s;
          break;  // ties (after the f32 division)
        case 1:
          v = std::numeric_limits<float>::quiet_NaN();
          break;
        case 2:
          v = (i & 1 ? 1 : -1) * std::numeric_limits<float>::infinity();
          break;
        case 3:
          v *= 1e6f;
          break;
        default:
          break;
      }
      x.data<float>()[i] = v;
    }
    ir::Graph g2;
    ir::Value* xv = g2.AddInput("x", DType::kF32, shape);
    ir::Value* sv = g2.AddConstant("s", Tensor::FromVector<float>({}, {s}));
    Tensor zt(t, {});
    if (t == DType::kU8)
      zt.data<uint8_t>()[0] = static_cast<uint8_t>(z);
    else
      zt.data<int8_t>()[0] = static_cast<int8_t>(z);
    ir::Value* zv = g2.AddConstant("z", zt);
    ir::Value* y = g2.AddValue("y");
    g2.AddNode("QuantizeLinear", {xv, sv, zv}, {y}, "q");
    g2.outputs.push_back(y);
    ExpectFastEqualsReference(
        g2, {x}, impl, 1 + it % 2,
        fmt::format("QuantizeLinear case {} {} {}", it, DTypeName(t), ShapeToString(shape)));
  }
}

}  // namespace
}  // namespace wbs

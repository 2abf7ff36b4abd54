// Shared pieces of the AIE compiler + simulator tests: a float graph made
// block sparse and quantized for the compiler, and the bit-exact check of a
// compiled program's simulation against the CPU int8 runtime.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "aie/passes/compiler.h"
#include "ir/op_schema.h"
#include "quant/ptq.h"
#include "runtime/session.h"
#include "sim/simulator.h"
#include "sparse/sparsify.h"

namespace wbs::aie {

// True in sanitizer builds (GCC and Clang define __SANITIZE_ADDRESS__ /
// have the feature with -fsanitize=address). There the compiler and the
// simulator run ~10x slower, so the tests that repeat the same compile +
// simulate over many targets or options simulate a stated subset (each
// target or option still compiled and checked); the release tier runs all.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

// Zeroes `sparsity` of g's 8x8 blocks (L2 scores; none when 0) and quantizes
// it with PTQ calibrated on one standard-normal batch-1 input drawn by
// Engine(seed); the result has batch 1 and static shapes.
template <typename Engine>
std::unique_ptr<ir::Graph> QuantizeForAie(ir::Graph& g, double sparsity, uint64_t seed) {
  if (sparsity > 0) {
    sparse::SparsifyOptions so;
    so.sparsity = sparsity;
    so.score = sparse::Score::kL2;
    EXPECT_TRUE(sparse::Sparsify(g, so).ok());
  }
  auto prepared = quant::PrepareFloatGraph(g);
  EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
  if (!prepared.ok()) return nullptr;
  Shape shape = (*prepared)->inputs.at(0)->shape;
  shape[0] = 1;
  Tensor cal(DType::kF32, shape);
  Engine rng(static_cast<typename Engine::result_type>(seed));
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t i = 0; i < cal.numel(); ++i) cal.data<float>()[i] = nd(rng);
  quant::PtqOptions po;
  po.reference_backend = true;  // scales independent of the fast kernels (goldens)
  auto c = quant::Calibrate(**prepared, {cal}, po);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  if (!c.ok()) return nullptr;
  quant::PtqReport rep;
  auto q = quant::BuildQuantizedGraph(**prepared, *c, po, &rep);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  if (!q.ok()) return nullptr;
  for (ir::Value* v : (*q)->inputs)
    if (v->has_shape && !v->shape.empty() && v->shape[0] < 0) v->shape[0] = 1;
  EXPECT_TRUE(ir::InferShapes(**q).ok());
  return std::move(*q);
}

// Simulates s's program on a standard-normal input drawn by Engine(seed),
// quantized as the graph's QuantizeLinear does; the s32 logits read back
// from DDR must equal the CPU int8 runtime's on g bit for bit. `what` names
// the case in failure messages.
template <typename Engine>
void ExpectSimBitExact(const CompileState& s, const ir::Graph& g, uint64_t seed,
                       const std::string& what = "") {
  const DdrSymbol* in = nullptr;
  const DdrSymbol* out = nullptr;
  for (const DdrSymbol& y : s.program.symbols) {
    if (y.kind == DdrSymbol::Kind::kInput) in = &y;
    if (y.kind == DdrSymbol::Kind::kOutput) out = &y;
  }
  ASSERT_TRUE(in && out) << what;
  ASSERT_EQ(out->type, OutType::kS32) << what;
  Tensor x(DType::kF32, Shape(in->shape.begin(), in->shape.end()));
  Engine rng(static_cast<typename Engine::result_type>(seed));
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint8_t> qx(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    x.data<float>()[i] = nd(rng);
    const float q =
        std::nearbyint(x.data<float>()[i] / in->scale) + static_cast<float>(in->zero_point);
    qx[static_cast<size_t>(i)] = static_cast<uint8_t>(std::min(255.f, std::max(0.f, q)));
  }
  auto sim = sim::Simulator::Create(s.program, s.target);
  ASSERT_TRUE(sim.ok()) << what << ": " << sim.status().ToString();
  ASSERT_TRUE(sim->SetInput(in->name, qx).ok()) << what;
  const Status rs = sim->Run();
  ASSERT_TRUE(rs.ok()) << what << ": " << rs.ToString();
  auto bytes = sim->ReadSymbol(out->name);
  ASSERT_TRUE(bytes.ok()) << what << ": " << bytes.status().ToString();
  runtime::SessionOptions so;
  so.num_threads = 1;
  auto session = runtime::Session::Create(g, so);
  ASSERT_TRUE(session.ok()) << what << ": " << session.status().ToString();
  auto ref = (*session)->Run({x});
  ASSERT_TRUE(ref.ok()) << what << ": " << ref.status().ToString();
  const Tensor& r = ref->at(0);
  ASSERT_EQ(r.numel() * 4, static_cast<int64_t>(bytes->size())) << what;
  int64_t diff = 0;
  for (int64_t i = 0; i < r.numel(); ++i) {
    int32_t acc;
    std::memcpy(&acc, bytes->data() + 4 * i, 4);
    const float v = static_cast<float>(acc) * out->scales.at(static_cast<size_t>(i));
    if (std::memcmp(&v, &r.data<float>()[i], 4) != 0) ++diff;
  }
  EXPECT_EQ(diff, 0) << what;
  // The simulator times with the compiler's rule: cycles = estimate.
  EXPECT_NEAR(static_cast<double>(sim->stats().total_cycles), s.total_s * s.target.clock_ghz * 1e9,
              1.0)
      << what;
}

}  // namespace wbs::aie

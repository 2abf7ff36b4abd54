// Helpers for the oneDNN fast-path tests (ops_dnnl_test.cc,
// ops_dnnl_matmul_test.cc): one-node graphs with constant or run-time
// operands, fast-vs-reference comparison and random fused activations.
//
// Random cases are reproducible: the seed is printed and WBS_TEST_SEED=<n>
// replays it.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "kernels/ref/activation.h"
#include "runtime/operator.h"

namespace wbs::dnnl_test {

using runtime::Backend;
using Attrs = std::map<std::string, ir::Attribute>;
using Rng = std::mt19937;

inline constexpr double kRelTol = 1e-4;

inline uint32_t TestSeed() {
  static const uint32_t seed = [] {
    const char* env = std::getenv("WBS_TEST_SEED");
    const uint32_t s =
        env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : std::random_device{}();
    std::printf("ops_dnnl_test: seed %u (replay with WBS_TEST_SEED=%u)\n", s, s);
    return s;
  }();
  return seed;
}

inline int64_t Uniform(Rng& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
inline float UniformF(Rng& rng, float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}
inline bool Chance(Rng& rng, double p) { return std::bernoulli_distribution(p)(rng); }

inline Tensor RandomTensor(Shape shape, Rng& rng) {
  Tensor t(DType::kF32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = UniformF(rng, -1.0f, 1.0f);
  return t;
}

// One operand of a test node: a run-time input (optionally with an unknown
// batch dim at creation) or a constant initializer.
struct Operand {
  Tensor t;
  bool constant = false;
  bool dynamic_batch = false;
};

// A one-node graph with its operator creation arguments.
struct Prepared {
  std::unique_ptr<ir::Graph> graph;
  ir::Node* node = nullptr;
  runtime::OpCreateArgs args;
  Shape out_shape;
};

inline Result<Prepared> Prepare(const std::string& op, const std::vector<Operand>& operands,
                                const Attrs& attrs) {
  Prepared p;
  p.graph = std::make_unique<ir::Graph>();
  ir::Graph& g = *p.graph;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < operands.size(); ++i) {
    const Operand& o = operands[i];
    const std::string name = "in" + std::to_string(i);
    if (!o.t.defined()) {
      ins.push_back(nullptr);
    } else if (o.constant) {
      ins.push_back(g.AddConstant(name, o.t));
    } else {
      Shape s = o.t.shape();
      if (o.dynamic_batch) s[0] = -1;
      ins.push_back(g.AddInput(name, o.t.dtype(), s));
    }
  }
  p.node = g.AddNode(op, ins, 1, "n0");
  p.node->attrs = attrs;
  g.outputs.push_back(p.node->outputs[0]);
  WBS_RETURN_IF_ERROR(ir::InferShapes(g));
  p.args.node = p.node;
  for (ir::Value* v : ins) p.args.inputs.push_back(ir::ValueInfo::FromValue(v));
  p.args.outputs.push_back(ir::ValueInfo::FromValue(p.node->outputs[0]));
  // The run-time output shape, from the concrete operands.
  std::vector<ir::ValueInfo> concrete, out;
  for (const Operand& o : operands) concrete.push_back(ir::ValueInfo::FromTensor(&o.t));
  WBS_RETURN_IF_ERROR(ir::InferNode(*p.node, concrete, out));
  p.out_shape = out[0].shape;
  return p;
}

inline Result<std::unique_ptr<runtime::Operator>> CreateOp(const Prepared& p, Backend backend) {
  runtime::OpCreateArgs args = p.args;
  args.backend = backend;
  return runtime::CreateOperator(args);
}

inline Result<Tensor> RunOp(runtime::Operator& op, const std::vector<Operand>& operands,
                            const Shape& out_shape, int threads = 1) {
  std::vector<const Tensor*> ins;
  for (const Operand& o : operands) ins.push_back(o.t.defined() ? &o.t : nullptr);
  Tensor y(DType::kF32, out_shape);
  runtime::ExecContext ctx;
  ctx.num_threads = threads;
  WBS_RETURN_IF_ERROR(op.Run(ins, {&y}, ctx));
  return y;
}

// max_i |a_i - b_i| / max(1, |b_i|).
inline double MaxRelError(const Tensor& a, const Tensor& b) {
  double worst = 0.0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    const double x = a.data<float>()[i], r = b.data<float>()[i];
    worst = std::max(worst, std::abs(x - r) / std::max(1.0, std::abs(r)));
  }
  return worst;
}

// oneDNN, or a kernel of ours the oneDNN operator runs instead ("wbs:...",
// e.g. the plain-input max pool of kernels/x86/plain_max_pool.h).
inline bool IsFast(const runtime::Operator& op) {
  return op.impl_name().rfind("onednn", 0) == 0 || op.impl_name().rfind("wbs:", 0) == 0;
}

// Creates the fast and the reference operator for the same node, expects the
// fast one to be oneDNN (unless `may_decline`), runs both and compares.
inline void ExpectFastMatchesReference(const std::string& op_type,
                                       const std::vector<Operand>& operands, const Attrs& attrs,
                                       const std::string& what, bool may_decline = false,
                                       int threads = 1) {
  SCOPED_TRACE(fmt::format("seed {}: {} {}", TestSeed(), op_type, what));
  auto prep = Prepare(op_type, operands, attrs);
  ASSERT_TRUE(prep.ok()) << prep.status().ToString();
  auto fast = CreateOp(*prep, Backend::kFast);
  auto ref = CreateOp(*prep, Backend::kReference);
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  if (!may_decline) {
    EXPECT_TRUE(IsFast(**fast)) << (*fast)->impl_name();
  }
  auto yf = RunOp(**fast, operands, prep->out_shape, threads);
  auto yr = RunOp(**ref, operands, prep->out_shape);
  ASSERT_TRUE(yf.ok()) << yf.status().ToString();
  ASSERT_TRUE(yr.ok()) << yr.status().ToString();
  EXPECT_LE(MaxRelError(*yf, *yr), kRelTol) << "impl " << (*fast)->impl_name();
}

// A random fused activation (every kind, by `index`) as node attributes.
inline std::string AddActivation(int index, Rng& rng, Attrs* attrs) {
  using kernels::ref::ActivationKind;
  const auto kind = static_cast<ActivationKind>(index % static_cast<int>(ActivationKind::kCount));
  if (kind == ActivationKind::kNone) return "none";
  const std::string name = kernels::ref::ActivationName(kind);
  (*attrs)["wbs.activation"] = name;
  std::string params;
  if (kind == ActivationKind::kLeakyRelu || kind == ActivationKind::kHardSigmoid) {
    const float a = UniformF(rng, 0.05f, 0.4f);
    (*attrs)["wbs.activation_alpha"] = a;
    params += fmt::format(" alpha {}", a);
  }
  if (kind == ActivationKind::kHardSigmoid) {
    const float b = UniformF(rng, 0.3f, 0.7f);
    (*attrs)["wbs.activation_beta"] = b;
    params += fmt::format(" beta {}", b);
  }
  if (kind == ActivationKind::kClip) {
    // Either bound may be absent (then +-inf).
    if (Chance(rng, 0.8)) (*attrs)["wbs.activation_alpha"] = UniformF(rng, -1.0f, 0.0f);
    if (Chance(rng, 0.8)) (*attrs)["wbs.activation_beta"] = UniformF(rng, 0.0f, 1.0f);
  }
  return name + params;
}

}  // namespace wbs::dnnl_test

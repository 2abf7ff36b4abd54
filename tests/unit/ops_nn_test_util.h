// Helpers for the NN operator tests: run one node through its reference
// operator, random tensors, and an N-d index odometer for the tests' own
// direct-formula expectations (written independently of kernels/ref/).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "runtime/operator.h"

namespace wbs::nn_test {

using Attrs = std::map<std::string, ir::Attribute>;

struct RunOptions {
  int num_outputs = 1;
  int64_t opset = 17;
  int num_threads = 1;
  runtime::Backend backend = runtime::Backend::kReference;
  std::string name = "n0";
};

// Builds a one-node graph (undefined tensors are omitted optional inputs),
// infers shapes, creates the operator and runs it.
inline Result<std::vector<Tensor>> RunNode(const std::string& op, const std::vector<Tensor>& inputs,
                                           const Attrs& attrs = {}, const RunOptions& o = {}) {
  ir::Graph g;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      ins.push_back(nullptr);
      continue;
    }
    ins.push_back(g.AddInput("in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape()));
  }
  ir::Node* n = g.AddNode(op, ins, o.num_outputs, o.name);
  n->attrs = attrs;
  n->opset = o.opset;
  std::vector<ir::ValueInfo> in_infos;
  for (const Tensor& t : inputs) in_infos.push_back(ir::ValueInfo::FromTensor(&t));
  std::vector<ir::ValueInfo> out_infos;
  WBS_RETURN_IF_ERROR(ir::InferNode(*n, in_infos, out_infos));
  runtime::OpCreateArgs args;
  args.node = n;
  args.inputs = in_infos;
  for (auto& i : args.inputs) i.value = nullptr;  // runtime inputs, not constants
  args.outputs = out_infos;
  args.backend = o.backend;
  WBS_ASSIGN_OR_RETURN(auto oper, runtime::CreateOperator(args));
  std::vector<Tensor> outs;
  std::vector<Tensor*> out_ptrs;
  outs.reserve(out_infos.size());
  for (auto& info : out_infos) {
    if (!info.has_shape) return Internal("output shape unknown");
    outs.emplace_back(info.dtype, info.shape);
  }
  for (auto& t : outs) out_ptrs.push_back(&t);
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  runtime::ExecContext ctx;
  ctx.num_threads = o.num_threads;
  WBS_RETURN_IF_ERROR(oper->Run(in_ptrs, out_ptrs, ctx));
  return outs;
}

// Shape inference only (for error tests of the shape rules).
inline Status InferOnly(const std::string& op, const std::vector<Tensor>& inputs,
                        const Attrs& attrs = {}, int num_outputs = 1, int64_t opset = 17) {
  ir::Graph g;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < inputs.size(); ++i)
    ins.push_back(inputs[i].defined()
                      ? g.AddInput("in" + std::to_string(i), inputs[i].dtype(), inputs[i].shape())
                      : nullptr);
  ir::Node* n = g.AddNode(op, ins, num_outputs, "bad_node");
  n->attrs = attrs;
  n->opset = opset;
  std::vector<ir::ValueInfo> in_infos, out_infos;
  for (const Tensor& t : inputs) in_infos.push_back(ir::ValueInfo::FromTensor(&t));
  return ir::InferNode(*n, in_infos, out_infos);
}

template <typename T = float>
Tensor Random(Shape shape, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(NumElements(shape)));
  for (auto& e : v) e = static_cast<T>(dist(rng));
  return Tensor::FromVector<T>(std::move(shape), v);
}

// 0, 1, 2, ... as floats.
inline Tensor Iota(Shape shape) {
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::FromVector<float>(std::move(shape), v);
}

// Visits every multi-index of `dims` in row-major order; f(const std::vector<int64_t>&).
template <typename F>
void ForEachIndex(const std::vector<int64_t>& dims, F&& f) {
  for (int64_t d : dims)
    if (d <= 0) return;
  std::vector<int64_t> idx(dims.size(), 0);
  while (true) {
    f(idx);
    int i = static_cast<int>(dims.size()) - 1;
    while (i >= 0 && ++idx[i] == dims[i]) idx[i--] = 0;
    if (i < 0) return;
  }
}

// Row-major flat offset of `idx` in `dims`.
inline int64_t Offset(const std::vector<int64_t>& dims, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  for (size_t i = 0; i < dims.size(); ++i) off = off * dims[i] + idx[i];
  return off;
}

// Elementwise |a - b| <= atol + rtol * |b|, reporting the first mismatch.
inline ::testing::AssertionResult AllClose(const Tensor& a, const std::vector<double>& b,
                                           double rtol = 1e-4, double atol = 1e-5) {
  const std::vector<double> av = a.ToVector<double>();
  if (av.size() != b.size())
    return ::testing::AssertionFailure() << "size " << av.size() << " vs " << b.size();
  for (size_t i = 0; i < av.size(); ++i) {
    if (!(std::abs(av[i] - b[i]) <= atol + rtol * std::abs(b[i]))) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << av[i] << ", expected " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult AllClose(const Tensor& a, const Tensor& b, double rtol = 1e-4,
                                           double atol = 1e-5) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure()
           << "shape " << ShapeToString(a.shape()) << " vs " << ShapeToString(b.shape());
  return AllClose(a, b.ToVector<double>(), rtol, atol);
}

// Asserts a non-OK status whose message contains every fragment.
inline ::testing::AssertionResult FailsWith(const Status& st, StatusCode code,
                                            const std::vector<std::string>& fragments) {
  if (st.ok()) return ::testing::AssertionFailure() << "expected an error, got OK";
  if (st.code() != code)
    return ::testing::AssertionFailure() << "wrong code: " << st.ToString();
  for (const auto& f : fragments) {
    if (st.message().find(f) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << f << "' not in: " << st.message();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace wbs::nn_test

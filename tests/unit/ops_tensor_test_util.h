// Helpers for the elementwise/tensor operator tests: run one node through
// its shape rule and reference operator, tensor builders and comparisons.
//
// RunNode runs every case twice: once with the input contents known when
// the operator is created (as constant folding does) and once with only
// dtypes and shapes known, re-inferring at run time (as the session does
// for data-dependent shapes). Both must succeed or fail together and give
// identical outputs, so each test also checks the static and the dynamic
// shape paths agree.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "runtime/operator.h"

namespace wbs::tensor_test {

using Attrs = std::map<std::string, ir::Attribute>;

struct Opts {
  int num_outputs = 1;
  int64_t opset = 17;
  std::string name = "n0";
};

inline Result<std::vector<Tensor>> RunNodeOnce(const std::string& op,
                                               const std::vector<Tensor>& inputs,
                                               const Attrs& attrs, const Opts& o,
                                               bool contents_known) {
  ir::Graph g;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    if (!inputs[i].defined())
      ins.push_back(nullptr);
    else if (contents_known)
      ins.push_back(g.AddConstant(name, inputs[i]));
    else
      ins.push_back(g.AddInput(name, inputs[i].dtype(), inputs[i].shape()));
  }
  ir::Node* n = g.AddNode(op, ins, o.num_outputs, o.name);
  n->attrs = attrs;
  n->opset = o.opset;
  std::vector<ir::ValueInfo> infos, out_infos;
  for (ir::Value* v : ins) infos.push_back(ir::ValueInfo::FromValue(v));
  WBS_RETURN_IF_ERROR(ir::InferNode(*n, infos, out_infos));
  runtime::OpCreateArgs args;
  args.node = n;
  args.inputs = infos;
  args.outputs = out_infos;
  args.backend = runtime::Backend::kReference;
  WBS_ASSIGN_OR_RETURN(auto oper, runtime::CreateOperator(args));
  // Like the session: shapes unknown at creation are inferred from the
  // actual tensors.
  std::vector<ir::ValueInfo> run_infos, run_out_infos;
  for (const Tensor& t : inputs) run_infos.push_back(ir::ValueInfo::FromTensor(&t));
  WBS_RETURN_IF_ERROR(ir::InferNode(*n, run_infos, run_out_infos));
  std::vector<Tensor> outs;
  for (size_t i = 0; i < out_infos.size(); ++i) {
    const ir::ValueInfo& info = out_infos[i].has_shape ? out_infos[i] : run_out_infos[i];
    if (!info.has_shape) return Internal("output {} shape unknown at run time", i);
    outs.emplace_back(info.dtype, info.shape);
  }
  std::vector<Tensor*> out_ptrs;
  for (Tensor& t : outs) out_ptrs.push_back(&t);
  std::vector<const Tensor*> in_ptrs;
  for (const Tensor& t : inputs) in_ptrs.push_back(t.defined() ? &t : nullptr);
  runtime::ExecContext ctx;
  WBS_RETURN_IF_ERROR(oper->Run(in_ptrs, out_ptrs, ctx));
  return outs;
}

// Undefined tensors in `inputs` are omitted optional inputs.
inline Result<std::vector<Tensor>> RunNode(const std::string& op, const std::vector<Tensor>& inputs,
                                           const Attrs& attrs = {}, const Opts& o = {}) {
  Result<std::vector<Tensor>> known = RunNodeOnce(op, inputs, attrs, o, true);
  Result<std::vector<Tensor>> unknown = RunNodeOnce(op, inputs, attrs, o, false);
  if (known.ok() != unknown.ok()) {
    return Internal("with contents known: {}; unknown: {}", known.status().ToString(),
                    unknown.status().ToString());
  }
  if (!known.ok()) return known;
  for (size_t i = 0; i < known->size(); ++i) {
    if (!(*known)[i].Identical((*unknown)[i])) {
      return Internal("output {} differs: {} with contents known, {} without", i,
                      (*known)[i].Describe(), (*unknown)[i].Describe());
    }
  }
  return known;
}

// Runs and returns output 0, failing the test on error.
inline Tensor Run1(const std::string& op, const std::vector<Tensor>& inputs,
                   const Attrs& attrs = {}, const Opts& o = {}) {
  Result<std::vector<Tensor>> r = RunNode(op, inputs, attrs, o);
  EXPECT_TRUE(r.ok()) << op << ": " << r.status().ToString();
  if (!r.ok()) return Tensor();
  return (*r)[0];
}

template <typename T>
Tensor T_(Shape shape, std::vector<T> v) {
  return Tensor::FromVector<T>(std::move(shape), v);
}
inline Tensor F32(Shape shape, std::vector<float> v) {
  return T_<float>(std::move(shape), std::move(v));
}
inline Tensor I64(Shape shape, std::vector<int64_t> v) {
  return T_<int64_t>(std::move(shape), std::move(v));
}
inline Tensor I32(Shape shape, std::vector<int32_t> v) {
  return T_<int32_t>(std::move(shape), std::move(v));
}
inline Tensor Bool(Shape shape, std::vector<bool> v) {
  Tensor t(DType::kBool, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}
inline Tensor Ints1D(std::vector<int64_t> v) { return I64({static_cast<int64_t>(v.size())}, v); }

// 0, 1, 2, ... converted to T.
template <typename T = float>
Tensor Iota(Shape shape, double start = 0.0, double step = 1.0) {
  std::vector<T> v(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<T>(start + step * static_cast<double>(i));
  return Tensor::FromVector<T>(std::move(shape), v);
}

// Same dtype and shape, and every element within atol + rtol * |want|
// (NaN matches NaN).
inline ::testing::AssertionResult Near(const Tensor& got, const Tensor& want, double atol = 0.0,
                                       double rtol = 0.0) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "got " << got.Describe() << ", want " << want.Describe();
  }
  const std::vector<double> g = got.ToVector<double>(), w = want.ToVector<double>();
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(g[i])) continue;
    if (g[i] == w[i]) continue;
    if (!(std::abs(g[i] - w[i]) <= atol + rtol * std::abs(w[i]))) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << g[i] << ", want " << w[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// The status is `code` and its message contains every fragment.
inline ::testing::AssertionResult IsError(const Status& st, StatusCode code,
                                          const std::vector<std::string>& fragments = {}) {
  if (st.code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << StatusCodeName(code) << ", got " << st.ToString();
  }
  for (const std::string& f : fragments) {
    if (st.message().find(f) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message '" << st.message() << "' lacks '" << f << "'";
  }
  if (st.message().find('\n') != std::string::npos)
    return ::testing::AssertionFailure() << "message is not one line: " << st.message();
  return ::testing::AssertionSuccess();
}

// Visits every multi-index of `dims` in row-major order.
template <typename F>
void ForEachIndex(const Shape& dims, F&& f) {
  for (int64_t d : dims)
    if (d <= 0) return;
  std::vector<int64_t> idx(dims.size(), 0);
  for (;;) {
    f(idx);
    int i = static_cast<int>(dims.size()) - 1;
    while (i >= 0 && ++idx[i] == dims[i]) idx[i--] = 0;
    if (i < 0) return;
  }
}

// Row-major offset of idx in shape, broadcasting: idx is right-aligned to
// out rank and dims of size 1 read index 0.
inline int64_t BroadcastOffset(const Shape& shape, const std::vector<int64_t>& out_idx) {
  int64_t off = 0;
  const size_t skip = out_idx.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d)
    off = off * shape[d] + (shape[d] == 1 ? 0 : out_idx[d + skip]);
  return off;
}

}  // namespace wbs::tensor_test

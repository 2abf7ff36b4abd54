// Shared machinery of the reference operators for the elementwise and
// tensor ops (runtime/ops_tensor*.cc). Not a public header.
//
// Design: every one of these ops is a thin operator around a kernel in
// kernels/ref/. Its factory validates attributes and dtypes once and returns
// a run function. Before each run, RefOperator re-runs the node's shape rule
// on the actual inputs and checks the outputs the session allocated against
// it: the shape rule is the single source of truth for output shapes and
// data-dependent parameters (Resolve* in ir/schemas_tensor.h), so a run
// function can index its outputs without re-deriving them, and a bad input
// at run time becomes an InvalidArgument instead of an out-of-bounds write.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"
#include "runtime/operator.h"

namespace wbs::runtime::tensor_ops {

struct RunArgs {
  const ir::Node& node;                        // attributes, name, opset
  const std::vector<const Tensor*>& in;        // nullptr = omitted optional input
  const std::vector<ir::ValueInfo>& in_infos;  // the inputs as ValueInfo (with contents)
  const std::vector<Tensor*>& out;             // nullptr = output not wanted
};
using RunFn = std::function<Status(const RunArgs&)>;
// Validates the node (attributes, dtypes from args.inputs) and returns its
// run function, or an error naming the node.
using MakeFn = std::function<Result<RunFn>(const OpCreateArgs&)>;

// Registers `make` as the reference implementation of op_type.
void RegisterRef(const std::string& op_type, MakeFn make);

// Registration groups (one file each).
void RegisterElementwiseOperators();  // runtime/ops_tensor_elementwise.cc
void RegisterShapeOperators();        // runtime/ops_tensor_shape.cc
void RegisterIndexOperators();        // runtime/ops_tensor_index.cc

// Calls f.template operator()<T>() for the ten numeric C++ types (not bool);
// returns false for any other dtype.
template <typename F>
bool VisitNumeric(DType t, F&& f) {
  if (t == DType::kBool) return false;
  bool ok = false;
  VisitDType(t, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      f.template operator()<T>();
      ok = true;
    }
  });
  return ok;
}

// Same for float and double only.
template <typename F>
bool VisitFloat(DType t, F&& f) {
  if (t == DType::kF32) {
    f.template operator()<float>();
    return true;
  }
  if (t == DType::kF64) {
    f.template operator()<double>();
    return true;
  }
  return false;
}

// dtype of input i at creation (kUndefined if absent).
inline DType InputType(const OpCreateArgs& a, size_t i) {
  return i < a.inputs.size() ? a.inputs[i].dtype : DType::kUndefined;
}

// Unimplemented "<node>: no reference kernel for type <t>".
Status NoKernelFor(const ir::Node& node, DType t);

// Row-major strides of `in_shape` aligned to the right of `out_shape`, with 0
// on broadcast axes; for CopyStrided-based broadcasting.
std::vector<int64_t> BroadcastStrides(const Shape& in_shape, const Shape& out_shape);

// Copies input bytes to the output when they are distinct buffers (the
// data-preserving ops: Identity, Reshape, Flatten, Squeeze, ...).
void CopyBytes(const Tensor& in, Tensor& out);

}  // namespace wbs::runtime::tensor_ops

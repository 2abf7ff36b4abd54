// Operators: the runtime's per-node executable objects.
//
// An operator owns attribute validation, weight packing, threading and
// scratch memory; it calls microkernels in kernels/ (pure functions over raw
// pointers). Each op type registers a reference implementation (naive,
// obviously-correct, kernels/ref/) and optionally a fast one (e.g. oneDNN).
// Outputs are allocated by the session from shape inference (ir/op_schema.h),
// so Run() only fills them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/layout.h"
#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"

namespace wbs::runtime {

enum class Backend {
  kReference,  // naive implementations only
  kFast,       // best available implementation (oneDNN, our kernels), else reference
};
const char* BackendName(Backend b);

struct ExecContext {
  int num_threads = 1;
};

class Operator {
 public:
  virtual ~Operator() = default;
  // `inputs[i]` is nullptr for an omitted optional input. `outputs` are
  // allocated with the inferred dtype and shape.
  virtual Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
                     const ExecContext& ctx) = 0;
  // Implementation name for logs and benchmarks, e.g. "ref", "onednn".
  virtual std::string impl_name() const = 0;

  // Layout negotiation (core/layout.h), once, before the first Run(); the
  // session (runtime/session.cc) visits operators in execution order:
  //  1. ProposeOutputLayouts(inputs): the layouts the inputs will arrive in
  //     (each one AcceptsInputLayout() allowed); returns, per output, the
  //     layout the operator writes without a final reorder.
  //  2. SetOutputLayouts(outputs): per output the proposed layout or kPlain
  //     (kPlain when a reader cannot take the proposal, or the tensor is a
  //     graph output). From then on Run() reads and writes those layouts.
  // The defaults speak plain only.
  virtual bool AcceptsInputLayout(size_t input, ActivationLayout layout) const {
    return layout == ActivationLayout::kPlain;
  }
  virtual std::vector<ActivationLayout> ProposeOutputLayouts(
      const std::vector<ActivationLayout>& inputs);
  virtual Status SetOutputLayouts(const std::vector<ActivationLayout>& outputs);

  // The input whose buffer output 0 may take over, or -1 (the default).
  // An operator that names one promises that Run() is correct when that
  // input and output 0 are the same memory: it reads each element of the
  // input only before writing the same element of the output, and nothing
  // else it has written. The session then shares them when the input's
  // last reader is this operator and both are arena tensors of the same
  // size and layout (runtime/session.cc "In-place outputs").
  virtual int InPlaceInput() const { return -1; }
};

struct OpCreateArgs {
  const ir::Node* node = nullptr;
  std::vector<ir::ValueInfo> inputs;   // constants (weights) have .value set
  std::vector<ir::ValueInfo> outputs;  // inferred dtype/shape (may be unknown)
  Backend backend = Backend::kFast;
};

using OperatorFactory = std::function<Result<std::unique_ptr<Operator>>(const OpCreateArgs&)>;

// Registers a factory for (op type, backend). A factory for kFast may return
// nullptr (not an error) to decline, e.g. an unsupported dtype; creation then
// falls back to the reference factory.
void RegisterOperator(const std::string& op_type, Backend backend, OperatorFactory factory);
Result<std::unique_ptr<Operator>> CreateOperator(const OpCreateArgs& args);
// The factory registered for (op type, backend), or an empty function; lets
// a registration group wrap an earlier one (ops_sparse.h).
OperatorFactory FindOperatorFactory(const std::string& op_type, Backend backend);
// A factory that tries `first` and, when it declines (returns no operator),
// `fallback` (e.g. the factory FindOperatorFactory returned before `first`
// was registered; may be empty).
OperatorFactory FirstOf(OperatorFactory first, OperatorFactory fallback);
// Op types that have a reference implementation.
std::vector<std::string> RegisteredOperators();

// Registration groups, one file each; called once by the registry.
void RegisterNnOperators();      // runtime/ops_nn.cc: conv, pool, gemm, norm, softmax
void RegisterTensorOperators();  // runtime/ops_tensor.cc: elementwise, shape, data movement
void RegisterDnnlOperators();    // runtime/ops_dnnl.cc: oneDNN fast paths
void RegisterQuantOperators();   // runtime/ops_quant.cc: Q/DQ and the integer ops
void RegisterSparseOperators();  // runtime/ops_sparse.cc: block-sparse, wraps the oneDNN ones

}  // namespace wbs::runtime

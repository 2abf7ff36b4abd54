#include "runtime/operator.h"

#include <map>
#include <mutex>

#include "runtime/ops_quant_fast.h"

namespace wbs::runtime {

const char* BackendName(Backend b) { return b == Backend::kReference ? "reference" : "fast"; }

std::vector<ActivationLayout> Operator::ProposeOutputLayouts(
    const std::vector<ActivationLayout>& inputs) {
  return {};  // the session reads a missing entry as kPlain
}

Status Operator::SetOutputLayouts(const std::vector<ActivationLayout>& outputs) {
  for (ActivationLayout l : outputs)
    if (l != ActivationLayout::kPlain)
      return Internal("{}: writes plain outputs only, {} requested", impl_name(),
                      ActivationLayoutName(l));
  return Status::Ok();
}

namespace {
using Key = std::pair<std::string, Backend>;
std::map<Key, OperatorFactory>& Registry() {
  static std::map<Key, OperatorFactory> registry;
  return registry;
}
void EnsureBuiltins() {
  static std::once_flag once;
  std::call_once(once, [] {
    RegisterNnOperators();
    RegisterTensorOperators();
    RegisterQuantOperators();
    RegisterDnnlOperators();
    RegisterSparseOperators();     // after oneDNN: it wraps those factories
    RegisterQuantFastOperators();  // runtime/ops_quant_fast.h
  });
}
}  // namespace

void RegisterOperator(const std::string& op_type, Backend backend, OperatorFactory factory) {
  Registry()[{op_type, backend}] = std::move(factory);
}

OperatorFactory FirstOf(OperatorFactory first, OperatorFactory fallback) {
  return [first = std::move(first), fallback = std::move(fallback)](
             const OpCreateArgs& args) -> Result<std::unique_ptr<Operator>> {
    WBS_ASSIGN_OR_RETURN(std::unique_ptr<Operator> op, first(args));
    if (op) return op;
    if (fallback) return fallback(args);
    return std::unique_ptr<Operator>();
  };
}

OperatorFactory FindOperatorFactory(const std::string& op_type, Backend backend) {
  auto it = Registry().find({op_type, backend});
  return it == Registry().end() ? OperatorFactory() : it->second;
}

Result<std::unique_ptr<Operator>> CreateOperator(const OpCreateArgs& args) {
  EnsureBuiltins();
  const std::string& op = args.node->op_type;
  if (args.backend == Backend::kFast) {
    auto it = Registry().find({op, Backend::kFast});
    if (it != Registry().end()) {
      WBS_ASSIGN_OR_RETURN(auto fast, it->second(args));
      if (fast) return fast;
    }
  }
  auto it = Registry().find({op, Backend::kReference});
  if (it == Registry().end())
    return Unimplemented("{}: op '{}' has no CPU implementation", args.node->Describe(), op);
  return it->second(args);
}

std::vector<std::string> RegisteredOperators() {
  EnsureBuiltins();
  std::vector<std::string> ops;
  for (auto& [k, v] : Registry())
    if (k.second == Backend::kReference) ops.push_back(k.first);
  return ops;
}

}  // namespace wbs::runtime

// Shape rules of the elementwise and tensor ops: registration and the
// helpers shared by ir/schemas_elementwise.cc and ir/schemas_tensor_*.cc.
#include "ir/schemas_tensor.h"

#include <algorithm>

namespace wbs::ir {

void RegisterTensorSchemas() {
  RegisterElementwiseSchemas();
  RegisterShapeSchemas();
  RegisterIndexSchemas();
}

bool IsStatic(const ValueInfo& v) {
  return v.has_shape &&
         std::all_of(v.shape.begin(), v.shape.end(), [](int64_t d) { return d >= 0; });
}

bool IsPresent(const std::vector<ValueInfo>& inputs, size_t i) {
  return i < inputs.size() && inputs[i].present;
}

bool HasValue(const std::vector<ValueInfo>& inputs, size_t i) {
  return IsPresent(inputs, i) && inputs[i].value != nullptr;
}

Result<std::vector<int64_t>> ReadInts(const Node& node, const ValueInfo& v, const char* what) {
  if (!v.value) return Internal("{}: contents of input '{}' are not known", node.Describe(), what);
  if (v.value->dtype() != DType::kI64 && v.value->dtype() != DType::kI32) {
    return InvalidArgument("{}: input '{}' must be int64 or int32, got {}", node.Describe(), what,
                           v.value->Describe());
  }
  return v.value->ToVector<int64_t>();
}

Result<std::vector<double>> ReadDoubles(const Node& node, const ValueInfo& v, const char* what) {
  if (!v.value) return Internal("{}: contents of input '{}' are not known", node.Describe(), what);
  const DType t = v.value->dtype();
  if (t == DType::kBool || !VisitDType(t, []<typename>() {})) {
    return Unimplemented("{}: input '{}' of type {} is not supported", node.Describe(), what,
                         v.value->Describe());
  }
  return v.value->ToVector<double>();
}

Result<std::vector<int>> NormalizeAxes(const Node& node, const std::vector<int64_t>& axes,
                                       int rank) {
  std::vector<int> out;
  std::vector<bool> seen(static_cast<size_t>(std::max(rank, 0)), false);
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) {
      return InvalidArgument("{}: axis {} out of range for rank {}", node.Describe(), a, rank);
    }
    const int n = static_cast<int>(a < 0 ? a + rank : a);
    if (seen[n]) return InvalidArgument("{}: axis {} repeated", node.Describe(), a);
    seen[n] = true;
    out.push_back(n);
  }
  return out;
}

void SetUnknownShape(std::vector<ValueInfo>& outputs, size_t i, DType dtype) {
  if (i >= outputs.size()) return;
  outputs[i].dtype = dtype;
  outputs[i].has_shape = false;
  outputs[i].shape.clear();
}

void SetShape(std::vector<ValueInfo>& outputs, size_t i, DType dtype, Shape shape) {
  if (i >= outputs.size()) return;
  outputs[i].dtype = dtype;
  outputs[i].has_shape = true;
  outputs[i].shape = std::move(shape);
}

}  // namespace wbs::ir

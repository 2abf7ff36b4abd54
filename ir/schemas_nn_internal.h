// Shared pieces of the NN shape rules (ir/schemas_nn*.cc); not a public API.
#pragma once

#include <vector>

#include "core/status.h"
#include "ir/op_schema.h"

namespace wbs::ir::nn_schemas {

// Registers the rules in ir/schemas_nn_math.cc (Gemm, MatMul,
// BatchNormalization, Softmax, LogSoftmax, LRN).
void RegisterMathSchemas();

// The input at `i` if present, else nullptr.
inline const ValueInfo* OptionalInput(const std::vector<ValueInfo>& in, size_t i) {
  return i < in.size() && in[i].present ? &in[i] : nullptr;
}

// InvalidArgument naming the node unless `v` is a float dtype (or unknown).
Status CheckFloat(const Node& node, const ValueInfo& v, const char* what);
// InvalidArgument naming the node unless both dtypes are equal (or unknown).
Status CheckSameDType(const Node& node, const ValueInfo& a, const char* a_name,
                      const ValueInfo& b, const char* b_name);

}  // namespace wbs::ir::nn_schemas

// Fast int8 QConv / QGemm operators (runtime/ops_quant_fast.cc): int8
// block-sparse or oneDNN int8 (kExact), bit-exact with the reference
// operators of runtime/ops_quant.cc (docs/int8.md).
#pragma once

namespace wbs::runtime {

// Registers the kFast QConv / QGemm factories, wrapping any kFast factory
// registered before; called once by the registry (runtime/operator.cc).
void RegisterQuantFastOperators();

}  // namespace wbs::runtime

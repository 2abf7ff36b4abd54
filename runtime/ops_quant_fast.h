// Fast int8 operators, bit-exact with the reference operators of
// runtime/ops_quant.cc (docs/int8.md): QConv / QGemm (runtime/ops_quant_fast.cc:
// int8 block-sparse or oneDNN int8 kExact) and the elementwise ops and pools
// (runtime/ops_quant_fast_ew.cc).
#pragma once

namespace wbs::runtime {

// Registers the kFast QConv / QGemm factories, wrapping any kFast factory
// registered before; called once by the registry (runtime/operator.cc).
void RegisterQuantFastOperators();

// The kFast QAdd / QConcat / QMaxPool / QAveragePool / QGlobalAveragePool
// (runtime/ops_quant_fast_ew.cc); called by RegisterQuantFastOperators.
void RegisterQuantFastElementwiseOperators();

}  // namespace wbs::runtime

// Helpers shared by the NN operators (reference in ops_nn*.cc, fast paths in
// ops_dnnl.cc) so both backends read a node's attributes the same way.
#pragma once

#include "core/status.h"
#include "ir/graph.h"
#include "kernels/ref/activation.h"

namespace wbs::runtime {

// The fused activation of a Conv/ConvTranspose/Gemm/MatMul node from its
// "wbs.activation*" attributes (ir/graph.h); kNone when absent. Errors name
// the node.
Result<kernels::ref::Activation> FusedActivationOf(const ir::Node& node);

}  // namespace wbs::runtime

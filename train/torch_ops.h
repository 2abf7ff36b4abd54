// One IR node as a LibTorch computation (internal to train/; see
// train/module.h for the contract of the bridge).
//
// MakeTorchOp reads a node's attributes (and the values of constant inputs
// whose values decide the computation, e.g. Clip bounds) once, when the module
// is built, and returns a function of the node's input tensors. Every
// computation is an ATen op, so autograd differentiates it and it runs on
// whatever device its inputs live on.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace wbs::train::internal {

// inputs[i] is undefined for an omitted optional input. `training` selects
// batch statistics in BatchNormalization and active Dropout.
using TorchOp =
    std::function<std::vector<at::Tensor>(const std::vector<at::Tensor>& inputs, bool training)>;

// Unimplemented (naming the node) for an op or attribute value the bridge
// cannot express. `graph` (the node's) tells which outputs are read.
Result<TorchOp> MakeTorchOp(const ir::Graph& graph, const ir::Node& node);

// The op types MakeTorchOp knows (some attribute values may still be refused).
const std::vector<std::string>& SupportedOps();

// wbs Tensor <-> torch (deep copies). ToTorch: every numeric DType torch has
// (not the unsigned 16..64-bit ones); FromTorch: f32, f64, i64, i32, i8, u8,
// bool; the tensor is moved to the CPU and made contiguous first.
Result<at::Tensor> ToTorch(const Tensor& t, const at::Device& device);
Result<Tensor> FromTorch(const at::Tensor& t);

}  // namespace wbs::train::internal

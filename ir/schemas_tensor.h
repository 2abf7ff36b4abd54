// Shape rules of the elementwise and tensor ops, and the parameter
// resolution they share with the runtime operators.
//
// Several ops take their parameters from attributes in old opsets and from
// inputs in new ones (Slice, Pad, Squeeze, Unsqueeze, Split, Reduce*, Clip,
// Resize/Upsample). Each such op is resolved here once, from whichever form
// the node has, so the shape rule (ir/schemas_tensor*.cc) and the operator
// (runtime/ops_tensor*.cc) cannot disagree. Resolve* functions need the
// input shape and the contents of the parameter inputs (ValueInfo::value);
// a shape rule that lacks them leaves its output shape unknown and the
// runtime resolves again with the actual tensors. Errors are one-line
// InvalidArgument/Unimplemented messages naming the node and shapes.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"
#include "ir/op_schema.h"

namespace wbs::ir {

// Registration groups of RegisterTensorSchemas (one file each).
void RegisterElementwiseSchemas();  // ir/schemas_elementwise.cc
void RegisterShapeSchemas();        // ir/schemas_tensor_shape.cc
void RegisterIndexSchemas();        // ir/schemas_tensor_index.cc

// --- Helpers for shape rules -------------------------------------------------

// True when the shape is known and every dim is >= 0.
bool IsStatic(const ValueInfo& v);
// True when input i is present and its contents are known.
bool HasValue(const std::vector<ValueInfo>& inputs, size_t i);
bool IsPresent(const std::vector<ValueInfo>& inputs, size_t i);
// Contents of an integer (i32/i64) tensor as int64; `what` names the input
// in the error ("shape", "axes", ...).
Result<std::vector<int64_t>> ReadInts(const Node& node, const ValueInfo& v, const char* what);
// Contents of a float/double/integer tensor as double.
Result<std::vector<double>> ReadDoubles(const Node& node, const ValueInfo& v, const char* what);
// Normalises axes against `rank` (negative counts from the end); error on
// out-of-range or repeated axes.
Result<std::vector<int>> NormalizeAxes(const Node& node, const std::vector<int64_t>& axes,
                                       int rank);
// Marks output i as `dtype` with an unknown shape.
void SetUnknownShape(std::vector<ValueInfo>& outputs, size_t i, DType dtype);
void SetShape(std::vector<ValueInfo>& outputs, size_t i, DType dtype, Shape shape);

// --- Parameters shared with the runtime --------------------------------------

// Slice (attrs starts/ends/axes before opset 10, inputs 1..4 after), with
// starts/ends clamped per the spec. Full rank: axes not sliced get start 0,
// step 1.
struct SliceParams {
  std::vector<int64_t> starts, steps;
  Shape out_shape;
};
Result<SliceParams> ResolveSlice(const Node& node, const std::vector<ValueInfo>& inputs);

// Pad (attrs pads/value before opset 11, inputs pads/constant_value/axes
// after). begin/end are per axis and may be negative (crop).
struct PadParams {
  std::string mode;  // "constant", "reflect", "edge", "wrap"
  std::vector<int64_t> begin, end;
  Shape out_shape;
};
Result<PadParams> ResolvePad(const Node& node, const std::vector<ValueInfo>& inputs);

// Resize (opset 10: X, scales; 11+: X, roi, scales, sizes) and Upsample
// (scales attr in opset 7, input after). `scales` are the per-axis scales
// the coordinate transform uses (out/in where sizes were given).
struct ResizeParams {
  bool linear = false;
  std::string coordinate_mode;  // ONNX name
  std::string nearest_mode;     // ONNX name
  std::vector<double> scales;
  Shape out_shape;
};
Result<ResizeParams> ResolveResize(const Node& node, const std::vector<ValueInfo>& inputs);

// Reduce* (axes attr, or input 1 for ReduceSum 13+ and every Reduce op 18+;
// keepdims; noop_with_empty_axes). reduce_axis[d] is true for reduced axes.
struct ReduceParams {
  std::vector<bool> reduce_axis;
  Shape out_shape;
};
Result<ReduceParams> ResolveReduce(const Node& node, const std::vector<ValueInfo>& inputs);

// Squeeze/Unsqueeze axes (attr before opset 13, input 1 after), normalised;
// empty for Squeeze without axes.
Result<std::vector<int64_t>> ResolveSqueezeAxes(const Node& node,
                                                const std::vector<ValueInfo>& inputs);

// Split sizes along the axis (split attr before opset 13, input 1 after,
// num_outputs in 18; equal parts otherwise), one per output.
Result<std::vector<int64_t>> ResolveSplit(const Node& node, const std::vector<ValueInfo>& inputs,
                                          size_t num_outputs, int axis);

}  // namespace wbs::ir

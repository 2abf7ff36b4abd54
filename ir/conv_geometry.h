// Sliding-window geometry shared by Conv, ConvTranspose, MaxPool and
// AveragePool: the one place that turns ONNX attributes (kernel_shape,
// strides, dilations, pads, auto_pad, ceil_mode, output_padding,
// output_shape) into output dims and effective pads. Shape inference, the
// reference kernels and the oneDNN fast paths all use it, so they cannot
// disagree about where a window starts.
//
// Conventions (ONNX): for spatial dim i of a forward window op, output
// position o reads input positions o*stride - pad_begin + k*dilation for
// k in [0, kernel). For ConvTranspose, input position j writes output
// positions j*stride - pad_begin + k*dilation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::ir {

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };
const char* AutoPadName(AutoPad p);  // the ONNX spelling, e.g. "SAME_UPPER"

// The window attributes of one node, validated and normalised to one entry
// per spatial dim (defaults filled in).
struct WindowAttrs {
  AutoPad auto_pad = AutoPad::kNotSet;
  std::vector<int64_t> kernel;     // kernel_shape, or the weight's spatial dims
  std::vector<int64_t> strides;    // default 1
  std::vector<int64_t> dilations;  // default 1
  std::vector<int64_t> pads;       // ONNX layout [b0, b1, ..., e0, e1, ...]; default 0
  bool ceil_mode = false;          // pools only
  // ConvTranspose only.
  std::vector<int64_t> output_padding;  // default 0
  std::vector<int64_t> output_shape;    // spatial dims; empty when not given
};

// Reads the window attributes of `node` for `spatial_rank` spatial dims.
// `weight_kernel` holds the weight's spatial dims for Conv/ConvTranspose
// (kernel_shape, when present, must equal it) and is empty for pools (which
// require kernel_shape). Errors name the node and the offending attribute.
Result<WindowAttrs> ParseWindowAttrs(const Node& node, int spatial_rank,
                                     const std::vector<int64_t>& weight_kernel);

// Resolved geometry for one node and one input shape. Unknown input dims
// (< 0) give unknown output dims (-1) and zero pads for that dim.
struct WindowGeometry {
  std::vector<int64_t> input;      // spatial input dims
  std::vector<int64_t> output;     // spatial output dims
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pad_begin;  // effective leading pads (explicit or from auto_pad)
  // Effective trailing pads. Forward ops: the declared/auto_pad pad; it is
  // what count_include_pad counts. ConvTranspose: may be negative when
  // output_shape asks for more than the natural size (extra outputs are 0
  // plus bias).
  std::vector<int64_t> pad_end;
  // Forward ops with ceil_mode: implicit trailing padding beyond pad_end that
  // makes output[i] == (input + pad_begin + pad_end + ceil_extra_end -
  // DilatedKernel(i)) / stride + 1 hold exactly; never counted as padding.
  // Zero otherwise. A library that wants one trailing pad uses
  // pad_end + ceil_extra_end.
  std::vector<int64_t> ceil_extra_end;

  int rank() const { return static_cast<int>(input.size()); }
  int64_t DilatedKernel(int i) const { return (kernel[i] - 1) * dilations[i] + 1; }
};

// Geometry of a forward window op (Conv, MaxPool, AveragePool).
//   NOTSET: out = floor_or_ceil((in + pb + pe - dk) / s) + 1, where with
//           ceil_mode a last window that would start inside the trailing
//           padding is dropped (PyTorch and ONNX >= 1.16 rule).
//   SAME_UPPER / SAME_LOWER: out = ceil(in / s), total pad
//           max(0, (out - 1) * s + dk - in) split with the odd element at the
//           end (UPPER) or the beginning (LOWER).
//   VALID: no padding.
// Errors (naming the node) when a window does not fit: out < 1.
Result<WindowGeometry> ComputeWindowGeometry(const Node& node, const WindowAttrs& attrs,
                                             const std::vector<int64_t>& input_spatial);

// Geometry of ConvTranspose; `input_spatial` is the (small) input, `output`
// the (large) result.
//   natural = s * (in - 1) + output_padding + dk
//   output_shape given: out = output_shape, total pad = natural - out,
//           split with the odd element at the beginning for SAME_LOWER and
//           at the end otherwise; a negative total leaves pad_begin = 0.
//   SAME_UPPER / SAME_LOWER: out = in * s, total pad = natural - out, split
//           as above.
//   NOTSET / VALID: out = natural - pb - pe (VALID: pads 0).
Result<WindowGeometry> ComputeConvTransposeGeometry(const Node& node, const WindowAttrs& attrs,
                                                    const std::vector<int64_t>& input_spatial);

}  // namespace wbs::ir

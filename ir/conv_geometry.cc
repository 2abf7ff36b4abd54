#include "ir/conv_geometry.h"

#include <algorithm>

namespace wbs::ir {

const char* AutoPadName(AutoPad p) {
  switch (p) {
    case AutoPad::kNotSet: return "NOTSET";
    case AutoPad::kSameUpper: return "SAME_UPPER";
    case AutoPad::kSameLower: return "SAME_LOWER";
    case AutoPad::kValid: return "VALID";
  }
  return "?";
}

namespace {

std::string IntsToString(const std::vector<int64_t>& v) { return ShapeToString(v); }

// Reads an ints attribute of `expected` entries, each >= `min_value`, or
// fills `def` when absent.
Status ReadInts(const Node& node, const char* attr, size_t expected, int64_t def,
                int64_t min_value, std::vector<int64_t>* out) {
  if (!node.Has(attr)) {
    out->assign(expected, def);
    return Status::Ok();
  }
  *out = node.GetInts(attr);
  if (out->size() != expected) {
    return InvalidArgument("{}: {} {} has {} entries, expected {}", node.Describe(), attr,
                           IntsToString(*out), out->size(), expected);
  }
  for (int64_t v : *out) {
    if (v < min_value) {
      return InvalidArgument("{}: {} {} has an entry < {}", node.Describe(), attr,
                             IntsToString(*out), min_value);
    }
  }
  return Status::Ok();
}

// Splits `total` padding; the odd element goes to the end unless `lower`.
void SplitPad(int64_t total, bool lower, int64_t* begin, int64_t* end) {
  if (total < 0) {
    *begin = 0;
    *end = total;
    return;
  }
  *begin = lower ? total - total / 2 : total / 2;
  *end = total - *begin;
}

WindowGeometry StartGeometry(const WindowAttrs& a, const std::vector<int64_t>& input_spatial) {
  WindowGeometry g;
  const size_t n = input_spatial.size();
  g.input = input_spatial;
  g.output.assign(n, -1);
  g.kernel = a.kernel;
  g.strides = a.strides;
  g.dilations = a.dilations;
  g.pad_begin.assign(n, 0);
  g.pad_end.assign(n, 0);
  g.ceil_extra_end.assign(n, 0);
  return g;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

Result<WindowAttrs> ParseWindowAttrs(const Node& node, int spatial_rank,
                                     const std::vector<int64_t>& weight_kernel) {
  WindowAttrs a;
  const size_t n = static_cast<size_t>(spatial_rank);
  if (spatial_rank < 1) {
    return InvalidArgument("{}: needs at least one spatial dim, input has {}", node.Describe(),
                           spatial_rank);
  }
  const std::string pad = node.GetString("auto_pad", "NOTSET");
  if (pad == "NOTSET" || pad.empty()) a.auto_pad = AutoPad::kNotSet;
  else if (pad == "SAME_UPPER") a.auto_pad = AutoPad::kSameUpper;
  else if (pad == "SAME_LOWER") a.auto_pad = AutoPad::kSameLower;
  else if (pad == "VALID") a.auto_pad = AutoPad::kValid;
  else return InvalidArgument("{}: unknown auto_pad '{}'", node.Describe(), pad);

  if (node.Has("kernel_shape")) {
    WBS_RETURN_IF_ERROR(ReadInts(node, "kernel_shape", n, 1, 1, &a.kernel));
    if (!weight_kernel.empty() && weight_kernel != a.kernel) {
      return InvalidArgument("{}: kernel_shape {} does not match weight spatial dims {}",
                             node.Describe(), IntsToString(a.kernel),
                             IntsToString(weight_kernel));
    }
  } else if (!weight_kernel.empty()) {
    if (weight_kernel.size() != n) {
      return InvalidArgument("{}: weight has {} spatial dims, input has {}", node.Describe(),
                             weight_kernel.size(), n);
    }
    a.kernel = weight_kernel;
  } else {
    return InvalidArgument("{}: kernel_shape is required", node.Describe());
  }
  for (int64_t k : a.kernel) {
    // Unknown weight dims cannot size a window.
    if (k < 1)
      return InvalidArgument("{}: kernel {} has an entry < 1", node.Describe(),
                             IntsToString(a.kernel));
  }
  WBS_RETURN_IF_ERROR(ReadInts(node, "strides", n, 1, 1, &a.strides));
  WBS_RETURN_IF_ERROR(ReadInts(node, "dilations", n, 1, 1, &a.dilations));
  WBS_RETURN_IF_ERROR(ReadInts(node, "pads", 2 * n, 0, 0, &a.pads));
  const int64_t ceil_mode = node.GetInt("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1)
    return InvalidArgument("{}: ceil_mode must be 0 or 1, got {}", node.Describe(), ceil_mode);
  a.ceil_mode = ceil_mode == 1;
  WBS_RETURN_IF_ERROR(ReadInts(node, "output_padding", n, 0, 0, &a.output_padding));
  for (size_t i = 0; i < n; ++i) {
    // ONNX: output_padding must be smaller than stride or dilation.
    if (a.output_padding[i] >= std::max(a.strides[i], a.dilations[i])) {
      return InvalidArgument("{}: output_padding {} must be smaller than strides {} or dilations {}",
                             node.Describe(), IntsToString(a.output_padding),
                             IntsToString(a.strides), IntsToString(a.dilations));
    }
  }
  if (node.Has("output_shape")) {
    std::vector<int64_t> os = node.GetInts("output_shape");
    // Exporters write either the spatial dims or the full N, C, spatial shape.
    if (os.size() == n + 2) os.erase(os.begin(), os.begin() + 2);
    if (os.size() != n) {
      return InvalidArgument("{}: output_shape {} has {} entries, expected {}", node.Describe(),
                             IntsToString(node.GetInts("output_shape")),
                             node.GetInts("output_shape").size(), n);
    }
    for (int64_t d : os)
      if (d < 1)
        return InvalidArgument("{}: output_shape {} has an entry < 1", node.Describe(),
                               IntsToString(os));
    a.output_shape = std::move(os);
  }
  return a;
}

Result<WindowGeometry> ComputeWindowGeometry(const Node& node, const WindowAttrs& a,
                                             const std::vector<int64_t>& input_spatial) {
  const int n = static_cast<int>(input_spatial.size());
  if (static_cast<size_t>(n) != a.kernel.size()) {
    return InvalidArgument("{}: input has {} spatial dims, kernel {} has {}", node.Describe(), n,
                           IntsToString(a.kernel), a.kernel.size());
  }
  WindowGeometry g = StartGeometry(a, input_spatial);
  for (int i = 0; i < n; ++i) {
    const int64_t in = input_spatial[i];
    if (in < 0) continue;
    const int64_t s = g.strides[i];
    const int64_t dk = g.DilatedKernel(i);
    int64_t out = 0;
    switch (a.auto_pad) {
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        out = CeilDiv(in, s);
        const int64_t total = std::max<int64_t>(0, (out - 1) * s + dk - in);
        SplitPad(total, a.auto_pad == AutoPad::kSameLower, &g.pad_begin[i], &g.pad_end[i]);
        break;
      }
      case AutoPad::kNotSet:
      case AutoPad::kValid: {
        if (a.auto_pad == AutoPad::kNotSet) {
          g.pad_begin[i] = a.pads[i];
          g.pad_end[i] = a.pads[i + n];
        }
        const int64_t span = in + g.pad_begin[i] + g.pad_end[i] - dk;
        if (span < 0) {
          return InvalidArgument(
              "{}: dilated kernel {} exceeds padded input {} in spatial dim {} (kernel {}, "
              "dilations {}, pads {})",
              node.Describe(), dk, in + g.pad_begin[i] + g.pad_end[i], i, IntsToString(a.kernel),
              IntsToString(a.dilations), IntsToString(a.pads));
        }
        out = (a.ceil_mode ? CeilDiv(span, s) : span / s) + 1;
        // A window must start inside the input or the leading padding.
        if (a.ceil_mode && (out - 1) * s >= in + g.pad_begin[i]) --out;
        g.ceil_extra_end[i] = std::max<int64_t>(0, (out - 1) * s - span);
        break;
      }
    }
    if (out < 1) {
      return InvalidArgument("{}: empty output in spatial dim {} (input {}, kernel {})",
                             node.Describe(), i, in, IntsToString(a.kernel));
    }
    g.output[i] = out;
  }
  return g;
}

Result<WindowGeometry> ComputeConvTransposeGeometry(const Node& node, const WindowAttrs& a,
                                                    const std::vector<int64_t>& input_spatial) {
  const int n = static_cast<int>(input_spatial.size());
  if (static_cast<size_t>(n) != a.kernel.size()) {
    return InvalidArgument("{}: input has {} spatial dims, kernel {} has {}", node.Describe(), n,
                           IntsToString(a.kernel), a.kernel.size());
  }
  WindowGeometry g = StartGeometry(a, input_spatial);
  const bool lower = a.auto_pad == AutoPad::kSameLower;
  for (int i = 0; i < n; ++i) {
    const int64_t in = input_spatial[i];
    if (in < 0) continue;
    const int64_t s = g.strides[i];
    const int64_t natural = s * (in - 1) + a.output_padding[i] + g.DilatedKernel(i);
    int64_t out = 0;
    if (!a.output_shape.empty()) {
      out = a.output_shape[i];
      SplitPad(natural - out, lower, &g.pad_begin[i], &g.pad_end[i]);
    } else if (a.auto_pad == AutoPad::kSameUpper || a.auto_pad == AutoPad::kSameLower) {
      out = in * s;
      SplitPad(natural - out, lower, &g.pad_begin[i], &g.pad_end[i]);
    } else {
      if (a.auto_pad == AutoPad::kNotSet) {
        g.pad_begin[i] = a.pads[i];
        g.pad_end[i] = a.pads[i + n];
      }
      out = natural - g.pad_begin[i] - g.pad_end[i];
    }
    if (out < 1) {
      return InvalidArgument("{}: empty output in spatial dim {} (input {}, kernel {}, pads {})",
                             node.Describe(), i, in, IntsToString(a.kernel),
                             IntsToString(a.pads));
    }
    g.output[i] = out;
  }
  return g;
}

}  // namespace wbs::ir

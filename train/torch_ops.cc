#include "train/torch_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace wbs::train::internal {
namespace {

using Tensors = std::vector<at::Tensor>;
using Unary = std::function<at::Tensor(const at::Tensor&)>;

// Errors raised while running (shapes only known then) carry no node name:
// GraphModule::forward adds it.
[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

std::vector<int64_t> IntsOf(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

int64_t NormAxis(int64_t axis, int64_t rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) Fail(fmt::format("axis {} out of range for rank {}", axis, rank));
  return a;
}

// The float value of a constant scalar input, or `def` when the input is
// omitted. Non-constant bounds are refused at build time.
Result<float> ConstScalar(const ir::Node& n, size_t i, float def) {
  const ir::Value* v = n.input(i);
  if (!v) return def;
  if (!v->is_constant() || v->constant.numel() != 1)
    return Unimplemented("{}: input {} must be a constant scalar for training", n.Describe(), i);
  return v->constant.ToVector<float>()[0];
}

// An activation by ONNX op type: for standalone nodes and for the fused
// "wbs.activation" attributes (alpha/beta as documented in ir/graph.h).
Result<Unary> MakeActivation(const std::string& op, float alpha, float beta,
                             const std::string& who) {
  if (op == "Relu") return Unary([](const at::Tensor& x) { return at::relu(x); });
  if (op == "LeakyRelu")
    return Unary([alpha](const at::Tensor& x) { return at::leaky_relu(x, alpha); });
  if (op == "Sigmoid") return Unary([](const at::Tensor& x) { return at::sigmoid(x); });
  if (op == "Tanh") return Unary([](const at::Tensor& x) { return at::tanh(x); });
  if (op == "HardSigmoid")
    return Unary(
        [alpha, beta](const at::Tensor& x) { return at::clamp(x * alpha + beta, 0.0, 1.0); });
  if (op == "Clip")
    return Unary([alpha, beta](const at::Tensor& x) { return at::clamp(x, alpha, beta); });
  return Unimplemented("{}: activation '{}' is not supported by the training bridge", who, op);
}

// The fused activation of a Conv/Gemm/MatMul (identity when absent).
Result<Unary> FusedActivation(const ir::Node& n) {
  if (!n.Has("wbs.activation")) return Unary();
  const std::string op = n.GetString("wbs.activation", "");
  const float lo = -std::numeric_limits<float>::infinity();
  const float hi = std::numeric_limits<float>::infinity();
  const bool clip = op == "Clip";
  const float alpha =
      n.GetFloat("wbs.activation_alpha", clip ? lo : (op == "LeakyRelu" ? 0.01f : 0.2f));
  const float beta = n.GetFloat("wbs.activation_beta", clip ? hi : 0.5f);
  return MakeActivation(op, alpha, beta, n.Describe());
}

// Kernel window attributes shared by Conv, ConvTranspose and the pools.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, begin, end;
  std::string auto_pad = "NOTSET";
  bool ceil_mode = false;

  // Pads for input `x` (auto_pad needs its spatial sizes).
  void Pads(const at::Tensor& x, std::vector<int64_t>* b, std::vector<int64_t>* e) const {
    *b = begin;
    *e = end;
    if (auto_pad == "NOTSET") return;
    const size_t r = kernel.size();
    for (size_t i = 0; i < r; ++i) {
      if (auto_pad == "VALID") {
        (*b)[i] = (*e)[i] = 0;
        continue;
      }
      const int64_t in = x.size(static_cast<int64_t>(i) + 2);
      const int64_t out = (in + strides[i] - 1) / strides[i];
      const int64_t total =
          std::max<int64_t>(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in);
      const int64_t small = total / 2;
      (*b)[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      (*e)[i] = total - (*b)[i];
    }
  }
};

Result<Window> ReadWindow(const ir::Node& n, std::vector<int64_t> kernel) {
  Window w;
  if (n.Has("kernel_shape")) kernel = n.GetInts("kernel_shape");
  if (kernel.empty()) return Unimplemented("{}: kernel shape unknown", n.Describe());
  const size_t r = kernel.size();
  w.kernel = kernel;
  w.strides = n.GetInts("strides", std::vector<int64_t>(r, 1));
  w.dilations = n.GetInts("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = n.GetInts("pads", std::vector<int64_t>(2 * r, 0));
  w.auto_pad = n.GetString("auto_pad", "NOTSET");
  w.ceil_mode = n.GetInt("ceil_mode", 0) != 0;
  if (w.strides.size() != r || w.dilations.size() != r || pads.size() != 2 * r)
    return InvalidArgument("{}: strides/dilations/pads do not match a {}-d kernel", n.Describe(),
                           r);
  if (w.auto_pad != "NOTSET" && w.auto_pad != "VALID" && w.auto_pad != "SAME_UPPER" &&
      w.auto_pad != "SAME_LOWER")
    return InvalidArgument("{}: bad auto_pad '{}'", n.Describe(), w.auto_pad);
  if (r < 1 || r > 3)
    return Unimplemented("{}: {}-d windows are not supported by the training bridge", n.Describe(),
                         r);
  w.begin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(r));
  w.end.assign(pads.begin() + static_cast<int64_t>(r), pads.end());
  return w;
}

// Pads x explicitly (torch's pad list runs from the last dim backwards).
at::Tensor PadSpatial(const at::Tensor& x, const std::vector<int64_t>& b,
                      const std::vector<int64_t>& e, double value) {
  std::vector<int64_t> p;
  for (size_t i = b.size(); i-- > 0;) {
    p.push_back(b[i]);
    p.push_back(e[i]);
  }
  return at::constant_pad_nd(x, p, value);
}

bool AllZero(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t x) { return x == 0; });
}

// ---- ops ------------------------------------------------------------------

Result<TorchOp> MakeConv(const ir::Node& n) {
  std::vector<int64_t> kernel;
  if (const ir::Value* w = n.input(1); w && w->has_shape && w->shape.size() >= 3)
    kernel.assign(w->shape.begin() + 2, w->shape.end());
  WBS_ASSIGN_OR_RETURN(Window win, ReadWindow(n, kernel));
  WBS_ASSIGN_OR_RETURN(Unary act, FusedActivation(n));
  const int64_t group = n.GetInt("group", 1);
  const bool residual = n.GetInt("wbs.residual", 0) != 0;
  if (n.num_inputs() > 3 && !residual)
    return InvalidArgument("{}: a 4th input needs wbs.residual", n.Describe());
  return TorchOp([win, act, group, residual](const Tensors& in, bool) -> Tensors {
    std::vector<int64_t> b, e;
    win.Pads(in[0], &b, &e);
    at::Tensor x = in[0];
    if (b != e) {
      x = PadSpatial(x, b, e, 0.0);
      b.assign(b.size(), 0);
    }
    const at::Tensor bias = in.size() > 2 ? in[2] : at::Tensor();
    at::Tensor y = at::convolution(x, in[1], bias, win.strides, b, win.dilations, false,
                                   std::vector<int64_t>(b.size(), 0), group);
    if (residual && in.size() > 3 && in[3].defined()) y = y + in[3];
    if (act) y = act(y);
    return {y};
  });
}

Result<TorchOp> MakeConvTranspose(const ir::Node& n) {
  std::vector<int64_t> kernel;
  if (const ir::Value* w = n.input(1); w && w->has_shape && w->shape.size() >= 3)
    kernel.assign(w->shape.begin() + 2, w->shape.end());
  WBS_ASSIGN_OR_RETURN(Window win, ReadWindow(n, kernel));
  WBS_ASSIGN_OR_RETURN(Unary act, FusedActivation(n));
  const int64_t group = n.GetInt("group", 1);
  const size_t rank = win.kernel.size();
  const std::vector<int64_t> out_pad = n.GetInts("output_padding", std::vector<int64_t>(rank, 0));
  std::vector<int64_t> out_shape = n.GetInts("output_shape");
  if (out_shape.size() > rank) out_shape.erase(out_shape.begin(), out_shape.end() - rank);
  if (out_pad.size() != rank || (!out_shape.empty() && out_shape.size() != rank))
    return InvalidArgument("{}: output_padding/output_shape do not match a {}-d kernel",
                           n.Describe(), rank);
  // Computed unpadded, then cropped (pads) and extended (output_padding) per
  // dim, so asymmetric pads need no special case; the bias comes last so the
  // extension rows get it too.
  return TorchOp([win, act, group, out_pad, out_shape](const Tensors& in, bool) -> Tensors {
    const size_t r = win.kernel.size();
    at::Tensor y =
        at::convolution(in[0], in[1], at::Tensor(), win.strides, std::vector<int64_t>(r, 0),
                        win.dilations, true, std::vector<int64_t>(r, 0), group);
    std::vector<int64_t> b(r), e(r);
    for (size_t i = 0; i < r; ++i) {
      int64_t begin = win.begin[i], end = win.end[i];
      // An output shape (given, or in * stride for SAME) fixes the total
      // padding; SAME_UPPER puts the smaller half first (ONNX).
      const bool same = win.auto_pad == "SAME_UPPER" || win.auto_pad == "SAME_LOWER";
      if (!out_shape.empty() || same) {
        const int64_t target =
            !out_shape.empty() ? out_shape[i] : in[0].size(2 + i) * win.strides[i];
        const int64_t total = y.size(2 + i) + out_pad[i] - target;
        const bool upper = win.auto_pad != "SAME_LOWER";
        begin = upper ? total / 2 : total - total / 2;
        end = total - begin;
      } else if (win.auto_pad == "VALID") {
        begin = end = 0;
      }
      b[i] = -begin;
      e[i] = out_pad[i] - end;
    }
    if (!AllZero(b) || !AllZero(e)) y = PadSpatial(y, b, e, 0.0);
    if (in.size() > 2 && in[2].defined()) {
      std::vector<int64_t> shape(r + 2, 1);
      shape[1] = -1;
      y = y + in[2].reshape(shape);
    }
    if (act) y = act(y);
    return {y};
  });
}

Result<TorchOp> MakeGemm(const ir::Node& n) {
  const bool ta = n.GetInt("transA", 0) != 0, tb = n.GetInt("transB", 0) != 0;
  const double alpha = n.GetFloat("alpha", 1.0f), beta = n.GetFloat("beta", 1.0f);
  WBS_ASSIGN_OR_RETURN(Unary act, FusedActivation(n));
  return TorchOp([=](const Tensors& in, bool) -> Tensors {
    const at::Tensor a = ta ? in[0].t() : in[0];
    const at::Tensor b = tb ? in[1].t() : in[1];
    at::Tensor y = at::matmul(a, b);
    if (alpha != 1.0) y = y * alpha;
    if (in.size() > 2 && in[2].defined()) y = beta == 1.0 ? y + in[2] : y + in[2] * beta;
    if (act) y = act(y);
    return {y};
  });
}

Result<TorchOp> MakeMatMul(const ir::Node& n) {
  WBS_ASSIGN_OR_RETURN(Unary act, FusedActivation(n));
  return TorchOp([act](const Tensors& in, bool) -> Tensors {
    at::Tensor y = at::matmul(in[0], in[1]);
    if (act) y = act(y);
    return {y};
  });
}

Result<TorchOp> MakeBatchNorm(const ir::Node& n) {
  if (n.GetInt("spatial", 1) != 1)
    return Unimplemented("{}: spatial=0 BatchNormalization is not supported", n.Describe());
  const double eps = n.GetFloat("epsilon", 1e-5f);
  // ONNX: running = running * momentum + batch * (1 - momentum); torch's
  // momentum is the weight of the batch statistic.
  const double momentum = 1.0 - static_cast<double>(n.GetFloat("momentum", 0.9f));
  return TorchOp([eps, momentum](const Tensors& in, bool training) -> Tensors {
    return {at::batch_norm(in[0], in[1], in[2], in[3], in[4], training, momentum, eps,
                           /*cudnn_enabled=*/true)};
  });
}

// Pools with torch's native padding when it can (symmetric, at most half
// the kernel), else on an explicitly padded input.
Result<TorchOp> MakeMaxPool(const ir::Node& n) {
  WBS_ASSIGN_OR_RETURN(Window win, ReadWindow(n, {}));
  if (n.GetInt("storage_order", 0) != 0)
    return Unimplemented("{}: storage_order=1 is not supported", n.Describe());
  return TorchOp([win](const Tensors& in, bool) -> Tensors {
    std::vector<int64_t> b, e;
    win.Pads(in[0], &b, &e);
    at::Tensor x = in[0];
    bool native = b == e;
    for (size_t i = 0; i < b.size(); ++i) native = native && b[i] * 2 <= win.kernel[i];
    if (!native) {
      x = PadSpatial(x, b, e, -std::numeric_limits<double>::infinity());
      b.assign(b.size(), 0);
    }
    switch (win.kernel.size()) {
      case 1:
        return {at::max_pool1d(x, win.kernel, win.strides, b, win.dilations, win.ceil_mode)};
      case 2:
        return {at::max_pool2d(x, win.kernel, win.strides, b, win.dilations, win.ceil_mode)};
      default:
        return {at::max_pool3d(x, win.kernel, win.strides, b, win.dilations, win.ceil_mode)};
    }
  });
}

at::Tensor AvgPoolNative(const at::Tensor& x, const Window& w, const std::vector<int64_t>& pad,
                         bool count_include_pad) {
  switch (w.kernel.size()) {
    case 1:
      return at::avg_pool1d(x, w.kernel, w.strides, pad, w.ceil_mode, count_include_pad);
    case 2:
      return at::avg_pool2d(x, w.kernel, w.strides, pad, w.ceil_mode, count_include_pad);
    default:
      return at::avg_pool3d(x, w.kernel, w.strides, pad, w.ceil_mode, count_include_pad);
  }
}

Result<TorchOp> MakeAveragePool(const ir::Node& n) {
  WBS_ASSIGN_OR_RETURN(Window win, ReadWindow(n, {}));
  if (std::any_of(win.dilations.begin(), win.dilations.end(), [](int64_t d) { return d != 1; }))
    return Unimplemented("{}: dilated AveragePool is not supported", n.Describe());
  const bool include_pad = n.GetInt("count_include_pad", 0) != 0;
  return TorchOp([win, include_pad](const Tensors& in, bool) -> Tensors {
    std::vector<int64_t> b, e;
    win.Pads(in[0], &b, &e);
    bool native = b == e;
    for (size_t i = 0; i < b.size(); ++i) native = native && b[i] * 2 <= win.kernel[i];
    if (native) return {AvgPoolNative(in[0], win, b, include_pad)};
    const std::vector<int64_t> zero(b.size(), 0);
    const at::Tensor sum = AvgPoolNative(PadSpatial(in[0], b, e, 0.0), win, zero, true);
    if (include_pad) return {sum};
    // Average over the real (unpadded) entries only: divide by the window's
    // share of ones.
    std::vector<int64_t> ones_shape(in[0].dim(), 1);
    for (int64_t d = 2; d < in[0].dim(); ++d) ones_shape[d] = in[0].size(d);
    const at::Tensor ones = at::ones(ones_shape, in[0].options());
    const at::Tensor share = AvgPoolNative(PadSpatial(ones, b, e, 0.0), win, zero, true);
    return {sum / share};
  });
}

Result<TorchOp> MakeReshape(const ir::Node& n) {
  const bool allowzero = n.GetInt("allowzero", 0) != 0;
  return TorchOp([allowzero](const Tensors& in, bool) -> Tensors {
    std::vector<int64_t> shape = IntsOf(in[1]);
    for (size_t i = 0; i < shape.size(); ++i)
      if (shape[i] == 0 && !allowzero) {
        if (static_cast<int64_t>(i) >= in[0].dim()) Fail("Reshape: 0 copies a missing dim");
        shape[i] = in[0].size(static_cast<int64_t>(i));
      }
    return {in[0].reshape(shape)};
  });
}

Result<TorchOp> MakeSoftmax(const ir::Node& n, bool log) {
  const bool legacy = n.opset < 13;
  const int64_t axis = n.GetInt("axis", legacy ? 1 : -1);
  return TorchOp([=](const Tensors& in, bool) -> Tensors {
    const at::Tensor& x = in[0];
    auto f = [log](const at::Tensor& t, int64_t d) {
      return log ? at::log_softmax(t, d) : at::softmax(t, d);
    };
    if (!legacy) return {f(x, NormAxis(axis, x.dim()))};
    // Before opset 13: softmax over the flattened trailing dims from axis.
    const int64_t a = NormAxis(axis, x.dim());
    if (x.numel() == 0) return {x};
    int64_t outer = 1;
    for (int64_t d = 0; d < a; ++d) outer *= x.size(d);
    return {f(x.reshape({outer, -1}), 1).reshape(x.sizes())};
  });
}

// Dropout: ratio from the attribute (before opset 12) or input 1; the
// training_mode input (opset 12+) is ignored: the module's mode decides. The
// optional mask output is all true in eval mode.
Result<TorchOp> MakeDropout(const ir::Node& n) {
  float ratio = n.GetFloat("ratio", 0.5f);
  if (n.opset >= 12) {
    WBS_ASSIGN_OR_RETURN(ratio, ConstScalar(n, 1, 0.5f));
  }
  if (ratio < 0.0f || ratio >= 1.0f)
    return InvalidArgument("{}: ratio {} outside [0, 1)", n.Describe(), ratio);
  const bool want_mask = n.outputs.size() > 1;
  return TorchOp([ratio, want_mask](const Tensors& in, bool training) -> Tensors {
    if (!training || ratio == 0.0f) {
      if (!want_mask) return {in[0]};
      return {in[0], at::ones(in[0].sizes(), in[0].options().dtype(at::kBool))};
    }
    if (!want_mask) return {at::dropout(in[0], ratio, true)};
    const at::Tensor keep = at::bernoulli(at::full(in[0].sizes(), 1.0 - ratio, in[0].options()));
    return {in[0] * keep / (1.0 - ratio), keep.to(at::kBool)};
  });
}

Result<TorchOp> MakeClip(const ir::Node& n) {
  float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
  auto runtime_bound = [&](size_t i) { return n.input(i) && !n.input(i)->is_constant(); };
  if (n.opset < 11) {
    lo = n.GetFloat("min", lo);
    hi = n.GetFloat("max", hi);
  } else if (runtime_bound(1) || runtime_bound(2)) {
    // Bounds computed by the graph: read as tensors when run.
    return TorchOp([](const Tensors& in, bool) -> Tensors {
      c10::optional<at::Tensor> a, b;
      if (in.size() > 1 && in[1].defined()) a = in[1];
      if (in.size() > 2 && in[2].defined()) b = in[2];
      return {a || b ? at::clamp(in[0], a, b) : in[0]};
    });
  } else {
    WBS_ASSIGN_OR_RETURN(lo, ConstScalar(n, 1, lo));
    WBS_ASSIGN_OR_RETURN(hi, ConstScalar(n, 2, hi));
  }
  // Integer tensors clamp to integer bounds (an infinite bound is none).
  return TorchOp([lo, hi](const Tensors& in, bool) -> Tensors {
    const at::Tensor& x = in[0];
    if (x.is_floating_point()) return {at::clamp(x, lo, hi)};
    c10::optional<at::Scalar> a, b;
    if (std::isfinite(lo)) a = static_cast<int64_t>(std::ceil(lo));
    if (std::isfinite(hi)) b = static_cast<int64_t>(std::floor(hi));
    return {a || b ? at::clamp(x, a, b) : x};
  });
}

// Axes come from the attribute before opset 13, from the optional input 1 after.
Result<TorchOp> MakeSqueeze(const ir::Node& n, bool unsqueeze) {
  const bool from_input = n.opset >= 13;
  const std::vector<int64_t> attr_axes = n.GetInts("axes");
  return TorchOp([=](const Tensors& in, bool) -> Tensors {
    std::vector<int64_t> axes =
        from_input ? (in.size() > 1 && in[1].defined() ? IntsOf(in[1]) : std::vector<int64_t>{})
                   : attr_axes;
    at::Tensor x = in[0];
    if (unsqueeze) {
      const int64_t rank = x.dim() + static_cast<int64_t>(axes.size());
      for (int64_t& a : axes) a = NormAxis(a, rank);
      std::sort(axes.begin(), axes.end());
      for (int64_t a : axes) x = x.unsqueeze(a);
      return {x};
    }
    if (axes.empty()) return {x.squeeze()};
    for (int64_t& a : axes) a = NormAxis(a, x.dim());
    std::sort(axes.rbegin(), axes.rend());
    for (int64_t a : axes) {
      if (x.size(a) != 1) Fail(fmt::format("Squeeze: dim {} has size {}", a, x.size(a)));
      x = x.squeeze(a);
    }
    return {x};
  });
}

Result<TorchOp> MakeSlice(const ir::Node& n) {
  const bool legacy = n.opset < 10;
  const std::vector<int64_t> a_starts = n.GetInts("starts"), a_ends = n.GetInts("ends"),
                             a_axes = n.GetInts("axes");
  return TorchOp([=](const Tensors& in, bool) -> Tensors {
    at::Tensor x = in[0];
    const std::vector<int64_t> starts = legacy ? a_starts : IntsOf(in[1]);
    const std::vector<int64_t> ends = legacy ? a_ends : IntsOf(in[2]);
    std::vector<int64_t> axes = legacy                             ? a_axes
                                : in.size() > 3 && in[3].defined() ? IntsOf(in[3])
                                                                   : std::vector<int64_t>{};
    const std::vector<int64_t> steps = !legacy && in.size() > 4 && in[4].defined()
                                           ? IntsOf(in[4])
                                           : std::vector<int64_t>(starts.size(), 1);
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (ends.size() != starts.size() || axes.size() != starts.size() ||
        steps.size() != starts.size())
      Fail("Slice: starts/ends/axes/steps lengths differ");
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t d = NormAxis(axes[i], x.dim()), size = x.size(d), step = steps[i];
      if (step == 0) Fail("Slice: step 0");
      auto wrap = [size](int64_t v) { return v < 0 ? v + size : v; };
      if (step > 0) {
        const int64_t s = std::clamp<int64_t>(wrap(starts[i]), 0, size);
        const int64_t e = std::max(s, std::clamp<int64_t>(wrap(ends[i]), 0, size));
        x = x.slice(d, s, e, step);
      } else {
        // Backwards: start clamps to [0, size-1], end to [-1, size-1] (exclusive).
        const int64_t s = std::clamp<int64_t>(wrap(starts[i]), 0, size - 1);
        const int64_t e = std::clamp<int64_t>(ends[i] < -size ? -1 : wrap(ends[i]), -1, size - 1);
        const at::Tensor idx = s > e ? at::arange(s, e, step, x.options().dtype(at::kLong))
                                     : at::empty({0}, x.options().dtype(at::kLong));
        x = x.index_select(d, idx);
      }
    }
    return {x};
  });
}

Result<TorchOp> MakeGather(const ir::Node& n) {
  const int64_t axis = n.GetInt("axis", 0);
  return TorchOp([axis](const Tensors& in, bool) -> Tensors {
    const int64_t a = NormAxis(axis, in[0].dim());
    at::Tensor idx = in[1].to(at::kLong);
    idx = at::where(idx < 0, idx + in[0].size(a), idx);
    at::Tensor y = in[0].index_select(a, idx.reshape({-1}));
    std::vector<int64_t> shape(in[0].sizes().begin(), in[0].sizes().begin() + a);
    for (int64_t s : idx.sizes()) shape.push_back(s);
    for (int64_t d = a + 1; d < in[0].dim(); ++d) shape.push_back(in[0].size(d));
    return {y.reshape(shape)};
  });
}

Result<TorchOp> MakePad(const ir::Node& n) {
  const std::string mode = n.GetString("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    return Unimplemented("{}: Pad mode '{}' is not supported by the training bridge", n.Describe(),
                         mode);
  const bool legacy = n.opset < 11;
  const std::vector<int64_t> attr_pads = n.GetInts("pads");
  const float attr_value = n.GetFloat("value", 0.0f);
  if (!legacy && n.input(3)) return Unimplemented("{}: Pad axes are not supported", n.Describe());
  return TorchOp([=](const Tensors& in, bool) -> Tensors {
    const std::vector<int64_t> pads = legacy ? attr_pads : IntsOf(in[1]);
    const double value =
        legacy ? attr_value
               : (in.size() > 2 && in[2].defined() ? in[2].to(at::kCPU, at::kDouble).item<double>()
                                                   : 0.0);
    const int64_t r = in[0].dim();
    if (static_cast<int64_t>(pads.size()) != 2 * r) Fail("Pad: pads length is not 2 * rank");
    std::vector<int64_t> p;
    for (int64_t i = r; i-- > 0;) {
      p.push_back(pads[i]);
      p.push_back(pads[i + r]);
    }
    if (mode == "constant") return {at::constant_pad_nd(in[0], p, value)};
    // reflect/edge: torch pads the trailing 1..3 dims of a 3..5-d tensor
    // (N, C unpadded).
    const int64_t spatial = r - 2;
    if (r < 3 || r > 5 || pads[0] || pads[1] || pads[r] || pads[r + 1])
      Fail(fmt::format("Pad: {} mode pads only dims 2.. of a 3-5-d tensor", mode));
    p.resize(2 * spatial);
    const bool reflect = mode == "reflect";
    switch (spatial) {
      case 1:
        return {reflect ? at::reflection_pad1d(in[0], p) : at::replication_pad1d(in[0], p)};
      case 2:
        return {reflect ? at::reflection_pad2d(in[0], p) : at::replication_pad2d(in[0], p)};
      default:
        return {reflect ? at::reflection_pad3d(in[0], p) : at::replication_pad3d(in[0], p)};
    }
  });
}

at::ScalarType ScalarTypeOf(DType t, bool* ok) {
  *ok = true;
  switch (t) {
    case DType::kF32:
      return at::kFloat;
    case DType::kF64:
      return at::kDouble;
    case DType::kF16:
      return at::kHalf;
    case DType::kBF16:
      return at::kBFloat16;
    case DType::kI8:
      return at::kChar;
    case DType::kU8:
      return at::kByte;
    case DType::kI16:
      return at::kShort;
    case DType::kI32:
      return at::kInt;
    case DType::kI64:
      return at::kLong;
    case DType::kBool:
      return at::kBool;
    default:
      *ok = false;
      return at::kFloat;
  }
}

template <typename F>
Result<TorchOp> Elementwise(F f) {
  return TorchOp([f](const Tensors& in, bool) -> Tensors { return {f(in)}; });
}

}  // namespace

const std::vector<std::string>& SupportedOps() {
  static const std::vector<std::string> ops = {"Abs",
                                               "Add",
                                               "AveragePool",
                                               "BatchNormalization",
                                               "Cast",
                                               "Clip",
                                               "Concat",
                                               "Conv",
                                               "ConvTranspose",
                                               "Div",
                                               "Dropout",
                                               "Erf",
                                               "Exp",
                                               "Flatten",
                                               "Gather",
                                               "Gemm",
                                               "GlobalAveragePool",
                                               "GlobalMaxPool",
                                               "HardSigmoid",
                                               "HardSwish",
                                               "Identity",
                                               "LeakyRelu",
                                               "Log",
                                               "LogSoftmax",
                                               "MatMul",
                                               "MaxPool",
                                               "Mul",
                                               "Neg",
                                               "Pad",
                                               "Pow",
                                               "ReduceMean",
                                               "Relu",
                                               "Reshape",
                                               "Shape",
                                               "Sigmoid",
                                               "Slice",
                                               "Softmax",
                                               "Sqrt",
                                               "Squeeze",
                                               "Sub",
                                               "Tanh",
                                               "Transpose",
                                               "Unsqueeze"};
  return ops;
}

Result<TorchOp> MakeTorchOp(const ir::Graph& g, const ir::Node& n) {
  // Outputs beyond the first that some node or the graph reads.
  auto extra_used = [&]() {
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (n.outputs[i] && (!n.outputs[i]->users.empty() || g.IsOutput(n.outputs[i]))) return true;
    return false;
  };
  if (!n.domain.empty() && n.domain != "ai.onnx")
    return Unimplemented("{}: domain '{}' is not supported by the training bridge", n.Describe(),
                         n.domain);
  const std::string& op = n.op_type;
  if (op == "Conv") return MakeConv(n);
  if (op == "ConvTranspose") return MakeConvTranspose(n);
  if (op == "Gemm") return MakeGemm(n);
  if (op == "MatMul") return MakeMatMul(n);
  if (op == "BatchNormalization") {
    if (extra_used())
      return Unimplemented("{}: training-mode BN outputs are not supported", n.Describe());
    return MakeBatchNorm(n);
  }
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "LeakyRelu" || op == "HardSigmoid") {
    const float alpha = n.GetFloat("alpha", op == "LeakyRelu" ? 0.01f : 0.2f);
    const float beta = n.GetFloat("beta", 0.5f);
    WBS_ASSIGN_OR_RETURN(Unary f, MakeActivation(op, alpha, beta, n.Describe()));
    return TorchOp([f](const Tensors& in, bool) -> Tensors { return {f(in[0])}; });
  }
  if (op == "HardSwish")
    return Elementwise(
        [](const Tensors& in) { return in[0] * at::clamp(in[0] / 6.0 + 0.5, 0.0, 1.0); });
  if (op == "Clip") return MakeClip(n);
  if (op == "Add") return Elementwise([](const Tensors& in) { return in[0] + in[1]; });
  if (op == "Sub") return Elementwise([](const Tensors& in) { return in[0] - in[1]; });
  if (op == "Mul") return Elementwise([](const Tensors& in) { return in[0] * in[1]; });
  // Integer Div truncates; Pow keeps the base's type (ONNX), torch promotes.
  if (op == "Div")
    return Elementwise([](const Tensors& in) {
      if (in[0].is_floating_point() || in[1].is_floating_point()) return in[0] / in[1];
      return at::div(in[0], in[1], "trunc");
    });
  if (op == "Pow")
    return Elementwise(
        [](const Tensors& in) { return at::pow(in[0], in[1]).to(in[0].scalar_type()); });
  if (op == "Neg") return Elementwise([](const Tensors& in) { return -in[0]; });
  if (op == "Abs") return Elementwise([](const Tensors& in) { return at::abs(in[0]); });
  if (op == "Sqrt") return Elementwise([](const Tensors& in) { return at::sqrt(in[0]); });
  if (op == "Exp") return Elementwise([](const Tensors& in) { return at::exp(in[0]); });
  if (op == "Log") return Elementwise([](const Tensors& in) { return at::log(in[0]); });
  if (op == "Erf") return Elementwise([](const Tensors& in) { return at::erf(in[0]); });
  if (op == "Identity") return Elementwise([](const Tensors& in) { return in[0]; });
  if (op == "Dropout") return MakeDropout(n);
  if (op == "Concat") {
    const int64_t axis = n.GetInt("axis", 1);
    return Elementwise(
        [axis](const Tensors& in) { return at::cat(in, NormAxis(axis, in[0].dim())); });
  }
  if (op == "MaxPool") {
    if (extra_used()) return Unimplemented("{}: MaxPool indices are not supported", n.Describe());
    return MakeMaxPool(n);
  }
  if (op == "AveragePool") return MakeAveragePool(n);
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
    const bool avg = op == "GlobalAveragePool";
    return Elementwise([avg](const Tensors& in) {
      std::vector<int64_t> dims;
      for (int64_t d = 2; d < in[0].dim(); ++d) dims.push_back(d);
      return avg ? in[0].mean(dims, true) : at::amax(in[0], dims, true);
    });
  }
  if (op == "Flatten") {
    const int64_t axis = n.GetInt("axis", 1);
    return Elementwise([axis](const Tensors& in) {
      const int64_t r = in[0].dim();
      const int64_t a = axis < 0 ? axis + r : axis;
      if (a < 0 || a > r) Fail(fmt::format("Flatten: axis {} out of range for rank {}", axis, r));
      int64_t outer = 1;
      for (int64_t d = 0; d < a; ++d) outer *= in[0].size(d);
      return in[0].reshape({outer, outer == 0 ? 0 : in[0].numel() / outer});
    });
  }
  if (op == "Reshape") return MakeReshape(n);
  if (op == "Softmax") return MakeSoftmax(n, false);
  if (op == "LogSoftmax") return MakeSoftmax(n, true);
  if (op == "Transpose") {
    const std::vector<int64_t> perm = n.GetInts("perm");
    return Elementwise([perm](const Tensors& in) {
      std::vector<int64_t> p = perm;
      if (p.empty())
        for (int64_t d = in[0].dim(); d-- > 0;) p.push_back(d);
      return in[0].permute(p);
    });
  }
  if (op == "Squeeze") return MakeSqueeze(n, false);
  if (op == "Unsqueeze") return MakeSqueeze(n, true);
  if (op == "Slice") return MakeSlice(n);
  if (op == "Gather") return MakeGather(n);
  if (op == "Pad") return MakePad(n);
  if (op == "Shape") {
    const int64_t start = n.GetInt("start", 0);
    const bool has_end = n.Has("end");
    const int64_t end = n.GetInt("end", 0);
    return Elementwise([=](const Tensors& in) {
      const int64_t r = in[0].dim();
      auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
      const int64_t s = clampi(start), e = has_end ? clampi(end) : r;
      std::vector<int64_t> dims(in[0].sizes().begin() + s, in[0].sizes().begin() + std::max(s, e));
      return at::tensor(dims, at::TensorOptions().dtype(at::kLong)).to(in[0].device());
    });
  }
  if (op == "Cast") {
    bool ok = false;
    const at::ScalarType to = ScalarTypeOf(static_cast<DType>(n.GetInt("to", 0)), &ok);
    if (!ok) return Unimplemented("{}: Cast to this type is not supported", n.Describe());
    return Elementwise([to](const Tensors& in) { return in[0].to(to); });
  }
  if (op == "ReduceMean") {
    if (n.opset >= 18)
      return Unimplemented("{}: opset-18 ReduceMean is not supported", n.Describe());
    const std::vector<int64_t> axes = n.GetInts("axes");
    const bool keep = n.GetInt("keepdims", 1) != 0;
    return Elementwise([axes, keep](const Tensors& in) {
      std::vector<int64_t> a = axes;
      if (a.empty())
        for (int64_t d = 0; d < in[0].dim(); ++d) a.push_back(d);
      return in[0].mean(a, keep);
    });
  }
  return Unimplemented("{}: op '{}' is not supported by the training bridge", n.Describe(), op);
}

Result<at::Tensor> ToTorch(const Tensor& t, const at::Device& device) {
  bool ok = false;
  const at::ScalarType st = ScalarTypeOf(t.dtype(), &ok);
  if (!ok) return Unimplemented("tensor {}: dtype has no torch equivalent", t.Describe());
  try {
    at::Tensor out = at::empty(t.shape(), at::TensorOptions().dtype(st));
    if (t.nbytes() > 0) std::memcpy(out.data_ptr(), t.raw(), t.nbytes());
    return out.to(device);
  } catch (const std::exception& e) {
    return Internal("tensor {}: {}", t.Describe(), e.what());
  }
}

Result<Tensor> FromTorch(const at::Tensor& t) {
  DType dt;
  switch (t.scalar_type()) {
    case at::kFloat:
      dt = DType::kF32;
      break;
    case at::kDouble:
      dt = DType::kF64;
      break;
    case at::kLong:
      dt = DType::kI64;
      break;
    case at::kInt:
      dt = DType::kI32;
      break;
    case at::kChar:
      dt = DType::kI8;
      break;
    case at::kByte:
      dt = DType::kU8;
      break;
    case at::kBool:
      dt = DType::kBool;
      break;
    default:
      return Unimplemented("torch tensor of type {} has no wbs dtype",
                           at::toString(t.scalar_type()));
  }
  try {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    Tensor out(dt, Shape(c.sizes().begin(), c.sizes().end()));
    if (out.nbytes() > 0) std::memcpy(out.raw(), c.data_ptr(), out.nbytes());
    return out;
  } catch (const std::exception& e) {
    return Internal("torch tensor: {}", e.what());
  }
}

}  // namespace wbs::train::internal

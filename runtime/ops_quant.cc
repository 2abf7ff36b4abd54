// Reference operators of the quantized IR: integer arithmetic only, through
// kernels/ref/int8.h and core/quant_math.h (docs/int8.md), plus ONNX
// QuantizeLinear / DequantizeLinear at the graph's float boundaries.
#include "runtime/ops_quant.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "ir/conv_geometry.h"
#include "kernels/ref/broadcast.h"
#include "kernels/ref/int8.h"
#include "runtime/operator.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime {

namespace ref = kernels::ref;

namespace {

bool IsPowerOfTwo(double s) {
  int e = 0;
  return s > 0 && std::frexp(s, &e) == 0.5;
}

// Calls f.template operator()<T>() with T = uint8_t or int8_t.
template <typename F>
void Dispatch8(DType t, F&& f) {
  if (t == DType::kU8)
    f.template operator()<uint8_t>();
  else
    f.template operator()<int8_t>();
}

}  // namespace

Requant RatioMultiplier(double ratio, bool power_of_two) {
  if (power_of_two && IsPowerOfTwo(ratio)) {
    int e = 0;
    std::frexp(ratio, &e);  // ratio = 2^(e-1) = 2^-k
    return PowerOfTwoMultiplier(1 - e);
  }
  return QuantizeMultiplier(ratio);
}

Result<TensorQuant> PerTensorQuant(const ir::Node& node, const ir::Value* v, const char* what) {
  if (!v || !v->quant)
    return InvalidArgument("{}: {} has no quantization parameters", node.Describe(), what);
  const QuantParams& q = *v->quant;
  const DType t = static_cast<DType>(q.dtype);
  if (!Is8Bit(t)) {
    return InvalidArgument("{}: {} '{}' is quantized to {}, expected u8 or i8", node.Describe(),
                           what, v->name, DTypeName(t));
  }
  if (q.scale.size() != 1 || q.zero_point.size() > 1) {
    return InvalidArgument("{}: {} '{}' must be quantized per tensor ({} scales)", node.Describe(),
                           what, v->name, q.scale.size());
  }
  TensorQuant r;
  r.dtype = t;
  r.scale = q.scale[0];
  r.zero_point = q.zero_point.empty() ? 0 : q.zero_point[0];
  r.power_of_two = q.power_of_two;
  if (!(r.scale > 0) || !std::isfinite(r.scale)) {
    return InvalidArgument("{}: {} '{}' has scale {}, expected a positive finite number",
                           node.Describe(), what, v->name, r.scale);
  }
  if (r.zero_point < TypeMin(t) || r.zero_point > TypeMax(t)) {
    return InvalidArgument("{}: {} '{}' has zero point {} outside {}", node.Describe(), what,
                           v->name, r.zero_point, DTypeName(t));
  }
  return r;
}

Result<std::pair<int32_t, int32_t>> QuantClampBounds(const ir::Node& node, const TensorQuant& y) {
  int32_t lo = TypeMin(y.dtype), hi = TypeMax(y.dtype);
  const std::string act = node.GetString("wbs.activation", "");
  if (act == "Relu") {
    lo = std::max(lo, y.zero_point);
  } else if (act == "Clip") {
    const double a = node.GetFloat("wbs.activation_alpha", -INFINITY);
    const double b = node.GetFloat("wbs.activation_beta", INFINITY);
    auto q = [&](double v) -> int64_t {
      const double r = v / y.scale + y.zero_point;
      if (r < -1e9) return INT32_MIN;
      if (r > 1e9) return INT32_MAX;
      return y.zero_point + RoundHalfAway(v / y.scale);
    };
    lo = static_cast<int32_t>(std::max<int64_t>(lo, q(a)));
    hi = static_cast<int32_t>(std::min<int64_t>(hi, q(b)));
    if (lo > hi)
      return InvalidArgument("{}: Clip bounds are empty after quantization", node.Describe());
  } else if (!act.empty()) {
    return Unimplemented("{}: fused activation {} has no integer form (Relu, Clip only)",
                         node.Describe(), act);
  }
  return std::make_pair(lo, hi);
}

Result<QLinearQuant> ResolveQLinearQuant(const ir::Node& node, int64_t channels) {
  QLinearQuant r;
  WBS_ASSIGN_OR_RETURN(r.x, PerTensorQuant(node, node.input(0), "input X"));
  const ir::Value* w = node.input(1);
  if (!w || !w->quant)
    return InvalidArgument("{}: weight W has no quantization parameters", node.Describe());
  const QuantParams& wq = *w->quant;
  if (static_cast<DType>(wq.dtype) != DType::kI8)
    return InvalidArgument("{}: weight W must be quantized to i8", node.Describe());
  for (int32_t z : wq.zero_point)
    if (z != 0)
      return InvalidArgument("{}: weight W has zero point {} (must be 0)", node.Describe(), z);
  const bool per_channel = wq.scale.size() != 1;
  if (per_channel && (static_cast<int64_t>(wq.scale.size()) != channels || wq.axis != 0)) {
    return InvalidArgument("{}: weight W has {} scales on axis {}, expected 1 or {} on axis 0",
                           node.Describe(), wq.scale.size(), wq.axis, channels);
  }
  const ir::Value* y = node.outputs.empty() ? nullptr : node.outputs[0];
  r.float_output = !y || !y->quant;
  if (!r.float_output) {
    WBS_ASSIGN_OR_RETURN(r.y, PerTensorQuant(node, y, "output Y"));
    WBS_ASSIGN_OR_RETURN(auto b, QuantClampBounds(node, r.y));
    r.lo = b.first;
    r.hi = b.second;
  } else if (node.Has("wbs.activation")) {
    return InvalidArgument("{}: an f32 output cannot carry a fused activation", node.Describe());
  }
  const bool pot = r.x.power_of_two && wq.power_of_two && (r.float_output || r.y.power_of_two);
  r.requant.resize(static_cast<size_t>(channels));
  r.dequant_scale.resize(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    const double sw = wq.scale[per_channel ? static_cast<size_t>(c) : 0];
    if (!(sw > 0) || !std::isfinite(sw))
      return InvalidArgument("{}: weight scale {} of channel {} is not positive", node.Describe(),
                             sw, c);
    const double sxw = static_cast<double>(r.x.scale) * sw;
    r.dequant_scale[c] = static_cast<float>(sxw);
    if (!r.float_output) r.requant[c] = RatioMultiplier(sxw / r.y.scale, pot);
  }
  return r;
}

Result<QAddQuant> ResolveQAddQuant(const ir::Node& node) {
  QAddQuant q;
  WBS_ASSIGN_OR_RETURN(q.a, PerTensorQuant(node, node.input(0), "input A"));
  WBS_ASSIGN_OR_RETURN(q.b, PerTensorQuant(node, node.input(1), "input B"));
  WBS_ASSIGN_OR_RETURN(
      q.y, PerTensorQuant(node, node.outputs.empty() ? nullptr : node.outputs[0], "output C"));
  WBS_ASSIGN_OR_RETURN(auto bounds, QuantClampBounds(node, q.y));
  q.lo = bounds.first;
  q.hi = bounds.second;
  q.r = QuantizeMultiplierPair(static_cast<double>(q.a.scale) / q.y.scale,
                               static_cast<double>(q.b.scale) / q.y.scale);
  return q;
}

Result<QConcatQuant> ResolveQConcatQuant(const ir::Node& node) {
  QConcatQuant q;
  WBS_ASSIGN_OR_RETURN(
      q.y, PerTensorQuant(node, node.outputs.empty() ? nullptr : node.outputs[0], "output"));
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    WBS_ASSIGN_OR_RETURN(TensorQuant t, PerTensorQuant(node, node.input(i), "input"));
    q.in.push_back(t);
    q.r.push_back(RatioMultiplier(static_cast<double>(t.scale) / q.y.scale,
                                  t.power_of_two && q.y.power_of_two));
  }
  return q;
}

namespace {

// QConv and QGemm.
class QLinearOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, bool conv) {
    const ir::Node& node = *args.node;
    const ir::ValueInfo& w = args.inputs[1];
    if (!w.has_shape || w.rank() < 2 || w.shape[0] < 0)
      return InvalidArgument("{}: weight W needs a known shape", node.Describe());
    auto op = std::unique_ptr<QLinearOp>(new QLinearOp(node, conv));
    WBS_ASSIGN_OR_RETURN(op->q_, ResolveQLinearQuant(node, w.shape[0]));
    op->out_.requant = op->q_.requant.data();
    op->out_.dequant_scale = op->q_.dequant_scale.data();
    op->out_.zero_point = op->q_.y.zero_point;
    op->out_.lo = op->q_.lo;
    op->out_.hi = op->q_.hi;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    const Tensor& w = *inputs[1];
    const Tensor* b = InputOrNull(inputs, 2);
    Tensor& y = *outputs[0];
    if (x.dtype() != q_.x.dtype)
      return InvalidArgument("{}: input X is {}, quantized as {}", node_.Describe(), x.Describe(),
                             DTypeName(q_.x.dtype));
    const int32_t* bias = b ? b->data<int32_t>() : nullptr;
    ref::ConvParams p;
    if (conv_) {
      WBS_ASSIGN_OR_RETURN(p, ResolveConvParams(node_, x.shape(), w.shape(), false));
      p.num_threads = ctx.num_threads;
    }
    Dispatch8(x.dtype(), [&]<typename TX>() {
      auto run = [&]<typename TY>() {
        if (conv_) {
          ref::QConv<TX, TY>(p, x.data<TX>(), q_.x.zero_point, w.data<int8_t>(), bias, out_,
                             y.data<TY>());
        } else {
          ref::QGemm<TX, TY>(x.dim(0), w.dim(0), w.dim(1), x.data<TX>(), q_.x.zero_point,
                             w.data<int8_t>(), bias, out_, y.data<TY>(), ctx.num_threads);
        }
      };
      if (y.dtype() == DType::kF32)
        run.template operator()<float>();
      else if (y.dtype() == DType::kU8)
        run.template operator()<uint8_t>();
      else
        run.template operator()<int8_t>();
    });
    return Status::Ok();
  }

  std::string impl_name() const override { return "ref"; }

 private:
  QLinearOp(const ir::Node& node, bool conv) : node_(node), conv_(conv) {}
  ir::Node node_;
  bool conv_;
  QLinearQuant q_;
  ref::QuantOutput out_;
};

// QAdd: one rounding of the two rescaled operands (RequantizeAdd).
class QAddOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    auto op = std::unique_ptr<QAddOp>(new QAddOp(node));
    WBS_ASSIGN_OR_RETURN(QAddQuant q, ResolveQAddQuant(node));
    op->a_ = q.a;
    op->b_ = q.b;
    op->y_ = q.y;
    op->lo_ = q.lo;
    op->hi_ = q.hi;
    op->r_ = q.r;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext&) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    Tensor& y = *outputs[0];
    if (a.dtype() != a_.dtype || b.dtype() != b_.dtype)
      return InvalidArgument("{}: input types differ from their quantization", node_.Describe());
    Dispatch8(a.dtype(), [&]<typename TA>() {
      Dispatch8(b.dtype(), [&]<typename TB>() {
        Dispatch8(y.dtype(), [&]<typename TY>() {
          ref::BroadcastBinary(
              a.data<TA>(), a.shape(), b.data<TB>(), b.shape(), y.data<TY>(), y.shape(),
              [&](TA va, TB vb) {
                return static_cast<TY>(RequantizeAdd(va - a_.zero_point, vb - b_.zero_point, r_,
                                                     y_.zero_point, lo_, hi_));
              });
        });
      });
    });
    return Status::Ok();
  }

  std::string impl_name() const override { return "ref"; }

 private:
  explicit QAddOp(const ir::Node& node) : node_(node) {}
  ir::Node node_;
  TensorQuant a_, b_, y_;
  RequantPair r_;
  int32_t lo_ = 0, hi_ = 0;
};

// QConcat: each input rescaled to the output's parameters, then placed.
class QConcatOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    auto op = std::unique_ptr<QConcatOp>(new QConcatOp(node));
    WBS_ASSIGN_OR_RETURN(QConcatQuant q, ResolveQConcatQuant(node));
    op->y_ = q.y;
    op->in_ = std::move(q.in);
    op->r_ = std::move(q.r);
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext&) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    Tensor& y = *outputs[0];
    const int rank = y.rank();
    WBS_ASSIGN_OR_RETURN(const int axis, ir::NormalizeAxis(node_.GetInt("axis", 0), rank, node_));
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= y.dim(d);
    for (int d = axis + 1; d < rank; ++d) inner *= y.dim(d);
    const int64_t y_row = y.dim(axis) * inner;
    int64_t offset = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& x = *inputs[i];
      if (x.dtype() != in_[i].dtype)
        return InvalidArgument("{}: input {} type differs from its quantization", node_.Describe(),
                               i);
      const int64_t x_row = x.dim(axis) * inner;
      Dispatch8(x.dtype(), [&]<typename TX>() {
        Dispatch8(y.dtype(), [&]<typename TY>() {
          for (int64_t o = 0; o < outer; ++o)
            ref::QRescale<TX, TY>(x_row, x.data<TX>() + o * x_row, in_[i].zero_point, r_[i],
                                  y_.zero_point, TypeMin(y_.dtype), TypeMax(y_.dtype),
                                  y.data<TY>() + o * y_row + offset);
        });
      });
      offset += x_row;
    }
    return Status::Ok();
  }

  std::string impl_name() const override { return "ref"; }

 private:
  explicit QConcatOp(const ir::Node& node) : node_(node) {}
  ir::Node node_;
  TensorQuant y_;
  std::vector<TensorQuant> in_;
  std::vector<Requant> r_;
};

enum class QPoolKind { kMax, kAverage, kGlobalAverage };

class QPoolOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, QPoolKind kind) {
    const ir::Node& node = *args.node;
    auto op = std::unique_ptr<QPoolOp>(new QPoolOp(node, kind));
    WBS_ASSIGN_OR_RETURN(op->x_, PerTensorQuant(node, node.input(0), "input X"));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    if (x.dtype() != x_.dtype)
      return InvalidArgument("{}: input X type differs from its quantization", node_.Describe());
    if (kind_ == QPoolKind::kGlobalAverage) {
      const int64_t planes = x.dim(0) * x.dim(1);
      const int64_t plane = x.numel() / std::max<int64_t>(planes, 1);
      Dispatch8(x.dtype(), [&]<typename T>() {
        ref::QGlobalAveragePool<T>(planes, plane, x.data<T>(), x_.zero_point, y.data<T>());
      });
      return Status::Ok();
    }
    WBS_ASSIGN_OR_RETURN(ref::PoolParams p, ResolvePoolParams(node_, x.shape()));
    p.num_threads = ctx.num_threads;
    Dispatch8(x.dtype(), [&]<typename T>() {
      if (kind_ == QPoolKind::kMax)
        ref::MaxPool<T>(p, x.data<T>(), y.data<T>(), nullptr);
      else
        ref::QAveragePool<T>(p, x.data<T>(), x_.zero_point, y.data<T>());
    });
    return Status::Ok();
  }

  std::string impl_name() const override { return "ref"; }

 private:
  QPoolOp(const ir::Node& node, QPoolKind kind) : node_(node), kind_(kind) {}
  ir::Node node_;
  QPoolKind kind_;
  TensorQuant x_;
};

// Scale and zero point of QuantizeLinear/DequantizeLinear for element i
// (per tensor, or per `axis` index).
struct LinearParams {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int64_t axis_dim = 1, inner = 1;  // element i uses index (i / inner) % axis_dim
  size_t Index(int64_t i) const {
    return scale.size() == 1 ? 0 : static_cast<size_t>((i / inner) % axis_dim);
  }
};

Result<LinearParams> ReadLinearParams(const ir::Node& node, const Tensor& x, const Tensor& s,
                                      const Tensor* z) {
  LinearParams p;
  p.scale = s.ToVector<float>();
  if (z)
    p.zero_point = z->ToVector<int32_t>();
  else
    p.zero_point.assign(p.scale.size(), 0);
  if (p.scale.empty() || p.zero_point.size() != p.scale.size())
    return InvalidArgument("{}: scale and zero point sizes differ", node.Describe());
  if (p.scale.size() > 1) {
    WBS_ASSIGN_OR_RETURN(const int axis, ir::NormalizeAxis(node.GetInt("axis", 1), x.rank(), node));
    p.axis_dim = x.dim(axis);
    for (int d = axis + 1; d < x.rank(); ++d) p.inner *= x.dim(d);
    if (static_cast<int64_t>(p.scale.size()) != p.axis_dim)
      return InvalidArgument("{}: {} scales for axis {} of size {}", node.Describe(),
                             p.scale.size(), axis, p.axis_dim);
  }
  return p;
}

class QuantizeLinearOp final : public Operator {
 public:
  explicit QuantizeLinearOp(const ir::Node& node) : node_(node) {}
  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext&) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    if (x.dtype() != DType::kF32)
      return Unimplemented("{}: input x is {}; only f32 is supported", node_.Describe(),
                           x.Describe());
    WBS_ASSIGN_OR_RETURN(LinearParams p,
                         ReadLinearParams(node_, x, *inputs[1], InputOrNull(inputs, 2)));
    Tensor& y = *outputs[0];
    const float* xd = x.data<float>();
    Dispatch8(y.dtype(), [&]<typename T>() {
      T* yd = y.data<T>();
      const int32_t lo = TypeMin(y.dtype()), hi = TypeMax(y.dtype());
      for (int64_t i = 0; i < x.numel(); ++i) {
        const size_t c = p.Index(i);
        // f32 division, then round half to even (ONNX QuantizeLinear).
        float v = std::nearbyint(xd[i] / p.scale[c]);
        if (std::isnan(v)) v = 0;
        const float q = std::clamp(v + static_cast<float>(p.zero_point[c]), static_cast<float>(lo),
                                   static_cast<float>(hi));
        yd[i] = static_cast<T>(q);
      }
    });
    return Status::Ok();
  }
  std::string impl_name() const override { return "ref"; }

 private:
  ir::Node node_;
};

class DequantizeLinearOp final : public Operator {
 public:
  explicit DequantizeLinearOp(const ir::Node& node) : node_(node) {}
  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext&) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    WBS_ASSIGN_OR_RETURN(LinearParams p,
                         ReadLinearParams(node_, x, *inputs[1], InputOrNull(inputs, 2)));
    float* yd = outputs[0]->data<float>();
    auto run = [&]<typename T>() {
      const T* xd = x.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const size_t c = p.Index(i);
        yd[i] = static_cast<float>(static_cast<int64_t>(xd[i]) - p.zero_point[c]) * p.scale[c];
      }
    };
    if (x.dtype() == DType::kI32)
      run.template operator()<int32_t>();
    else
      Dispatch8(x.dtype(), run);
    return Status::Ok();
  }
  std::string impl_name() const override { return "ref"; }

 private:
  ir::Node node_;
};

}  // namespace

void RegisterQuantOperators() {
  RegisterOperator("QuantizeLinear", Backend::kReference,
                   [](const OpCreateArgs& a) -> Result<std::unique_ptr<Operator>> {
                     return std::unique_ptr<Operator>(new QuantizeLinearOp(*a.node));
                   });
  RegisterOperator("DequantizeLinear", Backend::kReference,
                   [](const OpCreateArgs& a) -> Result<std::unique_ptr<Operator>> {
                     return std::unique_ptr<Operator>(new DequantizeLinearOp(*a.node));
                   });
  RegisterOperator("QConv", Backend::kReference,
                   [](const OpCreateArgs& a) { return QLinearOp::Create(a, true); });
  RegisterOperator("QGemm", Backend::kReference,
                   [](const OpCreateArgs& a) { return QLinearOp::Create(a, false); });
  RegisterOperator("QAdd", Backend::kReference,
                   [](const OpCreateArgs& a) { return QAddOp::Create(a); });
  RegisterOperator("QConcat", Backend::kReference,
                   [](const OpCreateArgs& a) { return QConcatOp::Create(a); });
  RegisterOperator("QMaxPool", Backend::kReference,
                   [](const OpCreateArgs& a) { return QPoolOp::Create(a, QPoolKind::kMax); });
  RegisterOperator("QAveragePool", Backend::kReference,
                   [](const OpCreateArgs& a) { return QPoolOp::Create(a, QPoolKind::kAverage); });
  RegisterOperator("QGlobalAveragePool", Backend::kReference, [](const OpCreateArgs& a) {
    return QPoolOp::Create(a, QPoolKind::kGlobalAverage);
  });
}

}  // namespace wbs::runtime

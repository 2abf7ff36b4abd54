// Reference operators for the sliding-window NN ops: Conv, ConvTranspose,
// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool. Each validates its
// attributes and dtype at creation, resolves the geometry once per input
// shape and calls the kernels in kernels/ref/.
#include <memory>

#include "ir/conv_geometry.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/pool.h"
#include "runtime/operator.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime {
namespace {

namespace ref = kernels::ref;

bool ShapeKnown(const ir::ValueInfo& v) {
  if (!v.has_shape) return false;
  for (int64_t d : v.shape)
    if (d < 0) return false;
  return true;
}

// Conv and ConvTranspose.
class ConvOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, bool transpose) {
    const ir::Node& node = *args.node;
    if (args.inputs.size() < 2)
      return InvalidArgument("{}: expected inputs X and W", node.Describe());
    const DType dtype = args.inputs[0].dtype;
    WBS_RETURN_IF_ERROR(RequireF32OrF64(node, dtype, "input X"));
    auto op = std::unique_ptr<ConvOp>(new ConvOp(node, dtype, transpose));
    const ir::ValueInfo& x = args.inputs[0];
    const ir::ValueInfo& w = args.inputs[1];
    if (ShapeKnown(x) && ShapeKnown(w)) {
      WBS_RETURN_IF_ERROR(op->Resolve(x.shape, w.shape));
    } else {
      // Shapes come at run time; attributes can be checked now.
      WBS_RETURN_IF_ERROR(FusedActivationOf(node).status());
      if (x.has_shape && x.rank() - 2 > ref::kMaxConvSpatialRank) {
        return Unimplemented("{}: {} spatial dims (input {}); at most {} are supported",
                             node.Describe(), x.rank() - 2, ShapeToString(x.shape),
                             ref::kMaxConvSpatialRank);
      }
    }
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    const Tensor& w = *inputs[1];
    const Tensor* b = InputOrNull(inputs, 2);
    if (x.dtype() != dtype_) {
      return InvalidArgument("{}: input X is {}, the operator was created for {}", node_.Describe(),
                             x.Describe(), DTypeName(dtype_));
    }
    if (!resolved_ || x.shape() != x_shape_ || w.shape() != w_shape_)
      WBS_RETURN_IF_ERROR(Resolve(x.shape(), w.shape()));
    ref::ConvParams p = params_;
    p.num_threads = ctx.num_threads;
    Tensor& y = *outputs[0];
    // A fused residual (ir/graph.h) goes between the bias and the activation:
    // the kernel runs without the activation, then y = act(y + r).
    const Tensor* r = InputOrNull(inputs, 3);
    if (r) p.activation = ref::Activation();
    DispatchF32OrF64(dtype_, [&]<typename T>() {
      const T* bias = b ? b->data<T>() : nullptr;
      if (transpose_)
        ref::ConvTranspose<T>(p, x.data<T>(), w.data<T>(), bias, y.data<T>());
      else
        ref::Conv<T>(p, x.data<T>(), w.data<T>(), bias, y.data<T>());
      if (r) {
        T* yd = y.data<T>();
        const T* rd = r->data<T>();
        for (int64_t i = 0; i < y.numel(); ++i) yd[i] += rd[i];
        ref::ApplyActivation(params_.activation, yd, y.numel());
      }
    });
    return Status::Ok();
  }

  std::string impl_name() const override { return "ref"; }

 private:
  ConvOp(const ir::Node& node, DType dtype, bool transpose)
      : node_(node), dtype_(dtype), transpose_(transpose) {}

  Status Resolve(const Shape& x, const Shape& w) {
    WBS_ASSIGN_OR_RETURN(params_, ResolveConvParams(node_, x, w, transpose_));
    x_shape_ = x;
    w_shape_ = w;
    resolved_ = true;
    return Status::Ok();
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  DType dtype_;
  bool transpose_;
  bool resolved_ = false;
  Shape x_shape_, w_shape_;
  ref::ConvParams params_;
};

enum class PoolKind { kMax, kAverage, kGlobalMax, kGlobalAverage };

class PoolOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, PoolKind kind) {
    const ir::Node& node = *args.node;
    const DType dtype = args.inputs.empty() ? DType::kUndefined : args.inputs[0].dtype;
    const bool int8 = dtype == DType::kI8 || dtype == DType::kU8;
    if (!(kind == PoolKind::kMax && int8))
      WBS_RETURN_IF_ERROR(RequireF32OrF64(node, dtype, "input X"));
    auto op = std::unique_ptr<PoolOp>(new PoolOp(node, dtype, kind));
    if (!args.inputs.empty() && ShapeKnown(args.inputs[0]))
      WBS_RETURN_IF_ERROR(op->Resolve(args.inputs[0].shape));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    const Tensor& x = *inputs[0];
    if (x.dtype() != dtype_) {
      return InvalidArgument("{}: input X is {}, the operator was created for {}", node_.Describe(),
                             x.Describe(), DTypeName(dtype_));
    }
    if (!resolved_ || x.shape() != x_shape_) WBS_RETURN_IF_ERROR(Resolve(x.shape()));
    Tensor& y = *outputs[0];
    if (kind_ == PoolKind::kGlobalMax || kind_ == PoolKind::kGlobalAverage) {
      const int64_t planes = x.dim(0) * x.dim(1);
      const int64_t plane_size = x.numel() / std::max<int64_t>(planes, 1);
      if (plane_size == 0)
        return InvalidArgument("{}: input X {} has an empty plane", node_.Describe(), x.Describe());
      DispatchF32OrF64(dtype_, [&]<typename T>() {
        if (kind_ == PoolKind::kGlobalMax)
          ref::GlobalMaxPool<T>(planes, plane_size, x.data<T>(), y.data<T>(), ctx.num_threads);
        else
          ref::GlobalAveragePool<T>(planes, plane_size, x.data<T>(), y.data<T>(), ctx.num_threads);
      });
      return Status::Ok();
    }
    ref::PoolParams p = params_;
    p.num_threads = ctx.num_threads;
    if (kind_ == PoolKind::kAverage) {
      DispatchF32OrF64(dtype_,
                       [&]<typename T>() { ref::AveragePool<T>(p, x.data<T>(), y.data<T>()); });
      return Status::Ok();
    }
    int64_t* indices = outputs.size() > 1 && outputs[1] ? outputs[1]->data<int64_t>() : nullptr;
    switch (dtype_) {
      case DType::kI8:
        ref::MaxPool(p, x.data<int8_t>(), y.data<int8_t>(), indices);
        break;
      case DType::kU8:
        ref::MaxPool(p, x.data<uint8_t>(), y.data<uint8_t>(), indices);
        break;
      default:
        DispatchF32OrF64(
            dtype_, [&]<typename T>() { ref::MaxPool<T>(p, x.data<T>(), y.data<T>(), indices); });
    }
    return Status::Ok();
  }

  std::string impl_name() const override { return "ref"; }

 private:
  PoolOp(const ir::Node& node, DType dtype, PoolKind kind)
      : node_(node), dtype_(dtype), kind_(kind) {}

  Status Resolve(const Shape& x) {
    if (x.size() < 3) {
      return InvalidArgument("{}: input X {} must have rank >= 3 (N, C, spatial...)",
                             node_.Describe(), ShapeToString(x));
    }
    if (kind_ == PoolKind::kGlobalMax || kind_ == PoolKind::kGlobalAverage) {
      x_shape_ = x;
      resolved_ = true;
      return Status::Ok();
    }
    WBS_ASSIGN_OR_RETURN(params_, ResolvePoolParams(node_, x));
    x_shape_ = x;
    resolved_ = true;
    return Status::Ok();
  }

  ir::Node node_;
  DType dtype_;
  PoolKind kind_;
  bool resolved_ = false;
  Shape x_shape_;
  ref::PoolParams params_;
};

}  // namespace

void RegisterNnOperators() {
  RegisterOperator("Conv", Backend::kReference,
                   [](const OpCreateArgs& a) { return ConvOp::Create(a, false); });
  RegisterOperator("ConvTranspose", Backend::kReference,
                   [](const OpCreateArgs& a) { return ConvOp::Create(a, true); });
  RegisterOperator("MaxPool", Backend::kReference,
                   [](const OpCreateArgs& a) { return PoolOp::Create(a, PoolKind::kMax); });
  RegisterOperator("AveragePool", Backend::kReference,
                   [](const OpCreateArgs& a) { return PoolOp::Create(a, PoolKind::kAverage); });
  RegisterOperator("GlobalMaxPool", Backend::kReference,
                   [](const OpCreateArgs& a) { return PoolOp::Create(a, PoolKind::kGlobalMax); });
  RegisterOperator("GlobalAveragePool", Backend::kReference, [](const OpCreateArgs& a) {
    return PoolOp::Create(a, PoolKind::kGlobalAverage);
  });
  RegisterNnMathOperators();
}

}  // namespace wbs::runtime

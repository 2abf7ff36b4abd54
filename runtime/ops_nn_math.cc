// Reference operators for Gemm, MatMul, BatchNormalization (inference),
// Softmax, LogSoftmax and LRN.
#include <memory>

#include "kernels/ref/gemm.h"
#include "kernels/ref/norm.h"
#include "kernels/ref/softmax.h"
#include "runtime/operator.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime {
namespace {

namespace ref = kernels::ref;

// Common scaffolding: a copy of the node, the element type, the
// run-time shape check and the dtype check of input 0.
class NnOp : public Operator {
 public:
  std::string impl_name() const override { return "ref"; }

 protected:
  NnOp(const ir::Node& node, DType dtype) : node_(node), dtype_(dtype) {}

  Status Prepare(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs) {
    WBS_RETURN_IF_ERROR(CheckRunShapes(node_, inputs, outputs));
    if (inputs[0]->dtype() != dtype_) {
      return InvalidArgument("{}: input 0 is {}, the operator was created for {}",
                             node_.Describe(), inputs[0]->Describe(), DTypeName(dtype_));
    }
    return Status::Ok();
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  DType dtype_;
};

DType Input0DType(const OpCreateArgs& args) {
  return args.inputs.empty() ? DType::kUndefined : args.inputs[0].dtype;
}

class GemmOp final : public NnOp {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    WBS_RETURN_IF_ERROR(RequireF32OrF64(node, Input0DType(args), "input A"));
    auto op = std::unique_ptr<GemmOp>(new GemmOp(node, Input0DType(args)));
    op->params_.trans_a = node.GetInt("transA", 0) != 0;
    op->params_.trans_b = node.GetInt("transB", 0) != 0;
    op->params_.alpha = node.GetFloat("alpha", 1.0f);
    op->params_.beta = node.GetFloat("beta", 1.0f);
    WBS_ASSIGN_OR_RETURN(op->params_.activation, FusedActivationOf(node));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(Prepare(inputs, outputs));
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    const Tensor* c = InputOrNull(inputs, 2);
    ref::GemmParams p = params_;
    p.m = a.dim(p.trans_a ? 1 : 0);
    p.k = a.dim(p.trans_a ? 0 : 1);
    p.n = b.dim(p.trans_b ? 0 : 1);
    p.num_threads = ctx.num_threads;
    if (c) {
      // Unidirectional broadcast of C (rank <= 2) to [M, N].
      const int r = c->rank();
      const int64_t rows = r == 2 ? c->dim(0) : 1;
      const int64_t cols = r >= 1 ? c->dim(-1) : 1;
      p.c_stride_n = cols == 1 ? 0 : 1;
      p.c_stride_m = rows == 1 ? 0 : cols;
    }
    Tensor& y = *outputs[0];
    DispatchF32OrF64(dtype_, [&]<typename T>() {
      ref::Gemm<T>(p, a.data<T>(), b.data<T>(), c ? c->data<T>() : nullptr, y.data<T>());
    });
    return Status::Ok();
  }

 private:
  using NnOp::NnOp;
  ref::GemmParams params_;
};

class MatMulOp final : public NnOp {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    WBS_RETURN_IF_ERROR(RequireF32OrF64(node, Input0DType(args), "input A"));
    auto op = std::unique_ptr<MatMulOp>(new MatMulOp(node, Input0DType(args)));
    WBS_ASSIGN_OR_RETURN(op->activation_, FusedActivationOf(node));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(Prepare(inputs, outputs));
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    ref::MatMulParams p;
    p.activation = activation_;
    p.num_threads = ctx.num_threads;
    // numpy: 1-D A is [1, K], 1-D B is [K, 1].
    const Shape as = a.rank() == 1 ? Shape{1, a.dim(0)} : a.shape();
    const Shape bs = b.rank() == 1 ? Shape{b.dim(0), 1} : b.shape();
    const size_t ra = as.size(), rb = bs.size();
    p.m = as[ra - 2];
    p.k = as[ra - 1];
    p.n = bs[rb - 1];
    const size_t nb = std::max(ra, rb) - 2;
    p.batch_shape.assign(nb, 1);
    p.a_batch_strides.assign(nb, 0);
    p.b_batch_strides.assign(nb, 0);
    // Right-aligned batch dims; a dim of size 1 (or missing) broadcasts.
    int64_t a_stride = p.m * p.k, b_stride = p.k * p.n;
    for (size_t i = 0; i < nb; ++i) {
      const size_t d = nb - 1 - i;
      const int64_t da = i < ra - 2 ? as[ra - 3 - i] : 1;
      const int64_t db = i < rb - 2 ? bs[rb - 3 - i] : 1;
      p.batch_shape[d] = std::max(da, db);
      if (da == 0 || db == 0) p.batch_shape[d] = 0;
      p.a_batch_strides[d] = da == 1 ? 0 : a_stride;
      p.b_batch_strides[d] = db == 1 ? 0 : b_stride;
      a_stride *= da;
      b_stride *= db;
    }
    Tensor& y = *outputs[0];
    if (y.numel() == 0) return Status::Ok();
    DispatchF32OrF64(dtype_, [&]<typename T>() {
      ref::MatMul<T>(p, a.data<T>(), b.data<T>(), y.data<T>());
    });
    return Status::Ok();
  }

 private:
  using NnOp::NnOp;
  ref::Activation activation_;
};

class BatchNormOp final : public NnOp {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    const DType dtype = Input0DType(args);
    WBS_RETURN_IF_ERROR(RequireF32OrF64(node, dtype, "input X"));
    for (size_t i = 1; i < args.inputs.size(); ++i) {
      if (args.inputs[i].dtype != dtype) {
        return Unimplemented("{}: input {} has dtype {}, different from X ({}) ", node.Describe(),
                             i, DTypeName(args.inputs[i].dtype), DTypeName(dtype));
      }
    }
    if (node.GetInt("training_mode", 0) != 0)
      return Unimplemented("{}: training_mode=1 is not supported (inference only)",
                           node.Describe());
    for (size_t i = 1; i < node.outputs.size(); ++i) {
      if (node.outputs[i]) {
        return Unimplemented(
            "{}: output {} (running/saved statistics) is not supported (inference only)",
            node.Describe(), i);
      }
    }
    auto op = std::unique_ptr<BatchNormOp>(new BatchNormOp(node, dtype));
    op->params_.epsilon = node.GetFloat("epsilon", 1e-5f);
    op->params_.per_activation = node.opset < 9 && node.GetInt("spatial", 1) == 0;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(Prepare(inputs, outputs));
    for (size_t i = 1; i < 5; ++i) {
      if (inputs[i]->dtype() != dtype_)
        return InvalidArgument("{}: input {} is {}, expected {}", node_.Describe(), i,
                               inputs[i]->Describe(), DTypeName(dtype_));
    }
    const Tensor& x = *inputs[0];
    ref::BatchNormParams p = params_;
    p.batch = x.dim(0);
    p.channels = x.dim(1);
    p.spatial = p.batch * p.channels == 0 ? 0 : x.numel() / (p.batch * p.channels);
    p.num_threads = ctx.num_threads;
    Tensor& y = *outputs[0];
    DispatchF32OrF64(dtype_, [&]<typename T>() {
      ref::BatchNormInference<T>(p, x.data<T>(), inputs[1]->data<T>(), inputs[2]->data<T>(),
                                 inputs[3]->data<T>(), inputs[4]->data<T>(), y.data<T>());
    });
    return Status::Ok();
  }

 private:
  using NnOp::NnOp;
  ref::BatchNormParams params_;
};

// Softmax and LogSoftmax.
class SoftmaxOp final : public NnOp {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, bool log) {
    const ir::Node& node = *args.node;
    WBS_RETURN_IF_ERROR(RequireF32OrF64(node, Input0DType(args), "input"));
    auto op = std::unique_ptr<SoftmaxOp>(new SoftmaxOp(node, Input0DType(args)));
    op->log_ = log;
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(Prepare(inputs, outputs));
    const Tensor& x = *inputs[0];
    if (x.numel() == 0) return Status::Ok();
    // Opset < 13: the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])]
    // and each row is normalised; opset >= 13: only dim `axis` is.
    const bool coerce = node_.opset < 13;
    WBS_ASSIGN_OR_RETURN(const int axis,
                         ir::NormalizeAxis(node_.GetInt("axis", coerce ? 1 : -1), x.rank(), node_));
    ref::SoftmaxParams p;
    p.log = log_;
    p.num_threads = ctx.num_threads;
    for (int i = 0; i < axis; ++i) p.outer *= x.dim(i);
    p.axis_size = x.rank() == 0 ? 1 : x.dim(axis);
    for (int i = axis + 1; i < x.rank(); ++i) {
      if (coerce) p.axis_size *= x.dim(i);
      else p.inner *= x.dim(i);
    }
    Tensor& y = *outputs[0];
    DispatchF32OrF64(dtype_, [&]<typename T>() { ref::Softmax<T>(p, x.data<T>(), y.data<T>()); });
    return Status::Ok();
  }

 private:
  using NnOp::NnOp;
  bool log_ = false;
};

class LrnOp final : public NnOp {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const ir::Node& node = *args.node;
    WBS_RETURN_IF_ERROR(RequireF32OrF64(node, Input0DType(args), "input X"));
    auto op = std::unique_ptr<LrnOp>(new LrnOp(node, Input0DType(args)));
    op->params_.size = node.GetInt("size", 0);
    if (op->params_.size < 1)
      return InvalidArgument("{}: size {} must be >= 1", node.Describe(), op->params_.size);
    op->params_.alpha = node.GetFloat("alpha", 1e-4f);
    op->params_.beta = node.GetFloat("beta", 0.75f);
    op->params_.bias = node.GetFloat("bias", 1.0f);
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    WBS_RETURN_IF_ERROR(Prepare(inputs, outputs));
    const Tensor& x = *inputs[0];
    if (x.numel() == 0) return Status::Ok();
    ref::LrnParams p = params_;
    p.batch = x.dim(0);
    p.channels = x.dim(1);
    p.spatial = x.numel() / (p.batch * p.channels);
    p.num_threads = ctx.num_threads;
    Tensor& y = *outputs[0];
    DispatchF32OrF64(dtype_, [&]<typename T>() { ref::Lrn<T>(p, x.data<T>(), y.data<T>()); });
    return Status::Ok();
  }

 private:
  using NnOp::NnOp;
  ref::LrnParams params_;
};

}  // namespace

void RegisterNnMathOperators() {
  RegisterOperator("Gemm", Backend::kReference, GemmOp::Create);
  RegisterOperator("MatMul", Backend::kReference, MatMulOp::Create);
  RegisterOperator("BatchNormalization", Backend::kReference, BatchNormOp::Create);
  RegisterOperator("Softmax", Backend::kReference,
                   [](const OpCreateArgs& a) { return SoftmaxOp::Create(a, false); });
  RegisterOperator("LogSoftmax", Backend::kReference,
                   [](const OpCreateArgs& a) { return SoftmaxOp::Create(a, true); });
  RegisterOperator("LRN", Backend::kReference, LrnOp::Create);
}

}  // namespace wbs::runtime

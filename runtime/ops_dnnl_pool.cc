// oneDNN fast paths for MaxPool, AveragePool, GlobalMaxPool and
// GlobalAveragePool (f32, 1-3 spatial dims). The window geometry (auto_pad,
// ceil_mode, dilations, pads) comes from ir/conv_geometry.h, like the
// reference operator's. Declines: other dtypes, a requested MaxPool Indices
// output, and (kernels/dnnl/pool.h) windows oneDNN would compute differently
// from ONNX. See ops_dnnl_internal.h for the life cycle.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "core/env.h"
#include "core/logging.h"
#include "ir/conv_geometry.h"
#include "kernels/dnnl/pool.h"
#include "kernels/ref/conv.h"
#include "kernels/x86/plain_avg_pool.h"
#include "kernels/x86/plain_global_pool.h"
#include "kernels/x86/plain_max_pool.h"
#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime::dnnl_ops {
namespace {

namespace onednn = kernels::onednn;

enum class PoolOpKind { kMax, kAverage, kGlobalMax, kGlobalAverage };

// WBS_PLAIN_POOL=0 keeps oneDNN for max, average and global average pools
// whose input arrives plain (A/B measurements of kernels/x86/plain_max_pool.h's,
// plain_avg_pool.h's and plain_global_pool.h's kernels).
bool PlainPoolEnabled() {
  static const bool enabled = EnvSwitchOn(
      "WBS_PLAIN_POOL",
      "WBS_PLAIN_POOL=0: plain-input max / average / global average pools run on oneDNN");
  return enabled;
}

class DnnlPoolOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, PoolOpKind kind) {
    if (!DnnlEnabled()) return std::unique_ptr<Operator>();
    const auto& in = args.inputs;
    const bool wants_indices = args.outputs.size() > 1 && args.outputs[1].present;
    if (in.empty() || !in[0].present || in[0].dtype != DType::kF32 || args.outputs.empty() ||
        args.outputs[0].dtype != DType::kF32 || wants_indices) {
      return std::unique_ptr<Operator>();
    }
    if (in[0].has_shape &&
        (in[0].rank() < 3 || in[0].rank() - 2 > kernels::ref::kMaxConvSpatialRank))
      return std::unique_ptr<Operator>();
    auto op = std::unique_ptr<DnnlPoolOp>(new DnnlPoolOp(*args.node, kind));
    if (IsStatic(in[0])) {
      // Build now so an unsupported window declines instead of falling back
      // at run time; the entry is reused when Run() has the same threads.
      Result<Entry*> e = op->Lookup(in[0].shape, CurrentThreads());
      if (!e.ok() || (*e)->prim == nullptr) return std::unique_ptr<Operator>();
      op->impl_ = "onednn:" + (*e)->prim->impl_name();
      op->static_entry_ = *e;
      op->x_shape_ = in[0].shape;
      if ((kind == PoolOpKind::kMax || kind == PoolOpKind::kAverage) && PlainPoolEnabled()) {
        // The same window geometry (ir/conv_geometry.h) as the primitive's.
        Result<kernels::ref::PoolParams> p = ResolvePoolParams(*args.node, in[0].shape);
        const bool max = kind == PoolOpKind::kMax;
        if (p.ok() && (max ? kernels::x86::PlainMaxPoolSupports(*p)
                           : kernels::x86::PlainAvgPoolSupports(*p, CurrentThreads()))) {
          op->plain_params_ = std::make_unique<kernels::ref::PoolParams>(*p);
          op->dnnl_impl_ = op->impl_;
          // Until the input is negotiated non-plain.
          op->impl_ = max ? kernels::x86::PlainMaxPoolName() : kernels::x86::PlainAvgPoolName();
        }
        if (max && p.ok() && kernels::x86::NhwcToPlainMaxPoolSupports(*p))
          op->nhwc_params_ = std::make_unique<kernels::ref::PoolParams>(*p);
      }
      if (kind == PoolOpKind::kGlobalAverage && PlainPoolEnabled() &&
          kernels::x86::PlainGlobalAvgPoolSupported()) {
        op->plain_gap_ = true;
        op->dnnl_impl_ = op->impl_;
        op->impl_ = kernels::x86::PlainGlobalAvgPoolName();  // until X is negotiated non-plain
      }
    }
    WBS_ASSIGN_OR_RETURN(op->fallback_, CreateFallback(args));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    if (inputs.empty() || inputs[0] == nullptr || outputs.empty() || outputs[0] == nullptr)
      return InvalidArgument("{}: missing input X or output Y", node_.Describe());
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    if (x.dtype() != DType::kF32 || y.dtype() != DType::kF32) {
      return InvalidArgument("{}: X {} and Y {} must be f32 (the operator was created for f32)",
                             node_.Describe(), x.Describe(), y.Describe());
    }
    if (!NonPlain() && (x.rank() < 3 || x.rank() - 2 > kernels::ref::kMaxConvSpatialRank))
      return fallback_->Run(inputs, outputs, ctx);
    if (plain_params_ && !NonPlain() && x.shape() == x_shape_) {
      if (y.shape() != static_entry_->y_shape)
        return InvalidArgument("{}: output Y is {} but X {} gives {}", node_.Describe(),
                               y.Describe(), x.Describe(), ShapeToString(static_entry_->y_shape));
      if (kind_ == PoolOpKind::kAverage)
        kernels::x86::PlainAvgPoolF32(*plain_params_, x.data<float>(), y.data<float>(),
                                      std::max(1, ctx.num_threads));
      else
        kernels::x86::PlainMaxPoolF32(*plain_params_, x.data<float>(), y.data<float>(),
                                      std::max(1, ctx.num_threads));
      return Status::Ok();
    }
    if (nhwc_to_plain_ && x.shape() == x_shape_) {
      if (y.shape() != static_entry_->y_shape)
        return InvalidArgument("{}: output Y is {} but X {} gives {}", node_.Describe(),
                               y.Describe(), x.Describe(), ShapeToString(static_entry_->y_shape));
      kernels::x86::NhwcToPlainMaxPoolF32(*nhwc_params_, x.data<float>(), y.data<float>(),
                                          std::max(1, ctx.num_threads));
      return Status::Ok();
    }
    if (plain_gap_ && !NonPlain() && x.shape() == x_shape_) {
      if (y.shape() != static_entry_->y_shape)
        return InvalidArgument("{}: output Y is {} but X {} gives {}", node_.Describe(),
                               y.Describe(), x.Describe(), ShapeToString(static_entry_->y_shape));
      const int64_t planes = x.dim(0) * x.dim(1);
      kernels::x86::PlainGlobalAvgPoolF32(planes, x.numel() / std::max<int64_t>(planes, 1),
                                          x.data<float>(), y.data<float>(),
                                          std::max(1, ctx.num_threads));
      return Status::Ok();
    }
    UseThreads(ctx);
    WBS_ASSIGN_OR_RETURN(Entry * e, Lookup(x.shape(), CurrentThreads()));
    if (e->prim == nullptr) {
      if (NonPlain())
        return Internal("{}: no oneDNN primitive for X {} but its tensors are not plain",
                        node_.Describe(), x.Describe());
      return fallback_->Run(inputs, outputs, ctx);
    }
    if (y.shape() != e->y_shape) {
      return InvalidArgument("{}: output Y is {} but X {} gives {}", node_.Describe(), y.Describe(),
                             x.Describe(), ShapeToString(e->y_shape));
    }
    return e->prim->Execute(x.data<float>(), y.data<float>());
  }

  std::string impl_name() const override { return impl_; }

  // Layout negotiation (runtime/operator.h), for the shape known at
  // creation: X may arrive in any layout that fits; the pool then computes
  // in that layout when oneDNN has a jit kernel for it (else it reorders),
  // and Y leaves in the layout it computed in.
  bool AcceptsInputLayout(size_t input, ActivationLayout layout) const override {
    if (layout == ActivationLayout::kPlain) return true;
    return input == 0 && static_entry_ != nullptr && LayoutFits(layout, x_shape_);
  }

  std::vector<ActivationLayout> ProposeOutputLayouts(
      const std::vector<ActivationLayout>& inputs) override {
    x_layout_ = inputs.empty() ? ActivationLayout::kPlain : inputs[0];
    if (static_entry_ == nullptr) return {};
    // A plain input stays plain through our kernel (no reorders).
    if (plain_params_ || plain_gap_) {
      if (x_layout_ == ActivationLayout::kPlain) return {ActivationLayout::kPlain};
      impl_ = dnnl_impl_;
    }
    if (x_layout_ != ActivationLayout::kPlain &&
        static_entry_->prim->internal_layout() != x_layout_) {
      const onednn::PoolLayout want =
          x_layout_ == ActivationLayout::kBlocked16 || x_layout_ == ActivationLayout::kBlocked8
              ? onednn::PoolLayout::kBlocked
              : onednn::PoolLayout::kChannelsLast;
      Result<Entry> e = BuildEntry(x_shape_, want);
      if (e.ok() && e->prim != nullptr && e->prim->internal_layout() == x_layout_) {
        *static_entry_ = std::move(e).value();
        impl_ = "onednn:" + static_entry_->prim->impl_name();
      }
    }
    const ActivationLayout y = static_entry_->prim->internal_layout();
    return {y != ActivationLayout::kCount && LayoutFits(y, static_entry_->y_shape)
                ? y
                : ActivationLayout::kPlain};
  }

  Status SetOutputLayouts(const std::vector<ActivationLayout>& outputs) override {
    y_layout_ = outputs.empty() ? ActivationLayout::kPlain : outputs[0];
    // Channels-last in, plain out (the readers want plain): our kernel
    // instead of oneDNN's pool writing plain output from a channels-last
    // source (kernels/x86/plain_max_pool.h).
    nhwc_to_plain_ = nhwc_params_ && PlainPoolEnabled() &&
                     x_layout_ == ActivationLayout::kChannelsLast &&
                     y_layout_ == ActivationLayout::kPlain;
    if (nhwc_to_plain_) impl_ = "wbs:maxpool_nhwc_to_plain_avx512";
    if (!NonPlain()) return Status::Ok();
    if (static_entry_ == nullptr)
      return Internal("{}: layouts negotiated without a primitive", node_.Describe());
    for (auto& [key, e] : cache_)
      if (e.prim) WBS_RETURN_IF_ERROR(e.prim->SetBoundaryLayouts(x_layout_, y_layout_));
    return Status::Ok();
  }

 private:
  struct Entry {
    std::unique_ptr<onednn::PoolPrimitive> prim;  // nullptr: the fallback runs
    Shape y_shape;
  };

  bool NonPlain() const {
    return x_layout_ != ActivationLayout::kPlain || y_layout_ != ActivationLayout::kPlain;
  }

  DnnlPoolOp(const ir::Node& node, PoolOpKind kind) : node_(node), kind_(kind) {}

  // The oneDNN problem for X of rank >= 3; errors are the shape rule's.
  Result<onednn::PoolSpec> Spec(const Shape& x) const {
    const size_t n = x.size() - 2;
    onednn::PoolSpec s;
    s.src_dims = x;
    s.dst_dims = {x[0], x[1]};
    if (kind_ == PoolOpKind::kGlobalMax || kind_ == PoolOpKind::kGlobalAverage) {
      s.algorithm = kind_ == PoolOpKind::kGlobalMax ? onednn::PoolAlgorithm::kMax
                                                    : onednn::PoolAlgorithm::kAverageExcludePad;
      s.kernel.assign(x.begin() + 2, x.end());
      s.dst_dims.resize(x.size(), 1);
      s.strides.assign(n, 1);
      s.dilations.assign(n, 1);
      s.pad_begin.assign(n, 0);
      s.pad_end.assign(n, 0);
      s.ceil_extra_end.assign(n, 0);
      return s;
    }
    const Shape spatial(x.begin() + 2, x.end());
    WBS_ASSIGN_OR_RETURN(ir::WindowAttrs attrs,
                         ir::ParseWindowAttrs(node_, static_cast<int>(n), {}));
    WBS_ASSIGN_OR_RETURN(ir::WindowGeometry g, ir::ComputeWindowGeometry(node_, attrs, spatial));
    if (kind_ == PoolOpKind::kMax) {
      s.algorithm = onednn::PoolAlgorithm::kMax;
    } else {
      s.algorithm = node_.GetInt("count_include_pad", 0) == 1
                        ? onednn::PoolAlgorithm::kAverageIncludePad
                        : onednn::PoolAlgorithm::kAverageExcludePad;
    }
    s.dst_dims.insert(s.dst_dims.end(), g.output.begin(), g.output.end());
    s.kernel = g.kernel;
    s.strides = g.strides;
    s.dilations = g.dilations;
    s.pad_begin = g.pad_begin;
    s.pad_end = g.pad_end;
    s.ceil_extra_end = g.ceil_extra_end;
    return s;
  }

  // The cached entry for an input shape, built on first use in the
  // negotiated boundary layouts.
  Result<Entry*> Lookup(const Shape& x, int threads) {
    const std::vector<int64_t> key = RunKey({&x}, threads);
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    WBS_ASSIGN_OR_RETURN(Entry e, BuildEntry(x, onednn::PoolLayout::kAuto));
    if (e.prim && NonPlain()) WBS_RETURN_IF_ERROR(e.prim->SetBoundaryLayouts(x_layout_, y_layout_));
    WBS_LOG_DEBUG("{}: {} for X {} ({} threads)", node_.Describe(),
                  e.prim ? "oneDNN " + e.prim->impl_name() : std::string("reference fallback"),
                  ShapeToString(x), threads);
    return &cache_.emplace(key, std::move(e)).first->second;
  }

  // An entry for X computing in `layout` first. Invalid geometry is an
  // error (the reference would report the same); a problem oneDNN declines
  // gives an entry without a primitive.
  Result<Entry> BuildEntry(const Shape& x, onednn::PoolLayout layout) {
    WBS_ASSIGN_OR_RETURN(onednn::PoolSpec spec, Spec(x));
    Entry e;
    e.y_shape = spec.dst_dims;
    // Empty tensors run on the reference (oneDNN rejects some zero dims).
    const bool empty = NumElements(x) == 0 || NumElements(e.y_shape) == 0;
    auto prim = empty ? Result<std::unique_ptr<onednn::PoolPrimitive>>(
                            Unimplemented("{}: empty tensor", node_.Describe()))
                      : onednn::PoolPrimitive::Create(spec, layout);
    if (prim.ok()) {
      e.prim = std::move(prim).value();
    } else {
      WBS_LOG_DEBUG("{}: no oneDNN primitive for X {}: {}", node_.Describe(), ShapeToString(x),
                    prim.status().message());
    }
    return e;
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  PoolOpKind kind_;
  std::string impl_ = "onednn";
  std::map<std::vector<int64_t>, Entry> cache_;
  Entry* static_entry_ = nullptr;  // the entry for the shape known at creation
  Shape x_shape_;                  // that shape
  ActivationLayout x_layout_ = ActivationLayout::kPlain;  // negotiated
  ActivationLayout y_layout_ = ActivationLayout::kPlain;
  std::unique_ptr<Operator> fallback_;
  // A max pool kernels/x86/plain_max_pool.h takes (an average pool
  // plain_avg_pool.h takes): runs there whenever X and Y are plain (else
  // oneDNN's primitive, named dnnl_impl_).
  std::unique_ptr<kernels::ref::PoolParams> plain_params_;
  // A max pool NhwcToPlainMaxPoolF32 takes, and whether the negotiated
  // layouts (channels-last X, plain Y) run it.
  std::unique_ptr<kernels::ref::PoolParams> nhwc_params_;
  bool nhwc_to_plain_ = false;
  // A global average pool kernels/x86/plain_global_pool.h runs whenever X
  // and Y are plain (else dnnl_impl_).
  bool plain_gap_ = false;
  std::string dnnl_impl_;
};

}  // namespace

void RegisterPoolOperators() {
  RegisterOperator("MaxPool", Backend::kFast,
                   [](const OpCreateArgs& a) { return DnnlPoolOp::Create(a, PoolOpKind::kMax); });
  RegisterOperator("AveragePool", Backend::kFast, [](const OpCreateArgs& a) {
    return DnnlPoolOp::Create(a, PoolOpKind::kAverage);
  });
  RegisterOperator("GlobalMaxPool", Backend::kFast, [](const OpCreateArgs& a) {
    return DnnlPoolOp::Create(a, PoolOpKind::kGlobalMax);
  });
  RegisterOperator("GlobalAveragePool", Backend::kFast, [](const OpCreateArgs& a) {
    return DnnlPoolOp::Create(a, PoolOpKind::kGlobalAverage);
  });
}

}  // namespace wbs::runtime::dnnl_ops

// oneDNN fast paths for Conv and ConvTranspose (f32, constant weights, 1-3
// spatial dims, any group/stride/dilation/padding, optional bias, fused
// residual (Conv) and activation as post-ops). See ops_dnnl_internal.h for the life cycle and
// kernels/dnnl/conv.h for the layout policy.
#include <map>
#include <memory>
#include <vector>

#include "core/logging.h"
#include "kernels/dnnl/conv.h"
#include "kernels/x86/interleave_f32.h"
#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"
#include "runtime/ops_nn_common.h"

namespace wbs::runtime::dnnl_ops {
namespace {

namespace onednn = kernels::onednn;

class DnnlConvOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, bool transpose) {
    if (!DnnlEnabled()) return std::unique_ptr<Operator>();
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    const bool has_bias = in.size() > 2 && in[2].present;
    // A fused residual (ir/graph.h), Conv only.
    const bool residual = !transpose && in.size() > 3 && in[3].present;
    // Declines: the reference operator handles (or reports) everything else.
    if (in.size() < 2 || !in[0].present || !in[1].present || in[0].dtype != DType::kF32 ||
        in[1].dtype != DType::kF32 || (has_bias && in[2].dtype != DType::kF32) ||
        (residual && in[3].dtype != DType::kF32) || (transpose && in.size() > 3) ||
        in[1].value == nullptr || args.outputs.empty() || args.outputs[0].dtype != DType::kF32) {
      return std::unique_ptr<Operator>();
    }
    const Tensor& w = *in[1].value;
    if (w.dtype() != DType::kF32 || w.rank() < 3 || w.rank() > 5)
      return std::unique_ptr<Operator>();
    if (in[0].has_shape && in[0].rank() != w.rank()) return std::unique_ptr<Operator>();
    if (!FusedActivationOf(node).ok()) return std::unique_ptr<Operator>();

    auto op = std::unique_ptr<DnnlConvOp>(new DnnlConvOp(node, transpose, has_bias, residual, w));
    if (IsStatic(in[0])) {
      // Build now so an unsupported shape declines instead of falling back
      // at run time; the entry is reused when Run() has the same threads.
      Result<Entry*> e = op->Lookup(in[0].shape, CurrentThreads());
      if (!e.ok() || (*e)->prim == nullptr) return std::unique_ptr<Operator>();
      op->impl_ = "onednn:" + (*e)->prim->impl_name();
      op->static_entry_ = *e;
      op->x_shape_ = in[0].shape;
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
    const Tensor* b = InputOrNull(inputs, 2);
    if ((b != nullptr) != has_bias_ ||
        (b && (b->dtype() != DType::kF32 || b->shape() != Shape{e->y_shape[1]}))) {
      return InvalidArgument("{}: bias must be f32[{}], got {}", node_.Describe(), e->y_shape[1],
                             b ? b->Describe() : "none");
    }
    const Tensor* r = InputOrNull(inputs, 3);
    if ((r != nullptr) != residual_ ||
        (r && (r->dtype() != DType::kF32 || r->shape() != e->y_shape))) {
      return InvalidArgument("{}: residual must be f32{}, got {}", node_.Describe(),
                             ShapeToString(e->y_shape), r ? r->Describe() : "none");
    }
    if (r && r->data<float>() == y.data<float>()) {
      // oneDNN's sum would read what it writes (the session never aliases).
      if (NonPlain())
        return Internal("{}: the residual aliases Y in a non-plain layout", node_.Describe());
      return fallback_->Run(inputs, outputs, ctx);
    }
    const float* xs = x.data<float>();
    if (interleave_x_ && e == static_entry_) {
      // A plain 3-channel input for a channels-last primitive: our
      // interleave instead of its reorder (kernels/x86/interleave_f32.h).
      x_cl_.resize(static_cast<size_t>(x.numel()));
      kernels::x86::PlainToChannelsLast3(xs, x_cl_.data(), x_shape_[0],
                                         x.numel() / (3 * x_shape_[0]), CurrentThreads());
      xs = x_cl_.data();
    }
    return e->prim->Execute(xs, e->weights, b ? b->data<float>() : nullptr, y.data<float>(),
                            r ? r->data<float>() : nullptr);
  }

  std::string impl_name() const override { return impl_; }

  // Layout negotiation (runtime/operator.h), for the shape known at
  // creation: X and the residual may arrive in any layout that fits (the
  // primitive converts them to its own), and Y leaves in the primitive's
  // own layout. The primitive keeps its layout choice (kernels/dnnl/conv.h)
  // whatever X arrives in: making 3x3 layers follow blocked 1x1 neighbours
  // measured slower on ResNet-50 (jit blocked 3x3 convs cost more than the
  // blocked <-> channels-last reorders they avoid). A residual that arrives
  // in the primitive's destination layout is read in place (binary-add
  // post-op) instead of being copied into the destination first.
  bool AcceptsInputLayout(size_t input, ActivationLayout layout) const override {
    if (layout == ActivationLayout::kPlain) return true;
    if (static_entry_ == nullptr) return false;
    if (input == 0) return LayoutFits(layout, x_shape_);
    return input == kResidualInput && residual_ && LayoutFits(layout, static_entry_->y_shape);
  }

  std::vector<ActivationLayout> ProposeOutputLayouts(
      const std::vector<ActivationLayout>& inputs) override {
    auto at = [&](size_t i) { return i < inputs.size() ? inputs[i] : ActivationLayout::kPlain; };
    x_layout_ = at(0);
    r_layout_ = at(kResidualInput);
    if (static_entry_ == nullptr) return {};
    const ActivationLayout y = static_entry_->prim->internal_dst_layout();
    return {y != ActivationLayout::kCount && LayoutFits(y, static_entry_->y_shape)
                ? y
                : ActivationLayout::kPlain};
  }

  Status SetOutputLayouts(const std::vector<ActivationLayout>& outputs) override {
    y_layout_ = outputs.empty() ? ActivationLayout::kPlain : outputs[0];
    WBS_RETURN_IF_ERROR(SetBoundaries());
    // A plain RGB input (a model's input) for a primitive computing
    // channels-last (the stem: ResNet-50's conv1) is interleaved by us, and
    // the primitive told it arrives channels-last.
    interleave_x_ = static_entry_ != nullptr && static_entry_->prim != nullptr && !transpose_ &&
                    x_layout_ == ActivationLayout::kPlain && x_shape_.size() == 4 &&
                    x_shape_[1] == 3 &&
                    static_entry_->prim->internal_src_layout() == ActivationLayout::kChannelsLast &&
                    kernels::x86::Interleave3Supported();
    if (interleave_x_) {
      WBS_RETURN_IF_ERROR(static_entry_->prim->SetBoundaryLayouts(ActivationLayout::kChannelsLast,
                                                                  y_layout_, r_layout_));
      impl_ = "onednn:" + static_entry_->prim->impl_name() + "+interleave3";
    }
    return Status::Ok();
  }

 private:
  Status SetBoundaries() {
    if (!NonPlain()) return Status::Ok();
    if (static_entry_ == nullptr)
      return Internal("{}: layouts negotiated without a primitive", node_.Describe());
    if (residual_ && r_layout_ != ActivationLayout::kPlain &&
        r_layout_ == static_entry_->prim->internal_dst_layout()) {
      Result<Entry> in_place =
          BuildEntry(x_shape_, CurrentThreads(), static_entry_->prim->layout(), r_layout_);
      if (in_place.ok() && in_place->prim != nullptr) *static_entry_ = std::move(in_place).value();
    }
    for (auto& [key, e] : cache_)
      if (e.prim) WBS_RETURN_IF_ERROR(e.prim->SetBoundaryLayouts(x_layout_, y_layout_, r_layout_));
    return Status::Ok();
  }

  static constexpr size_t kResidualInput = 3;  // ir/graph.h

  struct Entry {
    std::unique_ptr<onednn::ConvPrimitive> prim;  // nullptr: the fallback runs
    dnnl::memory weights;
    Shape y_shape;
  };

  bool NonPlain() const {
    return x_layout_ != ActivationLayout::kPlain || y_layout_ != ActivationLayout::kPlain ||
           r_layout_ != ActivationLayout::kPlain;
  }

  DnnlConvOp(const ir::Node& node, bool transpose, bool has_bias, bool residual, const Tensor& w)
      : node_(node), transpose_(transpose), has_bias_(has_bias), residual_(residual), w_(w) {}

  // The cached entry for an input shape, built on first use in the
  // negotiated boundary layouts.
  Result<Entry*> Lookup(const Shape& x, int threads) {
    const std::vector<int64_t> key = RunKey({&x}, threads);
    auto it = cache_.find(key);
    if (it != cache_.end()) return &it->second;
    WBS_ASSIGN_OR_RETURN(Entry e, BuildEntry(x, threads, RequestedConvLayout()));
    if (e.prim && NonPlain())
      WBS_RETURN_IF_ERROR(e.prim->SetBoundaryLayouts(x_layout_, y_layout_, r_layout_));
    return &cache_.emplace(key, std::move(e)).first->second;
  }

  // An entry for X computing in `layout` first (kernels/dnnl/conv.h).
  // Invalid geometry is an error (the reference would report the same); a
  // geometry oneDNN rejects gives an entry without a primitive.
  Result<Entry> BuildEntry(const Shape& x, int threads, onednn::ConvLayout layout,
                           ActivationLayout residual_layout = ActivationLayout::kCount) {
    WBS_ASSIGN_OR_RETURN(kernels::ref::ConvParams p,
                         ResolveConvParams(node_, x, w_.shape(), transpose_));
    Entry e;
    e.y_shape = {p.batch, p.out_channels};
    for (int i = kernels::ref::kMaxConvSpatialRank - p.spatial_rank;
         i < kernels::ref::kMaxConvSpatialRank; ++i)
      e.y_shape.push_back(p.out[i]);
    // Empty tensors run on the reference (oneDNN rejects some zero dims).
    const bool empty = NumElements(x) == 0 || NumElements(e.y_shape) == 0;
    auto prim = empty ? Result<std::unique_ptr<onednn::ConvPrimitive>>(
                            Unimplemented("{}: empty tensor", node_.Describe()))
                      : onednn::ConvPrimitive::Create(p, transpose_, has_bias_, layout, residual_,
                                                      residual_layout);
    if (prim.ok()) {
      e.weights = packed_.Find((*prim)->weights_desc());
      if (!e.weights) {
        WBS_ASSIGN_OR_RETURN(e.weights, (*prim)->PackWeights(w_.data<float>()));
        packed_.Add((*prim)->weights_desc(), e.weights);
      }
      WBS_LOG_DEBUG("{}: oneDNN {} for X {} ({} threads)", node_.Describe(), (*prim)->impl_name(),
                    ShapeToString(x), threads);
      e.prim = std::move(prim).value();
    } else {
      WBS_LOG_DEBUG("{}: reference fallback for X {}: {}", node_.Describe(), ShapeToString(x),
                    prim.status().message());
    }
    return e;
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  bool transpose_;
  bool has_bias_;
  bool residual_;
  Tensor w_;  // shares the constant's storage
  std::string impl_ = "onednn";
  std::map<std::vector<int64_t>, Entry> cache_;
  Entry* static_entry_ = nullptr;  // the entry for the shape known at creation
  Shape x_shape_;                  // that shape
  // The negotiated layouts of X, Y and the residual.
  ActivationLayout x_layout_ = ActivationLayout::kPlain;
  ActivationLayout y_layout_ = ActivationLayout::kPlain;
  ActivationLayout r_layout_ = ActivationLayout::kPlain;
  PackedWeights packed_;
  std::unique_ptr<Operator> fallback_;
  bool interleave_x_ = false;  // X plain RGB, interleaved into x_cl_ for the static entry
  std::vector<float> x_cl_;
};

}  // namespace

void RegisterConvOperators() {
  RegisterOperator("Conv", Backend::kFast,
                   [](const OpCreateArgs& a) { return DnnlConvOp::Create(a, false); });
  RegisterOperator("ConvTranspose", Backend::kFast,
                   [](const OpCreateArgs& a) { return DnnlConvOp::Create(a, true); });
}

}  // namespace wbs::runtime::dnnl_ops

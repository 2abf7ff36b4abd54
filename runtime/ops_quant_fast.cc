// Fast int8 QConv / QGemm operators (docs/int8.md section 3, bit-exact with
// the reference operators of runtime/ops_quant.cc):
//   - int8 block-sparse (kernels/sparse/s8_bsr_conv_plan.h) when the s8
//     weight has all-zero 8x8 blocks and the cost rule below prefers it;
//   - else, on AVX-512 VNNI, the same int8 plan on the dense weight (the
//     VNNI kernel's dense rate is close to oneDNN's native int8, and kExact
//     pays an s32 output and a separate epilogue: ~2x slower on ResNet-50);
//   - else, when oneDNN's int8 jit kernels are not exact (no AVX-512 VNNI:
//     kernels/dnnl/conv_s8.h), the int8 plan on the dense weight for every
//     group-1 layer, also under WBS_SPARSE=0: our AVX2 kernel widens to
//     int16 before it multiplies, so it is exact where oneDNN saturates;
//   - else oneDNN int8 in kExact mode (kernels/dnnl/conv_s8.h: oneDNN only
//     accumulates, our epilogue requantizes), which also takes grouped and
//     depthwise convs (without VNNI through oneDNN's reference int8
//     implementation: exact, slow, logged);
//   - else the factory declines and the reference operator runs.
// Both fast paths take the (M_c, S_c), zero points and clamp bounds from
// ResolveQLinearQuant, the function the reference uses, so the integers are
// the same. Declined: f32 outputs (the dequantized logits: neither kernel
// writes f32), non-constant weights or biases, dynamic input shapes, 3-D
// convs. The IR has no quantized MatMul (QGemm covers it, docs/int8.md).
//
// Layouts (core/layout.h, negotiated by runtime/session.cc): both conv paths
// read and write kQuad4 (nChw4c, what the VNNI kernels consume) as well as
// plain, so a chain of int8 convs, adds and pools passes nChw4c tensors
// without a reorder; the layout change is folded into the copies the kernels
// make anyway (the sparse plan's input packing, oneDNN's padded input and
// our epilogue). QGemm stays plain.
//
// WBS_SPARSE (runtime/ops_sparse.h) applies here too: 0 never sparse, 1
// sparse whenever a zero block exists, auto the cost rule. WBS_DNNL=0 turns
// the oneDNN path off.
#include "runtime/ops_quant_fast.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/logging.h"
#include "kernels/dnnl/conv_s8.h"
#include "kernels/sparse/s8_bsr_conv_plan.h"
#include "kernels/sparse/s8_bsr_weight.h"
#include "kernels/sparse/s8_dispatch.h"
#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"
#include "runtime/ops_nn_common.h"
#include "runtime/ops_quant.h"
#include "runtime/ops_sparse.h"

namespace wbs::runtime {

namespace {

namespace ks = kernels::sparse;
namespace kref = kernels::ref;
using kernels::onednn::S8ConvMode;
using kernels::onednn::S8ConvPrimitive;

constexpr int kBlock = 8;

// The cost rule. t_sparse / t_dense ~ a * kept + b, least squares over the
// 72 1-thread (layer, sparsity) points of wbs_bench_s8 --layout=nchw (the
// runtime's layouts; ResNet-50's conv shapes + FC at 0 / 50 / 75%,
// docs/BENCHMARKS.md "Int8 block-sparse kernels", 2026-11-27 14:46 UTC):
// rms 0.116. A third term c / K (K = C * kh * kw: the per-output cost
// weighs ~1/K against the MACs) fits that data better (1.045 * kept + 0.128
// + 21.8 / K, rms 0.070), but its dense side is oneDNN kNative, and the
// runtime's dense path is kExact (oneDNN accumulates to s32 on a padded
// copy, our epilogue requantizes): on ResNet-50 at 50% the K term sent the
// five K = 64 1x1 layers to kExact, which took 0.3-4 ms each against
// 0.05-0.4 ms sparse (wbs_bench_int8 --profile, 2 threads, load 17). So the
// rule stays K-free and conservative until it is fitted against kExact.
// Sparse when the estimate is at most kSparseChooseBelow, as for f32: kept
// <= ~0.67, i.e. at least ~33% zero blocks.
constexpr double kS8CostA = 1.045, kS8CostB = 0.199;

double EstimateS8SparseOverDense(double kept) {
  return kS8CostA * std::clamp(kept, 0.0, 1.0) + kS8CostB;
}

uint8_t* ThreadScratch(size_t bytes) {
  thread_local std::vector<uint8_t> buf;
  if (buf.size() < bytes) buf.resize(bytes);
  return buf.data();
}

bool AllStatic(const ir::ValueInfo& v) {
  return v.has_shape &&
         std::all_of(v.shape.begin(), v.shape.end(), [](int64_t d) { return d >= 0; });
}

// How a group-1 layer runs on the int8 plan (S8BsrConvPlan / S8BsrGemmPlan)
// rather than oneDNN kExact.
enum class PlanChoice { kNone, kSparse, kDense };

// Whether the VNNI kernel runs the plan: its dense rate is 0.74-1.01x of
// oneDNN's native int8 (docs/BENCHMARKS.md "Int8 block-sparse kernels", 0%
// column), while kExact, the runtime's bit-exact oneDNN path, pays an s32
// output and a separate scalar epilogue on top (ResNet-50's conv1: 0.75 ms
// against the plan's ~0.36 at 1 thread). The AVX2 int8 kernel is not
// competitive with oneDNN's dense code, so with our kernels capped below VNNI
// and oneDNN's VNNI jit active, dense layers stay on oneDNN; where oneDNN's
// jit is not exact (no VNNI) DecidePlan takes the plan whatever its speed.
// Small output planes: the kernel's lanes are output positions and its
// widest tile is 3 vectors (48 positions, 24 accumulators); below that a tile
// has 8 or 16 accumulators and turns load-bound (9 loads per 8 `vpdpbusd`),
// while oneDNN's fixed per-call cost (kExact's padded copy, s32 output and
// epilogue) weighs less as K grows. Measured (1 thread, dense weights,
// `wbs_bench_s8 --dense=exact --sparsity=0 --csv=<small planes>`, 2026-11-27
// 20:07 UTC; docs/BENCHMARKS.md "Int8 block-sparse kernels", small planes):
// plan / kExact speed-up 1.0-1.4x on ResNet-50's 7x7..56x56 planes; at 4x4..6x6
// 1.3-2.3x for K <= 256 but 0.70-0.92x for K = 512..4608 (1x1 K = 512 wins
// from 6x6); at 1x1..2x2 1.2-1.8x for K <= 128, 0.54-0.67x at K = 256..576.
bool PlanBeatsOneDnnWhenDense(const ks::S8BlockSparseWeight& w, int64_t positions) {
  if (ks::S8ActiveIsa() < ks::S8Isa::kAvx512Vnni || w.block_rows() == 0 || w.block_cols() == 0)
    return false;
  const int64_t k = w.in_channels() * w.taps();
  return positions >= 48 || (positions >= 16 && k <= 256) || k <= 128;
}

// Whether to run `w` block-sparse; logs the decision (info, -v).
bool DecideSparse(const ir::Node& node, const ks::S8BlockSparseWeight& w) {
  const SparseMode mode = CurrentSparseMode();
  const int64_t blocks = w.block_rows() * w.block_cols();
  if (mode == SparseMode::kOff || w.nnz_blocks() == blocks) return false;
  const double kept = double(w.nnz_blocks()) / double(blocks);
  const int64_t k = w.in_channels() * w.taps();
  const double est = EstimateS8SparseOverDense(kept);
  const bool force = mode == SparseMode::kForce;
  const bool sparse = force || est <= kSparseChooseBelow;
  WBS_LOG_INFO("{}: int8 sparse {:.1f}% zero blocks, K {}, est {:.2f}x dense -> {}{}",
               node.name.empty() ? node.Describe() : node.name, 100.0 * w.block_sparsity(), k, est,
               sparse ? "sparse" : "dense", force ? " (WBS_SPARSE=1)" : "");
  return sparse;
}

// The plan choice for a group-1 layer: sparse by the cost rule above, else
// the plan on its dense weight when it beats kExact (WBS_SPARSE=0 keeps
// every layer on oneDNN) or when oneDNN's int8 jit is not exact (always).
// `positions`: output positions per image for a conv; INT64_MAX for a Gemm,
// whose kernel's lanes are weights, not positions.
PlanChoice DecidePlan(const ir::Node& node, const ks::S8BlockSparseWeight& w, int64_t positions) {
  if (DecideSparse(node, w)) return PlanChoice::kSparse;
  std::string why;
  if (!kernels::onednn::OneDnnS8JitIsExact(&why)) {
    WBS_LOG_INFO(
        "{}: int8 {:.1f}% zero blocks -> dense on the int8 plan ({}; kExact would run "
        "oneDNN's reference int8)",
        node.name.empty() ? node.Describe() : node.name, 100.0 * w.block_sparsity(), why);
    return PlanChoice::kDense;
  }
  if (CurrentSparseMode() == SparseMode::kOff || !PlanBeatsOneDnnWhenDense(w, positions))
    return PlanChoice::kNone;
  WBS_LOG_INFO("{}: int8 {:.1f}% zero blocks -> dense on the int8 plan (faster than oneDNN kExact)",
               node.name.empty() ? node.Describe() : node.name, 100.0 * w.block_sparsity());
  return PlanChoice::kDense;
}

// QConv (conv = true) and QGemm. Gemm is the 1x1 conv of an [N, K, 1, 1]
// input for oneDNN, and S8BsrGemmPlan for the sparse kernel.
class FastQLinearOp final : public Operator {
 public:
  // nullptr: declined (the reference runs).
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args, bool conv) {
    const ir::Node& node = *args.node;
    const auto& in = args.inputs;
    const bool has_bias = in.size() > 2 && in[2].present;
    if (in.size() < 2 || !in[0].present || !Is8Bit(in[0].dtype) || !AllStatic(in[0]) ||
        in[1].value == nullptr || in[1].value->dtype() != DType::kI8 ||
        (has_bias && (in[2].value == nullptr || in[2].value->dtype() != DType::kI32)) ||
        args.outputs.empty() || !Is8Bit(args.outputs[0].dtype) || !AllStatic(args.outputs[0]) ||
        NumElements(in[0].shape) == 0)
      return std::unique_ptr<Operator>();
    const Tensor& w = *in[1].value;
    if (w.rank() < 2 || (!conv && (w.rank() != 2 || in[0].rank() != 2)))
      return std::unique_ptr<Operator>();
    const int64_t m = w.dim(0);
    if (has_bias && in[2].value->numel() != m) return std::unique_ptr<Operator>();
    Result<QLinearQuant> rq = ResolveQLinearQuant(node, m);
    if (!rq.ok() || rq->float_output || rq->x.dtype != in[0].dtype)
      return std::unique_ptr<Operator>();  // the reference reports bad parameters

    kref::ConvParams p;
    if (conv) {
      if (w.rank() != 3 && w.rank() != 4) return std::unique_ptr<Operator>();
      Result<kref::ConvParams> rp = ResolveConvParams(node, in[0].shape, w.shape(), false);
      if (!rp.ok()) return std::unique_ptr<Operator>();
      p = *rp;
      p.activation = kref::Activation();  // the clamp bounds carry Relu / Clip
    } else {
      if (in[0].shape[1] != w.dim(1)) return std::unique_ptr<Operator>();
      p.batch = in[0].shape[0];
      p.in_channels = w.dim(1);
      p.out_channels = m;
    }
    const int64_t kh = conv && w.rank() == 4 ? w.dim(2) : 1;
    const int64_t kw = conv ? w.dim(-1) : 1;

    ks::S8QuantParams q;
    q.x_signed = rq->x.dtype == DType::kI8;
    q.x_zero_point = rq->x.zero_point;
    q.y_zero_point = rq->y.zero_point;
    q.lo = rq->lo;
    q.hi = rq->hi;
    if (has_bias) {
      const int32_t* b = in[2].value->data<int32_t>();
      q.bias.assign(b, b + m);
    }
    q.requant = rq->requant;

    auto op = std::unique_ptr<FastQLinearOp>(new FastQLinearOp(node, conv));
    op->x_shape_ = in[0].shape;
    op->y_shape_ = args.outputs[0].shape;
    op->y_dtype_ = args.outputs[0].dtype;
    op->x_dtype_ = in[0].dtype;

    // Block-sparse: group 1 only (the BSR blocks span one group's channels).
    if (p.group == 1 &&
        (CurrentSparseMode() != SparseMode::kOff || !kernels::onednn::OneDnnS8JitIsExact())) {
      Result<ks::S8BlockSparseWeight> bsr = ks::S8BlockSparseWeight::FromDense(
          w.data<int8_t>(), m, p.in_channels, kh, kw, kBlock, kBlock);
      int64_t positions = std::numeric_limits<int64_t>::max();
      if (conv) {
        positions = 1;
        for (size_t d = 2; d < op->y_shape_.size(); ++d) positions *= op->y_shape_[d];
      }
      const PlanChoice choice = bsr.ok() ? DecidePlan(node, *bsr, positions) : PlanChoice::kNone;
      if (choice != PlanChoice::kNone) {
        op->impl_prefix_ = choice == PlanChoice::kSparse ? "sparse_s8:" : "dense_s8:";
        op->bsr_ = std::make_unique<ks::S8BlockSparseWeight>(std::move(bsr).value());
        Status st = op->BuildSparse(p, q);
        if (st.ok()) {
          op->p_ = p;  // kept to rebuild the plan for negotiated layouts
          op->q_ = std::move(q);
          return std::unique_ptr<Operator>(std::move(op));
        }
        WBS_LOG_DEBUG("{}: int8 block-sparse plan declined: {}", node.Describe(), st.message());
        op->bsr_.reset();
      }
    }
    if (!dnnl_ops::DnnlEnabled()) return std::unique_ptr<Operator>();
    op->p_ = p;
    op->q_ = std::move(q);
    op->w_dense_.assign(w.data<int8_t>(), w.data<int8_t>() + w.numel());
    // Built now for the current thread count, so an unsupported geometry
    // declines here rather than failing at run time.
    Result<S8ConvPrimitive*> prim = op->Primitive(dnnl_ops::CurrentThreads());
    if (!prim.ok()) {
      WBS_LOG_DEBUG("{}: oneDNN int8 declined: {}", node.Describe(), prim.status().message());
      return std::unique_ptr<Operator>();
    }
    op->impl_ = "onednn_s8_exact:" + (*prim)->impl_name();
    std::string why;
    if (!kernels::onednn::OneDnnS8JitIsExact(&why))
      WBS_LOG_INFO("{}: int8 group {} -> oneDNN's {} ({})",
                   node.name.empty() ? node.Describe() : node.name, p.group, (*prim)->impl_name(),
                   why);
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    const Tensor* x = InputOrNull(inputs, 0);
    if (x == nullptr || outputs.empty() || outputs[0] == nullptr)
      return InvalidArgument("{}: missing input X or output Y", node_.Describe());
    Tensor& y = *outputs[0];
    if (x->dtype() != x_dtype_ || x->shape() != x_shape_ || y.dtype() != y_dtype_ ||
        y.shape() != y_shape_)
      return InvalidArgument("{}: fast int8 op was planned for X {}{} -> Y {}{}, got {} -> {}",
                             node_.Describe(), DTypeName(x_dtype_), ShapeToString(x_shape_),
                             DTypeName(y_dtype_), ShapeToString(y_shape_), x->Describe(),
                             y.Describe());
    // The weight and bias were folded in at creation; they are constants.
    const uint8_t* xb = reinterpret_cast<const uint8_t*>(x->raw());
    uint8_t* yb = reinterpret_cast<uint8_t*>(y.raw());
    const int threads = std::max(1, ctx.num_threads);
    if (conv_plan_) {
      conv_plan_->Run(xb, yb, ThreadScratch(static_cast<size_t>(conv_plan_->scratch_bytes())),
                      threads);
      return Status::Ok();
    }
    if (gemm_plan_) {
      gemm_plan_->Run(xb, yb, ThreadScratch(static_cast<size_t>(gemm_plan_->scratch_bytes())),
                      threads);
      return Status::Ok();
    }
    dnnl_ops::UseThreads(ctx);
    WBS_ASSIGN_OR_RETURN(S8ConvPrimitive * prim, Primitive(dnnl_ops::CurrentThreads()));
    return prim->Run(xb, yb, x_layout_ == ActivationLayout::kQuad4,
                     y_layout_ == ActivationLayout::kQuad4);
  }

  std::string impl_name() const override { return impl_; }

  bool AcceptsInputLayout(size_t input, ActivationLayout layout) const override {
    if (layout == ActivationLayout::kPlain) return true;
    return conv_ && input == 0 && layout == ActivationLayout::kQuad4 && QuadCapable() &&
           LayoutFits(layout, x_shape_);
  }

  std::vector<ActivationLayout> ProposeOutputLayouts(
      const std::vector<ActivationLayout>& inputs) override {
    x_layout_ = inputs.empty() ? ActivationLayout::kPlain : inputs[0];
    if (!conv_ || !QuadCapable() || !LayoutFits(ActivationLayout::kQuad4, y_shape_)) return {};
    return {ActivationLayout::kQuad4};
  }

  Status SetOutputLayouts(const std::vector<ActivationLayout>& outputs) override {
    y_layout_ = outputs.empty() ? ActivationLayout::kPlain : outputs[0];
    for (ActivationLayout l : {x_layout_, y_layout_})
      if (l != ActivationLayout::kPlain && (l != ActivationLayout::kQuad4 || !conv_))
        return Internal("{}: {} reads and writes plain or quad4 only, {} requested",
                        node_.Describe(), impl_, ActivationLayoutName(l));
    if (conv_plan_ &&
        (x_layout_ != ActivationLayout::kPlain || y_layout_ != ActivationLayout::kPlain))
      return BuildSparse(p_, q_);  // the plan bakes its layouts in (direct 1x1 reads)
    return Status::Ok();
  }

 private:
  FastQLinearOp(const ir::Node& node, bool conv) : node_(node), conv_(conv) {}

  // Both conv paths take nChw4c for group 1 (the sparse plan is group 1).
  bool QuadCapable() const { return conv_plan_ != nullptr || (!bsr_ && p_.group == 1); }

  static ks::S8Layout S8LayoutOf(ActivationLayout l) {
    return l == ActivationLayout::kQuad4 ? ks::S8Layout::kNchw4c : ks::S8Layout::kNchw;
  }

  Status BuildSparse(const kref::ConvParams& p, const ks::S8QuantParams& q) {
    if (conv_) {
      WBS_ASSIGN_OR_RETURN(
          ks::S8BsrConvPlan plan,
          ks::S8BsrConvPlan::Create(p, *bsr_, q, S8LayoutOf(x_layout_), S8LayoutOf(y_layout_)));
      conv_plan_ = std::make_unique<ks::S8BsrConvPlan>(std::move(plan));
      impl_ = impl_prefix_ + conv_plan_->kernel().name;
    } else {
      WBS_ASSIGN_OR_RETURN(ks::S8BsrGemmPlan plan, ks::S8BsrGemmPlan::Create(p.batch, *bsr_, q));
      gemm_plan_ = std::make_unique<ks::S8BsrGemmPlan>(std::move(plan));
      impl_ = impl_prefix_ + gemm_plan_->kernel().name;
    }
    return Status::Ok();
  }

  // The oneDNN primitive for `threads` (oneDNN bakes the thread count into
  // its work split), built on first use.
  Result<S8ConvPrimitive*> Primitive(int threads) {
    auto it = prims_.find(threads);
    if (it != prims_.end()) return it->second.get();
    WBS_ASSIGN_OR_RETURN(std::unique_ptr<S8ConvPrimitive> prim,
                         S8ConvPrimitive::Create(p_, w_dense_.data(), q_, S8ConvMode::kExact));
    S8ConvPrimitive* raw = prim.get();
    prims_.emplace(threads, std::move(prim));
    return raw;
  }

  ir::Node node_;  // a copy: attributes and name outlive the graph
  bool conv_;
  Shape x_shape_, y_shape_;
  DType x_dtype_ = DType::kU8, y_dtype_ = DType::kU8;
  std::string impl_;
  // Plan path ("sparse_s8:" or "dense_s8:" + the kernel's name in impl_).
  std::string impl_prefix_ = "sparse_s8:";
  std::unique_ptr<ks::S8BlockSparseWeight> bsr_;  // the plans point into it
  std::unique_ptr<ks::S8BsrConvPlan> conv_plan_;
  std::unique_ptr<ks::S8BsrGemmPlan> gemm_plan_;
  // oneDNN path.
  kref::ConvParams p_;
  ks::S8QuantParams q_;
  std::vector<int8_t> w_dense_;
  std::map<int, std::unique_ptr<S8ConvPrimitive>> prims_;
  // Negotiated layouts of X and Y (plain, or kQuad4 for convs).
  ActivationLayout x_layout_ = ActivationLayout::kPlain, y_layout_ = ActivationLayout::kPlain;
};

}  // namespace

void RegisterQuantFastOperators() {
  RegisterOperator("QConv", Backend::kFast,
                   FirstOf([](const OpCreateArgs& a) { return FastQLinearOp::Create(a, true); },
                           FindOperatorFactory("QConv", Backend::kFast)));
  RegisterOperator("QGemm", Backend::kFast,
                   FirstOf([](const OpCreateArgs& a) { return FastQLinearOp::Create(a, false); },
                           FindOperatorFactory("QGemm", Backend::kFast)));
  RegisterQuantFastElementwiseOperators();
}

}  // namespace wbs::runtime

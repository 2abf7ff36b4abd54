// Concat of plain tensors on the fast backend: the reference operator's copy
// (kernels::ref::Concat, one memcpy per input and outer index) split over the
// session's threads, with the shapes checked once at creation instead of
// shape inference on every run. Inception-v3's 15 channel concats at batch
// 1 are 1-2.5 MB each; at 2 threads they took 0.9 ms of the 50%
// block-sparse model's ~30 ms on the reference operator (Intel VM).
//
// Declines (the reference operator runs): shapes not known at creation,
// inputs of different dtypes or ranks, an empty output. A run with other
// shapes than the creation's goes to the reference operator too.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "runtime/operator.h"
#include "runtime/ops_dnnl_internal.h"

namespace wbs::runtime::dnnl_ops {
namespace {

// From this many bytes on the copy uses the session's threads (below, a
// second thread's wake-up costs more than it copies).
constexpr int64_t kParallelBytes = int64_t{256} << 10;

class ConcatOp final : public Operator {
 public:
  static Result<std::unique_ptr<Operator>> Create(const OpCreateArgs& args) {
    const auto& in = args.inputs;
    if (in.empty() || args.outputs.size() != 1 || !IsStatic(args.outputs[0]))
      return std::unique_ptr<Operator>();
    const ir::ValueInfo& out = args.outputs[0];
    const int rank = static_cast<int>(out.shape.size());
    int64_t axis = args.node->GetInt("axis", 0);
    if (rank == 0 || axis < -rank || axis >= rank) return std::unique_ptr<Operator>();
    if (axis < 0) axis += rank;
    auto op = std::unique_ptr<ConcatOp>(new ConcatOp(*args.node));
    op->elem_ = static_cast<int64_t>(DTypeSize(out.dtype));
    for (int d = 0; d < axis; ++d) op->outer_ *= out.shape[d];
    int64_t inner = 1;
    for (int d = static_cast<int>(axis) + 1; d < rank; ++d) inner *= out.shape[d];
    int64_t total = 0;
    for (const ir::ValueInfo& v : in) {
      if (!v.present || !IsStatic(v) || v.dtype != out.dtype ||
          static_cast<int>(v.shape.size()) != rank)
        return std::unique_ptr<Operator>();
      op->in_shapes_.push_back(v.shape);
      op->blocks_.push_back(v.shape[axis] * inner * op->elem_);
      total += v.shape[axis];
    }
    if (total != out.shape[axis] || NumElements(out.shape) == 0) return std::unique_ptr<Operator>();
    op->out_shape_ = out.shape;
    op->bytes_ = NumElements(out.shape) * op->elem_;
    WBS_ASSIGN_OR_RETURN(op->fallback_, CreateFallback(args));
    return std::unique_ptr<Operator>(std::move(op));
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    bool same = inputs.size() == in_shapes_.size() && outputs.size() == 1 && outputs[0] &&
                outputs[0]->shape() == out_shape_;
    for (size_t k = 0; same && k < inputs.size(); ++k)
      same = inputs[k] && inputs[k]->shape() == in_shapes_[k] &&
             inputs[k]->dtype() == outputs[0]->dtype();
    if (!same) return fallback_->Run(inputs, outputs, ctx);
    char* dst = static_cast<char*>(outputs[0]->raw());
    // The output as (outer index, input) blocks in order; thread t copies
    // the bytes [bytes * t / n, bytes * (t + 1) / n) of it.
    const int threads = bytes_ >= kParallelBytes ? std::max(1, ctx.num_threads) : 1;
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      const int64_t lo = bytes_ * t / n, hi = bytes_ * (t + 1) / n;
      int64_t pos = 0;
      for (int64_t i = 0; i < outer_ && pos < hi; ++i)
        for (size_t k = 0; k < blocks_.size() && pos < hi; ++k) {
          const int64_t b = blocks_[k], a0 = std::max(lo, pos), a1 = std::min(hi, pos + b);
          if (a0 < a1)
            std::memcpy(dst + a0, static_cast<const char*>(inputs[k]->raw()) + i * b + (a0 - pos),
                        static_cast<size_t>(a1 - a0));
          pos += b;
        }
    }
    return Status::Ok();
  }

  std::string impl_name() const override { return "wbs:concat"; }

 private:
  explicit ConcatOp(const ir::Node& node) : node_(node) {}

  ir::Node node_;
  std::vector<Shape> in_shapes_;
  Shape out_shape_;
  std::vector<int64_t> blocks_;  // bytes of each input per outer index
  int64_t outer_ = 1, elem_ = 4, bytes_ = 0;
  std::unique_ptr<Operator> fallback_;
};

}  // namespace

void RegisterConcatOperator() {
  RegisterOperator("Concat", Backend::kFast,
                   [](const OpCreateArgs& a) { return ConcatOp::Create(a); });
}

}  // namespace wbs::runtime::dnnl_ops

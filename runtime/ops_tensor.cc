// Reference operators of the elementwise and tensor ops: registration and
// the RefOperator wrapper (see runtime/ops_tensor_internal.h).
#include <cstring>

#include "runtime/ops_tensor_internal.h"

namespace wbs::runtime {

namespace tensor_ops {

namespace {

class RefOperator final : public Operator {
 public:
  RefOperator(const ir::Node& node, const std::vector<ir::ValueInfo>& inputs, RunFn fn)
      : node_(node), fn_(std::move(fn)) {
    for (const ir::ValueInfo& v : inputs) created_types_.push_back(v.dtype);
    // Keep the attributes, name and opset; the value pointers may not outlive
    // creation (constant folding evaluates a node it then erases).
    std::fill(node_.inputs.begin(), node_.inputs.end(), nullptr);
    std::fill(node_.outputs.begin(), node_.outputs.end(), nullptr);
  }

  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs,
             const ExecContext& ctx) override {
    // Run functions dispatch on the dtypes the factory validated.
    for (size_t i = 0; i < inputs.size() && i < created_types_.size(); ++i) {
      const DType want = created_types_[i];
      if (inputs[i] && want != DType::kUndefined && inputs[i]->dtype() != want) {
        return InvalidArgument("{}: input {} is {}, the operator was created for {}",
                               node_.Describe(), i, inputs[i]->Describe(), DTypeName(want));
      }
    }
    in_infos_.clear();
    for (const Tensor* t : inputs) in_infos_.push_back(ir::ValueInfo::FromTensor(t));
    WBS_RETURN_IF_ERROR(ir::InferNode(node_, in_infos_, out_infos_));
    if (outputs.size() > out_infos_.size()) {
      return Internal("{}: given {} outputs, expected at most {}", node_.Describe(), outputs.size(),
                      out_infos_.size());
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const Tensor* t = outputs[i];
      if (!t) continue;
      const ir::ValueInfo& want = out_infos_[i];
      // A mismatch means the output was allocated from a shape the inputs
      // do not produce, e.g. a wrong shape declared in the model.
      if (t->dtype() != want.dtype || !want.has_shape || t->shape() != want.shape) {
        return InvalidArgument(
            "{}: output {} is {}, but its inputs give {}{}", node_.Describe(), i, t->Describe(),
            DTypeName(want.dtype),
            want.has_shape ? ShapeToString(want.shape) : std::string("[rank ?]"));
      }
    }
    return fn_(RunArgs{node_, inputs, in_infos_, outputs});
  }

  std::string impl_name() const override { return "ref"; }

 private:
  ir::Node node_;
  std::vector<DType> created_types_;
  RunFn fn_;
  std::vector<ir::ValueInfo> in_infos_, out_infos_;
};

}  // namespace

void RegisterRef(const std::string& op_type, MakeFn make) {
  RegisterOperator(
      op_type, Backend::kReference,
      [make = std::move(make)](const OpCreateArgs& args) -> Result<std::unique_ptr<Operator>> {
        WBS_ASSIGN_OR_RETURN(RunFn fn, make(args));
        return std::unique_ptr<Operator>(new RefOperator(*args.node, args.inputs, std::move(fn)));
      });
}

Status NoKernelFor(const ir::Node& node, DType t) {
  return Unimplemented("{}: no reference kernel for type {}", node.Describe(), DTypeName(t));
}

std::vector<int64_t> BroadcastStrides(const Shape& in_shape, const Shape& out_shape) {
  const std::vector<int64_t> st = StridesOf(in_shape);
  std::vector<int64_t> out(out_shape.size(), 0);
  const size_t off = out_shape.size() - in_shape.size();
  for (size_t d = 0; d < in_shape.size(); ++d) out[d + off] = in_shape[d] == 1 ? 0 : st[d];
  return out;
}

void CopyBytes(const Tensor& in, Tensor& out) {
  if (in.raw() != out.raw() && in.nbytes() > 0) std::memcpy(out.raw(), in.raw(), in.nbytes());
}

}  // namespace tensor_ops

void RegisterTensorOperators() {
  tensor_ops::RegisterElementwiseOperators();
  tensor_ops::RegisterShapeOperators();
  tensor_ops::RegisterIndexOperators();
}

}  // namespace wbs::runtime

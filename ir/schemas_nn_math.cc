// Shape rules of Gemm, MatMul, BatchNormalization, Softmax, LogSoftmax and
// LRN (ONNX opsets 7..17).
#include <algorithm>

#include "ir/op_schema.h"
#include "ir/schemas_nn_internal.h"

namespace wbs::ir::nn_schemas {
namespace {

Status InferGemm(const Node& node, const std::vector<ValueInfo>& in,
                 std::vector<ValueInfo>& out) {
  const ValueInfo& a = in[0];
  const ValueInfo& b = in[1];
  const ValueInfo* c = OptionalInput(in, 2);
  WBS_RETURN_IF_ERROR(CheckSameDType(node, a, "A", b, "B"));
  if (c) WBS_RETURN_IF_ERROR(CheckSameDType(node, a, "A", *c, "C"));
  out[0].dtype = a.dtype;
  const bool ta = node.GetInt("transA", 0) != 0;
  const bool tb = node.GetInt("transB", 0) != 0;
  if (!a.has_shape || !b.has_shape) return Status::Ok();
  if (a.rank() != 2 || b.rank() != 2) {
    return InvalidArgument("{}: A {} and B {} must be 2-D", node.Describe(),
                           ShapeToString(a.shape), ShapeToString(b.shape));
  }
  const int64_t m = a.shape[ta ? 1 : 0], ka = a.shape[ta ? 0 : 1];
  const int64_t kb = b.shape[tb ? 1 : 0], n = b.shape[tb ? 0 : 1];
  if (ka >= 0 && kb >= 0 && ka != kb) {
    return InvalidArgument("{}: inner dims differ: A {} (transA={}) has K={}, B {} (transB={}) "
                           "has K={}",
                           node.Describe(), ShapeToString(a.shape), ta ? 1 : 0, ka,
                           ShapeToString(b.shape), tb ? 1 : 0, kb);
  }
  if (c && c->has_shape) {
    // C must broadcast unidirectionally to [M, N].
    const Shape target = {m, n};
    bool ok = c->rank() <= 2;
    for (int i = 0; ok && i < c->rank(); ++i) {
      const int64_t cd = c->shape[c->rank() - 1 - i], td = target[1 - i];
      ok = cd == 1 || cd < 0 || td < 0 || cd == td;
    }
    if (!ok) {
      return InvalidArgument("{}: C {} does not broadcast to [M, N] = {}", node.Describe(),
                             ShapeToString(c->shape), ShapeToString(target));
    }
  }
  out[0].shape = {m, n};
  out[0].has_shape = true;
  return Status::Ok();
}

Status InferMatMul(const Node& node, const std::vector<ValueInfo>& in,
                   std::vector<ValueInfo>& out) {
  const ValueInfo& a = in[0];
  const ValueInfo& b = in[1];
  WBS_RETURN_IF_ERROR(CheckSameDType(node, a, "A", b, "B"));
  out[0].dtype = a.dtype;
  if (!a.has_shape || !b.has_shape) return Status::Ok();
  if (a.rank() < 1 || b.rank() < 1) {
    return InvalidArgument("{}: A {} and B {} must have rank >= 1", node.Describe(),
                           ShapeToString(a.shape), ShapeToString(b.shape));
  }
  // numpy: a 1-D A is a row [1, K], a 1-D B a column [K, 1]; the added dim
  // is dropped from the result.
  const int64_t ka = a.shape.back();
  const int64_t kb = b.rank() == 1 ? b.shape[0] : b.shape[b.rank() - 2];
  if (ka >= 0 && kb >= 0 && ka != kb) {
    return InvalidArgument("{}: inner dims differ: A {} has K={}, B {} has K={}",
                           node.Describe(), ShapeToString(a.shape), ka, ShapeToString(b.shape),
                           kb);
  }
  const Shape a_batch(a.shape.begin(), a.shape.end() - std::min(a.rank(), 2));
  const Shape b_batch(b.shape.begin(), b.shape.end() - std::min(b.rank(), 2));
  auto batch = BroadcastShapes(a_batch, b_batch);
  if (!batch.ok()) {
    return InvalidArgument("{}: batch dims of A {} and B {} do not broadcast", node.Describe(),
                           ShapeToString(a.shape), ShapeToString(b.shape));
  }
  Shape y = *batch;
  if (a.rank() >= 2) y.push_back(a.shape[a.rank() - 2]);
  if (b.rank() >= 2) y.push_back(b.shape.back());
  out[0].shape = std::move(y);
  out[0].has_shape = true;
  return Status::Ok();
}

Status InferBatchNorm(const Node& node, const std::vector<ValueInfo>& in,
                      std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  WBS_RETURN_IF_ERROR(CheckFloat(node, x, "input X"));
  static const char* const kParamNames[] = {"", "scale", "B", "input_mean", "input_var"};
  for (int i = 1; i < 5; ++i) WBS_RETURN_IF_ERROR(CheckFloat(node, in[i], kParamNames[i]));
  const int64_t training = node.GetInt("training_mode", 0);
  if (training != 0 && training != 1) {
    return InvalidArgument("{}: training_mode must be 0 or 1, got {}", node.Describe(),
                           training);
  }
  // Opsets < 9 have `spatial`: 0 keeps statistics per feature (C x D1 x ...).
  const bool per_activation = node.opset < 9 && node.GetInt("spatial", 1) == 0;
  out[0].dtype = x.dtype;
  for (size_t i = 1; i < out.size(); ++i) out[i].dtype = in[i % 2 == 1 ? 3 : 4].dtype;  // mean-like, var-like
  if (!x.has_shape) return Status::Ok();
  if (x.rank() < 2) {
    return InvalidArgument("{}: input X {} must have rank >= 2 (N, C, ...)", node.Describe(),
                           ShapeToString(x.shape));
  }
  const Shape param = per_activation ? Shape(x.shape.begin() + 1, x.shape.end())
                                     : Shape{x.shape[1]};
  for (int i = 1; i < 5; ++i) {
    if (!in[i].has_shape) continue;
    bool ok = in[i].shape.size() == param.size();
    for (size_t d = 0; ok && d < param.size(); ++d)
      ok = in[i].shape[d] < 0 || param[d] < 0 || in[i].shape[d] == param[d];
    // Per-feature statistics may also come flattened.
    if (!ok && per_activation && in[i].rank() == 1 && in[i].shape[0] == NumElements(param))
      ok = true;
    if (!ok) {
      return InvalidArgument("{}: {} {} must have shape {} for input X {}", node.Describe(),
                             kParamNames[i], ShapeToString(in[i].shape), ShapeToString(param),
                             ShapeToString(x.shape));
    }
  }
  out[0].shape = x.shape;
  out[0].has_shape = true;
  for (size_t i = 1; i < out.size(); ++i) {
    out[i].shape = param;
    out[i].has_shape = true;
  }
  return Status::Ok();
}

// Softmax and LogSoftmax; the axis default changed at opset 13 (1 -> -1).
Status InferSoftmax(const Node& node, const std::vector<ValueInfo>& in,
                    std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  WBS_RETURN_IF_ERROR(CheckFloat(node, x, "input"));
  out[0].dtype = x.dtype;
  if (!x.has_shape) return Status::Ok();
  const int64_t axis = node.GetInt("axis", node.opset < 13 ? 1 : -1);
  WBS_RETURN_IF_ERROR(NormalizeAxis(axis, x.rank(), node).status());
  out[0].shape = x.shape;
  out[0].has_shape = true;
  return Status::Ok();
}

Status InferLrn(const Node& node, const std::vector<ValueInfo>& in,
                std::vector<ValueInfo>& out) {
  const ValueInfo& x = in[0];
  WBS_RETURN_IF_ERROR(CheckFloat(node, x, "input X"));
  if (!node.Has("size")) return InvalidArgument("{}: attribute size is required", node.Describe());
  const int64_t size = node.GetInt("size", 0);
  if (size < 1) return InvalidArgument("{}: size {} must be >= 1", node.Describe(), size);
  out[0].dtype = x.dtype;
  if (!x.has_shape) return Status::Ok();
  if (x.rank() < 2) {
    return InvalidArgument("{}: input X {} must have rank >= 2 (N, C, ...)", node.Describe(),
                           ShapeToString(x.shape));
  }
  out[0].shape = x.shape;
  out[0].has_shape = true;
  return Status::Ok();
}

}  // namespace

void RegisterMathSchemas() {
  RegisterSchema({"Gemm", 2, 3, 1, 1, InferGemm});
  RegisterSchema({"MatMul", 2, 2, 1, 1, InferMatMul});
  RegisterSchema({"BatchNormalization", 5, 5, 1, 5, InferBatchNorm});
  RegisterSchema({"Softmax", 1, 1, 1, 1, InferSoftmax});
  RegisterSchema({"LogSoftmax", 1, 1, 1, 1, InferSoftmax});
  RegisterSchema({"LRN", 1, 1, 1, 1, InferLrn});
}

}  // namespace wbs::ir::nn_schemas

// Reference operators of the shape-manipulation and data-movement ops
// (kernels/ref/tensor_ops.h). Output shapes come from the shape rules
// (checked by RefOperator), so these only move bytes.
#include <algorithm>
#include <cstring>

#include "ir/schemas_tensor.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/tensor_ops.h"
#include "runtime/ops_tensor_internal.h"

namespace wbs::runtime::tensor_ops {

namespace {

namespace k = wbs::kernels::ref;

// Identity, Reshape, Flatten, Squeeze, Unsqueeze: same bytes, new shape.
Result<RunFn> MakeCopy(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) {
    CopyBytes(*r.in[0], *r.out[0]);
    return Status::Ok();
  });
}

// Fills `out` with copies of the one-element tensor `v`.
void Fill(const Tensor& v, Tensor& out) {
  const size_t e = DTypeSize(out.dtype());
  char* o = static_cast<char*>(out.raw());
  for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(o + i * e, v.raw(), e);
}

Result<RunFn> MakeDropout(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) {
    CopyBytes(*r.in[0], *r.out[0]);
    if (r.out.size() > 1 && r.out[1]) {
      Tensor& mask = *r.out[1];
      const bool one = true;
      Tensor one_of_type(mask.dtype(), {});
      if (!k::Convert(DType::kBool, &one, mask.dtype(), one_of_type.raw(), 1)) {
        return NoKernelFor(r.node, mask.dtype());
      }
      Fill(one_of_type, mask);
    }
    return Status::Ok();
  });
}

// Copies the input seen through a permutation of (a reshape of) its axes:
// output axis d walks view axis perm[d] of `view_shape`.
void CopyPermuted(const Tensor& in, const Shape& view_shape, const std::vector<int64_t>& perm,
                  Tensor& out) {
  const std::vector<int64_t> st = StridesOf(view_shape);
  Shape out_view(perm.size());
  std::vector<int64_t> strides(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) {
    out_view[d] = view_shape[perm[d]];
    strides[d] = st[perm[d]];
  }
  k::CopyStrided(in.raw(), 0, strides, out_view, out.raw(), DTypeSize(in.dtype()));
}

Result<RunFn> MakeTranspose(const OpCreateArgs& a) {
  const std::vector<int64_t> perm = a.node->GetInts("perm");
  return RunFn([perm](const RunArgs& r) {
    std::vector<int64_t> p = perm;
    if (p.empty())
      for (int d = r.in[0]->rank() - 1; d >= 0; --d) p.push_back(d);
    CopyPermuted(*r.in[0], r.in[0]->shape(), p, *r.out[0]);
    return Status::Ok();
  });
}

Result<RunFn> MakeDepthSpace(const OpCreateArgs& a) {
  const int64_t b = a.node->GetInt("blocksize", 1);
  const bool to_space = a.node->op_type == "DepthToSpace";
  const bool crd = a.node->GetString("mode", "DCR") == "CRD";
  return RunFn([=](const RunArgs& r) {
    const Shape& s = r.in[0]->shape();
    const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
    if (to_space && !crd) {
      CopyPermuted(*r.in[0], {n, b, b, c / (b * b), h, w}, {0, 3, 4, 1, 5, 2}, *r.out[0]);
    } else if (to_space) {
      CopyPermuted(*r.in[0], {n, c / (b * b), b, b, h, w}, {0, 1, 4, 2, 5, 3}, *r.out[0]);
    } else {
      CopyPermuted(*r.in[0], {n, c, h / b, b, w / b, b}, {0, 3, 5, 1, 2, 4}, *r.out[0]);
    }
    return Status::Ok();
  });
}

Result<RunFn> MakeConcat(const OpCreateArgs& a) {
  const int64_t axis_attr = a.node->GetInt("axis", 0);
  return RunFn([axis_attr](const RunArgs& r) {
    const Shape& os = r.out[0]->shape();
    const int axis =
        static_cast<int>(axis_attr < 0 ? axis_attr + static_cast<int64_t>(os.size()) : axis_attr);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= os[d];
    for (size_t d = axis + 1; d < os.size(); ++d) inner *= os[d];
    std::vector<const void*> srcs;
    std::vector<int64_t> lens;
    for (const Tensor* t : r.in) {
      srcs.push_back(t->raw());
      lens.push_back(t->shape()[axis]);
    }
    k::Concat(srcs, lens, outer, inner, r.out[0]->raw(), DTypeSize(r.out[0]->dtype()));
    return Status::Ok();
  });
}

Result<RunFn> MakeSplit(const OpCreateArgs& a) {
  const int64_t axis_attr = a.node->GetInt("axis", 0);
  return RunFn([axis_attr](const RunArgs& r) {
    const Tensor& in = *r.in[0];
    const int axis = static_cast<int>(axis_attr < 0 ? axis_attr + in.rank() : axis_attr);
    const std::vector<int64_t> st = StridesOf(in.shape());
    // Omitted outputs still occupy their part of the axis.
    WBS_ASSIGN_OR_RETURN(std::vector<int64_t> sizes,
                         ir::ResolveSplit(r.node, r.in_infos, r.node.outputs.size(), axis));
    int64_t start = 0;
    for (size_t i = 0; i < r.out.size(); ++i) {
      if (Tensor* o = r.out[i])
        k::CopyStrided(in.raw(), start * st[axis], st, o->shape(), o->raw(), DTypeSize(in.dtype()));
      start += sizes[i];
    }
    return Status::Ok();
  });
}

Result<RunFn> MakeExpand(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) {
    const Tensor& in = *r.in[0];
    Tensor& out = *r.out[0];
    k::CopyStrided(in.raw(), 0, BroadcastStrides(in.shape(), out.shape()), out.shape(), out.raw(),
                   DTypeSize(in.dtype()));
    return Status::Ok();
  });
}

// Tile: output axis d of length reps * n is the view (reps, n) with strides
// (0, stride_d), so a strided copy over the interleaved view tiles.
Result<RunFn> MakeTile(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) {
    const Tensor& in = *r.in[0];
    Tensor& out = *r.out[0];
    const std::vector<int64_t> st = StridesOf(in.shape());
    Shape view;
    std::vector<int64_t> strides;
    for (int d = 0; d < in.rank(); ++d) {
      const int64_t n = in.shape()[d];
      view.push_back(n == 0 ? 0 : out.shape()[d] / n);
      strides.push_back(0);
      view.push_back(n);
      strides.push_back(st[d]);
    }
    k::CopyStrided(in.raw(), 0, strides, view, out.raw(), DTypeSize(in.dtype()));
    return Status::Ok();
  });
}

Result<RunFn> MakeShape(const OpCreateArgs& a) {
  const int64_t start_attr = a.node->GetInt("start", 0);
  return RunFn([=](const RunArgs& r) {
    const Shape& s = r.in[0]->shape();
    const int64_t rank = static_cast<int64_t>(s.size());
    const int64_t start =
        std::clamp<int64_t>(start_attr < 0 ? start_attr + rank : start_attr, 0, rank);
    int64_t* o = r.out[0]->data<int64_t>();
    for (int64_t i = 0; i < r.out[0]->numel(); ++i) o[i] = s[start + i];
    return Status::Ok();
  });
}

Result<RunFn> MakeSize(const OpCreateArgs& a) {
  return RunFn([](const RunArgs& r) {
    r.out[0]->data<int64_t>()[0] = r.in[0]->numel();
    return Status::Ok();
  });
}

Result<RunFn> MakeConstantOfShape(const OpCreateArgs& a) {
  const Tensor* attr = a.node->GetTensor("value");
  const Tensor value = attr ? *attr : Tensor::Scalar<float>(0.0f);
  return RunFn([value](const RunArgs& r) {
    Fill(value, *r.out[0]);
    return Status::Ok();
  });
}

Result<RunFn> MakeConstant(const OpCreateArgs& a) {
  const ir::Node& n = *a.node;
  Tensor value;
  if (const Tensor* t = n.GetTensor("value")) {
    value = *t;
  } else if (n.Has("value_float")) {
    value = Tensor::Scalar<float>(n.GetFloat("value_float", 0.0f));
  } else if (n.Has("value_floats")) {
    const std::vector<float> v = n.GetFloats("value_floats");
    value = Tensor::FromVector<float>({static_cast<int64_t>(v.size())}, v);
  } else if (n.Has("value_int")) {
    value = Tensor::Scalar<int64_t>(n.GetInt("value_int", 0));
  } else if (n.Has("value_ints")) {
    const std::vector<int64_t> v = n.GetInts("value_ints");
    value = Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
  } else {
    return Unimplemented("{}: only value, value_float(s) and value_int(s) are supported",
                         n.Describe());
  }
  return RunFn([value](const RunArgs& r) {
    CopyBytes(value, *r.out[0]);
    return Status::Ok();
  });
}

// Range: out[i] = start + i * delta, computed in the element type.
Result<RunFn> MakeRange(const OpCreateArgs& a) {
  const DType t = InputType(a, 0);
  if (!VisitNumeric(t, []<typename>() {})) return NoKernelFor(*a.node, t);
  return RunFn([t](const RunArgs& r) {
    VisitNumeric(t, [&]<typename T>() {
      const T start = r.in[0]->data<T>()[0], delta = r.in[2]->data<T>()[0];
      T* o = r.out[0]->data<T>();
      for (int64_t i = 0; i < r.out[0]->numel(); ++i)
        o[i] = static_cast<T>(start + static_cast<T>(i) * delta);
    });
    return Status::Ok();
  });
}

}  // namespace

void RegisterShapeOperators() {
  for (const char* op : {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})
    RegisterRef(op, MakeCopy);
  RegisterRef("Dropout", MakeDropout);
  RegisterRef("Transpose", MakeTranspose);
  RegisterRef("DepthToSpace", MakeDepthSpace);
  RegisterRef("SpaceToDepth", MakeDepthSpace);
  RegisterRef("Concat", MakeConcat);
  RegisterRef("Split", MakeSplit);
  RegisterRef("Expand", MakeExpand);
  RegisterRef("Tile", MakeTile);
  RegisterRef("Shape", MakeShape);
  RegisterRef("Size", MakeSize);
  RegisterRef("ConstantOfShape", MakeConstantOfShape);
  RegisterRef("Constant", MakeConstant);
  RegisterRef("Range", MakeRange);
}

}  // namespace wbs::runtime::tensor_ops

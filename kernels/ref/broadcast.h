// Numpy-style broadcasting loops shared by the reference elementwise kernels.
//
// A BroadcastLoop describes how up to kMaxOperands dense row-major buffers
// walk together over one output shape: operand 0 is the (dense) output, the
// others are inputs whose shapes broadcast to it (stride 0 on broadcast
// dims). Dims of size 1 are dropped and neighbouring dims that are
// contiguous for every operand are merged, so the innermost row is as long as
// possible and the common cases (same shape, scalar, per-channel) become a
// few long rows.
#pragma once

#include <array>
#include <cassert>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/tensor.h"

namespace wbs::kernels::ref {

struct BroadcastLoop {
  static constexpr int kMaxOperands = 4;  // output + 3 inputs (Where)
  using Strides = std::array<int64_t, kMaxOperands>;
  std::vector<int64_t> dims;     // outermost first; at least one dim
  std::vector<Strides> strides;  // per dim, per operand, in elements
  int64_t numel = 0;
};

// Precondition: every input shape broadcasts to `out` (rank <= out rank).
BroadcastLoop MakeBroadcastLoop(const Shape& out, std::initializer_list<const Shape*> inputs);

// Calls row(offsets, n, inner_strides) once per innermost row, where
// offsets[k] is operand k's element offset at the row start.
template <typename F>
void ForEachRow(const BroadcastLoop& loop, F&& row) {
  if (loop.numel == 0) return;
  const int r = static_cast<int>(loop.dims.size());
  const int64_t n = loop.dims.back();
  const BroadcastLoop::Strides& inner = loop.strides.back();
  BroadcastLoop::Strides off{};
  std::vector<int64_t> idx(r, 0);
  for (;;) {
    row(off, n, inner);
    int d = r - 2;
    for (; d >= 0; --d) {
      for (int k = 0; k < BroadcastLoop::kMaxOperands; ++k) off[k] += loop.strides[d][k];
      if (++idx[d] < loop.dims[d]) break;
      for (int k = 0; k < BroadcastLoop::kMaxOperands; ++k)
        off[k] -= loop.strides[d][k] * loop.dims[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

// out[i] = f(a[.], b[.]) with numpy broadcasting of a_shape and b_shape onto
// out_shape. `out` may alias an input whose shape equals out_shape.
template <typename TA, typename TB, typename TO, typename F>
void BroadcastBinary(const TA* a, const Shape& a_shape, const TB* b, const Shape& b_shape, TO* out,
                     const Shape& out_shape, F&& f) {
  const int64_t n = NumElements(out_shape);
  const bool a_full = NumElements(a_shape) == n, b_full = NumElements(b_shape) == n;
  if (a_full && b_full) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
    return;
  }
  if (a_full && NumElements(b_shape) == 1) {
    const TB s = b[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], s);
    return;
  }
  if (b_full && NumElements(a_shape) == 1) {
    const TA s = a[0];
    for (int64_t i = 0; i < n; ++i) out[i] = f(s, b[i]);
    return;
  }
  const BroadcastLoop loop = MakeBroadcastLoop(out_shape, {&a_shape, &b_shape});
  ForEachRow(loop,
             [&](const BroadcastLoop::Strides& off, int64_t len, const BroadcastLoop::Strides& st) {
               TO* o = out + off[0];
               const TA* pa = a + off[1];
               const TB* pb = b + off[2];
               if (st[1] == 1 && st[2] == 1) {
                 for (int64_t j = 0; j < len; ++j) o[j] = f(pa[j], pb[j]);
               } else if (st[1] == 1 && st[2] == 0) {
                 const TB s = *pb;
                 for (int64_t j = 0; j < len; ++j) o[j] = f(pa[j], s);
               } else if (st[1] == 0 && st[2] == 1) {
                 const TA s = *pa;
                 for (int64_t j = 0; j < len; ++j) o[j] = f(s, pb[j]);
               } else {
                 for (int64_t j = 0; j < len; ++j) o[j] = f(pa[j * st[1]], pb[j * st[2]]);
               }
             });
}

// out[i] = f(a[.], b[.], c[.]) with numpy broadcasting onto out_shape.
template <typename TA, typename TB, typename TC, typename TO, typename F>
void BroadcastTernary(const TA* a, const Shape& a_shape, const TB* b, const Shape& b_shape,
                      const TC* c, const Shape& c_shape, TO* out, const Shape& out_shape, F&& f) {
  const BroadcastLoop loop = MakeBroadcastLoop(out_shape, {&a_shape, &b_shape, &c_shape});
  ForEachRow(loop,
             [&](const BroadcastLoop::Strides& off, int64_t len, const BroadcastLoop::Strides& st) {
               TO* o = out + off[0];
               const TA* pa = a + off[1];
               const TB* pb = b + off[2];
               const TC* pc = c + off[3];
               for (int64_t j = 0; j < len; ++j)
                 o[j] = f(pa[j * st[1]], pb[j * st[2]], pc[j * st[3]]);
             });
}

}  // namespace wbs::kernels::ref

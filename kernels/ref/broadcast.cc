#include "kernels/ref/broadcast.h"

namespace wbs::kernels::ref {

BroadcastLoop MakeBroadcastLoop(const Shape& out, std::initializer_list<const Shape*> inputs) {
  assert(static_cast<int>(inputs.size()) < BroadcastLoop::kMaxOperands);
  const int r = static_cast<int>(out.size());
  // Full-rank strides per operand (0 where the operand is broadcast).
  std::vector<BroadcastLoop::Strides> full(r, BroadcastLoop::Strides{});
  const std::vector<int64_t> out_st = StridesOf(out);
  for (int d = 0; d < r; ++d) full[d][0] = out_st[d];
  int k = 1;
  for (const Shape* s : inputs) {
    const int ir = static_cast<int>(s->size());
    assert(ir <= r);
    const std::vector<int64_t> st = StridesOf(*s);
    for (int d = 0; d < ir; ++d) {
      const int od = d + r - ir;
      assert((*s)[d] == out[od] || (*s)[d] == 1);
      full[od][k] = (*s)[d] == 1 ? 0 : st[d];
    }
    ++k;
  }
  BroadcastLoop loop;
  loop.numel = NumElements(out);
  for (int d = 0; d < r; ++d) {
    if (out[d] == 1) continue;
    if (!loop.dims.empty()) {
      // Merge with the previous kept dim when every operand steps through both as one.
      const BroadcastLoop::Strides& prev = loop.strides.back();
      bool mergeable = true;
      for (int q = 0; q < BroadcastLoop::kMaxOperands; ++q)
        if (prev[q] != full[d][q] * out[d]) mergeable = false;
      if (mergeable) {
        loop.dims.back() *= out[d];
        loop.strides.back() = full[d];
        continue;
      }
    }
    loop.dims.push_back(out[d]);
    loop.strides.push_back(full[d]);
  }
  if (loop.dims.empty()) {
    loop.dims.push_back(1);
    loop.strides.push_back(BroadcastLoop::Strides{});
  }
  return loop;
}

}  // namespace wbs::kernels::ref

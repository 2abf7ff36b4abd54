// Index ranges for sliding-window loops (conv, conv-transpose, pooling).
#pragma once

#include <algorithm>
#include <cstdint>

namespace wbs::kernels::ref {

struct Range {
  int64_t begin = 0;
  int64_t end = 0;  // exclusive; begin <= end
};

// The i in [0, count) with 0 <= i * stride + offset < limit (stride > 0):
// e.g. the output columns whose tap lands inside the input row.
inline Range ValidRange(int64_t count, int64_t stride, int64_t offset, int64_t limit) {
  // Smallest i with i * stride + offset >= 0.
  const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  // One past the largest i with i * stride + offset <= limit - 1.
  const int64_t last = limit - 1 - offset;
  const int64_t hi = last < 0 ? 0 : last / stride + 1;
  Range r;
  r.begin = std::min(lo, count);
  r.end = std::max(r.begin, std::min(hi, count));
  return r;
}

}  // namespace wbs::kernels::ref

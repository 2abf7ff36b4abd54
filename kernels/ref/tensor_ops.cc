#include "kernels/ref/tensor_ops.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace wbs::kernels::ref {

namespace {

// Calls f.template operator()<E>() with E an unsigned type of elem_size bytes.
template <typename F>
void BySize(size_t elem_size, F&& f) {
  switch (elem_size) {
    case 1:
      f.template operator()<uint8_t>();
      return;
    case 2:
      f.template operator()<uint16_t>();
      return;
    case 4:
      f.template operator()<uint32_t>();
      return;
    case 8:
      f.template operator()<uint64_t>();
      return;
    default:
      assert(false && "element size must be 1, 2, 4 or 8");
  }
}

// Odometer over the outer dims (all but the last) of `dims`, calling
// row(outer_index) before each step; returns when the outer dims wrap.
template <typename F>
void ForEachOuter(const std::vector<int64_t>& dims, F&& row) {
  for (int64_t d : dims)
    if (d == 0) return;
  const int r = static_cast<int>(dims.size());
  std::vector<int64_t> idx(std::max(r - 1, 0), 0);
  for (;;) {
    row(idx);
    int d = r - 2;
    for (; d >= 0; --d) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace

void CopyStrided(const void* src, int64_t src_offset, const std::vector<int64_t>& src_strides,
                 const Shape& out_shape, void* dst, size_t elem_size) {
  assert(src_strides.size() == out_shape.size());
  if (NumElements(out_shape) == 0) return;
  // Drop unit dims and merge neighbours the source walks contiguously.
  std::vector<int64_t> dims, strides;
  for (size_t d = 0; d < out_shape.size(); ++d) {
    if (out_shape[d] == 1) continue;
    if (!dims.empty() && strides.back() == src_strides[d] * out_shape[d]) {
      dims.back() *= out_shape[d];
      strides.back() = src_strides[d];
      continue;
    }
    dims.push_back(out_shape[d]);
    strides.push_back(src_strides[d]);
  }
  if (dims.empty()) {
    dims.push_back(1);
    strides.push_back(1);
  }
  const int r = static_cast<int>(dims.size());
  BySize(elem_size, [&]<typename E>() {
    const E* s = static_cast<const E*>(src) + src_offset;
    E* o = static_cast<E*>(dst);
    const int64_t n = dims.back(), st = strides.back();
    ForEachOuter(dims, [&](const std::vector<int64_t>& idx) {
      int64_t off = 0;
      for (int d = 0; d < r - 1; ++d) off += idx[d] * strides[d];
      const E* row = s + off;
      if (st == 1) {
        std::memcpy(o, row, static_cast<size_t>(n) * sizeof(E));
      } else {
        for (int64_t j = 0; j < n; ++j) o[j] = row[j * st];
      }
      o += n;
    });
  });
}

void Concat(const std::vector<const void*>& inputs, const std::vector<int64_t>& axis_lens,
            int64_t outer, int64_t inner, void* dst, size_t elem_size) {
  assert(inputs.size() == axis_lens.size());
  char* o = static_cast<char*>(dst);
  for (int64_t i = 0; i < outer; ++i) {
    for (size_t k = 0; k < inputs.size(); ++k) {
      const size_t block = static_cast<size_t>(axis_lens[k] * inner) * elem_size;
      if (block == 0) continue;
      std::memcpy(o, static_cast<const char*>(inputs[k]) + static_cast<size_t>(i) * block, block);
      o += block;
    }
  }
}

void Gather(const void* src, int64_t outer, int64_t axis_len, int64_t inner, const int64_t* indices,
            int64_t num_indices, void* dst, size_t elem_size) {
  const size_t block = static_cast<size_t>(inner) * elem_size;
  const char* s = static_cast<const char*>(src);
  char* o = static_cast<char*>(dst);
  if (block == 0) return;
  for (int64_t i = 0; i < outer; ++i) {
    for (int64_t j = 0; j < num_indices; ++j) {
      assert(indices[j] >= 0 && indices[j] < axis_len);
      std::memcpy(o, s + static_cast<size_t>(i * axis_len + indices[j]) * block, block);
      o += block;
    }
  }
}

void GatherElements(const void* src, const Shape& src_shape, const int64_t* indices,
                    const Shape& out_shape, int axis, void* dst, size_t elem_size) {
  assert(src_shape.size() == out_shape.size());
  const std::vector<int64_t> st = StridesOf(src_shape);
  const int r = static_cast<int>(out_shape.size());
  if (NumElements(out_shape) == 0) return;
  BySize(elem_size, [&]<typename E>() {
    const E* s = static_cast<const E*>(src);
    E* o = static_cast<E*>(dst);
    std::vector<int64_t> idx(r, 0);
    const int64_t n = NumElements(out_shape);
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      for (int d = 0; d < r; ++d) off += (d == axis ? indices[i] : idx[d]) * st[d];
      o[i] = s[off];
      for (int d = r - 1; d >= 0; --d) {
        if (++idx[d] < out_shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

void GatherByAxisMaps(const void* src, const Shape& src_shape,
                      const std::vector<std::vector<int64_t>>& maps, const Shape& out_shape,
                      const void* fill, void* dst, size_t elem_size) {
  assert(maps.size() == out_shape.size() && src_shape.size() == out_shape.size());
  const int r = static_cast<int>(out_shape.size());
  BySize(elem_size, [&]<typename E>() {
    const E* s = static_cast<const E*>(src);
    E* o = static_cast<E*>(dst);
    if (r == 0) {
      o[0] = s[0];
      return;
    }
    E f{};
    if (fill) std::memcpy(&f, fill, sizeof(E));
    const std::vector<int64_t> st = StridesOf(src_shape);
    const std::vector<int64_t>& last = maps[r - 1];
    const int64_t n = out_shape[r - 1], st_last = st[r - 1];
    ForEachOuter(out_shape, [&](const std::vector<int64_t>& idx) {
      int64_t off = 0;
      bool filled = false;
      for (int d = 0; d < r - 1; ++d) {
        const int64_t m = maps[d][idx[d]];
        if (m < 0) filled = true;
        off += m * st[d];
      }
      if (filled) {
        std::fill(o, o + n, f);
      } else {
        for (int64_t j = 0; j < n; ++j) o[j] = last[j] < 0 ? f : s[off + last[j] * st_last];
      }
      o += n;
    });
  });
}

std::vector<int64_t> PadAxisMap(PadMode mode, int64_t in_len, int64_t begin, int64_t end) {
  const int64_t lo = std::max<int64_t>(0, -begin);
  const int64_t n = in_len - lo - std::max<int64_t>(0, -end);
  const int64_t pb = std::max<int64_t>(0, begin), pe = std::max<int64_t>(0, end);
  assert(n >= 0 && (n > 0 || mode == PadMode::kConstant));
  std::vector<int64_t> map(static_cast<size_t>(n + pb + pe));
  for (int64_t o = 0; o < static_cast<int64_t>(map.size()); ++o) {
    int64_t i = o - pb;
    if (i < 0 || i >= n) {
      switch (mode) {
        case PadMode::kConstant:
          map[o] = -1;
          continue;
        case PadMode::kEdge:
          i = std::clamp<int64_t>(i, 0, n - 1);
          break;
        case PadMode::kWrap:
          i = ((i % n) + n) % n;
          break;
        case PadMode::kReflect: {
          if (n == 1) {
            i = 0;
            break;
          }
          const int64_t period = 2 * (n - 1);
          i = ((i % period) + period) % period;
          if (i >= n) i = period - i;
          break;
        }
      }
    }
    map[o] = lo + i;
  }
  return map;
}

}  // namespace wbs::kernels::ref

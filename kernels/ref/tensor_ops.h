// Reference data-movement kernels: strided copy (Transpose, Slice, Expand,
// Tile, Split, DepthToSpace), Concat, Gather, GatherElements and per-axis
// index maps (Pad, nearest Resize).
//
// They move elements as raw bytes of `elem_size` (1, 2, 4 or 8), so every
// dtype a Tensor holds works, f16/bf16 included. Destinations are dense and
// row-major; offsets and strides are in elements. Indices are already
// validated and normalised by the caller (operators report bad indices).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace wbs::kernels::ref {

// dst[i] = src[src_offset + sum_d i_d * src_strides[d]] for every index i of
// out_shape. Strides may be 0 (broadcast) or negative (reversed).
void CopyStrided(const void* src, int64_t src_offset, const std::vector<int64_t>& src_strides,
                 const Shape& out_shape, void* dst, size_t elem_size);

// Concatenation of inputs viewed as [outer, axis_lens[k] * inner] into dst
// viewed as [outer, sum(axis_lens) * inner].
void Concat(const std::vector<const void*>& inputs, const std::vector<int64_t>& axis_lens,
            int64_t outer, int64_t inner, void* dst, size_t elem_size);

// dst[o, j, i] = src[o, indices[j], i], src viewed as [outer, axis_len, inner];
// indices in [0, axis_len).
void Gather(const void* src, int64_t outer, int64_t axis_len, int64_t inner, const int64_t* indices,
            int64_t num_indices, void* dst, size_t elem_size);

// dst[i] = src[i with coordinate `axis` replaced by indices[i]]; indices has
// the shape of dst (same rank as src) and values in [0, src_shape[axis]).
void GatherElements(const void* src, const Shape& src_shape, const int64_t* indices,
                    const Shape& out_shape, int axis, void* dst, size_t elem_size);

// dst[o] = src[sum_d maps[d][o_d] * src_stride[d]] when every maps[d][o_d] >= 0,
// else *fill (one element). maps[d] has out_shape[d] entries.
void GatherByAxisMaps(const void* src, const Shape& src_shape,
                      const std::vector<std::vector<int64_t>>& maps, const Shape& out_shape,
                      const void* fill, void* dst, size_t elem_size);

enum class PadMode : int32_t { kConstant, kReflect, kEdge, kWrap };

// The index map of one axis for GatherByAxisMaps: for each of the
// in_len + begin + end output coordinates, the source coordinate or -1
// (constant fill). Negative begin/end crop first. Preconditions: the cropped
// length in_len + min(begin,0) + min(end,0) is >= 0, and > 0 unless mode is
// kConstant.
std::vector<int64_t> PadAxisMap(PadMode mode, int64_t in_len, int64_t begin, int64_t end);

}  // namespace wbs::kernels::ref

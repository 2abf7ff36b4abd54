// Physical layouts of an activation tensor [N, C, spatial...].
//
// The runtime hands plain row-major tensors from operator to operator, but
// fast kernels (oneDNN) compute in blocked or channels-last layouts. When a
// producer and all readers of a tensor speak the same non-plain layout, the
// session lets them exchange it directly and skips a reorder pair
// (runtime/session.cc negotiates; runtime/operator.h has the interface). A
// tensor keeps its logical shape [N, C, spatial...] whatever its layout, and
// every layout here holds exactly the plain layout's elements, so a buffer
// sized for the plain tensor serves all of them.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace wbs {

enum class ActivationLayout : int32_t {
  kPlain,         // N C [D] H W, row-major
  kBlocked16,     // N C/16 [D] H W 16 (oneDNN nC[D]HW16c); C % 16 == 0 only
  kChannelsLast,  // N [D] H W C (oneDNN n[d]hwc)
  kQuad4,         // N C/4 [D] H W 4 (oneDNN nC[d]hw4c; the int8 VNNI layout); C % 4 == 0 only
  kBlocked8,      // N C/8 [D] H W 8 (oneDNN nC[D]HW8c, the f32 block below AVX-512); C % 8 == 0
  kCount,
};

// "plain", "blocked16", "channels_last", "quad4", "blocked8".
const char* ActivationLayoutName(ActivationLayout layout);

// True when `layout` can hold a tensor of `shape` in the plain layout's
// size: always for kPlain; for the others rank 3..5 (1-3 spatial dims), and
// C % 16 == 0 for kBlocked16, C % 8 == 0 for kBlocked8, C % 4 == 0 for kQuad4.
bool LayoutFits(ActivationLayout layout, const Shape& shape);

// Byte reorders between kPlain and kQuad4 of `images` images of `channels`
// (a multiple of 4) x `plane` 8-bit elements (the int8 runtime's tensors).
void PlainToQuad4(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane);
void Quad4ToPlain(const uint8_t* x, uint8_t* y, int64_t images, int64_t channels, int64_t plane);

}  // namespace wbs

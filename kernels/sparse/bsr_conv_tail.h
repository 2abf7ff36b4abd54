// The valid positions of a BSR conv microkernel's last partial tile, shared
// by the AVX2 and AVX-512 kernels (plain C++, no intrinsics). FindBsrTail is
// `static` so each ISA's translation unit, built with its own -m flags, keeps
// its own copy: the linker can never pick an AVX-512 build for the AVX2 path.
#pragma once

#include <cstdint>

#include "kernels/sparse/bsr_conv.h"

namespace wbs::kernels::sparse {

// Positions [q, q_end) of the last partial tile; their flat positions and
// compact output indices when at most kMax of them are valid.
template <int kMax>
struct BsrTail {
  int64_t q = 0;     // first position of the partial tile (== q_end: none)
  int count = 0;     // valid positions in [q, q_end), or kMax + 1 if more
  int64_t qs[kMax] = {};  // their flat positions
  int64_t ys[kMax] = {};  // their compact output indices
};

// kTileQ: the kernel's positions per full tile. LaneGroup covers 16
// positions (bsr_conv.h).
template <int64_t kTileQ, int kMax>
static inline BsrTail<kMax> FindBsrTail(const BsrConvArgs& a) {
  BsrTail<kMax> t;
  t.q = a.q_begin + (a.q_end - a.q_begin) / kTileQ * kTileQ;
  for (int64_t q = t.q; q < a.q_end; ++q) {
    int64_t y = q;
    if (a.lanes) {
      const LaneGroup& g = a.lanes[q / 16];
      const int l = static_cast<int>(q % 16);
      if (!(g.mask >> l & 1u)) continue;
      y = g.y_index + __builtin_popcount(g.mask & ((1u << l) - 1));
    }
    if (t.count == kMax) {
      ++t.count;
      break;
    }
    t.qs[t.count] = q;
    t.ys[t.count] = y;
    ++t.count;
  }
  return t;
}

}  // namespace wbs::kernels::sparse

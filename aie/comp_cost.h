// The cycles one COMP instance takes on one core: the one cost rule the time
// model (aie/timeline.cc) and the simulator (sim/simulator.cc) share, so the
// estimate and the simulated time cannot diverge.
//
// An AIE-ML core is a VLIW processor: its vector MAC datapath and its vector
// ALU / shift-round-saturate (SRS) work issue in separate slots of one
// instruction bundle, so a software-pipelined kernel overlaps them (AM020
// "Functional Overview"; the requantization of one output vector runs while
// the MACs of the next accumulate). A COMP therefore costs the larger of
//   MAC cycles    = effective MACs / (core.macs_per_cycle.int8 x efficiency)
//   vector cycles = ceil(vector element-ops / core.vector_ops_per_cycle)
// where the element-ops (CompVectorOps) are the work with no MACs: pools,
// adds, rescales and a conv's requantization epilogue. Without the vector
// term every pool, add and rescale would be free.
#pragma once

#include <cstdint>

#include "aie/program.h"
#include "aie/target.h"

namespace wbs::aie {

// Vector element-operations of one COMP iteration on one core, with
// out = out_c x out_h x out_w output elements:
//   conv     out x 2 if it requantizes to u8/s8 (scale-shift, clamp), 0 if it
//            keeps the s32 partial (a CIN-split part other than the last)
//   add      out x 3 (two scale-shifts onto the common scale, add + clamp)
//   maxpool  out x kh x kw (one compare per window tap)
//   avgpool  out x kh x kw (one add per window tap; the divide rides along)
//   rescale  out x 2 (scale-shift, clamp)
// Deliberately simple: one op per int8 lane per cycle, no per-op latency.
int64_t CompVectorOps(const CompParams& c);

// Cycles of one COMP iteration on one core: max(MAC cycles, vector cycles)
// (above). `efficiency` (> 0) scales the MAC rate only; the vector kernels
// are element-wise streams the model takes at their full rate.
double CompCycles(const Target& t, const CompParams& c, double efficiency);

}  // namespace wbs::aie

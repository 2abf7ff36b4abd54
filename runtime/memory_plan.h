// Static activation memory plan.
//
// Given each buffer's size and lifetime [first, last] (step indices, both
// inclusive), assigns offsets in one arena so that buffers whose lifetimes
// overlap never overlap in memory. Greedy by size (largest first, lowest
// offset that fits) — the heuristic TFLite's arena planner uses; close to
// optimal on CNN chains and residual graphs.
#pragma once

#include <cstddef>
#include <vector>

namespace wbs::runtime {

struct BufferRequest {
  size_t bytes = 0;
  int first = 0;  // step that writes it
  int last = 0;   // last step that reads it
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per request, aligned to `alignment`
  size_t arena_bytes = 0;
};

MemoryPlan PlanMemory(const std::vector<BufferRequest>& requests, size_t alignment);

// True if no two lifetime-overlapping buffers overlap in memory and all fit
// in the arena (used by tests and debug checks).
bool PlanIsValid(const std::vector<BufferRequest>& requests, const MemoryPlan& plan);

}  // namespace wbs::runtime

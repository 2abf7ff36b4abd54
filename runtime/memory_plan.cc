#include "runtime/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace wbs::runtime {

namespace {
size_t AlignUp(size_t x, size_t a) { return (x + a - 1) / a * a; }
bool LifetimesOverlap(const BufferRequest& a, const BufferRequest& b) {
  return a.first <= b.last && b.first <= a.last;
}
}  // namespace

MemoryPlan PlanMemory(const std::vector<BufferRequest>& requests, size_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return requests[a].bytes > requests[b].bytes; });
  std::vector<size_t> placed;
  for (size_t idx : order) {
    const BufferRequest& r = requests[idx];
    size_t size = AlignUp(std::max<size_t>(r.bytes, 1), alignment);
    // Collect live-overlapping placed buffers sorted by offset, then take
    // the first gap large enough.
    std::vector<std::pair<size_t, size_t>> busy;  // [begin, end)
    for (size_t p : placed) {
      if (!LifetimesOverlap(r, requests[p])) continue;
      busy.emplace_back(plan.offsets[p], plan.offsets[p] + AlignUp(std::max<size_t>(requests[p].bytes, 1), alignment));
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (auto [b, e] : busy) {
      if (b >= offset + size) break;
      offset = std::max(offset, e);
    }
    plan.offsets[idx] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(idx);
  }
  return plan;
}

bool PlanIsValid(const std::vector<BufferRequest>& requests, const MemoryPlan& plan) {
  for (size_t i = 0; i < requests.size(); ++i) {
    if (plan.offsets[i] + requests[i].bytes > plan.arena_bytes) return false;
    for (size_t j = i + 1; j < requests.size(); ++j) {
      if (!LifetimesOverlap(requests[i], requests[j])) continue;
      size_t bi = plan.offsets[i], ei = bi + requests[i].bytes;
      size_t bj = plan.offsets[j], ej = bj + requests[j].bytes;
      if (bi < ej && bj < ei) return false;
    }
  }
  return true;
}

}  // namespace wbs::runtime

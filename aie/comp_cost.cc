#include "aie/comp_cost.h"

#include <algorithm>

namespace wbs::aie {

int64_t CompVectorOps(const CompParams& c) {
  const int64_t out = int64_t{c.out_c} * c.out_h * c.out_w;
  switch (c.kind) {
    case CompKind::kConv:
      return c.out_type == OutType::kS32 ? 0 : out * 2;
    case CompKind::kAdd:
      return out * 3;
    case CompKind::kMaxPool:
    case CompKind::kAvgPool:
      return out * c.kh * c.kw;
    case CompKind::kRescale:
      return out * 2;
    case CompKind::kCount:
      break;
  }
  return 0;
}

double CompCycles(const Target& t, const CompParams& c, double efficiency) {
  const double mac = static_cast<double>(c.macs) / (t.macs_per_cycle() * efficiency);
  const int64_t lanes = t.core.vector_ops_per_cycle;
  const int64_t vec = (CompVectorOps(c) + lanes - 1) / lanes;
  return std::max(mac, static_cast<double>(vec));
}

}  // namespace wbs::aie

// The pass pipeline (aie/passes/compiler.h).
#include <fmt/format.h>

#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {
struct Pass {
  const char* name;
  Status (*run)(CompileState&);
  std::string (*dump)(const CompileState&);
};
// Order: subvolume picks the core tile from the per-core share the split
// rule gives, split places it, balance fixes the channel ranges.
const Pass kPasses[] = {
    {"schedule", RunSchedule, DumpSchedule}, {"subvolume", RunSubvolume, DumpSubvolume},
    {"split", RunSplit, DumpSplit},          {"balance", RunBalance, DumpBalance},
    {"compact", RunCompact, DumpCompact},    {"memplan", RunMemPlan, DumpMemPlan},
    {"fusion", RunFusion, DumpFusion},       {"codegen", RunCodegen, DumpCodegen},
    {"time", RunTimeModel, DumpTimeModel},
};
}  // namespace

const std::vector<std::string>& PassNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const Pass& p : kPasses) v.push_back(p.name);
    return v;
  }();
  return names;
}

Status Compile(CompileState& s, const std::string& print_after, std::string* printed) {
  if (!print_after.empty()) {
    bool known = false;
    for (const Pass& p : kPasses) known |= print_after == p.name;
    if (!known) return InvalidArgument("--print-after: unknown pass '{}' (passes: {})", print_after, fmt::join(PassNames(), ", "));
  }
  for (const Pass& p : kPasses) {
    Status st = p.run(s);
    if (!st.ok()) return st.WithContext(fmt::format("aie pass {}", p.name));
    if (printed && print_after == p.name) *printed += p.dump(s);
  }
  return Status::Ok();
}

}  // namespace wbs::aie

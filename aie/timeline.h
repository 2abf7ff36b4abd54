// An event-driven schedule of an AIE program (aie/program.h) on a target:
// every instruction instance (block, iteration, instruction) is placed on
// the resources it occupies as early as its locks, its data hazards and
// those resources allow. The compiler's time model (aie/passes/time_model.cc)
// is this schedule; it is the same rule the simulator times with
// (docs/SIMULATOR.md "Timing"), so the two agree by construction up to the
// simulator's own choices, and the estimate needs no separate overlap
// formula: an iterated ping/pong block settles at its busiest resource per
// iteration, with the first iteration's latency as prologue and the last
// one's drain as epilogue, and blocks overlap as far as locks and data let
// them (a weight load into the other memtile half runs under the previous
// block's compute: the prefetch is real, not a credit).
//
// Resources (the earliest-free channel of each group is taken):
//   LOAD, LOADW      a shim read channel of each destination memtile
//   WRITE            a shim write channel of the source memtile
//   LOADFM, LOADWM   a memtile out channel + an in channel of every destination core
//   WRITEFM          a core out channel + a memtile in channel
//   COMP             each core's compute unit
// Durations: Target::transfer_cycles, MACs / (MACs per cycle x efficiency).
// Ready: the release time of each lock token consumed (FIFO) and, per memory
// space, the end of the earlier accesses whose byte range overlaps (read
// after write, write after read or write; the last kHazardHistory accesses
// per space are kept, older ones fold into a conservative floor).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aie/program.h"
#include "aie/target.h"

namespace wbs::aie {

class Timeline {
 public:
  static constexpr size_t kHazardHistory = 96;

  // `mac_efficiency` <= 0 takes the target's; the program's initial lock
  // values are tokens available at time 0.
  Timeline(const Target& t, double mac_efficiency, const Program& p);

  struct Slot {
    double start = 0, end = 0;           // cycles
    std::vector<std::string> resources;  // the channels it occupied (names as the simulator's)
  };
  // Schedules iteration `it` of `in` (call in program order).
  Slot Schedule(const Instruction& in, int64_t it);
  // Cycles an instruction instance occupies its resources.
  double Duration(const Instruction& in) const;
  double horizon() const { return horizon_; }  // the latest end so far
  // Busy cycles per resource so far.
  const std::map<std::string, double>& busy() const { return busy_; }

 private:
  struct HazardRec {
    int64_t lo = 0, hi = 0;
    double wend = 0, rend = 0;
  };
  struct HazardList {
    std::deque<HazardRec> recs;
    double wfloor = 0, rfloor = 0;
  };
  using Range = std::pair<int, std::pair<int64_t, int64_t>>;  // space id, [lo, hi)
  int SpaceId(const MemSpace& m) const;
  void Ranges(const Instruction& in, int64_t it, std::vector<Range>* reads,
              std::vector<Range>* writes) const;
  double Hazard(int space, std::pair<int64_t, int64_t> r, bool write) const;
  void Record(int space, std::pair<int64_t, int64_t> r, double end, bool write);

  Target t_;
  double eff_ = 1;
  std::map<std::tuple<int, int, int, int>, std::deque<std::pair<double, int64_t>>> tokens_;
  std::unordered_map<std::string, double> free_at_;
  std::map<std::string, double> busy_;
  std::unordered_map<int, HazardList> hazards_;
  double horizon_ = 0;
};

}  // namespace wbs::aie

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
// Durations: Target::transfer_cycles; a COMP, CompCycles (aie/comp_cost.h):
// max(MACs / (MACs per cycle x efficiency), vector ops / vector ops per cycle).
// Ready: the release time of each lock token consumed (FIFO) and, per memory
// space, the end of the earlier accesses that share a byte with this one
// (read after write, write after read or write; exact on strided patterns,
// Overlaps in aie/program.h; HazardTracker below, which the simulator uses
// too).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aie/program.h"
#include "aie/target.h"

namespace wbs::aie {

// Data hazards per memory space: the recent accesses (footprint, end of the
// writes and reads recorded for it, and which instance did it). A read waits
// for every earlier write it shares a byte with, a write for every earlier
// read or write. The last kHistory accesses per space are kept exactly;
// older ones fold into at most kOldRanges disjoint byte ranges per space
// (their bounding ranges merged, the latest ends kept: conservative, but an
// old write to one tensor never delays a read of another, as a single
// per-space floor did). The compiler's time model and the simulator share
// this one rule.
//
// Index: each space's addresses hash into kBuckets buckets of 2^shift bytes
// (address >> shift mod kBuckets; shift by memory kind, see BucketShift),
// and each bucket keeps the set of exact records whose bounding range
// touches it, so Conflict tests only the records that share a bucket with
// the query instead of all kHistory (a filter: two bounding ranges that
// share a byte share its bucket). Candidates are visited in the order of
// the plain scan, oldest first, so the answer (ties included) is the scan's.
class HazardTracker {
 public:
  static constexpr size_t kHistory = 96, kOldRanges = 64;
  struct Wait {
    double end = 0;
    int64_t by = -1;  // the instance it waits for (-1: none or unknown)
  };
  // The latest end of an earlier conflicting access to `space` (the first
  // such record on ties: folded ranges by address, then records oldest
  // first).
  Wait Conflict(const MemSpace& space, const Footprint& f, bool write) const;
  void Record(const MemSpace& space, const Footprint& f, double end, bool write, int64_t by = -1);

 private:
  static constexpr size_t kBuckets = 64, kSlotWords = 2;
  static_assert(kHistory <= 64 * kSlotWords, "a bucket's record set is kSlotWords words");
  struct Rec {
    Footprint f;
    double wend = 0, rend = 0;
    int64_t by = -1;
  };
  // A record's bounding range and ends, kept apart from its footprint so
  // the scan in Conflict touches a few bytes per record.
  struct Hot {
    int64_t lo = 0, hi = 0;
    double wend = 0, rend = 0;
  };
  struct Old {  // folded accesses over [lo, hi)
    int64_t lo = 0, hi = 0;
    double wend = 0, rend = 0;
    int64_t wby = -1, rby = -1;
  };
  using SlotSet = std::array<uint64_t, kSlotWords>;
  struct List {
    int shift = 0;  // bucket size 2^shift bytes
    // The last kHistory records, oldest first from `head` (ring buffers).
    std::vector<Rec> recs;
    std::vector<Hot> hot;
    std::vector<uint64_t> buckets_of;     // per slot: the buckets its range touches
    std::array<SlotSet, kBuckets> slots{};  // per bucket: the slots touching it
    size_t head = 0;
    std::vector<Old> old;  // disjoint, by start
  };
  static void Fold(List& h, const Rec& x);
  static int BucketShift(const MemSpace& m);
  static uint64_t Buckets(int shift, int64_t lo, int64_t hi);  // [lo, hi), non-empty
  static void Index(List& h, size_t slot, uint64_t buckets, bool on);
  static int64_t Key(const MemSpace& m) {
    return (int64_t{static_cast<int>(m.kind)} << 32) |
           (int64_t{static_cast<uint16_t>(m.index)} << 16) | static_cast<uint16_t>(m.col);
  }
  std::unordered_map<int64_t, List> spaces_;
};

class Timeline {
 public:
  // `mac_efficiency` <= 0 takes the target's; the program's initial lock
  // values are tokens available at time 0.
  Timeline(const Target& t, double mac_efficiency, const Program& p);

  struct Slot {
    double start = 0, end = 0;           // cycles
    std::vector<std::string> resources;  // the channels it occupied (names as the simulator's)
  };
  // Schedules iteration `it` of `in` (call in program order).
  Slot Schedule(const Instruction& in, int64_t it);
  // The same, without naming the channels: `ids` (reused, cleared first)
  // receives the channels it occupied, ResourceName(id) names them.
  void Schedule(const Instruction& in, int64_t it, double* start, double* end,
                std::vector<int>* ids);
  const std::string& ResourceName(int id) const { return names_[static_cast<size_t>(id)]; }
  // Cycles an instruction instance occupies its resources.
  double Duration(const Instruction& in) const;
  double horizon() const { return horizon_; }  // the latest end so far
  // Busy cycles per resource so far.
  std::map<std::string, double> busy() const;

 private:
  struct Access {
    MemSpace space;
    Footprint f;
    bool write = false;
  };
  // A channel group (its channels "PREFIX0", "PREFIX1", ..., or the one
  // resource "PREFIX" when `numbered` is false), keyed by what its prefix
  // names: the kind below and a memory space.
  enum class Group : uint8_t { kShimRead, kShimWrite, kOut, kIn, kCore };
  int ResourceId(Group g, const MemSpace& m, int channel);  // channel -1: unnumbered
  Target t_;
  double eff_ = 1;
  // Lock tokens by (tile, lock id): (release time, count), FIFO.
  struct LockHash {
    size_t operator()(const std::pair<int64_t, int>& k) const {
      return std::hash<int64_t>()(k.first * 1000003 + k.second);
    }
  };
  std::unordered_map<std::pair<int64_t, int>, std::deque<std::pair<double, int64_t>>, LockHash>
      tokens_;
  // Channels: ids by (group, space) then channel number; per id its name,
  // when it is next free and its busy cycles.
  std::unordered_map<int64_t, std::vector<int>> ids_;
  std::vector<std::string> names_;
  std::vector<double> free_at_, busy_;
  HazardTracker hazards_;
  std::vector<Access> accesses_;  // scratch of Schedule
  std::vector<std::pair<std::pair<Group, MemSpace>, int>>
      groups_;                 // scratch: group, channels (0: one)
  std::vector<int> slot_ids_;  // scratch of Schedule
  double horizon_ = 0;
};

}  // namespace wbs::aie

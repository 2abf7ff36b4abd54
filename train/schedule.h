// Sparsity schedules: the fraction of blocks that should be zero at a given
// point of fine-tuning, for the gradual methods (train/methods.h).
//
// A schedule is a non-decreasing step function of a "tick" t >= 0 (the caller
// picks the unit: epochs for the paper's incremental schedule, optimizer
// steps for the cubic one). Levels change only at "events"; at and after
// FinalTick() the level is exactly the target, so per-layer zero counts
// (round(level * blocks), sparse::ChooseBlocks) land on the exact target.
//
//   OneShot(s):              s from tick 0.
//   Incremental(s, f, k):    the paper's "Γ chosen in steps": at ticks
//                            0, k, 2k, ... zero a fraction f of the blocks
//                            still kept, i.e. level_j = 1 - (1 - f)^(j+1),
//                            clamped to s (the last event lands on s).
//   Cubic(si, sf, t0, T, n): Zhu & Gupta's gradual pruning:
//                            s_t = sf + (si - sf) (1 - (t - t0) / T)^3 for
//                            t0 <= t <= t0 + T, updated every n ticks
//                            (events at t0, t0 + n, ...; the level at an
//                            event holds until the next), sf from t0 + T on;
//                            0 before t0 (si is reached at t0).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs::train {

enum class ScheduleKind { kOneShot, kIncremental, kCubic };

// "oneshot" | "incremental" | "cubic".
Result<ScheduleKind> ParseScheduleKind(const std::string& text);
const char* ScheduleKindName(ScheduleKind k);

class SparsitySchedule {
 public:
  static Result<SparsitySchedule> OneShot(double target);
  // fraction in (0, 1], every >= 1.
  static Result<SparsitySchedule> Incremental(double target, double fraction, int64_t every);
  // 0 <= initial <= target, begin >= 0, length >= 1, every >= 1.
  static Result<SparsitySchedule> Cubic(double initial, double target, int64_t begin,
                                        int64_t length, int64_t every);

  ScheduleKind kind() const { return kind_; }
  double target() const { return target_; }
  // The level in force at tick t (t < 0 gives 0).
  double LevelAt(int64_t t) const;
  // True when an event at tick t changes the level (LevelAt(t) != LevelAt(t-1)).
  bool ChangesAt(int64_t t) const { return LevelAt(t) != LevelAt(t - 1); }
  // The first tick at which LevelAt(t) == target.
  int64_t FinalTick() const;
  // Every tick at which the level changes, with its level (for logs, tests).
  std::vector<std::pair<int64_t, double>> Events() const;
  // One line, e.g. "incremental 0.5: 10% of kept blocks every 1 tick (7 events)".
  std::string Describe() const;

 private:
  ScheduleKind kind_ = ScheduleKind::kOneShot;
  double target_ = 0;
  double initial_ = 0;
  double fraction_ = 0;
  int64_t begin_ = 0;
  int64_t length_ = 1;
  int64_t every_ = 1;
};

}  // namespace wbs::train

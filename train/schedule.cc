#include "train/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace wbs::train {
namespace {

bool IsFraction(double x) { return x >= 0.0 && x <= 1.0; }

// Within this of the target counts as the target: 1 - (1 - f)^j never reaches
// a target of 1 exactly.
constexpr double kSnap = 1e-9;

// One incremental event: zero `fraction` of the blocks still kept.
double IncrementalStep(double level, double fraction, double target) {
  const double next = std::min(target, level + fraction * (1.0 - level));
  return target - next < kSnap ? target : next;
}

}  // namespace

Result<ScheduleKind> ParseScheduleKind(const std::string& text) {
  if (text == "oneshot") return ScheduleKind::kOneShot;
  if (text == "incremental") return ScheduleKind::kIncremental;
  if (text == "cubic") return ScheduleKind::kCubic;
  return InvalidArgument("unknown schedule '{}' (oneshot|incremental|cubic)", text);
}

const char* ScheduleKindName(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::kOneShot:
      return "oneshot";
    case ScheduleKind::kIncremental:
      return "incremental";
    case ScheduleKind::kCubic:
      return "cubic";
  }
  return "?";
}

Result<SparsitySchedule> SparsitySchedule::OneShot(double target) {
  if (!IsFraction(target)) return InvalidArgument("sparsity {} is not in [0, 1]", target);
  SparsitySchedule s;
  s.kind_ = ScheduleKind::kOneShot;
  s.target_ = target;
  return s;
}

Result<SparsitySchedule> SparsitySchedule::Incremental(double target, double fraction,
                                                       int64_t every) {
  if (!IsFraction(target)) return InvalidArgument("sparsity {} is not in [0, 1]", target);
  if (!(fraction > 0.0 && fraction <= 1.0)) {
    return InvalidArgument("incremental step fraction {} is not in (0, 1]", fraction);
  }
  if (every < 1) return InvalidArgument("incremental interval {} must be >= 1", every);
  SparsitySchedule s;
  s.kind_ = ScheduleKind::kIncremental;
  s.target_ = target;
  s.fraction_ = fraction;
  s.every_ = every;
  return s;
}

Result<SparsitySchedule> SparsitySchedule::Cubic(double initial, double target, int64_t begin,
                                                 int64_t length, int64_t every) {
  if (!IsFraction(target)) return InvalidArgument("sparsity {} is not in [0, 1]", target);
  if (!IsFraction(initial) || initial > target) {
    return InvalidArgument("cubic initial sparsity {} is not in [0, {}]", initial, target);
  }
  if (begin < 0) return InvalidArgument("cubic start {} must be >= 0", begin);
  if (length < 1) return InvalidArgument("cubic length {} must be >= 1", length);
  if (every < 1) return InvalidArgument("cubic update interval {} must be >= 1", every);
  SparsitySchedule s;
  s.kind_ = ScheduleKind::kCubic;
  s.target_ = target;
  s.initial_ = initial;
  s.begin_ = begin;
  s.length_ = length;
  s.every_ = every;
  return s;
}

double SparsitySchedule::LevelAt(int64_t t) const {
  if (t < 0) return 0.0;
  switch (kind_) {
    case ScheduleKind::kOneShot:
      return target_;
    case ScheduleKind::kIncremental: {
      // Level after j+1 events; computed by repeated steps rather than pow so
      // the value at an event is the same however it is reached.
      const int64_t events = t / every_ + 1;
      double level = 0.0;
      for (int64_t j = 0; j < events && level < target_; ++j)
        level = IncrementalStep(level, fraction_, target_);
      return level;
    }
    case ScheduleKind::kCubic: {
      if (t < begin_) return 0.0;
      if (t >= begin_ + length_) return target_;
      const int64_t event = begin_ + ((t - begin_) / every_) * every_;
      const double progress = static_cast<double>(event - begin_) / static_cast<double>(length_);
      const double r = 1.0 - progress;
      return std::clamp(target_ + (initial_ - target_) * r * r * r, 0.0, target_);
    }
  }
  return target_;
}

int64_t SparsitySchedule::FinalTick() const {
  switch (kind_) {
    case ScheduleKind::kOneShot:
      return 0;
    case ScheduleKind::kIncremental: {
      if (target_ <= 0.0) return 0;
      double level = 0.0;
      int64_t j = 0;
      while (true) {
        level = IncrementalStep(level, fraction_, target_);
        if (level >= target_) return j * every_;
        ++j;
      }
    }
    case ScheduleKind::kCubic: {
      // An earlier event may already hold the target only when initial ==
      // target; otherwise the cubic reaches it at begin + length exactly.
      if (initial_ >= target_) return begin_;
      return begin_ + length_;
    }
  }
  return 0;
}

std::vector<std::pair<int64_t, double>> SparsitySchedule::Events() const {
  std::vector<std::pair<int64_t, double>> ev;
  const int64_t last = FinalTick();
  for (int64_t t = 0; t <= last; ++t)
    if (ChangesAt(t)) ev.emplace_back(t, LevelAt(t));
  return ev;
}

std::string SparsitySchedule::Describe() const {
  const size_t n = Events().size();
  switch (kind_) {
    case ScheduleKind::kOneShot:
      return fmt::format("oneshot {:.4g}", target_);
    case ScheduleKind::kIncremental:
      return fmt::format(
          "incremental to {:.4g}: {:.4g}% of the kept blocks every {} tick(s), {} "
          "events, target at tick {}",
          target_, 100.0 * fraction_, every_, n, FinalTick());
    case ScheduleKind::kCubic:
      return fmt::format("cubic {:.4g} -> {:.4g} over ticks [{}, {}), every {}, {} events",
                         initial_, target_, begin_, begin_ + length_, every_, n);
  }
  return "?";
}

}  // namespace wbs::train

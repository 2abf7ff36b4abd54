// Calibration observers: from the values an activation tensor takes over the
// calibration images, the real range [lo, hi] its 8-bit encoding covers.
//
// Every observer first sees the tensor's min and max (pass 1); the
// histogram-based ones (percentile, MSE, entropy) then fill a histogram of
// kBins bins over [min, max] (pass 2) and pick the range from it. Exact zeros
// (half of a ReLU output) are counted apart from the histogram: every range
// contains 0 and 0 is exactly representable (integer zero point), so they
// cost nothing in MSE and KL; left in, their spike dominates both and drives
// the search to the narrowest range it tries.
//   minmax      [min, max]
//   percentile  lo = the (100 - p)-th percentile when min < 0 (else min),
//               hi = the p-th percentile (p = 99.99 by default)
//   mse         [a*min, a*max] minimising the expected squared error: bins
//               inside the range add step^2/12 (rounding), bins outside their
//               clipping distance squared
//   entropy     [a*min, a*max] minimising KL(P || Q), P the (non-zero)
//               histogram with the clipped mass folded into the end bins, Q
//               the in-range histogram merged into 256 levels and spread back
//               over P's non-empty bins (TensorRT's calibrator); candidates
//               keep at least 256 bins inside the range (below that the
//               histogram cannot see rounding error), i.e. a >= 1/8
// with a in a fixed grid from 1 down to 0.05. Ranges always contain 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace wbs::quant {

enum class ObserverKind { kMinMax, kPercentile, kMse, kEntropy };
const char* ObserverName(ObserverKind k);
Result<ObserverKind> ParseObserver(const std::string& name);

struct ActRange {
  float lo = 0.f;
  float hi = 0.f;
};

class Observer {
 public:
  static constexpr int kBins = 2048;
  explicit Observer(ObserverKind kind = ObserverKind::kMinMax, double percentile = 99.99)
      : kind_(kind), percentile_(percentile) {}

  bool needs_histogram() const { return kind_ != ObserverKind::kMinMax; }
  void ObserveRange(const float* x, int64_t n);      // pass 1
  void ObserveHistogram(const float* x, int64_t n);  // pass 2 (after pass 1)
  // The chosen range for `levels` quantization levels (256), containing 0.
  ActRange Range(int levels = 256) const;
  // Fraction of observed values outside [r.lo, r.hi] (from the histogram;
  // 0 for minmax, which never clips).
  double ClippedFraction(const ActRange& r) const;

  float min() const { return min_; }
  float max() const { return max_; }
  int64_t count() const { return count_; }
  // Histogram of the non-zero values; zeros() counts the exact zeros.
  const std::vector<double>& histogram() const { return hist_; }
  double zeros() const { return zeros_; }

 private:
  double BinCenter(int i) const;
  int ZeroBin() const;  // the bin holding 0
  ActRange Percentile() const;
  ActRange SearchScaled(int levels, bool kl) const;

  ObserverKind kind_;
  double percentile_;
  float min_ = 0.f, max_ = 0.f;  // include 0
  int64_t count_ = 0;
  std::vector<double> hist_;
  double zeros_ = 0;
  double hist_lo_ = 0, hist_hi_ = 0;
};

}  // namespace wbs::quant

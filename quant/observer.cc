#include "quant/observer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wbs::quant {

const char* ObserverName(ObserverKind k) {
  switch (k) {
    case ObserverKind::kMinMax:
      return "minmax";
    case ObserverKind::kPercentile:
      return "percentile";
    case ObserverKind::kMse:
      return "mse";
    case ObserverKind::kEntropy:
      return "entropy";
  }
  return "?";
}

Result<ObserverKind> ParseObserver(const std::string& name) {
  for (ObserverKind k : {ObserverKind::kMinMax, ObserverKind::kPercentile, ObserverKind::kMse,
                         ObserverKind::kEntropy}) {
    if (name == ObserverName(k)) return k;
  }
  return InvalidArgument("unknown observer '{}' (minmax, percentile, mse, entropy)", name);
}

void Observer::ObserveRange(const float* x, int64_t n) {
  float lo = min_, hi = max_;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  min_ = lo;
  max_ = hi;
  count_ += n;
}

void Observer::ObserveHistogram(const float* x, int64_t n) {
  if (hist_.empty()) {
    hist_.assign(kBins, 0.0);
    hist_lo_ = min_;
    hist_hi_ = max_;
  }
  const double width = (hist_hi_ - hist_lo_) / kBins;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    // min == max means every value was 0 (the range contains 0).
    if (x[i] == 0.f || !(width > 0)) {
      zeros_ += 1.0;
      continue;
    }
    const int b = static_cast<int>((x[i] - hist_lo_) / width);
    hist_[std::clamp(b, 0, kBins - 1)] += 1.0;
  }
}

double Observer::BinCenter(int i) const {
  return hist_lo_ + (i + 0.5) * (hist_hi_ - hist_lo_) / kBins;
}

int Observer::ZeroBin() const {
  const double width = (hist_hi_ - hist_lo_) / kBins;
  if (!(width > 0)) return 0;
  return std::clamp(static_cast<int>((0.0 - hist_lo_) / width), 0, kBins - 1);
}

ActRange Observer::Range(int levels) const {
  const ActRange full{min_, max_};
  if (kind_ == ObserverKind::kMinMax || hist_.empty() || !(max_ > min_)) return full;
  if (kind_ == ObserverKind::kPercentile) return Percentile();
  return SearchScaled(levels, kind_ == ObserverKind::kEntropy);
}

ActRange Observer::Percentile() const {
  // Percentiles of all values: the zeros go back into their bin.
  std::vector<double> hist = hist_;
  hist[static_cast<size_t>(ZeroBin())] += zeros_;
  double total = 0;
  for (double c : hist) total += c;
  if (total <= 0) return {min_, max_};
  const double width = (hist_hi_ - hist_lo_) / kBins;
  const double tail = total * (1.0 - percentile_ / 100.0);
  ActRange r{min_, max_};
  // hi: the upper edge of the bin where the cumulative count from the top
  // passes the tail mass.
  double acc = 0;
  for (int i = kBins - 1; i >= 0; --i) {
    acc += hist[i];
    if (acc > tail) {
      r.hi = static_cast<float>(std::min<double>(max_, hist_lo_ + (i + 1) * width));
      break;
    }
  }
  if (min_ < 0) {
    acc = 0;
    for (int i = 0; i < kBins; ++i) {
      acc += hist[i];
      if (acc > tail) {
        r.lo = static_cast<float>(std::max<double>(min_, hist_lo_ + i * width));
        break;
      }
    }
  }
  r.lo = std::min(r.lo, 0.f);
  r.hi = std::max(r.hi, 0.f);
  return r;
}

ActRange Observer::SearchScaled(int levels, bool kl) const {
  constexpr int kSteps = 96;
  constexpr double kMinFactor = 0.05;
  ActRange best{min_, max_};
  double best_cost = std::numeric_limits<double>::infinity();
  for (int s = 0; s <= kSteps; ++s) {
    const double a = 1.0 - (1.0 - kMinFactor) * s / kSteps;
    const double lo = a * min_, hi = a * max_;
    const double step = (hi - lo) / (levels - 1);
    if (!(step > 0)) continue;
    double cost = 0;
    if (!kl) {
      for (int i = 0; i < kBins; ++i) {
        if (hist_[i] == 0) continue;
        const double v = BinCenter(i);
        const double d = v < lo ? lo - v : (v > hi ? v - hi : 0.0);
        cost += hist_[i] * (d > 0 ? d * d : step * step / 12.0);
      }
    } else {
      // P over the bins inside [lo, hi], clipped mass folded into the ends;
      // Q: the in-range histogram merged into `levels` equal-width levels,
      // each level's mass spread evenly over the bins where P is non-empty.
      std::vector<double> p(kBins, 0.0);
      int first = kBins, last = -1;
      for (int i = 0; i < kBins; ++i) {
        const double v = BinCenter(i);
        if (v < lo) continue;
        if (v > hi) continue;
        first = std::min(first, i);
        last = std::max(last, i);
      }
      const int n = last - first + 1;
      // Fewer bins than levels: the histogram cannot tell the quantization
      // error (TensorRT starts its thresholds at `levels` bins too).
      if (last < first || n < levels) continue;
      for (int i = 0; i < kBins; ++i) p[std::clamp(i, first, last)] += hist_[i];
      // Q is built from the in-range histogram without the folded clipped
      // mass, so clipping shows up as divergence.
      std::vector<double> q(kBins, 0.0);
      for (int l = 0; l < levels; ++l) {
        const int b0 = first + static_cast<int>(static_cast<int64_t>(l) * n / levels);
        const int b1 = first + static_cast<int>(static_cast<int64_t>(l + 1) * n / levels);
        double mass = 0;
        int nonzero = 0;
        for (int i = b0; i < b1; ++i) {
          mass += hist_[i];
          nonzero += p[i] > 0;
        }
        // P's support, not the histogram's: an end bin that is empty but
        // holds folded clipped mass must get a share of Q, else the
        // smoothing constant below makes that range look infinitely bad.
        for (int i = b0; i < b1; ++i)
          if (p[i] > 0) q[i] = mass / nonzero;
      }
      double pt = 0, qt = 0;
      for (int i = first; i <= last; ++i) {
        pt += p[i];
        qt += q[i];
      }
      if (!(pt > 0) || !(qt > 0)) continue;
      constexpr double kEps = 1e-12;  // smoothing for bins Q leaves empty
      for (int i = first; i <= last; ++i) {
        if (p[i] <= 0) continue;
        cost += (p[i] / pt) * std::log((p[i] / pt) / std::max(q[i] / qt, kEps));
      }
    }
    if (cost < best_cost) {
      best_cost = cost;
      best = {static_cast<float>(lo), static_cast<float>(hi)};
    }
  }
  return best;
}

double Observer::ClippedFraction(const ActRange& r) const {
  if (hist_.empty()) return 0.0;
  double total = zeros_, out = 0;  // zeros are always inside
  for (int i = 0; i < kBins; ++i) {
    total += hist_[i];
    const double v = BinCenter(i);
    if (v < r.lo || v > r.hi) out += hist_[i];
  }
  return total > 0 ? out / total : 0.0;
}

}  // namespace wbs::quant

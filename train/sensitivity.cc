#include "train/sensitivity.h"

#include <algorithm>
#include <cmath>

#include "train/methods_data.h"

namespace wbs::train {
namespace {

constexpr int kBisectIterations = 60;

// The accuracy drop of one layer as a non-decreasing piecewise-linear curve
// over (0, 0), (level_i, drop_i).
struct DropCurve {
  std::vector<double> x;
  std::vector<double> y;
  // The highest level whose drop is <= tau (the curve is non-decreasing).
  double MaxLevel(double tau) const {
    double best = 0.0;
    for (size_t i = 1; i < x.size(); ++i) {
      if (y[i] <= tau) {
        best = x[i];
        continue;
      }
      // Crossing inside (x[i-1], x[i]].
      if (y[i - 1] <= tau && y[i] > y[i - 1])
        best = x[i - 1] + (x[i] - x[i - 1]) * (tau - y[i - 1]) / (y[i] - y[i - 1]);
      break;
    }
    return best;
  }
};

}  // namespace

Result<SensitivityReport> ScanSensitivity(GraphModule& m, const data::Dataset& val,
                                          const data::Normalization& norm,
                                          const SensitivityOptions& o) {
  for (double l : o.levels) {
    if (!(l > 0.0 && l <= 1.0)) return InvalidArgument("sensitivity level {} is not in (0, 1]", l);
  }
  if (!std::is_sorted(o.levels.begin(), o.levels.end()) || o.levels.empty()) {
    return InvalidArgument("sensitivity levels must be given in increasing order");
  }
  WBS_ASSIGN_OR_RETURN(std::vector<BlockLayer> layers, FindBlockLayers(m, o.rules));
  if (layers.empty()) return InvalidArgument("the model has no blockable layer");
  WBS_ASSIGN_OR_RETURN(auto scores, MagnitudeScores(m, layers, o.score));
  m.ClearMasks();
  SensitivityReport r;
  r.levels = o.levels;
  WBS_ASSIGN_OR_RETURN(r.dense, EvaluateModule(m, val, norm, o.max_images, o.batch_size, o.device));
  SelectOptions so;
  so.keep_channels = o.keep_channels;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerSensitivity ls;
    ls.node = layers[i].node;
    ls.weight = layers[i].weight;
    ls.blocks = layers[i].num_blocks();
    for (size_t k = 0; k < o.levels.size(); ++k) {
      so.sparsity = o.levels[k];
      WBS_ASSIGN_OR_RETURN(auto masks, SelectMasks({layers[i]}, {scores[i]}, so, o.levels[k]));
      // Forward multiplies by the mask; the weight itself stays intact.
      WBS_RETURN_IF_ERROR(m.SetMask(layers[i].weight, masks[0]));
      Result<EvalResult> e = EvaluateModule(m, val, norm, o.max_images, o.batch_size, o.device);
      m.ClearMasks();
      if (!e.ok()) return e.status().WithContext("layer '" + layers[i].node + "'");
      ls.achieved.push_back(BlockSparsity(masks));
      ls.eval.push_back(*e);
      if (o.progress) o.progress(i, k);
    }
    r.layers.push_back(std::move(ls));
  }
  return r;
}

Result<std::map<std::string, double>> AllocateTargets(const SensitivityReport& r, double target) {
  if (!(target >= 0.0 && target <= 1.0))
    return InvalidArgument("target {} is not in [0, 1]", target);
  if (r.layers.empty()) return InvalidArgument("no layers in the sensitivity report");
  std::vector<DropCurve> curves;
  double total_blocks = 0, max_drop = 0;
  for (const LayerSensitivity& l : r.layers) {
    DropCurve c;
    c.x.push_back(0.0);
    c.y.push_back(0.0);
    for (size_t k = 0; k < l.eval.size(); ++k) {
      const double drop = std::max(0.0, r.dense.accuracy - l.eval[k].accuracy);
      c.x.push_back(r.levels[k]);
      c.y.push_back(std::max(c.y.back(), drop));  // monotone: more zeros never help
      max_drop = std::max(max_drop, c.y.back());
    }
    curves.push_back(std::move(c));
    total_blocks += static_cast<double>(l.blocks);
  }
  auto assign = [&](double tau) {
    std::vector<double> t;
    for (const DropCurve& c : curves) t.push_back(c.MaxLevel(tau));
    return t;
  };
  auto mean = [&](const std::vector<double>& t) {
    double s = 0;
    for (size_t i = 0; i < t.size(); ++i) s += t[i] * static_cast<double>(r.layers[i].blocks);
    return s / total_blocks;
  };
  std::vector<double> hi = assign(max_drop + 1.0), lo = assign(0.0);
  if (mean(hi) + 1e-12 < target) {
    return InvalidArgument(
        "target {} is above the {:.4g} the scanned levels allow (scan up to a "
        "higher level)",
        target, mean(hi));
  }
  if (mean(lo) >= target) {
    // Even zero tolerance gives enough: scale the free levels down.
    const double f = mean(lo) > 0 ? target / mean(lo) : 0.0;
    for (double& t : lo) t *= f;
    hi = lo;
  } else {
    double a = 0.0, b = max_drop + 1.0;
    for (int it = 0; it < kBisectIterations; ++it) {
      const double mid = 0.5 * (a + b);
      (mean(assign(mid)) < target ? a : b) = mid;
    }
    lo = assign(a);
    hi = assign(b);
  }
  const double ml = mean(lo), mh = mean(hi);
  const double lambda = mh > ml ? (target - ml) / (mh - ml) : 1.0;
  std::map<std::string, double> out;
  for (size_t i = 0; i < r.layers.size(); ++i)
    out[r.layers[i].node] = std::clamp(lo[i] + lambda * (hi[i] - lo[i]), 0.0, 1.0);
  return out;
}

}  // namespace wbs::train

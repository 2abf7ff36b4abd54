#include "sparse/sparsify.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

namespace wbs::sparse {
namespace {

// splitmix64: a cheap, well-mixed hash for seeded tie-breaking.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int64_t RoundCount(double fraction, int64_t n) {
  return std::clamp<int64_t>(std::llround(fraction * static_cast<double>(n)), 0, n);
}

// Zeroing candidates of one layer (blocks not protected by keep_channels),
// weakest first.
std::vector<int64_t> Candidates(const LayerScores& l, const SparsifyOptions& o, size_t layer) {
  const int64_t n = l.rows * l.cols;
  std::vector<uint8_t> prot;
  if (o.keep_channels) prot = ProtectedBlocks(l.scores, l.rows, l.cols);
  std::vector<int64_t> cand;
  cand.reserve(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b)
    if (prot.empty() || !prot[static_cast<size_t>(b)]) cand.push_back(b);
  auto tie = [&](int64_t b) -> uint64_t {
    return o.seed == 0 ? static_cast<uint64_t>(b) : Mix(o.seed ^ Mix(layer * 0x1000193ull + b));
  };
  std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) {
    const double sa = l.scores[static_cast<size_t>(a)], sb = l.scores[static_cast<size_t>(b)];
    if (sa != sb) return sa < sb;
    return tie(a) < tie(b);
  });
  return cand;
}

template <typename F>
void ForEachBlock(const WeightView& v, const BlockMask& m, F&& f) {
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) {
      const int64_t o_end = std::min(v.cout, (r + 1) * m.block_rows);
      const int64_t i_end = std::min(v.cin, (c + 1) * m.block_cols);
      f(r, c, (o_end - r * m.block_rows) * (i_end - c * m.block_cols) * v.kernel, o_end, i_end);
    }
  }
}

// The view of `weight` under `mask`'s layout, if the mask fits it.
Result<WeightView> FittingView(const Tensor& weight, const BlockMask& mask) {
  const std::string what = "weight " + ShapeToString(weight.shape());
  WBS_ASSIGN_OR_RETURN(WeightView v, MakeWeightView(weight.shape(), mask.layout, what));
  if (mask.block_rows < kMinBlockEdge || mask.block_cols < kMinBlockEdge ||
      mask.rows != (v.cout + mask.block_rows - 1) / mask.block_rows ||
      mask.cols != (v.cin + mask.block_cols - 1) / mask.block_cols ||
      static_cast<int64_t>(mask.keep.size()) != mask.rows * mask.cols) {
    return InvalidArgument("{}: mask of {}x{} blocks of {}x{} does not fit", what, mask.rows,
                           mask.cols, mask.block_rows, mask.block_cols);
  }
  return v;
}

}  // namespace

Result<Tensor> ApplyMask(const Tensor& weight, const BlockMask& mask) {
  WBS_ASSIGN_OR_RETURN(WeightView v, FittingView(weight, mask));
  Tensor out = weight.Clone();
  const size_t es = DTypeSize(weight.dtype());
  auto* d = static_cast<unsigned char*>(out.raw());
  // A block row's (input channel, kernel) elements are one run when the
  // input channels are kernel-contiguous (kOutIn): one memset per row.
  const bool runs = v.in_stride == v.kernel;
  ForEachBlock(v, mask, [&](int64_t r, int64_t c, int64_t, int64_t o_end, int64_t i_end) {
    if (mask.Get(r, c)) return;
    const int64_t i0 = c * mask.block_cols;
    for (int64_t o = r * mask.block_rows; o < o_end; ++o) {
      if (runs) {
        std::memset(d + static_cast<size_t>(o * v.out_stride + i0 * v.in_stride) * es, 0,
                    static_cast<size_t>((i_end - i0) * v.kernel) * es);
        continue;
      }
      for (int64_t i = i0; i < i_end; ++i)
        for (int64_t k = 0; k < v.kernel; ++k)
          std::memset(d + static_cast<size_t>(o * v.out_stride + i * v.in_stride + k) * es, 0, es);
    }
  });
  return out;
}

Result<MaskStats> ComputeMaskStats(const Tensor& weight, const BlockMask& mask) {
  WBS_ASSIGN_OR_RETURN(WeightView v, FittingView(weight, mask));
  MaskStats s;
  s.blocks = mask.num_blocks();
  s.zero_blocks = mask.num_zero();
  s.weights = weight.numel();
  WBS_ASSIGN_OR_RETURN(s.zero_weights, CountZeroElements(weight));
  const int64_t es = static_cast<int64_t>(DTypeSize(weight.dtype()));
  s.dense_bytes = s.weights * es;
  s.compressed_bytes = (mask.rows + 1) * kBsrIndexBytes;
  ForEachBlock(v, mask, [&](int64_t r, int64_t c, int64_t numel, int64_t, int64_t) {
    if (mask.Get(r, c)) s.compressed_bytes += kBsrIndexBytes + numel * es;
  });
  return s;
}

std::vector<uint8_t> ProtectedBlocks(const std::vector<double>& scores, int64_t rows,
                                     int64_t cols) {
  std::vector<uint8_t> prot(static_cast<size_t>(rows * cols), 0);
  auto at = [&](int64_t r, int64_t c) { return scores[static_cast<size_t>(r * cols + c)]; };
  for (int64_t r = 0; r < rows; ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < cols; ++c)
      if (at(r, c) > at(r, best)) best = c;
    if (cols > 0) prot[static_cast<size_t>(r * cols + best)] = 1;
  }
  for (int64_t c = 0; c < cols; ++c) {
    int64_t best = 0;
    for (int64_t r = 1; r < rows; ++r)
      if (at(r, c) > at(best, c)) best = r;
    if (rows > 0) prot[static_cast<size_t>(best * cols + c)] = 1;
  }
  return prot;
}

Status ValidateOptions(const SparsifyOptions& o) {
  auto frac = [](double x) { return x >= 0.0 && x <= 1.0; };
  if (!frac(o.sparsity)) return InvalidArgument("--sparsity {} is not in [0, 1]", o.sparsity);
  if (!frac(o.min_layer)) return InvalidArgument("--min-layer {} is not in [0, 1]", o.min_layer);
  if (!frac(o.max_layer)) return InvalidArgument("--max-layer {} is not in [0, 1]", o.max_layer);
  if (o.min_layer > o.max_layer) {
    return InvalidArgument("--min-layer {} is above --max-layer {}", o.min_layer, o.max_layer);
  }
  const LayerRules& r = o.rules;
  if (r.block_rows < kMinBlockEdge || r.block_rows > kMaxBlockEdge ||
      r.block_cols < kMinBlockEdge || r.block_cols > kMaxBlockEdge) {
    return InvalidArgument("block {}x{}: edges must be in {}..{}", r.block_rows, r.block_cols,
                           kMinBlockEdge, kMaxBlockEdge);
  }
  return Status::Ok();
}

Result<std::vector<std::vector<uint8_t>>> ChooseBlocks(const std::vector<LayerScores>& layers,
                                                       const SparsifyOptions& o) {
  WBS_RETURN_IF_ERROR(ValidateOptions(o));
  std::vector<std::vector<int64_t>> cand(layers.size());
  std::vector<int64_t> zero_count(layers.size(), 0);
  int64_t total_blocks = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerScores& s = layers[l];
    if (s.rows < 0 || s.cols < 0 || static_cast<int64_t>(s.scores.size()) != s.rows * s.cols) {
      return InvalidArgument("layer {}: {} scores for {}x{} blocks", l, s.scores.size(), s.rows,
                             s.cols);
    }
    cand[l] = Candidates(s, o, l);
    total_blocks += s.rows * s.cols;
  }
  if (!o.global) {
    for (size_t l = 0; l < layers.size(); ++l) {
      zero_count[l] = std::min<int64_t>(RoundCount(o.sparsity, layers[l].rows * layers[l].cols),
                                        static_cast<int64_t>(cand[l].size()));
    }
  } else {
    // Each layer first gets its minimum, then the weakest normalised
    // candidates across layers fill the global count, up to each maximum.
    std::vector<int64_t> hi(layers.size());
    std::vector<double> inv_mean(layers.size(), 0.0);
    int64_t assigned = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const int64_t n = layers[l].rows * layers[l].cols;
      const int64_t zeroable = static_cast<int64_t>(cand[l].size());
      zero_count[l] = std::min(RoundCount(o.min_layer, n), zeroable);
      hi[l] = std::max(zero_count[l], std::min(RoundCount(o.max_layer, n), zeroable));
      assigned += zero_count[l];
      const double sum = std::accumulate(layers[l].scores.begin(), layers[l].scores.end(), 0.0);
      if (n > 0 && sum > 0.0) inv_mean[l] = static_cast<double>(n) / sum;
    }
    struct Pick {
      double norm;
      size_t layer;
      int64_t pos;
    };
    std::vector<Pick> pool;
    for (size_t l = 0; l < layers.size(); ++l)
      for (int64_t p = zero_count[l]; p < hi[l]; ++p)
        pool.push_back(
            {layers[l].scores[static_cast<size_t>(cand[l][static_cast<size_t>(p)])] * inv_mean[l],
             l, p});
    std::sort(pool.begin(), pool.end(), [](const Pick& a, const Pick& b) {
      if (a.norm != b.norm) return a.norm < b.norm;
      if (a.layer != b.layer) return a.layer < b.layer;
      return a.pos < b.pos;
    });
    // Within a layer, candidates are sorted by raw score, so the picks from
    // one layer are always a prefix of its remaining candidates.
    const int64_t want = RoundCount(o.sparsity, total_blocks) - assigned;
    for (int64_t i = 0; i < want && i < static_cast<int64_t>(pool.size()); ++i)
      ++zero_count[pool[static_cast<size_t>(i)].layer];
  }
  std::vector<std::vector<uint8_t>> keep(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    keep[l].assign(static_cast<size_t>(layers[l].rows * layers[l].cols), 1);
    for (int64_t p = 0; p < zero_count[l]; ++p)
      keep[l][static_cast<size_t>(cand[l][static_cast<size_t>(p)])] = 0;
  }
  return keep;
}

Result<SparsifyReport> Sparsify(ir::Graph& graph, const SparsifyOptions& o) {
  WBS_RETURN_IF_ERROR(ValidateOptions(o));
  WBS_ASSIGN_OR_RETURN(std::vector<Layer> layers, FindLayers(graph, o.rules));
  const int br = o.rules.block_rows, bc = o.rules.block_cols;
  std::vector<LayerScores> scores;
  for (const Layer& l : layers) {
    if (!l.blockable) continue;
    Result<std::vector<double>> s = BlockScores(l.weight->constant, l.layout, br, bc, o.score);
    if (!s.ok()) return s.status().WithContext(l.node->Describe());
    scores.push_back({std::move(*s), (l.view.cout + br - 1) / br, (l.view.cin + bc - 1) / bc});
  }
  WBS_ASSIGN_OR_RETURN(auto keep, ChooseBlocks(scores, o));

  SparsifyReport report;
  size_t next = 0;
  for (const Layer& l : layers) {
    LayerReport r;
    r.name = l.node->name;
    r.op_type = l.node->op_type;
    r.blockable = l.blockable;
    r.reason = l.reason;
    if (l.weight) {
      r.weight = l.weight->name;
      r.weight_shape = l.weight->constant.shape();
    }
    if (l.blockable) {
      const LayerScores& s = scores[next];
      BlockMask mask = BlockMask::AllKept(br, bc, s.rows, s.cols, l.layout);
      mask.keep = std::move(keep[next]);
      ++next;
      Result<Tensor> masked = ApplyMask(l.weight->constant, mask);
      if (!masked.ok()) return masked.status().WithContext(l.node->Describe());
      Result<MaskStats> st = ComputeMaskStats(*masked, mask);
      if (!st.ok()) return st.status().WithContext(l.node->Describe());
      r.stats = *st;
      l.weight->constant = std::move(*masked);
      l.weight->block_mask = std::make_shared<BlockMask>(std::move(mask));
      ++report.num_blockable;
      report.total.blocks += r.stats.blocks;
      report.total.zero_blocks += r.stats.zero_blocks;
    } else if (l.weight && !r.reason.starts_with("weight shared")) {
      const Tensor& w = l.weight->constant;
      r.stats.weights = w.numel();
      r.stats.dense_bytes = r.stats.compressed_bytes = static_cast<int64_t>(w.nbytes());
      if (Result<int64_t> z = CountZeroElements(w); z.ok()) r.stats.zero_weights = *z;
    }
    report.total.weights += r.stats.weights;
    report.total.zero_weights += r.stats.zero_weights;
    report.total.dense_bytes += r.stats.dense_bytes;
    report.total.compressed_bytes += r.stats.compressed_bytes;
    report.layers.push_back(std::move(r));
  }
  return report;
}

}  // namespace wbs::sparse

// Pass 4: balance by non-zeros. The block rows of a conv layer's mask are
// assigned in contiguous ranges to the channel groups of pass 3 so that each
// group gets (as nearly as contiguous ranges allow) the same number of
// non-zero blocks — with 50% block sparsity an equal split of channels can
// leave one core with far more work than another. Contiguous ranges keep
// each core's output a contiguous channel range (one DMA pattern). Channel-
// wise layers (pools, add, rescale) split channels equally. The imbalance
// max/mean - 1 over the groups is reported per layer.
#include <fmt/format.h>

#include <algorithm>

#include "aie/passes/compiler.h"

namespace wbs::aie {

int NumChannelGroups(const Layer& l);

namespace {

// Contiguous partition of `weights` into `k` ranges of at most `max_len`
// items minimizing the largest sum (binary search on the bound + greedy;
// every range non-empty when possible). Returns k+1 boundaries.
std::vector<int64_t> Partition(const std::vector<int64_t>& weights, int k, int64_t max_len) {
  const int64_t n = static_cast<int64_t>(weights.size());
  std::vector<int64_t> bounds;
  auto greedy = [&](int64_t cap, std::vector<int64_t>* b) {
    b->assign(1, 0);
    int64_t sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      // Leave at least one item for each remaining range.
      const int64_t ranges_left = k - static_cast<int64_t>(b->size());
      const bool must_cut = n - i <= ranges_left && i > b->back();
      if ((sum + weights[static_cast<size_t>(i)] > cap && i > b->back()) || i - b->back() >= max_len || must_cut) {
        b->push_back(i);
        sum = 0;
      }
      sum += weights[static_cast<size_t>(i)];
    }
    b->push_back(n);
    return static_cast<int>(b->size()) - 1 <= k;
  };
  int64_t lo = 0, hi = 0;
  for (int64_t w : weights) lo = std::max(lo, w), hi += w;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (greedy(mid, &bounds)) hi = mid;
    else lo = mid + 1;
  }
  greedy(lo, &bounds);
  while (static_cast<int>(bounds.size()) - 1 < k) bounds.push_back(n);  // empty tail ranges
  return bounds;
}

}  // namespace

Status RunBalance(CompileState& s) {
  for (Layer& l : s.layers) {
    const int groups = NumChannelGroups(l);
    std::vector<int64_t> weights;
    if (l.kind == LayerKind::kConv) {
      // A fully pruned block row still costs its bias/requant epilogue: weight 1 minimum
      // keeps ranges non-degenerate; the MAC work is the non-zero count.
      for (int64_t v : l.row_nnz) weights.push_back(std::max<int64_t>(v, 1));
    } else {
      weights.assign(static_cast<size_t>(l.m), 1);
    }
    // A group never gets more rows than the chunks pass 2 planned hold
    // (mt_rows x ceil(equal share / mt_rows)): one block row over would cost
    // a whole extra chunk, i.e. the layer's input read once more from DDR
    // for a sliver of work.
    const int64_t n = static_cast<int64_t>(weights.size());
    const int64_t share = (n + groups - 1) / std::max(1, groups);
    const int64_t per_chunk = std::max<int64_t>(1, l.mt_rows);
    const int64_t max_len = (share + per_chunk - 1) / per_chunk * per_chunk;
    const std::vector<int64_t> b = Partition(weights, groups, max_len);
    const int64_t scale = l.kind == LayerKind::kConv ? l.br : 1;
    std::vector<int64_t> nnz(static_cast<size_t>(groups), 0);
    for (int g = 0; g < groups; ++g)
      for (int64_t i = b[static_cast<size_t>(g)]; i < b[static_cast<size_t>(g) + 1]; ++i)
        nnz[static_cast<size_t>(g)] += l.kind == LayerKind::kConv ? l.row_nnz[static_cast<size_t>(i)] : 1;
    int64_t total_nnz = 0;
    for (int64_t v : l.row_nnz) total_nnz += v;
    for (size_t i = 0; i < l.cores.size(); ++i) {
      CoreWork& w = l.cores[i];
      const int g = l.cout_only ? static_cast<int>(i) : l.wide ? 0 : w.row;
      if (g >= groups) {
        w.m0 = w.m1 = 0;
        continue;
      }
      w.m0 = std::min(l.m, b[static_cast<size_t>(g)] * scale);
      w.m1 = std::min(l.m, b[static_cast<size_t>(g) + 1] * scale);
      w.nnz = nnz[static_cast<size_t>(g)];
      if (l.kind == LayerKind::kConv && total_nnz > 0 && l.ow > 0) {
        // Its share of the effective MACs (the exact count is in its COMPs).
        w.macs = static_cast<int64_t>(static_cast<double>(l.macs) * w.nnz / total_nnz * (w.x1 - w.x0) / l.ow);
      }
    }
    int64_t mx = 0, sum = 0;
    for (int64_t v : nnz) mx = std::max(mx, v), sum += v;
    l.imbalance = sum > 0 ? static_cast<double>(mx) * groups / sum - 1.0 : 0.0;
  }
  return Status::Ok();
}

std::string DumpBalance(const CompileState& s) {
  std::string r = "# balance: channel range and non-zero blocks per channel group, imbalance = max/mean - 1\n";
  for (const Layer& l : s.layers) {
    std::string g;
    int64_t last = -1;
    for (const CoreWork& w : l.cores) {
      if (w.m0 == last || w.m1 == w.m0) continue;
      last = w.m0;
      g += fmt::format(" [{},{}):{}", w.m0, w.m1, w.nnz);
    }
    r += fmt::format("{:<28} imbalance {:.3f}{}\n", l.name, l.imbalance, g);
  }
  return r;
}

}  // namespace wbs::aie

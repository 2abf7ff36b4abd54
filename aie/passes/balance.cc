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
#include <mutex>

#include "aie/passes/cache.h"
#include "aie/passes/compiler.h"

namespace wbs::aie {

int NumChannelGroups(const Layer& l);
void PartChannels(const Layer& l, int64_t p, int64_t* k0, int64_t* k1);

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
      if ((sum + weights[static_cast<size_t>(i)] > cap && i > b->back()) ||
          i - b->back() >= max_len || must_cut) {
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
    if (greedy(mid, &bounds))
      hi = mid;
    else
      lo = mid + 1;
  }
  greedy(lo, &bounds);
  while (static_cast<int>(bounds.size()) - 1 < k) bounds.push_back(n);  // empty tail ranges
  return bounds;
}

// ---- Output-channel permutation ----
//
// The cores of a column share each CIN part's input (one broadcast) and
// each channel chunk's input pass, so they wait for each other part by part
// (a core runs at most as far ahead as its input buffers allow) and chunk by
// chunk: what a core computes per chunk and per part must be balanced, not
// only its total. With the block rows in their natural order a contiguous
// range cannot do that (VGG-16 50% features.17: the rows' per-part largest
// COMPs sum to 1.43x their means; features.12: the groups' totals differ by
// 13% while each group's share fills its chunks exactly). Where nothing
// outside the compiler sees a conv's output channel order - every consumer
// is a plain conv reading the whole tensor (directly or through pools,
// which are channel-wise), the tensor is no graph output and nothing is
// aliased into it, or it is a concat slot (Inception's branch convs, also
// through the rescale of an input with other quantization) and the same
// holds for the concat's output, whose readers see the slot at its block
// offset - its block rows may be permuted: the layer's weight
// rows, bias and requantization move with them, and so do the consumers'
// weight columns (8-channel blocks onto 8-channel blocks, so their block
// structure is the same up to the order of block columns). The network's
// result is unchanged bit for bit.

// A conv reading a permuted tensor: its block columns [b0, b0 + rows)
// are the tensor's block rows (b0 > 0 where the tensor is a concat slot).
struct Reader {
  int layer = -1;
  int64_t b0 = 0;
};

// The conv layers reading tensor ti through channel-wise layers (pools,
// concat rescales) and through the concats it is aliased into, appended to
// *convs with the block column its channel 0 lands on (the pools' and
// rescales' outputs inherit the order); false where some reader needs the
// channel order as it is. `host`: ti is a concat output reached through
// one of its inputs (its other inputs are aliased into it too).
bool ChannelReaders(const CompileState& s, int ti, std::vector<Reader>* convs, int64_t b0 = 0,
                    int depth = 0, bool host = false) {
  const ActTensor& x = s.tensors[static_cast<size_t>(ti)];
  if (depth > 8 || s.IsNetworkIo(ti)) return false;
  if (!host)
    for (const ActTensor& y : s.tensors)
      if (y.alias_of == ti) return false;
  // A concat slot (QConcat input aliased into its output): the output's
  // readers see these channels at the slot's offset, in 8-channel blocks.
  if (x.alias_of >= 0) {
    if (x.channel_offset % 8 != 0 || x.c % 8 != 0) return false;
    if (!ChannelReaders(s, x.alias_of, convs, b0 + x.channel_offset / 8, depth + 1, true))
      return false;
  } else if (x.consumers.empty()) {
    return false;
  }
  for (const int ci : x.consumers) {
    const Layer& c = s.layers[static_cast<size_t>(ci)];
    if (c.fused_into >= 0 || c.inputs.size() != 1 || c.inputs[0] != ti || c.c != x.c) return false;
    if (c.kind == LayerKind::kConv) {
      if (c.groups != 1 || c.bc != 8 || c.c % c.bc != 0) return false;
      convs->push_back({ci, b0});
    } else if (c.kind == LayerKind::kMaxPool || c.kind == LayerKind::kAvgPool ||
               c.kind == LayerKind::kRescale) {
      // (A rescale's scale and zero points are per tensor.)
      if (!ChannelReaders(s, c.output, convs, b0, depth + 1)) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Block rows [perm[0], perm[1], ...] become rows 0, 1, ... of layer l, and
// block columns likewise in every reader (from its reader's b0 on).
void ApplyPermutation(CompileState& s, Layer& l, const std::vector<int64_t>& perm,
                      const std::vector<Reader>& readers) {
  const int64_t taps = l.wkh() * l.wkw(), cpg = l.c / l.groups, row = l.br * cpg * taps;
  std::vector<int8_t> w(l.weight.size());
  std::vector<int32_t> bias(l.bias.size()), mult(l.mult.size()), shift(l.shift.size());
  std::vector<int64_t> nnz(l.row_nnz.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    const int64_t o = perm[i];
    std::copy_n(l.weight.begin() + o * row, row, w.begin() + static_cast<int64_t>(i) * row);
    for (int64_t u = 0; u < l.br; ++u) {
      const size_t to = i * static_cast<size_t>(l.br) + static_cast<size_t>(u);
      const size_t from = static_cast<size_t>(o * l.br + u);
      if (!bias.empty()) bias[to] = l.bias[from];
      if (!mult.empty()) mult[to] = l.mult[from];
      if (!shift.empty()) shift[to] = l.shift[from];
    }
    nnz[i] = l.row_nnz[static_cast<size_t>(o)];
  }
  l.weight = std::move(w), l.bias = std::move(bias), l.mult = std::move(mult),
  l.shift = std::move(shift), l.row_nnz = std::move(nnz);
  for (const Reader& r : readers) {
    Layer& c = s.layers[static_cast<size_t>(r.layer)];
    const int64_t ctaps = c.wkh() * c.wkw(), blk = c.bc * ctaps;
    std::vector<int8_t> cw(c.weight.begin(), c.weight.end());
    for (int64_t m = 0; m < c.m; ++m)
      for (size_t j = 0; j < perm.size(); ++j)
        std::copy_n(c.weight.begin() + (m * c.c + (r.b0 + perm[j]) * c.bc) * ctaps, blk,
                    cw.begin() + (m * c.c + (r.b0 + static_cast<int64_t>(j)) * c.bc) * ctaps);
    c.weight = std::move(cw);
  }
}

// Block rows of conv l into `groups` groups of the given sizes, each in
// chunks of mt_rows, so that the groups' chunks at each position are
// balanced part by part: rows sorted by non-zeros, each chunk position
// takes the next rows, which go (heaviest first) to the group whose per-part
// loads grow least (sum of squares), then pairwise swaps between the
// position's groups while they lower the sum over parts of the largest load.
std::vector<int64_t> BalancedOrder(const Layer& l, const std::vector<int64_t>& sizes,
                                   CompileCache* cache) {
  const int64_t n = l.block_rows, taps = l.wkh() * l.wkw(), cpg = l.c / l.groups;
  const int64_t parts = std::max<int64_t>(1, l.parts);
  std::vector<std::vector<int64_t>> v(static_cast<size_t>(n),
                                      std::vector<int64_t>(static_cast<size_t>(parts), 0));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < parts; ++p) {
      int64_t k0 = 0, k1 = 0;
      PartChannels(l, p, &k0, &k1);
      for (int64_t j = k0 / l.bc; j < (k1 + l.bc - 1) / l.bc; ++j) {
        // A row's channels [ka, kb) are contiguous in memory ([m][k][tap]).
        const int64_t ka = j * l.bc, kb = std::min(k1, (j + 1) * l.bc);
        bool nz = false;
        for (int64_t r = i * l.br; r < (i + 1) * l.br && !nz && kb > ka; ++r) {
          const int8_t* q = l.weight.data() + (r * cpg + ka) * taps;
          nz = std::any_of(q, q + (kb - ka) * taps, [](int8_t x) { return x != 0; });
        }
        v[static_cast<size_t>(i)][static_cast<size_t>(p)] += nz;
      }
    }
  // The order is a function of v, the rows' totals, the sizes and the
  // chunk length: an earlier trial compile may have found it already.
  CompileCache::Order key;
  if (cache) {
    for (const auto& vi : v) key.v.insert(key.v.end(), vi.begin(), vi.end());
    key.row_nnz = l.row_nnz, key.sizes = sizes, key.mt_rows = l.mt_rows, key.parts = parts;
    std::lock_guard<std::mutex> lock(cache->mu);
    for (const CompileCache::Order& o : cache->orders[l.name])
      if (o.mt_rows == key.mt_rows && o.parts == key.parts && o.sizes == key.sizes &&
          o.row_nnz == key.row_nnz && o.v == key.v)
        return o.perm;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return l.row_nnz[static_cast<size_t>(a)] > l.row_nnz[static_cast<size_t>(b)];
  });
  const int groups = static_cast<int>(sizes.size());
  const int64_t mt = std::max<int64_t>(1, l.mt_rows);
  // cells[g][k]: the rows of group g's chunk k.
  std::vector<std::vector<std::vector<int64_t>>> cells(static_cast<size_t>(groups));
  int64_t next = 0;
  for (int64_t k = 0;; ++k) {
    std::vector<int64_t> cap(static_cast<size_t>(groups), 0);
    int64_t total = 0;
    for (int g = 0; g < groups; ++g) {
      cap[static_cast<size_t>(g)] =
          std::clamp<int64_t>(sizes[static_cast<size_t>(g)] - k * mt, 0, mt);
      total += cap[static_cast<size_t>(g)];
    }
    if (total == 0) break;
    std::vector<std::vector<int64_t>> load(static_cast<size_t>(groups),
                                           std::vector<int64_t>(static_cast<size_t>(parts), 0));
    std::vector<std::vector<int64_t>> cell(static_cast<size_t>(groups));
    for (int64_t q = 0; q < total; ++q) {
      const int64_t i = order[static_cast<size_t>(next++)];
      const auto& vi = v[static_cast<size_t>(i)];
      int best = -1;
      int64_t best_cost = 0;
      for (int g = 0; g < groups; ++g) {
        if (static_cast<int64_t>(cell[static_cast<size_t>(g)].size()) >=
            cap[static_cast<size_t>(g)])
          continue;
        int64_t cost = 0;
        for (int64_t p = 0; p < parts; ++p) {
          const int64_t x =
              load[static_cast<size_t>(g)][static_cast<size_t>(p)] + vi[static_cast<size_t>(p)];
          cost += x * x;
        }
        if (best < 0 || cost < best_cost) best = g, best_cost = cost;
      }
      cell[static_cast<size_t>(best)].push_back(i);
      for (int64_t p = 0; p < parts; ++p)
        load[static_cast<size_t>(best)][static_cast<size_t>(p)] += vi[static_cast<size_t>(p)];
    }
    // The position's cost: per part the largest group load, summed.
    auto cost_of = [&]() {
      int64_t c = 0;
      for (int64_t p = 0; p < parts; ++p) {
        int64_t mx = 0;
        for (int g = 0; g < groups; ++g)
          mx = std::max(mx, load[static_cast<size_t>(g)][static_cast<size_t>(p)]);
        c += mx;
      }
      return c;
    };
    auto move = [&](int g, int64_t i, int sign) {
      for (int64_t p = 0; p < parts; ++p)
        load[static_cast<size_t>(g)][static_cast<size_t>(p)] +=
            sign * v[static_cast<size_t>(i)][static_cast<size_t>(p)];
    };
    int64_t cur = cost_of();
    for (int round = 0; round < 4; ++round) {
      bool improved = false;
      for (int a = 0; a < groups; ++a)
        for (int b = a + 1; b < groups; ++b)
          for (int64_t& x : cell[static_cast<size_t>(a)])
            for (int64_t& y : cell[static_cast<size_t>(b)]) {
              move(a, x, -1), move(b, y, -1), move(a, y, 1), move(b, x, 1);
              const int64_t c = cost_of();
              if (c < cur) {
                cur = c, improved = true;
                std::swap(x, y);
              } else {
                move(a, y, -1), move(b, x, -1), move(a, x, 1), move(b, y, 1);
              }
            }
      if (!improved) break;
    }
    for (int g = 0; g < groups; ++g)
      cells[static_cast<size_t>(g)].push_back(std::move(cell[static_cast<size_t>(g)]));
  }
  // Then swaps between any two cells (any positions) while they lower the
  // sum over positions and parts of the largest group load: a position's
  // few rows alone rarely balance every part (VGG-16 50% features.19, 16
  // parts of 2 x 4 blocks: per-part maxima 1.35x their means with the
  // natural order, 1.27x after the positions alone). Bounded work: the
  // widest layers (the classifiers, DDR-bound) skip it.
  const int64_t positions = groups > 0 ? static_cast<int64_t>(cells[0].size()) : 0;
  if (positions > 0 && n * n * parts * groups <= 40'000'000) {
    // load[(k * groups + g) * parts + p]
    std::vector<int64_t> load(static_cast<size_t>(positions * groups * parts), 0);
    auto at = [&](int64_t k, int g, int64_t p) -> int64_t& {
      return load[static_cast<size_t>((k * groups + g) * parts + p)];
    };
    for (int g = 0; g < groups; ++g)
      for (int64_t k = 0; k < positions; ++k)
        for (const int64_t i : cells[static_cast<size_t>(g)][static_cast<size_t>(k)])
          for (int64_t p = 0; p < parts; ++p) at(k, g, p) += v[static_cast<size_t>(i)][static_cast<size_t>(p)];
    // A core may run a part ahead of its column (two input buffers), so
    // a position costs between the sum of its per-part maxima and its
    // largest group total: both count.
    auto pos_cost = [&](int64_t k) {
      int64_t c = 0, top = 0;
      for (int64_t p = 0; p < parts; ++p) {
        int64_t mx = 0;
        for (int g = 0; g < groups; ++g) mx = std::max(mx, at(k, g, p));
        c += mx;
      }
      for (int g = 0; g < groups; ++g) {
        int64_t sum = 0;
        for (int64_t p = 0; p < parts; ++p) sum += at(k, g, p);
        top = std::max(top, sum);
      }
      return c + top;
    };
    auto shift = [&](int64_t k, int g, int64_t i, int sign) {
      for (int64_t p = 0; p < parts; ++p) at(k, g, p) += sign * v[static_cast<size_t>(i)][static_cast<size_t>(p)];
    };
    struct Slot {
      int g;
      int64_t k;
      size_t j;
    };
    std::vector<Slot> slots;
    for (int g = 0; g < groups; ++g)
      for (int64_t k = 0; k < positions; ++k)
        for (size_t j = 0; j < cells[static_cast<size_t>(g)][static_cast<size_t>(k)].size(); ++j)
          slots.push_back({g, k, j});
    for (int round = 0; round < 6; ++round) {
      bool improved = false;
      for (size_t a = 0; a < slots.size(); ++a)
        for (size_t b = a + 1; b < slots.size(); ++b) {
          const Slot &sa = slots[a], &sb = slots[b];
          if (sa.g == sb.g && sa.k == sb.k) continue;
          int64_t& x = cells[static_cast<size_t>(sa.g)][static_cast<size_t>(sa.k)][sa.j];
          int64_t& y = cells[static_cast<size_t>(sb.g)][static_cast<size_t>(sb.k)][sb.j];
          const int64_t before = pos_cost(sa.k) + (sa.k != sb.k ? pos_cost(sb.k) : 0);
          shift(sa.k, sa.g, x, -1), shift(sb.k, sb.g, y, -1), shift(sa.k, sa.g, y, 1), shift(sb.k, sb.g, x, 1);
          const int64_t after = pos_cost(sa.k) + (sa.k != sb.k ? pos_cost(sb.k) : 0);
          if (after < before) {
            std::swap(x, y);
            improved = true;
          } else {
            shift(sa.k, sa.g, y, -1), shift(sb.k, sb.g, x, -1), shift(sa.k, sa.g, x, 1), shift(sb.k, sb.g, y, 1);
          }
        }
      if (!improved) break;
    }
  }
  std::vector<int64_t> perm;
  for (const auto& gc : cells)
    for (const auto& c : gc) perm.insert(perm.end(), c.begin(), c.end());
  if (cache) {
    key.perm = perm;
    std::lock_guard<std::mutex> lock(cache->mu);
    cache->orders[l.name].push_back(std::move(key));
  }
  return perm;
}

}  // namespace

Status RunBalance(CompileState& s) {
  for (size_t li = 0; li < s.layers.size(); ++li) {
    Layer& l = s.layers[li];
    l.permuted = false;
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
    std::vector<int64_t> b = Partition(weights, groups, max_len);
    std::vector<Reader> readers;
    // Only sparse layers: a dense layer's rows are all alike. Not fused
    // siblings: their output slices map fixed channel ranges to their tensors.
    if (s.options.permute_channels && l.kind == LayerKind::kConv && l.macs < l.macs_dense &&
        groups > 1 && l.groups == 1 && l.fused_add < 0 && !l.multi_out() && l.br == 8 &&
        l.m % l.br == 0 &&
        ChannelReaders(s, l.output, &readers)) {
      // Group sizes as an equal split of the rows gives them (each within
      // its planned chunks), rows placed by BalancedOrder.
      const std::vector<int64_t> eq =
          Partition(std::vector<int64_t>(weights.size(), 1), groups, max_len);
      std::vector<int64_t> sizes;
      for (int g = 0; g < groups; ++g)
        sizes.push_back(eq[static_cast<size_t>(g) + 1] - eq[static_cast<size_t>(g)]);
      const std::vector<int64_t> perm = BalancedOrder(l, sizes, s.cache.get());
      // Kept only where no group ends up with more non-zeros than the
      // contiguous ranges give the largest one: the busiest group's total
      // is what DDR-bound layers wait for (VGG-16 7x7 50% classifier.0, 49
      // groups, too wide for the swaps: 1000 -> 1039 us without this).
      auto largest = [&](const std::vector<int64_t>& order, const std::vector<int64_t>& bounds) {
        int64_t mx = 0;
        for (int g = 0; g < groups; ++g) {
          int64_t sum = 0;
          for (int64_t i = bounds[static_cast<size_t>(g)]; i < bounds[static_cast<size_t>(g) + 1]; ++i)
            sum += l.row_nnz[static_cast<size_t>(order.empty() ? i : order[static_cast<size_t>(i)])];
          mx = std::max(mx, sum);
        }
        return mx;
      };
      if (static_cast<int64_t>(perm.size()) == n && largest(perm, eq) <= largest({}, b)) {
        ApplyPermutation(s, l, perm, readers);
        l.permuted = true;
        b = eq;
      }
    }
    const int64_t scale = l.kind == LayerKind::kConv ? l.br : 1;
    std::vector<int64_t> nnz(static_cast<size_t>(groups), 0);
    for (int g = 0; g < groups; ++g)
      for (int64_t i = b[static_cast<size_t>(g)]; i < b[static_cast<size_t>(g) + 1]; ++i)
        nnz[static_cast<size_t>(g)] +=
            l.kind == LayerKind::kConv ? l.row_nnz[static_cast<size_t>(i)] : 1;
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
        w.macs = static_cast<int64_t>(static_cast<double>(l.macs) * w.nnz / total_nnz *
                                      (w.x1 - w.x0) / l.ow * (w.y1 - w.y0) / std::max<int64_t>(1, l.oh));
      }
    }
    int64_t mx = 0, sum = 0;
    for (int64_t v : nnz) mx = std::max(mx, v), sum += v;
    l.imbalance = sum > 0 ? static_cast<double>(mx) * groups / sum - 1.0 : 0.0;
  }
  return Status::Ok();
}

std::string DumpBalance(const CompileState& s) {
  std::string r =
      "# balance: channel range and non-zero blocks per channel group, imbalance = max/mean - 1\n";
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

// HazardTracker's bucket index (aie/timeline.h) against the plain rule it
// speeds up: a linear scan of every exact record, oldest first, after the
// folded old ranges (kept in a std::map). Random footprints (ranges and
// strided boxes, small and spanning every bucket, addresses that wrap the
// buckets) and ends with many ties, in several spaces, far past the history
// so records fold and old ranges merge: every query must give the same end
// and the same instance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <unordered_map>
#include <vector>

#include "aie/program.h"
#include "aie/timeline.h"

namespace wbs::aie {
namespace {

// The rule without an index (the tracker before it had one).
class LinearTracker {
 public:
  HazardTracker::Wait Conflict(const MemSpace& space, const Footprint& f, bool write) const {
    const auto it = spaces_.find(Key(space));
    if (it == spaces_.end() || f.empty()) return {};
    const List& h = it->second;
    HazardTracker::Wait w;
    const int64_t lo = f.lo, hi = f.hi();
    auto c = h.old.upper_bound(lo);
    if (c != h.old.begin()) --c;
    for (; c != h.old.end() && c->first < hi; ++c) {
      const Old& o = c->second;
      if (o.hi <= lo) continue;
      HazardTracker::Wait x{o.wend, o.wby};
      if (write && o.rend > x.end) x = {o.rend, o.rby};
      if (x.end > w.end) w = x;
    }
    const size_t n = h.recs.size();
    for (size_t k = 0, i = h.head; k < n; ++k, i = i + 1 == n ? 0 : i + 1) {
      const Rec& r = h.recs[i];
      const double e = write ? std::max(r.wend, r.rend) : r.wend;
      if (e > w.end && Overlaps(r.f, f)) w = {e, r.by};
    }
    return w;
  }

  void Record(const MemSpace& space, const Footprint& f, double end, bool write, int64_t by) {
    if (f.empty()) return;
    List& h = spaces_[Key(space)];
    const Rec r{f, write ? end : 0.0, write ? 0.0 : end, by};
    if (h.recs.size() < HazardTracker::kHistory) {
      h.recs.push_back(r);
      return;
    }
    Fold(h, h.recs[h.head]);
    h.recs[h.head] = r;
    h.head = h.head + 1 == HazardTracker::kHistory ? 0 : h.head + 1;
  }

 private:
  struct Rec {
    Footprint f;
    double wend = 0, rend = 0;
    int64_t by = -1;
  };
  struct Old {
    int64_t hi = 0;
    double wend = 0, rend = 0;
    int64_t wby = -1, rby = -1;
  };
  struct List {
    std::vector<Rec> recs;
    size_t head = 0;
    std::map<int64_t, Old> old;
  };
  static int64_t Key(const MemSpace& m) {
    return (int64_t{static_cast<int>(m.kind)} << 32) |
           (int64_t{static_cast<uint16_t>(m.index)} << 16) | static_cast<uint16_t>(m.col);
  }
  static void Fold(List& h, const Rec& x) {
    Old o{x.f.hi(), x.wend, x.rend, x.wend > 0 ? x.by : -1, x.rend > 0 ? x.by : -1};
    int64_t lo = x.f.lo;
    auto c = h.old.upper_bound(lo);
    if (c != h.old.begin()) --c;
    while (c != h.old.end() && c->first < o.hi) {
      if (c->second.hi <= lo) {
        ++c;
        continue;
      }
      const Old& m = c->second;
      lo = std::min(lo, c->first);
      o.hi = std::max(o.hi, m.hi);
      if (m.wend > o.wend) o.wend = m.wend, o.wby = m.wby;
      if (m.rend > o.rend) o.rend = m.rend, o.rby = m.rby;
      c = h.old.erase(c);
    }
    h.old[lo] = o;
    if (h.old.size() <= HazardTracker::kOldRanges) return;
    auto best = h.old.begin();
    int64_t gap = INT64_MAX;
    for (auto a = h.old.begin(), b = std::next(a); b != h.old.end(); ++a, ++b)
      if (b->first - a->second.hi < gap) gap = b->first - a->second.hi, best = a;
    auto next = std::next(best);
    Old& m = best->second;
    m.hi = std::max(m.hi, next->second.hi);
    if (next->second.wend > m.wend) m.wend = next->second.wend, m.wby = next->second.wby;
    if (next->second.rend > m.rend) m.rend = next->second.rend, m.rby = next->second.rby;
    h.old.erase(next);
  }
  std::unordered_map<int64_t, List> spaces_;
};

// A random footprint in a space of `span` bytes: a range (sometimes the
// whole space or wider), or a strided box with gaps.
Footprint RandomFootprint(std::mt19937_64& rng, int64_t span) {
  auto pick = [&](int64_t lo, int64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const int64_t base = pick(0, span - 1);
  switch (pick(0, 5)) {
    case 0:  // wide: covers every bucket
      return Footprint::Range(base, base + pick(span / 2, 2 * span));
    case 1:
    case 2: {
      AccessPattern a;
      a.base = base;
      a.size = {pick(1, 64), pick(1, 8), pick(1, 4), 1};
      a.stride = {1, a.size[0] + pick(0, 200), 0, 0};
      a.stride[2] = a.stride[1] * a.size[1] + pick(0, 4096);
      return a.Bytes(0);
    }
    default:
      return Footprint::Range(base, base + pick(1, std::max<int64_t>(1, span / 16)));
  }
}

TEST(AieHazardIndex, MatchesTheLinearScan) {
  const uint64_t seed = 20261128;
  std::mt19937_64 rng(seed);
  // Spaces of each kind, with the address spans the compiler uses and
  // wider ones (DDR addresses wrap the buckets many times).
  const std::vector<std::pair<MemSpace, int64_t>> spaces = {
      {MemSpace::Core(0, 0), 64 << 10},
      {MemSpace::Core(1, 2), 4 << 10},
      {MemSpace::Memtile(0), 512 << 10},
      {MemSpace::Memtile(3), 16 << 10},
      {MemSpace::Ddr(), 64 << 20},
  };
  HazardTracker fast;
  LinearTracker slow;
  std::uniform_int_distribution<size_t> which(0, spaces.size() - 1);
  std::uniform_int_distribution<int> coin(0, 1), end_of(0, 40);
  int checked = 0, waited = 0;
  for (int64_t step = 0; step < 6000; ++step) {
    const auto& [space, span] = spaces[which(rng)];
    const Footprint f = RandomFootprint(rng, span);
    const bool write = coin(rng) == 1;
    for (int q = 0; q < 3; ++q) {
      const Footprint g = q == 0 ? f : RandomFootprint(rng, span);
      const bool w = q == 0 ? write : coin(rng) == 1;
      const HazardTracker::Wait a = fast.Conflict(space, g, w), b = slow.Conflict(space, g, w);
      ASSERT_EQ(a.end, b.end) << "seed " << seed << " step " << step << " query " << q;
      ASSERT_EQ(a.by, b.by) << "seed " << seed << " step " << step << " query " << q;
      ++checked;
      waited += a.end > 0;
    }
    // Few distinct ends: ties between records and folded ranges are common.
    const double end = static_cast<double>(end_of(rng)) + static_cast<double>(step / 500);
    fast.Record(space, f, end, write, step);
    slow.Record(space, f, end, write, step);
  }
  // The queries exercised both answers.
  EXPECT_GT(waited, checked / 4);
  EXPECT_LT(waited, checked);
}

}  // namespace
}  // namespace wbs::aie

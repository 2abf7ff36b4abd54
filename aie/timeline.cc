// The event-driven schedule of a program (aie/timeline.h).
#include "aie/timeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "aie/comp_cost.h"

namespace wbs::aie {

namespace {

std::pair<int64_t, int> LockKey(const MemSpace& m, int id) {
  return {(int64_t{static_cast<int>(m.kind)} << 32) |
              (int64_t{static_cast<uint16_t>(m.index)} << 16) | static_cast<uint16_t>(m.col),
          id};
}

}  // namespace

Timeline::Timeline(const Target& t, double mac_efficiency, const Program& p)
    : t_(t), eff_(mac_efficiency > 0 ? mac_efficiency : t.core.mac_efficiency) {
  for (const Program::LockInit& l : p.locks)
    tokens_[LockKey(l.tile, l.id)].push_back({0.0, l.value});
}

int HazardTracker::BucketShift(const MemSpace& m) {
  // About a space's size over kBuckets (a core's 64 KB in 1 KB buckets, a
  // memtile's 512 KB in 8 KB, DDR in 64 KB ones wrapping every 4 MB): a
  // speed choice only, any shift gives the same answers.
  switch (m.kind) {
    case MemKind::kCore:
      return 10;
    case MemKind::kMemtile:
      return 13;
    default:
      return 16;
  }
}

uint64_t HazardTracker::Buckets(int shift, int64_t lo, int64_t hi) {
  const uint64_t a = static_cast<uint64_t>(lo >> shift), b = static_cast<uint64_t>((hi - 1) >> shift);
  if (b - a >= kBuckets - 1) return ~uint64_t{0};
  const uint64_t run = (uint64_t{1} << (b - a + 1)) - 1;  // b - a + 1 < 64 buckets
  return std::rotl(run, static_cast<int>(a % kBuckets));
}

void HazardTracker::Index(List& h, size_t slot, uint64_t buckets, bool on) {
  const uint64_t bit = uint64_t{1} << (slot % 64);
  for (uint64_t m = buckets; m != 0; m &= m - 1) {
    uint64_t& w = h.slots[static_cast<size_t>(std::countr_zero(m))][slot / 64];
    w = on ? (w | bit) : (w & ~bit);
  }
}

namespace {

// The bits [a, b) of word `w` of a slot set (slots 64 w .. 64 w + 63).
uint64_t SlotRange(size_t w, size_t a, size_t b) {
  auto below = [](size_t k) { return k >= 64 ? ~uint64_t{0} : (uint64_t{1} << k) - 1; };
  const size_t base = 64 * w;
  const size_t lo = a > base ? a - base : 0, hi = b > base ? b - base : 0;
  return lo >= hi ? 0 : below(hi) & ~below(lo);
}

}  // namespace

HazardTracker::Wait HazardTracker::Conflict(const MemSpace& space, const Footprint& f,
                                            bool write) const {
  const auto it = spaces_.find(Key(space));
  if (it == spaces_.end() || f.empty()) return {};
  const List& h = it->second;
  Wait w;
  // The folded old accesses whose range meets f's bounding range.
  const int64_t lo = f.lo, hi = f.hi();
  auto c = std::upper_bound(h.old.begin(), h.old.end(), lo,
                            [](int64_t v, const Old& o) { return v < o.lo; });
  if (c != h.old.begin()) --c;
  for (; c != h.old.end() && c->lo < hi; ++c) {
    const Old& o = *c;
    if (o.hi <= lo) continue;
    Wait x{o.wend, o.wby};
    if (write && o.rend > x.end) x = {o.rend, o.rby};
    if (x.end > w.end) w = x;
  }
  // The records sharing a bucket with f, newest first (slots head-1..0,
  // then n-1..head): the latest end is usually a recent record's, so older
  // ones that cannot move the answer skip the exact Overlaps. `>=` keeps the
  // oldest record among equal ends, and a folded range wins a tie: the
  // answer of the oldest-first scan.
  const uint64_t qb = Buckets(h.shift, lo, hi);
  SlotSet cand{};
  if (qb == ~uint64_t{0}) {
    cand.fill(~uint64_t{0});
  } else {
    for (uint64_t m = qb; m != 0; m &= m - 1) {
      const SlotSet& s = h.slots[static_cast<size_t>(std::countr_zero(m))];
      for (size_t k = 0; k < kSlotWords; ++k) cand[k] |= s[k];
    }
  }
  Wait r;  // the latest record
  const size_t n = h.hot.size();
  for (const auto& [a, b] : {std::pair<size_t, size_t>{0, h.head}, {h.head, n}}) {
    for (size_t k = kSlotWords; k-- > 0;) {
      for (uint64_t m = cand[k] & SlotRange(k, a, b); m != 0;) {
        const int bit = 63 - std::countl_zero(m);
        m &= ~(uint64_t{1} << bit);
        const size_t i = 64 * k + static_cast<size_t>(bit);
        const Hot& x = h.hot[i];
        const double e = write ? std::max(x.wend, x.rend) : x.wend;
        // The cheap tests first: only a record that would move the answer and
        // whose bounding range meets f's needs the exact overlap.
        if (e > w.end && e >= r.end && x.lo < hi && lo < x.hi && Overlaps(h.recs[i].f, f))
          r = {e, h.recs[i].by};
      }
    }
  }
  return r.end > w.end ? r : w;
}

void HazardTracker::Fold(List& h, const Rec& x) {
  Old o{x.f.lo, x.f.hi(), x.wend, x.rend, x.wend > 0 ? x.by : -1, x.rend > 0 ? x.by : -1};
  // Merge with every old range it meets (the union's bound, the later ends):
  // a run of neighbours, from the last one starting at or before o.lo.
  auto c = std::upper_bound(h.old.begin(), h.old.end(), o.lo,
                            [](int64_t v, const Old& r) { return v < r.lo; });
  if (c != h.old.begin()) --c;
  if (c != h.old.end() && c->hi <= o.lo) ++c;
  auto first = c;
  for (; c != h.old.end() && c->lo < o.hi; ++c) {
    const Old& m = *c;
    o.lo = std::min(o.lo, m.lo);
    o.hi = std::max(o.hi, m.hi);
    if (m.wend > o.wend) o.wend = m.wend, o.wby = m.wby;
    if (m.rend > o.rend) o.rend = m.rend, o.rby = m.rby;
  }
  if (first != c) {
    *first = o;
    h.old.erase(first + 1, c);
  } else {
    h.old.insert(first, o);
  }
  if (h.old.size() <= kOldRanges) return;
  // Too many: merge the two neighbours with the smallest gap (the first on ties).
  size_t best = 0;
  int64_t gap = INT64_MAX;
  for (size_t i = 0; i + 1 < h.old.size(); ++i)
    if (h.old[i + 1].lo - h.old[i].hi < gap) gap = h.old[i + 1].lo - h.old[i].hi, best = i;
  Old& m = h.old[best];
  const Old& next = h.old[best + 1];
  m.hi = std::max(m.hi, next.hi);
  if (next.wend > m.wend) m.wend = next.wend, m.wby = next.wby;
  if (next.rend > m.rend) m.rend = next.rend, m.rby = next.rby;
  h.old.erase(h.old.begin() + static_cast<std::ptrdiff_t>(best) + 1);
}

void HazardTracker::Record(const MemSpace& space, const Footprint& f, double end, bool write,
                           int64_t by) {
  if (f.empty()) return;
  List& h = spaces_[Key(space)];
  if (h.recs.empty()) {
    h.shift = BucketShift(space);
    h.recs.reserve(kHistory);
    h.hot.reserve(kHistory);
    h.buckets_of.reserve(kHistory);
  }
  const Rec r{f, write ? end : 0.0, write ? 0.0 : end, by};
  const Hot x{f.lo, f.hi(), r.wend, r.rend};
  const uint64_t buckets = Buckets(h.shift, x.lo, x.hi);
  if (h.recs.size() < kHistory) {
    Index(h, h.recs.size(), buckets, true);
    h.recs.push_back(r);
    h.hot.push_back(x);
    h.buckets_of.push_back(buckets);
    return;
  }
  // Full: the oldest record folds into the old ranges and its slot takes the new one.
  Fold(h, h.recs[h.head]);
  Index(h, h.head, h.buckets_of[h.head], false);
  Index(h, h.head, buckets, true);
  h.recs[h.head] = r;
  h.hot[h.head] = x;
  h.buckets_of[h.head] = buckets;
  h.head = h.head + 1 == kHistory ? 0 : h.head + 1;
}

double Timeline::Duration(const Instruction& in) const {
  switch (in.op) {
    case Opcode::kLoad:
    case Opcode::kLoadW:
      return t_.transfer_cycles(Link::kDdrToMemtile, in.bytes());
    case Opcode::kWrite:
      return t_.transfer_cycles(Link::kMemtileToDdr, in.bytes());
    case Opcode::kLoadFm:
    case Opcode::kLoadWm:
      return t_.transfer_cycles(Link::kMemtileToCore, in.bytes());
    case Opcode::kWriteFm:
      return t_.transfer_cycles(Link::kCoreToMemtile, in.bytes());
    case Opcode::kComp:
      return CompCycles(t_, in.comp, eff_);
    default:
      return 0;
  }
}

std::map<std::string, double> Timeline::busy() const {
  std::map<std::string, double> b;
  for (size_t i = 0; i < names_.size(); ++i) b[names_[i]] = busy_[i];
  return b;
}

int Timeline::ResourceId(Group g, const MemSpace& m, int channel) {
  // The shim groups are named by the memtile index alone.
  const bool shim = g == Group::kShimRead || g == Group::kShimWrite;
  const int64_t key =
      (int64_t{static_cast<int>(g)} << 48) | (shim ? 0 : int64_t{static_cast<int>(m.kind)} << 32) |
      (int64_t{static_cast<uint16_t>(m.index)} << 16) | (shim ? 0 : static_cast<uint16_t>(m.col));
  std::vector<int>& ids = ids_[key];
  const size_t slot = static_cast<size_t>(channel + 1);  // unnumbered: slot 0
  if (slot >= ids.size()) ids.resize(slot + 1, -1);
  if (ids[slot] >= 0) return ids[slot];
  std::string name;
  switch (g) {
    case Group::kShimRead:
      name = fmt::format("shim{}.mm2s", m.index);
      break;
    case Group::kShimWrite:
      name = fmt::format("shim{}.s2mm", m.index);
      break;
    case Group::kOut:
      name = fmt::format("{}.mm2s", MemSpaceName(m));
      break;
    case Group::kIn:
      name = fmt::format("{}.s2mm", MemSpaceName(m));
      break;
    case Group::kCore:
      name = fmt::format("{}.core", MemSpaceName(m));
      break;
  }
  if (channel >= 0) name += std::to_string(channel);
  ids[slot] = static_cast<int>(names_.size());
  names_.push_back(std::move(name));
  free_at_.push_back(0);
  busy_.push_back(0);
  return ids[slot];
}

Timeline::Slot Timeline::Schedule(const Instruction& in, int64_t it) {
  Slot s;
  Schedule(in, it, &s.start, &s.end, &slot_ids_);
  for (const int id : slot_ids_) s.resources.push_back(names_[static_cast<size_t>(id)]);
  return s;
}

void Timeline::Schedule(const Instruction& in, int64_t it, double* start_out, double* end_out,
                        std::vector<int>* ids) {
  double ready = 0;
  accesses_.clear();
  ForEachAccess(in, it, [&](const MemSpace& m, const Footprint& f, bool write) {
    accesses_.push_back({m, f, write});
  });
  // Reads, then writes (the simulator's order, so ties resolve alike).
  for (const bool w : {false, true})
    for (const Access& a : accesses_)
      if (a.write == w) ready = std::max(ready, hazards_.Conflict(a.space, a.f, w).end);
  for (const LockOp& l : in.acquire) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    auto& q = tokens_[LockKey(l.tile, id)];
    int64_t need = l.value;
    while (need > 0 && !q.empty()) {
      ready = std::max(ready, q.front().first);
      const int64_t take = std::min(need, q.front().second);
      q.front().second -= take;
      need -= take;
      if (q.front().second == 0) q.pop_front();
    }
  }
  // Channel groups; the earliest-free channel of each is taken.
  groups_.clear();
  switch (in.op) {
    case Opcode::kLoad:
    case Opcode::kLoadW:
      for (const MemSpace& d : in.dst)
        groups_.push_back({{Group::kShimRead, d}, t_.ddr.read_channels_per_memtile});
      break;
    case Opcode::kWrite:
      groups_.push_back({{Group::kShimWrite, in.src}, t_.ddr.write_channels_per_memtile});
      break;
    case Opcode::kLoadFm:
    case Opcode::kLoadWm:
      groups_.push_back({{Group::kOut, in.src}, t_.memtile.dma_out_channels});
      for (const MemSpace& d : in.dst)
        groups_.push_back({{Group::kIn, d}, t_.core.dma_in_channels});
      break;
    case Opcode::kWriteFm:
      groups_.push_back({{Group::kOut, in.src}, t_.core.dma_out_channels});
      for (const MemSpace& d : in.dst)
        groups_.push_back({{Group::kIn, d}, t_.memtile.dma_in_channels});
      break;
    case Opcode::kComp:
      for (const MemSpace& c : in.cores) groups_.push_back({{Group::kCore, c}, 0});
      break;
    default:
      break;
  }
  ids->clear();
  double start = ready;
  for (const auto& [g, n] : groups_) {
    int best = -1;
    double best_t = 0;
    if (n == 0) {
      best = ResourceId(g.first, g.second, -1);
      best_t = free_at_[static_cast<size_t>(best)];
    } else {
      for (int i = 0; i < n; ++i) {
        const int r = ResourceId(g.first, g.second, i);
        const double f = free_at_[static_cast<size_t>(r)];
        if (best < 0 || f < best_t) best = r, best_t = f;
      }
    }
    start = std::max(start, best_t);
    ids->push_back(best);
  }
  const double dur = Duration(in);
  const double end = start + dur;
  for (const int r : *ids) {
    free_at_[static_cast<size_t>(r)] = end;
    busy_[static_cast<size_t>(r)] += dur;
  }
  for (const LockOp& l : in.release) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    tokens_[LockKey(l.tile, id)].push_back({end, l.value});
  }
  for (const bool w : {false, true})
    for (const Access& a : accesses_)
      if (a.write == w) hazards_.Record(a.space, a.f, end, w);
  horizon_ = std::max(horizon_, end);
  *start_out = start;
  *end_out = end;
}

}  // namespace wbs::aie

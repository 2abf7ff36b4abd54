// The event-driven schedule of a program (aie/timeline.h).
#include "aie/timeline.h"

#include <fmt/format.h>

#include <algorithm>

#include "aie/comp_cost.h"

namespace wbs::aie {

namespace {

std::tuple<int, int, int, int> LockKey(const MemSpace& m, int id) {
  return {static_cast<int>(m.kind), m.index, m.col, id};
}

}  // namespace

Timeline::Timeline(const Target& t, double mac_efficiency, const Program& p)
    : t_(t), eff_(mac_efficiency > 0 ? mac_efficiency : t.core.mac_efficiency) {
  for (const Program::LockInit& l : p.locks)
    tokens_[LockKey(l.tile, l.id)].push_back({0.0, l.value});
}

HazardTracker::Wait HazardTracker::Conflict(const MemSpace& space, const Footprint& f,
                                            bool write) const {
  const auto it = spaces_.find(Key(space));
  if (it == spaces_.end() || f.empty()) return {};
  const List& h = it->second;
  Wait w;
  // The folded old accesses whose range meets f's bounding range.
  const int64_t lo = f.lo, hi = f.hi();
  auto c = h.old.upper_bound(lo);
  if (c != h.old.begin()) --c;
  for (; c != h.old.end() && c->first < hi; ++c) {
    const Old& o = c->second;
    if (o.hi <= lo) continue;
    Wait x{o.wend, o.wby};
    if (write && o.rend > x.end) x = {o.rend, o.rby};
    if (x.end > w.end) w = x;
  }
  for (const Rec& x : h.recs) {
    const double e = write ? std::max(x.wend, x.rend) : x.wend;
    // The cheap test first: only a record that would move the answer needs
    // the exact overlap.
    if (e > w.end && Overlaps(x.f, f)) w = {e, x.by};
  }
  return w;
}

void HazardTracker::Fold(List& h, const Rec& x) {
  Old o{x.f.hi(), x.wend, x.rend, x.wend > 0 ? x.by : -1, x.rend > 0 ? x.by : -1};
  int64_t lo = x.f.lo;
  // Merge with every old range it meets (the union's bound, the later ends).
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
  if (h.old.size() <= kOldRanges) return;
  // Too many: merge the two neighbours with the smallest gap.
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

void HazardTracker::Record(const MemSpace& space, const Footprint& f, double end, bool write,
                           int64_t by) {
  if (f.empty()) return;
  List& h = spaces_[Key(space)];
  h.recs.push_back({f, write ? end : 0.0, write ? 0.0 : end, by});
  if (h.recs.size() > kHistory) {
    Fold(h, h.recs.front());
    h.recs.pop_front();
  }
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

Timeline::Slot Timeline::Schedule(const Instruction& in, int64_t it) {
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
  std::vector<std::pair<std::string, int>> groups;  // prefix, channel count
  switch (in.op) {
    case Opcode::kLoad:
    case Opcode::kLoadW:
      for (const MemSpace& d : in.dst)
        groups.push_back({fmt::format("shim{}.mm2s", d.index), t_.ddr.read_channels_per_memtile});
      break;
    case Opcode::kWrite:
      groups.push_back(
          {fmt::format("shim{}.s2mm", in.src.index), t_.ddr.write_channels_per_memtile});
      break;
    case Opcode::kLoadFm:
    case Opcode::kLoadWm:
      groups.push_back({fmt::format("{}.mm2s", MemSpaceName(in.src)), t_.memtile.dma_out_channels});
      for (const MemSpace& d : in.dst)
        groups.push_back({fmt::format("{}.s2mm", MemSpaceName(d)), t_.core.dma_in_channels});
      break;
    case Opcode::kWriteFm:
      groups.push_back({fmt::format("{}.mm2s", MemSpaceName(in.src)), t_.core.dma_out_channels});
      for (const MemSpace& d : in.dst)
        groups.push_back({fmt::format("{}.s2mm", MemSpaceName(d)), t_.memtile.dma_in_channels});
      break;
    case Opcode::kComp:
      for (const MemSpace& c : in.cores)
        groups.push_back({fmt::format("{}.core", MemSpaceName(c)), 0});
      break;
    default:
      break;
  }
  Slot s;
  double start = ready;
  for (const auto& [prefix, n] : groups) {
    std::string best;
    double best_t = 0;
    if (n == 0) {
      best = prefix;
      best_t = free_at_[best];
    } else {
      for (int i = 0; i < n; ++i) {
        std::string r = prefix + std::to_string(i);
        const double f = free_at_[r];
        if (best.empty() || f < best_t) best = std::move(r), best_t = f;
      }
    }
    start = std::max(start, best_t);
    s.resources.push_back(std::move(best));
  }
  const double dur = Duration(in);
  s.start = start;
  s.end = start + dur;
  for (const std::string& r : s.resources) {
    free_at_[r] = s.end;
    busy_[r] += dur;
  }
  for (const LockOp& l : in.release) {
    const int id = l.id + (l.pingpong ? static_cast<int>(it & 1) : 0);
    tokens_[LockKey(l.tile, id)].push_back({s.end, l.value});
  }
  for (const bool w : {false, true})
    for (const Access& a : accesses_)
      if (a.write == w) hazards_.Record(a.space, a.f, s.end, w);
  horizon_ = std::max(horizon_, s.end);
  return s;
}

}  // namespace wbs::aie

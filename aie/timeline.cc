// The event-driven schedule of a program (aie/timeline.h).
#include "aie/timeline.h"

#include <fmt/format.h>

#include <algorithm>

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

int Timeline::SpaceId(const MemSpace& m) const {
  switch (m.kind) {
    case MemKind::kDdr:
      return 0;
    case MemKind::kMemtile:
      return 1 + m.index;
    default:
      return 1 + t_.num_memtiles() + m.index * t_.cols + m.col;
  }
}

void Timeline::Ranges(const Instruction& in, int64_t it, std::vector<Range>* reads,
                      std::vector<Range>* writes) const {
  ForEachAccess(in, it, [&](const MemSpace& m, std::pair<int64_t, int64_t> r, bool write) {
    (write ? writes : reads)->push_back({SpaceId(m), r});
  });
}

double Timeline::Hazard(int space, std::pair<int64_t, int64_t> r, bool write) const {
  const auto it = hazards_.find(space);
  if (it == hazards_.end()) return 0;
  const HazardList& h = it->second;
  double t = write ? std::max(h.wfloor, h.rfloor) : h.wfloor;
  for (const HazardRec& x : h.recs)
    if (x.lo < r.second && r.first < x.hi)
      t = std::max(t, write ? std::max(x.wend, x.rend) : x.wend);
  return t;
}

void Timeline::Record(int space, std::pair<int64_t, int64_t> r, double end, bool write) {
  HazardList& h = hazards_[space];
  h.recs.push_back({r.first, r.second, write ? end : 0.0, write ? 0.0 : end});
  if (h.recs.size() > kHazardHistory) {
    h.wfloor = std::max(h.wfloor, h.recs.front().wend);
    h.rfloor = std::max(h.rfloor, h.recs.front().rend);
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
      return static_cast<double>(in.comp.macs) / (t_.macs_per_cycle() * eff_);
    default:
      return 0;
  }
}

Timeline::Slot Timeline::Schedule(const Instruction& in, int64_t it) {
  double ready = 0;
  std::vector<Range> reads, writes;
  Ranges(in, it, &reads, &writes);
  for (const auto& [sp, r] : reads) ready = std::max(ready, Hazard(sp, r, false));
  for (const auto& [sp, r] : writes) ready = std::max(ready, Hazard(sp, r, true));
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
  for (const auto& [sp, r] : reads) Record(sp, r, s.end, false);
  for (const auto& [sp, r] : writes) Record(sp, r, s.end, true);
  horizon_ = std::max(horizon_, s.end);
  return s;
}

}  // namespace wbs::aie

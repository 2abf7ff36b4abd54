// Pass 9: time model. Each instruction's duration comes from the target:
// transfers bytes / link bandwidth (Target::transfer_cycles; LOAD on a
// memtile's first DDR read channel, LOADW on its second — the paper's
// activation/weight policy —, WRITE over all its write channels; LOADFM on a
// core's first input DMA channel, LOADWM on its second, WRITEFM on its output
// channel; a broadcast costs once on every receiver), COMP effective MACs /
// (MACs per cycle x kernel efficiency). A block of N iterations is a
// pipeline: the first iteration's latency (the sum over the stages LOAD,
// LOADW, LOADFM, LOADWM, COMP, WRITEFM, WRITE of the slowest instruction of
// each) plus (N - 1) x the busiest resource's time per iteration (ping/pong
// lets every resource work on a different iteration; independent channels
// run in parallel). Blocks are sequential, except that a prefetched weight
// block's DDR part hides behind the block before it.
// Roofline per layer: the maximum of its compute on the whole array and of
// its traffic on each link kind at the whole array's bandwidth; efficiency =
// roofline / estimate.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "aie/passes/compiler.h"

namespace wbs::aie {

namespace {

struct Cost {
  std::string resource;
  int stage = 0;
  double cycles = 0;
};

std::vector<Cost> InstrCosts(const Target& t, double eff, const Instruction& in) {
  std::vector<Cost> r;
  const int64_t bytes = in.bytes();
  switch (in.op) {
    case Opcode::kLoad:
    case Opcode::kLoadW: {
      const int ch = in.op == Opcode::kLoad ? 0 : std::min(1, t.ddr.read_channels_per_memtile - 1);
      r.push_back({fmt::format("ddr.rd.{}.{}", MemSpaceName(in.dst[0]), ch), in.op == Opcode::kLoad ? 0 : 1,
                   t.transfer_cycles(Link::kDdrToMemtile, bytes)});
      break;
    }
    case Opcode::kWrite:
      r.push_back({fmt::format("ddr.wr.{}", MemSpaceName(in.src)), 6,
                   t.transfer_cycles(Link::kMemtileToDdr, bytes) / std::max(1, t.ddr.write_channels_per_memtile)});
      break;
    case Opcode::kLoadFm:
    case Opcode::kLoadWm:
      for (const MemSpace& c : in.dst)
        r.push_back({fmt::format("{}.in{}", MemSpaceName(c), in.op == Opcode::kLoadFm ? 0 : 1),
                     in.op == Opcode::kLoadFm ? 2 : 3, t.transfer_cycles(Link::kMemtileToCore, bytes)});
      break;
    case Opcode::kComp:
      for (const MemSpace& c : in.cores)
        r.push_back({fmt::format("{}.mac", MemSpaceName(c)), 4,
                     static_cast<double>(in.comp.macs) / (t.macs_per_cycle() * eff)});
      break;
    case Opcode::kWriteFm:
      r.push_back({fmt::format("{}.out", MemSpaceName(in.src)), 5, t.transfer_cycles(Link::kCoreToMemtile, bytes)});
      break;
    default:
      break;
  }
  return r;
}

}  // namespace

Status RunTimeModel(CompileState& s) {
  const Target& t = s.target;
  const double eff = s.options.mac_efficiency > 0 ? s.options.mac_efficiency : t.core.mac_efficiency;
  s.events.clear();
  double now = 0, prev_block = 0;
  for (Layer& l : s.layers) {
    l.ddr_read_bytes = l.ddr_write_bytes = l.stream_in_bytes = l.stream_out_bytes = 0;
    const double start = now;
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      const Block& b = s.program.blocks[static_cast<size_t>(bi)];
      std::map<std::string, double> per_res;
      std::map<std::string, double> stage_res[7];
      bool weights_only = true;
      for (const Instruction& in : b.instrs) {
        if (in.op != Opcode::kLoadW && in.op != Opcode::kLoadWm) weights_only = false;
        const int64_t bytes = in.bytes() * b.iterations;
        if (in.op == Opcode::kLoad || in.op == Opcode::kLoadW) l.ddr_read_bytes += bytes;
        if (in.op == Opcode::kWrite) l.ddr_write_bytes += bytes;
        if (in.op == Opcode::kLoadFm || in.op == Opcode::kLoadWm) l.stream_in_bytes += bytes * static_cast<int64_t>(in.dst.size());
        if (in.op == Opcode::kWriteFm) l.stream_out_bytes += bytes;
        for (const Cost& c : InstrCosts(t, eff, in)) {
          per_res[c.resource] += c.cycles;
          stage_res[c.stage][c.resource] += c.cycles;
        }
      }
      double steady = 0;
      for (const auto& [res, cyc] : per_res) steady = std::max(steady, cyc);
      // One iteration's latency: the stages in order, each as long as its busiest resource.
      double stage_max[7] = {0, 0, 0, 0, 0, 0, 0};
      double latency = 0;
      for (int st = 0; st < 7; ++st) {
        for (const auto& [res, cyc] : stage_res[st]) stage_max[st] = std::max(stage_max[st], cyc);
        latency += stage_max[st];
      }
      double cycles = latency + static_cast<double>(b.iterations - 1) * steady;
      if (weights_only && l.prefetch_weights && bi > l.first_block) {
        // The DDR part (LOADW) overlapped the previous block.
        const double hidden = std::min(stage_max[1], prev_block);
        cycles -= hidden;
      }
      const double dur = t.cycles_to_seconds(cycles);
      for (const auto& [res, cyc] : per_res) {
        s.events.push_back({b.label, res.substr(0, 3) == "ddr" ? "ddr" : "core", static_cast<int>(&l - s.layers.data()), res, now,
                            t.cycles_to_seconds(std::min(cyc * static_cast<double>(b.iterations), cycles))});
      }
      now += dur;
      prev_block = cycles;
    }
    l.time_s = now - start;
    // Roofline: whole-array capacities.
    const double macs_s = static_cast<double>(l.macs) / (t.peak_macs_per_second() * eff);
    const double rd = static_cast<double>(l.ddr_read_bytes) /
                      (t.num_memtiles() * t.ddr.read_channels_per_memtile * t.ddr.channel_gbps * 1e9);
    const double wr = static_cast<double>(l.ddr_write_bytes) /
                      (t.num_memtiles() * t.ddr.write_channels_per_memtile * t.ddr.channel_gbps * 1e9);
    const double sin = static_cast<double>(l.stream_in_bytes) /
                       (t.num_cores() * t.core.dma_in_channels * t.stream.memtile_to_core_gbps * 1e9);
    const double sout = static_cast<double>(l.stream_out_bytes) /
                        (t.num_cores() * t.core.dma_out_channels * t.stream.core_to_memtile_gbps * 1e9);
    l.bound_s = std::max({macs_s, rd, wr, sin, sout});
    l.binding = l.bound_s == macs_s ? "compute" : l.bound_s == rd ? "ddr-read" : l.bound_s == wr ? "ddr-write"
                : l.bound_s == sin ? "memtile->core" : "core->memtile";
  }
  s.total_s = now;
  s.bound_s = 0;
  for (const Layer& l : s.layers) s.bound_s += l.bound_s;
  return Status::Ok();
}

std::string DumpTimeModel(const CompileState& s) {
  std::string r = fmt::format("# time: total {:.6f} ms, roofline {:.6f} ms\n", s.total_s * 1e3, s.bound_s * 1e3);
  for (const Layer& l : s.layers) {
    r += fmt::format("{:<28} {:10.3f} us bound {:10.3f} us ({}) eff {:.3f}\n", l.name, l.time_s * 1e6, l.bound_s * 1e6,
                     l.binding, l.time_s > 0 ? l.bound_s / l.time_s : 0.0);
  }
  return r;
}

}  // namespace wbs::aie

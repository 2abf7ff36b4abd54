// Pass 9: time model. The program is scheduled event by event
// (aie/timeline.h): each instruction instance goes on the channels it
// occupies (shim read/write channels per memtile, memtile and core DMA
// channels, core compute) as early as its locks, its data hazards and those
// channels allow; durations are bytes / link bandwidth
// (Target::transfer_cycles) and effective MACs / (MACs per cycle x kernel
// efficiency). So an iterated ping/pong block costs its busiest resource per
// iteration plus the first iteration's latency and the last one's drain,
// independent channels run in parallel, and the next block's loads (the next
// layer's weights, prefetched into the other memtile weight half) start as
// soon as their data and channels are free. It is the simulator's timing rule
// (docs/SIMULATOR.md), so the estimate and the simulated time agree.
// Consecutive layers overlap (the next one's weight loads run under this
// one's compute), so a layer has two times: its span (first start to last
// end; the roofline bounds it) and its increment, how far it moves the end
// of the schedule (max end of layers 0..L minus that of 0..L-1; additive,
// the increments sum to the total; the simulator reports the same).
// Roofline per layer: the maximum of its compute on the whole array (its
// COMPs' aie::CompCycles over every core, so pools and adds count) and of
// its traffic on each link kind at the whole array's bandwidth; efficiency =
// roofline / estimate.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "aie/comp_cost.h"
#include "aie/passes/compiler.h"
#include "aie/timeline.h"

namespace wbs::aie {

namespace {

// Trace events kept (the schedule itself covers every instance).
constexpr size_t kMaxTraceEvents = 100000;

// CompileState::Ideal.
void IdealBound(CompileState& s, double eff) {
  const Target& t = s.target;
  CompileState::Ideal& b = s.ideal;
  b = {};
  const double peak = t.peak_macs_per_second() * eff;
  const double rd_bw =
      t.num_memtiles() * t.ddr.read_channels_per_memtile * t.ddr.channel_gbps * 1e9;
  const double wr_bw =
      t.num_memtiles() * t.ddr.write_channels_per_memtile * t.ddr.channel_gbps * 1e9;
  int64_t macs = 0;
  for (const Layer& l : s.layers) {
    macs += l.macs;
    int64_t wb = 0;
    if (l.kind == LayerKind::kConv) {
      BlobHeader h;
      h.br = l.br, h.bc = l.bc, h.kh = static_cast<int32_t>(l.wkh()),
      h.kw = static_cast<int32_t>(l.wkw());
      h.block_rows = static_cast<int32_t>(l.block_rows);
      int64_t nnz = 0;
      for (const int64_t n : l.row_nnz) nnz += n;
      h.nnz = static_cast<int32_t>(nnz);
      wb = BlobBytes(h);
    }
    b.weight_bytes += wb;
    // The network's input and output count in the layers that read / write them.
    int64_t in = 0, out = 0;
    for (const int i : l.inputs)
      if (std::find(s.inputs.begin(), s.inputs.end(), i) != s.inputs.end())
        in += s.tensors[static_cast<size_t>(i)].bytes();
    if (std::find(s.outputs.begin(), s.outputs.end(), l.output) != s.outputs.end())
      out += s.tensors[static_cast<size_t>(l.output)].bytes();
    b.layers_s +=
        std::max({static_cast<double>(l.macs) / peak, static_cast<double>(wb + in) / rd_bw,
                  static_cast<double>(out) / wr_bw});
  }
  for (const int i : s.inputs) b.input_bytes += s.tensors[static_cast<size_t>(i)].bytes();
  for (const int o : s.outputs) b.output_bytes += s.tensors[static_cast<size_t>(o)].bytes();
  b.compute_s = static_cast<double>(macs) / peak;
  b.read_s = static_cast<double>(b.weight_bytes + b.input_bytes) / rd_bw;
  b.write_s = static_cast<double>(b.output_bytes) / wr_bw;
  b.total_s = std::max({b.compute_s, b.read_s, b.write_s});
}

}  // namespace

Status RunTimeModel(CompileState& s) {
  const Target& t = s.target;
  const double eff =
      s.options.mac_efficiency > 0 ? s.options.mac_efficiency : t.core.mac_efficiency;
  s.events.clear();
  Timeline tl(t, eff, s.program);
  const bool trace = s.options.trace;
  std::vector<std::string> names;
  std::vector<int> ids;
  double frontier = 0;
  for (Layer& l : s.layers) {
    l.ddr_read_bytes = l.ddr_write_bytes = l.stream_in_bytes = l.stream_out_bytes = 0;
    const int li = static_cast<int>(&l - s.layers.data());
    double first = -1, end = 0;
    double core_cycles = 0;  // every COMP instance's duration on every core it runs on
    for (int bi = l.first_block; bi < l.first_block + l.num_blocks; ++bi) {
      const Block& b = s.program.blocks[static_cast<size_t>(bi)];
      for (const Instruction& in : b.instrs) {
        if (in.op == Opcode::kComp)
          core_cycles += CompCycles(t, in.comp, eff) * static_cast<double>(in.cores.size()) *
                         static_cast<double>(b.iterations);
        const int64_t bytes = in.bytes() * b.iterations;
        if (in.op == Opcode::kLoad || in.op == Opcode::kLoadW) l.ddr_read_bytes += bytes;
        if (in.op == Opcode::kWrite) l.ddr_write_bytes += bytes;
        if (in.op == Opcode::kLoadFm || in.op == Opcode::kLoadWm)
          l.stream_in_bytes += bytes * static_cast<int64_t>(in.dst.size());
        if (in.op == Opcode::kWriteFm) l.stream_out_bytes += bytes;
      }
      // Trace event names, one per instruction of the block.
      names.clear();
      if (trace)
        for (const Instruction& in : b.instrs)
          names.push_back(fmt::format("{} {}", OpcodeName(in.op), b.label));
      for (int64_t it = 0; it < b.iterations; ++it) {
        for (size_t ii = 0; ii < b.instrs.size(); ++ii) {
          double start = 0, stop = 0;
          tl.Schedule(b.instrs[ii], it, &start, &stop, &ids);
          first = first < 0 ? start : std::min(first, start);
          end = std::max(end, stop);
          if (!trace || s.events.size() >= kMaxTraceEvents || stop <= start) continue;
          for (const int id : ids) {
            const std::string& r = tl.ResourceName(id);
            s.events.push_back({names[ii], r.rfind("shim", 0) == 0 ? "ddr" : "core", li, r,
                                t.cycles_to_seconds(start), t.cycles_to_seconds(stop - start)});
          }
        }
      }
    }
    l.span_s = first < 0 ? 0.0 : t.cycles_to_seconds(end - first);
    l.time_s = t.cycles_to_seconds(std::max(0.0, end - frontier));
    frontier = std::max(frontier, end);
    // Roofline: whole-array capacities.
    // Compute: the layer's COMP cycles (aie::CompCycles: MACs, or the vector
    // ops of pools, adds, rescales and requantization where they take
    // longer) spread over every core; for MAC-bound COMPs this is
    // MACs / (array peak x efficiency).
    const double macs_s = t.cycles_to_seconds(core_cycles / t.num_cores());
    // Traffic: bytes over every tile's channels of that link kind.
    auto over = [](int64_t bytes, int tiles, int channels_per_tile, double gbps) {
      return static_cast<double>(bytes) /
             (static_cast<double>(tiles) * channels_per_tile * gbps * 1e9);
    };
    const double rd = over(l.ddr_read_bytes, t.num_memtiles(), t.ddr.read_channels_per_memtile,
                           t.ddr.channel_gbps);
    const double wr = over(l.ddr_write_bytes, t.num_memtiles(), t.ddr.write_channels_per_memtile,
                           t.ddr.channel_gbps);
    const double sin = over(l.stream_in_bytes, t.num_cores(), t.core.dma_in_channels,
                            t.stream.memtile_to_core_gbps);
    const double sout = over(l.stream_out_bytes, t.num_cores(), t.core.dma_out_channels,
                             t.stream.core_to_memtile_gbps);
    l.bound_s = std::max({macs_s, rd, wr, sin, sout});
    l.stream_in_over_macs =
        sin > std::max({static_cast<double>(l.macs) / (t.peak_macs_per_second() * eff), rd, wr}) &&
        sin >= sout;
    l.binding = l.bound_s == macs_s ? "compute"
                : l.bound_s == rd   ? "ddr-read"
                : l.bound_s == wr   ? "ddr-write"
                : l.bound_s == sin  ? "memtile->core"
                                    : "core->memtile";
  }
  s.total_s = t.cycles_to_seconds(tl.horizon());
  s.bound_s = 0;
  for (const Layer& l : s.layers) s.bound_s += l.bound_s;
  IdealBound(s, eff);
  return Status::Ok();
}

std::string DumpTimeModel(const CompileState& s) {
  std::string r = fmt::format("# time: total {:.6f} ms, roofline {:.6f} ms, ideal {:.6f} ms\n",
                              s.total_s * 1e3, s.bound_s * 1e3, s.ideal.total_s * 1e3);
  for (const Layer& l : s.layers) {
    r += fmt::format("{:<28} {:10.3f} us span {:10.3f} us bound {:10.3f} us ({}) eff {:.3f}\n",
                     l.name, l.time_s * 1e6, l.span_s * 1e6, l.bound_s * 1e6, l.binding,
                     l.span_s > 0 ? l.bound_s / l.span_s : 0.0);
  }
  return r;
}

}  // namespace wbs::aie

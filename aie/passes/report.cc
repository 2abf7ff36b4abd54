// Reports of a compiled state: the per-layer table, the memory map and the
// Chrome/Perfetto trace of the estimated timeline.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "aie/passes/compiler.h"

namespace wbs::aie {

std::string LayerTable(const CompileState& s) {
  const CompileState::Ideal& b = s.ideal;
  std::string r = fmt::format(
      // One comment line (report/inputs.cc ParseLayersTsv reads the totals from it).
      "# {} on {} ({}x{}): estimate {:.4f} ms, roofline {:.4f} ms, efficiency {:.3f}; "
      "ideal {:.4f} ms = max(compute {:.4f}, DDR read {:.4f} ({} weight + {} input bytes), DDR write {:.4f}), "
      "per layer without overlap {:.4f} ms\n"
      "layer\tkind\tsubvolume(mt_rows x oh_t x ow_t, ct/parts)\tsplit\timbalance\tddr_rd\tddr_wr\tstream_in\tstream_out"
      "\tmacs_dense\tmacs\ttime_us\troofline_us\tbinds\tefficiency\tspan_us\n",
      s.graph ? s.graph->name : "model", s.target.name, s.target.rows, s.target.cols, s.total_s * 1e3, s.bound_s * 1e3,
      s.total_s > 0 ? s.bound_s / s.total_s : 0.0, b.total_s * 1e3, b.compute_s * 1e3, b.read_s * 1e3,
      b.weight_bytes, b.input_bytes, b.write_s * 1e3, b.layers_s * 1e3);
  for (const Layer& l : s.layers) {
    r += fmt::format("{}\t{}\t{}x{}x{} {}/{}\t{}x{}{}\t{:.3f}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3f}\t{:.3f}\t{}\t{:.3f}\t{:.3f}\n", l.name,
                     LayerKindName(l.kind), l.mt_rows, l.oh_t, l.ow_t, l.ct, l.parts, l.rows_used, l.cols_used,
                     l.cout_only ? "c" : l.wide ? "w" : "", l.imbalance, l.ddr_read_bytes, l.ddr_write_bytes, l.stream_in_bytes,
                     l.stream_out_bytes, l.macs_dense, l.macs, l.time_s * 1e6, l.bound_s * 1e6, l.binding,
                     l.span_s > 0 ? l.bound_s / l.span_s : 0.0, l.span_s * 1e6);
  }
  return r;
}

std::string MemoryMap(const CompileState& s) {
  std::string r = fmt::format("# DDR ({} bytes)\n", s.program.ddr_bytes);
  static const char* kinds[] = {"input", "output", "const", "scratch"};
  for (const DdrSymbol& y : s.program.symbols)
    r += fmt::format("ddr\t{}\t{}\t{}\t{}\n", y.addr, y.size, kinds[static_cast<int>(y.kind)], y.name);
  r += fmt::format("# per layer: core buffers (same addresses in every busy core; {} bytes of buffer banks) and memtile slabs (per column, {} bytes each)\n",
                   s.target.core_buffer_bytes(), s.target.memtile.bytes);
  for (const Layer& l : s.layers) {
    r += fmt::format("core\t{}\tin {}+{}x{}\tin2 {}+2x{}\tw {}+{}x{}\tout {}+2x{}\tacc {}+{}\n", l.name, l.core_in, l.in_bufs, l.in_bytes,
                     l.core_in2, l.in2_bytes, l.core_w, l.core_w_halves(), l.w_bytes, l.core_out,
                     l.out_bytes, l.core_acc, l.acc_bytes);
    r += fmt::format("memtile\t{}\tin {}\tin2 {}\tw {}\tout {}\tend {}\n", l.name, l.mt_in, l.mt_in2, l.mt_w, l.mt_out,
                     l.mt_col_bytes);
  }
  return r;
}

std::string TraceJson(const CompileState& s) {
  nlohmann::json ev = nlohmann::json::array();
  std::map<std::string, int> tids;
  for (const auto& e : s.events) {
    const auto it = tids.emplace(e.resource, static_cast<int>(tids.size())).first;
    ev.push_back({{"name", e.name}, {"cat", e.cat}, {"ph", "X"}, {"pid", 0}, {"tid", it->second},
                  {"ts", e.start_s * 1e6}, {"dur", e.dur_s * 1e6},
                  {"args", {{"layer", e.layer >= 0 ? s.layers[static_cast<size_t>(e.layer)].name : ""}}}});
  }
  for (const auto& [name, tid] : tids)
    ev.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 0}, {"tid", tid}, {"args", {{"name", name}}}});
  nlohmann::json j = {{"traceEvents", ev}, {"displayTimeUnit", "ns"}};
  return j.dump() + "\n";
}

}  // namespace wbs::aie

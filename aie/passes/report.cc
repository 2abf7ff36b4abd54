// Reports of a compiled state: the per-layer table, the memory map and the
// Chrome/Perfetto trace of the estimated timeline.
#include <array>
#include <cmath>
#include <map>
#include <string_view>

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

namespace {

// Appends `v` as nlohmann::json::dump() spells it: plain printable ASCII is
// copied between quotes; anything else (escapes, control bytes, UTF-8) goes
// through nlohmann's own serializer.
void AppendJsonString(std::string& out, std::string_view v) {
  for (const char c : v) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      out += nlohmann::json(std::string(v)).dump();
      return;
    }
  }
  out += '"';
  out += v;
  out += '"';
}

// A double as nlohmann::json::dump() spells it (its Grisu2 `to_chars`; null
// for NaN and infinities).
void AppendJsonNumber(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  std::array<char, 64> buf;
  char* end = nlohmann::detail::to_chars(buf.data(), buf.data() + buf.size(), x);
  out.append(buf.data(), end);
}

}  // namespace

// Written directly rather than through a nlohmann::json tree (1.3 s of the
// ResNet-50 CLI run for ~90k events: a std::map per event); the bytes are
// those of the tree's dump(): keys in std::map order, nlohmann's number and
// string spelling (tests/unit/aie_trace_json_test.cc compares the two).
std::string TraceJson(const CompileState& s) {
  std::map<std::string, int> tids;
  std::string r = "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[";
  r.reserve(s.events.size() * 176 + 64);
  bool first = true;
  for (const auto& e : s.events) {
    const auto it = tids.emplace(e.resource, static_cast<int>(tids.size())).first;
    if (!first) r += ',';
    first = false;
    r += "{\"args\":{\"layer\":";
    AppendJsonString(r, e.layer >= 0 ? std::string_view(s.layers[static_cast<size_t>(e.layer)].name) : std::string_view());
    r += "},\"cat\":";
    AppendJsonString(r, e.cat);
    r += ",\"dur\":";
    AppendJsonNumber(r, e.dur_s * 1e6);
    r += ",\"name\":";
    AppendJsonString(r, e.name);
    r += ",\"ph\":\"X\",\"pid\":0,\"tid\":";
    r += std::to_string(it->second);
    r += ",\"ts\":";
    AppendJsonNumber(r, e.start_s * 1e6);
    r += '}';
  }
  for (const auto& [name, tid] : tids) {
    if (!first) r += ',';
    first = false;
    r += "{\"args\":{\"name\":";
    AppendJsonString(r, name);
    r += "},\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":";
    r += std::to_string(tid);
    r += '}';
  }
  r += "]}\n";
  return r;
}

}  // namespace wbs::aie

#include "report/inputs.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "onnx/model_io.h"
#include "sparse/layers.h"

#ifndef WBS_SOURCE_DIR
#define WBS_SOURCE_DIR "."
#endif

namespace wbs::report {
namespace {

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, sep)) out.push_back(cell);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    out.push_back(line);
  }
  return out;
}

// A strict number: the whole cell parses (strtod), finite or not.
Result<double> Number(const std::string& cell, const std::string& what, size_t line,
                      const std::string& column) {
  const char* begin = cell.c_str();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(begin, &end);
  if (cell.empty() || end != begin + cell.size())
    return ParseError("{}:{}: column '{}': '{}' is not a number", what, line, column, cell);
  return v;
}

using Columns = std::map<std::string, size_t>;

// Column name -> index of a TSV header; every `required` column must exist.
Result<Columns> Header(const std::string& line, const std::string& what, size_t line_no,
                       std::initializer_list<const char*> required) {
  Columns cols;
  std::vector<std::string> names = Split(line, '\t');
  for (size_t i = 0; i < names.size(); ++i) cols.emplace(names[i], i);
  for (const char* r : required)
    if (!cols.count(r)) return ParseError("{}:{}: header has no column '{}'", what, line_no, r);
  return cols;
}

// The cells of a data row (line number `line_no`) of a table with `cols`.
Result<std::vector<std::string>> RowCells(const std::string& line, const Columns& cols,
                                          const std::string& what, size_t line_no) {
  std::vector<std::string> cells = Split(line, '\t');
  if (cells.size() < cols.size())
    return ParseError("{}:{}: {} columns, the header has {}", what, line_no, cells.size(),
                      cols.size());
  return cells;
}

// Copies the text columns of a row into their fields and parses the numeric
// ones.
Status RowFields(const std::vector<std::string>& cells, const Columns& cols,
                 const std::string& what, size_t line_no,
                 std::initializer_list<std::pair<const char*, std::string*>> texts,
                 std::initializer_list<std::pair<const char*, double*>> numbers) {
  for (auto [name, field] : texts) *field = cells[cols.at(name)];
  for (auto [name, field] : numbers) {
    WBS_ASSIGN_OR_RETURN(*field, Number(cells[cols.at(name)], what, line_no, name));
  }
  return Status::Ok();
}

}  // namespace

std::string SourceDir(const std::string& configured) {
  return configured.empty() ? WBS_SOURCE_DIR : configured;
}

Result<AieLayers> ParseLayersTsv(const std::string& text, const std::string& what) {
  AieLayers out;
  std::vector<std::string> lines = Lines(text);
  size_t i = 0;
  if (i < lines.size() && lines[i].rfind("# ", 0) == 0) {
    out.title = lines[i].substr(2);
    std::smatch m;
    static const std::regex kEstimate(R"(estimate ([0-9.eE+-]+) ms)"),
        kRoofline(R"(roofline ([0-9.eE+-]+) ms)");
    if (std::regex_search(out.title, m, kEstimate))
      out.estimate_ms = std::strtod(m[1].str().c_str(), nullptr);
    if (std::regex_search(out.title, m, kRoofline))
      out.roofline_ms = std::strtod(m[1].str().c_str(), nullptr);
    ++i;
  }
  if (i >= lines.size()) return ParseError("{}: no header row", what);
  WBS_ASSIGN_OR_RETURN(auto cols, Header(lines[i], what, i + 1,
                                         {"layer", "kind", "macs_dense", "macs", "time_us",
                                          "roofline_us", "binds", "efficiency"}));
  double sum_us = 0, sum_roof_us = 0;
  for (++i; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    WBS_ASSIGN_OR_RETURN(std::vector<std::string> cells, RowCells(lines[i], cols, what, i + 1));
    AieLayer l;
    WBS_RETURN_IF_ERROR(RowFields(cells, cols, what, i + 1,
                                  {{"layer", &l.name}, {"kind", &l.kind}, {"binds", &l.binds}},
                                  {{"macs_dense", &l.macs_dense},
                                   {"macs", &l.macs},
                                   {"time_us", &l.time_us},
                                   {"roofline_us", &l.roofline_us},
                                   {"efficiency", &l.efficiency}}));
    sum_us += l.time_us, sum_roof_us += l.roofline_us;
    out.layers.push_back(std::move(l));
  }
  if (out.layers.empty()) return ParseError("{}: no layer rows", what);
  // Older tables without the comment line: the total is the layers' sum.
  if (out.estimate_ms <= 0) out.estimate_ms = sum_us / 1000.0;
  if (out.roofline_ms <= 0) out.roofline_ms = sum_roof_us / 1000.0;
  return out;
}

Result<std::vector<SweepRow>> ParseSweepTsv(const std::string& text, const std::string& what) {
  std::vector<std::string> lines = Lines(text);
  size_t i = 0;
  while (i < lines.size() && (lines[i].empty() || lines[i][0] == '#')) ++i;
  if (i >= lines.size()) return ParseError("{}: no header row", what);
  WBS_ASSIGN_OR_RETURN(auto cols, Header(lines[i], what, i + 1,
                                         {"model", "array", "sparsity", "used", "estimate_ms",
                                          "roofline_ms", "efficiency"}));
  std::vector<SweepRow> rows;
  for (++i; i < lines.size() && !lines[i].empty(); ++i) {
    WBS_ASSIGN_OR_RETURN(std::vector<std::string> cells, RowCells(lines[i], cols, what, i + 1));
    SweepRow r;
    WBS_RETURN_IF_ERROR(RowFields(cells, cols, what, i + 1,
                                  {{"model", &r.model}, {"array", &r.array}, {"used", &r.used}},
                                  {{"sparsity", &r.sparsity},
                                   {"estimate_ms", &r.estimate_ms},
                                   {"roofline_ms", &r.roofline_ms},
                                   {"efficiency", &r.efficiency}}));
    rows.push_back(std::move(r));
  }
  if (rows.empty()) return ParseError("{}: no rows", what);
  return rows;
}

Result<SimReport> ParseSimReport(const std::string& text, const std::string& what) {
  SimReport out;
  bool have_total = false;
  static const std::regex kTotal(R"(^total: ([0-9]+) cycles.*estimate ([0-9]+) cycles)");
  std::vector<std::string> lines = Lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    std::smatch m;
    if (std::regex_search(line, m, kTotal)) {
      out.sim_cycles = std::strtod(m[1].str().c_str(), nullptr);
      out.estimate_cycles = std::strtod(m[2].str().c_str(), nullptr);
      have_total = true;
      continue;
    }
    // Layer rows: "<index> <layer> <op> <sim cycles> <estimate> <sim/est> <core%> <link%>".
    std::istringstream in(line);
    std::vector<std::string> tok;
    for (std::string t; in >> t;) tok.push_back(t);
    if (tok.size() < 5 || tok[0].find_first_not_of("0123456789") != std::string::npos) continue;
    SimLayer l{tok[1], tok[2], 0, 0};
    WBS_ASSIGN_OR_RETURN(l.sim_cycles, Number(tok[3], what, i + 1, "sim cycles"));
    WBS_ASSIGN_OR_RETURN(l.estimate_cycles, Number(tok[4], what, i + 1, "estimate"));
    out.layers.push_back(std::move(l));
  }
  if (!have_total) return ParseError("{}: no 'total: N cycles ..., estimate M cycles' line", what);
  return out;
}

Result<SimReport> SimReportFromJson(const nlohmann::json& j, const std::string& what) {
  auto sim = NumberAt(j, {"sim_cycles"}), est = NumberAt(j, {"estimate_cycles"});
  if (!sim || !est) return ParseError("{}: no numeric 'sim_cycles' and 'estimate_cycles'", what);
  SimReport out;
  out.sim_cycles = *sim, out.estimate_cycles = *est;
  if (j.contains("bit_exact") && j["bit_exact"].is_boolean())
    out.bit_exact = j["bit_exact"].get<bool>();
  if (j.contains("layers") && j["layers"].is_array()) {
    for (const nlohmann::json& l : j["layers"]) {
      auto ls = NumberAt(l, {"sim_cycles"}), le = NumberAt(l, {"est_cycles"});
      if (!l.is_object() || !ls || !le || !l.contains("name") || !l["name"].is_string())
        return ParseError("{}: layer {} lacks name/sim_cycles/est_cycles", what, out.layers.size());
      out.layers.push_back(
          {l["name"], l.contains("op") && l["op"].is_string() ? l["op"].get<std::string>() : "",
           *ls, *le});
    }
  }
  return out;
}

Result<Timeline> ParseChromeTrace(const nlohmann::json& trace, const std::string& what,
                                  int max_rows) {
  const nlohmann::json* events = &trace;
  if (trace.is_object()) {
    if (!trace.contains("traceEvents")) return ParseError("{}: no 'traceEvents'", what);
    events = &trace["traceEvents"];
  }
  if (!events->is_array()) return ParseError("{}: 'traceEvents' is not an array", what);
  std::map<int64_t, std::string> process_names;
  std::map<std::pair<int64_t, int64_t>, std::string> thread_names;
  struct Raw {
    int64_t pid, tid;
    double ts, dur;
    std::string label;
  };
  std::vector<Raw> raw;
  for (const nlohmann::json& e : *events) {
    if (!e.is_object() || !e.contains("ph") || !e["ph"].is_string()) continue;
    const std::string ph = e["ph"];
    const int64_t pid = e.value("pid", int64_t{0}), tid = e.value("tid", int64_t{0});
    const std::string name =
        e.contains("name") && e["name"].is_string() ? e["name"].get<std::string>() : "";
    if (ph == "M") {
      if (!e.contains("args") || !e["args"].is_object() || !e["args"].contains("name") ||
          !e["args"]["name"].is_string())
        continue;
      if (name == "process_name") process_names[pid] = e["args"]["name"];
      if (name == "thread_name") thread_names[{pid, tid}] = e["args"]["name"];
      continue;
    }
    if (ph != "X" || !e.contains("ts") || !e["ts"].is_number()) continue;
    Raw r{pid, tid, e["ts"].get<double>(), e.value("dur", 0.0), ""};
    // "OP layer" names the layer; else args.layer (a name or an index).
    if (size_t sp = name.find(' '); sp != std::string::npos) r.label = name.substr(sp + 1);
    if (r.label.empty() && e.contains("args") && e["args"].is_object() &&
        e["args"].contains("layer")) {
      const nlohmann::json& l = e["args"]["layer"];
      r.label = l.is_string() ? l.get<std::string>() : l.dump();
    }
    if (r.label.empty()) r.label = name;
    raw.push_back(std::move(r));
  }
  if (raw.empty()) return ParseError("{}: no complete ('X') events", what);

  std::map<std::pair<int64_t, int64_t>, bool> threads;
  for (const Raw& r : raw) threads[{r.pid, r.tid}] = true;
  auto thread_name = [&](int64_t pid, int64_t tid) {
    auto it = thread_names.find({pid, tid});
    return it != thread_names.end() ? it->second : fmt::format("{}/{}", pid, tid);
  };
  auto process_name = [&](int64_t pid) {
    auto it = process_names.find(pid);
    return it != process_names.end() ? it->second : fmt::format("process {}", pid);
  };
  auto is_core = [](const std::string& n) {
    return n.size() >= 5 && n.compare(n.size() - 5, 5, ".core") == 0;
  };
  const bool fold = static_cast<int>(threads.size()) > max_rows;
  // Row keys: (pid, tid) for own rows, (pid, -1) for a process's folded channels.
  std::map<std::pair<int64_t, int64_t>, int> row_of;
  std::map<int64_t, int> folded_count;
  Timeline t;
  auto key_of = [&](int64_t pid, int64_t tid) {
    return !fold || is_core(thread_name(pid, tid)) ? std::pair{pid, tid}
                                                   : std::pair{pid, int64_t{-1}};
  };
  for (const auto& [k, unused] : threads) {
    auto key = key_of(k.first, k.second);
    if (key.second == -1) ++folded_count[k.first];
    if (!row_of.count(key)) row_of.emplace(key, 0);
  }
  // Rows in (pid, tid) order with each folded process row last in its process.
  std::vector<std::pair<int64_t, int64_t>> order;
  for (const auto& [k, unused] : row_of) order.push_back(k);
  std::stable_sort(order.begin(), order.end(), [](auto a, auto b) {
    if (a.first != b.first) return a.first < b.first;
    if ((a.second == -1) != (b.second == -1)) return b.second == -1;
    return a.second < b.second;
  });
  for (auto k : order) {
    row_of[k] = static_cast<int>(t.rows.size());
    t.rows.push_back(k.second == -1 ? fmt::format("{} ({} channels)", process_name(k.first),
                                                  folded_count[k.first])
                                    : thread_name(k.first, k.second));
  }
  std::map<std::string, int> label_of;
  double t0 = raw.front().ts;
  for (const Raw& r : raw) t0 = std::min(t0, r.ts);
  for (const Raw& r : raw) {
    auto [it, fresh] = label_of.emplace(r.label, static_cast<int>(t.labels.size()));
    if (fresh) t.labels.push_back(r.label);
    t.events.push_back({row_of[key_of(r.pid, r.tid)], r.ts - t0, r.dur, it->second});
  }
  return t;
}

Result<std::vector<MaskedLayer>> LoadMaskedLayers(const std::string& onnx_path) {
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, onnxio::ImportModel(onnx_path));
  WBS_ASSIGN_OR_RETURN(std::vector<sparse::Layer> layers, sparse::FindLayers(*graph, {}));
  std::vector<MaskedLayer> out;
  for (const sparse::Layer& l : layers) {
    if (!l.weight || !l.weight->block_mask) continue;
    out.push_back({l.node->name, l.node->op_type, l.weight->name, *l.weight->block_mask});
  }
  return out;
}

Result<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("{}: cannot open", path);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return IoError("{}: read failed", path);
  return s.str();
}

Result<nlohmann::json> ReadJson(const std::string& path) {
  WBS_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ParseError("{}: not valid JSON", path);
  return j;
}

std::optional<double> NumberAt(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return std::nullopt;
    cur = &(*cur)[k];
  }
  if (!cur->is_number()) return std::nullopt;
  return cur->get<double>();
}

}  // namespace wbs::report

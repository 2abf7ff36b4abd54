// RenderHtml / WriteReport: the page, one section per pipeline stage.
// Every key number sits in an element with data-key="<name>" and
// data-value="<the summary.json number, round-trip exact>" so tests (and
// scrapers) can check the page against summary.json.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include "onnx/file_io.h"
#include "report/inputs.h"
#include "report/report.h"
#include "report/svg.h"

namespace wbs::report {
namespace fs = std::filesystem;
namespace {

using nlohmann::json;

constexpr const char* kCss = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1180px;padding:16px 24px;color:#222;background:#fff}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
#summary td.v{font-weight:600;font-size:15px;text-align:right}.missing{color:#999;font-style:italic}
.note{background:#fff6d8;border:1px solid #e8d48a;padding:8px 12px;border-radius:4px}
.problem{background:#fde8e8;border:1px solid #e0a0a0;padding:8px 12px;border-radius:4px}
.src{color:#777;font-size:12px}.masks{display:flex;flex-wrap:wrap;gap:12px}
.masks figure{margin:0;text-align:center;font-size:11px}.masks figcaption{max-width:170px;word-break:break-all}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#999}svg .tk{font-size:10px;fill:#444}
svg .al{font-size:11px;fill:#333}svg .ct{font-size:13px;font-weight:600;fill:#222}svg .lg{font-size:11px;fill:#333}
svg .band{fill:#f6f6f6}svg line.tick{stroke-width:3}
.legend span{display:inline-block;margin:0 10px 2px 0;font-size:11px}.legend i{display:inline-block;width:10px;height:10px;margin-right:3px}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px;font-size:12px}
nav a{margin-right:10px}
)";

enum class Fmt { kPercent, kSpeedup, kMs, kCycles, kRatio, kBool };

struct KeyDef {
  const char* key;
  const char* label;
  Fmt fmt;
};
constexpr KeyDef kKeys[] = {
    {"dense_accuracy", "Dense fp32 top-1", Fmt::kPercent},
    {"sparse_accuracy", "Block-sparse fp32 top-1", Fmt::kPercent},
    {"dense_int8_accuracy", "Dense int8 top-1", Fmt::kPercent},
    {"sparse_int8_accuracy", "Block-sparse int8 top-1", Fmt::kPercent},
    {"block_sparsity", "Block sparsity (zero blocks / blocks)", Fmt::kPercent},
    {"cpu_speedup_fp32", "CPU speed-up fp32 (dense / sparse)", Fmt::kSpeedup},
    {"cpu_speedup_int8", "CPU speed-up int8 (dense / sparse)", Fmt::kSpeedup},
    {"aie_dense_ms", "AIE dense time (estimate)", Fmt::kMs},
    {"aie_sparse_ms", "AIE sparse time (estimate)", Fmt::kMs},
    {"aie_speedup", "AIE speed-up (dense / sparse)", Fmt::kSpeedup},
    {"sim_bit_exact", "Simulator bit-exact vs CPU int8", Fmt::kBool},
    {"sim_cycles", "Simulated cycles", Fmt::kCycles},
    {"estimate_cycles", "Compiler estimate cycles", Fmt::kCycles},
    {"sim_vs_estimate", "Simulated / estimate", Fmt::kRatio},
};

std::string Esc(const std::string& s) { return EscapeXml(s); }

// j[k], or null when j is not an object or has no k (a hand-edited summary
// must not crash the renderer).
const json& Get(const json& j, const char* k) {
  static const json kNull;
  return j.is_object() && j.contains(k) ? j.at(k) : kNull;
}

std::string FormatValue(double v, Fmt f) {
  switch (f) {
    case Fmt::kPercent:
      return fmt::format("{:.2f}%", v * 100.0);
    case Fmt::kSpeedup:
      return fmt::format("{:.2f}x", v);
    case Fmt::kMs:
      return fmt::format("{:.4f} ms", v);
    case Fmt::kCycles:
      return fmt::format("{:.0f}", v);
    case Fmt::kRatio:
      return fmt::format("{:.3f}", v);
    case Fmt::kBool:
      return v != 0 ? "yes" : "NO";
  }
  return FormatNumber(v);
}

// The element holding one key number (or "not run").
std::string KeyCell(const json& key, const KeyDef& d) {
  const json& v = key.contains(d.key) ? key.at(d.key) : json();
  if (v.is_boolean())
    return fmt::format("<td class=\"v\" data-key=\"{}\" data-value=\"{}\">{}</td>", d.key,
                       v.get<bool>() ? "true" : "false", v.get<bool>() ? "yes" : "NO");
  if (v.is_number())
    return fmt::format("<td class=\"v\" data-key=\"{}\" data-value=\"{}\">{}</td>", d.key, v.dump(),
                       FormatValue(v.get<double>(), d.fmt));
  return fmt::format("<td class=\"v missing\" data-key=\"{}\" data-value=\"\">not run</td>", d.key);
}

double Num(const json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN;
}
std::string Str(const json& j, const char* k) {
  return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
}
// A latency cell: 3 decimals, empty when the file has no such number.
std::string Ms(double v) { return std::isfinite(v) ? fmt::format("{:.3f}", v) : ""; }
std::string NotRun(const std::string& what) {
  return fmt::format("<p class=\"missing\">not run: {}</p>", Esc(what));
}

std::string Header(const json& s) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string h = fmt::format(
      "<h1>wbs pipeline report</h1><p class=\"src\">{} &middot; generated {}</p><nav>"
      "<a href=\"#summary\">summary</a><a href=\"#accuracy\">accuracy</a><a "
      "href=\"#masks\">masks</a>"
      "<a href=\"#cpu\">CPU</a><a href=\"#aie\">AIE</a><a href=\"#sweep\">sweep</a>"
      "<a href=\"#sim\">simulator</a><a href=\"#config\">config</a></nav>",
      Esc(Str(s, "out_dir")), when);
  h += "<table id=\"stages\"><tr><th>stage</th><th>status</th><th>seconds</th></tr>";
  for (const char* name : {"dense", "sparse", "int8", "aie", "sim", "bench"}) {
    const json& st = Get(Get(s, "stages"), name);
    // The pipeline's status (cached, failed, ...) when it recorded one, else stage.json's.
    std::string status = Str(st, "pipeline");
    if (status.empty() || status == "done") status = Str(st, "status");
    const std::string message = Str(st, "message");
    h += fmt::format(
        "<tr data-stage=\"{}\"><td>{}</td><td{}>{}{}{}</td><td class=\"num\">{}</td></tr>",
        Esc(name), Esc(name), status == "done" || status == "cached" ? "" : " class=\"missing\"",
        Esc(status), st.value("demo_schedule", false) ? " (demo schedule)" : "",
        message.empty() ? "" : ": " + Esc(message),
        std::isfinite(Num(st, "seconds")) ? fmt::format("{:.1f}", Num(st, "seconds")) : "");
  }
  return h + "</table>";
}

std::string Summary(const json& s, const std::string& accuracy_doc) {
  std::string h = "<h2 id=\"summary-h\">Key numbers</h2><table id=\"summary\">";
  for (const KeyDef& d : kKeys) {
    const json& src = Get(s, "sources");
    h += fmt::format("<tr><th>{}</th>{}<td class=\"src\">{}</td></tr>", Esc(d.label),
                     KeyCell(Get(s, "key"), d),
                     src.contains(d.key) ? Esc(src[d.key].get<std::string>()) : "");
  }
  h += "</table>";
  if (s.value("demo_schedule", false))
    h += fmt::format(
        "<p class=\"note\" id=\"demo-note\">This run used the demo's short training schedules, "
        "so its accuracies are below what the full schedules reach. Full results: "
        "<a href=\"{}\">docs/ACCURACY.md</a>.</p>",
        Esc(accuracy_doc));
  for (const json& p : Get(s, "problems"))
    h += fmt::format("<p class=\"problem\">could not read: {}</p>", Esc(p.get<std::string>()));
  return h;
}

std::string Accuracy(const json& s) {
  std::string h = "<h2 id=\"accuracy\">Accuracy vs block sparsity</h2>";
  std::map<std::string, std::vector<std::pair<double, double>>> by_series;
  for (const json& p : Get(s, "accuracy_points"))
    by_series[Str(p, "series")].emplace_back(Num(p, "sparsity"), Num(p, "accuracy"));
  const json& key = Get(s, "key");
  std::vector<Series> series;
  for (auto& [name, pts] : by_series) {
    std::sort(pts.begin(), pts.end());
    pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
    series.push_back({name, pts, "", name != "dense", false});
  }
  // This run's dense (sparsity 0) and sparse points, fp32 then int8.
  for (auto [name, color, dashed, dense_key, sparse_key] :
       {std::tuple{"this run (fp32)", "#000000", false, "dense_accuracy", "sparse_accuracy"},
        std::tuple{"this run (int8)", "#777777", true, "dense_int8_accuracy",
                   "sparse_int8_accuracy"}}) {
    Series run{name, {}, color, true, dashed};
    if (Get(key, dense_key).is_number())
      run.points.emplace_back(0.0, Get(key, dense_key).get<double>());
    if (Get(key, sparse_key).is_number() && Get(key, "block_sparsity").is_number())
      run.points.emplace_back(Get(key, "block_sparsity").get<double>(),
                              Get(key, sparse_key).get<double>());
    if (!run.points.empty()) series.push_back(run);
  }
  if (series.empty())
    return h + NotRun("no accuracy numbers (dense/sparse/int8 stages, report.accuracy_results)");
  ChartOptions o;
  o.title = "test top-1 vs fraction of zero 8x8 blocks, per method";
  o.x_label = "block sparsity";
  o.y_label = "test top-1";
  o.x_percent = o.y_percent = true;
  o.x_min = 0;
  o.width = 1000;  // room for one legend entry per method
  o.height = 360;
  h += LineChart(series, o);
  if (by_series.empty())
    h += "<p class=\"src\">Only this run's points: no results from report.accuracy_results "
         "(docs/results/accuracy.json is written by <code>make experiments</code>).</p>";
  for (const json& f : Get(s, "accuracy_results_missing"))
    h += fmt::format("<p class=\"src\">report.accuracy_results: {} not found (skipped).</p>",
                     Esc(f.get<std::string>()));
  return h;
}

std::string Masks(const json& s) {
  std::string h = "<h2 id=\"masks\">Block masks per layer</h2>";
  const json& layers = Get(s, "layers");
  if (layers.empty()) return h + NotRun("no masked layers (sparse/model.onnx)");
  std::vector<std::string> names;
  BarSeries zero{"zero blocks", {}, "#e15759", false};
  for (const json& l : layers) {
    names.push_back(Str(l, "node"));
    zero.values.push_back(Num(l, "sparsity"));
  }
  ChartOptions o;
  o.title = "fraction of zero blocks per layer";
  o.y_label = "block sparsity";
  o.y_percent = true;
  o.y_max = 1;
  o.width = 1100;
  o.height = 260;
  h += BarChart(names, {zero}, o);
  h += "<p class=\"src\">&Gamma; per layer: rows = output-channel blocks, columns = input-channel "
       "blocks; dark = kept block, light = zero block (pooled cells are shaded by their kept "
       "fraction).</p><div class=\"masks\">";
  for (const json& l : layers) {
    Result<BlockMask> m = DecodeBlockMask(Str(l, "mask"), Str(l, "weight"));
    const std::string title = Str(l, "node");
    h += fmt::format(
        "<figure data-layer=\"{}\">{}<figcaption>{}<br>{} / {} zero "
        "({:.1f}%)</figcaption></figure>",
        Esc(title), m.ok() ? MaskHeatMap(*m, title) : NotRun(m.status().message()), Esc(title),
        Num(l, "zero_blocks"), Num(l, "blocks"), 100.0 * Num(l, "sparsity"));
  }
  return h + "</div>";
}

std::string Cpu(const json& s) {
  std::string h = "<h2 id=\"cpu\">CPU latency</h2>";
  const json& cpu = s.contains("cpu") ? Get(s, "cpu") : json();
  if (!cpu.is_object() || !cpu.contains("runs") || !Get(cpu, "runs").is_array())
    return h + NotRun("bench/cpu.json");
  h += fmt::format(
      "<p>{} thread(s), median of {} runs.</p><table id=\"cpu-runs\"><tr><th>run</th><th>model</th>"
      "<th>median ms</th><th>min ms</th><th>max ms</th></tr>",
      Num(cpu, "threads"), Num(cpu, "repeats"));
  std::vector<std::string> names;
  BarSeries med{"median ms", {}, "", false};
  for (const json& r : Get(cpu, "runs")) {
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td></tr>",
        Esc(Str(r, "name")), Esc(Str(r, "model")), Ms(Num(r, "median_ms")), Ms(Num(r, "min_ms")),
        Ms(Num(r, "max_ms")));
    names.push_back(Str(r, "name"));
    med.values.push_back(Num(r, "median_ms"));
  }
  h += "</table>";
  ChartOptions o;
  o.title = "median latency per run (lower is better)";
  o.y_label = "ms";
  o.width = 520;
  o.height = 260;
  return h + BarChart(names, {med}, o);
}

std::string Aie(const json& s) {
  std::string h = "<h2 id=\"aie\">AIE per-layer time, dense vs block sparse</h2>";
  const json& aie = s.contains("aie") ? Get(s, "aie") : json();
  if (!aie.is_object() || (!aie.contains("dense") && !aie.contains("sparse")))
    return h + NotRun("aie/<target>/{dense,sparse}/layers.tsv");
  h += fmt::format(
      "<p>Target <b>{}</b>. Times are the compiler's estimate (docs/AIE_COMPILER.md); the "
      "roofline bound is the layer's time at peak MAC rate or bandwidth, whichever binds.</p>",
      Esc(Str(aie, "target")));
  // Categories from the dense table (else the sparse one), matched by layer name.
  const json& base = aie.contains("dense") ? aie["dense"] : aie["sparse"];
  std::vector<std::string> names;
  for (const json& l : Get(base, "layers")) names.push_back(Str(l, "layer"));
  std::vector<BarSeries> series;
  for (const char* v : {"dense", "sparse"}) {
    if (!aie.contains(v)) continue;
    std::map<std::string, std::pair<double, double>> by;
    for (const json& l : Get(aie[v], "layers"))
      by[Str(l, "layer")] = {Num(l, "time_us"), Num(l, "roofline_us")};
    BarSeries t{
        fmt::format("{} time", v), {}, std::string(v) == "dense" ? "#4e79a7" : "#f28e2b", false};
    BarSeries r{
        fmt::format("{} roofline", v), {}, std::string(v) == "dense" ? "#1b3b5f" : "#8a4a0b", true};
    for (const std::string& n : names) {
      auto it = by.find(n);
      t.values.push_back(it == by.end() ? NAN : it->second.first);
      r.values.push_back(it == by.end() ? NAN : it->second.second);
    }
    series.push_back(t);
    series.push_back(r);
  }
  ChartOptions o;
  o.title = "time per layer (µs), bars = estimate, ticks = roofline bound";
  o.y_label = "µs";
  o.width = 1100;
  o.height = 300;
  h += BarChart(names, series, o);
  h += "<table id=\"aie-totals\"><tr><th></th><th>estimate ms</th><th>roofline "
       "ms</th><th>layers</th></tr>";
  for (const char* v : {"dense", "sparse"}) {
    if (!aie.contains(v)) {
      h += fmt::format("<tr><td>{}</td><td colspan=\"3\" class=\"missing\">not run</td></tr>", v);
      continue;
    }
    h += fmt::format(
        "<tr><td>{}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td><td "
        "class=\"num\">{}</td></tr>",
        v, Num(aie[v], "estimate_ms"), Num(aie[v], "roofline_ms"), Get(aie[v], "layers").size());
  }
  return h + "</table>";
}

std::string Sweep(const json& s) {
  std::string h = "<h2 id=\"sweep\">Array sweep</h2>";
  const json& rows = Get(s, "sweep");
  if (rows.empty()) return h + NotRun("aie/sweep.tsv");
  h += "<table id=\"sweep-table\"><tr><th>model</th><th>array</th><th>sparsity</th><th>used</th>"
       "<th>estimate ms</th><th>roofline ms</th><th>efficiency</th></tr>";
  std::map<std::string, Series> lines;  // "<model> <sparsity>" -> estimate vs array edge
  bool one_model = true;                // then the legend leaves the model name out
  for (const json& r : rows) one_model = one_model && Str(r, "model") == Str(rows[0], "model");
  for (const json& r : rows) {
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td "
        "class=\"num\">{:.4f}</td>"
        "<td class=\"num\">{:.4f}</td><td class=\"num\">{:.3f}</td></tr>",
        Esc(Str(r, "model")), Esc(Str(r, "array")), FormatNumber(Num(r, "sparsity")),
        Esc(Str(r, "used")), Num(r, "estimate_ms"), Num(r, "roofline_ms"), Num(r, "efficiency"));
    int n = 0;
    if (std::sscanf(Str(r, "array").c_str(), "%d", &n) != 1) continue;
    const std::string name = fmt::format(
        "{}{}", one_model ? "" : Str(r, "model") + " ",
        Num(r, "sparsity") > 0 ? fmt::format("{:.0f}% sparse", 100 * Num(r, "sparsity")) : "dense");
    lines[name].name = name;
    lines[name].points.emplace_back(n, Num(r, "estimate_ms"));
    lines[name + " roofline"].name = name + " roofline";
    lines[name + " roofline"].dashed = true;
    lines[name + " roofline"].points.emplace_back(n, Num(r, "roofline_ms"));
  }
  h += "</table>";
  std::vector<Series> series;
  size_t i = 0;
  for (auto& [name, se] : lines) {
    // A series and its roofline share a colour (map order puts them next to each other).
    se.color = PaletteColor(i / 2);
    ++i;
    series.push_back(se);
  }
  ChartOptions o;
  o.title = "estimated time vs array size (NxN), dashed = roofline";
  o.x_label = "array edge N";
  o.y_label = "ms";
  o.y_min = 0;
  o.width = 760;
  o.height = 340;
  std::set<double> edges;
  for (const auto& se : series)
    for (const auto& pt : se.points) edges.insert(pt.first);
  o.x_ticks.assign(edges.begin(), edges.end());
  return h + LineChart(series, o);
}

std::string Sim(const json& s, const std::string& out_dir, const ReportOptions& options) {
  std::string h = "<h2 id=\"sim\">Simulated program</h2>";
  const json& sim = s.contains("sim") ? Get(s, "sim") : json();
  if (sim.is_object() && sim.contains("layers") && !Get(sim, "layers").empty()) {
    std::vector<std::string> names;
    BarSeries a{"simulated cycles", {}, "#59a14f", false},
        b{"estimate cycles", {}, "#b07aa1", false};
    for (const json& l : Get(sim, "layers")) {
      names.push_back(Str(l, "layer"));
      a.values.push_back(Num(l, "sim_cycles"));
      b.values.push_back(Num(l, "estimate_cycles"));
    }
    ChartOptions o;
    o.title = "cycles per layer: simulator vs compiler estimate";
    o.y_label = "cycles";
    o.width = 1100;
    o.height = 280;
    h += BarChart(names, {a, b}, o);
  } else {
    h += NotRun("sim/report.txt");
  }
  const std::string trace = (fs::path(out_dir) / "sim/trace.json").string();
  std::error_code ec;
  if (!fs::exists(trace, ec)) return h + NotRun("sim/trace.json");
  Result<json> j = ReadJson(trace);
  Result<Timeline> t = j.ok() ? ParseChromeTrace(*j, "sim/trace.json", options.max_timeline_rows)
                              : Result<Timeline>(j.status());
  if (!t.ok())
    return h +
           fmt::format("<p class=\"problem\">could not read: {}</p>", Esc(t.status().message()));
  h += "<p class=\"src\">Each row is a core or a DMA channel group; colour = layer; each pixel "
       "column "
       "shows the layer that kept the row busiest in that time slice (open sim/trace.json in "
       "Perfetto for every event).</p><div id=\"timeline\">";
  h += TimelineChart(*t, "simulated timeline", "µs");
  h += "</div><p class=\"legend\">";
  for (size_t i = 0; i < t->labels.size(); ++i)
    h += fmt::format("<span><i style=\"background:{}\"></i>{}</span>", PaletteColor(i),
                     Esc(t->labels[i]));
  return h + "</p>";
}

std::string Config(const json& s) {
  std::string h = "<h2 id=\"config\">Resolved configuration</h2>";
  if (!Get(s, "config").is_object()) return h + NotRun("pipeline.json");
  if (Get(s, "config_file").is_string())
    h += fmt::format("<p>Config file: <code>{}</code></p>",
                     Esc(Get(s, "config_file").get<std::string>()));
  return h + "<pre id=\"config-json\">" + Esc(Get(s, "config").dump(2)) + "</pre>";
}

std::string AccuracyDocLink(const std::string& out_dir, const std::string& source_dir) {
  const fs::path doc = fs::path(SourceDir(source_dir)) / "docs/ACCURACY.md";
  std::error_code ec;
  fs::path rel = fs::relative(fs::absolute(doc, ec), fs::absolute(out_dir, ec), ec);
  return ec || rel.empty() ? doc.string() : rel.string();
}

}  // namespace

Result<std::string> RenderHtml(const json& s, const std::string& out_dir,
                               const ReportOptions& options) {
  if (!s.is_object() || !s.contains("key") || !s.contains("stages"))
    return InvalidArgument("report: summary has no 'key'/'stages' (not from BuildSummary)");
  std::string h =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>wbs pipeline "
      "report</title>"
      "<style>";
  h += kCss;
  h += "</style></head><body>";
  h += Header(s);
  h += Summary(s, AccuracyDocLink(out_dir, options.source_dir));
  h += Accuracy(s);
  h += Masks(s);
  h += Cpu(s);
  h += Aie(s);
  h += Sweep(s);
  h += Sim(s, out_dir, options);
  h += Config(s);
  h += "</body></html>\n";
  return h;
}

Status WriteReport(const std::string& out_dir, const ReportOptions& options) {
  WBS_ASSIGN_OR_RETURN(json summary, BuildSummary(out_dir, options));
  WBS_ASSIGN_OR_RETURN(std::string html, RenderHtml(summary, out_dir, options));
  const std::string html_path =
      options.html_path.empty() ? (fs::path(out_dir) / "report.html").string() : options.html_path;
  const std::string summary_path = options.summary_path.empty()
                                       ? (fs::path(out_dir) / "summary.json").string()
                                       : options.summary_path;
  WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(summary_path, summary.dump(2) + "\n"));
  return onnxio::WriteFileAtomically(html_path, html);
}

}  // namespace wbs::report

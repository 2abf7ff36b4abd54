// BuildSummary: gathers the key numbers and per-layer data from OUT/.
// Every number records where it came from ("sources"), because on partial
// runs some fall back to a second-best file (e.g. the fp32 top-1 of the int8
// evaluation when the fine-tune summary is missing).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "report/inputs.h"
#include "report/report.h"

namespace wbs::report {
namespace fs = std::filesystem;
namespace {

using nlohmann::json;

constexpr const char* kStages[] = {"dense", "sparse", "int8", "aie", "sim", "bench"};
// The AIE target the summary's numbers are for (the pipeline's default).
constexpr const char* kPreferredTarget = "paper-4x4";

struct Ctx {
  std::string out;
  ReportOptions opt;
  json summary;
  void Problem(const std::string& message) { summary["problems"].push_back(message); }
  std::string Path(const std::string& rel) const { return (fs::path(out) / rel).string(); }
  bool Exists(const std::string& rel) const {
    std::error_code ec;
    return fs::exists(Path(rel), ec);
  }
  // A JSON file of OUT, or null when absent; unreadable files become problems.
  json Json(const std::string& rel) {
    if (!Exists(rel)) return nullptr;
    Result<json> j = ReadJson(Path(rel));
    if (!j.ok()) {
      Problem(j.status().message());
      return nullptr;
    }
    return *j;
  }
  void Key(const std::string& key, std::optional<double> v, const std::string& source) {
    if (!v || !std::isfinite(*v)) return;
    summary["key"][key] = *v;
    summary["sources"][key] = source;
  }
  bool Has(const std::string& key) const {
    const json& k = summary.at("key");
    return k.contains(key) && !k.at(key).is_null();
  }
};

void ReadStages(Ctx& c) {
  bool demo = false;
  for (const char* stage : kStages) {
    json s = json::object();
    json st = c.Json(fmt::format("{}/stage.json", stage));
    if (st.is_object()) {
      s["status"] = st.value("status", std::string("unknown"));
      if (st.contains("seconds")) s["seconds"] = st["seconds"];
      if (st.value("demo_schedule", false)) s["demo_schedule"] = true, demo = true;
    } else {
      s["status"] = c.Exists(stage) ? "files only (no stage.json)" : "not run";
    }
    c.summary["stages"][stage] = s;
  }
  json p = c.Json("pipeline.json");
  c.summary["config"] = p.is_object() && p.contains("config") ? p["config"] : p;
  if (p.is_object() && p.contains("config_file")) c.summary["config_file"] = p["config_file"];
  if (p.is_object() && p.contains("stages") && p["stages"].is_array()) {
    // The pipeline's own word (cached, failed, skipped, unavailable, pending)
    // is more precise than the presence of files.
    for (const json& e : p["stages"]) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
          !c.summary["stages"].contains(e["name"].get<std::string>()))
        continue;
      json& s = c.summary["stages"][e["name"].get<std::string>()];
      if (e.contains("status") && e["status"].is_string()) s["pipeline"] = e["status"];
      if (e.contains("message") && e["message"].is_string() &&
          !e["message"].get<std::string>().empty())
        s["message"] = e["message"];
    }
  }
  if (p.is_object()) {
    if (p.value("demo_schedule", false)) demo = true;
    if (p.contains("config") && p["config"].is_object() &&
        p["config"].value("demo_schedule", false))
      demo = true;
  }
  c.summary["demo_schedule"] = demo;
}

void ReadAccuracy(Ctx& c) {
  json dense_stage = c.Json("dense/stage.json");
  json ft = c.Json("sparse/finetune.json");
  json sparse_stage = c.Json("sparse/stage.json");
  json q_dense = c.Json("int8/dense.json"), q_sparse = c.Json("int8/sparse.json");
  auto eval_note = [](const json& q, const char* file) {
    return fmt::format("{} eval.fp32_top1 (first {} test images)", file,
                       NumberAt(q, {"eval", "images"}).value_or(0));
  };
  c.Key("dense_accuracy", NumberAt(dense_stage, {"test", "accuracy"}),
        "dense/stage.json test.accuracy");
  if (!c.Has("dense_accuracy"))
    c.Key("dense_accuracy", NumberAt(c.Json("dense/eval.json"), {"test", "accuracy"}),
          "dense/eval.json test.accuracy");
  if (!c.Has("dense_accuracy"))
    c.Key("dense_accuracy", NumberAt(ft, {"dense_test", "accuracy"}),
          "sparse/finetune.json dense_test.accuracy");
  if (!c.Has("dense_accuracy"))
    c.Key("dense_accuracy", NumberAt(q_dense, {"eval", "fp32_top1"}),
          eval_note(q_dense, "int8/dense.json"));
  c.Key("sparse_accuracy", NumberAt(ft, {"test", "accuracy"}),
        "sparse/finetune.json test.accuracy");
  if (!c.Has("sparse_accuracy"))
    c.Key("sparse_accuracy", NumberAt(sparse_stage, {"test", "accuracy"}),
          "sparse/stage.json test.accuracy");
  if (!c.Has("sparse_accuracy"))
    c.Key("sparse_accuracy", NumberAt(q_sparse, {"eval", "fp32_top1"}),
          eval_note(q_sparse, "int8/sparse.json"));
  for (auto [key, q, file] : {std::tuple{"dense_int8_accuracy", &q_dense, "int8/dense.json"},
                              std::tuple{"sparse_int8_accuracy", &q_sparse, "int8/sparse.json"}}) {
    c.Key(key, NumberAt(*q, {"eval", "int8_top1"}),
          fmt::format("{} eval.int8_top1 (first {} test images)", file,
                      NumberAt(*q, {"eval", "images"}).value_or(0)));
  }
  c.Key("block_sparsity", NumberAt(ft, {"block_sparsity"}), "sparse/finetune.json block_sparsity");
  if (!c.Has("block_sparsity"))
    c.Key("block_sparsity", NumberAt(sparse_stage, {"block_sparsity"}),
          "sparse/stage.json block_sparsity");
  if (ft.is_object()) c.summary["finetune"] = ft;
}

// Masks of the sparse model: per-layer sparsity and the encoded Γ for the heat maps.
void ReadMasks(Ctx& c) {
  if (!c.Exists("sparse/model.onnx")) return;
  Result<std::vector<MaskedLayer>> layers = LoadMaskedLayers(c.Path("sparse/model.onnx"));
  if (!layers.ok()) return c.Problem(layers.status().message());
  int64_t zero = 0, total = 0;
  for (const MaskedLayer& l : *layers) {
    zero += l.mask.num_zero(), total += l.mask.num_blocks();
    c.summary["layers"].push_back(
        {{"node", l.node},
         {"op", l.op},
         {"weight", l.weight},
         {"block", fmt::format("{}x{}", l.mask.block_rows, l.mask.block_cols)},
         {"blocks", l.mask.num_blocks()},
         {"zero_blocks", l.mask.num_zero()},
         {"sparsity",
          l.mask.num_blocks() ? double(l.mask.num_zero()) / double(l.mask.num_blocks()) : 0.0},
         {"mask", EncodeBlockMask(l.mask)}});
  }
  if (!c.Has("block_sparsity") && total > 0)
    c.Key("block_sparsity", double(zero) / double(total),
          "sparse/model.onnx masks (zero blocks / blocks)");
}

void ReadBench(Ctx& c) {
  json cpu = c.Json("bench/cpu.json");
  if (!cpu.is_object()) return;
  c.summary["cpu"] = cpu;
  std::map<std::string, double> ms;
  if (cpu.contains("runs") && cpu["runs"].is_array())
    for (const json& r : cpu["runs"])
      if (r.is_object() && r.contains("name") && r["name"].is_string() &&
          NumberAt(r, {"median_ms"}))
        ms[r["name"]] = *NumberAt(r, {"median_ms"});
  for (auto [key, dtype] :
       {std::pair{"cpu_speedup_fp32", "fp32"}, std::pair{"cpu_speedup_int8", "int8"}}) {
    auto d = ms.find(fmt::format("dense {}", dtype)), s = ms.find(fmt::format("sparse {}", dtype));
    if (d != ms.end() && s != ms.end() && s->second > 0)
      c.Key(key, d->second / s->second,
            fmt::format("bench/cpu.json median_ms 'dense {}' / 'sparse {}'", dtype, dtype));
  }
}

json AieJson(const AieLayers& a) {
  json layers = json::array();
  for (const AieLayer& l : a.layers)
    layers.push_back({{"layer", l.name},
                      {"kind", l.kind},
                      {"time_us", l.time_us},
                      {"roofline_us", l.roofline_us},
                      {"macs_dense", l.macs_dense},
                      {"macs", l.macs},
                      {"binds", l.binds},
                      {"efficiency", l.efficiency}});
  return {{"title", a.title},
          {"estimate_ms", a.estimate_ms},
          {"roofline_ms", a.roofline_ms},
          {"layers", layers}};
}

void ReadAie(Ctx& c) {
  // The target folder: paper-4x4 when present, else the first with layer tables.
  std::string target;
  std::error_code ec;
  if (c.Exists(fmt::format("aie/{}", kPreferredTarget))) {
    target = kPreferredTarget;
  } else if (c.Exists("aie")) {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(c.Path("aie"), ec))
      if (e.is_directory()) names.insert(e.path().filename().string());
    if (!names.empty()) target = *names.begin();
  }
  if (!target.empty()) {
    c.summary["aie"]["target"] = target;
    for (const char* variant : {"dense", "sparse"}) {
      const std::string rel = fmt::format("aie/{}/{}/layers.tsv", target, variant);
      if (!c.Exists(rel)) continue;
      Result<std::string> text = ReadText(c.Path(rel));
      Result<AieLayers> t =
          text.ok() ? ParseLayersTsv(*text, rel) : Result<AieLayers>(text.status());
      if (!t.ok()) {
        c.Problem(t.status().message());
        continue;
      }
      c.summary["aie"][variant] = AieJson(*t);
      c.Key(fmt::format("aie_{}_ms", variant), t->estimate_ms, rel + " estimate");
    }
    if (c.Has("aie_dense_ms") && c.Has("aie_sparse_ms") && c.summary["key"]["aie_sparse_ms"] > 0)
      c.Key("aie_speedup",
            c.summary["key"]["aie_dense_ms"].get<double>() /
                c.summary["key"]["aie_sparse_ms"].get<double>(),
            "aie_dense_ms / aie_sparse_ms");
  }
  if (c.Exists("aie/sweep.tsv")) {
    Result<std::string> text = ReadText(c.Path("aie/sweep.tsv"));
    Result<std::vector<SweepRow>> rows = text.ok() ? ParseSweepTsv(*text, "aie/sweep.tsv")
                                                   : Result<std::vector<SweepRow>>(text.status());
    if (!rows.ok()) return c.Problem(rows.status().message());
    for (const SweepRow& r : *rows)
      c.summary["sweep"].push_back({{"model", r.model},
                                    {"array", r.array},
                                    {"sparsity", r.sparsity},
                                    {"used", r.used},
                                    {"estimate_ms", r.estimate_ms},
                                    {"roofline_ms", r.roofline_ms},
                                    {"efficiency", r.efficiency}});
  }
}

void ReadSim(Ctx& c) {
  json st = c.Json("sim/stage.json");
  if (st.is_object() && st.contains("bit_exact") && st["bit_exact"].is_boolean()) {
    c.summary["key"]["sim_bit_exact"] = st["bit_exact"].get<bool>();
    c.summary["sources"]["sim_bit_exact"] = "sim/stage.json bit_exact";
  }
  c.Key("sim_cycles", NumberAt(st, {"sim_cycles"}), "sim/stage.json sim_cycles");
  c.Key("estimate_cycles", NumberAt(st, {"estimate_cycles"}), "sim/stage.json estimate_cycles");
  // The JSON report when present (it also has bit_exact), else the text one.
  const char* file = c.Exists("sim/report.json") ? "sim/report.json" : "sim/report.txt";
  if (c.Exists(file)) {
    Result<SimReport> r = ParseError("{}: not read", file);
    if (std::string(file) == "sim/report.json") {
      Result<json> j = ReadJson(c.Path(file));
      r = j.ok() ? SimReportFromJson(*j, file) : Result<SimReport>(j.status());
    } else {
      Result<std::string> text = ReadText(c.Path(file));
      r = text.ok() ? ParseSimReport(*text, file) : Result<SimReport>(text.status());
    }
    if (!r.ok()) {
      c.Problem(r.status().message());
    } else {
      json layers = json::array();
      for (const SimLayer& l : r->layers)
        layers.push_back({{"layer", l.name},
                          {"op", l.op},
                          {"sim_cycles", l.sim_cycles},
                          {"estimate_cycles", l.estimate_cycles}});
      c.summary["sim"] = {{"sim_cycles", r->sim_cycles},
                          {"estimate_cycles", r->estimate_cycles},
                          {"layers", layers}};
      if (!c.Has("sim_cycles")) c.Key("sim_cycles", r->sim_cycles, fmt::format("{} total", file));
      if (!c.Has("estimate_cycles"))
        c.Key("estimate_cycles", r->estimate_cycles, fmt::format("{} total", file));
      if (c.summary["key"]["sim_bit_exact"].is_null() && r->bit_exact) {
        c.summary["key"]["sim_bit_exact"] = *r->bit_exact;
        c.summary["sources"]["sim_bit_exact"] = fmt::format("{} bit_exact", file);
      }
    }
  }
  if (c.Has("sim_cycles") && c.Has("estimate_cycles") && c.summary["key"]["estimate_cycles"] > 0)
    c.Key("sim_vs_estimate",
          c.summary["key"]["sim_cycles"].get<double>() /
              c.summary["key"]["estimate_cycles"].get<double>(),
          "sim_cycles / estimate_cycles");
}

// Finds a results file: absolute, else relative to the working directory,
// else to the source tree.
std::string ResolveResults(const std::string& path, const std::string& source_dir) {
  std::error_code ec;
  if (fs::path(path).is_absolute() || fs::exists(path, ec)) return path;
  return (fs::path(source_dir) / path).string();
}

void ReadAccuracyResults(Ctx& c) {
  std::vector<std::string> files;
  const json& cfg = c.summary["config"];
  const json* report_cfg = nullptr;
  if (cfg.is_object() && cfg.contains("report"))
    report_cfg = &cfg["report"];
  else if (cfg.is_object() && cfg.contains("config") && cfg["config"].is_object() &&
           cfg["config"].contains("report"))
    report_cfg = &cfg["config"]["report"];
  bool explicit_list = false;
  if (report_cfg && report_cfg->is_object() && report_cfg->contains("accuracy_results")) {
    const json& a = (*report_cfg)["accuracy_results"];
    explicit_list = true;
    if (a.is_string()) files.push_back(a);
    if (a.is_array())
      for (const json& f : a)
        if (f.is_string()) files.push_back(f);
  }
  if (!explicit_list) files.push_back("docs/results/accuracy.json");
  json points = json::array();
  for (const std::string& f : files) {
    const std::string path = ResolveResults(f, c.opt.source_dir);
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      // The default file appears only after `make experiments`; a configured one must exist.
      if (explicit_list) c.summary["accuracy_results_missing"].push_back(path);
      continue;
    }
    Result<json> j = ReadJson(path);
    if (!j.ok()) {
      c.Problem(j.status().message());
      continue;
    }
    const json list = j->is_array() ? *j : json::array({*j});
    for (const json& e : list) {
      auto acc = NumberAt(e, {"test", "accuracy"});
      auto sp = NumberAt(e, {"block_sparsity"});
      if (!sp) sp = NumberAt(e, {"target"});
      if (!acc || !sp) continue;
      std::string method = e.value("method", std::string("?"));
      if (e.value("distill", false)) method += " +distill";
      if (e.value("bn_recal", false)) method += " +bn-recal";
      if (e.value("global", false)) method += " global";
      if (e.contains("block") && e["block"].is_string() && e["block"] != "8x8")
        method += " " + e["block"].get<std::string>();
      points.push_back({{"series", method}, {"sparsity", *sp}, {"accuracy", *acc}, {"source", f}});
      if (auto d = NumberAt(e, {"dense_test", "accuracy"}))
        points.push_back({{"series", "dense"}, {"sparsity", 0.0}, {"accuracy", *d}, {"source", f}});
    }
  }
  c.summary["accuracy_points"] = points;
}

}  // namespace

Result<json> BuildSummary(const std::string& out_dir, const ReportOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec))
    return NotFound("{}: not a directory (the pipeline's output folder)", out_dir);
  Ctx c{out_dir, options, json::object()};
  c.opt.source_dir = SourceDir(c.opt.source_dir);
  c.summary["schema"] = "wbs.report/1";
  c.summary["out_dir"] = out_dir;
  c.summary["problems"] = json::array();
  c.summary["layers"] = json::array();
  c.summary["sweep"] = json::array();
  // Every key is present (null = not run), so consumers need no existence checks.
  for (const char* k :
       {"dense_accuracy", "sparse_accuracy", "dense_int8_accuracy", "sparse_int8_accuracy",
        "block_sparsity", "cpu_speedup_fp32", "cpu_speedup_int8", "aie_dense_ms", "aie_sparse_ms",
        "aie_speedup", "sim_bit_exact", "sim_cycles", "estimate_cycles", "sim_vs_estimate"})
    c.summary["key"][k] = nullptr;
  c.summary["sources"] = json::object();
  ReadStages(c);
  ReadAccuracy(c);
  ReadMasks(c);
  ReadBench(c);
  ReadAie(c);
  ReadSim(c);
  ReadAccuracyResults(c);
  return c.summary;
}

}  // namespace wbs::report

#include "pipeline/pipeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/progress.h"
#include "onnx/file_io.h"

namespace wbs::pipeline {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// pipeline/bench.cc
Result<Json> RunCpuBenchmark(const std::vector<std::pair<std::string, std::string>>& models,
                             const std::string& input_shape, int threads, int warmup, int repeats,
                             uint64_t seed, const std::function<void()>& step);

namespace {

std::string Join(const std::string& a, const std::string& b) { return (fs::path(a) / b).string(); }

Result<Json> ReadJson(const std::string& path) {
  WBS_ASSIGN_OR_RETURN(std::string text, onnxio::ReadFileBytes(path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ParseError("{}: not valid JSON", path);
  return j;
}

// Lines in a file that may not exist yet (metrics.jsonl grows per epoch).
int64_t CountLines(const std::string& path) {
  std::ifstream in(path);
  return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
}

// What a stage is given and gives back.
struct StageContext {
  StageContext(const Config& config, const RunOptions& options, std::string out_dir,
               const std::string& stage)
      : c(config),
        o(options),
        out(std::move(out_dir)),
        dir(Join(out, stage)),
        log(Join(dir, "log.txt")) {}
  const Config& c;
  const RunOptions& o;
  std::string out;  // OUT
  std::string dir;  // OUT/<stage>
  std::string log;  // OUT/<stage>/log.txt
  Progress* progress = nullptr;
  int64_t done = 0;  // progress units finished
  void SetDone(int64_t n) {
    done = n;
    progress->Update(n);
  }
  std::function<void()> tick;    // refreshes the display (overall ETA)
  Json result = Json::object();  // extra stage.json fields
  std::vector<std::string> commands;

  Status Run(std::vector<std::string> args, const std::string& stdout_path,
             const std::function<void()>& poll = nullptr) {
    std::string line = "wbs";
    for (const std::string& a : args) line += " " + a;
    commands.push_back(line);
    auto both = [&] {
      if (poll) poll();
      if (tick) tick();
    };
    return o.runner(args, stdout_path, log, both);
  }
};

struct Stage {
  std::string name;
  // Settings and input files that make the key; may decide how the stage runs.
  std::function<Result<std::pair<Json, std::vector<std::string>>>(StageContext&)> key;
  std::function<int64_t(const StageContext&)> units;  // progress total
  std::function<Status(StageContext&)> run;
  double estimate_s = 30;  // for the overall ETA before a first run
};

void AddCommonDataArgs(const Config& c, std::vector<std::string>& args) {
  args.insert(args.end(), {"--data", c.dataset, "--seed", std::to_string(c.seed)});
  if (!c.input_shape.empty()) args.insert(args.end(), {"--input-shape", c.input_shape});
}

// ---- dense ----------------------------------------------------------------
// Source: "onnx" (model.onnx given), "checkpoint" (dense.checkpoint exists and
// is not this stage's own earlier training) or "trained".
std::string DenseSource(StageContext& x) {
  if (!x.c.model_onnx.empty()) return "onnx";
  std::error_code ec;
  if (!x.c.dense.checkpoint.empty() && fs::exists(x.c.dense.checkpoint, ec)) {
    // Our own training wrote OUT/dense/ckpt: keep it "trained" so a rerun is cached.
    auto prev = ReadJson(Join(x.dir, "stage.json"));
    const bool own = prev.ok() && prev->value("source", "") == "trained" &&
                     fs::equivalent(x.c.dense.checkpoint, Join(x.dir, "ckpt/best.pt"), ec);
    if (!own) return "checkpoint";
  }
  return "trained";
}

Result<std::pair<Json, std::vector<std::string>>> DenseKey(StageContext& x) {
  const std::string source = DenseSource(x);
  x.result["source"] = source;
  Json s = {{"source", source}, {"model", x.c.ModelArg()}, {"input_shape", x.c.input_shape}};
  std::vector<std::string> files;
  if (source == "onnx") {
    files.push_back(x.c.model_onnx);
  } else {
    s["dataset"] = x.c.dataset;
    s["seed"] = x.c.seed;
    if (source == "checkpoint") {
      s["eval"] = "finetune --sparsity 0 --epochs 0 --no-bn-recal --no-distill";
      files.push_back(x.c.dense.checkpoint);
    } else {
      s["dense"] = x.c.resolved["dense"];
      s["dense"].erase("checkpoint");
      s["threads"] = x.c.threads;
    }
  }
  return std::make_pair(s, files);
}

Status RunDense(StageContext& x) {
  const std::string source = x.result["source"];
  const std::string model = Join(x.dir, "model.onnx");
  x.result["checkpoint"] = "";
  x.result["cached_checkpoint"] = source == "checkpoint";
  x.result["demo_schedule"] = false;
  if (source == "onnx") {
    std::error_code ec;
    if (!fs::exists(x.c.model_onnx, ec))
      return NotFound("model.onnx: {}: no such file", x.c.model_onnx);
    WBS_ASSIGN_OR_RETURN(std::string bytes, onnxio::ReadFileBytes(x.c.model_onnx));
    WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(model, bytes));
    x.commands.push_back("copy " + x.c.model_onnx);
    x.SetDone(1);
    return Status::Ok();
  }
  if (!x.o.with_train)
    return FailedPrecondition(
        "training needs LibTorch and this wbs was built without WBS_BUILD_TRAIN; set model.onnx "
        "to a trained ONNX model");
  if (source == "checkpoint") {
    // Evaluate the checkpoint and export it BN-folded: finetune with no
    // sparsity, no epochs, and no BN recalibration or teacher is exactly that.
    x.result["checkpoint"] = x.c.dense.checkpoint;
    const std::string eval = Join(x.dir, "eval.json");
    std::vector<std::string> args = {"finetune",
                                     x.c.model_name,
                                     "--checkpoint",
                                     x.c.dense.checkpoint,
                                     "--sparsity",
                                     "0",
                                     "--epochs",
                                     "0",
                                     "--threads",
                                     std::to_string(x.c.threads),
                                     "-o",
                                     model,
                                     "--summary",
                                     eval,
                                     "--no-bn-recal",
                                     "--no-distill"};
    AddCommonDataArgs(x.c, args);
    WBS_RETURN_IF_ERROR(x.Run(args, ""));
    WBS_ASSIGN_OR_RETURN(Json e, ReadJson(eval));
    x.result["epochs"] = nullptr;
    if (e.contains("test"))
      x.result["test"] = {{"accuracy", e["test"].value("accuracy", 0.0)},
                          {"loss", e["test"].value("loss", 0.0)}};
    x.SetDone(1);
    return Status::Ok();
  }
  if (x.c.dense.require_checkpoint)
    return NotFound("dense.checkpoint: {}: no such file (dense.require_checkpoint is true)",
                    x.c.dense.checkpoint);
  const std::string metrics = Join(x.dir, "metrics.jsonl");
  std::error_code ec;
  fs::remove(metrics, ec);
  std::vector<std::string> args = {"train",
                                   x.c.model_name,
                                   "--epochs",
                                   std::to_string(x.c.dense.epochs),
                                   "--batch",
                                   std::to_string(x.c.dense.batch),
                                   "--lr",
                                   fmt::format("{}", x.c.dense.lr),
                                   "--threads",
                                   std::to_string(x.c.threads),
                                   "--max-train-images",
                                   std::to_string(x.c.dense.max_train_images),
                                   "--checkpoint-dir",
                                   Join(x.dir, "ckpt"),
                                   "--metrics",
                                   metrics,
                                   "-o",
                                   model};
  AddCommonDataArgs(x.c, args);
  WBS_RETURN_IF_ERROR(x.Run(args, "", [&] { x.SetDone(CountLines(metrics)); }));
  x.result["checkpoint"] = Join(x.dir, "ckpt/last.pt");
  x.result["epochs"] = x.c.dense.epochs;
  x.result["demo_schedule"] = DenseIsDemoSchedule(x.c.dense);
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.value("final", false))
      x.result["test"] = {{"accuracy", j.value("test_acc", 0.0)},
                          {"loss", j.value("test_loss", 0.0)}};
  }
  return Status::Ok();
}

// ---- sparse ---------------------------------------------------------------
Result<Json> DoneStage(const StageContext& x, const std::string& stage) {
  const std::string path = Join(Join(x.out, stage), "stage.json");
  auto j = ReadJson(path);
  if (!j.ok() || j->value("status", "") != "done")
    return FailedPrecondition("needs the '{}' stage, which has not finished ({} is missing)", stage,
                              path);
  return *j;
}

bool UsesFinetune(const StageContext& x) { return x.c.sparse.finetune && x.o.with_train; }

Result<std::pair<Json, std::vector<std::string>>> SparseKey(StageContext& x) {
  WBS_ASSIGN_OR_RETURN(Json dense, DoneStage(x, "dense"));
  std::vector<std::string> files = {Join(x.out, "dense/model.onnx")};
  const std::string ckpt = dense.value("checkpoint", "");
  Json s = {{"sparse", x.c.resolved["sparse"]}, {"finetune", UsesFinetune(x)}};
  if (UsesFinetune(x)) {
    s["dataset"] = x.c.dataset;
    s["seed"] = x.c.seed;
    s["threads"] = x.c.threads;
    s["model"] = x.c.ModelArg();
    if (!ckpt.empty()) files.push_back(ckpt);
  }
  x.result["dense_checkpoint"] = ckpt;
  return std::make_pair(s, files);
}

Status RunSparse(StageContext& x) {
  const std::string model = Join(x.dir, "model.onnx");
  const std::string dense = Join(x.out, "dense/model.onnx");
  const SparseConfig& sp = x.c.sparse;
  x.result["block"] = sp.block;
  x.result["target"] = sp.sparsity;
  if (!UsesFinetune(x)) {
    const std::string report = Join(x.dir, "sparsify.json");
    std::vector<std::string> args = {
        "sparsify", dense,    "-o",         model,
        "--block",  sp.block, "--sparsity", fmt::format("{}", sp.sparsity),
        "--score",  sp.score, "--json"};
    if (!x.c.input_shape.empty()) args.insert(args.end(), {"--input-shape", x.c.input_shape});
    WBS_RETURN_IF_ERROR(x.Run(args, report));
    x.result["method"] = "sparsify";
    x.result["epochs"] = 0;
    x.result["demo_schedule"] = false;
    WBS_ASSIGN_OR_RETURN(Json r, ReadJson(report));
    for (const char* k : {"block_sparsity", "sparsity", "zero_block_fraction"})
      if (r.is_object() && r.contains(k)) x.result["block_sparsity"] = r[k];
    x.SetDone(1);
    return Status::Ok();
  }
  const std::string ckpt = x.result["dense_checkpoint"];
  const std::string summary = Join(x.dir, "finetune.json");
  const std::string metrics = Join(x.dir, "metrics.jsonl");
  std::error_code ec;
  fs::remove(metrics, ec);
  // A zoo model with its dense checkpoint keeps the BatchNorms (needed by
  // --bn-recal); an ONNX model starts from the BN-folded file.
  std::vector<std::string> args = {"finetune"};
  if (!ckpt.empty() && x.c.model_onnx.empty())
    args.insert(args.end(), {x.c.model_name, "--checkpoint", ckpt});
  else
    args.push_back(dense);
  args.insert(args.end(), {"--sparsity",
                           fmt::format("{}", sp.sparsity),
                           "--block",
                           sp.block,
                           "--method",
                           sp.method,
                           "--score",
                           sp.score,
                           "--epochs",
                           std::to_string(sp.epochs),
                           "--lr",
                           fmt::format("{}", sp.lr),
                           "--max-train-images",
                           std::to_string(sp.max_train_images),
                           "--threads",
                           std::to_string(x.c.threads),
                           "-o",
                           model,
                           "--summary",
                           summary,
                           "--metrics",
                           metrics});
  // Both ways explicitly: wbs finetune's defaults follow docs/ACCURACY.md's recipe.
  args.push_back(sp.bn_recal ? "--bn-recal" : "--no-bn-recal");
  args.push_back(sp.distill ? "--distill" : "--no-distill");
  AddCommonDataArgs(x.c, args);
  args.insert(args.end(), sp.extra_args.begin(), sp.extra_args.end());
  WBS_RETURN_IF_ERROR(x.Run(args, "", [&] { x.SetDone(CountLines(metrics)); }));
  WBS_ASSIGN_OR_RETURN(Json s, ReadJson(summary));
  x.result["method"] = sp.method;
  x.result["epochs"] = sp.epochs;
  x.result["demo_schedule"] = SparseIsDemoSchedule(sp);
  if (s.contains("block_sparsity")) x.result["block_sparsity"] = s["block_sparsity"];
  if (s.contains("test"))
    x.result["test"] = {{"accuracy", s["test"].value("accuracy", 0.0)},
                        {"loss", s["test"].value("loss", 0.0)}};
  return Status::Ok();
}

// ---- int8 -----------------------------------------------------------------
Result<std::pair<Json, std::vector<std::string>>> Int8Key(StageContext& x) {
  WBS_RETURN_IF_ERROR(DoneStage(x, "dense").status());
  WBS_RETURN_IF_ERROR(DoneStage(x, "sparse").status());
  Json s = {{"int8", x.c.resolved["int8"]},
            {"dataset", x.c.dataset},
            {"seed", x.c.seed},
            {"threads", x.c.threads},
            {"input_shape", x.c.input_shape}};
  return std::make_pair(s, std::vector<std::string>{Join(x.out, "dense/model.onnx"),
                                                    Join(x.out, "sparse/model.onnx")});
}

Status RunInt8(StageContext& x) {
  const Int8Config& q = x.c.int8;
  for (const char* variant : {"dense", "sparse"}) {
    const std::string json = Join(x.dir, std::string(variant) + ".json");
    std::vector<std::string> args = {
        "quantize",   Join(x.out, std::string(variant) + "/model.onnx"),
        "-o",         Join(x.dir, std::string(variant) + ".int8.onnx"),
        "--calib",    std::to_string(q.calib),
        "--observer", q.observer,
        "--act",      q.act,
        "--data",     x.c.dataset,
        "--eval",     std::to_string(q.eval),
        "--threads",  std::to_string(x.c.threads),
        "--json"};
    if (q.pot) args.push_back("--pot");
    if (!x.c.input_shape.empty()) args.insert(args.end(), {"--input-shape", x.c.input_shape});
    WBS_RETURN_IF_ERROR(x.Run(args, json));
    WBS_ASSIGN_OR_RETURN(Json r, ReadJson(json));
    Json summary = Json::object();
    if (r.contains("eval") && r["eval"].is_object()) {
      for (const char* k : {"fp32_top1", "int8_top1", "top1_agreement", "images"})
        if (r["eval"].contains(k)) summary[k] = r["eval"][k];
    }
    summary["eval_images"] = q.eval;
    x.result[variant] = summary;
    x.SetDone(x.done + 1);
  }
  return Status::Ok();
}

// ---- aie ------------------------------------------------------------------
// A target's folder name: the preset, or a config file's stem.
std::string TargetDir(const std::string& t) { return fs::path(t).stem().string(); }

bool RunsSweep(const StageContext& x) { return x.c.aie.sweep && x.c.model_onnx.empty(); }

Result<std::pair<Json, std::vector<std::string>>> AieKey(StageContext& x) {
  WBS_RETURN_IF_ERROR(DoneStage(x, "int8").status());
  Json s = {{"aie", x.c.resolved["aie"]}, {"sweep", RunsSweep(x)}};
  std::vector<std::string> files = {Join(x.out, "int8/dense.int8.onnx"),
                                    Join(x.out, "int8/sparse.int8.onnx")};
  if (RunsSweep(x)) {
    s["model"] = x.c.model_name;
    s["sparsity"] = x.c.sparse.sparsity;
    s["seed"] = x.c.seed;
  }
  for (const std::string& t : x.c.aie.targets)
    if (t.find('/') != std::string::npos || t.ends_with(".json")) files.push_back(t);
  return std::make_pair(s, files);
}

Status RunAie(StageContext& x) {
  Json targets = Json::array();
  for (const std::string& t : x.c.aie.targets) {
    for (const char* variant : {"dense", "sparse"}) {
      const std::string dir = Join(Join(x.dir, TargetDir(t)), variant);
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return IoError("{}: cannot create directory: {}", dir, ec.message());
      WBS_RETURN_IF_ERROR(
          x.Run({"compile", Join(x.out, std::string("int8/") + variant + ".int8.onnx"), "--target",
                 t, "-o", dir},
                Join(dir, "compile.txt")));
      targets.push_back({{"target", t}, {"variant", variant}, {"dir", dir}});
      x.SetDone(x.done + 1);
    }
  }
  x.result["targets"] = targets;
  x.result["sweep"] = RunsSweep(x);
  if (RunsSweep(x)) {
    WBS_RETURN_IF_ERROR(
        x.Run({"aie-sweep", "--models", x.c.model_name, "--arrays", x.c.aie.sweep_arrays,
               "--sparsity", fmt::format("0,{}", x.c.sparse.sparsity), "--seed",
               std::to_string(x.c.seed), "-o", Join(x.dir, "sweep.tsv")},
              Join(x.dir, "sweep.txt")));
    x.SetDone(x.done + 1);
  }
  return Status::Ok();
}

// ---- sim ------------------------------------------------------------------
std::string SimProgram(const StageContext& x) {
  return Join(Join(Join(x.out, "aie"), TargetDir(x.c.sim.target)), "sparse/program.bin");
}

Result<std::pair<Json, std::vector<std::string>>> SimKey(StageContext& x) {
  WBS_RETURN_IF_ERROR(DoneStage(x, "aie").status());
  return std::make_pair(
      Json{{"sim", x.c.resolved["sim"]}, {"seed", x.c.seed}},
      std::vector<std::string>{SimProgram(x), Join(x.out, "int8/sparse.int8.onnx")});
}

// The first integer after `label` in `text`, on the same line ("1,234" allowed).
std::optional<int64_t> NumberAfter(const std::string& text, const std::string& label) {
  const size_t at = text.find(label);
  if (at == std::string::npos) return std::nullopt;
  size_t i = at + label.size();
  while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '\n')
    ++i;
  if (i >= text.size() || text[i] == '\n') return std::nullopt;
  int64_t v = 0;
  for (; i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == ',');
       ++i)
    if (text[i] != ',') v = v * 10 + (text[i] - '0');
  return v;
}

Status RunSim(StageContext& x) {
  const std::string stdout_path = Join(x.dir, "simulate.txt");
  std::vector<std::string> args = {"simulate", SimProgram(x),
                                   "--model",  Join(x.out, "int8/sparse.int8.onnx"),
                                   "--report", Join(x.dir, "report.txt"),
                                   "--report", Join(x.dir, "report.json"),
                                   "--trace",  Join(x.dir, "trace.json"),
                                   "--seed",   std::to_string(x.c.seed)};
  if (x.c.sim.check) args.push_back("--check");
  WBS_RETURN_IF_ERROR(x.Run(args, stdout_path));
  WBS_ASSIGN_OR_RETURN(std::string text, onnxio::ReadFileBytes(stdout_path));
  x.result["target"] = x.c.sim.target;
  x.result["bit_exact"] = x.c.sim.check && text.find("bit-exact") != std::string::npos;
  // The simulator's summary line: "total: N cycles (...), estimate M cycles, ...".
  const size_t total = text.find("\ntotal: ");
  const std::string line = total == std::string::npos
                               ? ""
                               : text.substr(total + 1, text.find('\n', total + 1) - total - 1);
  const auto sim = NumberAfter(line, "total:");
  const auto est = NumberAfter(line, "estimate");
  x.result["sim_cycles"] = sim ? Json(*sim) : Json(nullptr);
  x.result["estimate_cycles"] = est ? Json(*est) : Json(nullptr);
  // report.json (when this simulator writes it) has the same numbers explicitly.
  if (auto j = ReadJson(Join(x.dir, "report.json")); j.ok() && j->is_object()) {
    if (j->contains("bit_exact"))
      x.result["bit_exact"] = (*j)["bit_exact"].is_boolean() && (*j)["bit_exact"].get<bool>();
    for (const char* k : {"sim_cycles", "estimate_cycles"})
      if (j->contains(k) && (*j)[k].is_number())
        x.result[k] = static_cast<int64_t>((*j)[k].get<double>());
  }
  x.SetDone(1);
  return Status::Ok();
}

// ---- bench ----------------------------------------------------------------
std::vector<std::pair<std::string, std::string>> BenchModels(const StageContext& x) {
  return {{"dense fp32", Join(x.out, "dense/model.onnx")},
          {"sparse fp32", Join(x.out, "sparse/model.onnx")},
          {"dense int8", Join(x.out, "int8/dense.int8.onnx")},
          {"sparse int8", Join(x.out, "int8/sparse.int8.onnx")}};
}

Result<std::pair<Json, std::vector<std::string>>> BenchKey(StageContext& x) {
  WBS_RETURN_IF_ERROR(DoneStage(x, "int8").status());
  std::vector<std::string> files;
  for (const auto& [name, path] : BenchModels(x)) files.push_back(path);
  return std::make_pair(Json{{"bench", x.c.resolved["bench"]}, {"seed", x.c.seed}}, files);
}

Status RunBench(StageContext& x) {
  WBS_ASSIGN_OR_RETURN(Json cpu,
                       RunCpuBenchmark(BenchModels(x), x.c.input_shape, x.c.bench.threads,
                                       x.c.bench.warmup, x.c.bench.repeats, x.c.seed, [&] {
                                         x.SetDone(x.done + 1);
                                         if (x.tick) x.tick();
                                       }));
  x.commands.push_back("in process: runtime::Session, fast backend");
  WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(Join(x.dir, "cpu.json"), cpu.dump(2) + "\n"));
  x.result["file"] = "cpu.json";
  return Status::Ok();
}

// ---- report ---------------------------------------------------------------
Status RunReport(StageContext& x) {
  WBS_RETURN_IF_ERROR(x.Run({"report", x.out}, Join(x.dir, "report.txt")));
  x.result["html"] = Join(x.out, "report.html");
  x.result["summary"] = Join(x.out, "summary.json");
  x.SetDone(1);
  return Status::Ok();
}

std::vector<Stage> MakeStages() {
  auto one = [](const StageContext&) -> int64_t { return 1; };
  return {
      {"dense", DenseKey,
       [](const StageContext& x) -> int64_t {
         return x.result.value("source", "") == "trained" ? x.c.dense.epochs + 1 : 1;
       },
       RunDense, 120},
      {"sparse", SparseKey,
       [](const StageContext& x) -> int64_t { return UsesFinetune(x) ? x.c.sparse.epochs + 1 : 1; },
       RunSparse, 240},
      {"int8", Int8Key, [](const StageContext&) -> int64_t { return 2; }, RunInt8, 60},
      {"aie", AieKey,
       [](const StageContext& x) -> int64_t {
         return 2 * static_cast<int64_t>(x.c.aie.targets.size()) + (RunsSweep(x) ? 1 : 0);
       },
       RunAie, 60},
      {"sim", SimKey, one, RunSim, 20},
      {"bench", BenchKey,
       [](const StageContext& x) -> int64_t {
         return 4 * static_cast<int64_t>(x.c.bench.warmup + x.c.bench.repeats);
       },
       RunBench, 30},
      {"report",
       [](StageContext&) -> Result<std::pair<Json, std::vector<std::string>>> {
         // Always runs: cheap, and it reads every stage.
         return std::make_pair(
             Json{{"always", std::chrono::system_clock::now().time_since_epoch().count()}},
             std::vector<std::string>{});
       },
       one, RunReport, 10},
  };
}

bool Enabled(const Config& c, const std::string& stage) {
  if (stage == "dense") return c.dense.enabled;
  if (stage == "sparse") return c.sparse.enabled;
  if (stage == "int8") return c.int8.enabled;
  if (stage == "aie") return c.aie.enabled;
  if (stage == "sim") return c.sim.enabled;
  if (stage == "bench") return c.bench.enabled;
  return c.report.enabled;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

const std::vector<std::string>& StageNames() {
  static const std::vector<std::string> names = {"dense", "sparse", "int8",  "aie",
                                                 "sim",   "bench",  "report"};
  return names;
}

Result<std::vector<bool>> ForcedStages(const RunOptions& o) {
  const std::vector<std::string>& names = StageNames();
  auto index = [&](const std::string& flag, const std::string& name) -> Result<size_t> {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return i;
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    return InvalidArgument("{} {}: unknown stage (stages: {})", flag, name, list);
  };
  if (!o.only.empty() && !o.from.empty()) return InvalidArgument("give --only or --from, not both");
  std::vector<bool> forced(names.size(), o.force);
  if (!o.only.empty()) {
    WBS_ASSIGN_OR_RETURN(size_t i, index("--only", o.only));
    forced[i] = true;
  }
  if (!o.from.empty()) {
    WBS_ASSIGN_OR_RETURN(size_t i, index("--from", o.from));
    for (size_t k = i; k < names.size(); ++k) forced[k] = true;
  }
  return forced;
}

Status RunPipeline(const Config& c, const RunOptions& o) {
  if (!o.runner) return Internal("RunPipeline: no command runner");
  WBS_ASSIGN_OR_RETURN(std::vector<bool> forced, ForcedStages(o));
  std::vector<Stage> stages = MakeStages();
  const int n = static_cast<int>(stages.size());
  const std::string out = c.output;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return IoError("output {}: cannot create directory: {}", out, ec.message());

  Json record = {{"config", c.resolved},
                 {"config_file", c.source},
                 {"demo_schedule", false},
                 {"stages", Json::array()}};
  for (const Stage& s : stages)
    record["stages"].push_back(
        {{"name", s.name}, {"status", "pending"}, {"seconds", 0}, {"message", ""}});
  auto save_record = [&] {
    return onnxio::WriteFileAtomically(Join(out, "pipeline.json"), record.dump(2) + "\n");
  };
  WBS_RETURN_IF_ERROR(save_record());

  // Overall ETA: earlier runs' stage times where known, else rough defaults.
  std::vector<double> estimate(n);
  for (int k = 0; k < n; ++k) {
    estimate[k] = stages[k].estimate_s;
    // Training dominates a cold run: scale by its images (~150 images/s on 2
    // cores for fmnist_resnet, docs/ACCURACY.md), plus the test-set evaluation.
    auto images = [](int epochs, int64_t max_images) {
      return static_cast<double>(epochs) * static_cast<double>(max_images > 0 ? max_images : 54000);
    };
    if (stages[k].name == "dense" && c.model_onnx.empty())
      estimate[k] = 30 + images(c.dense.epochs, c.dense.max_train_images) / 150;
    if (stages[k].name == "sparse" && c.sparse.finetune && o.with_train)
      estimate[k] = 40 + images(c.sparse.epochs, c.sparse.max_train_images) / 120;
    auto prev = ReadJson(Join(Join(out, stages[k].name), "stage.json"));
    if (prev.ok() && (*prev)["seconds"].is_number()) estimate[k] = (*prev)["seconds"].get<double>();
  }
  if (!o.with_train)
    fmt::print(
        stderr,
        "pipeline: this wbs has no LibTorch: dense needs model.onnx, sparse uses wbs sparsify\n");

  const double t_start = Now();
  for (int k = 0; k < n; ++k) {
    const Stage& stage = stages[k];
    Json& rec = record["stages"][k];
    const bool selected = o.only.empty() || o.only == stage.name;
    if (!selected) {
      rec["status"] = "skipped";
      rec["message"] = "not selected (--only " + o.only + ")";
      continue;
    }
    if (!Enabled(c, stage.name)) {
      rec["status"] = "skipped";
      rec["message"] = "disabled in the config";
      fmt::print(stderr, "[{}/{}] {}: skipped (disabled in the config)\n", k + 1, n, stage.name);
      continue;
    }
    StageContext x(c, o, out, stage.name);
    fs::create_directories(x.dir, ec);
    if (ec) return IoError("{}: cannot create directory: {}", x.dir, ec.message());
    const std::string stage_json = Join(x.dir, "stage.json");
    auto fail = [&](const Status& st) {
      rec["status"] = "failed";
      rec["message"] = st.message();
      (void)save_record();
      return st.WithContext(fmt::format("pipeline stage {}/{} {}", k + 1, n, stage.name));
    };
    auto key_inputs = stage.key(x);
    if (!key_inputs.ok()) return fail(key_inputs.status());
    auto key = StageKey(stage.name, key_inputs->first, key_inputs->second);
    if (!key.ok()) return fail(key.status());
    if (!forced[k] && IsCached(stage_json, *key)) {
      auto prev = ReadJson(stage_json);
      rec["status"] = "cached";
      rec["seconds"] = prev.ok() ? (*prev)["seconds"] : Json(0);
      if (prev.ok() && prev->value("demo_schedule", false)) record["demo_schedule"] = true;
      fmt::print(stderr, "[{}/{}] {}: cached ({})\n", k + 1, n, stage.name, stage_json);
      WBS_RETURN_IF_ERROR(save_record());
      continue;
    }
    // Not cached: remove the old stage.json first, so a failure cannot leave
    // stale results that look finished.
    fs::remove(stage_json, ec);
    { std::ofstream log(x.log, std::ios::trunc); }
    ProgressOptions po;
    po.stage = k + 1;
    po.stage_count = n;
    po.unit = "step";
    Progress progress(stage.name, stage.units(x), po);
    x.progress = &progress;
    const double t0 = Now();
    x.tick = [&] {
      double remaining = std::max(0.0, estimate[k] - (Now() - t0));
      for (int j = k + 1; j < n; ++j) remaining += estimate[j];
      progress.Update(x.done, {{"elapsed", FormatDuration(Now() - t_start)},
                               {"pipeline ETA", FormatDuration(remaining)}});
    };
    x.tick();
    rec["status"] = "running";
    WBS_RETURN_IF_ERROR(save_record());
    Status st = stage.run(x);
    const double secs = Now() - t0;
    progress.Finish();
    if (!st.ok()) {
      if (stage.name == "report" &&
          st.message().find("unknown command 'report'") != std::string::npos) {
        rec["status"] = "unavailable";
        rec["message"] = "report library not built (this wbs has no 'report' command)";
        fmt::print(stderr, "[{}/{}] report: unavailable: report library not built\n", k + 1, n);
        WBS_RETURN_IF_ERROR(save_record());
        continue;
      }
      return fail(st);
    }
    Json sj = {{"stage", stage.name},
               {"status", "done"},
               {"seconds", secs},
               {"key", *key},
               {"demo_schedule", false}};
    for (auto it = x.result.begin(); it != x.result.end(); ++it) sj[it.key()] = it.value();
    sj["commands"] = x.commands;
    if (sj.value("demo_schedule", false)) record["demo_schedule"] = true;
    WBS_RETURN_IF_ERROR(onnxio::WriteFileAtomically(stage_json, sj.dump(2) + "\n"));
    rec["status"] = "done";
    rec["seconds"] = secs;
    WBS_RETURN_IF_ERROR(save_record());
  }
  WBS_RETURN_IF_ERROR(save_record());
  fmt::print(stderr, "pipeline: done in {}; outputs in {}/ ({})\n", FormatDuration(Now() - t_start),
             out,
             fs::exists(Join(out, "report.html"), ec) ? Join(out, "report.html") : "pipeline.json");
  return Status::Ok();
}

}  // namespace wbs::pipeline

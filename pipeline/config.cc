#include "pipeline/config.h"

#include <fmt/format.h>

#include <filesystem>
#include <regex>

#include "core/strict_json.h"
#include "onnx/file_io.h"

namespace wbs::pipeline {

using Json = nlohmann::ordered_json;

namespace {

// Keep in step with docs/PIPELINE.md's config reference.
const char kDefaultConfig[] = R"json({
  // Embedded default of `wbs pipeline` (make demo): Fashion-MNIST, fmnist_resnet,
  // 50% 8x8 block sparsity. Short schedules keep a cold run under 15 minutes on
  // 2 cores; docs/ACCURACY.md has the full-budget results.
  "output": "out",
  "threads": 2,
  "seed": 1,
  "model": {"name": "fmnist_resnet", "onnx": "", "input_shape": ""},
  "dataset": "fashion-mnist",
  "dense": {
    "enabled": true,
    // The 10-epoch 93.79% model of docs/ACCURACY.md, when present.
    "checkpoint": "out/dense/ckpt/best.pt",
    "require_checkpoint": false,
    "epochs": 1,
    "max_train_images": 12000,
    "batch": 128,
    "lr": 0.1
  },
  "sparse": {
    "enabled": true,
    "sparsity": 0.5,
    "block": "8x8",
    // The default recipe of docs/ACCURACY.md (and wbs finetune): oneshot L2
    // masks, BN recalibration, distillation from the dense model.
    "method": "oneshot",
    "score": "l2",
    "finetune": true,
    "bn_recal": true,
    "distill": true,
    "epochs": 1,
    "max_train_images": 10000,
    "lr": 0.01,
    "extra_args": []
  },
  "int8": {"enabled": true, "observer": "minmax", "calib": 256, "pot": false, "act": "u8", "eval": 2000},
  "aie": {"enabled": true, "targets": ["paper-4x4"], "sweep": true, "sweep_arrays": "2x2..8x8"},
  "sim": {"enabled": true, "target": "paper-4x4", "check": true},
  "bench": {"enabled": true, "threads": 2, "repeats": 50, "warmup": 5},
  "report": {"enabled": true, "accuracy_results": ["docs/results/accuracy.json"]}
})json";

// Merges `user` into `base` (the default: its keys and value types are the
// schema). `path` is the key path so far ("sparse").
Status Merge(Json& base, const Json& user, const std::string& path) {
  for (auto it = user.begin(); it != user.end(); ++it) {
    const std::string key = JsonKeyPath(path, it.key());
    if (!base.contains(it.key())) {
      std::string known;
      for (auto k = base.begin(); k != base.end(); ++k)
        known += (known.empty() ? "" : ", ") + k.key();
      return InvalidArgument("{}: unknown key (keys here: {})", key, known);
    }
    Json& b = base[it.key()];
    const Json& v = it.value();
    if (b.is_object()) {
      if (!v.is_object())
        return InvalidArgument("{}: expected an object, got {}", key, JsonTypeName(v));
      WBS_RETURN_IF_ERROR(Merge(b, v, key));
      continue;
    }
    const bool ok = b.is_boolean()          ? v.is_boolean()
                    : b.is_number_integer() ? (v.is_number_integer() || v.is_number_unsigned())
                    : b.is_number()         ? v.is_number()
                    : b.is_string()         ? v.is_string()
                    : b.is_array()          ? v.is_array()
                                            : false;
    if (!ok)
      return InvalidArgument("{}: expected {}, got {} ({})", key, JsonTypeName(b), JsonTypeName(v),
                             v.dump());
    if (v.is_array())
      for (const Json& e : v)
        if (!e.is_string())
          return InvalidArgument("{}: expected an array of strings, got {}", key, v.dump());
    b = v;
  }
  return Status::Ok();
}

std::vector<std::string> Strings(const Json& a) {
  std::vector<std::string> v;
  for (const Json& e : a) v.push_back(e.get<std::string>());
  return v;
}

Status InRange(const std::string& key, double v, double lo, double hi, bool hi_open) {
  if (v < lo || (hi_open ? v >= hi : v > hi))
    return InvalidArgument("{}: {} is not in [{},{}{}", key, v, lo, hi, hi_open ? ")" : "]");
  return Status::Ok();
}

Status AtLeast(const std::string& key, int64_t v, int64_t lo) {
  if (v < lo) return InvalidArgument("{}: {} must be >= {}", key, v, lo);
  return Status::Ok();
}

Status OneOf(const std::string& key, const std::string& v,
             std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return Status::Ok();
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  return InvalidArgument("{}: '{}' is not one of {}", key, v, list);
}

Status Validate(const Config& c) {
  if (c.output.empty()) return InvalidArgument("output: must not be empty");
  WBS_RETURN_IF_ERROR(AtLeast("threads", c.threads, 1));
  if (c.model_name.empty() && c.model_onnx.empty())
    return InvalidArgument("model: give model.name (a zoo model) or model.onnx (a file)");
  if (!c.input_shape.empty() && !std::regex_match(c.input_shape, std::regex(R"([^=]+=\d+(,\d+)*)")))
    return InvalidArgument("model.input_shape: '{}' is not NAME=D0,D1,...", c.input_shape);
  if (c.dataset.empty()) return InvalidArgument("dataset: must not be empty");
  WBS_RETURN_IF_ERROR(AtLeast("dense.epochs", c.dense.epochs, 0));
  WBS_RETURN_IF_ERROR(AtLeast("dense.max_train_images", c.dense.max_train_images, 0));
  WBS_RETURN_IF_ERROR(AtLeast("dense.batch", c.dense.batch, 1));
  if (!(c.dense.lr > 0)) return InvalidArgument("dense.lr: {} must be > 0", c.dense.lr);
  WBS_RETURN_IF_ERROR(InRange("sparse.sparsity", c.sparse.sparsity, 0, 1, true));
  if (!std::regex_match(c.sparse.block, std::regex(R"([1-9]\d*x[1-9]\d*)")))
    return InvalidArgument("sparse.block: '{}' is not RxC (e.g. 8x8)", c.sparse.block);
  WBS_RETURN_IF_ERROR(
      OneOf("sparse.method", c.sparse.method, {"oneshot", "incremental", "learned", "fisher"}));
  WBS_RETURN_IF_ERROR(
      OneOf("sparse.score", c.sparse.score, {"l2", "l1", "mean-abs", "var-block", "var-tensor"}));
  WBS_RETURN_IF_ERROR(AtLeast("sparse.epochs", c.sparse.epochs, 0));
  WBS_RETURN_IF_ERROR(AtLeast("sparse.max_train_images", c.sparse.max_train_images, 0));
  if (!(c.sparse.lr > 0)) return InvalidArgument("sparse.lr: {} must be > 0", c.sparse.lr);
  WBS_RETURN_IF_ERROR(
      OneOf("int8.observer", c.int8.observer, {"minmax", "percentile", "mse", "entropy"}));
  WBS_RETURN_IF_ERROR(OneOf("int8.act", c.int8.act, {"u8", "s8"}));
  WBS_RETURN_IF_ERROR(AtLeast("int8.calib", c.int8.calib, 1));
  WBS_RETURN_IF_ERROR(AtLeast("int8.eval", c.int8.eval, 0));
  if (c.aie.enabled && c.aie.targets.empty())
    return InvalidArgument("aie.targets: must not be empty");
  for (size_t i = 0; i < c.aie.targets.size(); ++i)
    if (c.aie.targets[i].empty()) return InvalidArgument("aie.targets[{}]: must not be empty", i);
  if (!std::regex_match(c.aie.sweep_arrays, std::regex(R"(\d+x\d+\.\.\d+x\d+|\d+x\d+(,\d+x\d+)*)")))
    return InvalidArgument("aie.sweep_arrays: '{}' is not NxN..MxM or a comma list of NxN",
                           c.aie.sweep_arrays);
  if (c.sim.enabled && c.aie.enabled) {
    bool found = false;
    for (const std::string& t : c.aie.targets) found |= t == c.sim.target;
    if (!found)
      return InvalidArgument(
          "sim.target: '{}' is not in aie.targets (the program is compiled there)", c.sim.target);
  }
  WBS_RETURN_IF_ERROR(AtLeast("bench.threads", c.bench.threads, 1));
  WBS_RETURN_IF_ERROR(AtLeast("bench.repeats", c.bench.repeats, 1));
  WBS_RETURN_IF_ERROR(AtLeast("bench.warmup", c.bench.warmup, 0));
  return Status::Ok();
}

}  // namespace

std::string Config::ModelLabel() const {
  return model_onnx.empty() ? model_name : std::filesystem::path(model_onnx).stem().string();
}

const std::string& DefaultConfigText() {
  static const std::string text = kDefaultConfig;
  return text;
}

Result<Config> ParseConfig(const std::string& text, const std::string& source) {
  StrictJsonOptions options;
  options.allow_comments = true;
  WBS_ASSIGN_OR_RETURN(Json user, ParseStrictJson<Json>(text, source, options));
  if (!user.is_object()) return InvalidArgument("{}: the config must be a JSON object", source);
  Json base = Json::parse(kDefaultConfig, nullptr, true, true);
  WBS_RETURN_IF_ERROR(Merge(base, user, "").WithContext(source));

  Config c;
  c.source = source;
  c.resolved = base;
  const Json& j = base;
  c.output = j["output"].get<std::string>();
  c.threads = j["threads"].get<int>();
  c.seed = j["seed"].get<uint64_t>();
  c.model_name = j["model"]["name"].get<std::string>();
  c.model_onnx = j["model"]["onnx"].get<std::string>();
  c.input_shape = j["model"]["input_shape"].get<std::string>();
  c.dataset = j["dataset"].get<std::string>();
  const Json& d = j["dense"];
  c.dense.enabled = d["enabled"].get<bool>();
  c.dense.checkpoint = d["checkpoint"].get<std::string>();
  c.dense.require_checkpoint = d["require_checkpoint"].get<bool>();
  c.dense.epochs = d["epochs"].get<int>();
  c.dense.max_train_images = d["max_train_images"].get<int64_t>();
  c.dense.batch = d["batch"].get<int>();
  c.dense.lr = d["lr"].get<double>();
  const Json& s = j["sparse"];
  c.sparse.enabled = s["enabled"].get<bool>();
  c.sparse.sparsity = s["sparsity"].get<double>();
  c.sparse.block = s["block"].get<std::string>();
  c.sparse.method = s["method"].get<std::string>();
  c.sparse.score = s["score"].get<std::string>();
  c.sparse.finetune = s["finetune"].get<bool>();
  c.sparse.bn_recal = s["bn_recal"].get<bool>();
  c.sparse.distill = s["distill"].get<bool>();
  c.sparse.epochs = s["epochs"].get<int>();
  c.sparse.max_train_images = s["max_train_images"].get<int64_t>();
  c.sparse.lr = s["lr"].get<double>();
  c.sparse.extra_args = Strings(s["extra_args"]);
  const Json& q = j["int8"];
  c.int8.enabled = q["enabled"].get<bool>();
  c.int8.observer = q["observer"].get<std::string>();
  c.int8.calib = q["calib"].get<int>();
  c.int8.pot = q["pot"].get<bool>();
  c.int8.act = q["act"].get<std::string>();
  c.int8.eval = q["eval"].get<int>();
  const Json& a = j["aie"];
  c.aie.enabled = a["enabled"].get<bool>();
  c.aie.targets = Strings(a["targets"]);
  c.aie.sweep = a["sweep"].get<bool>();
  c.aie.sweep_arrays = a["sweep_arrays"].get<std::string>();
  const Json& m = j["sim"];
  c.sim.enabled = m["enabled"].get<bool>();
  c.sim.target = m["target"].get<std::string>();
  c.sim.check = m["check"].get<bool>();
  const Json& b = j["bench"];
  c.bench.enabled = b["enabled"].get<bool>();
  c.bench.threads = b["threads"].get<int>();
  c.bench.repeats = b["repeats"].get<int>();
  c.bench.warmup = b["warmup"].get<int>();
  const Json& r = j["report"];
  c.report.enabled = r["enabled"].get<bool>();
  c.report.accuracy_results = Strings(r["accuracy_results"]);
  WBS_RETURN_IF_ERROR(Validate(c).WithContext(source));
  return c;
}

Result<Config> LoadConfig(const std::string& path) {
  if (path.empty()) return ParseConfig(DefaultConfigText(), "(embedded default)");
  WBS_ASSIGN_OR_RETURN(std::string text, onnxio::ReadFileBytes(path));
  return ParseConfig(text, path);
}

bool DenseIsDemoSchedule(const DenseConfig& d) { return d.epochs < 10 || d.max_train_images > 0; }
bool SparseIsDemoSchedule(const SparseConfig& s) {
  return s.finetune && (s.epochs < 2 || s.max_train_images > 0);
}

}  // namespace wbs::pipeline

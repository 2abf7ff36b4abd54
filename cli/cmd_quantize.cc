// wbs quantize: post-training int8 quantization (quant/ptq.h, docs/int8.md).
// Calibrates on N images of the user's data (default: Fashion-MNIST train),
// prints the per-layer report (scales, clipping, error vs fp32), optionally
// measures top-1 on test images, and writes the QDQ ONNX model.
#include <fmt/format.h>

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/command.h"
#include "core/npy.h"
#include "data/dataset.h"
#include "onnx/model_io.h"
#include "quant/batches.h"
#include "quant/ptq.h"

namespace wbs::cli {

namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::vector<std::string> input_shapes;
  int64_t calib = 256;
  std::string observer = "minmax";
  double percentile = 99.99;
  std::string act = "u8";
  bool pot = false;
  std::string data = "fashion-mnist";
  std::string calib_split = "train";
  int64_t eval = 0;
  int64_t error_images = 64;
  int64_t batch = 32;
  int threads = 1;
  bool json = false;
  std::string dump_eval;
};

void PrintTable(const quant::PtqReport& r) {
  constexpr size_t kCols = 10;
  std::vector<std::array<std::string, kCols>> rows;
  rows.push_back(
      {"node", "op", "out", "scale", "zp", "observed", "range", "clip%", "w-scale", "SQNR dB"});
  for (const quant::LayerReport& l : r.layers) {
    if (l.op_type.rfind("f32 ", 0) == 0) {
      rows.push_back({l.node, l.op_type, "", "", "", "", "", "", "", ""});
      continue;
    }
    const bool f = l.dtype == DType::kF32;
    rows.push_back({l.node, l.op_type, DTypeName(l.dtype), f ? "-" : fmt::format("{:.4g}", l.scale),
                    f ? "-" : fmt::format("{}", l.zero_point),
                    f ? "-" : fmt::format("[{:.3g}, {:.3g}]", l.observed_min, l.observed_max),
                    f ? "-" : fmt::format("[{:.3g}, {:.3g}]", l.range_lo, l.range_hi),
                    f ? "-" : fmt::format("{:.3f}", 100.0 * l.clipped_fraction),
                    l.weight_scale_max > 0
                        ? fmt::format("{:.2g}..{:.2g}", l.weight_scale_min, l.weight_scale_max)
                        : "-",
                    l.sqnr_db != 0 ? fmt::format("{:.1f}", l.sqnr_db) : "-"});
  }
  std::array<size_t, kCols> w{};
  for (const auto& row : rows)
    for (size_t c = 0; c < kCols; ++c) w[c] = std::max(w[c], row[c].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < kCols; ++c) line += fmt::format("{:<{}}  ", row[c], w[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  }
}

// The evaluation images (one f32 [N, C, H, W] tensor), labels and both
// predictions as .npy, for cross-checks with other runtimes (tests/quant).
Status DumpEval(const std::string& dir, const std::vector<Tensor>& batches,
                const std::vector<int32_t>& labels, const std::vector<int32_t>& pf,
                const std::vector<int32_t>& pq) {
  WBS_RETURN_IF_ERROR(EnsureParentDirectory(dir + "/images.npy"));
  Shape s = batches.at(0).shape();
  s[0] = static_cast<int64_t>(labels.size());
  Tensor all(DType::kF32, s);
  size_t off = 0;
  for (const Tensor& b : batches) {
    std::copy(b.data<float>(), b.data<float>() + b.numel(), all.data<float>() + off);
    off += static_cast<size_t>(b.numel());
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  WBS_RETURN_IF_ERROR(WriteNpy(all, dir + "/images.npy"));
  WBS_RETURN_IF_ERROR(WriteNpy(Tensor::FromVector<int32_t>({n}, labels), dir + "/labels.npy"));
  WBS_RETURN_IF_ERROR(WriteNpy(Tensor::FromVector<int32_t>({n}, pf), dir + "/fp32_top1.npy"));
  return WriteNpy(Tensor::FromVector<int32_t>({n}, pq), dir + "/int8_top1.npy");
}

// "random" or "random:SEED": calibration on seeded standard-normal images of
// the model's input shape (no labels, so no --eval). For timing models that
// have no dataset here (the zoo's ImageNet models in benchmarks): the
// integer graph is the same shape of work whatever the scales are.
bool IsRandomData(const std::string& spec) { return spec.rfind("random", 0) == 0; }

// `stream` separates the calibration images (0) from the error images (1).
Result<std::vector<Tensor>> RandomBatches(const std::string& spec, const ir::Graph& g,
                                          int64_t images, int64_t batch, uint64_t stream) {
  uint64_t seed = 0;
  if (spec != "random") {
    const std::string arg =
        spec.substr(spec.find(':') == std::string::npos ? spec.size() : spec.find(':') + 1);
    if (spec.rfind("random:", 0) != 0 || arg.empty() ||
        arg.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("--data '{}': want random or random:SEED", spec);
    seed = std::stoull(arg);
  }
  if (g.inputs.size() != 1 || g.inputs[0]->dtype != DType::kF32 || g.inputs[0]->shape.empty())
    return InvalidArgument("--data random needs one f32 model input with a known shape");
  Shape s = g.inputs[0]->shape;
  for (size_t d = 1; d < s.size(); ++d)
    if (s[d] < 0)
      return InvalidArgument("--data random: input '{}' dim {} is unknown; give --input-shape",
                             g.inputs[0]->name, d);
  std::mt19937_64 rng(seed * 2 + stream);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<Tensor> out;
  for (int64_t done = 0; done < images; done += batch) {
    s[0] = std::min(batch, images - done);
    Tensor t(DType::kF32, s);
    float* d = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) d[i] = normal(rng);
    out.push_back(std::move(t));
  }
  return out;
}

Status RunQuantize(const QuantizeArgs& a) {
  quant::PtqOptions o;
  WBS_ASSIGN_OR_RETURN(o.observer, quant::ParseObserver(a.observer));
  o.percentile = a.percentile;
  if (a.act == "u8")
    o.activation_type = DType::kU8;
  else if (a.act == "s8")
    o.activation_type = DType::kI8;
  else
    return InvalidArgument("--act must be u8 or s8, got '{}'", a.act);
  o.power_of_two = a.pot;
  o.num_threads = a.threads;
  data::Split calib_split;
  if (a.calib_split == "train")
    calib_split = data::Split::kTrain;
  else if (a.calib_split == "test")
    calib_split = data::Split::kTest;
  else
    return InvalidArgument("--calib-split must be train or test, got '{}'", a.calib_split);

  WBS_ASSIGN_OR_RETURN(auto shapes, ParseInputShapes(a.input_shapes));
  WBS_ASSIGN_OR_RETURN(std::unique_ptr<ir::Graph> graph, LoadModel(a.input, shapes));
  Result<std::unique_ptr<ir::Graph>> prepared = quant::PrepareFloatGraph(*graph);
  if (!prepared.ok()) return prepared.status().WithContext(a.input);

  const bool random = IsRandomData(a.data);
  if (random && a.eval > 0) return InvalidArgument("--data random has no labels: drop --eval");
  data::Dataset cd;
  data::Normalization norm;
  std::vector<Tensor> calib;
  if (random) {
    WBS_ASSIGN_OR_RETURN(calib, RandomBatches(a.data, **prepared, a.calib, a.batch, 0));
  } else {
    WBS_ASSIGN_OR_RETURN(cd, data::LoadDataset(a.data, calib_split));
    norm = quant::NormalizationFor(a.data, cd);
    calib = quant::MakeBatches(cd, quant::SampleIndices(cd, a.calib, 0), a.batch, norm, nullptr);
  }
  Result<quant::Calibration> cal = quant::Calibrate(**prepared, calib, o);
  if (!cal.ok()) return cal.status().WithContext(a.input);
  quant::PtqReport report;
  Result<std::unique_ptr<ir::Graph>> q = quant::BuildQuantizedGraph(**prepared, *cal, o, &report);
  if (!q.ok()) return q.status().WithContext(a.input);
  if (random && a.error_images > 0) {
    WBS_ASSIGN_OR_RETURN(std::vector<Tensor> err_batches,
                         RandomBatches(a.data, **prepared, a.error_images, a.batch, 1));
    WBS_RETURN_IF_ERROR(
        quant::MeasureLayerErrors(**prepared, **q, err_batches, a.threads, &report));
  } else if (a.error_images > 0) {
    std::vector<Tensor> err_batches =
        quant::MakeBatches(cd, quant::SampleIndices(cd, a.error_images, 1), a.batch, norm, nullptr);
    WBS_RETURN_IF_ERROR(
        quant::MeasureLayerErrors(**prepared, **q, err_batches, a.threads, &report));
  }
  WBS_RETURN_IF_ERROR(EnsureParentDirectory(a.output));
  WBS_RETURN_IF_ERROR(onnxio::ExportModel(**q, a.output));

  nlohmann::ordered_json eval;
  if (a.eval > 0) {
    WBS_ASSIGN_OR_RETURN(data::Dataset td, data::LoadDataset(a.data, data::Split::kTest));
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < std::min(a.eval, td.size()); ++i) idx.push_back(i);
    std::vector<int32_t> labels;
    const std::vector<Tensor> tb = quant::MakeBatches(td, idx, a.batch, norm, &labels);
    WBS_ASSIGN_OR_RETURN(std::vector<int32_t> pf, quant::PredictTop1(**prepared, tb, a.threads));
    WBS_ASSIGN_OR_RETURN(std::vector<int32_t> pq, quant::PredictTop1(**q, tb, a.threads));
    if (!a.dump_eval.empty()) WBS_RETURN_IF_ERROR(DumpEval(a.dump_eval, tb, labels, pf, pq));
    int64_t cf = 0, cq = 0, agree = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
      cf += pf[i] == labels[i];
      cq += pq[i] == labels[i];
      agree += pf[i] == pq[i];
    }
    const double n = static_cast<double>(labels.size());
    eval = {{"images", labels.size()},
            {"fp32_top1", cf / n},
            {"int8_top1", cq / n},
            {"top1_agreement", agree / n}};
  }
  if (a.json) {
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const quant::LayerReport& l : report.layers) {
      layers.push_back({{"node", l.node},
                        {"op", l.op_type},
                        {"value", l.value},
                        {"dtype", DTypeName(l.dtype)},
                        {"scale", l.scale},
                        {"zero_point", l.zero_point},
                        {"observed", {l.observed_min, l.observed_max}},
                        {"range", {l.range_lo, l.range_hi}},
                        {"clipped_fraction", l.clipped_fraction},
                        {"weight_scale", {l.weight_scale_min, l.weight_scale_max}},
                        {"zero_blocks", l.zero_blocks},
                        {"bias_clamped", l.bias_clamped},
                        {"sqnr_db", l.sqnr_db},
                        {"rel_l2", l.rel_l2}});
    }
    nlohmann::ordered_json j = {{"input", a.input},
                                {"output", a.output},
                                {"observer", a.observer},
                                {"activations", a.act},
                                {"power_of_two", a.pot},
                                {"calibration_images", report.calibration_images},
                                {"fallback_nodes", report.fallback_nodes},
                                {"layers", layers}};
    if (a.eval > 0) j["eval"] = eval;
    fmt::print("{}\n", j.dump(2));
    return Status::Ok();
  }
  fmt::print("{}: int8 ({} activations{}, observer {}), calibrated on {} {} images of {}\n\n",
             a.input, a.act, a.pot ? ", power-of-two scales" : "", a.observer,
             report.calibration_images, a.calib_split, a.data);
  PrintTable(report);
  if (report.fallback_nodes > 0)
    fmt::print("\n{} node(s) run in f32 between DequantizeLinear and QuantizeLinear\n",
               report.fallback_nodes);
  if (a.eval > 0) {
    fmt::print("\ntest images {}: fp32 top-1 {:.2f}%, int8 top-1 {:.2f}%, agreement {:.2f}%\n",
               eval["images"].get<int64_t>(), 100 * eval["fp32_top1"].get<double>(),
               100 * eval["int8_top1"].get<double>(), 100 * eval["top1_agreement"].get<double>());
  }
  fmt::print("wrote {}\n", a.output);
  return Status::Ok();
}

}  // namespace

Command AddQuantizeCommand(CLI::App& parent) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* app = parent.add_subcommand(
      "quantize", "Post-training int8 quantization; writes a QDQ ONNX model (docs/int8.md)");
  app->add_option("input", args->input, "Input fp32 ONNX model")->required()->type_name("IN.onnx");
  app->add_option("-o,--output", args->output, "Output QDQ ONNX model (written atomically)")
      ->required()
      ->type_name("OUT.onnx");
  AddInputShapeOption(*app, args->input_shapes);
  app->add_option("--calib", args->calib, "Calibration images")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  app->add_option("--observer", args->observer, "Range observer: minmax, percentile, mse, entropy")
      ->capture_default_str();
  app->add_option("--percentile", args->percentile, "With --observer percentile: the percentile")
      ->check(CLI::Range(50.0, 100.0))
      ->capture_default_str();
  app->add_option("--act", args->act, "Activation type: u8 or s8")->capture_default_str();
  app->add_flag("--pot", args->pot,
                "Power-of-two scales and zero points 0 (\"fix position\"): requantization is a "
                "rounding shift");
  app->add_option("--data", args->data,
                  "Calibration data: fashion-mnist, fashion-mnist:DIR, idx:IMAGES,LABELS, "
                  "folder:DIR, random[:SEED] (standard-normal images, for timing only)")
      ->capture_default_str();
  app->add_option("--calib-split", args->calib_split, "Split to calibrate on: train or test")
      ->capture_default_str();
  app->add_option("--eval", args->eval,
                  "Also measure fp32 and int8 top-1 (and their agreement) on the first N test "
                  "images")
      ->capture_default_str();
  app->add_option("--error-images", args->error_images,
                  "Images for the per-layer error vs fp32 (0: skip)")
      ->capture_default_str();
  app->add_option("--batch", args->batch, "Batch size for calibration and evaluation")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  app->add_option("--threads", args->threads, "Threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app->add_flag("--json", args->json, "Print the report as JSON");
  app->add_option("--dump-eval", args->dump_eval,
                  "With --eval: write DIR/images.npy, labels.npy, fp32_top1.npy, int8_top1.npy")
      ->type_name("DIR")
      ->needs("--eval");
  return {app, [args] { return RunQuantize(*args); }};
}

}  // namespace wbs::cli

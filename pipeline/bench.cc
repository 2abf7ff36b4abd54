// The pipeline's CPU benchmark (OUT/bench/cpu.json): dense vs block-sparse,
// fp32 and int8, batch 1 on the fast backend. The models are timed
// round-robin, one run of each in turn, so a load change on this shared
// machine slows all four alike and the ratios stay meaningful.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "onnx/model_io.h"
#include "runtime/session.h"

namespace wbs::pipeline {

using Json = nlohmann::ordered_json;

namespace {

Result<std::map<std::string, Shape>> ParseShape(const std::string& spec) {
  std::map<std::string, Shape> shapes;
  if (spec.empty()) return shapes;
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos)
    return InvalidArgument("model.input_shape: '{}' is not NAME=DIMS", spec);
  Shape s;
  size_t start = eq + 1;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    s.push_back(std::stoll(spec.substr(start, comma - start)));
    start = comma + 1;
  }
  shapes[spec.substr(0, eq)] = s;
  return shapes;
}

struct Model {
  std::string name, path;
  std::unique_ptr<ir::Graph> graph;
  std::unique_ptr<runtime::Session> session;
  std::vector<Tensor> inputs;
  std::vector<double> ms;
};

}  // namespace

Result<Json> RunCpuBenchmark(const std::vector<std::pair<std::string, std::string>>& models,
                             const std::string& input_shape, int threads, int warmup, int repeats,
                             uint64_t seed, const std::function<void()>& step) {
  WBS_ASSIGN_OR_RETURN(auto shapes, ParseShape(input_shape));
  std::vector<Model> ms;
  for (const auto& [name, path] : models) {
    Model m;
    m.name = name;
    m.path = path;
    onnxio::ImportOptions io;
    io.input_shapes = shapes;
    WBS_ASSIGN_OR_RETURN(m.graph, onnxio::ImportModel(path, io));
    runtime::SessionOptions so;
    so.num_threads = threads;
    so.input_shapes = shapes;
    WBS_ASSIGN_OR_RETURN(m.session, runtime::Session::Create(*m.graph, so));
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> dist(0.0, 1.0);
    for (const ir::Value* v : m.graph->inputs) {
      if (v->dtype != DType::kF32 || !v->shape_is_static())
        return InvalidArgument(
            "{}: input '{}' must be f32 with a static shape (set model.input_shape)", path,
            v->name);
      Tensor t(v->dtype, v->shape);
      float* d = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(dist(rng));
      m.inputs.push_back(std::move(t));
    }
    ms.push_back(std::move(m));
  }
  for (int r = 0; r < warmup + repeats; ++r) {
    for (Model& m : ms) {
      const auto t0 = std::chrono::steady_clock::now();
      WBS_RETURN_IF_ERROR(m.session->Run(m.inputs).status().WithContext(m.path));
      const double t =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r >= warmup) m.ms.push_back(t);
      if (step) step();
    }
  }
  Json runs = Json::array();
  for (Model& m : ms) {
    std::vector<double> s = m.ms;
    std::sort(s.begin(), s.end());
    const size_t h = s.size() / 2;
    const double median = s.size() % 2 ? s[h] : 0.5 * (s[h - 1] + s[h]);
    runs.push_back({{"name", m.name},
                    {"model", m.path},
                    {"median_ms", median},
                    {"min_ms", s.front()},
                    {"max_ms", s.back()}});
  }
  return Json{{"threads", threads}, {"repeats", repeats}, {"warmup", warmup},
              {"batch", 1},         {"backend", "fast"},  {"runs", runs}};
}

}  // namespace wbs::pipeline

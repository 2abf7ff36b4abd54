#include "zoo/builder.h"

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>
#include <numbers>

#include "ir/op_schema.h"

namespace wbs::zoo {

namespace {
constexpr double kBiasStddev = 0.01;
constexpr double kBnPerturbation = 0.1;  // stddev of gamma-1, beta, running mean
constexpr double kBnLogVarStddev = 0.2;  // running var = exp(N(0, 0.2^2))
}  // namespace

NetBuilder::NetBuilder(ir::Graph& graph, uint64_t seed) : graph_(graph), rng_(seed) {}

namespace {

// 53 random bits -> u in (0, 1]; Box-Muller gives two independent normals,
// r cos(theta) first and r sin(theta) second.
struct NormalPair {
  double first, second;
};
NormalPair BoxMuller(uint64_t a, uint64_t b) {
  constexpr double kScale = 1.0 / 9007199254740992.0;  // 2^-53
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * kScale;
  const double u2 = static_cast<double>(b >> 11) * kScale;
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  return {r * std::cos(theta), r * std::sin(theta)};
}

// Above this many pairs a tensor's log/sincos run on up to kMaxThreads
// threads (the draws stay sequential, so the values do not depend on the
// thread count).
constexpr int64_t kParallelPairs = 1 << 14;
constexpr int64_t kMaxThreads = 8;

}  // namespace

double NetBuilder::Normal() {
  if (have_spare_) {
    have_spare_ = false;
    return spare_;
  }
  const uint64_t a = rng_();
  const uint64_t b = rng_();
  const NormalPair p = BoxMuller(a, b);
  spare_ = p.second;
  have_spare_ = true;
  return p.first;
}

void NetBuilder::FillNormal(float* d, int64_t n, double stddev, double mean) {
  int64_t i = 0;
  if (n > 0 && have_spare_) {
    d[i++] = static_cast<float>(mean + stddev * spare_);
    have_spare_ = false;
  }
  // Exactly the draws of n - i calls of Normal(): whole pairs, and for an odd
  // count one more pair whose second value becomes the spare.
  const int64_t pairs = (n - i) / 2;
  std::vector<uint64_t> raw(static_cast<size_t>(2 * pairs));
  for (uint64_t& x : raw) x = rng_();
  float* out = d + i;
  auto fill = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const NormalPair v = BoxMuller(raw[static_cast<size_t>(2 * p)], raw[static_cast<size_t>(2 * p + 1)]);
      out[2 * p] = static_cast<float>(mean + stddev * v.first);
      out[2 * p + 1] = static_cast<float>(mean + stddev * v.second);
    }
  };
  const int64_t threads =
      pairs > kParallelPairs ? std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, kMaxThreads) : 1;
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(fill, pairs * t / threads, pairs * (t + 1) / threads);
  fill(0, pairs / threads);
  for (std::thread& w : workers) w.join();
  if (i + 2 * pairs < n) d[n - 1] = static_cast<float>(mean + stddev * Normal());
}

ir::Value* NetBuilder::RandomConstant(const std::string& name, Shape shape, double stddev,
                                      double mean) {
  Tensor t(DType::kF32, std::move(shape));
  FillNormal(t.data<float>(), t.numel(), stddev, mean);
  return graph_.AddConstant(name, std::move(t));
}

ir::Value* NetBuilder::Input(int64_t batch, int64_t channels, int64_t size) {
  return graph_.AddInput("input", DType::kF32, {batch, channels, size, size});
}

int64_t NetBuilder::Dim(const ir::Value* x, int i) const {
  if (!status_.ok() || !x->has_shape || i >= static_cast<int>(x->shape.size())) return -1;
  return x->shape[i];
}

ir::Value* NetBuilder::Finish(ir::Node* node) {
  std::vector<ir::ValueInfo> ins;
  for (ir::Value* v : node->inputs) ins.push_back(ir::ValueInfo::FromValue(v));
  std::vector<ir::ValueInfo> outs;
  Status st = ir::InferNode(*node, ins, outs);
  if (!st.ok()) {
    status_ = st;
    return node->outputs[0];
  }
  for (size_t i = 0; i < node->outputs.size(); ++i) {
    node->outputs[i]->dtype = outs[i].dtype;
    node->outputs[i]->shape = outs[i].shape;
    node->outputs[i]->has_shape = outs[i].has_shape;
  }
  return node->outputs[0];
}

ir::Value* NetBuilder::Conv(ir::Value* x, const std::string& name, const ConvSpec& spec) {
  if (!status_.ok()) return x;
  const int64_t cin = Dim(x, 1);
  if (spec.groups < 1 || cin % spec.groups != 0 || spec.out_channels % spec.groups != 0) {
    status_ =
        InvalidArgument("Conv '{}': {} input and {} output channels do not split into {} groups",
                        name, cin, spec.out_channels, spec.groups);
    return x;
  }
  const int64_t cin_per_group = cin / spec.groups;
  const int64_t fan_in = cin_per_group * spec.kernel[0] * spec.kernel[1];
  std::vector<ir::Value*> inputs = {
      x, RandomConstant(name + ".weight",
                        {spec.out_channels, cin_per_group, spec.kernel[0], spec.kernel[1]},
                        std::sqrt(2.0 / static_cast<double>(fan_in)))};
  if (spec.bias) inputs.push_back(RandomConstant(name + ".bias", {spec.out_channels}, kBiasStddev));
  ir::Node* n = graph_.AddNode("Conv", inputs, {graph_.AddValue(name)}, name);
  n->attrs["kernel_shape"] = std::vector<int64_t>{spec.kernel[0], spec.kernel[1]};
  n->attrs["strides"] = std::vector<int64_t>{spec.stride[0], spec.stride[1]};
  n->attrs["pads"] = std::vector<int64_t>{spec.pad[0], spec.pad[1], spec.pad[0], spec.pad[1]};
  n->attrs["dilations"] = std::vector<int64_t>{1, 1};
  n->attrs["group"] = spec.groups;
  return Finish(n);
}

ir::Value* NetBuilder::BatchNorm(ir::Value* x, const std::string& name, float epsilon) {
  if (!status_.ok()) return x;
  const int64_t c = Dim(x, 1);
  ir::Value* gamma = RandomConstant(name + ".weight", {c}, kBnPerturbation, 1.0);
  ir::Value* beta = RandomConstant(name + ".bias", {c}, kBnPerturbation);
  ir::Value* mean = RandomConstant(name + ".running_mean", {c}, kBnPerturbation);
  ir::Value* var = RandomConstant(name + ".running_var", {c}, kBnLogVarStddev);
  float* v = var->constant.data<float>();
  for (int64_t i = 0; i < c; ++i) v[i] = std::exp(v[i]);
  ir::Node* n = graph_.AddNode("BatchNormalization", {x, gamma, beta, mean, var},
                               {graph_.AddValue(name)}, name);
  n->attrs["epsilon"] = epsilon;
  return Finish(n);
}

ir::Value* NetBuilder::Relu(ir::Value* x, const std::string& name) {
  if (!status_.ok()) return x;
  return Finish(graph_.AddNode("Relu", {x}, {graph_.AddValue(name)}, name));
}

ir::Value* NetBuilder::Relu6(ir::Value* x, const std::string& name) {
  if (!status_.ok()) return x;
  if (!relu6_min_) {
    relu6_min_ = graph_.AddConstant("relu6.min", Tensor::Scalar<float>(0.f));
    relu6_max_ = graph_.AddConstant("relu6.max", Tensor::Scalar<float>(6.f));
  }
  return Finish(graph_.AddNode("Clip", {x, relu6_min_, relu6_max_}, {graph_.AddValue(name)}, name));
}

ir::Value* NetBuilder::MaxPool(ir::Value* x, const std::string& name, int64_t kernel,
                               int64_t stride, int64_t pad) {
  if (!status_.ok()) return x;
  ir::Node* n = graph_.AddNode("MaxPool", {x}, {graph_.AddValue(name)}, name);
  n->attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n->attrs["strides"] = std::vector<int64_t>{stride, stride};
  n->attrs["pads"] = std::vector<int64_t>{pad, pad, pad, pad};
  return Finish(n);
}

ir::Value* NetBuilder::AveragePool(ir::Value* x, const std::string& name, int64_t kernel,
                                   int64_t stride, int64_t pad, bool count_include_pad) {
  if (!status_.ok()) return x;
  ir::Node* n = graph_.AddNode("AveragePool", {x}, {graph_.AddValue(name)}, name);
  n->attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n->attrs["strides"] = std::vector<int64_t>{stride, stride};
  n->attrs["pads"] = std::vector<int64_t>{pad, pad, pad, pad};
  n->attrs["count_include_pad"] = int64_t{count_include_pad ? 1 : 0};
  return Finish(n);
}

ir::Value* NetBuilder::GlobalAveragePool(ir::Value* x, const std::string& name) {
  if (!status_.ok()) return x;
  return Finish(graph_.AddNode("GlobalAveragePool", {x}, {graph_.AddValue(name)}, name));
}

ir::Value* NetBuilder::Flatten(ir::Value* x, const std::string& name) {
  if (!status_.ok()) return x;
  ir::Node* n = graph_.AddNode("Flatten", {x}, {graph_.AddValue(name)}, name);
  n->attrs["axis"] = int64_t{1};
  return Finish(n);
}

ir::Value* NetBuilder::Add(ir::Value* a, ir::Value* b, const std::string& name) {
  if (!status_.ok()) return a;
  return Finish(graph_.AddNode("Add", {a, b}, {graph_.AddValue(name)}, name));
}

ir::Value* NetBuilder::Concat(const std::vector<ir::Value*>& xs, const std::string& name) {
  if (!status_.ok()) return xs.front();
  ir::Node* n = graph_.AddNode("Concat", xs, {graph_.AddValue(name)}, name);
  n->attrs["axis"] = int64_t{1};
  return Finish(n);
}

ir::Value* NetBuilder::Linear(ir::Value* x, const std::string& name, int64_t out_features,
                              ir::Value* output) {
  if (!status_.ok()) return x;
  const int64_t in_features = Dim(x, 1);
  ir::Value* w = RandomConstant(name + ".weight", {out_features, in_features},
                                std::sqrt(2.0 / static_cast<double>(in_features)));
  ir::Value* b = RandomConstant(name + ".bias", {out_features}, kBiasStddev);
  ir::Node* n = graph_.AddNode("Gemm", {x, w, b}, {output ? output : graph_.AddValue(name)}, name);
  n->attrs["transB"] = int64_t{1};
  return Finish(n);
}

ir::Value* NetBuilder::BasicConv2d(ir::Value* x, const std::string& prefix, const ConvSpec& spec,
                                   float bn_epsilon) {
  x = Conv(x, prefix + ".conv", spec);
  x = BatchNorm(x, prefix + ".bn", bn_epsilon);
  return Relu(x, prefix + ".relu");
}

}  // namespace wbs::zoo

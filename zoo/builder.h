// NetBuilder: the layer vocabulary the zoo's model families are written in
// (zoo-internal; not part of the public zoo API).
//
// Each call appends one ONNX node named after the torchvision module path it
// mirrors (e.g. "layer1.0.conv1"), creates its weights as constants named
// like torchvision's state_dict entries ("layer1.0.conv1.weight"), and runs
// the op's shape rule (ir::InferNode) at once, so a layer can read its input
// channels from the inferred shape and a bad configuration (an image too small
// for the network) is reported at the first node that cannot be built. After
// the first error every call is a no-op returning the input; status() holds
// the error.
//
// Weights are drawn from one std::mt19937_64 stream in construction order
// with a portable Box-Muller transform (std::normal_distribution is not
// specified bit for bit), so a (model, seed) pair gives the same weights on
// every platform:
//   conv / linear weights  N(0, 2 / fan_in)  (Kaiming-normal, fan_in mode, so
//                          activations keep their scale through plain stacks
//                          such as VGG that have no BatchNorm)
//   biases                 N(0, 0.01^2)
//   BatchNorm              gamma = 1 + 0.1 n, beta = 0.1 n, mean = 0.1 n,
//                          var = exp(0.2 n) with n ~ N(0, 1): near the identity
//                          but never exactly, so BN folding is really exercised.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::zoo {

struct ConvSpec {
  int64_t out_channels = 0;
  std::array<int64_t, 2> kernel = {1, 1};
  std::array<int64_t, 2> stride = {1, 1};
  std::array<int64_t, 2> pad = {0, 0};  // symmetric (top/bottom, left/right), as in PyTorch
  int64_t groups = 1;
  bool bias = false;
};

// Square-kernel shorthand: ConvK(cout, 3, /*stride=*/2, /*pad=*/1).
inline ConvSpec ConvK(int64_t cout, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  return ConvSpec{cout, {k, k}, {stride, stride}, {pad, pad}, 1, false};
}

class NetBuilder {
 public:
  NetBuilder(ir::Graph& graph, uint64_t seed);

  const Status& status() const { return status_; }
  // Records an error found by a family (keeps the first one).
  void Fail(Status st) {
    if (status_.ok()) status_ = std::move(st);
  }
  ir::Graph& graph() { return graph_; }

  // The image input "input": f32[batch, channels, size, size].
  ir::Value* Input(int64_t batch, int64_t channels, int64_t size);

  // Dim i of x's inferred shape (-1 after an error).
  int64_t Dim(const ir::Value* x, int i) const;

  ir::Value* Conv(ir::Value* x, const std::string& name, const ConvSpec& spec);
  ir::Value* BatchNorm(ir::Value* x, const std::string& name, float epsilon = 1e-5f);
  ir::Value* Relu(ir::Value* x, const std::string& name);
  // ReLU6 as ONNX Clip(x, 0, 6) with constant min/max inputs (shared).
  ir::Value* Relu6(ir::Value* x, const std::string& name);
  ir::Value* MaxPool(ir::Value* x, const std::string& name, int64_t kernel, int64_t stride,
                     int64_t pad = 0);
  // PyTorch's avg_pool2d default count_include_pad=True.
  ir::Value* AveragePool(ir::Value* x, const std::string& name, int64_t kernel, int64_t stride,
                         int64_t pad = 0, bool count_include_pad = true);
  ir::Value* GlobalAveragePool(ir::Value* x, const std::string& name);
  ir::Value* Flatten(ir::Value* x, const std::string& name);
  ir::Value* Add(ir::Value* a, ir::Value* b, const std::string& name);
  ir::Value* Concat(const std::vector<ir::Value*>& xs, const std::string& name);
  // nn.Linear as Gemm(x, W[out, in], b) with transB = 1. `output` (may be
  // nullptr) is the value to produce, e.g. the graph's "logits".
  ir::Value* Linear(ir::Value* x, const std::string& name, int64_t out_features,
                    ir::Value* output = nullptr);

  // torchvision idioms.
  // Conv (bias=false) + BatchNorm + ReLU, named "<prefix>.conv", ".bn", ".relu"
  // as in Inception's BasicConv2d (prefix "Mixed_5b.branch1x1").
  ir::Value* BasicConv2d(ir::Value* x, const std::string& prefix, const ConvSpec& spec,
                         float bn_epsilon);

  // Fills a new constant with N(0, stddev^2) values.
  ir::Value* RandomConstant(const std::string& name, Shape shape, double stddev, double mean = 0);

  // One N(0, 1) value of the builder's seeded sequence (Box-Muller on
  // mt19937_64; the second value of each pair is kept for the next call).
  double Normal();
  // d[k] = float(mean + stddev * Normal()) for k < n, in order: the same values
  // and the same state afterwards as n calls, with the log/sincos of large
  // tensors spread over the hardware threads.
  void FillNormal(float* d, int64_t n, double stddev, double mean);

 private:
  ir::Value* Finish(ir::Node* node);

  ir::Graph& graph_;
  std::mt19937_64 rng_;
  bool have_spare_ = false;
  double spare_ = 0;
  Status status_;
  ir::Value* relu6_min_ = nullptr;
  ir::Value* relu6_max_ = nullptr;
};

}  // namespace wbs::zoo

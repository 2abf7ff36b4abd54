// Model zoo: IR graphs built in code, with seeded random weights (no
// pretrained weights can be downloaded here). Topologies equal torchvision's
// layer for layer (checked against python3-torchvision exports in tests).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"

namespace wbs::zoo {

struct ZooOptions {
  int64_t batch = 1;
  uint64_t seed = 0;
  // Input spatial size; 0 = the model's default (224, Inception 299, fmnist 28).
  int64_t image_size = 0;
  int64_t num_classes = 0;  // 0 = default (1000, fmnist 10)
};

// Names accepted by BuildModel: resnet18, resnet50, vgg16, inception_v3,
// mobilenet_v2, fmnist_resnet.
std::vector<std::string> ModelNames();
// Graphs use ONNX opset 17 ops (Conv, BatchNormalization, Relu, MaxPool,
// Add, Concat, GlobalAveragePool, Flatten, Gemm, ...), BN not folded.
Result<std::unique_ptr<ir::Graph>> BuildModel(const std::string& name, const ZooOptions& options = {});

}  // namespace wbs::zoo

// Model zoo: IR graphs built in code, with seeded random weights (no
// pretrained weights can be downloaded here). Topologies equal torchvision's
// layer for layer (checked against python3-torchvision exports in tests/zoo).
//
// Every graph has one input "input" f32[batch, C, H, W] and one output
// "logits" f32[batch, classes]. Nodes are named after the torchvision module
// they mirror ("layer1.0.conv1", "features.3.conv.1.0", "Mixed_6b.branch7x7_2.conv")
// and weights after its state_dict entries ("layer1.0.conv1.weight",
// "layer1.0.bn1.running_var"), so users can map layers and weights across.
// Convs followed by BatchNorm have no bias, as in torchvision; BN is not
// folded (`wbs convert --fold-bn` or the runtime's passes fold it).
// Weights: Kaiming-normal (fan_in) for Conv/Gemm, small random biases, and
// BatchNorm statistics near but not at the identity; see zoo/builder.h.
//
// Models (MACs count Conv and Gemm multiply-accumulates at batch 1):
//   resnet18       224x224, 1.82 GMAC, 11.7 M parameters (torchvision resnet18)
//   resnet50       224x224, 4.09 GMAC, 25.6 M parameters (torchvision resnet50, v1.5)
//   vgg16          224x224, 15.47 GMAC, 138 M parameters (torchvision vgg16, no BN)
//   inception_v3   299x299, 5.71 GMAC, 23.8 M parameters (torchvision inception_v3
//                  inference graph: no AuxLogits, transform_input=False)
//   mobilenet_v2   224x224, 0.30 GMAC, 3.5 M parameters (torchvision mobilenet_v2)
//   fmnist_resnet  1x28x28 Fashion-MNIST, 10 classes; wbs's own, sized for
//                  8x8 block sparsity (every conv but the first has CIN and
//                  COUT multiples of 8):
//       conv1   3x3 conv 1->32, stride 1, pad 1; bn1; relu          28x28
//       layer1  2 BasicBlocks, 32 channels                           28x28
//       layer2  2 BasicBlocks, 64 channels, the first with stride 2
//               and a 1x1 conv+BN projection ("downsample")          14x14
//       layer3  2 BasicBlocks, 128 channels, same pattern             7x7
//       avgpool (GlobalAveragePool), flatten, fc 128->10
//     A BasicBlock is torchvision's: conv3x3-bn-relu-conv3x3-bn, add the
//     (projected) input, relu. 693,802 Conv/Gemm weights and biases + 4,480
//     BN numbers (gamma, beta, mean, var of 1,120 channels) = 698,282
//     parameters; 80.5 MMAC.
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

struct ModelInfo {
  std::string name;
  std::string summary;  // one line, for `wbs zoo --list`
  int64_t in_channels = 3;
  int64_t default_image_size = 224;
  int64_t default_num_classes = 1000;
};

// Names accepted by BuildModel: resnet18, resnet50, vgg16, inception_v3,
// mobilenet_v2, fmnist_resnet.
std::vector<std::string> ModelNames();
// The same models with their defaults, in the same order.
const std::vector<ModelInfo>& Models();

// Graphs use ONNX opset 17 ops (Conv, BatchNormalization, Relu, Clip,
// MaxPool, AveragePool, Add, Concat, GlobalAveragePool, Flatten, Gemm), BN
// not folded. The graph is verified and its shapes inferred before it is
// returned. Errors: NotFound for an unknown name, InvalidArgument for bad
// options or an image too small for the network, Unimplemented for a vgg16
// size whose adaptive pooling ONNX cannot express.
Result<std::unique_ptr<ir::Graph>> BuildModel(const std::string& name,
                                              const ZooOptions& options = {});

}  // namespace wbs::zoo

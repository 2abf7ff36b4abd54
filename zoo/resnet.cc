// ResNet family: torchvision resnet18 / resnet50 (ResNet v1.5: the stride is
// on the 3x3 conv of a Bottleneck) and wbs's small fmnist_resnet.
#include <array>
#include <string>

#include "zoo/families.h"

namespace wbs::zoo {

namespace {

// torchvision BasicBlock: conv3x3(stride)-bn-relu-conv3x3-bn, plus a 1x1
// conv+bn projection of the input when the shape changes, then add and relu.
// The projection comes after the main path, as in torchvision's forward().
ir::Value* BasicBlock(NetBuilder& b, ir::Value* x, const std::string& p, int64_t planes,
                      int64_t stride) {
  const int64_t inplanes = b.Dim(x, 1);
  ir::Value* out = b.Conv(x, p + ".conv1", ConvK(planes, 3, stride, 1));
  out = b.BatchNorm(out, p + ".bn1");
  out = b.Relu(out, p + ".relu");
  out = b.Conv(out, p + ".conv2", ConvK(planes, 3, 1, 1));
  out = b.BatchNorm(out, p + ".bn2");
  ir::Value* identity = x;
  if (stride != 1 || inplanes != planes) {
    identity = b.Conv(x, p + ".downsample.0", ConvK(planes, 1, stride, 0));
    identity = b.BatchNorm(identity, p + ".downsample.1");
  }
  out = b.Add(out, identity, p + ".add");
  return b.Relu(out, p + ".relu_1");
}

// torchvision Bottleneck (expansion 4): 1x1 reduce, 3x3 with the stride,
// 1x1 expand.
ir::Value* Bottleneck(NetBuilder& b, ir::Value* x, const std::string& p, int64_t planes,
                      int64_t stride) {
  constexpr int64_t kExpansion = 4;
  const int64_t inplanes = b.Dim(x, 1);
  ir::Value* out = b.Conv(x, p + ".conv1", ConvK(planes, 1));
  out = b.BatchNorm(out, p + ".bn1");
  out = b.Relu(out, p + ".relu");
  out = b.Conv(out, p + ".conv2", ConvK(planes, 3, stride, 1));
  out = b.BatchNorm(out, p + ".bn2");
  out = b.Relu(out, p + ".relu_1");
  out = b.Conv(out, p + ".conv3", ConvK(planes * kExpansion, 1));
  out = b.BatchNorm(out, p + ".bn3");
  ir::Value* identity = x;
  if (stride != 1 || inplanes != planes * kExpansion) {
    identity = b.Conv(x, p + ".downsample.0", ConvK(planes * kExpansion, 1, stride, 0));
    identity = b.BatchNorm(identity, p + ".downsample.1");
  }
  out = b.Add(out, identity, p + ".add");
  return b.Relu(out, p + ".relu_2");
}

using BlockFn = ir::Value* (*)(NetBuilder&, ir::Value*, const std::string&, int64_t, int64_t);

// Stages "layer1".."layerN": blocks[i] blocks of width widths[i]; every stage
// but the first starts with a stride-2 block.
template <size_t N>
ir::Value* Stages(NetBuilder& b, ir::Value* x, BlockFn block, const std::array<int, N>& blocks,
                  const std::array<int64_t, N>& widths) {
  for (size_t s = 0; s < N; ++s) {
    for (int i = 0; i < blocks[s]; ++i) {
      const int64_t stride = (s > 0 && i == 0) ? 2 : 1;
      x = block(b, x, "layer" + std::to_string(s + 1) + "." + std::to_string(i), widths[s], stride);
    }
  }
  return x;
}

ir::Value* Head(NetBuilder& b, ir::Value* x, int64_t num_classes) {
  x = b.GlobalAveragePool(x, "avgpool");
  x = b.Flatten(x, "flatten");
  ir::Value* logits = b.Linear(x, "fc", num_classes, b.graph().AddValue("logits"));
  b.graph().outputs.push_back(logits);
  return logits;
}

ir::Value* ImageNetStem(NetBuilder& b, const FamilyArgs& a) {
  ir::Value* x = b.Input(a.batch, 3, a.image_size);
  x = b.Conv(x, "conv1", ConvK(64, 7, 2, 3));
  x = b.BatchNorm(x, "bn1");
  x = b.Relu(x, "relu");
  return b.MaxPool(x, "maxpool", 3, 2, 1);
}

}  // namespace

void BuildResNet18(NetBuilder& b, const FamilyArgs& a) {
  ir::Value* x = ImageNetStem(b, a);
  x = Stages<4>(b, x, BasicBlock, {2, 2, 2, 2}, {64, 128, 256, 512});
  Head(b, x, a.num_classes);
}

void BuildResNet50(NetBuilder& b, const FamilyArgs& a) {
  ir::Value* x = ImageNetStem(b, a);
  x = Stages<4>(b, x, Bottleneck, {3, 4, 6, 3}, {64, 128, 256, 512});
  Head(b, x, a.num_classes);
}

void BuildFmnistResNet(NetBuilder& b, const FamilyArgs& a) {
  ir::Value* x = b.Input(a.batch, 1, a.image_size);
  x = b.Conv(x, "conv1", ConvK(32, 3, 1, 1));
  x = b.BatchNorm(x, "bn1");
  x = b.Relu(x, "relu");
  x = Stages<3>(b, x, BasicBlock, {2, 2, 2}, {32, 64, 128});
  Head(b, x, a.num_classes);
}

}  // namespace wbs::zoo

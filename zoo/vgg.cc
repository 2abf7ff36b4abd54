// VGG family: torchvision vgg16 (configuration "D", no BatchNorm).
#include <string>

#include "zoo/families.h"

namespace wbs::zoo {

void BuildVgg16(NetBuilder& b, const FamilyArgs& a) {
  constexpr int64_t kPool = 0;  // 'M' in torchvision's cfgs
  // clang-format off
  constexpr int64_t kConfigD[] = {64, 64, kPool,
                                  128, 128, kPool,
                                  256, 256, 256, kPool,
                                  512, 512, 512, kPool,
                                  512, 512, 512, kPool};
  // clang-format on
  // torchvision's classifier input is AdaptiveAvgPool2d((7, 7)).
  constexpr int64_t kPooledSize = 7;
  constexpr int64_t kHidden = 4096;

  // AdaptiveAvgPool2d(7) after the features is the identity at 224x224 (7x7
  // features) and a plain AveragePool when the feature size is a multiple of
  // 7; other sizes need overlapping adaptive windows, which ONNX cannot
  // express. Five 2x2 max pools divide the size by 32 (floor); checking here
  // fails before the 15 M conv weights are drawn.
  constexpr int64_t kFeatureStride = 32;
  if (const int64_t f = a.image_size / kFeatureStride; f % kPooledSize != 0) {
    b.Fail(
        Unimplemented("image size {} gives {}x{} features; AdaptiveAvgPool2d(7) needs a multiple "
                      "of 7 (use image sizes that are multiples of 224)",
                      a.image_size, f, f));
    return;
  }
  ir::Value* x = b.Input(a.batch, 3, a.image_size);
  // Module indices follow nn.Sequential numbering: conv and its ReLU take two
  // slots, a max pool one ("features.0" conv, "features.1" relu, ...).
  int index = 0;
  for (int64_t v : kConfigD) {
    if (v == kPool) {
      x = b.MaxPool(x, "features." + std::to_string(index++), 2, 2);
      continue;
    }
    ConvSpec spec = ConvK(v, 3, 1, 1);
    spec.bias = true;
    x = b.Conv(x, "features." + std::to_string(index++), spec);
    x = b.Relu(x, "features." + std::to_string(index++));
  }
  const int64_t f = b.Dim(x, 2);
  if (b.status().ok() && f != kPooledSize) {
    x = b.AveragePool(x, "avgpool", f / kPooledSize, f / kPooledSize);
  }
  x = b.Flatten(x, "flatten");
  // Dropout ("classifier.2", "classifier.5") is the identity at inference.
  x = b.Linear(x, "classifier.0", kHidden);
  x = b.Relu(x, "classifier.1");
  x = b.Linear(x, "classifier.3", kHidden);
  x = b.Relu(x, "classifier.4");
  ir::Value* logits = b.Linear(x, "classifier.6", a.num_classes, b.graph().AddValue("logits"));
  b.graph().outputs.push_back(logits);
}

}  // namespace wbs::zoo

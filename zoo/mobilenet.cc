// MobileNet family: torchvision mobilenet_v2 (width 1.0): inverted residual
// blocks of 1x1 expansion, 3x3 depthwise and 1x1 linear projection, with
// ReLU6 (ONNX Clip(0, 6)) after the first two.
#include <string>

#include "zoo/families.h"

namespace wbs::zoo {

namespace {

// torchvision Conv2dNormActivation with ReLU6: "<p>.0" conv, "<p>.1" bn, "<p>.2" relu6.
ir::Value* ConvBnRelu6(NetBuilder& b, ir::Value* x, const std::string& p, ConvSpec spec) {
  x = b.Conv(x, p + ".0", spec);
  x = b.BatchNorm(x, p + ".1");
  return b.Relu6(x, p + ".2");
}

ir::Value* InvertedResidual(NetBuilder& b, ir::Value* x, const std::string& p, int64_t oup,
                            int64_t stride, int64_t expand_ratio) {
  const int64_t inp = b.Dim(x, 1);
  const int64_t hidden = inp * expand_ratio;
  const std::string c = p + ".conv";
  ir::Value* out = x;
  int slot = 0;  // index inside the block's nn.Sequential
  if (expand_ratio != 1)
    out = ConvBnRelu6(b, out, c + "." + std::to_string(slot++), ConvK(hidden, 1));
  ConvSpec dw = ConvK(hidden, 3, stride, 1);
  dw.groups = hidden;
  out = ConvBnRelu6(b, out, c + "." + std::to_string(slot++), dw);
  out = b.Conv(out, c + "." + std::to_string(slot++), ConvK(oup, 1));
  out = b.BatchNorm(out, c + "." + std::to_string(slot++));
  if (stride == 1 && inp == oup) out = b.Add(x, out, p + ".add");
  return out;
}

}  // namespace

void BuildMobileNetV2(NetBuilder& b, const FamilyArgs& a) {
  struct Stage {
    int64_t expand, channels, repeats, stride;  // torchvision's (t, c, n, s)
  };
  constexpr Stage kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                               {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  constexpr int64_t kStemChannels = 32;
  constexpr int64_t kLastChannels = 1280;

  ir::Value* x = b.Input(a.batch, 3, a.image_size);
  x = ConvBnRelu6(b, x, "features.0", ConvK(kStemChannels, 3, 2, 1));
  int index = 1;
  for (const Stage& s : kStages) {
    for (int64_t i = 0; i < s.repeats; ++i) {
      x = InvertedResidual(b, x, "features." + std::to_string(index++), s.channels,
                           i == 0 ? s.stride : 1, s.expand);
    }
  }
  x = ConvBnRelu6(b, x, "features." + std::to_string(index), ConvK(kLastChannels, 1));
  x = b.GlobalAveragePool(x, "avgpool");
  x = b.Flatten(x, "flatten");
  // classifier.0 is Dropout, the identity at inference.
  ir::Value* logits = b.Linear(x, "classifier.1", a.num_classes, b.graph().AddValue("logits"));
  b.graph().outputs.push_back(logits);
}

}  // namespace wbs::zoo

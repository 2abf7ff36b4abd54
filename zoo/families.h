// The model families of the zoo, one file each (zoo-internal).
//
// A family function appends its network to the builder's graph: it reads the
// image from the builder's "input" value and produces the value "logits",
// which it appends to graph.outputs. Spatial size and class count come
// already resolved (defaults filled in) from BuildModel.
#pragma once

#include <cstdint>

#include "zoo/builder.h"

namespace wbs::zoo {

struct FamilyArgs {
  int64_t batch = 1;
  int64_t image_size = 0;
  int64_t num_classes = 0;
};

void BuildResNet18(NetBuilder& b, const FamilyArgs& a);      // zoo/resnet.cc
void BuildResNet50(NetBuilder& b, const FamilyArgs& a);      // zoo/resnet.cc
void BuildFmnistResNet(NetBuilder& b, const FamilyArgs& a);  // zoo/resnet.cc
void BuildVgg16(NetBuilder& b, const FamilyArgs& a);         // zoo/vgg.cc
void BuildInceptionV3(NetBuilder& b, const FamilyArgs& a);   // zoo/inception.cc
void BuildMobileNetV2(NetBuilder& b, const FamilyArgs& a);   // zoo/mobilenet.cc

}  // namespace wbs::zoo

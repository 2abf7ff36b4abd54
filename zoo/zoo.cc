#include "zoo/zoo.h"

#include "ir/op_schema.h"
#include "zoo/builder.h"
#include "zoo/families.h"

namespace wbs::zoo {

namespace {

using FamilyFn = void (*)(NetBuilder&, const FamilyArgs&);

struct Entry {
  ModelInfo info;
  FamilyFn build;
  // Smallest input size the network's strides and pools accept.
  int64_t min_image_size;
};

const std::vector<Entry>& Registry() {
  static const std::vector<Entry> entries = {
      {{"resnet18", "torchvision ResNet-18, 224x224, 1.82 GMAC", 3, 224, 1000}, BuildResNet18, 32},
      {{"resnet50", "torchvision ResNet-50 (v1.5), 224x224, 4.09 GMAC", 3, 224, 1000},
       BuildResNet50,
       32},
      {{"vgg16", "torchvision VGG-16 (no BN), 224x224, 15.47 GMAC", 3, 224, 1000}, BuildVgg16, 224},
      {{"inception_v3", "torchvision Inception-v3 (no aux head), 299x299, 5.71 GMAC", 3, 299, 1000},
       BuildInceptionV3,
       75},
      {{"mobilenet_v2", "torchvision MobileNet-V2, 224x224, 0.30 GMAC", 3, 224, 1000},
       BuildMobileNetV2,
       32},
      {{"fmnist_resnet", "wbs ResNet for Fashion-MNIST 1x28x28, 10 classes, 0.70 M parameters", 1,
        28, 10},
       BuildFmnistResNet,
       8},
  };
  return entries;
}

}  // namespace

std::vector<std::string> ModelNames() {
  std::vector<std::string> names;
  for (const Entry& e : Registry()) names.push_back(e.info.name);
  return names;
}

const std::vector<ModelInfo>& Models() {
  static const std::vector<ModelInfo> models = [] {
    std::vector<ModelInfo> m;
    for (const Entry& e : Registry()) m.push_back(e.info);
    return m;
  }();
  return models;
}

Result<std::unique_ptr<ir::Graph>> BuildModel(const std::string& name, const ZooOptions& options) {
  const Entry* entry = nullptr;
  for (const Entry& e : Registry())
    if (e.info.name == name) entry = &e;
  if (!entry) {
    std::string known;
    for (const std::string& n : ModelNames()) known += (known.empty() ? "" : ", ") + n;
    return NotFound("zoo: unknown model '{}' (known: {})", name, known);
  }
  FamilyArgs args;
  args.batch = options.batch;
  args.image_size = options.image_size ? options.image_size : entry->info.default_image_size;
  args.num_classes = options.num_classes ? options.num_classes : entry->info.default_num_classes;
  if (args.batch < 1)
    return InvalidArgument("zoo: {}: batch must be >= 1, got {}", name, args.batch);
  if (args.num_classes < 1)
    return InvalidArgument("zoo: {}: number of classes must be >= 1, got {}", name,
                           args.num_classes);
  if (args.image_size < entry->min_image_size)
    return InvalidArgument("zoo: {}: image size {} is below the network's minimum {}", name,
                           args.image_size, entry->min_image_size);

  auto graph = std::make_unique<ir::Graph>();
  graph->name = name;
  graph->opset = 17;
  graph->metadata["wbs.zoo.model"] = name;
  graph->metadata["wbs.zoo.seed"] = std::to_string(options.seed);
  NetBuilder builder(*graph, options.seed);
  entry->build(builder, args);
  WBS_RETURN_IF_ERROR(builder.status().WithContext("zoo: " + name));
  WBS_RETURN_IF_ERROR(graph->TopologicalSort().WithContext("zoo: " + name));
  WBS_RETURN_IF_ERROR(graph->Verify().WithContext("zoo: " + name));
  WBS_RETURN_IF_ERROR(ir::InferShapes(*graph).WithContext("zoo: " + name));
  return graph;
}

}  // namespace wbs::zoo

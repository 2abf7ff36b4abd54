// Inception family: torchvision inception_v3 as its inference graph: no
// AuxLogits (it only runs in training mode) and transform_input=False (the
// default without pretrained weights). Convs are BasicConv2d: conv without
// bias, BatchNorm with eps 0.001, ReLU.
#include <string>
#include <vector>

#include "zoo/families.h"

namespace wbs::zoo {

namespace {

constexpr float kBnEpsilon = 1e-3f;

// Shorthands for the kernel shapes Inception uses.
ConvSpec K1(int64_t cout) { return ConvK(cout, 1); }
ConvSpec K3(int64_t cout, int64_t stride = 1, int64_t pad = 0) {
  return ConvK(cout, 3, stride, pad);
}
ConvSpec K1x7(int64_t cout) { return ConvSpec{cout, {1, 7}, {1, 1}, {0, 3}}; }
ConvSpec K7x1(int64_t cout) { return ConvSpec{cout, {7, 1}, {1, 1}, {3, 0}}; }
ConvSpec K1x3(int64_t cout) { return ConvSpec{cout, {1, 3}, {1, 1}, {0, 1}}; }
ConvSpec K3x1(int64_t cout) { return ConvSpec{cout, {3, 1}, {1, 1}, {1, 0}}; }

class Inception {
 public:
  Inception(NetBuilder& b, std::string prefix) : b_(b), p_(std::move(prefix)) {}
  ir::Value* Conv(ir::Value* x, const std::string& branch, const ConvSpec& spec) {
    return b_.BasicConv2d(x, p_ + "." + branch, spec, kBnEpsilon);
  }
  // F.avg_pool2d(x, 3, stride=1, padding=1), count_include_pad=True.
  ir::Value* AvgPool(ir::Value* x) { return b_.AveragePool(x, p_ + ".avg_pool", 3, 1, 1); }
  ir::Value* MaxPool(ir::Value* x) { return b_.MaxPool(x, p_ + ".max_pool", 3, 2); }
  ir::Value* Cat(const std::vector<ir::Value*>& xs, const std::string& suffix = "cat") {
    return b_.Concat(xs, p_ + "." + suffix);
  }

 private:
  NetBuilder& b_;
  std::string p_;
};

ir::Value* InceptionA(NetBuilder& b, ir::Value* x, const std::string& name, int64_t pool_features) {
  Inception m(b, name);
  ir::Value* b1 = m.Conv(x, "branch1x1", K1(64));
  ir::Value* b5 = m.Conv(x, "branch5x5_1", K1(48));
  b5 = m.Conv(b5, "branch5x5_2", ConvK(64, 5, 1, 2));
  ir::Value* b3 = m.Conv(x, "branch3x3dbl_1", K1(64));
  b3 = m.Conv(b3, "branch3x3dbl_2", K3(96, 1, 1));
  b3 = m.Conv(b3, "branch3x3dbl_3", K3(96, 1, 1));
  ir::Value* bp = m.Conv(m.AvgPool(x), "branch_pool", K1(pool_features));
  return m.Cat({b1, b5, b3, bp});
}

ir::Value* InceptionB(NetBuilder& b, ir::Value* x, const std::string& name) {
  Inception m(b, name);
  ir::Value* b3 = m.Conv(x, "branch3x3", K3(384, 2));
  ir::Value* bd = m.Conv(x, "branch3x3dbl_1", K1(64));
  bd = m.Conv(bd, "branch3x3dbl_2", K3(96, 1, 1));
  bd = m.Conv(bd, "branch3x3dbl_3", K3(96, 2));
  ir::Value* bp = m.MaxPool(x);
  return m.Cat({b3, bd, bp});
}

ir::Value* InceptionC(NetBuilder& b, ir::Value* x, const std::string& name, int64_t c7) {
  Inception m(b, name);
  ir::Value* b1 = m.Conv(x, "branch1x1", K1(192));
  ir::Value* b7 = m.Conv(x, "branch7x7_1", K1(c7));
  b7 = m.Conv(b7, "branch7x7_2", K1x7(c7));
  b7 = m.Conv(b7, "branch7x7_3", K7x1(192));
  ir::Value* bd = m.Conv(x, "branch7x7dbl_1", K1(c7));
  bd = m.Conv(bd, "branch7x7dbl_2", K7x1(c7));
  bd = m.Conv(bd, "branch7x7dbl_3", K1x7(c7));
  bd = m.Conv(bd, "branch7x7dbl_4", K7x1(c7));
  bd = m.Conv(bd, "branch7x7dbl_5", K1x7(192));
  ir::Value* bp = m.Conv(m.AvgPool(x), "branch_pool", K1(192));
  return m.Cat({b1, b7, bd, bp});
}

ir::Value* InceptionD(NetBuilder& b, ir::Value* x, const std::string& name) {
  Inception m(b, name);
  ir::Value* b3 = m.Conv(x, "branch3x3_1", K1(192));
  b3 = m.Conv(b3, "branch3x3_2", K3(320, 2));
  ir::Value* b7 = m.Conv(x, "branch7x7x3_1", K1(192));
  b7 = m.Conv(b7, "branch7x7x3_2", K1x7(192));
  b7 = m.Conv(b7, "branch7x7x3_3", K7x1(192));
  b7 = m.Conv(b7, "branch7x7x3_4", K3(192, 2));
  ir::Value* bp = m.MaxPool(x);
  return m.Cat({b3, b7, bp});
}

ir::Value* InceptionE(NetBuilder& b, ir::Value* x, const std::string& name) {
  Inception m(b, name);
  ir::Value* b1 = m.Conv(x, "branch1x1", K1(320));
  ir::Value* b3 = m.Conv(x, "branch3x3_1", K1(384));
  b3 = m.Cat({m.Conv(b3, "branch3x3_2a", K1x3(384)), m.Conv(b3, "branch3x3_2b", K3x1(384))},
             "branch3x3.cat");
  ir::Value* bd = m.Conv(x, "branch3x3dbl_1", K1(448));
  bd = m.Conv(bd, "branch3x3dbl_2", K3(384, 1, 1));
  bd = m.Cat({m.Conv(bd, "branch3x3dbl_3a", K1x3(384)), m.Conv(bd, "branch3x3dbl_3b", K3x1(384))},
             "branch3x3dbl.cat");
  ir::Value* bp = m.Conv(m.AvgPool(x), "branch_pool", K1(192));
  return m.Cat({b1, b3, bd, bp});
}

}  // namespace

void BuildInceptionV3(NetBuilder& b, const FamilyArgs& a) {
  ir::Value* x = b.Input(a.batch, 3, a.image_size);
  x = b.BasicConv2d(x, "Conv2d_1a_3x3", K3(32, 2), kBnEpsilon);
  x = b.BasicConv2d(x, "Conv2d_2a_3x3", K3(32), kBnEpsilon);
  x = b.BasicConv2d(x, "Conv2d_2b_3x3", K3(64, 1, 1), kBnEpsilon);
  x = b.MaxPool(x, "maxpool1", 3, 2);
  x = b.BasicConv2d(x, "Conv2d_3b_1x1", K1(80), kBnEpsilon);
  x = b.BasicConv2d(x, "Conv2d_4a_3x3", K3(192), kBnEpsilon);
  x = b.MaxPool(x, "maxpool2", 3, 2);
  x = InceptionA(b, x, "Mixed_5b", 32);
  x = InceptionA(b, x, "Mixed_5c", 64);
  x = InceptionA(b, x, "Mixed_5d", 64);
  x = InceptionB(b, x, "Mixed_6a");
  x = InceptionC(b, x, "Mixed_6b", 128);
  x = InceptionC(b, x, "Mixed_6c", 160);
  x = InceptionC(b, x, "Mixed_6d", 160);
  x = InceptionC(b, x, "Mixed_6e", 192);
  x = InceptionD(b, x, "Mixed_7a");
  x = InceptionE(b, x, "Mixed_7b");
  x = InceptionE(b, x, "Mixed_7c");
  x = b.GlobalAveragePool(x, "avgpool");
  // Dropout is the identity at inference.
  x = b.Flatten(x, "flatten");
  ir::Value* logits = b.Linear(x, "fc", a.num_classes, b.graph().AddValue("logits"));
  b.graph().outputs.push_back(logits);
}

}  // namespace wbs::zoo

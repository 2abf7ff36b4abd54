// Layout negotiation (core/layout.h, runtime/operator.h, runtime/session.cc):
// oneDNN convs and pools reading and writing blocked / channels-last tensors
// at their boundaries compute the reference result, and whole sessions that
// pass such tensors between operators agree with the reference backend and
// with the same session kept plain.
#include <gtest/gtest.h>

#include "ir/pass.h"
#include "kernels/dnnl/conv.h"
#include "kernels/dnnl/pool.h"
#include "kernels/ref/conv.h"
#include "kernels/ref/pool.h"
#include "runtime/session.h"
#include "tests/unit/ops_dnnl_test_util.h"

namespace wbs::dnnl_test {
namespace {

// Both blocks on every machine: the one oneDNN computes in here
// (kernels::onednn::NativeBlockedLayout()) is read and written without a
// reorder, the other through one.
constexpr ActivationLayout kLayouts[] = {ActivationLayout::kPlain, ActivationLayout::kBlocked16,
                                         ActivationLayout::kBlocked8,
                                         ActivationLayout::kChannelsLast};

// Element offset of (n, c, s) in `layout` for [N, C, S] (S = spatial size).
int64_t Offset(ActivationLayout layout, int64_t c_count, int64_t s_count, int64_t n, int64_t c,
               int64_t s) {
  switch (layout) {
    case ActivationLayout::kBlocked16:
      return ((n * (c_count / 16) + c / 16) * s_count + s) * 16 + c % 16;
    case ActivationLayout::kBlocked8:
      return ((n * (c_count / 8) + c / 8) * s_count + s) * 8 + c % 8;
    case ActivationLayout::kChannelsLast:
      return (n * s_count + s) * c_count + c;
    default:
      return (n * c_count + c) * s_count + s;
  }
}

// A plain [N, C, spatial...] tensor converted to `layout` (flat), and back.
Tensor ToLayout(const Tensor& plain, ActivationLayout layout) {
  const int64_t n_count = plain.dim(0), c_count = plain.dim(1);
  const int64_t s_count = plain.numel() / std::max<int64_t>(1, n_count * c_count);
  Tensor out(DType::kF32, {plain.numel()});
  for (int64_t n = 0; n < n_count; ++n)
    for (int64_t c = 0; c < c_count; ++c)
      for (int64_t s = 0; s < s_count; ++s)
        out.data<float>()[Offset(layout, c_count, s_count, n, c, s)] =
            plain.data<float>()[(n * c_count + c) * s_count + s];
  return out;
}
Tensor FromLayout(const Tensor& flat, ActivationLayout layout, const Shape& shape) {
  Tensor plain(DType::kF32, shape);
  const int64_t n_count = shape[0], c_count = shape[1];
  const int64_t s_count = plain.numel() / std::max<int64_t>(1, n_count * c_count);
  for (int64_t n = 0; n < n_count; ++n)
    for (int64_t c = 0; c < c_count; ++c)
      for (int64_t s = 0; s < s_count; ++s)
        plain.data<float>()[(n * c_count + c) * s_count + s] =
            flat.data<float>()[Offset(layout, c_count, s_count, n, c, s)];
  return plain;
}

// Every combination of X, Y and residual layouts, residual by copy (sum
// post-op) or read in place (binary post-op), on a 1x1 and a 3x3 layer.
TEST(LayoutNegotiationTest, ConvPrimitiveBoundaryLayouts) {
  namespace onednn = kernels::onednn;
  namespace ref = kernels::ref;
  Rng rng(TestSeed() + 40);
  int in_place_built = 0;
  for (int64_t k : {1, 3}) {
    ref::ConvParams p;
    p.batch = 2;
    p.in_channels = 32;
    p.out_channels = 16;
    p.in = {1, 7, 6};
    p.out = {1, 7, 6};
    p.kernel = {1, k, k};
    p.pad_begin = {0, k / 2, k / 2};
    p.pad_end = {0, k / 2, k / 2};
    p.activation.kind = ref::ActivationKind::kRelu;
    const Shape x_shape = {2, 32, 7, 6}, y_shape = {2, 16, 7, 6};
    const Tensor x = RandomTensor(x_shape, rng), r = RandomTensor(y_shape, rng);
    const Tensor w = RandomTensor({16, 32, k, k}, rng), b = RandomTensor({16}, rng);
    // Reference: act(conv + b + r).
    ref::ConvParams p_noact = p;
    p_noact.activation = ref::Activation();
    Tensor want(DType::kF32, y_shape);
    ref::Conv<float>(p_noact, x.data<float>(), w.data<float>(), b.data<float>(),
                     want.data<float>());
    for (int64_t i = 0; i < want.numel(); ++i)
      want.data<float>()[i] = std::max(0.0f, want.data<float>()[i] + r.data<float>()[i]);

    for (auto conv_layout : {onednn::ConvLayout::kBlocked, onednn::ConvLayout::kAny}) {
      auto base = onednn::ConvPrimitive::Create(p, false, true, conv_layout, /*residual=*/true);
      ASSERT_TRUE(base.ok()) << base.status().ToString();
      const ActivationLayout own = (*base)->internal_dst_layout();
      for (bool in_place : {false, true}) {
        if (in_place && own == ActivationLayout::kCount) continue;
        auto prim = in_place ? onednn::ConvPrimitive::Create(p, false, true, conv_layout, true, own)
                             : std::move(base);
        // oneDNN may compute in another layout once the residual is an
        // operand; the runtime then keeps the copying form.
        if (in_place && !prim.ok() && prim.status().code() == StatusCode::kUnimplemented) continue;
        ASSERT_TRUE(prim.ok()) << prim.status().ToString();
        in_place_built += in_place;
        auto packed = (*prim)->PackWeights(w.data<float>());
        ASSERT_TRUE(packed.ok());
        for (ActivationLayout xl : kLayouts) {
          for (ActivationLayout yl : kLayouts) {
            for (ActivationLayout rl : kLayouts) {
              if (in_place && rl != own) continue;
              SCOPED_TRACE(fmt::format("k {} {} in_place {}: x {} y {} r {}", k,
                                       (*prim)->impl_name(), in_place, ActivationLayoutName(xl),
                                       ActivationLayoutName(yl), ActivationLayoutName(rl)));
              ASSERT_TRUE((*prim)->SetBoundaryLayouts(xl, yl, rl).ok());
              const Tensor xin = ToLayout(x, xl), rin = ToLayout(r, rl);
              Tensor y(DType::kF32, {want.numel()});
              ASSERT_TRUE((*prim)
                              ->Execute(xin.data<float>(), *packed, b.data<float>(),
                                        y.data<float>(), rin.data<float>())
                              .ok());
              EXPECT_LE(MaxRelError(FromLayout(y, yl, y_shape), want), kRelTol);
            }
          }
        }
      }
    }
  }
  EXPECT_GE(in_place_built, 2) << "blocked layers read the residual in place";
}

TEST(LayoutNegotiationTest, PoolPrimitiveBoundaryLayouts) {
  namespace onednn = kernels::onednn;
  namespace ref = kernels::ref;
  Rng rng(TestSeed() + 41);
  ref::PoolParams p;
  p.batch = 1;
  p.channels = 32;
  p.in = {1, 9, 8};
  p.out = {1, 5, 4};
  p.kernel = {1, 3, 3};
  p.stride = {1, 2, 2};
  p.pad_begin = {0, 1, 1};
  p.pad_end = {0, 1, 1};
  const Shape x_shape = {1, 32, 9, 8}, y_shape = {1, 32, 5, 4};
  const Tensor x = RandomTensor(x_shape, rng);
  Tensor want(DType::kF32, y_shape);
  ref::MaxPool<float>(p, x.data<float>(), want.data<float>(), nullptr);
  onednn::PoolSpec spec;
  spec.src_dims = x_shape;
  spec.dst_dims = y_shape;
  spec.kernel = {3, 3};
  spec.strides = {2, 2};
  spec.dilations = {1, 1};
  spec.pad_begin = {1, 1};
  spec.pad_end = {1, 1};
  spec.ceil_extra_end = {0, 0};
  for (auto own : {onednn::PoolLayout::kPlain, onednn::PoolLayout::kBlocked,
                   onednn::PoolLayout::kChannelsLast}) {
    auto prim = onednn::PoolPrimitive::Create(spec, own);
    ASSERT_TRUE(prim.ok()) << prim.status().ToString();
    for (ActivationLayout xl : kLayouts) {
      for (ActivationLayout yl : kLayouts) {
        SCOPED_TRACE(fmt::format("{}: x {} y {}", (*prim)->impl_name(), ActivationLayoutName(xl),
                                 ActivationLayoutName(yl)));
        ASSERT_TRUE((*prim)->SetBoundaryLayouts(xl, yl).ok());
        const Tensor xin = ToLayout(x, xl);
        Tensor y(DType::kF32, {want.numel()});
        ASSERT_TRUE((*prim)->Execute(xin.data<float>(), y.data<float>()).ok());
        EXPECT_LE(MaxRelError(FromLayout(y, yl, y_shape), want), kRelTol);
      }
    }
  }
}

// A random CNN: 1x1, 3x3 (stride 1 or 2) and depthwise convs with fused
// activations, residual Adds, 2x upsampling ConvTransposes, max and average
// pools, and a global pool, over channel counts that are and are not
// multiples of 16.
std::unique_ptr<ir::Graph> RandomNetwork(Rng& rng, int64_t* c_in) {
  static const int64_t kChannels[] = {16, 24, 32, 48};
  auto g = std::make_unique<ir::Graph>();
  int64_t c = kChannels[Uniform(rng, 0, 3)];
  *c_in = c;
  ir::Value* v = g->AddInput("x", DType::kF32, {1, c, 20, 20});
  int index = 0;
  auto name = [&](const char* what) { return fmt::format("{}{}", what, index++); };
  auto conv = [&](ir::Value* in, int64_t cin, int64_t cout, int64_t k, int64_t stride,
                  int64_t group) {
    // Scaled by 1/sqrt(fan-in) so activations stay O(1) through the network
    // and the relative tolerance means the same at every depth.
    Tensor wt = RandomTensor({cout, cin / group, k, k}, rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(cin / group * k * k));
    for (int64_t i = 0; i < wt.numel(); ++i) wt.data<float>()[i] *= scale;
    ir::Value* w = g->AddConstant(name("w"), wt);
    ir::Value* b = g->AddConstant(name("b"), RandomTensor({cout}, rng));
    ir::Node* n = g->AddNode("Conv", {in, w, b}, 1, name("conv"));
    n->attrs["pads"] = std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2};
    n->attrs["strides"] = std::vector<int64_t>{stride, stride};
    if (group > 1) n->attrs["group"] = group;
    return n->outputs[0];
  };
  const int blocks = static_cast<int>(Uniform(rng, 2, 5));
  for (int i = 0; i < blocks; ++i) {
    const int64_t kind = Uniform(rng, 0, 5);
    if (kind == 0) {  // bottleneck with a residual
      const int64_t mid = kChannels[Uniform(rng, 0, 3)];
      ir::Value* a = conv(v, c, mid, 1, 1, 1);
      a = g->AddNode("Relu", {a}, 1, name("relu"))->outputs[0];
      a = conv(a, mid, mid, 3, 1, Chance(rng, 0.3) ? mid : 1);
      a = g->AddNode("Relu", {a}, 1, name("relu"))->outputs[0];
      a = conv(a, mid, c, 1, 1, 1);
      v = g->AddNode("Add", {a, v}, 1, name("add"))->outputs[0];
      if (Chance(rng, 0.7)) v = g->AddNode("Relu", {v}, 1, name("relu"))->outputs[0];
    } else if (kind == 1) {  // a plain conv, maybe strided
      const int64_t cout = kChannels[Uniform(rng, 0, 3)];
      v = conv(v, c, cout, Chance(rng, 0.5) ? 3 : 1, Chance(rng, 0.3) ? 2 : 1, 1);
      c = cout;
      ir::Node* clip = g->AddNode("Clip", {v}, 1, name("clip"));
      clip->attrs["min"] = 0.0f;
      clip->attrs["max"] = 6.0f;
      clip->opset = 9;
      v = clip->outputs[0];
    } else if (kind == 2) {
      ir::Node* pool = g->AddNode("MaxPool", {v}, 1, name("maxpool"));
      pool->attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
      pool->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
      pool->attrs["strides"] = std::vector<int64_t>{Chance(rng, 0.5) ? 2 : 1, 1};
      v = pool->outputs[0];
    } else if (kind == 3) {
      ir::Node* pool = g->AddNode("AveragePool", {v}, 1, name("avgpool"));
      pool->attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
      pool->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
      pool->attrs["count_include_pad"] = int64_t{1};
      v = pool->outputs[0];
    } else if (kind == 4) {  // a depthwise conv with no activation: the next op reads it directly
      v = conv(v, c, c, 3, 1, c);
    } else {  // a 2x upsampling ConvTranspose
      const int64_t cout = kChannels[Uniform(rng, 0, 3)];
      Tensor wt = RandomTensor({c, cout, 2, 2}, rng);
      for (int64_t j = 0; j < wt.numel(); ++j) wt.data<float>()[j] *= 0.5f;
      ir::Node* n = g->AddNode("ConvTranspose", {v, g->AddConstant(name("w"), wt)}, 1, name("up"));
      n->attrs["strides"] = std::vector<int64_t>{2, 2};
      v = n->outputs[0];
      c = cout;
    }
  }
  v = g->AddNode("GlobalAveragePool", {v}, 1, name("gap"))->outputs[0];
  g->outputs.push_back(g->AddNode("Flatten", {v}, 1, name("flatten"))->outputs[0]);
  return g;
}

struct RunResult {
  Tensor y;
  size_t non_plain = 0;
  size_t non_plain_upsampled = 0;  // ConvTranspose outputs among them
};

Result<RunResult> RunSession(const ir::Graph& g, const Tensor& x, Backend backend, bool layouts,
                             int threads) {
  runtime::SessionOptions o;
  o.backend = backend;
  o.negotiate_layouts = layouts;
  o.num_threads = threads;
  WBS_ASSIGN_OR_RETURN(auto session, runtime::Session::Create(g, o));
  WBS_ASSIGN_OR_RETURN(auto y, session->Run({x}));
  size_t up = 0;
  for (const auto& [name, layout] : session->NonPlainValues()) up += name.rfind("up", 0) == 0;
  return RunResult{y[0], session->NonPlainValues().size(), up};
}

TEST(LayoutNegotiationTest, RandomNetworksMatchReference) {
  Rng rng(TestSeed() + 42);
  size_t negotiated = 0, upsampled = 0;
  for (int i = 0; i < 25; ++i) {
    int64_t c = 0;
    auto g = RandomNetwork(rng, &c);
    SCOPED_TRACE(fmt::format("seed {}: network {}\n{}", TestSeed(), i, ir::PrintGraph(*g)));
    const Tensor x = RandomTensor({1, c, 20, 20}, rng);
    auto want = RunSession(*g, x, Backend::kReference, false, 1);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    auto plain = RunSession(*g, x, Backend::kFast, false, 1);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    EXPECT_EQ(plain->non_plain, 0u);
    auto got = RunSession(*g, x, Backend::kFast, true, i % 4 == 0 ? 2 : 1);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    negotiated += got->non_plain;
    upsampled += got->non_plain_upsampled;
    EXPECT_LE(MaxRelError(plain->y, want->y), kRelTol);
    EXPECT_LE(MaxRelError(got->y, want->y), kRelTol);
  }
  EXPECT_GT(negotiated, 0u) << "no tensor was passed in a non-plain layout";
  EXPECT_GT(upsampled, 0u) << "no ConvTranspose output was passed in a non-plain layout";
}

// A ResNet-style chain: every tensor between the first conv and the global
// pool stays non-plain; graph inputs and outputs stay plain.
TEST(LayoutNegotiationTest, ConvChainPassesNonPlainTensors) {
  Rng rng(TestSeed() + 43);
  ir::Graph g;
  ir::Value* x = g.AddInput("x", DType::kF32, {1, 32, 14, 14});
  auto conv = [&](ir::Value* in, int64_t k, const std::string& n) {
    ir::Node* c = g.AddNode("Conv",
                            {in, g.AddConstant(n + ".w", RandomTensor({32, 32, k, k}, rng)),
                             g.AddConstant(n + ".b", RandomTensor({32}, rng))},
                            1, n);
    c->attrs["pads"] = std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2};
    return g.AddNode("Relu", {c->outputs[0]}, 1, n + ".relu")->outputs[0];
  };
  ir::Value* a = conv(x, 1, "c1");
  ir::Value* b = conv(a, 3, "c2");
  ir::Node* c3 = g.AddNode("Conv",
                           {b, g.AddConstant("c3.w", RandomTensor({32, 32, 1, 1}, rng)),
                            g.AddConstant("c3.b", RandomTensor({32}, rng))},
                           1, "c3");
  ir::Value* sum = g.AddNode("Add", {c3->outputs[0], a}, 1, "add")->outputs[0];
  ir::Node* pool = g.AddNode("MaxPool", {sum}, 1, "pool");
  pool->attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  pool->attrs["strides"] = std::vector<int64_t>{2, 2};
  ir::Value* y = conv(pool->outputs[0], 1, "c4");
  g.outputs.push_back(y);

  const Tensor input = RandomTensor({1, 32, 14, 14}, rng);
  auto want = RunSession(g, input, Backend::kReference, false, 1);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  runtime::SessionOptions o;
  auto session = runtime::Session::Create(g, o);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  // c1's output (read by c2 and, as the residual, by c3), c2's, the fused
  // c3's and the pool's; c4's is the graph output.
  EXPECT_EQ((*session)->NonPlainValues().size(), 4u);
  for (const auto& [name, layout] : (*session)->NonPlainValues())
    EXPECT_NE(name, g.outputs[0]->name);
  auto got = (*session)->Run({input});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // Four convolutions in series, each within kRelTol of the reference: their
  // rounding differences add up (150 seeds reached 1.09e-4 against 1e-4).
  EXPECT_LE(MaxRelError((*got)[0], want->y), 4 * kRelTol);
}

}  // namespace
}  // namespace wbs::dnnl_test

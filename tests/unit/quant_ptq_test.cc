// Post-training quantization end to end on the zoo's fmnist_resnet (seeded
// random weights, 50% block-sparse): zero blocks stay exactly zero and the
// masks move to the int8 weights; int8 top-1 agrees with fp32; the QDQ
// export passes onnx::checker, imports back into the same integer ops and
// runs bit-exactly like the quantizer's graph.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/block_mask.h"
#include "data/dataset.h"
#include "ir/pass.h"
#include "onnx/model_io.h"
#include "quant/batches.h"
#include "quant/ptq.h"
#include "runtime/session.h"
#include "sparse/sparsify.h"
#include "zoo/zoo.h"

namespace wbs::quant {
namespace {

constexpr int64_t kCalibImages = 64;
constexpr int64_t kEvalImages = 200;

class QuantPtq : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(data::kFashionMnistDir)) return;
    auto g = zoo::BuildModel("fmnist_resnet");
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    sparse::SparsifyOptions so;
    so.sparsity = 0.5;
    auto rep = sparse::Sparsify(**g, so);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    float_ = std::move(*g).release();
    auto train = data::LoadDataset("fashion-mnist", data::Split::kTrain);
    auto test = data::LoadDataset("fashion-mnist", data::Split::kTest);
    ASSERT_TRUE(train.ok() && test.ok());
    const data::Normalization norm = data::FashionMnistNormalization();
    calib_ = new std::vector<Tensor>(MakeBatches(*train, SampleIndices(*train, kCalibImages, 0), 32, norm, nullptr));
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < kEvalImages; ++i) idx.push_back(i);
    eval_ = new std::vector<Tensor>(MakeBatches(*test, idx, 50, norm, nullptr));
  }
  static void TearDownTestSuite() {
    delete float_;
    delete calib_;
    delete eval_;
  }
  void SetUp() override {
    if (!float_) GTEST_SKIP() << "Fashion-MNIST not installed at " << data::kFashionMnistDir;
  }

  struct Quantized {
    std::unique_ptr<ir::Graph> prepared, q;
    PtqReport report;
  };
  static Quantized Run(const PtqOptions& o) {
    Quantized r;
    auto p = PrepareFloatGraph(*float_);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    r.prepared = std::move(*p);
    auto cal = Calibrate(*r.prepared, *calib_, o);
    EXPECT_TRUE(cal.ok()) << cal.status().ToString();
    auto q = BuildQuantizedGraph(*r.prepared, *cal, o, &r.report);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    r.q = std::move(*q);
    return r;
  }

  static inline ir::Graph* float_ = nullptr;
  static inline std::vector<Tensor>* calib_ = nullptr;
  static inline std::vector<Tensor>* eval_ = nullptr;
};

double Agreement(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  int64_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(a.size());
}

TEST_F(QuantPtq, ZeroBlocksStayZeroAndMasksMoveToTheInt8Weights) {
  Quantized r = Run({});
  int64_t masked = 0;
  for (const auto& n : r.q->nodes()) {
    if (n->op_type != "QConv" && n->op_type != "QGemm") continue;
    const ir::Value* w = n->input(1);
    ASSERT_EQ(w->constant.dtype(), DType::kI8);
    ASSERT_TRUE(w->quant);
    const ir::Value* fw = r.prepared->FindValue(w->name);
    ASSERT_NE(fw, nullptr) << w->name;
    ASSERT_EQ(fw->block_mask != nullptr, w->block_mask != nullptr) << w->name;
    if (!fw->block_mask) continue;
    ++masked;
    EXPECT_EQ(*fw->block_mask, *w->block_mask);
    EXPECT_TRUE(CheckMaskAgainstWeight(*w->block_mask, w->constant, w->name).ok());
    EXPECT_GT(w->block_mask->num_zero(), 0);
    // Exactly the f32 zero blocks are zero blocks of the int8 weight
    // (non-zero f32 blocks may not round to all-zero: per-channel scales).
    auto z = MaskFromZeroBlocks(w->constant, 8, 8, MaskLayout::kOutIn);
    ASSERT_TRUE(z.ok());
    EXPECT_EQ(z->num_zero(), w->block_mask->num_zero()) << w->name;
  }
  EXPECT_GE(masked, 10);
  EXPECT_EQ(r.report.fallback_nodes, 0);
}

TEST_F(QuantPtq, Int8Top1AgreesWithFp32AndQdqRoundTripIsBitExact) {
  for (bool pot : {false, true}) {
    PtqOptions o;
    o.power_of_two = pot;
    o.activation_type = pot ? DType::kI8 : DType::kU8;
    Quantized r = Run(o);
    auto pf = PredictTop1(*r.prepared, *eval_, 1);
    auto pq = PredictTop1(*r.q, *eval_, 1);
    ASSERT_TRUE(pf.ok() && pq.ok()) << pq.status().ToString();
    EXPECT_GE(Agreement(*pf, *pq), pot ? 0.85 : 0.93) << "pot=" << pot;

    auto bytes = onnxio::ExportModelToBytes(*r.q);  // runs onnx::checker
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    onnxio::ImportOptions io;
    io.input_shapes[r.q->inputs[0]->name] = (*eval_)[0].shape();
    auto back = onnxio::ImportModelFromBytes(*bytes, "int8.onnx", io);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    // lower-qdq rebuilds the same integer ops ...
    std::unique_ptr<ir::Graph> lowered = (*back)->Clone();
    ir::PassManager pm;
    pm.Add(ir::CreateLowerQdqPass());
    pm.Add(ir::CreateDeadCodeEliminationPass());
    ASSERT_TRUE(pm.Run(*lowered).ok());
    std::map<std::string, int> ops_q, ops_l;
    for (const auto& n : r.q->nodes()) ++ops_q[n->op_type];
    for (const auto& n : lowered->nodes()) ++ops_l[n->op_type];
    EXPECT_EQ(ops_q, ops_l);
    // ... whose masks came back from the metadata ...
    for (const auto& n : lowered->nodes()) {
      if (n->op_type == "QConv" && r.q->FindValue(n->input(1)->name)->block_mask) {
        EXPECT_TRUE(n->input(1)->block_mask) << n->input(1)->name;
      }
    }
    // ... and the session computes bit-identical logits.
    for (const Tensor& b : *eval_) {
      runtime::SessionOptions so;
      so.input_shapes[r.q->inputs[0]->name] = b.shape();
      auto s1 = runtime::Session::Create(*r.q, so);
      auto s2 = runtime::Session::Create(**back, so);
      ASSERT_TRUE(s1.ok() && s2.ok()) << s2.status().ToString();
      auto o1 = (*s1)->Run({b});
      auto o2 = (*s2)->Run({b});
      ASSERT_TRUE(o1.ok() && o2.ok()) << o2.status().ToString();
      EXPECT_TRUE((*o1)[0].Identical((*o2)[0]));
      break;  // one batch of 50 is enough for bit-exactness
    }
  }
}

TEST_F(QuantPtq, ReportHasScalesClippingAndErrors) {
  PtqOptions o;
  o.observer = ObserverKind::kPercentile;
  Quantized r = Run(o);
  ASSERT_TRUE(MeasureLayerErrors(*r.prepared, *r.q, {(*calib_)[0]}, 1, &r.report).ok());
  int convs = 0;
  for (const LayerReport& l : r.report.layers) {
    if (l.op_type != "QConv") continue;
    ++convs;
    EXPECT_GT(l.scale, 0.f) << l.node;
    EXPECT_LE(l.range_hi, l.observed_max) << l.node;
    EXPECT_GE(l.clipped_fraction, 0.0);
    EXPECT_LT(l.clipped_fraction, 0.01);
    EXPECT_GT(l.sqnr_db, 15.0) << l.node;  // 8-bit: ~ 30-45 dB
  }
  EXPECT_GE(convs, 10);
}

}  // namespace
}  // namespace wbs::quant

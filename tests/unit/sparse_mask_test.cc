// BlockMask, weight views, zero-block masks, ApplyMask, statistics and the
// metadata encoding, on hand-computed cases and on randomized ones whose
// expectations are computed element by element here.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/block_mask.h"
#include "sparse/scores.h"
#include "sparse/sparsify.h"

namespace wbs {
namespace {

Tensor Ones(Shape s) {
  Tensor t(DType::kF32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 1.0f;
  return t;
}

// W[10,12,2,1] in 4x8 blocks: 3 block rows (4,4,2 channels) x 2 block
// columns (8,4 channels), kernel 2.
TEST(SparseMaskTest, RaggedZeroBlockIsFoundAndCounted) {
  Tensor w = Ones({10, 12, 2, 1});
  // Zero block (2,1): rows 8..9, cols 8..11.
  for (int o = 8; o < 10; ++o)
    for (int i = 8; i < 12; ++i)
      for (int k = 0; k < 2; ++k) w.data<float>()[o * 24 + i * 2 + k] = (o + i) % 2 ? -0.0f : 0.0f;
  // Block (0,0) zero except one number: stays kept.
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 8; ++i)
      for (int k = 0; k < 2; ++k) w.data<float>()[o * 24 + i * 2 + k] = 0.0f;
  w.data<float>()[3 * 24 + 7 * 2 + 1] = 0.5f;

  auto m = MaskFromZeroBlocks(w, 4, 8, MaskLayout::kOutIn);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows, 3);
  EXPECT_EQ(m->cols, 2);
  EXPECT_EQ(m->keep, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(m->num_kept(), 5);

  auto s = sparse::ComputeMaskStats(w, *m);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->blocks, 6);
  EXPECT_EQ(s->zero_blocks, 1);
  EXPECT_EQ(s->weights, 240);
  EXPECT_EQ(s->zero_weights, 16 + 63);  // block (2,1) + block (0,0) minus one
  EXPECT_EQ(s->dense_bytes, 960);
  // 4 row pointers + 5 column indices (int32) + (240 - 2*4*2) floats.
  EXPECT_EQ(s->compressed_bytes, 4 * 4 + 5 * 4 + 224 * 4);
  EXPECT_DOUBLE_EQ(s->block_sparsity(), 1.0 / 6.0);
}

TEST(SparseMaskTest, InputMajorLayoutIsTheTransposedView) {
  // A MatMul weight [CIN=12, COUT=10] with block (COUT 8..9, CIN 8..11) zero.
  Tensor w = Ones({12, 10});
  for (int i = 8; i < 12; ++i)
    for (int o = 8; o < 10; ++o) w.data<float>()[i * 10 + o] = 0.0f;
  auto m = MaskFromZeroBlocks(w, 4, 8, MaskLayout::kInOut);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows, 3);
  EXPECT_EQ(m->cols, 2);
  EXPECT_EQ(m->keep, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(m->layout, MaskLayout::kInOut);
  EXPECT_FALSE(MaskFromZeroBlocks(Ones({2, 3, 4}), 1, 1, MaskLayout::kInOut).ok());
}

// Random weights, random masks, every listed block shape: ApplyMask equals
// zeroing element by element here; the zero-block mask recovers the mask;
// the statistics match a direct count.
TEST(SparseMaskTest, ApplyAndRecoverRandomMasksForAllBlockShapes) {
  const uint32_t seed = 20261127;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> val(0.1f, 1.0f);
  const std::pair<int, int> blocks[] = {{8, 8}, {4, 8}, {8, 4}, {16, 4}, {1, 1}, {4, 4}, {16, 16}};
  for (auto [br, bc] : blocks) {
    SCOPED_TRACE(testing::Message() << "block " << br << "x" << bc);
    const int64_t cout = 20, cin = 13, kk = 9;
    Tensor w(DType::kF32, {cout, cin, 3, 3});
    for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = val(rng);
    const int64_t rows = (cout + br - 1) / br, cols = (cin + bc - 1) / bc;
    BlockMask mask = BlockMask::AllKept(br, bc, rows, cols);
    for (auto& k : mask.keep) k = rng() % 2;
    auto masked = sparse::ApplyMask(w, mask);
    ASSERT_TRUE(masked.ok()) << masked.status().ToString();
    int64_t zeros = 0, kept_values = 0;
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t i = 0; i < cin; ++i)
        for (int64_t k = 0; k < kk; ++k) {
          const int64_t idx = (o * cin + i) * kk + k;
          const bool keep = mask.keep[static_cast<size_t>((o / br) * cols + i / bc)] != 0;
          ASSERT_EQ(masked->data<float>()[idx], keep ? w.data<float>()[idx] : 0.0f);
          zeros += !keep;
          kept_values += keep;
        }
    EXPECT_FALSE(w.Identical(*masked) && mask.num_zero() > 0) << "input must stay untouched";
    auto back = MaskFromZeroBlocks(*masked, br, bc, MaskLayout::kOutIn);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, mask);
    EXPECT_TRUE(CheckMaskAgainstWeight(mask, *masked, "w").ok());
    auto s = sparse::ComputeMaskStats(*masked, mask);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->zero_weights, zeros);
    EXPECT_EQ(s->compressed_bytes, (rows + 1) * 4 + mask.num_kept() * 4 + kept_values * 4);
  }
}

// CountZeroElements against the 1x1-block mask of the tensor as a column
// (what it replaced in the sparsity statistics), every element type, random
// bit patterns with many zeros and negative zeros.
TEST(SparseMaskTest, CountZeroElementsMatchesOneByOneMask) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const DType types[] = {DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI8,  DType::kU8,
                         DType::kI16, DType::kU16, DType::kI32, DType::kU32,  DType::kI64, DType::kU64};
  for (int round = 0; round < 200; ++round) {
    const DType t = types[rng() % std::size(types)];
    Tensor w(t, {static_cast<int64_t>(rng() % 40), static_cast<int64_t>(1 + rng() % 5)});
    auto* bytes = static_cast<unsigned char*>(w.raw());
    const size_t es = DTypeSize(t);
    for (int64_t i = 0; i < w.numel(); ++i) {
      unsigned char* e = bytes + static_cast<size_t>(i) * es;
      for (size_t b = 0; b < es; ++b) e[b] = static_cast<unsigned char>(rng());
      if (rng() % 3 == 0) std::memset(e, 0, es);
      if (rng() % 5 == 0) {  // only the top bit: -0.0 for floats
        std::memset(e, 0, es);
        e[es - 1] = 0x80;
      }
    }
    auto col = w.Reshaped({w.numel(), 1});
    ASSERT_TRUE(col.ok());
    auto m = MaskFromZeroBlocks(*col, 1, 1, MaskLayout::kOutIn);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto z = CountZeroElements(w);
    ASSERT_TRUE(z.ok()) << z.status().ToString();
    EXPECT_EQ(*z, m->num_zero()) << DTypeName(t) << " round " << round;
  }
}

TEST(SparseMaskTest, CheckRejectsMaskedNonZeroBlockAndWrongSize) {
  Tensor w = Ones({16, 16});
  BlockMask m = BlockMask::AllKept(8, 8, 2, 2);
  m.Set(1, 0, false);
  Status st = CheckMaskAgainstWeight(m, w, "weight 'fc.w'");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "weight 'fc.w': block (1, 0) is masked as zero but holds non-zero weights");
  // A kept block that happens to be zero is fine.
  Tensor z(DType::kF32, {16, 16});
  for (int64_t i = 0; i < z.numel(); ++i) z.data<float>()[i] = 0.0f;
  EXPECT_TRUE(CheckMaskAgainstWeight(BlockMask::AllKept(8, 8, 2, 2), z, "w").ok());
  EXPECT_FALSE(sparse::ApplyMask(w, BlockMask::AllKept(8, 8, 3, 2)).ok());
  EXPECT_FALSE(sparse::ComputeMaskStats(w, BlockMask::AllKept(8, 8, 2, 3)).ok());
  BlockMask short_keep = BlockMask::AllKept(8, 8, 2, 2);
  short_keep.keep.pop_back();
  EXPECT_FALSE(sparse::ComputeMaskStats(w, short_keep).ok());
  Status size = CheckMaskAgainstWeight(BlockMask::AllKept(8, 8, 3, 2), w, "weight 'fc.w'");
  EXPECT_NE(size.message().find("does not fit weight [16,16]"), std::string::npos)
      << size.message();
}

TEST(SparseMaskTest, EncodeDecodeRoundTripAndErrors) {
  BlockMask m = BlockMask::AllKept(4, 8, 3, 2);
  m.Set(2, 1, false);
  // Bits 111110 padded with two zeros: 0xf8.
  EXPECT_EQ(EncodeBlockMask(m), "4x8:3x2:oi:f8");
  auto d = DecodeBlockMask("4x8:3x2:oi:f8", "w");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, m);

  const uint32_t seed = 7;
  std::mt19937 rng(seed);
  BlockMask r = BlockMask::AllKept(16, 4, 13, 7, MaskLayout::kInOut);
  for (auto& k : r.keep) k = rng() % 2;
  auto rd = DecodeBlockMask(EncodeBlockMask(r), "w");
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(*rd, r) << "seed " << seed;

  auto err = [](const std::string& s) {
    auto x = DecodeBlockMask(s, "weight 'w'");
    return x.ok() ? std::string("ok") : x.status().message();
  };
  EXPECT_EQ(err("4x8:3x2:oi:f9"), "weight 'w': block mask has non-zero padding bits");
  EXPECT_EQ(err("4x8:3x2:oi:f"), "weight 'w': mask of 3x2 blocks needs 2 hex digits, has 1");
  EXPECT_EQ(err("17x8:3x2:oi:f8"), "weight 'w': block 17x8 out of range 1..16");
  EXPECT_EQ(err("4x8:3x2:xy:f8"), "weight 'w': bad mask layout 'xy' (expected oi or io)");
  EXPECT_EQ(err("4x8:3x2:oi:g8"), "weight 'w': bad hex digit in block mask at offset 0");
  EXPECT_NE(err("garbage").find("is not <br>x<bc>"), std::string::npos);
}

TEST(SparseMaskTest, ParseBlockShape) {
  auto b = ParseBlockShape("16x4");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, 16);
  EXPECT_EQ(b->second, 4);
  EXPECT_FALSE(ParseBlockShape("0x8").ok());
  EXPECT_FALSE(ParseBlockShape("8x17").ok());
  EXPECT_FALSE(ParseBlockShape("8").ok());
  EXPECT_FALSE(ParseBlockShape("8x8x8").ok());
}

// Scores against the formulas, evaluated here by plain loops.
TEST(SparseScoresTest, ScoresMatchFormulasOnRaggedBlocks) {
  const uint32_t seed = 1234;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::normal_distribution<float> val(0.3f, 1.0f);
  const int64_t cout = 9, cin = 5, kk = 4, br = 4, bc = 2;
  Tensor w(DType::kF32, {cout, cin, 2, 2});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = val(rng);
  double tensor_mean = 0;
  for (int64_t i = 0; i < w.numel(); ++i) tensor_mean += w.data<float>()[i];
  tensor_mean /= static_cast<double>(w.numel());
  const int64_t rows = 3, cols = 3;
  for (sparse::Score sc : {sparse::Score::kL2, sparse::Score::kL1, sparse::Score::kMeanAbs,
                           sparse::Score::kVarBlockMean, sparse::Score::kVarTensorMean}) {
    SCOPED_TRACE(sparse::ScoreName(sc));
    auto got = sparse::BlockScores(w, MaskLayout::kOutIn, br, bc, sc);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->size(), static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        std::vector<double> v;
        for (int64_t o = r * br; o < std::min(cout, (r + 1) * br); ++o)
          for (int64_t i = c * bc; i < std::min(cin, (c + 1) * bc); ++i)
            for (int64_t k = 0; k < kk; ++k) v.push_back(w.data<float>()[(o * cin + i) * kk + k]);
        double sq = 0, ab = 0, mean = 0;
        for (double x : v) sq += x * x, ab += std::fabs(x), mean += x;
        mean /= static_cast<double>(v.size());
        double vb = 0, vt = 0;
        for (double x : v)
          vb += (x - mean) * (x - mean), vt += (x - tensor_mean) * (x - tensor_mean);
        const double n = static_cast<double>(v.size());
        double want = 0;
        switch (sc) {
          case sparse::Score::kL2:
            want = std::sqrt(sq);
            break;
          case sparse::Score::kL1:
            want = ab;
            break;
          case sparse::Score::kMeanAbs:
            want = ab / n;
            break;
          case sparse::Score::kVarBlockMean:
            want = vb / n;
            break;
          case sparse::Score::kVarTensorMean:
            want = vt / n;
            break;
        }
        EXPECT_NEAR((*got)[static_cast<size_t>(r * cols + c)], want, 1e-9 * (1 + want))
            << "block " << r << "," << c;
      }
  }
  EXPECT_FALSE(sparse::ParseScore("l3").ok());
  EXPECT_EQ(*sparse::ParseScore("var-tensor"), sparse::Score::kVarTensorMean);
}

}  // namespace
}  // namespace wbs
